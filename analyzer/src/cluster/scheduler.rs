//! `analyze scheduler`: a Ballista scheduler that plans the clients' queries.
use std::{net::SocketAddr, sync::Arc};

use anyhow::{Context as _, Result};
use ballista_scheduler::{
    cluster::BallistaCluster, config::SchedulerConfig, scheduler_process::start_server,
    scheduler_server::SessionBuilder,
};
use datafusion::execution::object_store::ObjectStoreRegistry;

use super::{node_state, runtime, stores::EnvStores};

/// Serves until the process is stopped.
pub async fn run(bind: SocketAddr) -> Result<()> {
    let stores: Arc<dyn ObjectStoreRegistry> = Arc::new(EnvStores::default());
    let builder: SessionBuilder =
        Arc::new(move |config| node_state(config, runtime(stores.clone(), None)?));
    let config = SchedulerConfig {
        bind_host: bind.ip().to_string(),
        ..SchedulerConfig::default()
    }
    .with_hostname(bind.ip().to_string())
    .with_port(bind.port())
    .with_override_session_builder(builder);
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .context("cannot set up the scheduler's state")?;
    // Bound before it is announced, so that a port in use is the error, not a hang.
    let probe = std::net::TcpListener::bind(bind)
        .with_context(|| format!("scheduler: cannot listen on {bind}"))?;
    drop(probe);
    crate::say!("scheduler: listening on {bind}");
    start_server(cluster, bind, Arc::new(config))
        .await
        .with_context(|| format!("scheduler on {bind} stopped"))
}
