//! The analyzer: table, then query, then report.
//!
//! - [`capture`] finds and checks the capture directories.
//! - [`tables`] registers their tables with DataFusion, with [`narrow`]'s filters,
//!   [`frames`]' names from debug files and [`udfs`]'s functions.
//! - [`queries`] holds the canned SQL; [`summary`] and [`diff`] build theirs.
//! - [`output`] renders results for terminals and tickets; [`report`] writes the incident
//!   report.
/// `eprintln!`, except that a stderr that cannot be written (closed, full, a pipe whose
/// reader left) is ignored: a warning lost must not become a panic.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

pub mod capture;
pub mod checked_sum;
pub mod cli;
pub mod cluster;
pub mod constant_keys;
pub mod contained;
pub mod csv_out;
pub mod damage;
pub mod diff;
pub mod files;
pub mod frames;
pub mod json_floats;
pub mod json_shape;
pub mod live_recorder;
pub use tracepost_store::location;
pub mod narrow;
pub mod needs;
pub mod output;
pub mod partitions;
pub mod percentiles;
pub mod planner;
pub mod private_file;
pub mod queries;
pub mod redact;
pub mod report;
pub mod spinner;
pub mod sql_guard;
pub mod sql_values;
pub mod summary;
pub mod tables;
pub mod timestamp_range;
pub mod trace_export;
pub mod udfs;
pub mod unmatched;
pub mod waiting;
pub mod waker;

use std::{
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use datafusion::{
    arrow::array::{Array as _, RecordBatch, StringArray},
    arrow::datatypes::{DataType, Schema},
    prelude::{DataFrame, SessionContext},
};

use crate::{
    capture::Capture,
    cli::{Cli, Command, NarrowArgs, OutputArgs, ReadArgs},
    location::Location,
};

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::List => {
            let mut out = std::io::stdout().lock();
            for q in queries::all() {
                let params = if q.params.is_empty() {
                    String::new()
                } else {
                    let p: Vec<String> = q.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!(" [{}]", p.join(" "))
                };
                writeln!(out, "{:<20} {}{params}", q.name, q.description)
                    .context("cannot write to stdout")?;
            }
            Ok(())
        }
        Command::Query(q) => {
            q.out.format()?;
            let (paths, query) = q.split()?;
            let canned = queries::resolve(query)?;
            let sql = canned.render(&q.params)?;
            sql_guard::check(&sql)?;
            let Opened { ctx, captures, .. } = open(&paths, &q.narrow, &q.read).await?;
            warn_same_recording(&captures);
            let answer = async {
                needs::check(&ctx, &captures, &canned.name, canned.needs).await?;
                match counted_in(&sql) {
                    Counted::LeftOut => {
                        let why = "this query reads the recorded calls only (`summary`, \
                                   `errors` and `timeline` count them all)";
                        warn_counted(&ctx, why).await?;
                    }
                    Counted::NotInPercentiles => {
                        let why = "this query counts them, but its percentiles are of the \
                                   recorded calls only";
                        warn_counted(&ctx, why).await?;
                    }
                    Counted::Included => {}
                }
                if per_process(&sql) {
                    warn_reused_pids(&ctx, &captures).await?;
                }
                emit(&q.out, plan_sql(&ctx, &sql).await?, &captures).await
            };
            damage_named(answer.await, &captures).await
        }
        Command::Summary(s) => {
            s.out.format()?;
            let Opened { ctx, captures, .. } = open(&s.captures, &s.narrow, &s.read).await?;
            warn_same_recording(&captures);
            let sql = summary::sql(s.by, s.captures.len() > 1);
            let answer = async {
                // `wait4 avg_ns 14764026 max_ns 571` under `--failed` read as a contradiction.
                warn_counted(&ctx, summary::counted_note(s.by)).await?;
                if matches!(s.by, summary::By::Process | summary::By::Thread) {
                    warn_reused_pids(&ctx, &captures).await?;
                }
                emit(&s.out, plan_sql(&ctx, &sql).await?, &captures).await
            };
            damage_named(answer.await, &captures).await
        }
        Command::Report(r) => {
            let Opened { ctx, captures, .. } = open(&r.captures, &r.narrow, &r.read).await?;
            warn_same_recording(&captures);
            refuse_inside(&r.output, &captures)?;
            let options = report::model::Options {
                redact: !r.no_redact,
                narrowed: r.narrow.describe(),
            };
            damage_named(
                report::write(&ctx, &captures, &r.output, options).await,
                &captures,
            )
            .await
        }
        Command::Export(x) => {
            let Opened { ctx, captures, .. } = open(&x.captures, &x.narrow, &x.read).await?;
            warn_same_recording(&captures);
            // The trace streams while the capture is read: it must not be one of its files.
            refuse_inside(&x.perfetto, &captures)?;
            let export = trace_export::write(&ctx, &captures, &x.perfetto, !x.no_redact);
            let exported = unless_interrupted(export, &x.perfetto).await;
            let written = damage_named(exported, &captures).await?;
            crate::say!(
                "export: {} calls as slices, {} intervals of lost calls, {} wakeup arrows: {}",
                written.slices,
                written.lost_intervals,
                written.wakeups,
                x.perfetto.display()
            );
            Ok(())
        }
        Command::Scheduler(s) => {
            cluster::log_to_stderr();
            cluster::scheduler::run(s.bind).await
        }
        Command::Executor(e) => {
            cluster::log_to_stderr();
            let tasks = e.tasks.map_or_else(
                || std::thread::available_parallelism().map_or(1, |n| n.get()),
                |n| n.get(),
            );
            cluster::executor::run(cluster::executor::Options {
                scheduler: e.scheduler,
                bind: e.bind,
                flight_port: e.port,
                grpc_port: e.grpc_port,
                work_dir: e.work_dir,
                tasks,
            })
            .await
        }
        Command::Diff(d) => {
            d.out.format()?;
            if d.baseline == d.incident {
                anyhow::bail!("diff: the baseline and the incident are the same capture");
            }
            let both = open(
                &[d.baseline.clone(), d.incident.clone()],
                &d.narrow,
                &d.read,
            )
            .await?;
            // Each side's span reads its calls too: damage there is named like any other
            // (helper-93: a torn page gave a bare checksum error).
            let answer = async {
                let mut windows = Vec::new();
                for (c, n) in both.captures.iter().zip(&both.narrows) {
                    let views = d.read.cluster.is_none();
                    let (first, last) = tables::calls_span(&both.ctx, c, views).await?;
                    let run_ends = tables::unfinished_run_ends(&both.ctx, c, views).await?;
                    windows.push(diff::Window {
                        capture: c.name(),
                        since_ns: n.since,
                        until_ns: n.until,
                        first_ns: first,
                        last_ns: last,
                        run_ends,
                    });
                }
                warn_counted(
                    &both.ctx,
                    "diff's calls and time count them, but its percentiles are of the \
                     recorded calls only",
                )
                .await?;
                let sides = [
                    ("baseline", &*both.captures[0].name()),
                    ("incident", &*both.captures[1].name()),
                ];
                diff::warn_empty_sides(&both.ctx, sides).await?;
                diff::warn_unknown_spans(&both.ctx, sides).await?;
                let frame = diff::plan(
                    &both.ctx,
                    &both.captures[0].name(),
                    &both.captures[1].name(),
                    d.limit,
                    &windows,
                )
                .await?;
                emit(&d.out, frame, &both.captures).await
            };
            damage_named(answer.await, &both.captures).await
        }
    }
}

