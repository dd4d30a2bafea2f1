//! Column chunks encoded from the recorder's own values, page by page.
//!
//! Parquet's own writers hash every value of a dictionary column to find its index, even
//! when the caller already knows that a value repeats: a thread's name, a syscall's name,
//! an fd's path. That hashing was a quarter of the recorder's cost (BENCHMARKS.md). Here a
//! column looks values up by a key the caller chooses (a syscall number, the 16 bytes of a
//! comm, the address of a shared path), and a repeat of the row before costs one compare.
//! The pages and the chunk's metadata are what any Parquet reader expects: PLAIN
//! dictionary pages, RLE_DICTIONARY or PLAIN or DELTA_BINARY_PACKED data pages (format
//! v1), zstd, and per-chunk statistics for the columns queries filter on.
use std::{
    collections::HashMap,
    hash::{BuildHasher, Hash},
    sync::Arc,
};

use bytes::Bytes;
use parquet::{
    basic::{BoundaryOrder, Compression, Encoding, Type as PhysicalType, ZstdLevel},
    column::{
        page::{CompressedPage, Page, PageWriter},
        writer::ColumnCloseResult,
    },
    data_type::ByteArray,
    errors::ParquetError,
    file::{
        metadata::{ColumnChunkMetaData, ColumnIndexBuilder, OffsetIndexBuilder},
        page_index::column_index::ColumnIndexMetaData,
        statistics::Statistics,
        writer::{SerializedPageWriter, TrackedWrite},
    },
    schema::types::ColumnDescPtr,
};
use rustc_hash::FxBuildHasher;

use super::{delta, hybrid, levels::Levels};

/// The zstd level of every page. Level 1 writes files no bigger than level 3 here, for a
/// little less CPU (BENCHMARKS.md).
pub const ZSTD_LEVEL: i32 = 1;
/// A dictionary past this many bytes stops growing and later pages are PLAIN: the limit
/// Parquet's own writer uses, which every reader handles.
const DICTIONARY_LIMIT: usize = 1024 * 1024;

type Result<T> = std::result::Result<T, ParquetError>;

/// A finished chunk: its bytes (dictionary page first) and what the row group needs.
pub struct Chunk {
    pub bytes: Bytes,
    pub close: ColumnCloseResult,
}

/// The one zstd context of a file's columns. Pages are compressed one at a time, so the
/// columns share it: a context each was 22 contexts held for the whole capture, a large
/// part of the recorder's heap.
pub struct Zstd {
    compressor: zstd::bulk::Compressor<'static>,
    /// The page compressed last, and what it became. Columns written one after the other
    /// often have the same page: `syscall`'s and `nr`'s dictionary indices are the same
    /// numbers, and so are `pid`'s and `tid`'s where every process has one thread.
    last: Vec<u8>,
    last_compressed: Bytes,
}

impl Zstd {
    pub fn new() -> Result<Self> {
        let mut compressor = zstd::bulk::Compressor::new(ZSTD_LEVEL)
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        // Each page's frame carries a checksum of its contents, which every zstd decoder
        // checks: a bit flipped on a failing disk or in a copy is then an error that names
        // the file, not a wrong sum. Four bytes a page.
        compressor
            .set_parameter(zstd::zstd_safe::CParameter::ChecksumFlag(true))
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        Ok(Self {
            compressor,
            last: Vec::new(),
            last_compressed: Bytes::new(),
        })
    }

    /// Compresses a data page, or gives the last one's compression if it is the same.
    /// Kept by a copy: trading buffers with the columns instead saved 0.5% of the
    /// writer's instructions, but would let every column's buffer grow to the largest
    /// page of any (BENCHMARKS.md).
    fn compress(&mut self, page: &[u8]) -> Result<Bytes> {
        if !page.is_empty() && page == self.last.as_slice() {
            return Ok(self.last_compressed.clone());
        }
        let compressed = self.compress_once(page)?;
        self.last.clear();
        self.last_compressed = Bytes::new();
        // The pages that repeat are dictionary indices, a few bits a row; a larger page
        // kept, and what it became, added a megabyte to the recorder's peak RSS.
        if page.len() <= KEPT_PAGE {
            self.last.extend_from_slice(page);
            self.last_compressed = compressed.clone();
        }
        Ok(compressed)
    }

