//! Whether one Parquet file of a capture can be read, decided before DataFusion sees it.
//!
//! A postmortem meets copies cut short by `scp`, files of other tools dropped into the
//! directory, and files from another table. DataFusion would fail on them with a message
//! that does not name the file, or skip an empty one in silence. Reading the footer first
//! costs one small read per file and lets every refusal name the file and say what is wrong.
use std::{
    io,
    os::unix::fs::{FileExt as _, OpenOptionsExt as _},
    path::Path,
    sync::Arc,
};

use bytes::Bytes;
use datafusion::{
    arrow::{array::RecordBatch, datatypes::DataType},
    parquet::{
        arrow::{
            ProjectionMask,
            arrow_reader::{ArrowReaderMetadata, ParquetRecordBatchReaderBuilder},
            parquet_to_arrow_schema,
        },
        basic::Encoding,
        errors::ParquetError,
        file::{
            metadata::{
                ColumnChunkMetaData, FileMetaData, PageIndexPolicy, ParquetMetaData,
                ParquetMetaDataReader,
            },
            page_index::offset_index::PageLocation,
            reader::ChunkReader,
        },
    },
};
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt as _};
use tracepost_schema::{
    DATA_CHECKSUM_KEY, DataChecksum, OLDEST_SCHEMA_VERSION, RECORDER_CREATED_BY, SCHEMA_VERSION,
    SCHEMA_VERSION_KEY, TABLE_KEY, TABLES, schema_of_version, syscalls,
};
use url::Url;

use crate::contained::contained;

/// What is wrong with a file. Each message is complete on its own line: the file's path
/// goes before it.
#[derive(Debug, thiserror::Error)]
pub enum FileProblem {
    #[error("0 bytes (an interrupted copy?)")]
    Empty,
    #[error("not a regular file")]
    NotFile,
    /// Run by root: a symlink planted in a capture (and kept by `cp -r`) led root's reads
    /// to a file only root may read (helper-67).
    #[error(
        "a symlink, which analyze run as root does not follow (it could lead to a file only \
         root may read): copy the file in"
    )]
    Symlink,
    #[error("cannot read it: {0}")]
    Io(io::Error),
    /// An object whose key cannot be opened by URL as it is named.
    #[error("its name cannot be read back through a URL (a `%` in it?); rename it")]
    Unaddressable,
    /// The store refused or failed: one line of what it said.
    #[error("cannot read it: {0}")]
    Store(String),
    /// Cut short, random bytes, or a footer that points outside the file.
    #[error("not a readable Parquet file ({0})")]
    NotParquet(String),
    #[error("not a tracepost file: its metadata has no {TABLE_KEY}")]
    Foreign,
    /// A name no tracepost table has: a flipped byte in the footer, or another tool's key.
    /// Calling it a file of that table would send the reader looking for a table that
    /// does not exist.
    #[error("its metadata names table {0:?}, which tracepost does not have (a damaged footer?)")]
    UnknownTable(String),
    /// The recorder's other keys are there: the table's key was damaged, not left out.
    #[error("its metadata has no {TABLE_KEY} but tracepost's other keys (a damaged footer?)")]
    NoTable,
    #[error("a file of table {found}, not of {expected}")]
    OtherTable {
        found: String,
        expected: &'static str,
    },
    #[error(
        "schema version {0}, which this analyze cannot read (it reads {OLDEST_SCHEMA_VERSION} to {SCHEMA_VERSION})"
    )]
    Version(String),
    #[error("column {column} is {found}, not {expected}")]
    ColumnType {
        column: String,
        found: DataType,
        expected: DataType,
    },
    /// A column declared required where the contract allows NULL (or the reverse): the
    /// reader would then look for definition levels where there are none.
    #[error("column {column} is {}, not {}", optional(*.nullable), optional(!*.nullable))]
    Repetition { column: String, nullable: bool },
    #[error("it lacks column {0}")]
    MissingColumn(String),
    /// The bytes before the footer are not those the recorder summed as it wrote them.
    #[error("its data does not match the checksum in its footer (damaged on disk or in a copy)")]
    Checksum,
}

/// A name read from a damaged footer, short enough for one line: up to 40 characters.
fn shortened(name: &str) -> String {
    let line = one_line(name);
    match line.char_indices().nth(40) {
        Some((at, _)) => format!("{}…", &line[..at]),
        None => line,
    }
}

/// Whether `record` wrote the file, as its footer says.
fn written_by_record(meta: &FileMetaData) -> bool {
    meta.created_by()
        .is_some_and(|by| by.starts_with(RECORDER_CREATED_BY))
}

/// How a column's repetition reads in a message.
fn optional(nullable: bool) -> &'static str {
    if nullable { "optional" } else { "required" }
}

