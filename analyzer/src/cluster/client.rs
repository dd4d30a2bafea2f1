//! `--cluster HOST:PORT`: plan here, run on the cluster.
use std::{
    net::{TcpStream, ToSocketAddrs},
    time::Duration,
};

use anyhow::Context as _;
use datafusion::{error::Result, execution::SessionState};

use ballista_core::extension::{SessionConfigExt as _, SessionStateExt as _};

/// `state`, planning for the scheduler at `scheduler`. Ballista's upgrade replaces the
/// session's functions with its own, so the project's are added after it.
pub fn upgrade(state: SessionState, scheduler: &str) -> Result<SessionState> {
    let state = state.upgrade_for_ballista(format!("df://{scheduler}"))?;
    Ok(super::with_our_functions(state))
}

/// The configuration a cluster session starts from.
pub fn config() -> datafusion::prelude::SessionConfig {
    datafusion::prelude::SessionConfig::new_with_ballista()
}

/// How long the scheduler may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Checks that a scheduler listens at `scheduler` (`HOST:PORT`). Ballista connects only at
/// the first query, and then reports a bad address or a refused connection as a transport
/// error several layers deep; this names the option and the address instead, in bounded
/// time.
pub fn reachable(scheduler: &str) -> anyhow::Result<()> {
    let fault = || format!("--cluster {scheduler}");
    let addrs: Vec<_> = scheduler
        .to_socket_addrs()
        .with_context(|| format!("{}: not a HOST:PORT the scheduler listens at", fault()))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, CONNECT_TIMEOUT) {
            Ok(_) => return Ok(()),
            Err(e) => last = Some(e),
        }
    }
    match last {
        Some(e) => Err(e).with_context(|| format!("{}: cannot reach the scheduler", fault())),
        None => anyhow::bail!("{}: the name has no address", fault()),
    }
}