    /// Compresses a page that no other page repeats (a dictionary, once a row group):
    /// not kept, since one can be a megabyte.
    fn compress_once(&mut self, page: &[u8]) -> Result<Bytes> {
        self.compressor
            .compress(page)
            .map(Bytes::from)
            .map_err(|e| ParquetError::External(Box::new(e)))
    }
}

/// The largest page [`Zstd`] keeps for a page that repeats it: 16Ki dictionary indices
/// of up to 15 bits, with room for their run headers.
const KEPT_PAGE: usize = 32 * 1024;

/// Lays compressed pages out one after another, counting what the metadata needs.
struct PageSink {
    out: TrackedWrite<Vec<u8>>,
    /// Where each data page starts, and its first row: the offset index, which lets a
    /// reader fetch only the pages a filter keeps.
    offsets: OffsetIndexBuilder,
    /// Each data page's min, max and null count, for the columns queries filter on: the
    /// column index. `None` for columns without statistics.
    pages: Option<PageIndex>,
    /// The page being built: definition levels, then values.
    page: Vec<u8>,
    uncompressed: i64,
    values: i64,
    encodings: Vec<Encoding>,
}

impl PageSink {
    /// Boxed: a sink is touched once a page, so out of line it stays out of the way of
    /// the fields every row touches. Inline, once it held the page index, the getppid loop
    /// cost about 8% more CPU per event (medians of 11 runs each, bench/recorder-cpu).
    fn new(pages: Option<PageIndex>) -> Box<Self> {
        Box::new(Self {
            out: TrackedWrite::new(Vec::new()),
            offsets: OffsetIndexBuilder::new(),
            pages,
            page: Vec::new(),
            uncompressed: 0,
            values: 0,
            // The levels' encoding, whether or not a page has them.
            encodings: vec![Encoding::RLE],
        })
    }

    /// Starts a page with its definition levels (v1: a 4-byte length, then the hybrid
    /// encoding at width 1); the caller appends the values to `self.page`.
    fn begin(&mut self, defs: Option<&mut Levels>) {
        self.page.clear();
        if let Some(defs) = defs {
            self.page.extend_from_slice(&[0; 4]);
            defs.encode_and_clear(&mut self.page);
            let len = (self.page.len() - 4) as u32;
            self.page[..4].copy_from_slice(&len.to_le_bytes());
        }
    }

