//! One Parquet file's life, for every table the recorder writes: created 0600 under a name
//! no reader picks up, then synced and renamed into place once its footer is written. So
//! every `*.parquet` in a capture is complete and readable, whatever happens to the
//! recorder, and a restarted recorder numbers its files after those already there.
use std::{
    fs::{self, File, OpenOptions},
    io,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use arrow_array::RecordBatch;
use arrow_schema::{ArrowError, SchemaRef};
use parquet::{
    arrow::ArrowWriter,
    basic::{Compression, Encoding, ZstdLevel},
    errors::ParquetError,
    file::{
        metadata::KeyValue,
        properties::{EnabledStatistics, WriterProperties, WriterPropertiesBuilder, WriterVersion},
        reader::{FileReader, SerializedFileReader},
    },
};
use tracepost_schema::{
    DATA_CHECKSUM_KEY, FILE_EXTENSION, RECORDER_CREATED_BY, SCHEMA_VERSION, SCHEMA_VERSION_KEY,
    TABLE_KEY,
};

use crate::files::summed_write::SummedWrite;

#[derive(Debug, thiserror::Error)]
pub enum WriterError {
    #[error("cannot create {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
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
        source: io::Error,
    },
    #[error("cannot finish {}", path.display())]
    Finish {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The file is whole, footer and all, and only its rename failed: its rows are kept
    /// where they are, which no reader opens until it is renamed.
    #[error(
        "cannot rename {} to {} (its {rows} rows are whole and kept there: rename it by \
         hand to read them)",
        path.display(),
        to.display()
    )]
    Unrenamed {
        path: PathBuf,
        to: PathBuf,
        rows: u64,
        #[source]
        source: io::Error,
    },
    #[error("cannot read the files already in {}", path.display())]
    Scan {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A file numbered so high that the numbers after it would wrap to 0 and overwrite
    /// the capture's first files.
    #[error(
        "{} is numbered {seq}, at or past the {MAX_PART} no recorder reaches: rename or remove it",
        path.display()
    )]
    PartNumber { path: PathBuf, seq: u64 },
    #[error("cannot build a record batch")]
    Batch(#[from] ArrowError),
    #[error("the writer thread died: {0}")]
    Died(String),
}

/// Properties every table shares: zstd, Parquet 2, and the metadata that names the table
/// and the schema version, so a stray file still says what it is. PLAIN is the fallback
/// when a dictionary is too large: Parquet 2's default, the delta encoders, takes about
/// 100 KB a column before the first value, 15 MB for the small tables at every rotation,
/// which showed as the recorder's second largest heap peak.
pub fn properties(table: &str) -> WriterPropertiesBuilder {
    WriterProperties::builder()
        .set_writer_version(WriterVersion::PARQUET_2_0)
        .set_encoding(Encoding::PLAIN)
        .set_compression(Compression::ZSTD(
            ZstdLevel::try_new(3).expect("valid zstd level"),
        ))
        .set_key_value_metadata(Some(vec![
            KeyValue::new(SCHEMA_VERSION_KEY.to_string(), SCHEMA_VERSION.to_string()),
            KeyValue::new(TABLE_KEY.to_string(), table.to_string()),
        ]))
}

/// Properties of the files written through [`PartFile`], whose data is summed: no
/// statistics and no page index, so that all a reader learns from outside the summed bytes
/// is where they are. A flipped bit in a `processes` file's statistics made `WHERE pid >
/// N` skip its rows, exit 0. These tables are small: pruning them saves nothing.
pub fn summed_properties(table: &str) -> WriterProperties {
    properties(table)
        .set_statistics_enabled(EnabledStatistics::None)
        .set_offset_index_disabled(true)
        .set_created_by(format!(
            "{RECORDER_CREATED_BY} version {}",
            env!("CARGO_PKG_VERSION")
        ))
        .build()
}