/// A file that passed: its schema version decides how its columns are read.
#[derive(Debug, Clone)]
pub struct TableFile {
    /// Its path or URL, for messages.
    pub name: String,
    /// How DataFusion opens it: a `file://` URL of the real path, or the object's URL.
    pub url: Url,
    pub version: u32,
    /// Rows, from the footer: what a copy holds, against what its recorder wrote.
    pub rows: u64,
    /// What the footer says of the data ([`fingerprint`]): two files of one table that
    /// share it hold the same calls (a copy made beside the original).
    pub fingerprint: Option<String>,
    /// The latest `ts` in a `syscalls` file, in µs since the epoch, from its footer's
    /// bounds: a capture whose recorder did not finish says up to when its copy has calls.
    pub newest_us: Option<i64>,
    /// A `capture` file's rows, of its [`RUN_COLUMNS`], decoded as it is checked: the
    /// warnings that read them before every query cost more as SQL (a plan and a scan,
    /// about 2 ms a query) than the file itself. Empty for the other tables.
    pub capture_rows: Vec<RecordBatch>,
}

impl TableFile {
    /// A file that passed its checks, with what its footer says of its rows.
    fn new(name: String, url: Url, version: u32, metadata: &ParquetMetaData) -> Self {
        Self {
            name,
            url,
            version,
            rows: metadata.file_metadata().num_rows().max(0) as u64,
            fingerprint: fingerprint(metadata),
            // Version 1 wrote nanoseconds.
            newest_us: newest_ts(metadata).map(|ts| if version == 1 { ts / 1000 } else { ts }),
            capture_rows: Vec::new(),
        }
    }
}

/// The largest `ts` the footer's bounds give, where the file has that column and bounds.
fn newest_ts(metadata: &ParquetMetaData) -> Option<i64> {
    use datafusion::parquet::file::statistics::Statistics;
    metadata
        .row_groups()
        .iter()
        .filter_map(|rg| {
            let column = rg
                .columns()
                .iter()
                .find(|c| c.column_path().string() == tracepost_schema::syscalls::TS)?;
            match column.statistics()? {
                Statistics::Int64(s) => s.max_opt().copied(),
                _ => None,
            }
        })
        .max()
}

/// What the footer says of the data, which two different files of one capture never
/// share: the rows, the recorder's checksum of the data where it wrote one, and each
/// column chunk's size and bounds (`syscalls`' first column is a time). None for an empty
/// file, which every capture's empty tables share, and for a file with neither checksum
/// nor bounds.
fn fingerprint(metadata: &ParquetMetaData) -> Option<String> {
    use std::fmt::Write as _;
    let meta = metadata.file_metadata();
    if meta.num_rows() == 0 {
        return None;
    }
    // The small tables' files carry the recorder's checksum of their data, and no
    // bounds; `syscalls` files have bounds, and no checksum.
    let sum = meta
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == DATA_CHECKSUM_KEY))
        .and_then(|e| e.value.as_deref());
    let mut bounded = false;
    let mut print = format!("{} {}", meta.num_rows(), sum.unwrap_or("-"));
    for column in metadata.row_groups().iter().flat_map(|rg| rg.columns()) {
        let _ = write!(print, " {}", column.compressed_size());
        if let Some(stats) = column.statistics() {
            let bytes = |b: Option<&[u8]>| b.map(|b| format!("{b:02x?}")).unwrap_or_default();
            bounded |= stats.min_bytes_opt().is_some();
            let _ = write!(
                print,
                ":{}:{}",
                bytes(stats.min_bytes_opt()),
                bytes(stats.max_bytes_opt())
            );
        }
    }
    // Neither (a file another program wrote): sizes alone could match by chance.
    (bounded || sum.is_some()).then_some(print)
}

