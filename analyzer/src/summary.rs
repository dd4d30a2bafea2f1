//! `analyze summary`: strace -c done right. Per group: calls, errors, time, percentiles,
//! and the group's share of the total time.
//!
//! Calls, errors and total time include the calls the kernel counted without recording
//! them (the `aggregates` table: lost to a full ring, or left out by `--min-duration` or
//! `--failed`), so they stay exact whatever happened to detail; those the kernel could
//! count but not group (its table was full) have no pid or syscall, and are a row whose
//! key is NULL. Percentiles and the maximum
//! are exact over the calls recorded one by one. The average is over the calls whose time
//! is known: `exit_group` never returns, and calls lost to a full ring may have no time,
//! so dividing by every call made averages low, and a group with no time showed 0.

/// What `summary` groups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum By {
    Syscall,
    Process,
    Thread,
    File,
    Errno,
}

/// Columns of the detail side, one per statistic, shared by every grouping.
const DETAIL_STATS: &str = "count(*) AS calls,
           count(duration_ns) AS timed,
           count(errno) AS errors,
           sum(duration_ns) AS total_ns,
           latency_percentiles(duration_ns) AS q,
           max(duration_ns) AS max_ns";

/// The calls counted past the kernel's table of groups (no pid) have no known outcome:
/// their group's errors are NULL, not 0.
const SHED_STATS: &str = "sum(calls) AS calls,
           sum(CASE WHEN total_ns IS NULL THEN 0 ELSE calls END) AS timed,
           sum(CASE WHEN failed THEN calls WHEN pid IS NULL THEN NULL ELSE 0 END) AS errors,
           sum(total_ns) AS total_ns";

/// The SQL of one summary. Over several captures, processes and threads are each one
/// capture's (a pid on one host is not the same process as on another), so the capture is
/// part of their key.
pub fn sql(by: By, several_captures: bool) -> String {
    // (key columns in the output, detail select, detail filter, shed select or None)
    let (keys, detail_keys, detail_where, shed_keys, shed_where): (
        &str,
        &str,
        &str,
        Option<&str>,
        &str,
    ) = match by {
        // Calls counted past the kernel's table of groups have no pid or syscall: they
        // are a group of their own, keyed NULL, so that the calls add up.
        By::Syscall => ("syscall", "syscall", "", Some("syscall"), "TRUE"),
        By::Process if several_captures => (
            "capture, pid",
            "capture, pid",
            "",
            Some("capture, pid"),
            "TRUE",
        ),
        By::Process => ("pid", "pid", "", Some("pid"), "TRUE"),
        By::Thread if several_captures => ("capture, pid, tid", "capture, pid, tid", "", None, ""),
        By::Thread => ("pid, tid", "pid, tid", "", None, ""),
        // An empty path names no file: an `*at` call given one acts on its fd
        // (`fstat` is `newfstatat(fd, "", AT_EMPTY_PATH)`), whose file is `fd_path`.
        By::File => (
            "file",
            "coalesce(nullif(path, ''), fd_path) AS file",
            "WHERE coalesce(nullif(path, ''), fd_path) IS NOT NULL",
            None,
            "",
        ),
        By::Errno => (
            "errno",
            "errno",
            "WHERE errno IS NOT NULL",
            Some("errno"),
            "errno IS NOT NULL",
        ),
    };
    let names = match by {
        // A process is named as `ps` names it, by its main thread: a worker thread that
        // renamed itself and made the last call named the whole process (helper-90).
        By::Process => ", last_value(comm ORDER BY tid = pid, ts_ns) AS comm",
        By::Thread => ", last_value(comm ORDER BY ts_ns) AS comm",
        _ => "",
    };
    let group = (1..=keys.split(',').count())
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    // A process seen only in `aggregates` (none of its calls recorded one by one, as under
    // `--min-duration`) still has a name: the one `processes` gives it.
    let (comm, named) = match (by, shed_keys) {
        (By::Process, Some(k)) => (
            "coalesce(d.comm, n.comm) AS comm, ",
            format!(
                " LEFT JOIN (SELECT {k}, last_value(comm ORDER BY start_ts NULLS FIRST) AS comm
                             FROM processes GROUP BY {group}) n
                   ON {}",
                per_key(keys, " AND ", |k| format!("n.{k} = s.{k}"))
            ),
        ),
        _ if names.is_empty() => ("", String::new()),
        _ => ("d.comm, ", String::new()),
    };
    let percentiles = "get_field(d.q, 'p50') AS p50_ns, get_field(d.q, 'p90') AS p90_ns,
                  get_field(d.q, 'p99') AS p99_ns, d.max_ns";
    let joined = match shed_keys {
        Some(k) => {
            // A NULL key (the kernel's ungrouped calls) matches nothing and stays a row
            // of its own; the detail never has one. DataFusion 55 fails to coerce a join
            // on two IS NOT DISTINCT FROM keys.
            let join_on = per_key(keys, " AND ", |k| format!("d.{k} = s.{k}"));
            let key_out = per_key(keys, ", ", |k| format!("coalesce(d.{k}, s.{k}) AS {k}"));
            format!(
                "s AS (SELECT {k}, {SHED_STATS} FROM aggregates WHERE {shed_where} GROUP BY {group}),
                 joined AS (
                   SELECT {key_out}, {comm}
                          coalesce(d.calls, 0) + coalesce(s.calls, 0) AS calls,
                          coalesce(d.timed, 0) + coalesce(s.timed, 0) AS timed,
                          CASE WHEN d.errors IS NULL AND s.errors IS NULL THEN NULL
                               ELSE coalesce(d.errors, 0) + coalesce(s.errors, 0)
                          END AS errors,
                          CASE WHEN d.total_ns IS NULL AND s.total_ns IS NULL THEN NULL
                               ELSE coalesce(d.total_ns, 0) + coalesce(s.total_ns, 0)
                          END AS total_ns,
                          {percentiles}
                   FROM d FULL OUTER JOIN s ON {join_on}{named}
                 )"
            )
        }
        // The kernel's counts have no thread or file: the detail alone.
        None => {
            let key_out = per_key(keys, ", ", |k| format!("d.{k}"));
            format!(
                "joined AS (
                   SELECT {key_out}, {comm} d.calls, d.timed, d.errors, d.total_ns,
                          {percentiles}
                   FROM d
                 )"
            )
        }
    };
    let (every, all_join, all_ns) = share_of(by);
    format!(
        "WITH d AS (
           SELECT {detail_keys}{names}, {DETAIL_STATS}
           FROM syscalls {detail_where} GROUP BY {group}
         ), {joined}{every}
         SELECT {keys}, {comm_out}calls, errors, total_ns,
                CAST(total_ns / NULLIF(timed, 0) AS BIGINT) AS avg_ns,
                p50_ns, p90_ns, p99_ns, max_ns,
                round(100.0 * total_ns / NULLIF({all_ns}, 0), 2) AS time_pct
         FROM joined{all_join}
         ORDER BY total_ns DESC NULLS LAST, calls DESC, {keys}",
        comm_out = if names.is_empty() { "" } else { "comm, " },
    )
}

