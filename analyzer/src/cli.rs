//! Command-line interface of `analyze`.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::{output::Format, summary::By};

/// Answer questions about tracepost captures: summaries, canned queries, SQL, reports for
/// incident tickets, and comparisons with a normal day.
#[derive(Debug, Parser)]
#[command(name = "analyze", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// strace -c done right: calls, errors and latency percentiles per group.
    #[command(after_help = "Examples:\n  analyze summary inc-42\n  \
        analyze summary inc-42 --by file --format markdown")]
    Summary(SummaryArgs),
    /// Run a canned query by name, a .sql file, or SQL given inline.
    /// Tables: syscalls, aggregates, processes, capture.
    #[command(after_help = "Examples:\n  analyze query inc-42 slowest-calls\n  \
        analyze query inc-42 errors --comm nginx --since +30s\n  \
        analyze query inc-42 \"SELECT syscall, count(*) FROM syscalls GROUP BY 1\"")]
    Query(QueryArgs),
    /// List the canned queries.
    List,
    /// Write the incident report: capture facts, top findings, canned sections.
    #[command(after_help = "Examples:\n  analyze report inc-42 -o inc-42.md\n  \
        analyze report inc-42 -o inc-42.html")]
    Report(ReportArgs),
    /// A timeline for ui.perfetto.dev or Chrome's trace viewer: a slice per recorded call,
    /// on its process and thread.
    #[command(
        after_help = "Examples:\n  analyze export inc-42 --perfetto inc-42.json\n  \
        analyze export inc-42 --since +10s --until +12s --pid 1234 --perfetto slow-2s.json"
    )]
    Export(ExportArgs),
    /// What changed from a baseline capture to an incident capture, per syscall and process.
    #[command(after_help = "Example:\n  analyze diff normal-day inc-42 --format markdown")]
    Diff(DiffArgs),
    /// Start the scheduler of a Ballista cluster, for `--cluster`. No authentication: bind
    /// it to loopback or a private network.
    #[command(after_help = "Example:\n  analyze scheduler --bind 10.0.0.5:50050")]
    Scheduler(SchedulerArgs),
    /// Start an executor of a Ballista cluster. It reads the captures with the object-store
    /// credentials of its own environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`).
    #[command(
        after_help = "Example:\n  analyze executor --scheduler 10.0.0.5:50050 --bind 10.0.0.6"
    )]
    Executor(ExecutorArgs),
}

impl Command {
    /// A cluster node, which runs until it is stopped, rather than a command that answers.
    pub fn serves(&self) -> bool {
        matches!(self, Self::Scheduler(_) | Self::Executor(_))
    }
}

#[derive(Debug, clap::Args)]
pub struct SchedulerArgs {
    /// Address to listen on; the executors and clients connect to it.
    #[arg(long, value_name = "IP:PORT", default_value = "127.0.0.1:50050")]
    pub bind: std::net::SocketAddr,
}

#[derive(Debug, clap::Args)]
pub struct ExecutorArgs {
    /// The scheduler's address.
    #[arg(long, value_name = "IP:PORT")]
    pub scheduler: std::net::SocketAddr,
    /// Address to listen on, and to give the scheduler and clients to connect to.
    #[arg(long, value_name = "IP", default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
    /// Port of the Flight service, which hands results and shuffle data out.
    #[arg(long, value_name = "PORT", default_value_t = 50051)]
    pub port: u16,
    /// Port of the service the scheduler sends tasks to.
    #[arg(long, value_name = "PORT", default_value_t = 50052)]
    pub grpc_port: u16,
    /// Tasks run at once (default: the CPUs).
    #[arg(long, value_name = "N")]
    pub tasks: Option<std::num::NonZeroUsize>,
    /// Directory for shuffle files and spills (default: a new private directory under the
    /// temporary directory, removed at exit).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
}

/// Narrows every table before any SQL runs, so canned and user SQL see the narrowed data.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct NarrowArgs {
    /// Only this process (repeatable).
    // A negative value reaches the range check, which names it, instead of clap's "unexpected
    // argument '-5' found", which names neither the flag nor what is wrong.
    #[arg(
        long = "pid",
        value_name = "PID",
        value_parser = clap::value_parser!(i32).range(0..),
        allow_negative_numbers = true
    )]
    pub pid: Vec<i32>,
    /// Only processes or threads with this name (repeatable).
    // A login shell is `-bash`: a name, not a flag.
    #[arg(long = "comm", value_name = "NAME", allow_hyphen_values = true)]
    pub comm: Vec<String>,
    /// From this time: RFC 3339 (`2026-11-24T02:10:00Z`) or `+DUR` after the capture began.
    // `-1s` reaches the time parser, which says what forms a time takes.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub since: Option<String>,
    /// Until this time, same forms as --since.
    #[arg(long, value_name = "TIME", allow_hyphen_values = true)]
    pub until: Option<String>,
}