    fn finish_page(&mut self, z: &mut Zstd, rows: usize, encoding: Encoding) -> Result<()> {
        let page = Page::DataPage {
            buf: z.compress(&self.page)?,
            num_values: rows as u32,
            encoding,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        let spec = SerializedPageWriter::new(&mut self.out)
            .write_page(CompressedPage::new(page, self.page.len()))?;
        self.offsets
            .append_offset_and_size(spec.offset as i64, spec.compressed_size as i32);
        self.offsets.append_row_count(rows as i64);
        self.uncompressed += spec.uncompressed_size as i64;
        self.values += rows as i64;
        if !self.encodings.contains(&encoding) {
            self.encodings.push(encoding);
        }
        Ok(())
    }

    /// Bytes of the pages written so far, compressed.
    fn written(&self) -> usize {
        self.out.bytes_written()
    }

    /// Puts the dictionary page (PLAIN values, `count` of them) in front of the data pages.
    fn finish(
        mut self: Box<Self>,
        z: &mut Zstd,
        descr: ColumnDescPtr,
        dictionary: Option<(&[u8], usize)>,
        statistics: Option<Statistics>,
    ) -> Result<Chunk> {
        let mut dictionary_len = 0;
        let dictionary_page = match dictionary {
            Some((plain, count)) if count > 0 => {
                self.page.clear();
                self.page.extend_from_slice(plain);
                let page = Page::DictionaryPage {
                    buf: z.compress_once(&self.page)?,
                    num_values: count as u32,
                    encoding: Encoding::PLAIN,
                    is_sorted: false,
                };
                let mut out = TrackedWrite::new(Vec::new());
                let spec = SerializedPageWriter::new(&mut out)
                    .write_page(CompressedPage::new(page, plain.len()))?;
                self.uncompressed += spec.uncompressed_size as i64;
                if !self.encodings.contains(&Encoding::PLAIN) {
                    self.encodings.push(Encoding::PLAIN);
                }
                let bytes = out.into_inner()?;
                dictionary_len = bytes.len();
                Some(bytes)
            }
            _ => None,
        };
        let data = self.out.into_inner()?;
        let bytes = match dictionary_page {
            Some(mut bytes) => {
                bytes.extend_from_slice(&data);
                bytes
            }
            None => data,
        };
        let mut builder = ColumnChunkMetaData::builder(descr)
            .set_compression(Compression::ZSTD(
                ZstdLevel::try_new(ZSTD_LEVEL).expect("valid zstd level"),
            ))
            .set_encodings(self.encodings)
            .set_num_values(self.values)
            .set_total_compressed_size(bytes.len() as i64)
            .set_total_uncompressed_size(self.uncompressed)
            .set_data_page_offset(dictionary_len as i64)
            .set_dictionary_page_offset((dictionary_len > 0).then_some(0));
        if let Some(statistics) = statistics {
            builder = builder.set_statistics(statistics);
        }
        let metadata = builder.build()?;
        // A chunk with no data pages (an empty file) gets no column index.
        let column_index = match self.pages.take() {
            Some(pages) if self.values > 0 => pages.build()?,
            _ => None,
        };
        let mut offset_index = self.offsets.build();
        // The data pages were laid out before the dictionary page went in front.
        for page in &mut offset_index.page_locations {
            page.offset += dictionary_len as i64;
        }

        Ok(Chunk {
            close: ColumnCloseResult {
                bytes_written: bytes.len() as u64,
                rows_written: self.values as u64,
                metadata,
                bloom_filter: None,
                column_index,
                offset_index: Some(offset_index),
            },
            bytes: Bytes::from(bytes),
        })
    }
}

/// The column index being built, one entry per data page, on parquet's own builder.
struct PageIndex {
    builder: ColumnIndexBuilder,
    /// The last integer page's bounds, and whether every page so far started and ended at
    /// or after the one before (the entry times): then the index says ASCENDING.
    last: Option<(i64, i64)>,
    ascending: bool,
}

impl PageIndex {
    fn new(physical: PhysicalType) -> Self {
        Self {
            builder: ColumnIndexBuilder::new(physical),
            last: None,
            ascending: true,
        }
    }

    /// A page's bounds in PLAIN bytes (`None`: the page holds only nulls).
    fn push(&mut self, bounds: Option<(Vec<u8>, Vec<u8>)>, nulls: usize) {
        let (null_page, (min, max)) = match bounds {
            Some(b) => (false, b),
            None => (true, Default::default()),
        };
        self.builder.append(null_page, min, max, nulls as i64);
    }

    fn push_int(&mut self, bounds: Option<(i64, i64)>, int32: bool, nulls: usize) {
        if let Some((min, max)) = bounds {
            if let Some((last_min, last_max)) = self.last {
                self.ascending &= last_min <= min && last_max <= max;
            }
            self.last = bounds;
        }
        let plain = |v| {
            let mut out = Vec::new();
            put_int(int32, v, &mut out);
            out
        };
        self.push(bounds.map(|(min, max)| (plain(min), plain(max))), nulls);
    }

    /// A page without bounds to give (a PLAIN string page): the chunk gets no column
    /// index, which readers take as "any page may match".
    fn give_up(&mut self) {
        self.builder.to_invalid();
    }

