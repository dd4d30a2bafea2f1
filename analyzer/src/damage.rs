//! Which file a query failed on, when the damage is inside its data.
//!
//! Each file's footer is checked before any SQL runs ([`crate::files`]), but a file can be
//! whole at its end and torn in its pages (a disk error, a bad copy). DataFusion then fails
//! mid-query with the reader's message ("Data corruption detected") and no file name. Only
//! then, and only for local files, each file is decoded whole to find the one at fault: a
//! cost paid by a query that failed anyway.
use std::{fs::File, path::PathBuf, sync::Arc};

use datafusion::{
    arrow::datatypes::{DataType, Field, Schema, SchemaRef},
    parquet::{
        arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder},
        file::metadata::PageIndexPolicy,
    },
};

use crate::{capture::Capture, location::Location};

/// Whether an error is the Parquet reader's, not the query's own: by how DataFusion's
/// message begins (`SQL: Parquet error: ...`, `SQL: Arrow error: Parquet argument error:
/// ...`), never by words anywhere in it, which can be the user's own SQL.
pub fn from_reading(error: &anyhow::Error) -> bool {
    let text = error.to_string();
    let Some(rest) = text.strip_prefix("SQL: ") else {
        return false;
    };
    [
        "Parquet error: ",
        "Arrow error: Parquet argument error: ",
        "External error: Parquet error: ",
    ]
    .iter()
    .any(|p| rest.starts_with(p))
}

/// The first local file of the captures that was checked and is gone now.
pub fn vanished(captures: &[Capture]) -> Option<String> {
    captures
        .iter()
        .filter(|c| matches!(c.location(), Location::Local(_)))
        .flat_map(|c| tracepost_schema::TABLES.iter().flat_map(|t| c.files(t)))
        .find(|f| {
            f.url
                .to_file_path()
                .is_ok_and(|p| matches!(p.try_exists(), Ok(false)))
        })
        .map(|f| f.name.clone())
}

/// The first local file of the captures whose data cannot be decoded, and why.
pub fn find(captures: &[Capture]) -> Option<(String, String)> {
    for c in captures {
        if !matches!(c.location(), Location::Local(_)) {
            continue;
        }
        for table in tracepost_schema::TABLES {
            for f in c.files(table) {
                let Ok(path) = f.url.to_file_path() else {
                    continue;
                };
                if let Err(why) = decode(&path) {
                    return Some((f.name.clone(), why));
                }
            }
        }
    }
    None
}

/// Reads every row of every column of the file, and its page index: DataFusion reads the
/// index to skip pages, so a damaged one fails a query as damaged pages do. Strings are
/// read twice, as plain strings and as views (as queries read them): the two decoders
/// notice different damage, and a flip only the view decoder tripped on left the
/// query's error without a file name.
fn decode(path: &PathBuf) -> Result<(), String> {
    let plain = read_all(path, None)?;
    let views: Vec<Field> = plain
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 | DataType::LargeUtf8 => {
                f.as_ref().clone().with_data_type(DataType::Utf8View)
            }
            _ => f.as_ref().clone(),
        })
        .collect();
    read_all(
        path,
        Some(Arc::new(Schema::new_with_metadata(
            views,
            plain.metadata().clone(),
        ))),
    )?;
    Ok(())
}

/// Reads the whole file, with `schema` as the Arrow types to read into if given; returns
/// the file's own Arrow schema.
fn read_all(path: &PathBuf, schema: Option<SchemaRef>) -> Result<SchemaRef, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let mut options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
    if let Some(schema) = schema {
        options = options.with_schema(schema);
    }
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(file, options)
        .map_err(|e| e.to_string())?;
    let own = builder.schema().clone();
    let reader = builder.build().map_err(|e| e.to_string())?;
    for batch in reader {
        batch.map_err(|e| e.to_string())?;
    }
    Ok(own)
}