/// Checks the captures and registers their tables. Each file that `--skip-bad-files`
/// leaves out is named on stderr, with what is wrong with it.
pub async fn open(paths: &[PathBuf], narrow: &NarrowArgs, read: &ReadArgs) -> Result<Opened> {
    if read.cluster.is_some() && !read.debug_dirs.is_empty() {
        anyhow::bail!(
            "--debug-dir names frames from this machine's files, which a cluster's executors \
             do not see; run without --cluster"
        );
    }
    let mut roots: Vec<(String, Location, &PathBuf)> = Vec::new();
    for path in paths {
        let root = Location::parse(path)?;
        let identity = root.identity();
        if let Some((_, _, first)) = roots.iter().find(|(id, ..)| *id == identity) {
            // Each as it was typed: the names of both can be one spelling (a trailing `/`).
            let typed = |p: &PathBuf| {
                output::visible(&location::without_secrets(&p.to_string_lossy())).into_owned()
            };
            anyhow::bail!(
                "capture {} is given twice (as {} too); each capture counts once",
                typed(path),
                typed(first)
            );
        }
        roots.push((identity, root, path));
    }
    let mut captures = Vec::new();
    for (_, root, _) in roots {
        match Capture::open(root, read.skip_bad_files).await {
            Ok(c) => captures.push(c),
            Err(e @ capture::CaptureError::NothingReadable { .. }) => {
                if let capture::CaptureError::NothingReadable { skipped, .. } = &e {
                    warn_skipped(skipped);
                }
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    for c in &captures {
        warn_skipped(c.skipped());
    }
    if let Some(scheduler) = &read.cluster {
        cluster::client::ready(scheduler, read.cluster_wait).await?;
    }
    // These read the small tables before any query: damage met here is named as a
    // query's is.
    let (ctx, narrows) =
        damage_named(tables::context(&captures, narrow, read).await, &captures).await?;
    damage_named(
        warn_whole_intervals(&ctx, &captures, &narrows).await,
        &captures,
    )
    .await?;
    let views = read.cluster.is_none();
    damage_named(warn_unfinished(&ctx, &captures, views).await, &captures).await?;
    damage_named(
        warn_window_outside(&ctx, &captures, &narrows, views).await,
        &captures,
    )
    .await?;
    Ok(Opened {
        ctx,
        captures,
        narrows,
    })
}

/// Refuses an output file inside a local capture: written while the capture is read, it
/// could empty one of the files being read, or be taken for part of the capture later.
fn refuse_inside(output: &Path, captures: &[Capture]) -> Result<()> {
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(dir) = dir.canonicalize() else {
        return Ok(()); // Creating the file will say what is wrong with the directory.
    };
    for c in captures {
        if let Location::Local(root) = c.location()
            && let Ok(root) = root.canonicalize()
            && dir.starts_with(&root)
        {
            anyhow::bail!(
                "output {}: inside capture {}; write it elsewhere",
                output.display(),
                c.name()
            );
        }
    }
    Ok(())
}

/// A query that failed on a file torn inside its data (its footer whole, so it passed the
/// checks) names that file; the reader's own message names none.
async fn damage_named<T>(result: Result<T>, captures: &[Capture]) -> Result<T> {
    let Err(e) = result else { return result };
    // A file checked and then gone: a record still writing the capture deleted it
    // (`--max-size`), which is not damage, and `--skip-bad-files` cannot help.
    if let Some(gone) = damage::vanished(captures) {
        return Err(anyhow::anyhow!(
            "{}: deleted while this read the capture (a record still writing it with \
             --max-size deletes its oldest files); run it again, or on a copy",
            output::visible(&gone)
        ));
    }
    if !damage::from_reading(&e) {
        return Err(e);
    }
    match damage::find(captures).await {
        Some((file, why)) => Err(anyhow::anyhow!(
            "{}: its data is damaged ({}); move the file out of the capture to read the rest",
            output::visible(&file),
            files::one_line(&why)
        )),
        None => Err(e),
    }
}

/// Warns when two captures given hold the same recording: a copy, or one directory
/// reached two ways (a bind mount, a local copy of what is also in a bucket), which no
/// comparison of paths catches. Each run of `record` names its `capture` file by its own
/// id. Combined, such captures count every call twice; `diff` of a capture against its
/// copy is allowed, and says nothing.
fn warn_same_recording(captures: &[Capture]) {
    let ids = |c: &Capture| -> Vec<String> {
        c.files(tracepost_schema::capture::TABLE)
            .iter()
            .filter_map(|f| f.url.path_segments()?.next_back().map(str::to_string))
            .collect()
    };
    for (i, a) in captures.iter().enumerate() {
        let mine = ids(a);
        for b in &captures[i + 1..] {
            if let Some(id) = ids(b).into_iter().find(|id| mine.contains(id)) {
                crate::say!(
                    "warning: captures {} and {} hold the same recording ({}); its calls \
                     are counted once for each",
                    a.name(),
                    b.name(),
                    id.trim_end_matches(".parquet")
                );
            }
        }
    }
}

/// The kernel counts what it does not record (`aggregates`) in intervals of about a
/// second, and a time window keeps an interval it overlaps whole: a 100 ms window could
/// show a whole second's counts. Rows cannot be split, so each capture whose window cuts
/// through an interval says how many calls came in with such intervals.
async fn warn_whole_intervals(
    ctx: &SessionContext,
    captures: &[Capture],
    narrows: &[narrow::Narrow],
) -> Result<()> {
    for (c, n) in captures.iter().zip(narrows) {
        let mut straddle = Vec::new();
        if let Some(since) = n.since {
            straddle.push(format!(
                "arrow_cast(interval_start, 'Int64') * 1000 < {since}"
            ));
        }
        if let Some(until) = n.until {
            straddle.push(format!(
                "arrow_cast(interval_end, 'Int64') * 1000 > {until}"
            ));
        }
        if straddle.is_empty() {
            continue;
        }
        let sql = format!(
            "SELECT CAST(coalesce(sum(calls), 0) AS BIGINT) AS calls FROM aggregates
             WHERE capture = {} AND ({})",
            sql_values::string_literal(&c.name()),
            straddle.join(" OR ")
        );
        let (_, batches) = run_sql(ctx, &sql).await?;
        let calls = batches
            .first()
            .and_then(|b| sql_values::int64(b, 0, 0))
            .unwrap_or(0);
        if calls > 0 {
            crate::say!(
                "warning: capture {}: {calls} calls the kernel counted without recording them \
                 (aggregates) lie in intervals that cross --since/--until, and are counted \
                 whole: counts can include calls from up to an interval (about 1 s) outside \
                 the window",
                output::visible(&c.name())
            );
        }
    }
    Ok(())
}

/// A window that misses a capture's recording altogether (a wrong day, or a local time
/// taken for UTC) answers every query with nothing, which reads like "nothing happened":
/// each such capture says when it was recording.
async fn warn_window_outside(
    ctx: &SessionContext,
    captures: &[Capture],
    narrows: &[narrow::Narrow],
    views: bool,
) -> Result<()> {
    for (c, n) in captures.iter().zip(narrows) {
        if n.since.is_none() && n.until.is_none() {
            continue;
        }
        // A window with no time in it is said to be one already.
        if let (Some(since), Some(until)) = (n.since, n.until)
            && since >= until
        {
            continue;
        }
        let runs = tables::runs(ctx, c, views).await?;
        let Some(&(started, _)) = runs.iter().min_by_key(|(s, _)| *s) else {
            continue;
        };
        // One recorder at a time writes a directory, so every run's calls come before the
        // next run's start: the recording ends where its last run ended. That run without
        // an end (killed, or still recording) may hold calls after any time.
        let ended = runs.iter().max_by_key(|(s, _)| *s).and_then(|(_, e)| *e);
        let before = n.until.is_some_and(|until| until <= started);
        let after = matches!((n.since, ended), (Some(since), Some(ended)) if since >= ended);
        if before || after {
            crate::say!(
                "warning: capture {}: the window {} lies outside its recording ({} to {}): \
                 it holds none of its calls",
                output::visible(&c.name()),
                n.describe_window(),
                narrow::utc(started),
                ended
                    .map(narrow::utc)
                    .unwrap_or_else(|| "its end unknown".into())
            );
        } else if let (None, Some(since)) = (ended, n.since) {
            // Its end is not known, but its last call is: a window a day after a killed
            // capture read as a quiet host. Before any narrowing, and from the files'
            // statistics where they have them.
            if let Some(last) = tables::last_entry(ctx, c, views).await?
                && since > last
            {
                crate::say!(
                    "warning: capture {}: the window {} begins after its last call ({}): \
                     it holds none of its calls (its recorder did not finish: killed, or \
                     still recording)",
                    output::visible(&c.name()),
                    n.describe_window(),
                    narrow::utc(last),
                );
            }
        }
    }
    Ok(())
}

/// How an answer stands to the calls the kernel only counted (`--min-duration`,
/// `--failed`, a full ring), judged from its SQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counted {
    /// It reads `syscalls` without `aggregates`: they are left out.
    LeftOut,
    /// It reads both, and computes percentiles: in its counts, not in its percentiles,
    /// whose durations were never sent one by one (`timeline`'s p99).
    NotInPercentiles,
    /// Counted in, or not about calls.
    Included,
}

pub(crate) fn counted_in(sql: &str) -> Counted {
    let sql = sql.to_ascii_lowercase();
    match (sql.contains("syscalls"), sql.contains("aggregates")) {
        (true, false) => Counted::LeftOut,
        (true, true) if sql.contains("percentile") => Counted::NotInPercentiles,
        _ => Counted::Included,
    }
}

/// Names each capture with calls the kernel only counted, and how many, where the answer
/// leaves them out (`why`): a `--min-duration` capture's `latency-by-process` said 4 calls
/// where 3,809 were made, and nothing said so.
async fn warn_counted(ctx: &SessionContext, why: &str) -> Result<()> {
    let (_, batches) = run_sql(
        ctx,
        "SELECT capture, CAST(sum(calls) AS BIGINT) AS calls FROM aggregates \
         GROUP BY capture HAVING sum(calls) > 0 ORDER BY capture",
    )
    .await?;
    for b in &batches {
        for (row, name) in sql_values::texts(b, 0)?.into_iter().enumerate() {
            let calls = sql_values::int64(b, 1, row).unwrap_or(0);
            crate::say!(
                "warning: capture {}: {calls} calls were counted, not recorded (record \
                 --min-duration, --failed, or a full ring); {why}",
                output::visible(&name.unwrap_or_default()),
            );
        }
    }
    Ok(())
}

/// Whether an answer is grouped by process: by `pid`, which the kernel gives again.
pub(crate) fn per_process(sql: &str) -> bool {
    static GROUPED_BY_PID: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?is)\bgroup\s+by\b[^;]*?\bpid\b").expect("a valid pattern")
    });
    GROUPED_BY_PID.is_match(sql)
}

