//! `analyze executor`: a Ballista executor that runs the scheduler's tasks.
use std::{
    net::{IpAddr, SocketAddr},
    os::unix::fs::DirBuilderExt as _,
    path::{Path, PathBuf},
    sync::Arc,
};

use anyhow::{Context as _, Result};
use ballista_core::{RuntimeProducer, registry::BallistaFunctionRegistry};
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use datafusion::{execution::object_store::ObjectStoreRegistry, prelude::SessionConfig};

use super::{node_state, runtime, stores::EnvStores};

pub struct Options {
    pub scheduler: SocketAddr,
    /// Where the Flight service (results, shuffles) and the task service listen.
    pub bind: IpAddr,
    pub flight_port: u16,
    pub grpc_port: u16,
    /// Shuffle files and spills. Created, private, when it does not exist.
    pub work_dir: Option<PathBuf>,
    pub tasks: usize,
}

/// Serves until SIGINT or SIGTERM.
pub async fn run(options: Options) -> Result<()> {
    let (work_dir, made) = work_dir(options.work_dir.as_deref())?;
    let stores: Arc<dyn ObjectStoreRegistry> = Arc::new(EnvStores::default());
    let temp = work_dir.clone();
    let runtime_stores = stores.clone();
    let producer: RuntimeProducer =
        Arc::new(move |_config: &SessionConfig| runtime(runtime_stores.clone(), Some(&temp)));
    // The same functions as the scheduler's sessions, nested ones included.
    let functions = node_state(
        ballista_core::utils::default_config_producer(),
        runtime(stores, None)?,
    )?;
    let config = ExecutorProcessConfig {
        bind_host: options.bind.to_string(),
        external_host: Some(options.bind.to_string()),
        port: options.flight_port,
        grpc_port: options.grpc_port,
        scheduler_host: options.scheduler.ip().to_string(),
        scheduler_port: options.scheduler.port(),
        // One attempt: Ballista's retry loop never ends, whatever the timeout.
        scheduler_connect_timeout_seconds: 0,
        vcores: options.tasks,
        work_dir: Some(work_dir.display().to_string()),
        override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(&functions))),
        override_runtime_producer: Some(producer),
        ..ExecutorProcessConfig::default()
    };
    eprintln!(
        "executor: scheduler {}, Flight on {}:{}, tasks on {}:{}, {} task slots, work dir {}",
        options.scheduler,
        options.bind,
        options.flight_port,
        options.bind,
        options.grpc_port,
        options.tasks,
        work_dir.display()
    );
    let result = start_executor_process(Arc::new(config))
        .await
        .with_context(|| format!("executor (scheduler {})", options.scheduler));
    if made {
        let _ = std::fs::remove_dir_all(&work_dir);
    }
    result
}

/// The directory given, or a new private one under the temporary directory. Created with
/// mode 0700 and never taken over if it exists already: another user could have made it.
fn work_dir(given: Option<&Path>) -> Result<(PathBuf, bool)> {
    if let Some(dir) = given {
        if !dir.is_dir() {
            std::fs::DirBuilder::new()
                .mode(0o700)
                .recursive(true)
                .create(dir)
                .with_context(|| format!("--work-dir {}: cannot create it", dir.display()))?;
        }
        return Ok((dir.to_path_buf(), false));
    }
    let dir = std::env::temp_dir().join(format!("analyze-executor-{}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create the work directory {}", dir.display()))?;
    Ok((dir, true))
}