impl NarrowArgs {
    /// The narrowing as it was given (`--since +1h --pid 12`), or None when there is none:
    /// a report says what it leaves out.
    pub fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        parts.extend(self.since.iter().map(|t| format!("--since {t}")));
        parts.extend(self.until.iter().map(|t| format!("--until {t}")));
        parts.extend(self.pid.iter().map(|p| format!("--pid {p}")));
        parts.extend(self.comm.iter().map(|c| format!("--comm {c}")));
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// How the captures' files are read.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ReadArgs {
    /// Answer from the readable files when some are damaged or foreign: each skipped file
    /// is named on stderr, and the `capture` table's `skipped_files` counts them.
    #[arg(long)]
    pub skip_bad_files: bool,
    /// Plan here and run on the Ballista cluster whose scheduler listens at HOST:PORT
    /// (`analyze scheduler`). Its nodes must reach the captures by the same names: object
    /// storage, or paths they all see.
    #[arg(long, value_name = "HOST:PORT")]
    pub cluster: Option<String>,
    /// With --cluster: how long to wait for an executor to register with the scheduler
    /// before giving up, when it has none (`30s`, `2m`).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration, requires = "cluster")]
    pub cluster_wait: std::time::Duration,
    /// Name the user-stack frames the host could not (stripped binaries, libc internals)
    /// from the debug files under DIR, found by build ID as `DIR/.build-id/xx/rest.debug`:
    /// `/usr/lib/debug` after installing a `-dbgsym` or `-dbg` package (repeatable).
    #[arg(long = "debug-dir", value_name = "DIR")]
    pub debug_dirs: Vec<PathBuf>,
}

#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Output format [default: from -o's extension (.csv, .json, .md, .txt), else table].
    #[arg(short, long, value_enum)]
    pub format: Option<Format>,
    /// Write to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Keep secrets (passwords, tokens, keys, URL credentials) in Markdown and `-o`
    /// output, which otherwise masks them as `***`.
    #[arg(long)]
    pub no_redact: bool,
}

impl OutputArgs {
    /// The format asked for, or the one `-o`'s extension names: `-o errors.csv` wrote an
    /// aligned table, cut at 1000 rows, into a file named for CSV. An extension that names
    /// a format we do not write is refused: `-o x.parquet` wrote an aligned table into a
    /// file that no Parquet reader opens.
    pub fn format(&self) -> Result<Format, UnknownExtension> {
        if let Some(format) = self.format {
            return Ok(format);
        }
        let Some(path) = &self.output else {
            return Ok(Format::Table);
        };
        // `.csv` alone is a name with no extension to the standard library.
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        let ext = match (
            path.extension(),
            name.as_deref().and_then(|n| n.strip_prefix('.')),
        ) {
            (Some(ext), _) => ext.to_string_lossy().to_ascii_lowercase(),
            (None, Some(hidden)) => hidden.to_ascii_lowercase(),
            (None, None) => return Ok(Format::Table),
        };
        match ext.as_str() {
            "csv" => Ok(Format::Csv),
            "json" => Ok(Format::Json),
            "md" | "markdown" => Ok(Format::Markdown),
            // `-o x.` has an empty one.
            "" | "txt" | "text" | "log" | "out" => Ok(Format::Table),
            other => Err(UnknownExtension {
                path: path.display().to_string(),
                hint: match other {
                    "html" | "htm" => " (`analyze report -o FILE.html` writes the HTML report)",
                    _ => "",
                },
            }),
        }
    }
}

/// `-o`'s extension names no format that `--format` offers, and none was given.
#[derive(Debug, thiserror::Error)]
#[error(
    "-o {path}: its extension names no format written here{hint}; use .csv, .json, .md or \
     .txt, or give --format (table, csv, json, markdown)"
)]
pub struct UnknownExtension {
    path: String,
    hint: &'static str,
}