/// How many pids given again are named, at most; the rest are counted.
const REUSED_PIDS_NAMED: usize = 3;

/// Names each pid the kernel gave to a second process within one capture, where the
/// answer is grouped by pid: the rows for it add up both processes (helper-90: `sleep`'s
/// 300 ms wait shown as `ls`'s), and nothing said so. `processes` has a row for each.
/// The join costs 2.5-4 ms (its plan, even over no rows), on `errors` too: asked only
/// where a capture's `processes` files hold two rows or more, from their footers.
async fn warn_reused_pids(ctx: &SessionContext, captures: &[Capture]) -> Result<()> {
    let can_repeat = |c: &Capture| {
        let rows: u64 = c
            .files(tracepost_schema::processes::TABLE)
            .iter()
            .map(|f| f.rows)
            .sum();
        rows >= 2
    };
    if !captures.iter().any(can_repeat) {
        return Ok(());
    }
    let (_, batches) = run_sql(
        ctx,
        "SELECT a.capture, CAST(a.pid AS BIGINT) AS reused_pid, first_value(a.comm ORDER BY a.start_ts) AS first, \
                last_value(b.comm ORDER BY b.start_ts) AS then \
         FROM processes a JOIN processes b ON a.capture = b.capture AND a.pid = b.pid \
         WHERE a.exit_ts IS NOT NULL AND b.start_ts > a.exit_ts \
         GROUP BY a.capture, a.pid ORDER BY a.capture, a.pid",
    )
    .await?;
    let mut reused = Vec::new();
    for b in &batches {
        let captures = sql_values::texts(b, 0)?;
        let firsts = sql_values::texts(b, 2)?;
        let thens = sql_values::texts(b, 3)?;
        for row in 0..b.num_rows() {
            reused.push((
                captures[row].clone().unwrap_or_default(),
                sql_values::int64(b, 1, row).unwrap_or_default(),
                firsts[row].clone().unwrap_or_default(),
                thens[row].clone().unwrap_or_default(),
            ));
        }
    }
    for (capture, pid, first, then) in reused.iter().take(REUSED_PIDS_NAMED) {
        crate::say!(
            "warning: capture {}: pid {pid} was given to more than one process ({}, then \
             {}): this answer, grouped by pid, adds them up; `processes` has a row for \
             each, to tell them apart by `ts`",
            output::visible(capture),
            output::visible(first),
            output::visible(then),
        );
    }
    if reused.len() > REUSED_PIDS_NAMED {
        crate::say!(
            "warning: {} more pids were given to more than one process likewise",
            reused.len() - REUSED_PIDS_NAMED
        );
    }
    Ok(())
}

