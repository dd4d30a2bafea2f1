//! Whether the captures hold what a canned query needs (`-- needs:` in its header). Without
//! this, `off-cpu` on a capture recorded without `--sched` would answer "no time off the
//! CPU", which is wrong: the time was never measured. With several captures, one that lacks
//! it would drop out of the answer as if nothing of it waited: it is named.
use anyhow::{Result, bail};
use datafusion::prelude::{SessionContext, col, lit};

use crate::{capture::Capture, output, queries::Needs, tables::sql_error};

/// The captures none of whose calls (as narrowed) has what `needs` names, in the order
/// given. One row answers for a capture, so each scan stops at its first.
pub async fn lacking(
    ctx: &SessionContext,
    captures: &[Capture],
    needs: Needs,
) -> Result<Vec<String>> {
    let column = match needs {
        Needs::Sched => tracepost_schema::syscalls::ONCPU_NS,
    };
    let mut lacking = Vec::new();
    for c in captures {
        // The capture's name is a literal in its branch of the union: the filter leaves
        // the other captures' files unread.
        let batches = ctx
            .table(tracepost_schema::syscalls::TABLE)
            .await
            .map_err(sql_error)?
            .filter(
                col(crate::tables::CAPTURE_COLUMN)
                    .eq(lit(c.name()))
                    .and(col(column).is_not_null()),
            )
            .and_then(|df| df.select(vec![lit(1)]))
            .and_then(|df| df.limit(0, Some(1)))
            .map_err(sql_error)?
            .collect()
            .await
            .map_err(sql_error)?;
        if !batches.iter().any(|b| b.num_rows() > 0) {
            lacking.push(c.name());
        }
    }
    Ok(lacking)
}

/// What a capture lacks, for a message: why it has none of what `needs` names.
pub fn missing(needs: Needs) -> &'static str {
    match needs {
        Needs::Sched => {
            "no call has its time split (recorded without `record --sched`, or narrowed to \
             calls that lack it)"
        }
    }
}

/// Refuses `query` on captures that all lack what it needs, naming what would give it;
/// where only some lack it, names each of them, since the answer leaves them out.
pub async fn check(
    ctx: &SessionContext,
    captures: &[Capture],
    query: &str,
    needs: Option<Needs>,
) -> Result<()> {
    let Some(needs) = needs else {
        return Ok(());
    };
    let lacking = lacking(ctx, captures, needs).await?;
    if lacking.len() == captures.len() {
        match needs {
            Needs::Sched => bail!(
                "query `{query}` needs a capture recorded with `record --sched`: no call here \
                 has its time split (recorded without it, or narrowed to calls that lack it)"
            ),
        }
    }
    for name in lacking {
        crate::say!(
            "warning: capture {}: {}: query `{query}` answers for the other captures only",
            output::visible(&name),
            missing(needs)
        );
    }
    Ok(())
}
