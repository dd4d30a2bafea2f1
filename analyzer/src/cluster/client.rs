//! `--cluster HOST:PORT`: plan here, run on the cluster.
use std::{
    net::{TcpStream, ToSocketAddrs},
    time::{Duration, Instant},
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

/// The configuration a cluster session starts from. It travels with each job, so the
/// scheduler plans the job by it.
///
/// Ballista 55's adaptive planner (on by default) is off: it replans a job around the
/// stages it finds empty, and a stage the replan leaves behind is never completed, so the
/// job never finishes (apache/datafusion-ballista#2150, open). The static planner is what
/// the cluster test runs every query on. (The hang `diff` showed here went on with it
/// off; see `tables::no_rows`.)
pub fn config() -> datafusion::prelude::SessionConfig {
    crate::planner::configure(datafusion::prelude::SessionConfig::new_with_ballista())
        .set_bool("ballista.planner.adaptive.enabled", false)
}

/// How long the scheduler may take to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the scheduler may take to answer whether it has executors.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// How often to ask again while no executor has registered.
const READY_POLL: Duration = Duration::from_millis(500);

/// Checks that a scheduler listens at `scheduler` (`HOST:PORT`) and has an executor to run
/// the job, waiting up to `wait` for one to register.
///
/// A Ballista 55 scheduler queues a job that arrives while it has no executor, and its
/// client then polls the job's status for ever: `analyze` would hang with no word. The
/// scheduler's `/readyz` (on the gRPC port) says how many executors it has, so the wait is
/// bounded here, before anything is submitted. Executors lost during a job are the
/// scheduler's to handle: it fails the job once none re-registers within its grace period.
pub async fn ready(scheduler: &str, wait: Duration) -> anyhow::Result<()> {
    reachable(scheduler)?;
    let fault = || format!("--cluster {scheduler}");
    let url = format!("http://{scheduler}/readyz");
    // Direct, as Ballista's own gRPC connections are: an `http_proxy` set for other
    // traffic would otherwise answer for the scheduler.
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(READY_TIMEOUT)
        .build()
        .context("cannot build an HTTP client")?;
    let start = Instant::now();
    let mut told = false;
    loop {
        let response = client.get(&url).send().await.with_context(|| {
            format!(
                "{}: no answer to {url}; is it a Ballista 55 scheduler (`analyze scheduler`)?",
                fault()
            )
        })?;
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        let said = body.trim();
        if status.is_success() {
            return Ok(());
        }
        if status != reqwest::StatusCode::SERVICE_UNAVAILABLE {
            anyhow::bail!(
                "{}: {url} answered {status}; is it a Ballista 55 scheduler (`analyze scheduler`)?",
                fault()
            );
        }
        if start.elapsed() >= wait {
            anyhow::bail!(
                "{}: no executor registered with the scheduler within {} (it says \"{said}\"); \
                 start one with `analyze executor --scheduler {scheduler}`, or wait longer \
                 with --cluster-wait",
                fault(),
                humantime::format_duration(wait)
            );
        }
        if !told {
            crate::say!(
                "analyze: the scheduler at {scheduler} has no executor yet; waiting up to {} \
                 for one to register",
                humantime::format_duration(wait)
            );
            told = true;
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// Checks that something accepts connections at `scheduler`. Ballista connects only at the
/// first query, and then reports a bad address or a refused connection as a transport
/// error several layers deep; this names the option and the address instead, in bounded
/// time.
fn reachable(scheduler: &str) -> anyhow::Result<()> {
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