/// A capture whose recorder did not finish answers every query with what it holds, which
/// is less than what happened: a `record` killed with `kill -9` (or still running) leaves
/// out its last `--rotate` interval, and one that stopped early (a full disk) everything
/// from then on. The capture row says which; this says it where the answer is read, once
/// per run, since one directory can hold runs that ended each their own way. A directory
/// with no capture row at all had its recorder killed as it started.
async fn warn_unfinished(ctx: &SessionContext, captures: &[Capture], views: bool) -> Result<()> {
    for c in captures {
        // A capture file that was skipped is said already, and gives a row of NULLs.
        if c.files(tracepost_schema::capture::TABLE).is_empty() && c.skipped().is_empty() {
            crate::say!(
                "warning: capture {}: it has no capture row: its recorder was killed as it \
                 started (or is starting now), and calls may be missing",
                output::visible(&c.name())
            );
        }
    }
    let mut runs = runs_of(captures);
    // A run once, though a copy of its capture file beside it gives its row twice (said
    // already, by the files' check): its counts must not double.
    let mut seen = std::collections::HashSet::new();
    runs.retain(|r| seen.insert((r.capture.clone(), r.id.clone())));
    let mut per_capture = std::collections::HashMap::<Option<String>, usize>::new();
    for r in &runs {
        *per_capture.entry(r.capture.clone()).or_default() += 1;
    }
    // Calls deleted by `--max-size`, per capture, in the order captures were given.
    let deleted = per_capture_sum(&runs, |r| r.deleted);
    warn_short_copy(captures, &runs, &deleted);
    warn_short_counts(ctx, captures, &runs, views).await?;
    for (capture, n) in deleted {
        crate::say!(
            "warning: capture {}: --max-size deleted {n} recorded calls with its oldest \
             files; what is left is the newest, and counts over the whole capture are short \
             by that many",
            output::visible(capture.as_deref().unwrap_or_default())
        );
    }
    for (capture, n) in per_capture_sum(&runs, |r| r.lost_process) {
        crate::say!(
            "warning: capture {}: {n} process events (fork, exec, exit) were lost because \
             its recorder's buffer was full: `processes` lacks some rows, exits and exit \
             codes",
            output::visible(capture.as_deref().unwrap_or_default())
        );
    }
    // By capture, then by start as text; a run with no start last, as SQL sorts NULLs.
    runs.sort_by(|a, b| {
        (&a.capture, a.started.is_none(), &a.started).cmp(&(
            &b.capture,
            b.started.is_none(),
            &b.started,
        ))
    });
    // The newest call each capture's copy holds, and its latest run, which those calls
    // end: an earlier run's calls end where the next run's begin.
    let newest_call: std::collections::HashMap<Option<String>, Option<i64>> = captures
        .iter()
        .map(|c| {
            let newest = c
                .files(tracepost_schema::syscalls::TABLE)
                .iter()
                .filter_map(|f| f.newest_us)
                .max();
            (Some(c.name()), newest)
        })
        .collect();
    let mut latest_run = std::collections::HashMap::<Option<String>, Option<String>>::new();
    for r in &runs {
        latest_run.insert(r.capture.clone(), r.started.clone());
    }
    // A recorder still running here holds its capture's lock: its latest run is said to be
    // unfinished because it is going on, not as one that may have been killed (helper-97).
    let live: std::collections::HashMap<Option<String>, u32> = captures
        .iter()
        .filter_map(|c| match c.location() {
            Location::Local(path) => live_recorder::holder(path).map(|pid| (Some(c.name()), pid)),
            _ => None,
        })
        .collect();
    for r in runs {
        if r.finished() {
            continue;
        }
        let mut name = output::visible(r.capture.as_deref().unwrap_or_default()).into_owned();
        // Named by its start only where the directory holds more than this run.
        if per_capture[&r.capture] > 1 {
            name = format!(
                "{name} (the run started {})",
                r.started.as_deref().unwrap_or_default()
            );
        }
        let Some(why) = r.stopped_early else {
            // What is missing is after the newest call the copy holds: the last --rotate
            // interval of a recorder killed, and more of a copy whose files were never
            // shipped. Said as "the last interval" alone, a bucket that lacked nine tenths
            // of the calls read as one that lacked a second of them (helper-91).
            let latest = latest_run.get(&r.capture) == Some(&r.started);
            let newest = match latest {
                true => newest_call.get(&r.capture).copied().flatten(),
                false => None,
            };
            if let Some(pid) = live.get(&r.capture).filter(|_| latest) {
                let after = newest.map_or(String::new(), |us| {
                    format!(
                        " after {} (the newest its files hold)",
                        narrow::utc(us.saturating_mul(1000))
                    )
                });
                crate::say!(
                    "warning: capture {name}: its recorder is still running (pid {pid}): its \
                     calls{after} are not in its files yet, those of its current --rotate \
                     interval; `events` and `lost_events` are NULL until it ends"
                );
                continue;
            }
            match newest {
                Some(us) => crate::say!(
                    "warning: capture {name}: its recorder did not finish (killed, or still \
                     running): its calls after {} (the newest this copy holds) are \
                     missing: its last --rotate interval, and more where files were not \
                     yet shipped or copied; `events` and `lost_events` are NULL",
                    narrow::utc(us.saturating_mul(1000))
                ),
                None => crate::say!(
                    "warning: capture {name}: its recorder did not finish (killed, or still \
                     running): calls of its last --rotate interval are missing, and \
                     `events` and `lost_events` are NULL"
                ),
            }
            continue;
        };
        // `ended` is when recording stopped; the target ran on without it.
        let stopped = r.ended.map_or(String::new(), |t| format!(" at {t}"));
        let from = r.incomplete_from.unwrap_or_else(|| "then".to_string());
        crate::say!(
            "warning: capture {name}: recording stopped early{stopped}, and calls from \
             {from} on are missing (`events` and `lost_events` are NULL): {}",
            output::visible(&why)
        );
    }
    Ok(())
}