/// Checks that the local file `path` is a complete Parquet file of `table`, in a schema
/// version this analyzer reads, with the contract's columns at the contract's types.
pub fn check(path: &Path, table: &'static str) -> Result<TableFile, FileProblem> {
    if as_root() && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(FileProblem::Symlink);
    }
    // O_NONBLOCK: a FIFO named like a file must not hang the analyzer before it is refused.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(FileProblem::Io)?;
    let meta = file.metadata().map_err(FileProblem::Io)?;
    if !meta.is_file() {
        return Err(FileProblem::NotFile);
    }
    if meta.len() == 0 {
        return Err(FileProblem::Empty);
    }
    // Shorter than Parquet's two marks and a length: cut short.
    if meta.len() < 12 {
        return Err(cut_short());
    }
    let mut end = [0u8; 8];
    if meta.len() >= 8 {
        file.read_exact_at(&mut end, meta.len() - 8)
            .map_err(FileProblem::Io)?;
        closing_mark(&end)?;
        footer_fits(u64::from(u32::from_le_bytes([
            end[0], end[1], end[2], end[3],
        ])))?;
    }
    let metadata = footer_reader()
        .parse_and_finish(&file)
        .map_err(|e| FileProblem::NotParquet(one_line(&e.to_string())))?;
    let version = judge(&metadata, meta.len(), table)?;
    if let Some(sum) = data_checksum(&metadata, meta.len())? {
        // At an offset: reading the footer moved the file's position.
        let mut data = vec![0; sum.len as usize];
        file.read_exact_at(&mut data, 0).map_err(FileProblem::Io)?;
        matches(sum, &data)?;
    }
    let capture_rows = match table == tracepost_schema::capture::TABLE {
        true => run_rows(file.try_clone().map_err(FileProblem::Io)?, &metadata)?,
        false => Vec::new(),
    };
    // The real path: an object-store path may not hold `..`, tabs or newlines as written,
    // and the URL is only how DataFusion opens the file.
    let real = path.canonicalize().map_err(FileProblem::Io)?;
    let url = Url::from_file_path(&real).map_err(|()| {
        FileProblem::Io(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not an absolute path",
        ))
    })?;
    Ok(TableFile {
        capture_rows,
        ..TableFile::new(path.display().to_string(), url, version, &metadata)
    })
}

/// The same checks for an object in a store, reading only its footer.
pub async fn check_remote(
    store: &Arc<dyn ObjectStore>,
    object: &ObjectMeta,
    url: Url,
    table: &'static str,
) -> Result<TableFile, FileProblem> {
    if object.size == 0 {
        return Err(FileProblem::Empty);
    }
    let (metadata, tail) = read_footer(store, object).await?;
    let version = judge(&metadata, object.size, table)?;
    if let Some(sum) = data_checksum(&metadata, object.size)? {
        // A small table's file is usually smaller than the first read of its footer,
        // which then holds it whole: a fleet's many small files cost one request each.
        let data = if tail.len() as u64 == object.size {
            tail.slice(..sum.len as usize)
        } else {
            store
                .get_range(&object.location, 0..sum.len)
                .await
                .map_err(|e| FileProblem::Store(causes(&e)))?
        };
        matches(sum, &data)?;
    }
    let capture_rows = match table == tracepost_schema::capture::TABLE {
        // A capture file is a few KiB, usually inside the footer's first read. One past
        // the bound is no recorder's.
        true if object.size > MAX_FOOTER => {
            return Err(FileProblem::NotParquet(format!(
                "{} bytes, more than the {MAX_FOOTER} any capture file holds",
                object.size
            )));
        }
        true => {
            let whole = match tail.len() as u64 == object.size {
                true => tail,
                false => store
                    .get_range(&object.location, 0..object.size)
                    .await
                    .map_err(|e| FileProblem::Store(causes(&e)))?,
            };
            run_rows(whole, &metadata)?
        }
        false => Vec::new(),
    };
    Ok(TableFile {
        capture_rows,
        ..TableFile::new(url.to_string(), url, version, &metadata)
    })
}

/// The rows of a `capture` file, of the columns [`run_columns`] names, read through
/// `source` (the file, or its bytes from a store) with the footer already parsed.
fn run_rows<T: ChunkReader + 'static>(
    source: T,
    metadata: &ParquetMetaData,
) -> Result<Vec<RecordBatch>, FileProblem> {
    let mask = run_columns(metadata)?;
    let options = ArrowReaderMetadata::try_new(Arc::new(metadata.clone()), Default::default())
        .map_err(not_parquet)?;
    ParquetRecordBatchReaderBuilder::new_with_metadata(source, options)
        .with_projection(mask)
        .build()
        .map_err(not_parquet)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| FileProblem::NotParquet(one_line(&e.to_string())))
}

/// What a refusal of a footer or page says.
fn not_parquet(e: ParquetError) -> FileProblem {
    FileProblem::NotParquet(one_line(&e.to_string()))
}

/// The columns of the `capture` table that the warnings about each run read, in the order
/// [`TableFile::capture_rows`] holds them.
pub const RUN_COLUMNS: [&str; 9] = {
    use tracepost_schema::capture as c;
    [
        c::STARTED,
        c::ENDED,
        c::STOPPED_EARLY,
        c::INCOMPLETE_FROM,
        c::DELETED_EVENTS,
        c::EVENTS,
        c::LOST_PROCESS_EVENTS,
        c::LOST_EVENTS,
        c::CAPTURE_ID,
    ]
};