    fn build(mut self) -> Result<Option<ColumnIndexMetaData>> {
        if !self.builder.valid() {
            return Ok(None);
        }
        if self.ascending && self.last.is_some() {
            self.builder.set_boundary_order(BoundaryOrder::ASCENDING);
        }
        self.builder.build().map(Some)
    }
}

/// Appends `v` as PLAIN encodes an INT32 (`int32`) or an INT64.
fn put_int(int32: bool, v: i64, out: &mut Vec<u8>) {
    if int32 {
        out.extend_from_slice(&(v as i32).to_le_bytes());
    } else {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

/// How an integer column's pages are encoded.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum IntEncoding {
    /// Values that repeat: a dictionary, falling back to PLAIN when it grows too big.
    Dictionary,
    /// Sorted values (the entry times): deltas.
    Delta,
}

/// An INT32 or INT64 column. UInt64 values are stored as their bits, as Parquet does.
pub struct IntColumn {
    sink: Box<PageSink>,
    int32: bool,
    optional: bool,
    encoding: IntEncoding,
    /// Min and max are kept unless the values are unsigned (their order is not i64's).
    min_max: bool,
    defs: Levels,
    values: Vec<i64>,
    dictionary: HashMap<i64, u32, FxBuildHasher>,
    dictionary_plain: Vec<u8>,
    dictionary_full: bool,
    indices: Vec<u32>,
    /// Recent values and their indices, by a few bits of the value: most values of a
    /// busy column repeat one seen lately (a buffer's address, a size, an fd) though not
    /// the row before, and a hit here skips the dictionary's hash and probe.
    recent: Box<[(i64, u32); RECENT]>,
    /// The chunk's bounds, from the pages flushed so far.
    min: i64,
    max: i64,
    /// The bounds of the page being built.
    page_min: i64,
    page_max: i64,
    nulls: u64,
}

impl IntColumn {
    pub fn new(int32: bool, optional: bool, encoding: IntEncoding, min_max: bool) -> Self {
        let physical = if int32 {
            PhysicalType::INT32
        } else {
            PhysicalType::INT64
        };
        Self {
            sink: PageSink::new(min_max.then(|| PageIndex::new(physical))),
            int32,
            optional,
            encoding,
            min_max,
            defs: Levels::default(),
            values: Vec::new(),
            dictionary: HashMap::default(),
            dictionary_plain: Vec::new(),
            dictionary_full: false,
            indices: Vec::new(),
            recent: Box::new([(0, NOT_RECENT); RECENT]),
            min: i64::MAX,
            max: i64::MIN,
            page_min: i64::MAX,
            page_max: i64::MIN,
            nulls: 0,
        }
    }

    #[inline]
    pub fn push(&mut self, value: Option<i64>) {
        match value {
            Some(v) => {
                if self.optional {
                    self.defs.push(true);
                }
                self.take_all(std::iter::once(v));
            }
            None => {
                debug_assert!(self.optional);
                self.defs.push(false);
                self.nulls += 1;
            }
        }
    }

    /// Whether values become dictionary indices as they come: the dictionary can fill only
    /// between pages, so this holds for a whole page.
    #[inline]
    fn indexing(&self) -> bool {
        self.encoding == IntEncoding::Dictionary && !self.dictionary_full
    }

    #[inline]
    fn index_of(&mut self, v: i64) -> u32 {
        let slot = &mut self.recent[recent_slot(v)];
        if slot.1 != NOT_RECENT && slot.0 == v {
            return slot.1;
        }
        let next = self.dictionary.len() as u32;
        let index = *self.dictionary.entry(v).or_insert(next);
        if index == next {
            put_int(self.int32, v, &mut self.dictionary_plain);
        }
        *slot = (v, index);
        index
    }

    /// Appends a block of values of a required column, as `push` would one by one. In
    /// one pass the buffer's length and the page's bounds stay in registers.
    #[inline]
    pub fn extend_required(&mut self, values: impl Iterator<Item = i64>) {
        debug_assert!(!self.optional);
        self.take_all(values);
    }

    /// Appends a block of values of an optional column, as `push` would one by one. The
    /// values are walked twice, for the levels and then for the values: one pass that did
    /// both cost more instructions (BENCHMARKS.md).
    #[inline]
    pub fn extend_optional(&mut self, values: impl ExactSizeIterator<Item = Option<i64>> + Clone) {
        debug_assert!(self.optional);
        let rows = values.len();
        self.defs.extend(values.clone().map(|v| v.is_some()));
        let present = self.take_all(values.flatten());
        self.nulls += (rows - present) as u64;
    }

    /// Takes every present value, keeping the page's bounds: as its dictionary index while
    /// the dictionary takes more, else as itself. Looking it up now, while it is in a
    /// register, saves storing every value and reading it back when the page ends. Returns
    /// how many there were.
    #[inline]
    fn take_all(&mut self, values: impl Iterator<Item = i64>) -> usize {
        let (mut lo, mut hi) = (self.page_min, self.page_max);
        let mut count = 0;
        if self.indexing() {
            // A value equal to the one before (a thread's pid, its syscall, an argument it
            // passes again) takes that one's index and leaves the bounds as they are.
            let mut last: Option<(i64, u32)> = None;
            for v in values {
                let index = match last {
                    Some((last_v, index)) if last_v == v => index,
                    _ => {
                        lo = lo.min(v);
                        hi = hi.max(v);
                        let index = self.index_of(v);
                        last = Some((v, index));
                        index
                    }
                };
                self.indices.push(index);
                count += 1;
            }
        } else {
            let start = self.values.len();
            self.values.extend(values);
            for &v in &self.values[start..] {
                lo = lo.min(v);
                hi = hi.max(v);
            }
            count = self.values.len() - start;
        }
        (self.page_min, self.page_max) = (lo, hi);
        count
    }

    pub fn flush_page(&mut self, z: &mut Zstd) -> Result<()> {
        let present = self.values.len() + self.indices.len();
        let rows = if self.optional {
            self.defs.len()
        } else {
            present
        };
        if rows == 0 {
            return Ok(());
        }
        let bounds = (self.page_min <= self.page_max).then_some((self.page_min, self.page_max));
        if let Some(pages) = &mut self.sink.pages {
            pages.push_int(bounds, self.int32, rows - present);
        }
        self.min = self.min.min(self.page_min);
        self.max = self.max.max(self.page_max);
        self.page_min = i64::MAX;
        self.page_max = i64::MIN;
        self.sink.begin(self.optional.then_some(&mut self.defs));
        let encoding = match self.encoding {
            IntEncoding::Delta => {
                delta::encode(&self.values, &mut self.sink.page);
                Encoding::DELTA_BINARY_PACKED
            }
            IntEncoding::Dictionary if !self.indices.is_empty() => {
                let width = hybrid::bit_width_for(self.dictionary.len());
                self.sink.page.push(width);
                hybrid::encode(&self.indices, width, &mut self.sink.page);
                self.dictionary_full = self.dictionary_plain.len() > DICTIONARY_LIMIT;
                Encoding::RLE_DICTIONARY
            }
            IntEncoding::Dictionary => {
                for &v in &self.values {
                    put_int(self.int32, v, &mut self.sink.page);
                }
                Encoding::PLAIN
            }
        };
        self.sink.finish_page(z, rows, encoding)?;
        self.values.clear();
        self.indices.clear();
        Ok(())
    }

    pub fn written(&self) -> usize {
        self.sink.written() + self.dictionary_plain.len() / 4
    }

    pub fn finish(mut self, z: &mut Zstd, descr: ColumnDescPtr) -> Result<Chunk> {
        self.flush_page(z)?;
        let has_values = self.min <= self.max;
        let statistics = match (self.int32, self.min_max && has_values) {
            (true, true) => Statistics::int32(
                Some(self.min as i32),
                Some(self.max as i32),
                None,
                Some(self.nulls),
                false,
            ),
            (true, false) => Statistics::int32(None, None, None, Some(self.nulls), false),
            (false, true) => Statistics::int64(
                Some(self.min),
                Some(self.max),
                None,
                Some(self.nulls),
                false,
            ),
            (false, false) => Statistics::int64(None, None, None, Some(self.nulls), false),
        };
        let count = self.dictionary.len();
        let dictionary = (self.encoding == IntEncoding::Dictionary)
            .then_some((&self.dictionary_plain[..], count));
        self.sink.finish(z, descr, dictionary, Some(statistics))
    }
}

/// Slots of [`IntColumn::recent`].
const RECENT: usize = 256;
/// An empty slot: no dictionary reaches this index.
const NOT_RECENT: u32 = u32::MAX;

/// A value's slot among the recent ones: the top bits of a multiplicative hash, so that
/// values that differ only in their low bits (sizes, addresses) spread out.
#[inline]
fn recent_slot(v: i64) -> usize {
    ((v as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - RECENT.trailing_zeros())) as usize
}

/// A column of shared strings (paths), found by their address. A row costs a pointer
/// compare or an integer lookup and no change of a reference count: cloning the `Arc` for
/// each row's key, as this column once did, was a seventh of the recorder's samples on
/// nginx, because the capture thread and the fd table touch the same counts from other
/// CPUs (BENCHMARKS.md).
pub struct SharedStrColumn {
    column: StrColumn<usize>,
    /// A clone of each string the dictionary holds, so that no address is reused for
    /// another string while it is a key.
    alive: Vec<Arc<str>>,
}

impl SharedStrColumn {
    pub fn new(optional: bool) -> Self {
        Self {
            column: StrColumn::new(optional, false),
            alive: Vec::new(),
        }
    }

    #[inline]
    pub fn push(&mut self, text: &Arc<str>) {
        let key = Arc::as_ptr(text) as *const u8 as usize;
        let full = self.column.full;
        let alive = &mut self.alive;
        // Asked for text only for a new entry, or for every row once the dictionary is
        // full, when nothing is keyed by address any more.
        self.column.push(key, || {
            if !full {
                alive.push(text.clone());
            }
            std::borrow::Cow::Borrowed(&**text)
        });
    }

    pub fn push_null(&mut self) {
        self.column.push_null();
    }

    pub fn flush_page(&mut self, z: &mut Zstd) -> Result<()> {
        self.column.flush_page(z)
    }

    pub fn written(&self) -> usize {
        self.column.written()
    }

    pub fn finish(self, z: &mut Zstd, descr: ColumnDescPtr) -> Result<Chunk> {
        self.column.finish(z, descr)
    }
}

/// A UTF-8 column whose values are found by a key of the caller's choosing: equal keys
/// must mean equal strings (unequal keys may still hold equal strings). `S` hashes the
/// keys: a fast unseeded hash for keys the traced programs cannot choose freely, and a
/// seeded one ([`Seeded`]) for text they can, so that no program can pick paths that all
/// collide and make every lookup slow.
pub struct StrColumn<K, S = FxBuildHasher> {
    sink: Box<PageSink>,
    optional: bool,
    /// Min and max are kept for short values that queries filter on (names, errno).
    min_max: bool,
    defs: Levels,
    indices: Vec<u32>,
    dictionary: HashMap<K, u32, S>,
    dictionary_plain: Vec<u8>,
    /// Where each entry's bytes start in `dictionary_plain`, for the statistics.
    dictionary_starts: Vec<u32>,
    full: bool,
    /// After the dictionary is full: the page's values, PLAIN.
    plain: Vec<u8>,
    plain_rows: usize,
    plain_min: Option<Vec<u8>>,
    plain_max: Option<Vec<u8>>,
    last: Option<(K, u32)>,
    nulls: u64,
    /// Which dictionary entries the page being flushed uses, for its bounds.
    seen: Vec<bool>,
}

/// A hasher seeded at random, for keys that traced programs choose. foldhash rather than
/// std's SipHash: paths are hashed once per call that carries one, and SipHash was the
/// larger part of that on nginx.
pub type Seeded = foldhash::quality::RandomState;

impl<K: Hash + Eq + Clone, S: BuildHasher + Default> StrColumn<K, S> {
    pub fn new(optional: bool, min_max: bool) -> Self {
        Self {
            sink: PageSink::new(min_max.then(|| PageIndex::new(PhysicalType::BYTE_ARRAY))),
            optional,
            min_max,
            defs: Levels::default(),
            indices: Vec::new(),
            dictionary: HashMap::default(),
            dictionary_plain: Vec::new(),
            dictionary_starts: Vec::new(),
            full: false,
            plain: Vec::new(),
            plain_rows: 0,
            plain_min: None,
            plain_max: None,
            last: None,
            nulls: 0,
            seen: Vec::new(),
        }
    }

    pub fn push_null(&mut self) {
        debug_assert!(self.optional);
        self.defs.push(false);
        self.nulls += 1;
    }

    /// Appends the value that `key` stands for; `text` is asked for only when the
    /// dictionary has not seen the key (or is full).
    #[inline]
    pub fn push<'a>(&mut self, key: K, text: impl FnOnce() -> std::borrow::Cow<'a, str>) {
        if self.optional {
            self.defs.push(true);
        }
        if self.full {
            let text = text();
            let bytes = text.as_bytes();
            self.plain
                .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            self.plain.extend_from_slice(bytes);
            self.plain_rows += 1;
            if self.min_max {
                if self.plain_min.as_deref().is_none_or(|m| bytes < m) {
                    self.plain_min = Some(bytes.to_vec());
                }
                if self.plain_max.as_deref().is_none_or(|m| bytes > m) {
                    self.plain_max = Some(bytes.to_vec());
                }
            }
            return;
        }
        if let Some((last, index)) = &self.last
            && *last == key
        {
            self.indices.push(*index);
            return;
        }
        let next = self.dictionary.len() as u32;
        let index = *self.dictionary.entry(key.clone()).or_insert(next);
        if index == next {
            let text = text();
            let bytes = text.as_bytes();
            self.dictionary_starts
                .push(self.dictionary_plain.len() as u32);
            self.dictionary_plain
                .extend_from_slice(&(bytes.len() as u32).to_le_bytes());
            self.dictionary_plain.extend_from_slice(bytes);
        }
        self.last = Some((key, index));
        self.indices.push(index);
    }

    pub fn flush_page(&mut self, z: &mut Zstd) -> Result<()> {
        let rows = if self.optional {
            self.defs.len()
        } else {
            self.indices.len() + self.plain_rows
        };
        if rows == 0 {
            return Ok(());
        }
        self.page_bounds(rows);
        self.sink.begin(self.optional.then_some(&mut self.defs));
        // A page is either all indices or all PLAIN: the dictionary fills only between
        // pages.
        // A page of nulls only is PLAIN too: it needs no dictionary, which may not exist.
        let encoding = if self.indices.is_empty() {
            self.sink.page.extend_from_slice(&self.plain);
            Encoding::PLAIN
        } else {
            let width = hybrid::bit_width_for(self.dictionary.len());
            self.sink.page.push(width);
            hybrid::encode(&self.indices, width, &mut self.sink.page);
            Encoding::RLE_DICTIONARY
        };
        self.sink.finish_page(z, rows, encoding)?;
        self.indices.clear();
        self.plain.clear();
        self.plain_rows = 0;
        if self.dictionary_plain.len() > DICTIONARY_LIMIT {
            self.full = true;
            self.last = None;
        }
        Ok(())
    }

    pub fn written(&self) -> usize {
        self.sink.written() + self.dictionary_plain.len() / 4
    }

    /// Adds the page being flushed to the column index: the least and greatest of the
    /// dictionary entries it uses. A PLAIN page's bounds are not kept, so a chunk with one
    /// has no column index.
    fn page_bounds(&mut self, rows: usize) {
        if self.sink.pages.is_none() {
            return;
        }
        let nulls = rows - self.indices.len() - self.plain_rows;
        let bounds = if self.plain_rows > 0 {
            None
        } else {
            self.seen.clear();
            self.seen.resize(self.dictionary_starts.len(), false);
            for &i in &self.indices {
                self.seen[i as usize] = true;
            }
            let mut bounds: Option<(&[u8], &[u8])> = None;
            for (i, _) in self.seen.iter().enumerate().filter(|(_, seen)| **seen) {
                let v = self.entry(i);
                bounds = Some(bounds.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))));
            }
            Some(bounds.map(|(lo, hi)| (lo.to_vec(), hi.to_vec())))
        };
        let Some(pages) = &mut self.sink.pages else {
            return;
        };
        match bounds {
            Some(bounds) => pages.push(bounds, nulls),
            None => pages.give_up(),
        }
    }

    fn entry(&self, i: usize) -> &[u8] {
        let start = self.dictionary_starts[i] as usize;
        let len = u32::from_le_bytes(
            self.dictionary_plain[start..start + 4]
                .try_into()
                .expect("4 bytes"),
        ) as usize;
        &self.dictionary_plain[start + 4..start + 4 + len]
    }

    pub fn finish(mut self, z: &mut Zstd, descr: ColumnDescPtr) -> Result<Chunk> {
        self.flush_page(z)?;
        let (mut min, mut max) = (self.plain_min.take(), self.plain_max.take());
        if self.min_max {
            for i in 0..self.dictionary_starts.len() {
                let v = self.entry(i);
                if min.as_deref().is_none_or(|m| v < m) {
                    min = Some(v.to_vec());
                }
                if max.as_deref().is_none_or(|m| v > m) {
                    max = Some(v.to_vec());
                }
            }
        }
        let statistics = Statistics::byte_array(
            min.map(ByteArray::from),
            max.map(ByteArray::from),
            None,
            Some(self.nulls),
            false,
        );
        let count = self.dictionary.len();
        let plain = std::mem::take(&mut self.dictionary_plain);
        self.sink
            .finish(z, descr, Some((&plain, count)), Some(statistics))
    }
}

