//! Parquet files of one table: properties, the unfinished-file naming, rotation, and the
//! rule that rows within a file are sorted by entry time.
//!
//! A file is written as `.part-NNNNNN.inprogress` and renamed to `part-NNNNNN.parquet` only
//! after its footer is written, so every `*.parquet` in a capture is complete and readable,
//! whatever happens to the recorder.
use std::{
    fs::{self, File, OpenOptions},
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use arrow_schema::ArrowError;
use parquet::{
    arrow::ArrowWriter,
    basic::{Compression, Encoding, ZstdLevel},
    errors::ParquetError,
    file::{
        metadata::KeyValue,
        properties::{WriterProperties, WriterVersion},
    },
    schema::types::ColumnPath,
};
use tracepost_common::SyscallEvent;
use tracepost_schema::{SCHEMA_VERSION, SCHEMA_VERSION_KEY, TABLE_KEY, syscalls};

use std::sync::Arc;

use crate::{batch::BatchBuilder, progress::Counters};

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("cannot create {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write {}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: ParquetError,
    },
    /// The file system refused (a full disk, an I/O error): said once, without Parquet's
    /// wrapper repeating the OS error.
    #[error("cannot write {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot finish {}", path.display())]
    Finish {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot build a record batch")]
    Batch(#[from] ArrowError),
}

/// When a file is closed and a new one started, and how much is kept.
#[derive(Clone, Copy, Debug)]
pub struct Rotation {
    /// Bounds what a `kill -9` of the recorder can lose.
    pub max_age: Duration,
    /// Bounds file size, so files stay easy to copy and to read in parallel.
    pub max_rows: u64,
    /// Flight-recorder mode: the newest closed files are kept under this many bytes and
    /// the oldest deleted. Files are then closed at a quarter of it, so that deleting one
    /// never drops more than about a quarter of the history.
    pub max_total_bytes: Option<u64>,
}

/// Rows per record batch handed to the Parquet writer.
const BATCH_ROWS: usize = 64 * 1024;
/// Rows per row group: large enough for good compression and statistics.
const ROW_GROUP_ROWS: usize = 1024 * 1024;

fn writer_properties() -> WriterProperties {
    let ts = ColumnPath::from(syscalls::TS);
    WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid zstd level"),
        ))
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        // Sorted timestamps delta-encode to a few bits each; a dictionary would not help.
        .set_column_dictionary_enabled(ts.clone(), false)
        .set_column_encoding(ts, Encoding::DELTA_BINARY_PACKED)
        .set_key_value_metadata(Some(vec![
            KeyValue::new(SCHEMA_VERSION_KEY.to_string(), SCHEMA_VERSION.to_string()),
            KeyValue::new(TABLE_KEY.to_string(), syscalls::TABLE.to_string()),
        ]))
        .build()
}

fn write_error(path: PathBuf, source: ParquetError) -> WriterError {
    match source {
        ParquetError::External(e) => match e.downcast::<std::io::Error>() {
            Ok(io) => WriterError::Io { path, source: *io },
            Err(e) => WriterError::Write {
                path,
                source: ParquetError::External(e),
            },
        },
        source => WriterError::Write { path, source },
    }
}

struct OpenFile {
    writer: ArrowWriter<File>,
    tmp_path: PathBuf,
    final_path: PathBuf,
    rows: u64,
    /// Entry time of the last row written: a row entered earlier must wait for the next
    /// file, or the file would not be sorted.
    last_enter_ns: u64,
}

/// What a capture wrote, for the summary and the tests. `rows`, `files` and `bytes` count
/// what is on disk at the end; `dropped_*` what flight-recorder mode deleted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WrittenStats {
    pub rows: u64,
    pub files: u64,
    pub bytes: u64,
    pub dropped_rows: u64,
    pub dropped_files: u64,
}

/// A finished file, remembered for flight-recorder deletion.
struct ClosedFile {
    path: PathBuf,
    bytes: u64,
    rows: u64,
}

pub struct TableWriter {
    dir: PathBuf,
    builder: BatchBuilder,
    rotation: Rotation,
    props: WriterProperties,
    next_seq: u64,
    file: Option<OpenFile>,
    buffer: Vec<SyscallEvent>,
    held_back: Vec<SyscallEvent>,
    /// When the first row of the current file arrived, buffered or written: the rotation
    /// clock starts there, so rows never wait in memory longer than `max_age`.
    interval_started: Option<Instant>,
    closed: std::collections::VecDeque<ClosedFile>,
    finishing: bool,
    stats: WrittenStats,
    counters: Arc<Counters>,
}