/// Whether this process runs as root: then it reads nothing another user could have led
/// it to.
pub fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// The columns of a `capture` file that the warnings about its runs read, and only those:
/// a damage elsewhere in the file is met, and named, by the query that reads it, as
/// before. Their chunks are bounded: a capture file's are a few KiB, and one that claims
/// gigabytes (a hole in a sparse file) would make them that large in memory.
fn run_columns(metadata: &ParquetMetaData) -> Result<ProjectionMask, FileProblem> {
    let schema = metadata.file_metadata().schema_descr();
    let read = |name: &str| RUN_COLUMNS.contains(&name);
    let bytes: i64 = metadata
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns())
        .filter(|chunk| read(&chunk.column_path().string()))
        .map(|chunk| chunk.compressed_size().max(0))
        .sum();
    if bytes as u64 > MAX_FOOTER {
        return Err(FileProblem::NotParquet(format!(
            "its run columns claim {bytes} bytes, more than the {MAX_FOOTER} any capture's hold"
        )));
    }
    let present: Vec<&str> = RUN_COLUMNS
        .into_iter()
        .filter(|name| {
            schema
                .columns()
                .iter()
                .any(|col| col.path().string() == *name)
        })
        .collect();
    Ok(ProjectionMask::columns(schema, present))
}

/// Bytes read from the end of an object at first: a recorder's footer fits several times.
const FOOTER_GUESS: u64 = 64 * 1024;

/// An object's footer, in one ranged read, or two when it is larger than the guess, and
/// the bytes read from its end.
async fn read_footer(
    store: &Arc<dyn ObjectStore>,
    object: &ObjectMeta,
) -> Result<(ParquetMetaData, Bytes), FileProblem> {
    let size = object.size;
    let tail = |n: u64| async move {
        store
            .get_range(&object.location, size - n..size)
            .await
            // The store failed, not the file: say what the store said.
            .map_err(|e| FileProblem::Store(causes(&e)))
    };
    let not_parquet = |e: ParquetError| FileProblem::NotParquet(one_line(&e.to_string()));
    let mut reader = footer_reader();
    let mut bytes = tail(size.min(FOOTER_GUESS)).await?;
    match bytes.len().checked_sub(8).and_then(|at| bytes.get(at..)) {
        Some(end) if size >= 12 => closing_mark(end)?,
        _ => return Err(cut_short()),
    }
    loop {
        match reader.try_parse_sized(&bytes, size) {
            Ok(()) => return Ok((reader.finish().map_err(not_parquet)?, bytes)),
            Err(ParquetError::NeedMoreData(needed))
                if (needed as u64) <= size && (needed as u64) > bytes.len() as u64 =>
            {
                footer_fits(needed as u64)?;
                bytes = tail(needed as u64).await?;
            }
            Err(e) => return Err(not_parquet(e)),
        }
    }
}

/// A Parquet file ends with `PAR1`. Without it the length before it is any 4 bytes: a
/// file cut short was refused as one whose "footer claims 2862653440 bytes" (helper-93).
fn closing_mark(end: &[u8]) -> Result<(), FileProblem> {
    match end.ends_with(b"PAR1") {
        true => Ok(()),
        false => Err(cut_short()),
    }
}

/// A file too short for Parquet, or without its closing mark (helper-94: one of 5 bytes
/// was "too small" in the reader's words, unlike one of 3000).
fn cut_short() -> FileProblem {
    FileProblem::NotParquet(
        "it does not end as a Parquet file does: cut short (an interrupted copy?), or not \
         Parquet"
            .into(),
    )
}

/// The largest footer read. A recorder's are tens of KiB (28 KiB for a file of 10M
/// calls); a file that claims gigabytes made `analyze` allocate them before refusing it
/// (helper-65: 2.1 GB and 6 s for each such file a capture's owner planted).
const MAX_FOOTER: u64 = 64 << 20;

fn footer_fits(len: u64) -> Result<(), FileProblem> {
    match len <= MAX_FOOTER {
        true => Ok(()),
        false => Err(FileProblem::NotParquet(format!(
            "its footer claims {len} bytes, more than the {MAX_FOOTER} any capture's holds"
        ))),
    }
}

/// Reads the footer and, where the file has one, its page index: the index is read at
/// query time too, and a damaged one must be refused here, by name.
fn footer_reader() -> ParquetMetaDataReader {
    ParquetMetaDataReader::new().with_page_index_policy(PageIndexPolicy::Optional)
}