/// Each run's row of the captures' `capture` files, in the order of the captures and
/// their files: decoded as the files were checked, each value as SQL's `CAST(... AS
/// VARCHAR)` writes it (a time as the contract's type of today, whatever the file's
/// version). No SQL: its plan and scan were two thirds of `analyze`'s fixed cost on a
/// small capture.
fn runs_of(captures: &[Capture]) -> Vec<Run> {
    use tracepost_schema::capture as c;
    let contract = c::schema();
    let mut runs = Vec::new();
    let batches = captures.iter().flat_map(|capture| {
        capture
            .files(c::TABLE)
            .iter()
            .flat_map(move |f| f.capture_rows.iter().map(move |b| (capture, b)))
    });
    for (capture, b) in batches {
        let text = |name: &str| -> Option<StringArray> {
            let column = b.column_by_name(name)?;
            let as_today = match contract.field_with_name(name) {
                Ok(f) if matches!(f.data_type(), DataType::Timestamp(..)) => {
                    datafusion::arrow::compute::cast(column, f.data_type()).ok()?
                }
                _ => column.clone(),
            };
            let texts = datafusion::arrow::compute::cast(&as_today, &DataType::Utf8).ok()?;
            texts.as_any().downcast_ref::<StringArray>().cloned()
        };
        let [
            started,
            ended,
            stopped_early,
            incomplete_from,
            deleted,
            events,
            lost_process,
            lost,
            id,
        ] = files::RUN_COLUMNS.map(text);
        let value = |column: &Option<StringArray>, row: usize| {
            column
                .as_ref()
                .filter(|c| c.is_valid(row))
                .map(|c| c.value(row).to_string())
        };
        let number = |column: &Option<StringArray>, row: usize| {
            value(column, row).and_then(|n| n.parse::<u64>().ok())
        };
        for row in 0..b.num_rows() {
            let Some(id) = value(&id, row) else {
                continue;
            };
            runs.push(Run {
                capture: Some(capture.name()),
                started: value(&started, row),
                ended: value(&ended, row),
                stopped_early: value(&stopped_early, row),
                incomplete_from: value(&incomplete_from, row),
                deleted: number(&deleted, row),
                events: number(&events, row),
                lost_process: number(&lost_process, row),
                lost: number(&lost, row),
                id: Some(id),
            });
        }
    }
    runs
}

