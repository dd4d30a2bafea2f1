//! The `syscalls` table's file: each call goes straight into column pages, without an
//! Arrow batch in between, and a row group is spliced into the file when it is full.
//! The same life as every other file (created 0600 under a hidden name, renamed into
//! place when whole) comes from [`crate::files::parquet_file`].
use std::{borrow::Cow, fs::File, path::Path, sync::Arc};

use parquet::{
    arrow::{ArrowSchemaConverter, add_encoded_arrow_schema_to_metadata},
    errors::ParquetError,
    file::{properties::WriterProperties, writer::SerializedFileWriter},
    schema::types::SchemaDescriptor,
};
use tracepost_common::{FLAG_NO_RETURN, NO_SYSCALL, SchedTimes, SyscallEvent};
use tracepost_schema::{syscalls, ts_value};

use crate::{
    files::batch::{BatchBuilder, comm_str},
    files::pages::chunk::{
        BoolColumn, Chunk, IntColumn, IntEncoding, Seeded, SharedStrColumn, StrColumn, Zstd,
    },
    files::parquet_file::{self, Finished, WriterError},
    kernel::{call::Call, decode::Extra, names},
};

type Result<T> = std::result::Result<T, ParquetError>;

/// Calls taken into the columns at once: 128 KiB of them, which stay in the CPU's cache
/// for the pass of each column.
const BLOCK: usize = 1024;
/// Room for a file's page indexes and footer: about 5 KB for the footer of a row group of
/// 1M calls, and some 30 bytes a page in each column's indexes.
const FOOTER_ROOM: usize = 64 * 1024;

/// One row group's columns, in the schema's order.
struct Columns {
    ts: IntColumn,
    ts_ns: IntColumn,
    duration: IntColumn,
    pid: IntColumn,
    tid: IntColumn,
    comm: StrColumn<[u8; 16]>,
    syscall: StrColumn<u32>,
    nr: IntColumn,
    ret: IntColumn,
    errno: StrColumn<i32>,
    args: [IntColumn; 6],
    /// Keyed by address: the capture thread shares each recurring path
    /// ([`crate::kernel::intern`]).
    path: SharedStrColumn,
    path_truncated: BoolColumn,
    addr: StrColumn<Box<str>, Seeded>,
    fd: IntColumn,
    fd_path: SharedStrColumn,
    bytes: IntColumn,
    /// `record --sched` only: without it the file has none of these columns.
    sched: Option<SchedColumns>,
}

/// The columns of `record --sched`, in the schema's order.
struct SchedColumns {
    oncpu: IntColumn,
    runq: IntColumn,
    blocked: IntColumn,
    woken: IntColumn,
    waker_pid: IntColumn,
    waker_tid: IntColumn,
    waker_comm: StrColumn<[u8; 16]>,
    waker_syscall: StrColumn<u32>,
    waker_kind: StrColumn<u32>,
    /// `record --stacks`: keyed by the kernel's id of the stack.
    kernel_stack: StrColumn<i32>,
    /// `record --stacks`: keyed by the chain's id ([`crate::user_stacks::chains`]).
    user_stack: StrColumn<u64>,
}

impl SchedColumns {
    fn new() -> Self {
        let int = |int32| IntColumn::new(int32, true, IntEncoding::Dictionary, true);
        Self {
            oncpu: int(false),
            runq: int(false),
            blocked: int(false),
            woken: int(false),
            waker_pid: int(true),
            waker_tid: int(true),
            waker_comm: StrColumn::new(true, false),
            waker_syscall: StrColumn::new(true, false),
            waker_kind: StrColumn::new(true, false),
            kernel_stack: StrColumn::new(true, false),
            user_stack: StrColumn::new(true, false),
        }
    }