pub(crate) fn write_error(path: PathBuf, source: ParquetError) -> WriterError {
    match source {
        ParquetError::External(e) => match e.downcast::<io::Error>() {
            Ok(io) => WriterError::Io { path, source: *io },
            Err(e) => WriterError::Write {
                path,
                source: ParquetError::External(e),
            },
        },
        // A buffered write that failed as the file began: parquet keeps only the OS
        // error's text.
        ParquetError::General(msg) if msg.starts_with("fail to get inner writer: ") => {
            let why = msg["fail to get inner writer: ".len()..].trim_matches('"');
            WriterError::Io {
                path,
                source: io::Error::other(why.to_string()),
            }
        }
        source => WriterError::Write { path, source },
    }
}

pub(crate) fn create_private(path: &Path) -> Result<File, WriterError> {
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|source| WriterError::Create {
            path: path.to_path_buf(),
            source,
        })?;
    begun().push(path.to_path_buf());
    Ok(file)
}

/// The unfinished files this recorder began and has not renamed into place: a failure
/// removes these, and never an earlier run's, which may be whole (its rename refused) and
/// is left in place as the README says (helper-72).
static BEGUN: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

fn begun() -> std::sync::MutexGuard<'static, Vec<PathBuf>> {
    BEGUN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Removes the files of `dir` that this recorder was writing: without a footer they can
/// never be read, and on a full disk their bytes are the room the other tables need.
pub fn remove_unfinished(dir: &Path) {
    begun().retain(|path| {
        if path.parent() != Some(dir) {
            return true;
        }
        let _ = fs::remove_file(path);
        false
    });
}

/// `path` is no longer this recorder's to remove: renamed into place, or whole where a
/// rename was refused.
fn settled(path: &Path) {
    begun().retain(|p| p != path);
}

/// A file being written.
pub struct PartFile {
    writer: ArrowWriter<SummedWrite<File>>,
    tmp_path: PathBuf,
    final_path: PathBuf,
    rows: u64,
}

/// A file renamed into place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub path: PathBuf,
    pub bytes: u64,
    pub rows: u64,
}

pub(crate) fn part_name(seq: u64) -> String {
    format!("part-{seq:06}.{FILE_EXTENSION}")
}

pub(crate) fn tmp_name(seq: u64) -> String {
    format!(".part-{seq:06}.inprogress")
}

impl PartFile {
    /// `dir/.part-SEQ.inprogress`, to become `dir/part-SEQ.parquet`.
    pub fn create(
        dir: &Path,
        seq: u64,
        schema: SchemaRef,
        props: WriterProperties,
    ) -> Result<Self, WriterError> {
        Self::create_named(
            dir.join(tmp_name(seq)),
            dir.join(part_name(seq)),
            schema,
            props,
        )
    }

