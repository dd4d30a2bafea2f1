//! The same SQL on an Apache DataFusion Ballista cluster: `analyze scheduler`, `analyze
//! executor`, and `--cluster HOST:PORT` on the commands that read captures.
//!
//! Plans travel by protobuf and name functions only by their names, so every process of the
//! cluster builds its sessions here, with the project's functions registered: the scheduler
//! decodes the client's logical plan and plans it physically (listing the files and reading
//! their footers), and each executor decodes its part of the physical plan and reads the
//! files. Both therefore also need the object stores, which they build from their own
//! environment ([`stores`]), as `analyze` does on one machine.
//!
//! There is no authentication and no TLS on any port: whoever reaches the scheduler can
//! read any file the executors can. Bind to loopback or a private network.
pub mod client;
pub mod executor;
pub mod scheduler;
mod stores;

use std::sync::Arc;

use datafusion::{
    error::Result,
    execution::{
        SessionState, SessionStateBuilder, object_store::ObjectStoreRegistry,
        runtime_env::RuntimeEnv,
    },
    prelude::{SessionConfig, SessionContext},
};

use crate::udfs;

/// Ballista's own log on stderr: warnings and errors by default, more with `RUST_LOG`
/// (`RUST_LOG=info analyze executor ...`), so that whoever runs a node can see what its
/// jobs and tasks do.
pub fn log_to_stderr() {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
}

/// A session of a scheduler or executor: Ballista's functions and optimizer rules, and
/// ours.
fn node_state(config: SessionConfig, runtime: Arc<RuntimeEnv>) -> Result<SessionState> {
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(crate::planner::configure(config))
        .with_runtime_env(runtime)
        .with_optimizer_rules(ballista_core::optimizer::ballista_default_optimizer_rules())
        .with_scalar_functions(ballista_core::extension::ballista_scalar_functions())
        .with_aggregate_functions(ballista_core::extension::ballista_aggregate_functions())
        .with_window_functions(ballista_core::extension::ballista_window_functions())
        .build();
    Ok(with_our_functions(state))
}

/// `state` with the project's functions added to what it has.
fn with_our_functions(state: SessionState) -> SessionState {
    let ctx = SessionContext::new_with_state(state);
    udfs::register(&ctx);
    ctx.state()
}

/// A runtime whose object stores come from this process's environment.
fn runtime(
    stores: Arc<dyn ObjectStoreRegistry>,
    temp: Option<&std::path::Path>,
) -> Result<Arc<RuntimeEnv>> {
    let mut builder = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_object_store_registry(stores);
    if let Some(dir) = temp {
        builder = builder.with_temp_file_path(dir);
    }
    builder.build_arc()
}