    /// A call without a split (recorded before `--sched` saw its entry) is NULL
    /// throughout; one that was never woken has times and no waker.
    fn push(&mut self, times: Option<&SchedTimes>, e: &SyscallEvent, rows: &BatchBuilder) {
        match times.and_then(|_| rows.user_stack(e)) {
            Some((id, text)) => self.user_stack.push(id, || Cow::Borrowed(&*text)),
            None => self.user_stack.push_null(),
        }
        let stack = times.and_then(|t| {
            let text = rows.kernel_stack(t.blocked_stack, e.duration_ns)?;
            Some((t.blocked_stack, text))
        });
        match stack {
            Some((id, text)) => self.kernel_stack.push(id, || Cow::Borrowed(&*text)),
            None => self.kernel_stack.push_null(),
        }
        let Some(t) = times else {
            self.oncpu.push(None);
            self.runq.push(None);
            self.blocked.push(None);
            self.woken.push(None);
            self.push_no_waker();
            return;
        };
        self.oncpu.push(Some(t.oncpu_ns as i64));
        self.runq.push(Some(t.runq_ns as i64));
        self.blocked.push(Some(t.blocked_ns as i64));
        match names::waker_kind(t.waker_kind) {
            None => {
                self.woken.push(None);
                self.push_no_waker();
            }
            Some(kind) => {
                self.woken.push(Some(rows.clock().to_wall_ns(t.woken_ns)));
                self.waker_kind.push(t.waker_kind, || kind.into());
                if t.waker_tid == 0 {
                    self.waker_pid.push(None);
                    self.waker_tid.push(None);
                    self.waker_comm.push_null();
                } else {
                    self.waker_pid.push(Some(i64::from(t.waker_pid as i32)));
                    self.waker_tid.push(Some(i64::from(t.waker_tid as i32)));
                    self.waker_comm
                        .push(t.waker_comm, || comm_str(&t.waker_comm));
                }
                if t.waker_nr == NO_SYSCALL || t.waker_tid == 0 {
                    self.waker_syscall.push_null();
                } else {
                    self.waker_syscall
                        .push(t.waker_nr, || rows.names().get(t.waker_nr));
                }
            }
        }
    }

    fn push_no_waker(&mut self) {
        self.waker_pid.push(None);
        self.waker_tid.push(None);
        self.waker_comm.push_null();
        self.waker_syscall.push_null();
        self.waker_kind.push_null();
    }

    fn flush_pages(&mut self, z: &mut Zstd) -> Result<()> {
        self.oncpu.flush_page(z)?;
        self.runq.flush_page(z)?;
        self.blocked.flush_page(z)?;
        self.woken.flush_page(z)?;
        self.waker_pid.flush_page(z)?;
        self.waker_tid.flush_page(z)?;
        self.waker_comm.flush_page(z)?;
        self.waker_syscall.flush_page(z)?;
        self.waker_kind.flush_page(z)?;
        self.kernel_stack.flush_page(z)?;
        self.user_stack.flush_page(z)
    }

    fn written(&self) -> usize {
        self.oncpu.written()
            + self.runq.written()
            + self.blocked.written()
            + self.woken.written()
            + self.waker_pid.written()
            + self.waker_tid.written()
            + self.waker_comm.written()
            + self.waker_syscall.written()
            + self.waker_kind.written()
            + self.kernel_stack.written()
            + self.user_stack.written()
    }

    fn finish(
        self,
        z: &mut Zstd,
        mut next: impl FnMut() -> parquet::schema::types::ColumnDescPtr,
        chunks: &mut Vec<Chunk>,
    ) -> Result<()> {
        chunks.push(self.oncpu.finish(z, next())?);
        chunks.push(self.runq.finish(z, next())?);
        chunks.push(self.blocked.finish(z, next())?);
        chunks.push(self.woken.finish(z, next())?);
        chunks.push(self.waker_pid.finish(z, next())?);
        chunks.push(self.waker_tid.finish(z, next())?);
        chunks.push(self.waker_comm.finish(z, next())?);
        chunks.push(self.waker_syscall.finish(z, next())?);
        chunks.push(self.waker_kind.finish(z, next())?);
        chunks.push(self.kernel_stack.finish(z, next())?);
        chunks.push(self.user_stack.finish(z, next())?);
        Ok(())
    }
}