impl TableWriter {
    pub fn new(
        dir: &Path,
        builder: BatchBuilder,
        rotation: Rotation,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            dir: dir.to_path_buf(),
            builder,
            rotation,
            props: writer_properties(),
            next_seq: 1,
            file: None,
            buffer: Vec::with_capacity(BATCH_ROWS),
            held_back: Vec::new(),
            interval_started: None,
            closed: Default::default(),
            finishing: false,
            stats: WrittenStats::default(),
            counters,
        }
    }

    pub fn stats(&self) -> &WrittenStats {
        &self.stats
    }

    /// Appends events sorted by entry time. Events entered before what the open file already
    /// holds are held back for the next file.
    pub fn append(&mut self, sorted: Vec<SyscallEvent>) -> Result<(), WriterError> {
        for e in sorted {
            let last = match &self.file {
                Some(f) => f
                    .last_enter_ns
                    .max(self.buffer.last().map_or(0, |b| b.enter_ns)),
                None => self.buffer.last().map_or(0, |b| b.enter_ns),
            };
            if e.enter_ns < last {
                self.held_back.push(e);
                continue;
            }
            self.interval_started.get_or_insert_with(Instant::now);
            self.buffer.push(e);
            if self.buffer.len() >= BATCH_ROWS {
                self.flush_buffer()?;
            }
        }
        Ok(())
    }

    /// Closes the open file if it is due, and returns the events held back for the next
    /// file, which the caller sorts in with what comes next.
    pub fn rotate_if_due(&mut self) -> Result<Vec<SyscallEvent>, WriterError> {
        // Hand buffered rows to the Parquet writer, so that its size estimate covers them.
        if self.rotation.max_total_bytes.is_some() {
            self.flush_buffer()?;
        }
        let too_old = self
            .interval_started
            .is_some_and(|t| t.elapsed() >= self.rotation.max_age);
        let too_big = self.file.as_ref().is_some_and(|f| {
            f.rows >= self.rotation.max_rows
                || self.rotation.max_total_bytes.is_some_and(|max| {
                    (f.writer.bytes_written() + f.writer.in_progress_size()) as u64 >= max / 4
                })
        });
        let due = too_old || too_big;
        if !due {
            return Ok(Vec::new());
        }
        self.close_file()?;
        Ok(std::mem::take(&mut self.held_back))
    }

    /// Writes what is buffered and held back, and closes the last file. Files closed here
    /// hold the newest calls (and the late ones), so flight-recorder mode keeps them all and
    /// makes room by deleting older ones only.
    pub fn finish(mut self) -> Result<WrittenStats, WriterError> {
        self.finishing = true;
        let droppable = self.closed.len();
        while !self.held_back.is_empty() {
            self.close_file()?;
            let mut held = std::mem::take(&mut self.held_back);
            held.sort_by_key(|e| e.enter_ns);
            self.append(held)?;
        }
        self.close_file()?;
        self.drop_oldest(droppable)?;
        Ok(self.stats)
    }

    fn flush_buffer(&mut self) -> Result<(), WriterError> {
        if self.buffer.is_empty() {
            return Ok(());
        }
        let batch = self.builder.build(&self.buffer)?;
        let last_enter_ns = self.buffer.last().map_or(0, |e| e.enter_ns);
        let rows = self.buffer.len() as u64;
        self.buffer.clear();
        let file = self.open_file()?;
        file.writer
            .write(&batch)
            .map_err(|source| write_error(file.tmp_path.clone(), source))?;
        file.rows += rows;
        file.last_enter_ns = last_enter_ns;
        self.stats.rows += rows;
        self.counters.add_rows(rows);
        Ok(())
    }

    fn open_file(&mut self) -> Result<&mut OpenFile, WriterError> {
        if self.file.is_none() {
            let seq = self.next_seq;
            self.next_seq += 1;
            let tmp_path = self.dir.join(format!(".part-{seq:06}.inprogress"));
            let final_path = self.dir.join(format!("part-{seq:06}.parquet"));
            let create = |path: &Path| {
                OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(path)
            };
            let f = create(&tmp_path).map_err(|source| WriterError::Create {
                path: tmp_path.clone(),
                source,
            })?;
            let writer = ArrowWriter::try_new(f, syscalls::schema(), Some(self.props.clone()))
                .map_err(|source| write_error(tmp_path.clone(), source))?;
            self.file = Some(OpenFile {
                writer,
                tmp_path,
                final_path,
                rows: 0,
                last_enter_ns: 0,
            });
        }
        Ok(self.file.as_mut().expect("opened above"))
    }

    fn close_file(&mut self) -> Result<(), WriterError> {
        self.flush_buffer()?;
        self.interval_started = None;
        let Some(file) = self.file.take() else {
            return Ok(());
        };
        let OpenFile {
            writer,
            tmp_path,
            final_path,
            rows,
            ..
        } = file;
        let f = writer
            .into_inner()
            .map_err(|source| write_error(tmp_path.clone(), source))?;
        let finish = |source| WriterError::Finish {
            path: tmp_path.clone(),
            source,
        };
        f.sync_all().map_err(finish)?;
        let bytes = f.metadata().map_err(finish)?.len();
        fs::rename(&tmp_path, &final_path).map_err(finish)?;
        self.stats.files += 1;
        self.stats.bytes += bytes;
        self.counters.add_file(bytes);
        self.closed.push_back(ClosedFile {
            path: final_path,
            bytes,
            rows,
        });
        if self.finishing {
            return Ok(());
        }
        self.drop_oldest(self.closed.len() - 1)
    }

    /// Flight-recorder mode: deletes up to `droppable` of the oldest files until the rest
    /// fit.
    fn drop_oldest(&mut self, mut droppable: usize) -> Result<(), WriterError> {
        let Some(max) = self.rotation.max_total_bytes else {
            return Ok(());
        };
        while self.stats.bytes > max && droppable > 0 {
            droppable -= 1;
            let oldest = self.closed.pop_front().expect("droppable files exist");
            match fs::remove_file(&oldest.path) {
                // Someone deleted it by hand: gone either way.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other.map_err(|source| WriterError::Finish {
                    path: oldest.path.clone(),
                    source,
                })?,
            }
            self.counters.remove_file(oldest.bytes, oldest.rows);
            self.stats.bytes -= oldest.bytes;
            self.stats.files -= 1;
            self.stats.rows -= oldest.rows;
            self.stats.dropped_files += 1;
            self.stats.dropped_rows += oldest.rows;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use arrow_array::{Array, TimestampNanosecondArray};
    use parquet::{arrow::arrow_reader::ParquetRecordBatchReaderBuilder, file::reader::FileReader};

    use super::*;
    use crate::{clock::WallClock, reorder::event};

    fn writer(dir: &Path, max_rows: u64) -> TableWriter {
        TableWriter::new(
            dir,
            BatchBuilder::new(WallClock::with_offset(0)),
            Rotation {
                max_age: Duration::from_secs(3600),
                max_rows,
                max_total_bytes: None,
            },
            Counters::new(),
        )
    }

    fn read_ts(path: &Path) -> Vec<i64> {
        let f = File::open(path).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(f)
            .unwrap()
            .build()
            .unwrap();
        let mut out = Vec::new();
        for batch in reader {
            let batch = batch.unwrap();
            let ts = batch
                .column(0)
                .as_any()
                .downcast_ref::<TimestampNanosecondArray>()
                .unwrap();
            out.extend((0..ts.len()).map(|i| ts.value(i)));
        }
        out
    }

    fn parquet_files(dir: &Path) -> Vec<PathBuf> {
        let mut files: Vec<PathBuf> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn late_rows_go_to_the_next_file_so_every_file_is_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path(), 1_000_000);
        w.append(vec![event(10, 1), event(20, 1), event(30, 1)])
            .unwrap();
        w.flush_buffer().unwrap();
        // A call that blocked: entered at 15, arrived after 30 was written.
        w.append(vec![event(15, 2), event(40, 1)]).unwrap();
        let stats = w.finish().unwrap();
        assert_eq!(stats.rows, 5);
        assert_eq!(stats.files, 2);
        let files = parquet_files(dir.path());
        assert_eq!(files.len(), 2);
        assert_eq!(read_ts(&files[0]), vec![10, 20, 30, 40]);
        assert_eq!(read_ts(&files[1]), vec![15]);
    }

    #[test]
    fn files_carry_schema_version_zstd_and_mode_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path(), 1_000_000);
        w.append((0..1000).map(|i| event(i, 1)).collect()).unwrap();
        let stats = w.finish().unwrap();
        let files = parquet_files(dir.path());
        assert_eq!(files, vec![dir.path().join("part-000001.parquet")]);
        assert_eq!(stats.bytes, fs::metadata(&files[0]).unwrap().len());
        assert_eq!(
            fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let reader =
            parquet::file::reader::SerializedFileReader::new(File::open(&files[0]).unwrap())
                .unwrap();
        let meta = reader.metadata();
        let kv = meta.file_metadata().key_value_metadata().unwrap();
        let version = kv.iter().find(|k| k.key == SCHEMA_VERSION_KEY).unwrap();
        assert_eq!(version.value.as_deref(), Some("1"));
        let col = meta.row_group(0).column(0);
        assert!(matches!(col.compression(), Compression::ZSTD(_)));
        assert_eq!(meta.file_metadata().num_rows(), 1000);
    }

    #[test]
    fn rows_never_wait_in_memory_past_the_rotation_age() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = TableWriter::new(
            dir.path(),
            BatchBuilder::new(WallClock::with_offset(0)),
            Rotation {
                max_age: Duration::from_millis(20),
                max_rows: 1_000_000,
                max_total_bytes: None,
            },
            Counters::new(),
        );
        // Far fewer rows than a batch: without the age bound they would stay buffered.
        w.append(vec![event(1, 1), event(2, 1)]).unwrap();
        assert!(w.rotate_if_due().unwrap().is_empty());
        assert!(parquet_files(dir.path()).is_empty());
        std::thread::sleep(Duration::from_millis(30));
        w.rotate_if_due().unwrap();
        assert_eq!(
            parquet_files(dir.path()),
            vec![dir.path().join("part-000001.parquet")]
        );
        assert_eq!(read_ts(&dir.path().join("part-000001.parquet")), vec![1, 2]);
    }

    #[test]
    fn flight_recorder_keeps_the_newest_files_under_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path(), 1000);
        w.rotation.max_total_bytes = Some(40_000);
        for chunk in 0..20u64 {
            let events = (chunk * 1000..(chunk + 1) * 1000)
                .map(|i| event(i * 7919 % 100_003 + chunk * 100_003, 1));
            let mut events: Vec<_> = events.collect();
            events.sort_by_key(|e| e.enter_ns);
            w.append(events).unwrap();
            w.flush_buffer().unwrap();
            w.rotate_if_due().unwrap();
        }
        let stats = w.finish().unwrap();
        let files = parquet_files(dir.path());
        let on_disk: u64 = files.iter().map(|f| fs::metadata(f).unwrap().len()).sum();
        assert!(stats.dropped_files > 0, "{stats:?}");
        assert_eq!(stats.files + stats.dropped_files, 20);
        assert_eq!(stats.rows + stats.dropped_rows, 20_000);
        assert_eq!(on_disk, stats.bytes);
        assert!(on_disk <= 40_000, "{on_disk}");
        // What survives is the newest: the last file written is there.
        assert_eq!(
            files.last().unwrap(),
            &dir.path().join("part-000020.parquet")
        );
        let kept_rows: usize = files.iter().map(|f| read_ts(f).len()).sum();
        assert_eq!(kept_rows as u64, stats.rows);
    }

    #[test]
    fn rotates_at_the_row_bound_and_never_leaves_unfinished_names() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = writer(dir.path(), 100);
        for chunk in 0..5u64 {
            w.append(
                (chunk * 100..(chunk + 1) * 100)
                    .map(|i| event(i, 1))
                    .collect(),
            )
            .unwrap();
            w.flush_buffer().unwrap();
            assert!(w.rotate_if_due().unwrap().is_empty());
        }
        let stats = w.finish().unwrap();
        assert_eq!(stats.files, 5);
        let files = parquet_files(dir.path());
        assert!(files.iter().all(|f| f.extension().unwrap() == "parquet"));
        let all: Vec<i64> = files.iter().flat_map(|f| read_ts(f)).collect();
        assert_eq!(all, (0..500).collect::<Vec<i64>>());
    }
}
