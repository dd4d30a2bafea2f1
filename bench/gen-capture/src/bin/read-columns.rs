//! Times parquet's own Arrow reader on some columns of one file, read as plain strings, as
//! string views or as dictionaries: what decoding alone costs for each way DataFusion
//! could be asked to read a capture, without DataFusion (BENCHMARKS.md, issue 13).
//!
//!     read-columns FILE plain|view|dict COLUMN[,COLUMN...]
use std::{fs::File, sync::Arc, time::Instant};

use anyhow::{Context as _, Result, bail};
use arrow_schema::{DataType, Schema};
use parquet::arrow::{
    ProjectionMask,
    arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder},
};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, path, mode, columns] = &args[..] else {
        bail!("usage: read-columns FILE plain|view|dict COLUMN[,COLUMN...]");
    };
    let as_read = |t: &DataType| match (mode.as_str(), t) {
        ("view", DataType::Utf8) => Ok(DataType::Utf8View),
        ("dict", DataType::Utf8) => Ok(DataType::Dictionary(
            Box::new(DataType::Int32),
            Box::new(DataType::Utf8),
        )),
        ("plain" | "view" | "dict", t) => Ok(t.clone()),
        _ => bail!("{mode}: give plain, view or dict"),
    };
    let open = || File::open(path).with_context(|| format!("cannot open {path}"));
    let meta = ArrowReaderMetadata::load(&open()?, ArrowReaderOptions::new())?;
    let fields = meta
        .schema()
        .fields()
        .iter()
        .map(|f| {
            Ok(Arc::new(
                f.as_ref().clone().with_data_type(as_read(f.data_type())?),
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let schema = Schema::new_with_metadata(fields, meta.schema().metadata().clone());
    let started = Instant::now();
    let options = ArrowReaderOptions::new().with_schema(Arc::new(schema));
    let builder = ParquetRecordBatchReaderBuilder::try_new_with_options(open()?, options)?;
    let roots = columns
        .split(',')
        .map(|c| {
            builder
                .schema()
                .index_of(c)
                .with_context(|| format!("no column {c}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let mask = ProjectionMask::roots(builder.parquet_schema(), roots);
    let mut rows = 0;
    for batch in builder
        .with_projection(mask)
        .with_batch_size(8192)
        .build()?
    {
        rows += batch?.num_rows();
    }
    println!(
        "{mode} {columns}: {rows} rows in {:.3} s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