impl Columns {
    fn new(sched: bool) -> Self {
        use IntEncoding::{Delta, Dictionary};
        let int = |int32, optional, encoding| IntColumn::new(int32, optional, encoding, true);
        // Unsigned: i64's order is not theirs, so no min and max.
        let unsigned = || IntColumn::new(false, false, Dictionary, false);
        Self {
            ts: int(false, false, Delta),
            ts_ns: int(false, false, Delta),
            duration: int(false, true, Dictionary),
            pid: int(true, false, Dictionary),
            tid: int(true, false, Dictionary),
            comm: StrColumn::new(false, true),
            syscall: StrColumn::new(false, true),
            nr: int(true, false, Dictionary),
            ret: int(false, true, Dictionary),
            errno: StrColumn::new(true, true),
            args: [
                unsigned(),
                unsigned(),
                unsigned(),
                unsigned(),
                unsigned(),
                unsigned(),
            ],
            path: SharedStrColumn::new(true),
            path_truncated: BoolColumn::default(),
            addr: StrColumn::new(true, false),
            fd: int(true, true, Dictionary),
            fd_path: SharedStrColumn::new(true),
            bytes: int(false, true, Dictionary),
            sched: sched.then(SchedColumns::new),
        }
    }

    /// Appends a block of calls column by column: a pass per column keeps that column's
    /// buffers in registers, where a row at a time touched 22 columns' buffers per call
    /// (BENCHMARKS.md).
    fn push_block(&mut self, calls: &[Call], rows: &BatchBuilder) {
        let clock = rows.clock();
        let table = rows.args();
        let returned = |c: &Call| c.event.flags & FLAG_NO_RETURN == 0;
        let wall = |c: &Call| clock.to_wall_ns(c.event.enter_ns);
        self.ts
            .extend_required(calls.iter().map(|c| ts_value(wall(c))));
        self.ts_ns.extend_required(calls.iter().map(wall));
        self.duration.extend_optional(
            calls
                .iter()
                .map(|c| returned(c).then_some(c.event.duration_ns as i64)),
        );
        self.pid
            .extend_required(calls.iter().map(|c| i64::from(c.event.pid as i32)));
        self.tid
            .extend_required(calls.iter().map(|c| i64::from(c.event.tid as i32)));
        for c in calls {
            self.comm.push(c.event.comm, || comm_str(&c.event.comm));
        }
        for c in calls {
            self.syscall
                .push(c.event.nr, || rows.names().get(c.event.nr));
        }
        self.nr
            .extend_required(calls.iter().map(|c| i64::from(c.event.nr as i32)));
        self.ret
            .extend_optional(calls.iter().map(|c| returned(c).then_some(c.event.ret)));
        for c in calls {
            match names::errno_of(c.event.ret).filter(|_| returned(c)) {
                Some(code) => self.errno.push(code, || names::errno_name(code)),
                None => self.errno.push_null(),
            }
        }
        for (k, column) in self.args.iter_mut().enumerate() {
            column.extend_required(calls.iter().map(|c| c.event.args[k] as i64));
        }
        for c in calls {
            match c.extra() {
                Some(Extra::Path {
                    path, truncated, ..
                }) => {
                    self.path.push(path);
                    self.path_truncated.push(Some(*truncated));
                    self.addr.push_null();
                }
                Some(Extra::Addr(addr)) => {
                    self.path.push_null();
                    self.path_truncated.push(None);
                    self.addr.push_text(addr);
                }
                _ => {
                    self.path.push_null();
                    self.path_truncated.push(None);
                    self.addr.push_null();
                }
            }
        }
        self.fd
            .extend_optional(calls.iter().map(|c| table.fd_of(c).map(i64::from)));
        for c in calls {
            match &c.fd_path {
                Some(p) => self.fd_path.push(p),
                None => self.fd_path.push_null(),
            }
        }
        self.bytes.extend_optional(calls.iter().map(|c| {
            returned(c)
                .then(|| table.bytes(c.event.nr, c.event.ret))
                .flatten()
        }));
        if let Some(sched) = &mut self.sched {
            for c in calls {
                sched.push(c.sched(), &c.event, rows);
            }
        }
    }

    fn flush_pages(&mut self, z: &mut Zstd) -> Result<()> {
        self.ts.flush_page(z)?;
        self.ts_ns.flush_page(z)?;
        self.duration.flush_page(z)?;
        self.pid.flush_page(z)?;
        self.tid.flush_page(z)?;
        self.comm.flush_page(z)?;
        self.syscall.flush_page(z)?;
        self.nr.flush_page(z)?;
        self.ret.flush_page(z)?;
        self.errno.flush_page(z)?;
        for a in &mut self.args {
            a.flush_page(z)?;
        }
        self.path.flush_page(z)?;
        self.path_truncated.flush_page(z)?;
        self.addr.flush_page(z)?;
        self.fd.flush_page(z)?;
        self.fd_path.flush_page(z)?;
        self.bytes.flush_page(z)?;
        match &mut self.sched {
            Some(sched) => sched.flush_pages(z),
            None => Ok(()),
        }
    }

