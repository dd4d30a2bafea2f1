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
pub fn configure(config: SessionConfig) -> SessionConfig {
    config.set_bool(
        "datafusion.optimizer.enable_leaf_expression_pushdown",
        false,
    )
}