/// The checks on a footer that was read: where it says the data is, the table, the schema
/// version, and the contract's columns at the contract's types. Gives the file's schema
/// version.
fn judge(metadata: &ParquetMetaData, size: u64, table: &'static str) -> Result<u32, FileProblem> {
    let file_meta = metadata.file_metadata();
    let kv = file_meta.key_value_metadata();
    let value = |key: &str| {
        kv.and_then(|kv| kv.iter().find(|e| e.key == key))
            .and_then(|e| e.value.clone())
    };
    let Some(found) = value(TABLE_KEY) else {
        // The recorder's other marks without the table's: a byte flipped in the key.
        let ours = written_by_record(file_meta) || value(SCHEMA_VERSION_KEY).is_some();
        return Err(match ours {
            true => FileProblem::NoTable,
            false => FileProblem::Foreign,
        });
    };
    if !TABLES.contains(&found.as_str()) {
        // A later schema version may add tables: that is a version this analyze cannot
        // read, not damage.
        let later = value(SCHEMA_VERSION_KEY)
            .and_then(|v| v.parse::<u32>().ok())
            .is_some_and(|v| v > SCHEMA_VERSION);
        return Err(match later {
            true => FileProblem::Version(value(SCHEMA_VERSION_KEY).unwrap_or_default()),
            false => FileProblem::UnknownTable(shortened(&found)),
        });
    }
    if found != table {
        return Err(FileProblem::OtherTable {
            found,
            expected: table,
        });
    }
    let version_text = value(SCHEMA_VERSION_KEY).unwrap_or_else(|| "(none)".into());
    let version: u32 = version_text
        .parse()
        .ok()
        .filter(|v| (OLDEST_SCHEMA_VERSION..=SCHEMA_VERSION).contains(v))
        .ok_or_else(|| FileProblem::Version(version_text.clone()))?;
    check_layout(metadata, size)?;
    let contract = schema_of_version(table, version).expect("a known table and version");
    let schema = contained(|| parquet_to_arrow_schema(file_meta.schema_descr(), kv))
        .ok_or_else(|| FileProblem::NotParquet("its embedded Arrow schema is damaged".into()))?
        .map_err(|e| FileProblem::NotParquet(one_line(&e.to_string())))?;
    // Types first: a column of the wrong type says more than one that is missing.
    for want in contract.fields() {
        let Ok(got) = schema.field_with_name(want.name()) else {
            continue;
        };
        if got.data_type() != want.data_type() {
            return Err(FileProblem::ColumnType {
                column: want.name().clone(),
                found: got.data_type().clone(),
                expected: want.data_type().clone(),
            });
        }
        if got.is_nullable() != want.is_nullable() {
            return Err(FileProblem::Repetition {
                column: want.name().clone(),
                nullable: got.is_nullable(),
            });
        }
    }
    // Files written before a nullable column was added read it as NULL. Within version 2
    // `syscalls` gained only the `--sched` columns, which plain files leave out: a version-2
    // file without `errno` or `path` is damaged or foreign, not older, and reading it as
    // NULL answered "no failures" where there were some.
    let added_within_version = |name: &str| {
        table != syscalls::TABLE || version < 2 || syscalls::SCHED_COLUMNS.contains(&name)
    };
    if let Some(missing) = contract.fields().iter().find(|f| {
        (!f.is_nullable() || !added_within_version(f.name()))
            && schema.field_with_name(f.name()).is_err()
    }) {
        return Err(FileProblem::MissingColumn(missing.name().clone()));
    }
    Ok(version)
}

/// The checksum a recorder put in the footer of a file written by arrow's writer, if any:
/// `syscalls` files and files of older recorders have none, and a file another tool
/// rewrote keeps a sum of bytes it no longer holds, so only the recorder's own files are
/// checked. The sum must cover exactly the bytes before the footer (the recorder writes
/// no page index in them): one that cannot be read, or covers less or more, is damage.
fn data_checksum(
    metadata: &ParquetMetaData,
    size: u64,
) -> Result<Option<DataChecksum>, FileProblem> {
    let file_meta = metadata.file_metadata();
    let Some(entry) = file_meta
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == DATA_CHECKSUM_KEY))
    else {
        return Ok(None);
    };
    if !written_by_record(file_meta) {
        return Ok(None);
    }
    let data_end = metadata
        .row_groups()
        .iter()
        .flat_map(|rg| rg.columns())
        .filter_map(chunk_bytes)
        .map(|(_, end)| end)
        .max()
        .unwrap_or(MAGIC_LEN);
    entry
        .value
        .as_deref()
        .and_then(DataChecksum::parse)
        .filter(|sum| i64::try_from(sum.len) == Ok(data_end) && sum.len <= size)
        .map(Some)
        .ok_or(FileProblem::Checksum)
}

/// `PAR1` at the start of every Parquet file: all a file without rows holds before its
/// footer.
const MAGIC_LEN: i64 = 4;

/// Where a column chunk's bytes lie, as the footer says: from its dictionary page (or
/// first data page) for its compressed size. None for an empty chunk (pyarrow writes one
/// at offset 0 for a table of no rows), which has no bytes to slice. The end saturates: a
/// damaged size is refused by the checks that use it.
fn chunk_bytes(column: &ColumnChunkMetaData) -> Option<(i64, i64)> {
    if column.compressed_size() == 0 && column.num_values() == 0 {
        return None;
    }
    let start = column
        .dictionary_page_offset()
        .unwrap_or(column.data_page_offset());
    Some((start, start.saturating_add(column.compressed_size())))
}