    /// Compressed bytes so far, and a part of the dictionaries, for the size bound.
    fn written(&self) -> usize {
        let ints = [
            &self.ts,
            &self.ts_ns,
            &self.duration,
            &self.pid,
            &self.tid,
            &self.nr,
            &self.ret,
            &self.fd,
            &self.bytes,
        ];
        ints.iter().map(|c| c.written()).sum::<usize>()
            + self.args.iter().map(IntColumn::written).sum::<usize>()
            + self.comm.written()
            + self.syscall.written()
            + self.errno.written()
            + self.path.written()
            + self.path_truncated.written()
            + self.addr.written()
            + self.fd_path.written()
            + self.sched.as_ref().map_or(0, SchedColumns::written)
    }

    fn finish(self, z: &mut Zstd, schema: &SchemaDescriptor) -> Result<Vec<Chunk>> {
        let mut i = 0;
        let mut next = || {
            i += 1;
            schema.column(i - 1)
        };
        let mut chunks = vec![
            self.ts.finish(z, next())?,
            self.ts_ns.finish(z, next())?,
            self.duration.finish(z, next())?,
            self.pid.finish(z, next())?,
            self.tid.finish(z, next())?,
            self.comm.finish(z, next())?,
            self.syscall.finish(z, next())?,
            self.nr.finish(z, next())?,
            self.ret.finish(z, next())?,
            self.errno.finish(z, next())?,
        ];
        for a in self.args {
            chunks.push(a.finish(z, next())?);
        }
        chunks.push(self.path.finish(z, next())?);
        chunks.push(self.path_truncated.finish(z, next())?);
        chunks.push(self.addr.finish(z, next())?);
        chunks.push(self.fd.finish(z, next())?);
        chunks.push(self.fd_path.finish(z, next())?);
        chunks.push(self.bytes.finish(z, next())?);
        if let Some(sched) = self.sched {
            sched.finish(z, next, &mut chunks)?;
        }
        Ok(chunks)
    }
}

/// A `syscalls` file being written.
pub struct SyscallsFile {
    writer: SerializedFileWriter<File>,
    schema: Arc<SchemaDescriptor>,
    rows_from: BatchBuilder,
    columns: Columns,
    /// Whether the file has the `record --sched` columns.
    sched: bool,
    zstd: Zstd,
    /// Rows in the open row group's finished pages, and in the pages being built.
    row_group_rows: usize,
    pending: usize,
    /// Calls not yet in the columns.
    block: Vec<Call>,
    max_row_group_rows: usize,
    rows: u64,
    tmp_path: std::path::PathBuf,
    final_path: std::path::PathBuf,
}

impl SyscallsFile {
    /// `dir/.part-SEQ.inprogress`, to become `dir/part-SEQ.parquet`; with the `--sched`
    /// columns if `sched`.
    pub fn create(
        dir: &Path,
        seq: u64,
        mut props: WriterProperties,
        rows_from: BatchBuilder,
        max_row_group_rows: usize,
        sched: bool,
    ) -> std::result::Result<Self, WriterError> {
        let tmp_path = dir.join(parquet_file::tmp_name(seq));
        let final_path = dir.join(parquet_file::part_name(seq));
        let error = |source| parquet_file::write_error(tmp_path.clone(), source);
        let arrow = syscalls::file_schema(sched);
        add_encoded_arrow_schema_to_metadata(&arrow, &mut props);
        let schema = Arc::new(ArrowSchemaConverter::new().convert(&arrow).map_err(error)?);
        let zstd = Zstd::new().map_err(error)?;
        let f = parquet_file::create_private(&tmp_path)?;
        let writer = SerializedFileWriter::new(f, schema.root_schema_ptr(), Arc::new(props))
            .map_err(error)?;
        Ok(Self {
            writer,
            schema,
            rows_from,
            columns: Columns::new(sched),
            sched,
            zstd,
            row_group_rows: 0,
            pending: 0,
            block: Vec::with_capacity(BLOCK),
            max_row_group_rows,
            rows: 0,
            tmp_path,
            final_path,
        })
    }