/// What `time_pct` is a share of, and the CTE and join that give it: the time of every
/// call the rows could be drawn from. The rows of `--by errno` are the failed calls and
/// those of `--by file` the calls with a file; a share of their own sum read ENOENT's
/// 3% of the time as 98%.
fn share_of(by: By) -> (&'static str, &'static str, &'static str) {
    match by {
        By::Errno => (
            ", every AS (SELECT sum(t) AS all_ns FROM (
                 SELECT sum(duration_ns) AS t FROM syscalls
                 UNION ALL SELECT sum(total_ns) FROM aggregates))",
            " CROSS JOIN every",
            "every.all_ns",
        ),
        // The kernel's counts have no file: a share of the recorded calls' time.
        By::File => (
            ", every AS (SELECT sum(duration_ns) AS all_ns FROM syscalls)",
            " CROSS JOIN every",
            "every.all_ns",
        ),
        _ => ("", "", "sum(total_ns) OVER ()"),
    }
}

/// What a grouping makes of the calls the kernel only counted (`aggregates`): their time
/// is known in total, never one by one.
pub fn counted_note(by: By) -> &'static str {
    match by {
        By::Syscall | By::Process | By::Errno => {
            "calls, errors, total_ns and avg_ns count them, but p50_ns to max_ns are of the \
             recorded calls only"
        }
        // The kernel's counts have no thread and no file.
        By::Thread | By::File => "summary by thread and by file counts the recorded calls only",
    }
}

/// `f` of each of the comma-separated `keys`, joined by `sep`.
fn per_key(keys: &str, sep: &str, f: impl Fn(&str) -> String) -> String {
    keys.split(',')
        .map(|k| f(k.trim()))
        .collect::<Vec<_>>()
        .join(sep)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grouping_has_the_documented_columns() {
        for by in [By::Syscall, By::Process, By::Thread, By::File, By::Errno] {
            let sql = sql(by, false);
            for col in [
                "calls", "errors", "total_ns", "avg_ns", "p50_ns", "p90_ns", "p99_ns", "max_ns",
                "time_pct",
            ] {
                assert!(sql.contains(col), "{by:?} lacks {col}");
            }
        }
    }
}