impl<S: BuildHasher + Default> StrColumn<Box<str>, S> {
    /// Appends `text`, keyed by its content: for strings that nothing shares (paths,
    /// addresses), found without copying them.
    #[inline]
    pub fn push_text(&mut self, text: &str) {
        if !self.full
            && let Some(&index) = self.dictionary.get(text)
        {
            if self.optional {
                self.defs.push(true);
            }
            self.indices.push(index);
            return;
        }
        self.push(Box::from(text), || std::borrow::Cow::Borrowed(text));
    }
}

/// A BOOLEAN column, PLAIN (a bit a value).
pub struct BoolColumn {
    sink: Box<PageSink>,
    defs: Levels,
    values: Vec<bool>,
    nulls: u64,
}

impl Default for BoolColumn {
    fn default() -> Self {
        Self {
            sink: PageSink::new(None),
            defs: Levels::default(),
            values: Vec::new(),
            nulls: 0,
        }
    }
}

impl BoolColumn {
    #[inline]
    pub fn push(&mut self, value: Option<bool>) {
        match value {
            Some(v) => {
                self.defs.push(true);
                self.values.push(v);
            }
            None => {
                self.defs.push(false);
                self.nulls += 1;
            }
        }
    }

    pub fn flush_page(&mut self, z: &mut Zstd) -> Result<()> {
        let rows = self.defs.len();
        if rows == 0 {
            return Ok(());
        }
        self.sink.begin(Some(&mut self.defs));
        for group in self.values.chunks(8) {
            let byte = group
                .iter()
                .enumerate()
                .fold(0u8, |b, (i, &v)| b | (u8::from(v) << i));
            self.sink.page.push(byte);
        }
        self.sink.finish_page(z, rows, Encoding::PLAIN)?;
        self.values.clear();
        Ok(())
    }

