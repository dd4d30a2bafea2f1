//! The DataFusion settings every session plans with: `analyze` on one machine, the client
//! of a cluster, and its scheduler and executors alike, so that a query means the same
//! wherever it is planned.
use datafusion::prelude::SessionConfig;

/// `config` with the optimizer rules that gave wrong answers here turned off.
///
/// DataFusion 55's leaf-expression pushdown (`extract_leaf_expressions` and
/// `push_down_leaf_projections`) moved `get_field(q, 'p50')` below the projection over
/// `diff`'s FULL OUTER JOIN and rewrote `coalesce(d.key, s.key)` there to `d.key`, so the
/// calls the incident only counted (under `--failed`) vanished from the diff. It exists to
/// read single fields of struct columns from a file; the captures have none, so it saves
/// nothing here.
///
/// DataFusion 55's aggregate dynamic filter lets a `max(ts_ns)` skip the files whose
/// `ts_ns` cannot raise it, while the same query's `min(ts_ns + duration_ns)` needed them:
/// on 2 CPUs, `SELECT min(ts_ns + duration_ns), max(ts_ns) FROM syscalls` over a capture of
/// three files gave another file's minimum in about one run of 40 (9 of 40 under load),
/// and `diff`'s rates moved with it. Off, so that an answer does not depend on which file
/// a thread read first.
///
/// Batches are [`BATCH_ROWS`] rows, not DataFusion's 8192.
pub fn configure(config: SessionConfig) -> SessionConfig {
    config
        .set_bool(
            "datafusion.optimizer.enable_leaf_expression_pushdown",
            false,
        )
        .set_bool(
            "datafusion.optimizer.enable_aggregate_dynamic_filter_pushdown",
            false,
        )
        .with_batch_size(BATCH_ROWS)
}

/// Rows in a record batch read from a capture.
///
/// The recorder writes pages of 16Ki rows, so a batch this size is one page of each
/// column: no page is decoded into two batches, and each batch's fixed costs (buffers,
/// filter masks, the aggregates' per-batch work) are paid half as often as at 8192.
/// Side by side with DuckDB (`bench/analyzer_vs_duckdb.py`, BENCHMARKS.md) this made
/// `errors` on 100M calls 18% faster and no canned query slower; 32Ki rows made `file-io`
/// on 2M calls half as slow again, its batches no longer fitting the cache.
pub const BATCH_ROWS: usize = 16 * 1024;
