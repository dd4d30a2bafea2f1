//! Command-line interface of `record`.
use std::{collections::BTreeSet, ffi::OsString, path::PathBuf, time::Duration};

use bytesize::ByteSize;
use clap::{ArgGroup, Parser};

/// Record every system call of a command, of running processes, or of the whole host, into
/// a capture directory of zstd-compressed Parquet files.
#[derive(Debug, Parser)]
#[command(name = "record", version, about, long_about = None)]
#[command(group(ArgGroup::new("target").required(true).args(["command", "pid", "all"])))]
#[command(after_help = "Examples:\n  \
    record -o inc-42 -- ./suspect --flag\n  \
    record -p 1234 -p 1240 -d 60s -o inc-42\n  \
    record -a -d 30s")]
pub struct Args {
    /// Attach to a running process: all its threads and the children it creates afterwards.
    #[arg(short, long = "pid", value_name = "PID", conflicts_with_all = ["all", "command"],
          value_parser = clap::value_parser!(i32).range(1..), allow_hyphen_values = true)]
    pub pid: Vec<i32>,

    /// Trace every process on the host except the recorder itself.
    #[arg(short, long, conflicts_with = "command")]
    pub all: bool,

    /// Capture directory [default: capture-<host>-<UTC time>, and -2, -3... if taken].
    #[arg(short, long, value_name = "DIR")]
    pub output: Option<PathBuf>,

    /// Stop after this long (`30s`, `5m`, `1h 30m`).
    #[arg(short, long, value_name = "DUR", value_parser = parse_duration, allow_hyphen_values = true)]
    pub duration: Option<Duration>,

    /// Close the open Parquet file and start a new one this often (up to about 50 ms
    /// after, when the writer next takes rows), so that a killed recorder loses at most
    /// that much (a call that blocked longer than 30 ms waits for the next file: up to
    /// twice this).
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_rotate, allow_hyphen_values = true)]
    pub rotate: Duration,

    /// Flight-recorder mode for always-on use: keep only the newest closed files, within
    /// this size (`500MiB`, `2GiB`), deleting the oldest.
    #[arg(long, value_name = "SIZE", value_parser = parse_max_size, allow_hyphen_values = true)]
    pub max_size: Option<ByteSize>,

    /// Ship each file to object storage as soon as it is closed (`s3://bucket/inc-42/web-1`,
    /// `gs://...`, `az://...`, `http(s)://...`), with the store's usual credentials
    /// (`AWS_*`, `GOOGLE_*`, `AZURE_*`). Failed uploads are retried with backoff and the
    /// files kept; with `--max-size`, only uploaded files are deleted.
    #[arg(long, value_name = "URL")]
    pub upload: Option<String>,

    /// When recording ends, wait this long at most for the last uploads; files still not
    /// uploaded are named, and kept.
    #[arg(long, value_name = "DUR", default_value = "30s", value_parser = parse_duration, requires = "upload", allow_hyphen_values = true)]
    pub upload_wait: Duration,

    /// Buffer between the kernel and the recorder (`16MiB`, `256MiB`), split evenly between
    /// the CPUs online at the start, each share a power of two of 16KiB chunks, at least two;
    /// CPUs that come online later get two chunks. Larger absorbs longer bursts before calls
    /// are lost (and counted).
    #[arg(long, value_name = "SIZE", default_value = "16MiB", value_parser = parse_size, allow_hyphen_values = true)]
    pub buffer_size: ByteSize,

    /// Record only threads with this name (repeatable; the kernel's 15-byte name, as `ps`
    /// shows it). Threads that do not match are still followed, so their children can.
    // A login shell is `-bash`: a name, not a flag.
    #[arg(long = "comm", value_name = "NAME", value_parser = parse_comm, allow_hyphen_values = true)]
    pub comm: Vec<String>,

    /// Record only processes in this cgroup v2 directory or below it
    /// (`/sys/fs/cgroup/system.slice/nginx.service`). A cgroup made anew at that path (a
    /// restarted service) is recorded from when record sees it, within 100 ms.
    #[arg(long, value_name = "PATH")]
    pub cgroup: Option<PathBuf>,

    /// Record only these syscalls: names and strace's classes, comma-separated
    /// (`openat,read,%network`; classes %file %network %process %memory %signal %ipc).
    #[arg(short = 'e', long = "syscalls", value_name = "LIST", value_parser = parse_syscalls)]
    pub syscalls: Option<BTreeSet<u32>>,

    /// Record only calls that failed; the others are still counted exactly in `aggregates`.
    #[arg(long)]
    pub failed: bool,

    /// Record only calls that took at least this long (`1ms`, `500us`); shorter ones are
    /// still counted exactly, per process, syscall, errno and latency, in `aggregates`.
    #[arg(long, value_name = "DUR", value_parser = parse_min_duration, allow_hyphen_values = true)]
    pub min_duration: Option<Duration>,

    /// Split each recorded call's time into on a CPU, waiting for a CPU and blocked, and
    /// name the thread that woke it (columns `oncpu_ns`, `runq_ns`, `blocked_ns`, `waker_*`),
    /// from the scheduler's tracepoints. Costs every context switch on the host a little.
    #[arg(long)]
    pub sched: bool,

    /// Also keep, for each call of at least --stack-min, the kernel stack where it blocked
    /// longest (column `kernel_stack`) and the user-space call chain that made it (column
    /// `user_stack`), both folded: outermost frame first, joined by `;`. Implies --sched.
    #[arg(long)]
    pub stacks: bool,

    /// With --stacks: the shortest call whose stacks are kept (`1ms`, `200us`; `0` for every
    /// call: its user stack, and its kernel stack if it blocked).
    #[arg(long, value_name = "DUR", value_parser = parse_duration_or_zero,
          default_value = "1ms", requires = "stacks", allow_hyphen_values = true)]
    pub stack_min: Duration,

    /// No live status line and no summary on stderr (loss warnings are still printed).
    #[arg(short, long)]
    pub quiet: bool,

    /// Command to run and trace, with its descendants, until it exits. Everything from its
    /// name on is the command's: `record -o inc-42 ls -la` as well as `record -o inc-42 --
    /// ls -la`.
    // Not `allow_hyphen_values`: then `-p1234`, or a mistyped `--duraton`, would be taken
    // for the command's name.
    #[arg(trailing_var_arg = true, value_name = "COMMAND")]
    pub command: Vec<OsString>,
}

