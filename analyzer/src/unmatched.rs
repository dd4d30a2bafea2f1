//! `--pid` and `--comm` values that match nothing in any capture. A mistyped pid, a
//! thread's id, or a name longer than the kernel keeps answered with empty tables and exit
//! 0, which reads like "that process made no calls". Each such value is named on stderr.
use std::collections::BTreeSet;

use anyhow::Result;
use datafusion::{
    logical_expr::{Expr, col, lit},
    prelude::DataFrame,
};
use tracepost_schema::{aggregates, processes, syscalls};

use crate::tables::sql_error;

/// What one capture holds of the values asked for, from its tables before narrowing (a
/// process outside the time window is there, and is not named here).
#[derive(Debug, Default)]
pub struct Found {
    pub pids: BTreeSet<i32>,
    pub comms: BTreeSet<String>,
}

/// The values of `column` in `df` among `wanted`, as `i32`s or strings.
async fn present(df: DataFrame, column: &str, wanted: Vec<Expr>) -> Result<Vec<Option<String>>> {
    let batches = df
        .filter(col(column).in_list(wanted, false))
        .and_then(|d| d.select(vec![col(column).alias("v")]))
        .and_then(|d| d.distinct())
        .map_err(sql_error)?
        .collect()
        .await
        .map_err(sql_error)?;
    let mut values = Vec::new();
    for b in &batches {
        values.extend(crate::sql_values::texts(b, 0)?);
    }
    Ok(values)
}

/// Which of `pids` and `comms` (the kernel's 15-byte names) `processes`, `syscalls` or
/// `aggregates` hold. The small tables are asked first: `syscalls` is scanned only for
/// what they lack, which is the mistyped value, or a thread's name seen in its calls only.
pub async fn find(
    tables: impl Fn(&str) -> DataFrame,
    pids: &[i32],
    comms: &[String],
) -> Result<Found> {
    let mut found = Found::default();
    let mut missing: Vec<i32> = pids.to_vec();
    for (table, column) in [
        (processes::TABLE, processes::PID),
        (aggregates::TABLE, aggregates::PID),
        (syscalls::TABLE, syscalls::PID),
    ] {
        if missing.is_empty() {
            break;
        }
        let wanted = missing.iter().map(|p| lit(*p)).collect();
        for v in present(tables(table), column, wanted)
            .await?
            .into_iter()
            .flatten()
        {
            if let Ok(p) = v.parse::<i32>() {
                found.pids.insert(p);
            }
        }
        missing.retain(|p| !found.pids.contains(p));
    }
    let mut missing: Vec<String> = comms.to_vec();
    for (table, column) in [
        (processes::TABLE, processes::COMM),
        (syscalls::TABLE, syscalls::COMM),
    ] {
        if missing.is_empty() {
            break;
        }
        let wanted = missing.iter().map(|c| lit(c.as_str())).collect();
        found.comms.extend(
            present(tables(table), column, wanted)
                .await?
                .into_iter()
                .flatten(),
        );
        missing.retain(|c| !found.comms.contains(c));
    }
    Ok(found)
}

/// `--pid` and `--comm` are both asked for, and no process has an id and a name among
/// them: each may be in the captures (else [`warn`] names it), but the answer, which
/// keeps what both keep, is empty.
pub fn warn_apart(found: &[Found], pids: &[i32], comms_given: &[String], captures: &[String]) {
    let each_found = pids
        .iter()
        .any(|p| found.iter().any(|f| f.pids.contains(p)))
        && found.iter().any(|f| !f.comms.is_empty());
    if !each_found {
        return;
    }
    let pids: Vec<String> = pids.iter().map(ToString::to_string).collect();
    crate::say!(
        "warning: --pid {} and --comm {}: no process in {} has both that id and that name, \
         and the answer keeps only what both keep, so it holds nothing",
        pids.join(", "),
        comms_given.join(", "),
        searched(captures)
    );
}

/// Where a warning says a value was looked for: the one capture, or all of them.
fn searched(captures: &[String]) -> String {
    match captures {
        [one] => format!("capture {one}"),
        _ => format!("any of the {} captures", captures.len()),
    }
}

/// Names each value that no capture holds. `comms_given` are the names as typed, in the
/// order of `comms` (as compared).
pub fn warn(
    found: &[Found],
    pids: &[i32],
    comms: &[String],
    comms_given: &[String],
    captures: &[String],
) {
    let where_ = searched(captures);
    for pid in pids {
        if !found.iter().any(|f| f.pids.contains(pid)) {
            crate::say!(
                "warning: --pid {pid}: no process with that id in {where_}, so the answer \
                 holds nothing of it (a thread's id is `tid`; its process's is `pid`)"
            );
        }
    }
    for (comm, given) in comms.iter().zip(comms_given) {
        if !found.iter().any(|f| f.comms.contains(comm)) {
            crate::say!(
                "warning: --comm {given}: no process or thread of that name in {where_}, so \
                 the answer holds nothing of it"
            );
        }
    }
}