    pub fn written(&self) -> usize {
        self.sink.written()
    }

    pub fn finish(mut self, z: &mut Zstd, descr: ColumnDescPtr) -> Result<Chunk> {
        self.flush_page(z)?;
        let statistics = Statistics::boolean(None, None, None, Some(self.nulls), false);
        self.sink.finish(z, descr, None, Some(statistics))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decompress(bytes: &[u8], len: usize) -> Vec<u8> {
        zstd::bulk::decompress(bytes, len).unwrap()
    }

    #[test]
    fn a_page_like_the_last_takes_its_compression_and_another_is_compressed() {
        let mut z = Zstd::new().unwrap();
        let a: Vec<u8> = (0..4096u32).map(|i| (i % 7) as u8).collect();
        let b: Vec<u8> = (0..4096u32).map(|i| (i % 5) as u8).collect();
        let first = z.compress(&a).unwrap();
        let again = z.compress(&a).unwrap();
        assert_eq!(
            first.as_ptr(),
            again.as_ptr(),
            "the same buffer, not compressed again"
        );
        let other = z.compress(&b).unwrap();
        assert_eq!(decompress(&other, b.len()), b);
        assert_eq!(decompress(&z.compress(&a).unwrap(), a.len()), a);
        // An empty page is compressed as ever: zstd's frame for nothing.
        assert_eq!(decompress(&z.compress(&[]).unwrap(), 0), Vec::<u8>::new());
    }
}