#[derive(Debug, clap::Args)]
pub struct SummaryArgs {
    /// Capture directories or object-store URLs (`s3://bucket/inc-42/host=web-1`); several
    /// are combined.
    #[arg(required = true, value_name = "CAPTURE")]
    pub captures: Vec<PathBuf>,
    /// What to group by.
    #[arg(long, value_enum, default_value_t = By::Syscall)]
    pub by: By,
    #[command(flatten)]
    pub narrow: NarrowArgs,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// Capture directories or object-store URLs, then a query name, a .sql file or SQL, as
    /// the last argument.
    #[arg(required = true, num_args = 1.., value_name = "CAPTURE... QUERY")]
    pub args: Vec<String>,
    /// A parameter of a canned query (`limit=50`), repeatable.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    #[command(flatten)]
    pub narrow: NarrowArgs,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

impl QueryArgs {
    /// The capture directories and the query.
    pub fn split(&self) -> anyhow::Result<(Vec<PathBuf>, &str)> {
        let (query, captures) = match self.args.split_last() {
            Some((query, captures)) if !captures.is_empty() => (query, captures),
            _ => anyhow::bail!("give one or more capture directories, then a query"),
        };
        if query.trim().is_empty() {
            anyhow::bail!("the query (last argument) is empty");
        }
        Ok((captures.iter().map(PathBuf::from).collect(), query))
    }
}

#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Capture directories or object-store URLs (`s3://bucket/inc-42/host=web-1`); several
    /// are combined.
    #[arg(required = true, value_name = "CAPTURE")]
    pub captures: Vec<PathBuf>,
    /// The report file: `.md` for Markdown, `.html` for a self-contained page with charts.
    #[arg(short, long, value_name = "FILE.md|FILE.html")]
    pub output: PathBuf,
    /// Keep secrets (passwords, tokens, keys, URL credentials), which the report
    /// otherwise masks as `***`.
    #[arg(long)]
    pub no_redact: bool,
    #[command(flatten)]
    pub narrow: NarrowArgs,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Capture directories or object-store URLs; several are one trace, a process group
    /// per process of each capture.
    #[arg(required = true, value_name = "CAPTURE")]
    pub captures: Vec<PathBuf>,
    /// The trace file to write, in Chrome's JSON trace event format.
    #[arg(long, value_name = "FILE.json")]
    pub perfetto: PathBuf,
    /// Keep secrets (passwords, tokens, keys, URL credentials), which the trace otherwise
    /// masks as `***`.
    #[arg(long)]
    pub no_redact: bool,
    #[command(flatten)]
    pub narrow: NarrowArgs,
    #[command(flatten)]
    pub read: ReadArgs,
}

#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// The capture of a normal day.
    #[arg(value_name = "BASELINE")]
    pub baseline: PathBuf,
    /// The capture of the incident.
    #[arg(value_name = "INCIDENT")]
    pub incident: PathBuf,
    /// Rows shown in all, the largest change first: syscalls and processes are ranked
    /// together by the extra time per second they take.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[command(flatten)]
    pub narrow: NarrowArgs,
    #[command(flatten)]
    pub read: ReadArgs,
    #[command(flatten)]
    pub out: OutputArgs,
}