    /// Adds one call (the file's calls come sorted by entry time) to the pages being
    /// built: to the block, which goes into the columns when it is full.
    #[inline]
    pub fn push(&mut self, call: Call) {
        self.block.push(call);
        self.pending += 1;
        if self.block.len() == BLOCK {
            self.encode_block();
        }
    }

    /// Adds calls (sorted by entry time, after those pushed before) straight into the
    /// columns, where they lie: no call is moved.
    pub fn push_run(&mut self, calls: &[Call]) {
        if !self.block.is_empty() {
            self.encode_block();
        }
        self.columns.push_block(calls, &self.rows_from);
        self.pending += calls.len();
    }

    fn encode_block(&mut self) {
        self.columns.push_block(&self.block, &self.rows_from);
        self.block.clear();
    }

    /// Rows pushed and not yet in a finished page.
    pub fn pending(&self) -> usize {
        self.pending
    }

    /// Ends a page in every column, and the row group once it is full. Returns the rows
    /// that the pages hold.
    pub fn flush_pages(&mut self) -> std::result::Result<u64, WriterError> {
        if self.pending == 0 {
            return Ok(0);
        }
        self.encode_block();
        self.columns
            .flush_pages(&mut self.zstd)
            .map_err(|e| self.error(e))?;
        let rows = self.pending;
        self.pending = 0;
        self.row_group_rows += rows;
        self.rows += rows as u64;
        if self.row_group_rows >= self.max_row_group_rows {
            self.close_row_group()?;
        }
        Ok(rows as u64)
    }

    /// Writes `calls` as pages of `page_rows` rows.
    #[cfg(test)]
    fn write(&mut self, calls: &[Call], page_rows: usize) -> std::result::Result<(), WriterError> {
        for page in calls.chunks(page_rows) {
            for call in page {
                self.push(call.clone());
            }
            self.flush_pages()?;
        }
        Ok(())
    }

    fn error(&self, source: ParquetError) -> WriterError {
        parquet_file::write_error(self.tmp_path.clone(), source)
    }

    fn close_row_group(&mut self) -> std::result::Result<(), WriterError> {
        if self.row_group_rows == 0 {
            return Ok(());
        }
        let columns = std::mem::replace(&mut self.columns, Columns::new(self.sched));
        self.row_group_rows = 0;
        let result = (|| {
            let chunks = columns.finish(&mut self.zstd, &self.schema)?;
            let mut group = self.writer.next_row_group()?;
            for chunk in chunks {
                group.append_column(&chunk.bytes, chunk.close)?;
            }
            group.close().map(|_| ())
        })();
        result.map_err(|e| self.error(e))
    }

    pub fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes written, plus what the open row group holds compressed, plus a pessimistic 8
    /// bytes a row for the pages being built.
    pub fn size_estimate(&self) -> u64 {
        (self.writer.bytes_written() + self.columns.written() + self.pending * 8) as u64
    }

    /// Whether the next `flush_pages` writes to disk: pages are kept in memory, compressed,
    /// until their row group is full.
    pub fn flush_writes(&self) -> bool {
        self.row_group_rows + self.pending >= self.max_row_group_rows
    }

    /// At most the bytes that the next write (a row group, or the rest of the file with its
    /// footer) puts on disk: the open row group's compressed pages and dictionaries, the
    /// pages being built at a pessimistic 16 bytes a row, a quarter more for what the
    /// dictionaries' estimate leaves out, and room for the footer.
    pub fn next_write_bound(&self) -> u64 {
        let pages = self.columns.written() + self.pending * 16;
        (pages + pages / 4 + FOOTER_ROOM) as u64
    }

