//! Which file a query failed on, when the damage is inside its data.
//!
//! Each file's footer is checked before any SQL runs ([`crate::files`]), but a file can be
//! whole at its end and torn in its pages (a disk error, a bad copy). DataFusion then fails
//! mid-query with the reader's message ("Data corruption detected") and no file name, and
//! a cluster's executors with that message inside their job's failure. Only then each file
//! is decoded whole to find the one at fault, an object in a store fetched whole for it: a
//! cost paid by a query that failed anyway.
use std::{fs::File, sync::Arc};

use datafusion::{
    arrow::datatypes::{DataType, Field, Schema, SchemaRef},
    parquet::{
        arrow::arrow_reader::{ArrowReaderOptions, ParquetRecordBatchReaderBuilder},
        file::{metadata::PageIndexPolicy, reader::ChunkReader},
    },
};
use object_store::{ObjectStoreExt as _, path::Path as StorePath};

use bytes::Bytes;
use url::Url;

use crate::{
    capture::Capture,
    location::{Location, Remote},
};

/// Whether an error is the Parquet reader's, not the query's own: by how DataFusion's
/// message begins (`SQL: Parquet error: ...`, `SQL: Arrow error: Parquet argument error:
/// ...`), never by words anywhere in it, which can be the user's own SQL.
pub fn from_reading(error: &anyhow::Error) -> bool {
    let text = error.to_string();
    let Some(rest) = text.strip_prefix("SQL: ") else {
        return false;
    };
    // A cluster's job failed on an executor: its message quotes the reader's error as
    // Ballista's debug text, after the scheduler's words.
    let on_cluster = rest.starts_with("Execution error: Job ") && rest.contains("ParquetError(");
    on_cluster
        || [
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

/// The first file of the captures whose data cannot be decoded, and why. An object in a
/// store is fetched whole, one at a time, in the order the captures and their files were
/// given: the first damaged one is named, as for local files.
pub async fn find(captures: &[Capture]) -> Option<(String, String)> {
    for c in captures {
        for table in tracepost_schema::TABLES {
            for f in c.files(table) {
                let decoded = match c.location() {
                    Location::Local(_) => match f.url.to_file_path() {
                        Ok(path) => decode(|| File::open(&path).map_err(|e| e.to_string())),
                        Err(()) => continue,
                    },
                    Location::Remote(remote) => match fetch(remote, &f.url).await {
                        Some(bytes) => decode(|| Ok(bytes.clone())),
                        // The store failed, not the file: not this one's damage.
                        None => continue,
                    },
                };
                if let Err(why) = decoded {
                    return Some((f.name.clone(), why));
                }
            }
        }
    }
    None
}

/// An object whole, or None if the store does not give it.
async fn fetch(remote: &Remote, url: &Url) -> Option<Bytes> {
    let key = StorePath::from_url_path(url.path()).ok()?;
    remote.store.get(&key).await.ok()?.bytes().await.ok()
}

/// Reads every row of every column of the file, and its page index: DataFusion reads the
/// index to skip pages, so a damaged one fails a query as damaged pages do. Strings are
/// read twice, as plain strings and as views (as queries read them): the two decoders
/// notice different damage, and a flip only the view decoder tripped on left the
/// query's error without a file name.
fn decode<R: ChunkReader + 'static>(open: impl Fn() -> Result<R, String>) -> Result<(), String> {
    let plain = read_all(open()?, None)?;
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
        open()?,
        Some(Arc::new(Schema::new_with_metadata(
            views,
            plain.metadata().clone(),
        ))),
    )?;
    Ok(())
}

/// Reads the whole file, with `schema` as the Arrow types to read into if given; returns
/// the file's own Arrow schema.
fn read_all<R: ChunkReader + 'static>(
    data: R,
    schema: Option<SchemaRef>,
) -> Result<SchemaRef, String> {
    let mut options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
    if let Some(schema) = schema {
        options = options.with_schema(schema);
    }
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(data, options)
        .map_err(|e| e.to_string())?;
    let own = builder.schema().clone();
    let reader = builder.build().map_err(|e| e.to_string())?;
    for batch in reader {
        batch.map_err(|e| e.to_string())?;
    }
    Ok(own)
}