impl Args {
    /// Whether the scheduler's hooks are attached: `--sched`, or `--stacks`, which needs
    /// them to see where calls block.
    pub fn sched(&self) -> bool {
        self.sched || self.stacks
    }
}

fn parse_syscalls(s: &str) -> Result<BTreeSet<u32>, String> {
    crate::kernel::syscall_table::parse_list(s).map_err(|e| e.to_string())
}

/// The smallest share a CPU gets is two 16KiB chunks, so a smaller buffer would be raised
/// without a word.
fn parse_size(s: &str) -> Result<ByteSize, String> {
    let size: ByteSize = s.parse().map_err(|e| format!("{e} (try 16MiB or 1GiB)"))?;
    if size.as_u64() < 32 << 10 || size.as_u64() > 1 << 31 {
        return Err("must be between 32KiB (two 16KiB chunks for one CPU) and 2GiB".into());
    }
    Ok(size)
}

/// The writer takes rows about every 50 ms, and each rotation is a file: `--rotate 1ns`
/// made 28 files in 2 s and closed none when it said.
fn parse_rotate(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < Duration::from_millis(100) {
        return Err("must be at least 100ms".into());
    }
    Ok(d)
}

/// An empty name matches no thread: a usage error, refused as clap refuses the others.
fn parse_comm(s: &str) -> Result<String, String> {
    match s.is_empty() {
        true => Err("must not be empty".into()),
        false => Ok(s.to_string()),
    }
}

fn parse_max_size(s: &str) -> Result<ByteSize, String> {
    let size: ByteSize = s.parse().map_err(|e| format!("{e} (try 500MiB or 2GiB)"))?;
    if size.as_u64() < 64 * 1024 {
        return Err("must be at least 64KiB".into());
    }
    Ok(size)
}

fn parse_duration_or_zero(s: &str) -> Result<Duration, String> {
    match s.trim() {
        "0" => Ok(Duration::ZERO),
        _ => humantime::parse_duration(s).map_err(|e| format!("{e} (try 1ms, 200us or 0)")),
    }
}

/// A duration that only bounds a wait (`-d`, `--rotate`, `--upload-wait`): one past what
/// the clock can hold is waited for as long as the clock goes.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = humantime::parse_duration(s).map_err(|e| format!("{e} (try 30s, 5m or 1h)"))?;
    if d.is_zero() {
        return Err("must be longer than zero".into());
    }
    Ok(d)
}

/// `--min-duration` is kept as signed 64-bit nanoseconds in the capture table: a longer
/// one (past about 292 years) wrapped to a negative number there.
fn parse_min_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.as_nanos() > i64::MAX as u128 {
        return Err("too long: at most 292 years".into());
    }
    Ok(d)
}

