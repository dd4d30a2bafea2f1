//! `analyze diff BASELINE INCIDENT`: what changed, per syscall and per process (by name, as
//! pids differ between captures). Rates are per second of each capture's span; impact is
//! the extra time per second spent in those calls, which is what a user of the system
//! feels.
use anyhow::Result;
use datafusion::{arrow::array::RecordBatch, arrow::datatypes::Schema, prelude::SessionContext};

/// SQL string literal.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

pub fn sql(baseline: &str, incident: &str, limit: usize) -> String {
    let (b, i) = (quote(baseline), quote(incident));
    format!(
        "WITH span AS (
           SELECT capture,
                  NULLIF(max(arrow_cast(ts, 'Int64')) - min(arrow_cast(ts, 'Int64')), 0) / 1e9 AS secs
           FROM syscalls GROUP BY capture
         ), per AS (
           SELECT capture, 'syscall' AS kind, syscall AS key, count(*) AS calls,
                  count(errno) AS errors, sum(duration_ns) AS total_ns,
                  latency_percentiles(duration_ns) AS q
           FROM syscalls GROUP BY capture, syscall
           UNION ALL
           SELECT capture, 'process', comm, count(*), count(errno), sum(duration_ns),
                  latency_percentiles(duration_ns)
           FROM syscalls GROUP BY capture, comm
         ), rated AS (
           SELECT per.capture, per.kind, per.key, per.calls, per.errors, per.total_ns,
                  get_field(per.q, 'p50') AS p50, get_field(per.q, 'p99') AS p99,
                  per.calls / span.secs AS rate, per.total_ns / span.secs AS time_per_s
           FROM per JOIN span ON per.capture = span.capture
         ), b AS (SELECT * FROM rated WHERE capture = {b}),
            i AS (SELECT * FROM rated WHERE capture = {i})
         SELECT coalesce(i.kind, b.kind) AS kind,
                coalesce(i.key, b.key) AS name,
                round(b.rate, 1) AS base_per_s,
                round(i.rate, 1) AS incident_per_s,
                round(i.rate / b.rate, 2) AS rate_ratio,
                round(100.0 * b.errors / b.calls, 2) AS base_error_pct,
                round(100.0 * i.errors / i.calls, 2) AS incident_error_pct,
                b.p50 AS base_p50_ns,
                i.p50 AS incident_p50_ns,
                b.p99 AS base_p99_ns,
                i.p99 AS incident_p99_ns,
                CAST(coalesce(i.time_per_s, 0) - coalesce(b.time_per_s, 0) AS BIGINT)
                  AS extra_ns_per_s
         FROM b FULL OUTER JOIN i ON b.kind = i.kind AND b.key = i.key
         ORDER BY abs(CAST(coalesce(i.time_per_s, 0) - coalesce(b.time_per_s, 0) AS BIGINT)) DESC,
                  kind DESC, name
         LIMIT {limit}"
    )
}

/// Runs in a context over both captures, told apart by their `capture` column.
pub async fn run(
    both: &SessionContext,
    baseline: &str,
    incident: &str,
    limit: usize,
) -> Result<(Schema, Vec<RecordBatch>)> {
    crate::run_sql(both, &sql(baseline, incident, limit)).await
}
