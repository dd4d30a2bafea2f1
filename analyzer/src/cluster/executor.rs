//! `analyze executor`: a Ballista executor that runs the scheduler's tasks.
use std::{
    net::{IpAddr, SocketAddr},
    os::unix::fs::{DirBuilderExt as _, MetadataExt as _},
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
    if options.bind.is_unspecified() {
        // It is also the address handed to the scheduler and clients to fetch results from.
        anyhow::bail!(
            "--bind {}: give the address others reach this executor at, not a wildcard",
            options.bind
        );
    }
    // Each probe below lets its port go again, so one port given twice passes both.
    if options.flight_port == options.grpc_port {
        anyhow::bail!(
            "--port and --grpc-port are both {}: the Flight and task services need a port each",
            options.flight_port
        );
    }
    for (flag, port) in [
        ("--port", options.flight_port),
        ("--grpc-port", options.grpc_port),
    ] {
        // Ballista only logs a service that cannot listen, and then exits as if stopped.
        std::net::TcpListener::bind((options.bind, port))
            .with_context(|| format!("{flag} {port}: cannot listen on {}", options.bind))?;
    }
    // Shuffle files hold capture data; Ballista creates them with the process's umask.
    // SAFETY: umask only changes this process's file creation mask.
    unsafe { libc::umask(0o077) };
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
    let host = |ip: IpAddr| match ip {
        IpAddr::V6(v6) => format!("[{v6}]"),
        IpAddr::V4(v4) => v4.to_string(),
    };
    let config = ExecutorProcessConfig {
        bind_host: host(options.bind),
        external_host: Some(host(options.bind)),
        port: options.flight_port,
        grpc_port: options.grpc_port,
        scheduler_host: host(options.scheduler.ip()),
        scheduler_port: options.scheduler.port(),
        // One attempt: Ballista's retry loop never ends, whatever the timeout.
        scheduler_connect_timeout_seconds: 0,
        vcores: options.tasks,
        work_dir: Some(work_dir.display().to_string()),
        override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(&functions))),
        override_runtime_producer: Some(producer),
        ..ExecutorProcessConfig::default()
    };
    crate::say!(
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

/// The directory given, or a new private one under the temporary directory. A directory
/// given must be a real directory of this user that no one else can enter: another user
/// could otherwise read the shuffle files, or point the executor's writes elsewhere.
fn work_dir(given: Option<&Path>) -> Result<(PathBuf, bool)> {
    let Some(dir) = given else {
        let dir = tempfile::Builder::new()
            .prefix("analyze-executor-")
            .tempdir()
            .context("cannot create a work directory under the temporary directory")?;
        return Ok((dir.keep(), true));
    };
    let fault = || format!("--work-dir {}", dir.display());
    if let Err(e) = std::fs::DirBuilder::new().mode(0o700).create(dir)
        && e.kind() != std::io::ErrorKind::AlreadyExists
    {
        return Err(e).with_context(|| format!("{}: cannot create it", fault()));
    }
    let meta =
        std::fs::symlink_metadata(dir).with_context(|| format!("{}: cannot read it", fault()))?;
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if !meta.is_dir() {
        anyhow::bail!("{}: not a directory (a symlink is refused too)", fault());
    }
    if meta.uid() != me || meta.mode() & 0o077 != 0 {
        anyhow::bail!(
            "{}: must belong to this user and be closed to others (chmod 700)",
            fault()
        );
    }
    Ok((dir.to_path_buf(), false))
}