/// A command-line error as one line, as every other error is: clap's first line, and a
/// tip it gives on the lines after (a similar option), without its usage block. A tip to
/// pass a value after `--` is left out: after `--`, record takes a command.
pub fn one_line(e: &clap::Error) -> String {
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
    for tip in lines.filter_map(|l| l.trim().strip_prefix("tip: ")) {
        if !tip.contains("use '--") {
            out.push_str(&format!(" ({tip})"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_one_target_is_required() {
        assert!(Args::try_parse_from(["record"]).is_err());
        assert!(Args::try_parse_from(["record", "-a", "-p", "1"]).is_err());
        assert!(Args::try_parse_from(["record", "-a", "--", "true"]).is_err());
        let a = Args::try_parse_from(["record", "-p", "1", "-p", "2", "-d", "60s"]).unwrap();
        assert_eq!(a.pid, vec![1, 2]);
        assert_eq!(a.duration, Some(Duration::from_secs(60)));
        let c = Args::try_parse_from(["record", "-o", "x", "--", "ls", "-la"]).unwrap();
        assert_eq!(c.command, vec![OsString::from("ls"), OsString::from("-la")]);
        // Without `--`, the command's name ends record's options: what follows is its own.
        let c = Args::try_parse_from(["record", "-o", "x", "ls", "-la", "-o", "y"]).unwrap();
        assert_eq!(c.output, Some(PathBuf::from("x")));
        assert_eq!(c.command, ["ls", "-la", "-o", "y"].map(OsString::from));
        assert!(Args::try_parse_from(["record", "-p", "1", "ls"]).is_err());
        // A value stuck to its short option is still the option's, and a mistyped option
        // is a usage error, not a command.
        let p = Args::try_parse_from(["record", "-p1234"]).unwrap();
        assert_eq!(p.pid, vec![1234]);
        let d = Args::try_parse_from(["record", "-ocap", "-d30s", "ls"]).unwrap();
        assert_eq!(d.output, Some(PathBuf::from("cap")));
        assert_eq!(d.duration, Some(Duration::from_secs(30)));
        let typo = Args::try_parse_from(["record", "-o", "x", "--duraton", "30s", "./srv"]);
        assert_eq!(
            typo.unwrap_err().kind(),
            clap::error::ErrorKind::UnknownArgument
        );
    }

    #[test]
    fn a_min_duration_past_signed_nanoseconds_is_refused() {
        for value in ["10000000000h", "300years"] {
            let err = Args::try_parse_from(["record", "-p", "1", "--min-duration", value])
                .err()
                .unwrap_or_else(|| panic!("--min-duration {value} accepted"));
            assert!(err.to_string().contains("at most 292 years"), "{err}");
        }
        // Waits are bounded by the clock: as long as it goes.
        let a = Args::try_parse_from(["record", "-p", "1", "-d", "18446744073709551615s"]).unwrap();
        assert_eq!(a.duration, Some(Duration::from_secs(u64::MAX)));
        let a = Args::try_parse_from(["record", "-p", "1", "--min-duration", "290years"]).unwrap();
        assert!(a.min_duration.unwrap().as_nanos() <= i64::MAX as u128);
    }

    #[test]
    fn buffer_sizes_are_human_and_bounded() {
        assert_eq!(parse_size("16MiB").unwrap().as_u64(), 16 << 20);
        assert_eq!(parse_size("1GiB").unwrap().as_u64(), 1 << 30);
        assert!(parse_size("1KiB").is_err());
        assert!(parse_size("16KiB").is_err());
        assert_eq!(parse_size("32KiB").unwrap().as_u64(), 32 << 10);
        assert!(parse_rotate("50ms").is_err());
        assert_eq!(parse_rotate("100ms"), Ok(Duration::from_millis(100)));
        assert!(Args::try_parse_from(["record", "-a", "--comm", ""]).is_err());
        let login = Args::try_parse_from(["record", "-a", "--comm", "-bash"]).unwrap();
        assert_eq!(login.comm, ["-bash"]);
        assert!(parse_size("8GiB").is_err());
        assert!(parse_size("lots").is_err());
        let a = Args::try_parse_from(["record", "-a"]).unwrap();
        assert_eq!(a.buffer_size.as_u64(), 16 << 20);
    }

    #[test]
    fn durations_are_human() {
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        assert_eq!(parse_duration_or_zero("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration_or_zero("0s"), Ok(Duration::ZERO));
        assert!(parse_duration_or_zero("-1ms").is_err());
    }
}