    /// Writes the last row group and the footer, syncs, and renames into place.
    pub fn finish(mut self) -> std::result::Result<Finished, WriterError> {
        self.flush_pages()?;
        self.close_row_group()?;
        let Self {
            writer,
            tmp_path,
            final_path,
            rows,
            ..
        } = self;
        let f = writer
            .into_inner()
            .map_err(|source| parquet_file::write_error(tmp_path.clone(), source))?;
        parquet_file::commit(f, tmp_path, final_path, rows)
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;

    use arrow_array::RecordBatch;
    use parquet::{
        arrow::arrow_reader::ParquetRecordBatchReaderBuilder, file::reader::FileReader,
        file::serialized_reader::SerializedFileReader, file::statistics::Statistics,
    };
    use tracepost_common::{FLAG_NO_RETURN, NO_SYSCALL, SchedTimes};

    use super::*;
    use crate::{files::reorder::event, kernel::clock::WallClock};

    /// Calls of every shape: errors, calls that never return, paths (some shared, some
    /// long enough to fill the dictionary), addresses, shared fd paths, runs and noise.
    fn calls(n: u64) -> Vec<Call> {
        let shared: Vec<Arc<str>> = (0..5).map(|i| Arc::from(format!("/var/log/{i}"))).collect();
        (0..n)
            .map(|i| {
                let mut e = event(1_000_000 + i * 1_000 + i % 7, 100 + (i / 1000) as u32);
                e.pid = 100 + (i / 3000) as u32;
                e.nr = [0, 1, 257, 42, 232][(i % 5) as usize];
                e.duration_ns = (i * 7919) % 50_000;
                e.ret = match i % 11 {
                    0 => -2,
                    1 => -11,
                    _ => (i % 300) as i64,
                };
                e.args = [i % 3, i * 31, u64::MAX - i % 2, 0, i, 7];
                if i % 97 == 0 {
                    e.flags = FLAG_NO_RETURN;
                }
                if i % 13 == 0 {
                    e.comm = *b"0123456789abcdef";
                }
                if i % 17 == 0 {
                    // A thread may name itself with bytes that are not UTF-8.
                    e.comm = *b"bad\xff\xfe name\0\0\0\0\0\0";
                }
                let extra = match i % 4 {
                    // Distinct and long past row 20000: the dictionary fills.
                    0 if i > 20_000 => Some(Extra::Path {
                        path: format!("/data/{i}/{}", "x".repeat(200)).into(),
                        truncated: i % 8 == 0,
                        target: None,
                    }),
                    0 => Some(Extra::Path {
                        path: format!("/etc/{}", i % 10).into(),
                        truncated: false,
                        target: None,
                    }),
                    1 => Some(Extra::Addr(format!("10.0.0.{}:80", i % 4))),
                    _ => None,
                };
                let mut call = Call::new(e, extra, sched_times(i));
                call.fd_path = (i % 3 == 0).then(|| shared[(i % 5) as usize].clone());
                call
            })
            .collect()
    }

    /// Every shape a call's split takes: none (entered before `--sched` saw it), never
    /// woken, woken by a thread in a call or in none, by a softirq, by a timer, and a kind
    /// this build does not know.
    fn sched_times(i: u64) -> Option<SchedTimes> {
        use tracepost_common::{WAKER_IRQ, WAKER_SOFTIRQ, WAKER_THREAD, WAKER_TIMER};
        let mut t = SchedTimes {
            oncpu_ns: i % 1000,
            runq_ns: (i * 13) % 5000,
            blocked_ns: if i.is_multiple_of(2) { i * 1_000 } else { 0 },
            waker_nr: NO_SYSCALL,
            ..SchedTimes::default()
        };
        match i % 7 {
            0 => return None,
            1 => {}
            2 => {
                t.waker_kind = WAKER_THREAD;
                t.woken_ns = i * 1_000;
                t.waker_pid = 200;
                t.waker_tid = 200 + (i % 3) as u32;
                t.waker_nr = 1;
                t.waker_comm = *b"pipe-writer\0\0\0\0\0";
            }
            3 => {
                t.waker_kind = WAKER_THREAD;
                t.waker_tid = 300;
                t.waker_comm = *b"bad\xff waker\0\0\0\0\0\0";
            }
            4 => {
                t.waker_kind = WAKER_SOFTIRQ;
                t.woken_ns = i * 1_000 + 1;
                t.waker_pid = 7;
                t.waker_tid = 7;
                t.waker_nr = 44;
                t.waker_comm = *b"ksoftirqd/0\0\0\0\0\0";
            }
            5 => {
                t.waker_kind = if i.is_multiple_of(2) {
                    WAKER_TIMER
                } else {
                    WAKER_IRQ
                }
            }
            _ => t.waker_kind = 99,
        }
        Some(t)
    }

    fn read(path: &Path) -> Vec<RecordBatch> {
        let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
            .unwrap()
            .with_batch_size(7_000)
            .build()
            .unwrap();
        reader.map(|b| b.unwrap()).collect()
    }

    /// 60,000 calls written in pages of 4096 rows and row groups of about 25,000, with the
    /// Arrow batch that the old path built from the same calls: what readers must see.
    fn written(dir: &Path, sched: bool) -> (Finished, RecordBatch, Vec<Call>) {
        let rows = BatchBuilder::new(WallClock::with_offset(5_000));
        let calls = calls(60_000);
        let props = parquet_file::properties(syscalls::TABLE).build();
        let mut file = SyscallsFile::create(dir, 1, props, rows.clone(), 25_000, sched).unwrap();
        file.write(&calls, 4096).unwrap();
        let done = file.finish().unwrap();
        let want = rows.build(&calls, sched).unwrap();
        (done, want, calls)
    }

    #[test]
    fn reads_back_exactly_as_the_arrow_batch_of_the_same_calls() {
        reads_back_exactly(false);
    }

    /// With `--sched`, the split and the waker too; without it the file has none of
    /// their columns (above).
    #[test]
    fn reads_back_the_sched_columns_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let (done, want, _) = written(dir.path(), true);
        let got = read(&done.path);
        assert_eq!(got[0].schema().fields(), syscalls::schema().fields());
        let mut offset = 0;
        for got in got {
            assert_eq!(got, want.slice(offset, got.num_rows()), "from row {offset}");
            offset += got.num_rows();
        }
        assert_eq!(offset, 60_000);
        // The oracle itself says what the kinds mean.
        let kinds = want
            .column_by_name(syscalls::WAKER_KIND)
            .unwrap()
            .as_any()
            .downcast_ref::<arrow_array::StringArray>()
            .unwrap();
        assert_eq!(kinds.value(2), "thread");
        assert_eq!(kinds.value(4), "softirq");
        use arrow_array::Array as _;
        assert!(kinds.is_null(0) && kinds.is_null(1) && kinds.is_null(6));
    }