/// One recorder run's row of the `capture` table, as the warnings read it.
struct Run {
    capture: Option<String>,
    started: Option<String>,
    ended: Option<String>,
    stopped_early: Option<String>,
    incomplete_from: Option<String>,
    deleted: Option<u64>,
    events: Option<u64>,
    lost_process: Option<u64>,
    lost: Option<u64>,
    id: Option<String>,
}

impl Run {
    fn finished(&self) -> bool {
        self.ended.is_some() && self.stopped_early.is_none()
    }
}

/// `count` summed over each capture's runs, for the captures where it is above 0, sorted.
fn per_capture_sum(
    runs: &[Run],
    count: impl Fn(&Run) -> Option<u64>,
) -> Vec<(Option<String>, u64)> {
    let mut sums = Vec::<(Option<String>, u64)>::new();
    for r in runs {
        if let Some(n) = count(r).filter(|&n| n > 0) {
            match sums.iter_mut().find(|(c, _)| *c == r.capture) {
                Some((_, total)) => *total += n,
                None => sums.push((r.capture.clone(), n)),
            }
        }
    }
    sums.sort();
    sums
}

/// The runs of capture `c`, where it has some, every one finished, and `--skip-bad-files`
/// left none of its files out: only then is what its recorders wrote known, and what its
/// files hold comparable with it.
fn finished_runs<'a>(c: &Capture, runs: &'a [Run]) -> Option<Vec<&'a Run>> {
    let name = c.name();
    let mine: Vec<&Run> = runs
        .iter()
        .filter(|r| r.capture.as_deref() == Some(name.as_str()))
        .collect();
    let known = !mine.is_empty() && mine.iter().all(|r| r.finished()) && c.skipped().is_empty();
    known.then_some(mine)
}

