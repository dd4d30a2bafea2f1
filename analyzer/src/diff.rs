//! `analyze diff BASELINE INCIDENT`: what changed, per syscall and per process (by name, as
//! pids differ between captures). Rates are per second of each capture's span; impact is
//! the extra time per second spent in those calls, which is what a user of the system
//! feels.
//!
//! Calls, errors and time include what the kernel counted without recording (the
//! `aggregates` table), exactly as `summary` does, so a baseline taken without filters and
//! an incident taken with `--failed` or `--min-duration` compare like with like.
use anyhow::Result;
use datafusion::prelude::{DataFrame, SessionContext};

use crate::sql_values::string_literal;

/// The name of the calls the kernel counted past its table of groups, on both sides: their
/// pid and syscall are unknown.
const UNGROUPED: &str = "'(ungrouped)'";

/// One capture's time: its narrowing, and its first and last call before any narrowing.
pub struct Window {
    pub capture: String,
    pub since_ns: Option<i64>,
    pub until_ns: Option<i64>,
    pub first_ns: Option<i64>,
    pub last_ns: Option<i64>,
    /// Runs that never ended and were followed by another: (start, last call), UTC ns.
    pub run_ends: Vec<(i64, i64)>,
}

/// The SQL of a diff. `windows` is each capture's narrowing (name, since, until), so that
/// rates are per second of the narrowed window.
pub fn sql(baseline: &str, incident: &str, limit: usize, windows: &[Window]) -> String {
    let (b, i) = (string_literal(baseline), string_literal(incident));
    // Each of these, as `b_NAME` from the baseline's row and `i_NAME` from the incident's.
    let sides = ["calls", "errors", "rate", "p50", "p99", "time_per_s"]
        .iter()
        .flat_map(|c| [("b", &b, c), ("i", &i, c)])
        .map(|(side, capture, c)| {
            format!("max(CASE WHEN capture = {capture} THEN {c} END) AS {side}_{c}")
        })
        .collect::<Vec<_>>()
        .join(",\n                  ");
    let bound = |v: &Option<i64>| v.map_or("CAST(NULL AS BIGINT)".to_string(), |v| v.to_string());
    let run_ends = windows
        .iter()
        .flat_map(|w| {
            w.run_ends.iter().map(|(start, last)| {
                format!(
                    "SELECT {} AS capture, {start} AS started_ns, {last} AS last_ns",
                    string_literal(&w.capture)
                )
            })
        })
        .chain(std::iter::once(
            "SELECT CAST(NULL AS VARCHAR) AS capture, CAST(NULL AS BIGINT) AS started_ns, \
             CAST(NULL AS BIGINT) AS last_ns WHERE false"
                .to_string(),
        ))
        .collect::<Vec<_>>()
        .join(" UNION ALL ");
    let windows = windows
        .iter()
        .map(|w| {
            format!(
                "({}, {}, {}, {}, {})",
                string_literal(&w.capture),
                bound(&w.since_ns),
                bound(&w.until_ns),
                bound(&w.first_ns),
                bound(&w.last_ns)
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    // Seconds recorded: each recorder run's span (to its last call, if it never finished),
    // clipped to the narrowing. A capture taken with `--failed` or `--min-duration` has
    // few rows, but it recorded for as long as a full one did, so its rate is per the
    // same seconds. Where `--max-size` deleted the oldest files, what is left begins at
    // the earliest return of a kept call (`calls_span`): the whole run's seconds made its
    // rates a quarter of the truth.
    // A run with no start known (no capture row, or a skipped one) has no span: its
    // capture's rates are NULL, not its calls dropped. A killed run followed by another
    // ends at its own last call (`run_end`), not at the capture's.
    format!(
        "WITH win(capture, since_ns, until_ns, first_ns, last_ns) AS (VALUES {windows}),
         run_end(capture, started_ns, last_ns) AS ({run_ends}),
         calls_at AS (
           -- Before `--pid` and `--comm`: the seconds are the capture's, not one process's.
           SELECT capture, first_ns, last_ns FROM win
         ), deleted AS (
           -- A run killed before its end wrote no count of what it deleted: one that was
           -- asked to delete may have.
           SELECT capture,
                  max(CASE WHEN coalesce(deleted_events, 0) > 0 THEN 1
                           WHEN ended IS NULL AND command_line LIKE '%--max-size%' THEN 1
                           ELSE 0 END) > 0 AS any
           FROM capture GROUP BY capture
         ), kept_from AS (
           SELECT d.capture, l.first_ns AS from_ns
           FROM deleted d JOIN calls_at l ON d.capture = l.capture WHERE d.any
         ), runs AS (
           SELECT c.capture,
                  greatest(arrow_cast(c.started, 'Int64') * 1000,
                           k.from_ns,
                           coalesce(w.since_ns, -9223372036854775807)) AS from_ns,
                  least(coalesce(arrow_cast(c.ended, 'Int64') * 1000, r.last_ns, l.last_ns),
                        coalesce(w.until_ns, 9223372036854775807)) AS to_ns
           FROM capture c LEFT JOIN calls_at l ON c.capture = l.capture
                LEFT JOIN kept_from k ON c.capture = k.capture
                LEFT JOIN win w ON c.capture = w.capture
                LEFT JOIN run_end r ON c.capture = r.capture
                     AND arrow_cast(c.started, 'Int64') * 1000 = r.started_ns
           WHERE c.started IS NOT NULL
         ), span AS (
           SELECT capture, NULLIF(sum(greatest(to_ns - from_ns, 0)), 0) / 1e9 AS secs
           FROM runs GROUP BY capture
         ), names AS (
           -- A process by its name, else its threads' last: the same for recorded rows and
           -- counted ones, whichever name a call happened under (a child before its execve).
           -- By UNION ALL and GROUP BY rather than a FULL OUTER JOIN: the same rows, and
           -- plain shuffles and aggregates on a cluster.
           SELECT capture, pid, coalesce(max(named), max(last_seen)) AS comm
           FROM (SELECT capture, pid, last_value(comm ORDER BY start_ts) AS named,
                        NULL AS last_seen
                 FROM processes WHERE comm IS NOT NULL GROUP BY capture, pid
                 UNION ALL
                 SELECT capture, pid, NULL, last_value(comm ORDER BY ts)
                 FROM syscalls GROUP BY capture, pid)
           GROUP BY capture, pid
         ), detail AS (
           SELECT capture, 'syscall' AS kind, syscall AS key, count(*) AS calls,
                  count(errno) AS errors, sum(duration_ns) AS total_ns,
                  latency_percentiles(duration_ns) AS q
           FROM syscalls GROUP BY capture, syscall
           UNION ALL
           SELECT s.capture, 'process', n.comm, count(*), count(s.errno), sum(s.duration_ns),
                  latency_percentiles(s.duration_ns)
           FROM syscalls s JOIN names n ON s.capture = n.capture AND s.pid = n.pid
           GROUP BY s.capture, n.comm
         ), counted AS (
           -- `--max-size` deletes recorded calls, never the kernel's counts: over the
           -- seconds that are left, only the counts of those seconds. An interval (about a
           -- second) that crosses the first kept return counts for its part after it: whole,
           -- it doubled the rates of a capture that kept less than a second.
           SELECT capture, pid, syscall, failed,
                  CAST(round(calls * w) AS BIGINT) AS calls,
                  CAST(round(total_ns * w) AS BIGINT) AS total_ns
           FROM (SELECT a.*,
                        CASE WHEN k.from_ns IS NULL OR s_ns >= k.from_ns THEN 1.0
                             ELSE CAST(e_ns - k.from_ns AS DOUBLE) / CAST(e_ns - s_ns AS DOUBLE)
                        END AS w
                 FROM (SELECT *, arrow_cast(interval_start, 'Int64') * 1000 AS s_ns,
                              arrow_cast(interval_end, 'Int64') * 1000 AS e_ns
                       FROM aggregates) a
                 LEFT JOIN kept_from k ON a.capture = k.capture
                 WHERE k.from_ns IS NULL OR e_ns > k.from_ns)
         ), shed AS (
           -- Calls the kernel counted past its table of groups have no pid or syscall:
           -- they are named {UNGROUPED} on both sides, so that the calls add up.
           SELECT capture, 'syscall' AS kind, coalesce(syscall, {UNGROUPED}) AS key,
                  sum(calls) AS calls,
                  sum(CASE WHEN failed THEN calls WHEN pid IS NULL THEN NULL ELSE 0 END)
                    AS errors,
                  sum(total_ns) AS total_ns
           FROM counted GROUP BY capture, coalesce(syscall, {UNGROUPED})
           UNION ALL
           SELECT a.capture, 'process', {process_key}, sum(a.calls),
                  sum(CASE WHEN a.failed THEN a.calls WHEN a.pid IS NULL THEN NULL ELSE 0 END),
                  sum(a.total_ns)
           FROM counted a LEFT JOIN names n ON a.capture = n.capture AND a.pid = n.pid
           GROUP BY a.capture, {process_key}
         ), per AS (
           -- Both sides by UNION ALL and GROUP BY, as in `names`.
           SELECT capture, kind, key, sum(calls) AS calls, sum(errors) AS errors,
                  coalesce(sum(total_ns), 0) AS total_ns, max(p50) AS p50, max(p99) AS p99
           FROM (SELECT capture, kind, key, calls, errors, total_ns,
                        get_field(q, 'p50') AS p50, get_field(q, 'p99') AS p99
                 FROM detail
                 UNION ALL
                 SELECT capture, kind, key, calls, errors, total_ns, NULL, NULL FROM shed)
           GROUP BY capture, kind, key
         ), rated AS (
           SELECT per.capture, per.kind, per.key, per.calls, per.errors, per.total_ns,
                  per.p50, per.p99,
                  per.calls / span.secs AS rate, per.total_ns / span.secs AS time_per_s
           FROM per LEFT JOIN span ON per.capture = span.capture
         ), pivot AS (
           -- Side by side by grouping, not by joining `rated` to itself: a CTE named twice
           -- is planned twice, every scan and percentile of both captures with it.
           SELECT kind, key,
                  {sides}
           FROM rated GROUP BY kind, key
         ), sided AS (
           -- A side without a key spends nothing on it; one with calls but no known
           -- seconds spends an unknown amount, and so the difference is unknown.
           SELECT *,
                  CASE WHEN (b_calls IS NOT NULL AND b_time_per_s IS NULL)
                         OR (i_calls IS NOT NULL AND i_time_per_s IS NULL) THEN NULL
                       ELSE CAST(coalesce(i_time_per_s, 0) - coalesce(b_time_per_s, 0)
                                 AS BIGINT)
                  END AS extra
           FROM pivot
         )
         SELECT kind,
                key AS name,
                b_calls AS base_calls,
                i_calls AS incident_calls,
                round(b_rate, 1) AS base_per_s,
                round(i_rate, 1) AS incident_per_s,
                round(i_rate / b_rate, 2) AS rate_ratio,
                round(100.0 * b_errors / b_calls, 2) AS base_error_pct,
                round(100.0 * i_errors / i_calls, 2) AS incident_error_pct,
                b_p50 AS base_p50_ns,
                i_p50 AS incident_p50_ns,
                b_p99 AS base_p99_ns,
                i_p99 AS incident_p99_ns,
                extra AS extra_ns_per_s
         FROM sided
         ORDER BY abs(extra) DESC NULLS LAST, kind DESC, name
         LIMIT {limit}",
        process_key = format!(
            "CASE WHEN a.pid IS NULL THEN {UNGROUPED} \
             ELSE coalesce(n.comm, concat('pid ', CAST(a.pid AS VARCHAR))) END"
        ),
    )
}

/// Warns of a side with no calls at all (in its window, when narrowed): every row of the
/// other side then reads as new, or as gone, which looks like a finding and is not one.
pub async fn warn_empty_sides(both: &SessionContext, sides: [(&str, &str); 2]) -> Result<()> {
    let sql = "SELECT capture, CAST(sum(n) AS BIGINT) AS n
               FROM (SELECT capture, count(*) AS n FROM syscalls GROUP BY capture
                     UNION ALL
                     SELECT capture, sum(calls) FROM aggregates GROUP BY capture)
               GROUP BY capture";
    let (_, batches) = crate::run_sql(both, sql).await?;
    let mut seen = Vec::new();
    for b in &batches {
        for (row, name) in crate::sql_values::texts(b, 0)?.into_iter().enumerate() {
            if crate::sql_values::int64(b, 1, row).is_some_and(|n| n > 0) {
                seen.extend(name);
            }
        }
    }
    for (side, name) in sides {
        if !seen.iter().any(|s| s == name) {
            crate::say!(
                "warning: diff: the {side} {} has no calls (in the window given): every \
                 row reads as only the other side's",
                crate::output::visible(name)
            );
        }
    }
    Ok(())
}

/// Warns of a side whose recording has no known start (its capture row is missing, or
/// was skipped as damaged): its calls are compared, but its rates, and so the extra time
/// per second, are unknown and NULL, where a 0 would read as "the baseline spent nothing".
pub async fn warn_unknown_spans(both: &SessionContext, sides: [(&str, &str); 2]) -> Result<()> {
    let sql = "SELECT DISTINCT capture FROM capture WHERE started IS NOT NULL";
    let (_, batches) = crate::run_sql(both, sql).await?;
    let mut known = Vec::new();
    for b in &batches {
        known.extend(crate::sql_values::texts(b, 0)?.into_iter().flatten());
    }
    for (side, name) in sides {
        if !known.iter().any(|k| k == name) {
            crate::say!(
                "warning: diff: the {side} {} has no known start (its capture row is \
                 missing or was skipped): its calls are compared, but its rates and \
                 extra_ns_per_s are NULL",
                crate::output::visible(name)
            );
        }
    }
    Ok(())
}

/// Plans the diff in a context over both captures, told apart by their `capture` column.
pub async fn plan(
    both: &SessionContext,
    baseline: &str,
    incident: &str,
    limit: usize,
    windows: &[Window],
) -> Result<DataFrame> {
    crate::plan_sql(both, &sql(baseline, incident, limit, windows)).await
}