fn matches(sum: DataChecksum, data: &[u8]) -> Result<(), FileProblem> {
    if DataChecksum::of(data) == sum {
        Ok(())
    } else {
        Err(FileProblem::Checksum)
    }
}

/// Each column chunk inside the file, and each page the offset index lists inside its
/// chunk. Parquet's reader slices a chunk by what the footer says and panics when a
/// damaged footer points past it.
fn check_layout(metadata: &ParquetMetaData, size: u64) -> Result<(), FileProblem> {
    let size = i64::try_from(size).unwrap_or(i64::MAX);
    check_apart(metadata)?;
    check_rows(metadata)?;
    for (g, group) in metadata.row_groups().iter().enumerate() {
        for (c, column) in group.columns().iter().enumerate() {
            let pages = metadata
                .offset_index()
                .and_then(|index| index.get(g))
                .map_or(&[][..], |group| {
                    group.get(c).map_or(&[][..], |p| p.page_locations())
                });
            check_chunk(column, pages, size, group.num_rows()).map_err(|wrong| {
                let chunk = format!("column {c} of row group {g}");
                FileProblem::NotParquet(match wrong {
                    Misplaced::Chunk => format!("its footer puts {chunk} outside the file"),
                    Misplaced::Dictionary => format!("its footer gives {chunk} no dictionary"),
                    Misplaced::Page => format!("its page index misplaces a page of {chunk}"),
                    Misplaced::Rows => format!("its page index misplaces the rows of {chunk}"),
                })
            })?;
        }
    }
    Ok(())
}

/// No two column chunks share bytes. A flipped bit in a chunk's offset moves its start
/// into the chunk before or after it; without an offset index (the small tables have
/// none) nothing else shows it, and the query then failed on a page header read from the
/// middle of another page, naming no file.
fn check_apart(metadata: &ParquetMetaData) -> Result<(), FileProblem> {
    let mut chunks: Vec<(i64, i64, usize, usize)> = Vec::new();
    for (g, group) in metadata.row_groups().iter().enumerate() {
        for (c, column) in group.columns().iter().enumerate() {
            if let Some((start, end)) = chunk_bytes(column) {
                chunks.push((start, end, g, c));
            }
        }
    }
    chunks.sort_unstable();
    for pair in chunks.windows(2) {
        let ((_, end, _, _), (start, _, g, c)) = (pair[0], pair[1]);
        if start < end {
            return Err(FileProblem::NotParquet(format!(
                "its footer puts column {c} of row group {g} over another"
            )));
        }
    }
    Ok(())
}

/// Every column of a row group holds a value (or a NULL) for each of its rows: the
/// contract's columns are flat. And the file's count of rows is the sum of its row
/// groups'. A flipped bit in either count failed queries with "Row count overflow", naming
/// no file, or could answer `count(*)` from the footer alone.
fn check_rows(metadata: &ParquetMetaData) -> Result<(), FileProblem> {
    let mut total: i64 = 0;
    for (g, group) in metadata.row_groups().iter().enumerate() {
        let rows = group.num_rows();
        for (c, column) in group.columns().iter().enumerate() {
            if column.num_values() != rows || rows < 0 {
                return Err(FileProblem::NotParquet(format!(
                    "its footer gives row group {g} {rows} rows and its column {c} {} values",
                    column.num_values()
                )));
            }
        }
        total = total.saturating_add(rows);
    }
    let said = metadata.file_metadata().num_rows();
    if said != total {
        return Err(FileProblem::NotParquet(format!(
            "its footer gives it {said} rows and its row groups {total}"
        )));
    }
    Ok(())
}

/// What a damaged footer or page index says wrongly about a column chunk.
enum Misplaced {
    /// The chunk lies outside the file.
    Chunk,
    /// Its pages are dictionary-encoded, with no room for the dictionary.
    Dictionary,
    /// A page lies outside the chunk, or not right after the one before.
    Page,
    /// A page's first row is out of order or past the row group.
    Rows,
}

