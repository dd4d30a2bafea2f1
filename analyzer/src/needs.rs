//! Whether the captures hold what a canned query needs (`-- needs:` in its header). Without
//! this, `off-cpu` on a capture recorded without `--sched` would answer "no time off the
//! CPU", which is wrong: the time was never measured.
use anyhow::{Result, bail};
use datafusion::prelude::SessionContext;

use crate::{queries::Needs, run_sql};

/// Whether any call of the captures has what `needs` names. One row answers, so the scan
/// stops at the first.
pub async fn met(ctx: &SessionContext, needs: Needs) -> Result<bool> {
    let sql = match needs {
        Needs::Sched => "SELECT 1 FROM syscalls WHERE oncpu_ns IS NOT NULL LIMIT 1",
    };
    let (_, batches) = run_sql(ctx, sql).await?;
    Ok(batches.iter().any(|b| b.num_rows() > 0))
}

/// Refuses `query` on captures that lack what it needs, naming what would give it.
pub async fn check(ctx: &SessionContext, query: &str, needs: Option<Needs>) -> Result<()> {
    let Some(needs) = needs else {
        return Ok(());
    };
    if met(ctx, needs).await? {
        return Ok(());
    }
    match needs {
        Needs::Sched => bail!(
            "query `{query}` needs a capture recorded with `record --sched`: no call here has \
             its time split (recorded without it, or narrowed to calls that lack it)"
        ),
    }
}
