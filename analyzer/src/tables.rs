//! Registers a capture's tables with DataFusion.
use std::sync::Arc;

use anyhow::{Context as _, Result};
use datafusion::{
    catalog::TableProvider,
    datasource::{
        MemTable,
        file_format::parquet::ParquetFormat,
        listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl},
    },
    error::DataFusionError,
    prelude::SessionContext,
};
use tracepost_schema::{FILE_EXTENSION, TABLES, schema_of};

use crate::capture::Capture;

/// A session with every table registered over every capture's files.
pub async fn context(captures: &[Capture]) -> Result<SessionContext> {
    let ctx = SessionContext::new();
    for table in TABLES {
        let provider = table_provider(captures, table)
            .with_context(|| format!("cannot register table {table}"))?;
        ctx.register_table(table, provider)
            .with_context(|| format!("cannot register table {table}"))?;
    }
    Ok(ctx)
}

/// One table over the files of every capture that has it. A table no capture has (one
/// recorded before the table existed, or one with nothing in it) is empty, so that
/// queries naming it still run.
fn table_provider(captures: &[Capture], table: &str) -> Result<Arc<dyn TableProvider>> {
    let schema = schema_of(table).expect("TABLES have schemas");
    let mut urls = Vec::new();
    for c in captures {
        if c.files(table)?.is_empty() {
            continue;
        }
        let dir = c.table_dir(table);
        let dir = dir.canonicalize().unwrap_or(dir);
        urls.push(
            ListingTableUrl::parse(format!("{}/", dir.display()))
                .with_context(|| format!("capture {}: bad path", c.root().display()))?,
        );
    }
    if urls.is_empty() {
        return Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?));
    }
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(format!(".{FILE_EXTENSION}"));
    // The contract schema, not one inferred from a file: files written before a column was
    // added then read that column as NULL instead of failing.
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// DataFusion's errors, reduced to one line for the terminal.
pub fn sql_error(err: DataFusionError) -> anyhow::Error {
    let text = err.to_string();
    let line = text.lines().next().unwrap_or_default().to_string();
    anyhow::anyhow!("SQL: {line}")
}