/// One column chunk and the pages the offset index lists for it.
fn check_chunk(
    column: &ColumnChunkMetaData,
    pages: &[PageLocation],
    size: i64,
    rows: i64,
) -> Result<(), Misplaced> {
    let Some((start, end)) = chunk_bytes(column) else {
        return Ok(());
    };
    if start < MAGIC_LEN || column.compressed_size() < 0 || end > size {
        return Err(Misplaced::Chunk);
    }
    // A chunk whose pages are dictionary-encoded must leave room for its dictionary before
    // its first data page; without one, the reader panics on that page.
    let dictionary_encoded = column
        .encodings()
        .any(|e| matches!(e, Encoding::RLE_DICTIONARY | Encoding::PLAIN_DICTIONARY));
    if dictionary_encoded
        && column.dictionary_page_offset().is_none()
        && pages.first().is_some_and(|page| page.offset <= start)
    {
        return Err(Misplaced::Dictionary);
    }
    // Pages follow one another to the end of the chunk, and their first rows count up from
    // 0 within the row group: the reader finds each page, and sizes its levels, by them.
    let mut previous: Option<(i64, i64)> = None;
    for page in pages {
        let page_end = page
            .offset
            .checked_add(i64::from(page.compressed_page_size))
            .filter(|&e| page.compressed_page_size > 0 && e <= end);
        let (placed, first_row_ok) = match previous {
            None => (page.offset >= start, page.first_row_index == 0),
            Some((at, first_row)) => (page.offset == at, page.first_row_index > first_row),
        };
        let Some(page_end) = page_end.filter(|_| placed) else {
            return Err(Misplaced::Page);
        };
        if !first_row_ok || page.first_row_index >= rows {
            return Err(Misplaced::Rows);
        }
        previous = Some((page_end, page.first_row_index));
    }
    if previous.is_some_and(|(at, _)| at != end) {
        return Err(Misplaced::Page);
    }
    Ok(())
}

pub use tracepost_store::{causes, one_line};

#[cfg(test)]
mod tests {
    use std::{fs::File, io::Write as _, sync::Arc};

    use datafusion::{
        arrow::{
            array::RecordBatch,
            datatypes::{Field, Schema},
        },
        parquet::file::properties::WriterProperties,
        parquet::{arrow::ArrowWriter, file::metadata::KeyValue},
    };
    use tracepost_schema::{aggregates, capture, syscalls};

    use super::*;

    fn write(path: &Path, schema: Arc<Schema>, kv: Vec<(&str, &str)>) {
        write_by(path, schema, kv, "parquet-rs version 59");
    }

    fn write_by(path: &Path, schema: Arc<Schema>, kv: Vec<(&str, &str)>, created_by: &str) {
        let props = WriterProperties::builder()
            .set_created_by(created_by.to_string())
            .set_key_value_metadata(Some(
                kv.into_iter()
                    .map(|(k, v)| KeyValue::new(k.to_string(), v.to_string()))
                    .collect(),
            ))
            .build();
        let mut w =
            ArrowWriter::try_new(File::create(path).unwrap(), schema.clone(), Some(props)).unwrap();
        w.write(&RecordBatch::new_empty(schema)).unwrap();
        w.close().unwrap();
    }

    #[test]
    fn every_kind_of_damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = |n: &str| dir.path().join(n);
        let good = p("good.parquet");
        write(
            &good,
            capture::schema(),
            vec![(TABLE_KEY, "capture"), (SCHEMA_VERSION_KEY, "2")],
        );
        assert_eq!(check(&good, capture::TABLE).unwrap().version, 2);
        let problem = |path: &Path, table| check(path, table).unwrap_err().to_string();

        std::fs::write(p("empty.parquet"), b"").unwrap();
        assert_eq!(
            problem(&p("empty.parquet"), "capture"),
            "0 bytes (an interrupted copy?)"
        );

        let bytes = std::fs::read(&good).unwrap();
        std::fs::write(p("five.parquet"), &bytes[..5]).unwrap();
        assert_eq!(
            problem(&p("five.parquet"), "capture"),
            "not a readable Parquet file (it does not end as a Parquet file does: cut short (an \
             interrupted copy?), or not Parquet)"
        );
        std::fs::write(p("half.parquet"), &bytes[..bytes.len() / 2]).unwrap();
        assert_eq!(
            problem(&p("half.parquet"), "capture"),
            "not a readable Parquet file (it does not end as a Parquet file does: cut short (an \
             interrupted copy?), or not Parquet)"
        );

        std::fs::write(p("random.parquet"), [7u8; 4096]).unwrap();
        assert!(problem(&p("random.parquet"), "capture").starts_with("not a readable Parquet"));

        // A footer length far past the start of the file.
        let mut f = File::create(p("footer.parquet")).unwrap();
        f.write_all(b"PAR1 some bytes").unwrap();
        f.write_all(&u32::MAX.to_le_bytes()).unwrap();
        f.write_all(b"PAR1").unwrap();
        drop(f);
        assert!(problem(&p("footer.parquet"), "capture").starts_with("not a readable Parquet"));