    /// A file with a name of its own, such as one capture's row.
    pub fn create_named(
        tmp_path: PathBuf,
        final_path: PathBuf,
        schema: SchemaRef,
        props: WriterProperties,
    ) -> Result<Self, WriterError> {
        let f = create_private(&tmp_path)?;
        let writer = ArrowWriter::try_new(SummedWrite::new(f), schema, Some(props))
            .map_err(|source| write_error(tmp_path.clone(), source))?;
        Ok(Self {
            writer,
            tmp_path,
            final_path,
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), WriterError> {
        self.writer
            .write(batch)
            .map_err(|source| write_error(self.tmp_path.clone(), source))?;
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes written plus the writer's estimate of what it buffers.
    pub fn size_estimate(&self) -> u64 {
        (self.writer.bytes_written() + self.writer.in_progress_size()) as u64
    }

    /// Writes the footer, with the checksum of the bytes before it, syncs, and renames into
    /// place, replacing a file of the same name.
    pub fn finish(self) -> Result<Finished, WriterError> {
        let Self {
            mut writer,
            tmp_path,
            final_path,
            rows,
        } = self;
        // The last row group, then out of the writer's buffer: the sum is then of every
        // byte before the page index and footer.
        writer
            .flush()
            .map_err(|source| write_error(tmp_path.clone(), source))?;
        writer.sync().map_err(|source| WriterError::Io {
            path: tmp_path.clone(),
            source,
        })?;
        let sum = writer.inner().sum();
        writer.append_key_value_metadata(KeyValue::new(
            DATA_CHECKSUM_KEY.to_string(),
            sum.to_value(),
        ));
        let f = writer
            .into_inner()
            .map_err(|source| write_error(tmp_path.clone(), source))?
            .into_inner();
        commit(f, tmp_path, final_path, rows)
    }
}

/// Syncs a file whose footer is written and renames it into place.
pub(crate) fn commit(
    f: File,
    tmp_path: PathBuf,
    final_path: PathBuf,
    rows: u64,
) -> Result<Finished, WriterError> {
    let finish = |source| WriterError::Finish {
        path: tmp_path.clone(),
        source,
    };
    f.sync_all().map_err(finish)?;
    let bytes = f.metadata().map_err(finish)?.len();
    // Whole from here on, footer and all: kept if the rename is refused (a directory made
    // immutable, or moved away), and named.
    settled(&tmp_path);
    fs::rename(&tmp_path, &final_path).map_err(|source| WriterError::Unrenamed {
        path: tmp_path.clone(),
        to: final_path.clone(),
        rows,
        source,
    })?;
    Ok(Finished {
        path: final_path,
        bytes,
        rows,
    })
}

/// Makes sure `dir` holds at least one finished file of `table`: one with the schema and
/// no rows if it holds none, so that `table/*.parquet` matches in every reader.
pub fn ensure_one(dir: &Path, table: &str, schema: SchemaRef) -> Result<(), WriterError> {
    let (files, next_seq) = scan(dir)?;
    if files.is_empty() {
        PartFile::create(dir, next_seq, schema, summed_properties(table))?.finish()?;
    }
    Ok(())
}

/// The largest value of the Int64 column `column` in the finished files of `dir`, from the
/// files' statistics (no data is read). None if no file has a row.
pub fn max_i64(dir: &Path, column: &str) -> Option<i64> {
    use parquet::file::statistics::Statistics;
    let (files, _) = scan(dir).ok()?;
    let mut max: Option<i64> = None;
    for f in files {
        let Some(reader) = File::open(&f.path)
            .ok()
            .and_then(|file| SerializedFileReader::new(file).ok())
        else {
            continue;
        };
        let meta = reader.metadata();
        for rg in meta.row_groups() {
            let Some(chunk) = rg
                .columns()
                .iter()
                .find(|c| c.column_path().string() == column)
            else {
                continue;
            };
            if let Some(Statistics::Int64(s)) = chunk.statistics()
                && let Some(&m) = s.max_opt()
            {
                max = Some(max.map_or(m, |x| x.max(m)));
            }
        }
    }
    max
}

/// The first part number not taken as a recorder's: numbered from 1, a file every
/// millisecond would reach it in 30,000 years. Only a file planted just below it can lead a
/// recorder to it, and the next run then refuses that directory in one line: nothing is
/// overwritten. A planted `part-18446744073709551615.parquet` made the next number wrap to 0,
/// and the run after that overwrote the calls of the one before (helper-65).
pub const MAX_PART: u64 = 1_000_000_000_000_000;

/// The files a previous recorder left in `dir`: the finished ones (oldest first), and the
/// next free sequence number, past unfinished ones too.
pub fn scan(dir: &Path) -> Result<(Vec<Finished>, u64), WriterError> {
    let err = |source| WriterError::Scan {
        path: dir.to_path_buf(),
        source,
    };
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok((Vec::new(), 1)),
        Err(e) => return Err(err(e)),
    };
    let mut finished = Vec::new();
    let mut max_seq = 0;
    for entry in entries {
        let entry = entry.map_err(err)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let seq = name
            .strip_prefix("part-")
            .and_then(|s| s.strip_suffix(&format!(".{FILE_EXTENSION}")))
            .map(|s| (s, true))
            .or_else(|| {
                name.strip_prefix(".part-")
                    .and_then(|s| s.strip_suffix(".inprogress"))
                    .map(|s| (s, false))
            })
            .and_then(|(s, done)| s.parse::<u64>().ok().map(|n| (n, done)));
        let Some((seq, done)) = seq else { continue };
        if seq >= MAX_PART {
            return Err(WriterError::PartNumber {
                path: entry.path(),
                seq,
            });
        }
        max_seq = max_seq.max(seq);
        if done {
            let path = entry.path();
            let bytes = entry.metadata().map_err(err)?.len();
            // A file that cannot be read still takes its room on disk; count it as empty.
            let rows = File::open(&path)
                .ok()
                .and_then(|f| SerializedFileReader::new(f).ok())
                .map_or(0, |r| r.metadata().file_metadata().num_rows().max(0) as u64);
            finished.push((seq, Finished { path, bytes, rows }));
        }
    }
    finished.sort_by_key(|(seq, _)| *seq);
    Ok((finished.into_iter().map(|(_, f)| f).collect(), max_seq + 1))
}

/// How many columns the newest finished file in `dir` has, where one reads.
pub fn newest_columns(dir: &Path) -> Option<usize> {
    let (finished, _) = scan(dir).ok()?;
    let file = File::open(&finished.last()?.path).ok()?;
    let reader = SerializedFileReader::new(file).ok()?;
    Some(
        reader
            .metadata()
            .file_metadata()
            .schema_descr()
            .num_columns(),
    )
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::sync::Arc;

    use arrow_array::Int64Array;
    use arrow_schema::{DataType, Field, Schema};

    use super::*;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(vec![1, 2, 3]))]).unwrap()
    }

    #[test]
    fn files_appear_only_when_finished_and_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let b = batch();
        let mut f = PartFile::create(dir.path(), 7, b.schema(), summed_properties("t")).unwrap();
        f.write(&b).unwrap();
        assert_eq!(scan(dir.path()).unwrap(), (vec![], 8));
        let done = f.finish().unwrap();
        assert_eq!(done.path, dir.path().join("part-000007.parquet"));
        assert_eq!(done.rows, 3);
        let mode = fs::metadata(&done.path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let (found, next) = scan(dir.path()).unwrap();
        assert_eq!(found, vec![done]);
        assert_eq!(next, 8);
    }

    #[test]
    fn a_part_number_that_would_wrap_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let name = "part-18446744073709551615.parquet";
        fs::write(dir.path().join(name), b"x").unwrap();
        let err = scan(dir.path()).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "{} is numbered 18446744073709551615, at or past the 1000000000000000 no \
                 recorder reaches: rename or remove it",
                dir.path().join(name).display()
            )
        );
        fs::remove_file(dir.path().join(name)).unwrap();
        fs::write(dir.path().join(".part-1000000000000000.inprogress"), b"x").unwrap();
        assert!(scan(dir.path()).is_err());
        fs::remove_file(dir.path().join(".part-1000000000000000.inprogress")).unwrap();
        fs::write(dir.path().join(".part-999999999999999.inprogress"), b"x").unwrap();
        assert_eq!(scan(dir.path()).unwrap().1, MAX_PART);
    }

    #[test]
    fn scan_numbers_after_unfinished_files_and_ignores_others() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(".part-000012.inprogress"), b"").unwrap();
        fs::write(dir.path().join("notes.txt"), b"").unwrap();
        assert_eq!(scan(dir.path()).unwrap(), (vec![], 13));
        assert_eq!(scan(&dir.path().join("absent")).unwrap(), (vec![], 1));
    }
}
