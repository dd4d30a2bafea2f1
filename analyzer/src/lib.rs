//! The analyzer: table, then query, then report.
//!
//! - [`capture`] finds and checks the capture directories.
//! - [`tables`] registers their tables with DataFusion.
//! - [`output`] renders results for terminals and tickets.
pub mod capture;
pub mod cli;
pub mod output;
pub mod tables;

use std::io::Write as _;

use anyhow::{Context as _, Result};

use crate::cli::{Cli, Command};

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Query(q) => {
            let (captures, sql) = q.split()?;
            let captures = captures
                .iter()
                .map(|p| capture::Capture::open(p))
                .collect::<Result<Vec<_>, _>>()?;
            let ctx = tables::context(&captures).await?;
            let df = ctx.sql(sql).await.map_err(tables::sql_error)?;
            let schema = df.schema().as_arrow().clone();
            let batches = df.collect().await.map_err(tables::sql_error)?;
            let mut out = std::io::stdout().lock();
            output::write(&mut out, q.format, &schema, &batches)?;
            out.flush().context("cannot write to stdout")?;
            Ok(())
        }
    }
}
