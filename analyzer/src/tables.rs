//! Registers a capture's tables with DataFusion: every table over every capture, with a
//! `capture` column naming the capture each row came from, narrowed before any SQL runs.
use std::sync::Arc;

use anyhow::{Context as _, Result};
use datafusion::{
    arrow::array::{Array, TimestampNanosecondArray},
    catalog::TableProvider,
    datasource::{
        MemTable,
        file_format::parquet::ParquetFormat,
        listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl},
    },
    error::DataFusionError,
    logical_expr::lit,
    prelude::{DataFrame, SessionContext},
};
use tracepost_schema::{FILE_EXTENSION, TABLES, capture, schema_of};

use crate::{capture::Capture, cli::NarrowArgs, narrow::Narrow, udfs};

/// The column every table gains, naming the capture a row came from.
pub const CAPTURE_COLUMN: &str = "capture";

/// A session with every table registered, narrowed as asked.
pub async fn context(captures: &[Capture], narrow: &NarrowArgs) -> Result<SessionContext> {
    let ctx = SessionContext::new();
    udfs::register(&ctx);
    let mut frames = Vec::new();
    for table in TABLES {
        let mut union: Option<DataFrame> = None;
        for c in captures {
            let provider = table_provider(c, table)
                .with_context(|| format!("cannot register table {table}"))?;
            let df = ctx
                .read_table(provider)
                .map_err(sql_error)?
                .with_column(CAPTURE_COLUMN, lit(c.name()))
                .map_err(sql_error)?;
            union = Some(match union {
                None => df,
                Some(u) => u.union(df).map_err(sql_error)?,
            });
        }
        frames.push((table, union.expect("at least one capture")));
    }
    let start_ns = if narrow.since.as_deref().is_some_and(|s| s.starts_with('+'))
        || narrow.until.as_deref().is_some_and(|s| s.starts_with('+'))
    {
        let (_, captures_df) = frames
            .iter()
            .find(|(t, _)| *t == capture::TABLE)
            .expect("capture table");
        earliest_start(captures_df.clone()).await?
    } else {
        None
    };
    let narrow = Narrow::new(narrow, start_ns)?;
    for (table, df) in frames {
        let df = match narrow.filter(table) {
            Some(filter) => df.filter(filter).map_err(sql_error)?,
            None => df,
        };
        ctx.register_table(table, df.into_view())
            .with_context(|| format!("cannot register table {table}"))?;
    }
    Ok(ctx)
}

async fn earliest_start(captures: DataFrame) -> Result<Option<i64>> {
    let batches = captures
        .select_columns(&[capture::STARTED])
        .map_err(sql_error)?
        .collect()
        .await
        .map_err(sql_error)?;
    let mut earliest: Option<i64> = None;
    for b in batches {
        let col = b.column(0);
        if let Some(ts) = col.as_any().downcast_ref::<TimestampNanosecondArray>() {
            for i in 0..ts.len() {
                if ts.is_valid(i) {
                    earliest = Some(earliest.map_or(ts.value(i), |e| e.min(ts.value(i))));
                }
            }
        }
    }
    Ok(earliest)
}

/// One table of one capture. A table the capture lacks (recorded before the table existed,
/// or with nothing in it) is empty, so that queries naming it still run.
fn table_provider(c: &Capture, table: &str) -> Result<Arc<dyn TableProvider>> {
    let schema = schema_of(table).expect("TABLES have schemas");
    if c.files(table)?.is_empty() {
        return Ok(Arc::new(MemTable::try_new(schema, vec![vec![]])?));
    }
    let dir = c.table_dir(table);
    let dir = dir.canonicalize().unwrap_or(dir);
    let url = ListingTableUrl::parse(format!("{}/", dir.display()))
        .with_context(|| format!("capture {}: bad path", c.root().display()))?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(format!(".{FILE_EXTENSION}"));
    // The contract schema, not one inferred from a file: files written before a column was
    // added then read that column as NULL instead of failing.
    let config = ListingTableConfig::new(url)
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
