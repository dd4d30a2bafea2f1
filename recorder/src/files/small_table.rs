//! Files of a table with few rows (`aggregates`): batches gather in memory and go to disk as
//! one file per rotation interval, so a killed recorder loses at most the open interval, as
//! with `syscalls`.
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use arrow_array::RecordBatch;
use arrow_schema::SchemaRef;

use crate::files::parquet_file::{self, PartFile, WriterError};

pub struct SmallTableWriter {
    dir: PathBuf,
    table: &'static str,
    schema: SchemaRef,
    max_age: Duration,
    next_seq: u64,
    pending: Vec<RecordBatch>,
    since: Option<Instant>,
    /// Whether the directory holds a finished file, this recorder's or an earlier one's.
    has_file: bool,
}

impl SmallTableWriter {
    pub fn new(
        dir: &Path,
        table: &'static str,
        schema: SchemaRef,
        max_age: Duration,
    ) -> Result<Self, WriterError> {
        let (files, next_seq) = parquet_file::scan(dir)?;
        let mut writer = Self {
            dir: dir.to_path_buf(),
            table,
            schema,
            max_age,
            next_seq,
            pending: Vec::new(),
            since: None,
            has_file: !files.is_empty(),
        };
        // The empty file at once, not when the capture ends: a `record` killed with
        // `kill -9` left `processes/` and `aggregates/` with no file at all, so the
        // README's `DIR/TABLE/*.parquet` matched nothing in DuckDB.
        if !writer.has_file {
            writer.write_file()?;
        }
        Ok(writer)
    }

    pub fn push(&mut self, batch: RecordBatch) {
        if batch.num_rows() > 0 {
            self.since.get_or_insert_with(Instant::now);
            self.pending.push(batch);
        }
    }

    pub fn rotate_if_due(&mut self) -> Result<(), WriterError> {
        if self.since.is_some_and(|t| t.elapsed() >= self.max_age) {
            self.flush()?;
        }
        Ok(())
    }

    /// Writes what is pending. A table that got no rows at all still has one file (written
    /// at the start), with the schema and no rows, so that `table/*.parquet` matches in
    /// every reader.
    pub fn finish(mut self) -> Result<(), WriterError> {
        self.flush()?;
        if !self.has_file {
            self.write_file()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), WriterError> {
        self.since = None;
        if self.pending.is_empty() {
            return Ok(());
        }
        self.write_file()
    }

    fn write_file(&mut self) -> Result<(), WriterError> {
        let props = parquet_file::summed_properties(self.table);
        let mut file = PartFile::create(&self.dir, self.next_seq, self.schema.clone(), props)?;
        self.next_seq += 1;
        for batch in self.pending.drain(..) {
            file.write(&batch)?;
        }
        file.finish()?;
        self.has_file = true;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    #[test]
    fn an_empty_table_still_gets_one_file_with_no_rows() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let w = SmallTableWriter::new(dir.path(), "t", schema.clone(), Duration::ZERO).unwrap();
        w.finish().unwrap();
        let (files, _) = parquet_file::scan(dir.path()).unwrap();
        assert_eq!(files.iter().map(|f| f.rows).collect::<Vec<_>>(), vec![0]);
        // A second run into the same directory adds nothing more when it too is empty.
        let w = SmallTableWriter::new(dir.path(), "t", schema, Duration::ZERO).unwrap();
        w.finish().unwrap();
        assert_eq!(parquet_file::scan(dir.path()).unwrap().0.len(), 1);
    }

    #[test]
    fn one_file_per_interval_and_nothing_for_empty_ones() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let batch = |v: Vec<i64>| {
            RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(v))]).unwrap()
        };
        let mut w = SmallTableWriter::new(dir.path(), "t", schema.clone(), Duration::ZERO).unwrap();
        w.push(batch(vec![1, 2]));
        w.push(batch(vec![3]));
        w.rotate_if_due().unwrap();
        w.push(batch(vec![]));
        w.rotate_if_due().unwrap();
        w.push(batch(vec![4]));
        w.finish().unwrap();
        // The empty file written at the start, then one per interval that had rows.
        let (files, next) = parquet_file::scan(dir.path()).unwrap();
        assert_eq!(
            files.iter().map(|f| f.rows).collect::<Vec<_>>(),
            vec![0, 3, 1]
        );
        assert_eq!(next, 4);
    }
}