/// A copy that holds fewer calls than its recorder wrote and did not delete: files left
/// behind by a copy, lost by a store, or deleted by `--max-size` after `--upload` shipped
/// them (the store holds them; this directory does not). Or more: a file of another
/// capture copied in, whose calls every answer would count without a word. Only where
/// every run of the capture finished, since only then is what it wrote known; and not
/// where `--skip-bad-files` left files out, which is said already.
fn warn_short_copy(captures: &[Capture], runs: &[Run], deleted: &[(Option<String>, u64)]) {
    for c in captures {
        let name = c.name();
        let Some(mine) = finished_runs(c, runs) else {
            continue;
        };
        let Some(written) = mine.iter().map(|r| r.events).sum::<Option<u64>>() else {
            continue;
        };
        let gone = deleted
            .iter()
            .find(|(d, _)| d.as_deref() == Some(name.as_str()))
            .map_or(0, |(_, n)| *n);
        // A copy beside a file is named already (`holds the same rows as`), and is not
        // another recorder's: counted once here.
        let mut seen = std::collections::HashSet::new();
        let held: u64 = c
            .files(tracepost_schema::syscalls::TABLE)
            .iter()
            .filter(|f| f.fingerprint.as_deref().is_none_or(|p| seen.insert(p)))
            .map(|f| f.rows)
            .sum();
        let expected = written.saturating_sub(gone);
        if held > expected {
            // A recorder never writes more than it counts: these rows came from elsewhere,
            // most often a file of another capture (or another run) copied in.
            crate::say!(
                "warning: capture {}: it holds {held} calls, {} more than the {expected} its \
                 recorder kept: its syscalls/ holds files another recorder wrote (copied in \
                 from another capture?), and answers count their calls too",
                output::visible(&name),
                held - expected
            );
        } else if held < expected {
            crate::say!(
                "warning: capture {}: it holds {held} of the {expected} calls its recorder \
                 kept; {} are in files missing here (not copied, lost by a store, or deleted \
                 by --max-size once --upload had shipped them): counts over the whole capture \
                 are short by that many",
                output::visible(&name),
                expected - held
            );
        }
    }
}