    fn reads_back_exactly(sched: bool) {
        let dir = tempfile::tempdir().unwrap();
        let (done, want, _) = written(dir.path(), sched);
        assert_eq!(done.rows, 60_000);
        let mut offset = 0;
        for got in read(&done.path) {
            assert_eq!(got.schema().fields(), want.schema().fields());
            let want = want.slice(offset, got.num_rows());
            for (i, field) in want.schema().fields().iter().enumerate() {
                assert_eq!(
                    got.column(i),
                    want.column(i),
                    "column {} from row {offset}",
                    field.name()
                );
            }
            offset += got.num_rows();
        }
        assert_eq!(offset, 60_000);
        // Three row groups, with the statistics that pruning reads.
        let reader = SerializedFileReader::new(File::open(&done.path).unwrap()).unwrap();
        let meta = reader.metadata();
        assert_eq!(meta.num_row_groups(), 3);
        let ts_ns = meta.row_group(0).column(1).statistics().unwrap();
        let Statistics::Int64(s) = ts_ns else {
            panic!("{ts_ns:?}")
        };
        assert_eq!(s.min_opt(), Some(&(1_000_000 + 5_000)));
        let path = meta.row_group(2).column(16);
        assert!(
            path.encodings()
                .any(|e| e == parquet::basic::Encoding::PLAIN)
        );
    }