/// A command-line error as one line, as every other error is: clap's first line, the
/// values it lists for a value it refused, and a tip it gives on the lines after (a
/// similar option), without its usage block. Not clap's tip to pass an unknown option
/// after `--`: for `--bogus` that would make it a capture's name.
pub fn one_line(e: &clap::Error) -> String {
    // SQL that begins with a `--` comment (`-- ` or `--` and a line break) is taken for
    // an option: say how to pass it, in one line (clap's own line stops at the SQL's
    // first line break).
    if e.kind() == clap::error::ErrorKind::UnknownArgument
        && let Some(clap::error::ContextValue::String(arg)) =
            e.get(clap::error::ContextKind::InvalidArg)
        && arg
            .strip_prefix("--")
            .is_some_and(|rest| rest.starts_with(char::is_whitespace))
    {
        let mut lines = arg.lines();
        let first = lines.next().unwrap_or_default();
        let more = if lines.next().is_some() { "…" } else { "" };
        return format!(
            "error: unexpected argument '{first}{more}': SQL that starts with a `--` comment \
             goes after `--` (analyze query CAPTURE... -- SQL)"
        );
    }
    let text = e.render().to_string();
    let mut lines = text.lines();
    let mut out = lines
        .next()
        .unwrap_or("error: invalid arguments")
        .trim_end()
        .to_string();
    // What a line ending in ':' introduces: the arguments that are missing.
    if out.ends_with(':') {
        let listed: Vec<&str> = lines
            .clone()
            .map(str::trim)
            .take_while(|l| !l.is_empty())
            .collect();
        out.push(' ');
        out.push_str(&listed.join(", "));
    }
    for line in lines.map(str::trim) {
        if let Some(values) = line
            .strip_prefix("[possible values: ")
            .and_then(|v| v.strip_suffix(']'))
        {
            out.push_str(&format!(" (one of: {values})"));
        } else if let Some(tip) = line.strip_prefix("tip: ")
            && !tip.contains("use '--")
        {
            out.push_str(&format!(" ({tip})"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_of(args: &[&str]) -> String {
        one_line(&Cli::try_parse_from(args).unwrap_err())
    }

    #[test]
    fn refused_arguments_say_what_would_do() {
        let sql = error_of(&["analyze", "query", "cap", "-- slow reads\nSELECT 1"]);
        assert_eq!(
            sql,
            "error: unexpected argument '-- slow reads…': SQL that starts with a `--` comment \
             goes after `--` (analyze query CAPTURE... -- SQL)"
        );
        let cli = Cli::try_parse_from(["analyze", "query", "cap", "--", "-- c\nSELECT 1"]).unwrap();
        let Command::Query(q) = cli.command else {
            panic!()
        };
        assert_eq!(q.split().unwrap().1, "-- c\nSELECT 1");
        let by = error_of(&["analyze", "summary", "cap", "--by", "pid"]);
        assert!(
            by.starts_with("error: invalid value 'pid' for '--by <BY>' (one of: syscall, "),
            "{by}"
        );
        assert!(!by.contains('\n'), "{by}");
        // An unknown option is not told to go after `--`, where it would be a capture;
        // a similar one is named.
        let bogus = error_of(&["analyze", "summary", "cap", "--bogus"]);
        assert_eq!(bogus, "error: unexpected argument '--bogus' found");
        let spaced = error_of(&["analyze", "summary", "cap", "--by process"]);
        assert!(
            spaced.contains("a similar argument exists: '--by'"),
            "{spaced}"
        );
        let one_line_sql = error_of(&["analyze", "query", "cap", "-- x"]);
        assert!(
            one_line_sql.starts_with("error: unexpected argument '-- x':"),
            "{one_line_sql}"
        );
    }

    #[test]
    fn the_format_follows_the_output_files_extension_unless_given() {
        let format = |args: &[&str]| {
            let mut all = vec!["analyze", "summary", "cap"];
            all.extend(args);
            let Command::Summary(s) = Cli::try_parse_from(all).unwrap().command else {
                panic!()
            };
            s.out.format().unwrap()
        };
        assert_eq!(format(&[]), Format::Table);
        assert_eq!(format(&["-o", "x.csv"]), Format::Csv);
        assert_eq!(format(&["-o", "x.JSON"]), Format::Json);
        assert_eq!(format(&["-o", "x.md"]), Format::Markdown);
        assert_eq!(format(&["-o", "x.txt"]), Format::Table);
        assert_eq!(format(&["-o", "x.csv", "-f", "json"]), Format::Json);
        assert_eq!(format(&["-o", "x.parquet", "-f", "csv"]), Format::Csv);
        assert_eq!(format(&["-o", "answer"]), Format::Table);
        assert_eq!(format(&["-o", "answer."]), Format::Table);
        assert_eq!(format(&["-o", "/tmp/.csv"]), Format::Csv);
    }

    #[test]
    fn an_output_extension_naming_no_format_is_refused() {
        let refused = |file: &str| {
            let all = ["analyze", "summary", "cap", "-o", file];
            let Command::Summary(s) = Cli::try_parse_from(all).unwrap().command else {
                panic!()
            };
            s.out.format().unwrap_err().to_string()
        };
        assert_eq!(
            refused("/tmp/x.parquet"),
            "-o /tmp/x.parquet: its extension names no format written here; use .csv, .json, \
             .md or .txt, or give --format (table, csv, json, markdown)"
        );
        assert!(
            refused("x.HTML").contains("(`analyze report -o FILE.html` writes the HTML report)"),
            "{}",
            refused("x.HTML")
        );
    }

    #[test]
    fn last_argument_is_the_query() {
        let cli =
            Cli::try_parse_from(["analyze", "query", "a", "b", "SELECT 1", "--format", "csv"])
                .unwrap();
        let Command::Query(q) = cli.command else {
            panic!()
        };
        let (captures, sql) = q.split().unwrap();
        assert_eq!(captures, vec![PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(sql, "SELECT 1");
        assert_eq!(q.out.format().unwrap(), Format::Csv);
        // Options may sit between the captures and the query.
        let cli = Cli::try_parse_from([
            "analyze", "query", "a", "-f", "markdown", "--pid", "7", "errors",
        ])
        .unwrap();
        let Command::Query(q) = cli.command else {
            panic!()
        };
        assert_eq!(q.split().unwrap(), (vec![PathBuf::from("a")], "errors"));
        assert_eq!(q.out.format().unwrap(), Format::Markdown);
        assert_eq!(q.narrow.pid, vec![7]);
        let cli = Cli::try_parse_from(["analyze", "query", "only-sql"]).unwrap();
        let Command::Query(q) = cli.command else {
            panic!()
        };
        assert!(q.split().is_err());
    }

    #[test]
    fn summary_groups_and_reports_need_an_output() {
        let cli = Cli::try_parse_from(["analyze", "summary", "c", "--by", "file"]).unwrap();
        let Command::Summary(s) = cli.command else {
            panic!()
        };
        assert_eq!(s.by, By::File);
        assert!(Cli::try_parse_from(["analyze", "report", "c"]).is_err());
        assert!(Cli::try_parse_from(["analyze", "diff", "a"]).is_err());
    }
}