        // A sparse file whose footer claims 2 GB inside it: refused before it is read.
        let f = File::create(p("huge.parquet")).unwrap();
        f.set_len(3 << 30).unwrap();
        f.write_all_at(&0x7fff_fff0u32.to_le_bytes(), (3 << 30) - 8)
            .unwrap();
        f.write_all_at(b"PAR1", (3 << 30) - 4).unwrap();
        drop(f);
        assert_eq!(
            problem(&p("huge.parquet"), "capture"),
            "not a readable Parquet file (its footer claims 2147483632 bytes, more than the \
             67108864 any capture's holds)"
        );

        assert_eq!(
            problem(&good, syscalls::TABLE),
            "a file of table capture, not of syscalls"
        );
        // One byte flipped in the footer's table name.
        write(
            &p("flipped.parquet"),
            capture::schema(),
            vec![(TABLE_KEY, "capturd"), (SCHEMA_VERSION_KEY, "2")],
        );
        assert_eq!(
            problem(&p("flipped.parquet"), "capture"),
            "its metadata names table \"capturd\", which tracepost does not have (a damaged footer?)"
        );
        write(
            &p("flipped_key.parquet"),
            capture::schema(),
            vec![("tracepost.tablf", "capture"), (SCHEMA_VERSION_KEY, "2")],
        );
        assert_eq!(
            problem(&p("flipped_key.parquet"), "capture"),
            "its metadata has no tracepost.table but tracepost's other keys (a damaged footer?)"
        );
        let long = "x".repeat(5000);
        write(
            &p("long.parquet"),
            capture::schema(),
            vec![(TABLE_KEY, long.as_str()), (SCHEMA_VERSION_KEY, "2")],
        );
        assert_eq!(
            problem(&p("long.parquet"), "capture"),
            format!(
                "its metadata names table \"{}…\", which tracepost does not have (a damaged footer?)",
                "x".repeat(40)
            )
        );
        write(
            &p("later.parquet"),
            capture::schema(),
            vec![(TABLE_KEY, "mounts"), (SCHEMA_VERSION_KEY, "3")],
        );
        assert!(problem(&p("later.parquet"), "capture").starts_with("schema version 3,"));

        let other = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)]));
        write(&p("foreign.parquet"), other.clone(), vec![]);
        assert!(problem(&p("foreign.parquet"), "capture").starts_with("not a tracepost file"));
        write(
            &p("future.parquet"),
            other.clone(),
            vec![(TABLE_KEY, "capture"), (SCHEMA_VERSION_KEY, "99")],
        );
        assert!(problem(&p("future.parquet"), "capture").starts_with("schema version 99,"));
        write(
            &p("lacks.parquet"),
            other,
            vec![(TABLE_KEY, "aggregates"), (SCHEMA_VERSION_KEY, "2")],
        );
        assert_eq!(
            problem(&p("lacks.parquet"), aggregates::TABLE),
            "it lacks column interval_start"
        );
        let retyped = Arc::new(Schema::new(vec![Field::new(
            aggregates::CALLS,
            DataType::Utf8,
            false,
        )]));
        write(
            &p("retyped.parquet"),
            retyped,
            vec![(TABLE_KEY, "aggregates"), (SCHEMA_VERSION_KEY, "2")],
        );
        assert_eq!(
            problem(&p("retyped.parquet"), aggregates::TABLE),
            "column calls is Utf8, not Int64"
        );

        // A data checksum of the recorder's that does not match, covers more or less than
        // the data, or cannot be read.
        let damaged =
            "its data does not match the checksum in its footer (damaged on disk or in a copy)";
        let recorder = "tracepost-record version 0.1.0";
        let summed = |name: &str, value: &str, by: &str| {
            write_by(
                &p(name),
                capture::schema(),
                vec![
                    (TABLE_KEY, "capture"),
                    (SCHEMA_VERSION_KEY, "2"),
                    (DATA_CHECKSUM_KEY, value),
                ],
                by,
            );
            check(&p(name), capture::TABLE).map(|f| f.version)
        };
        // The sum of the leading magic, as a recorder writes it for a file with no rows.
        let magic = DataChecksum::of(b"PAR1").to_value();
        assert_eq!(summed("summed.parquet", &magic, recorder).unwrap(), 2);
        for (name, value) in [
            ("wrong-sum.parquet", "4:00000000"),
            ("past-end.parquet", "99999:cbf43926"),
            ("odd-sum.parquet", "four:cbf43926"),
            // Right for the bytes it names, but not all of them: a sum of nothing.
            ("short-sum.parquet", "0:00000000"),
        ] {
            let refused = summed(name, value, recorder).unwrap_err().to_string();
            assert_eq!(refused, damaged, "{name}");
        }
        // Rewritten by another tool that kept the metadata: its sum is of the old bytes,
        // and is not checked.
        let other = "parquet-cpp-arrow version 21.0.0";
        assert_eq!(summed("rewritten.parquet", "4:00000000", other).unwrap(), 2);
    }
}
