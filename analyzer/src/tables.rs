//! Registers a capture's tables with DataFusion.
use std::sync::Arc;

use anyhow::{Context as _, Result};
use datafusion::{
    datasource::{
        file_format::parquet::ParquetFormat,
        listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl},
    },
    error::DataFusionError,
    prelude::SessionContext,
};
use tracepost_schema::{FILE_EXTENSION, syscalls};

use crate::capture::Capture;

/// A session with `syscalls` registered over every capture's files.
pub async fn context(captures: &[Capture]) -> Result<SessionContext> {
    let ctx = SessionContext::new();
    let urls = captures
        .iter()
        .map(|c| {
            let dir = c.table_dir(syscalls::TABLE);
            let dir = dir.canonicalize().unwrap_or(dir);
            ListingTableUrl::parse(format!("{}/", dir.display()))
                .with_context(|| format!("capture {}: bad path", c.root().display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(format!(".{FILE_EXTENSION}"));
    // The contract schema, not one inferred from a file: files written before a column was
    // added then read that column as NULL instead of failing.
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(syscalls::schema());
    let table = ListingTable::try_new(config).context("cannot register table syscalls")?;
    ctx.register_table(syscalls::TABLE, Arc::new(table))
        .context("cannot register table syscalls")?;
    Ok(ctx)
}

/// DataFusion's errors, reduced to one line for the terminal.
pub fn sql_error(err: DataFusionError) -> anyhow::Error {
    let text = err.to_string();
    let line = text.lines().next().unwrap_or_default().to_string();
    anyhow::anyhow!("SQL: {line}")
}