    /// The page index: every column has an offset index, the filtered columns a column
    /// index with each page's bounds, and a reader that uses them to skip pages reads
    /// exactly the rows it selected, in dictionary and in PLAIN pages.
    #[test]
    fn pages_are_indexed_so_readers_skip_them() {
        use parquet::{
            arrow::arrow_reader::{ArrowReaderOptions, RowSelection, RowSelector},
            file::metadata::PageIndexPolicy,
            file::page_index::column_index::ColumnIndexMetaData,
            file::serialized_reader::ReadOptionsBuilder,
        };
        let dir = tempfile::tempdir().unwrap();
        let (done, want, calls) = written(dir.path(), false);

        let options = ReadOptionsBuilder::new().with_page_index().build();
        let reader =
            SerializedFileReader::new_with_options(File::open(&done.path).unwrap(), options)
                .unwrap();
        let meta = reader.metadata();
        let offsets = meta.offset_index().expect("an offset index");
        let columns = meta.column_index().expect("a column index");
        // Row groups close after the page that passes 25,000 rows: 7 pages of 4096.
        assert_eq!(meta.row_group(0).num_rows(), 7 * 4096);
        for (group, group_offsets) in offsets.iter().enumerate() {
            assert_eq!(group_offsets.len(), 22, "every column of group {group}");
            for column in group_offsets {
                let first: Vec<i64> = column
                    .page_locations
                    .iter()
                    .map(|p| p.first_row_index)
                    .collect();
                let pages = (meta.row_group(group).num_rows() + 4095) / 4096;
                assert_eq!(first, (0..pages).map(|p| p * 4096).collect::<Vec<_>>());
            }
        }
        // ts_ns (column 1): each page's first and last entry time.
        let ColumnIndexMetaData::INT64(ts) = &columns[0][1] else {
            panic!("{:?}", columns[0][1])
        };
        let ts_ns = |row: usize| 1_000_000 + row as i64 * 1_000 + (row % 7) as i64 + 5_000;
        assert_eq!(ts.min_value(1), Some(&ts_ns(4096)));
        assert_eq!(ts.max_value(1), Some(&ts_ns(2 * 4096 - 1)));
        // syscall (column 6): every page holds all five names.
        let ColumnIndexMetaData::BYTE_ARRAY(names) = &columns[0][6] else {
            panic!("{:?}", columns[0][6])
        };
        assert_eq!(names.min_value(0), Some(&b"connect"[..]));
        assert_eq!(names.max_value(0), Some(&b"write"[..]));
        // pid (column 3), INT32: rows 0..4096 hold pids 100 and 101.
        let ColumnIndexMetaData::INT32(pids) = &columns[0][3] else {
            panic!("{:?}", columns[0][3])
        };
        assert_eq!(
            (pids.min_value(0), pids.max_value(0)),
            (Some(&100), Some(&101))
        );
        // errno (column 9): the page's null count is its calls without an errno.
        let ColumnIndexMetaData::BYTE_ARRAY(errnos) = &columns[0][9] else {
            panic!("{:?}", columns[0][9])
        };
        let no_errno = calls[..4096]
            .iter()
            .filter(|c| c.event.flags & FLAG_NO_RETURN != 0 || c.event.ret >= 0)
            .count();
        assert_eq!(errnos.null_count(0), Some(no_errno as i64));
        assert_eq!(errnos.min_value(0), Some(&b"EAGAIN"[..]));
        assert_eq!(errnos.max_value(0), Some(&b"ENOENT"[..]));
        // arg0 (column 10), unsigned: no bounds to give.
        assert!(matches!(columns[0][10], ColumnIndexMetaData::NONE));

        // Rows in the middle of a page, in the first row group and in the last, where the
        // paths are PLAIN: read through the offset index.
        for (group, from, len) in [(0usize, 10_000usize, 100usize), (2, 2_000, 50)] {
            let group_start: usize = (0..group)
                .map(|g| meta.row_group(g).num_rows() as usize)
                .sum();
            let selection =
                RowSelection::from(vec![RowSelector::skip(from), RowSelector::select(len)]);
            let got = ParquetRecordBatchReaderBuilder::try_new_with_options(
                File::open(&done.path).unwrap(),
                ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Required),
            )
            .unwrap()
            .with_row_groups(vec![group])
            .with_row_selection(selection)
            .with_batch_size(len)
            .build()
            .unwrap()
            .map(|b| b.unwrap())
            .collect::<Vec<_>>();
            assert_eq!(got.len(), 1);
            assert_eq!(got[0], want.slice(group_start + from, len), "group {group}");
        }
    }

    #[test]
    fn an_empty_file_has_the_schema_and_no_rows() {
        let dir = tempfile::tempdir().unwrap();
        let rows = BatchBuilder::new(WallClock::with_offset(0));
        let props = parquet_file::properties(syscalls::TABLE).build();
        let file = SyscallsFile::create(dir.path(), 3, props, rows, 100, false).unwrap();
        let done = file.finish().unwrap();
        assert!(read(&done.path).iter().all(|b| b.num_rows() == 0));
        let reader =
            ParquetRecordBatchReaderBuilder::try_new(File::open(&done.path).unwrap()).unwrap();
        assert_eq!(
            reader.schema().fields(),
            syscalls::file_schema(false).fields()
        );
    }
}
