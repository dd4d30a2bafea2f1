//! The analyzer: table, then query, then report.
//!
//! - [`capture`] finds and checks the capture directories.
//! - [`tables`] registers their tables with DataFusion, with [`narrow`]'s filters and
//!   [`udfs`]'s functions.
//! - [`queries`] holds the canned SQL; [`summary`] and [`diff`] build theirs.
//! - [`output`] renders results for terminals and tickets; [`report`] writes the incident
//!   report.
pub mod capture;
pub mod charts;
pub mod cli;
pub mod diff;
pub mod narrow;
pub mod output;
pub mod percentiles;
pub mod queries;
pub mod report;
pub mod spinner;
pub mod summary;
pub mod tables;
pub mod udfs;

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use datafusion::{arrow::array::RecordBatch, arrow::datatypes::Schema, prelude::SessionContext};

use crate::{
    capture::Capture,
    cli::{Cli, Command, NarrowArgs, OutputArgs},
};

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::List => {
            let mut out = std::io::stdout().lock();
            for q in queries::all() {
                let params = if q.params.is_empty() {
                    String::new()
                } else {
                    let p: Vec<String> = q.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!(" [{}]", p.join(" "))
                };
                writeln!(out, "{:<20} {}{params}", q.name, q.description)
                    .context("cannot write to stdout")?;
            }
            Ok(())
        }
        Command::Query(q) => {
            let (paths, query) = q.split()?;
            let canned = queries::resolve(query)?;
            let sql = canned.render(&q.params)?;
            let ctx = open(&paths, &q.narrow).await?;
            let (schema, batches) = run_sql(&ctx, &sql).await?;
            emit(&q.out, &schema, &batches)
        }
        Command::Summary(s) => {
            let ctx = open(&s.captures, &s.narrow).await?;
            let (schema, batches) = run_sql(&ctx, &summary::sql(s.by)).await?;
            emit(&s.out, &schema, &batches)
        }
        Command::Report(r) => {
            let ctx = open(&r.captures, &r.narrow).await?;
            report::write(&ctx, &r.captures, &r.output).await
        }
        Command::Diff(d) => {
            if d.baseline == d.incident {
                anyhow::bail!("diff: the baseline and the incident are the same capture");
            }
            let both = open(&[d.baseline.clone(), d.incident.clone()], &d.narrow).await?;
            let name = |p: &PathBuf| p.display().to_string();
            let (schema, batches) =
                diff::run(&both, &name(&d.baseline), &name(&d.incident), d.limit).await?;
            emit(&d.out, &schema, &batches)
        }
    }
}

/// Checks the captures and registers their tables.
pub async fn open(paths: &[PathBuf], narrow: &NarrowArgs) -> Result<SessionContext> {
    let captures = paths
        .iter()
        .map(|p| Capture::open(p))
        .collect::<Result<Vec<_>, _>>()?;
    tables::context(&captures, narrow).await
}

/// Runs SQL to completion, with a spinner on a terminal when it takes a while.
pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<(Schema, Vec<RecordBatch>)> {
    let spinner = spinner::Spinner::start();
    let df = ctx.sql(sql).await.map_err(tables::sql_error)?;
    let schema = df.schema().as_arrow().clone();
    let batches = df.collect().await.map_err(tables::sql_error)?;
    spinner.finish();
    Ok((schema, batches))
}

fn emit(out: &OutputArgs, schema: &Schema, batches: &[RecordBatch]) -> Result<()> {
    match &out.output {
        Some(path) => {
            let mut w = BufWriter::new(create(path)?);
            output::write(&mut w, out.format, schema, batches)?;
            w.flush()
                .with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let mut w = std::io::stdout().lock();
            output::write(&mut w, out.format, schema, batches)?;
            w.flush().context("cannot write to stdout")
        }
    }
}

/// A file for results: they hold data from a capture, so it is private (0600).
pub fn create(path: &Path) -> Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot create {}", path.display()))
}
