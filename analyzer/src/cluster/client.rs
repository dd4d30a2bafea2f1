//! `--cluster HOST:PORT`: plan here, run on the cluster.
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