/// A copy whose `aggregates` count fewer lost calls than its recorder lost: files of it
/// left behind. Every call lost is counted there ("Nothing lost silently"), so `summary`
/// read 1.1M getppid calls where 11.4M were made, and nothing said so. Only where every
/// run finished and lost some (the capture row's `lost_events`), and no file was skipped.
async fn warn_short_counts(
    ctx: &SessionContext,
    captures: &[Capture],
    runs: &[Run],
    views: bool,
) -> Result<()> {
    for c in captures {
        let Some(mine) = finished_runs(c, runs) else {
            continue;
        };
        let Some(lost) = mine
            .iter()
            .map(|r| r.lost)
            .sum::<Option<u64>>()
            .filter(|&n| n > 0)
        else {
            continue;
        };
        let held = tables::lost_counted(ctx, c, views).await?;
        if held < lost {
            crate::say!(
                "warning: capture {}: its aggregates count {held} of the {lost} calls its \
                 recorder lost (and counted there); {} are in aggregates files missing here \
                 (not copied, or lost by a store): counts and errors are short by that many",
                output::visible(&c.name()),
                lost - held
            );
        }
    }
    Ok(())
}

fn warn_skipped(files: &[capture::BadFile]) {
    for bad in files {
        crate::say!("warning: skipped {bad}");
    }
}

/// The captures, checked, and a session over their tables.
pub struct Opened {
    pub ctx: SessionContext,
    pub captures: Vec<Capture>,
    /// Each capture's narrowing, with times resolved.
    pub narrows: Vec<narrow::Narrow>,
}

/// Plans SQL that only reads: no COPY, CREATE, SET or other statement that writes or
/// changes state, since analyze often runs as root.
pub async fn plan_sql(ctx: &SessionContext, sql: &str) -> Result<DataFrame> {
    let options = datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    ctx.sql_with_options(sql, options)
        .await
        .map_err(tables::sql_error)
}

/// Runs SQL to completion, with a spinner on a terminal when it takes a while.
pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<(Schema, Vec<RecordBatch>)> {
    let spinner = spinner::Spinner::start();
    let df = plan_sql(ctx, sql).await?;
    let schema = df.schema().as_arrow().clone();
    let batches = df.collect().await.map_err(tables::sql_error)?;
    spinner.finish();
    Ok((schema, batches))
}

/// Writes a query's results as they come, so that the rows of a whole capture need no
/// more memory than a batch. Output meant to be shared (Markdown, or a file) has its
/// secrets masked unless `--no-redact`. A file is never inside a capture being read.
async fn emit(out: &OutputArgs, frame: DataFrame, captures: &[Capture]) -> Result<()> {
    let Some(path) = &out.output else {
        let stdout = std::io::stdout().lock();
        return stream(out, frame, stdout).await.map(drop);
    };
    refuse_inside(path, captures)?;
    // Written beside `path` and renamed over it once whole: a query that fails midway
    // leaves an existing file as it was, and no file holding half an answer.
    // Ctrl-C or SIGTERM while it streams must not leave the partial answer beside it.
    let mut pending = private_file::Pending::new(path)?;
    let work = async {
        let mut file = stream(out, frame, BufWriter::new(pending.file())).await?;
        file.flush()
            .with_context(|| format!("cannot write {}", path.display()))
    };
    unless_interrupted(work, path).await?;
    Ok(pending.commit()?)
}

/// `work`, or an error if Ctrl-C or SIGTERM comes first. Dropping `work` drops the
/// [`private_file::Pending`] it writes, which removes the partial answer.
async fn unless_interrupted<T>(work: impl Future<Output = Result<T>>, path: &Path) -> Result<T> {
    tokio::select! {
        done = work => done,
        _ = interrupted() => Err(anyhow::anyhow!(
            "interrupted; {} is left as it was",
            path.display()
        )),
    }
}

/// Ctrl-C or SIGTERM.
async fn interrupted() {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut term) = signal(SignalKind::terminate()) else {
        let _ = tokio::signal::ctrl_c().await;
        return;
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

/// Runs `frame` and writes each batch to `out` in the format asked.
async fn stream<W: Write>(out: &OutputArgs, frame: DataFrame, to: W) -> Result<W> {
    use futures::StreamExt as _;
    let format = out.format()?;
    let redact = (format == output::Format::Markdown || out.output.is_some()) && !out.no_redact;
    let schema = frame.schema().as_arrow().clone();
    let shown = match redact {
        true => redact::batches(&schema, &[])?.0,
        false => schema.clone(),
    };
    let mut spinner = Some(spinner::Spinner::start());
    let mut batches = frame.execute_stream().await.map_err(tables::sql_error)?;
    let mut sink = output::Sink::new(to, format, std::sync::Arc::new(shown))?;
    while let Some(batch) = batches.next().await {
        let batch = batch.map_err(tables::sql_error)?;
        if let Some(s) = spinner.take() {
            s.finish();
        }
        match redact {
            true => {
                for masked in redact::batches(&schema, std::slice::from_ref(&batch))?.1 {
                    sink.push(&masked)?;
                }
            }
            false => sink.push(&batch)?,
        }
    }
    if let Some(s) = spinner {
        s.finish();
    }
    sink.finish()
}
