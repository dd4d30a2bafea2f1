//! The capture directory format.
//!
//! Column names and types here are a contract with users' SQL, DuckDB and pandas: add
//! columns freely, but renaming or retyping one is a new `SCHEMA_VERSION`.
//!
//! A capture directory holds one sub-directory per table (`syscalls/`, `aggregates/`,
//! `capture/`), each holding finished `*.parquet` files. Files still being written never
//! end in `.parquet`.

use std::sync::{Arc, LazyLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Bumped when a column is renamed, retyped or its meaning changes.
///
/// - 1: timestamps are `Timestamp(ns, UTC)`.
/// - 2: timestamps are `Timestamp(us, UTC)`, because Spark 4 refuses nanosecond Parquet
///   timestamps and every reader takes microseconds; `syscalls.ts_ns` keeps a call's
///   entry time to the nanosecond. Readers of this crate read both; see [`v1`].
pub const SCHEMA_VERSION: u32 = 2;
/// The oldest version readers still understand.
pub const OLDEST_SCHEMA_VERSION: u32 = 1;

/// Parquet key/value metadata key holding `SCHEMA_VERSION`.
pub const SCHEMA_VERSION_KEY: &str = "tracepost.schema_version";
/// Parquet key/value metadata key naming the table a file belongs to.
pub const TABLE_KEY: &str = "tracepost.table";

/// Parquet key/value metadata key holding a CRC-32 of a file's bytes before its page index
/// and footer, as `LEN:CRC` ([`DataChecksum`]). `syscalls` pages are zstd frames that carry
/// zstd's own checksum; the other tables are written by arrow's writer, whose pages carry
/// none, so a bit flipped in a `processes` file read as another pid or command line.
pub const DATA_CHECKSUM_KEY: &str = "tracepost.data_crc32";

/// How `created_by` begins in the files whose data [`DATA_CHECKSUM_KEY`] sums. A file
/// another tool rewrote (pyarrow keeps the key-value metadata it read) says its own
/// writer there, and the sum it kept is of bytes no longer in the file.
pub const RECORDER_CREATED_BY: &str = "tracepost-record";

/// What [`DATA_CHECKSUM_KEY`] holds: how many bytes from the start of the file the checksum
/// covers, and their CRC-32 (IEEE, as gzip and zlib compute it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataChecksum {
    pub len: u64,
    pub crc: u32,
}

impl DataChecksum {
    /// The checksum of `bytes`, all of them covered.
    pub fn of(bytes: &[u8]) -> Self {
        Self {
            len: bytes.len() as u64,
            crc: crc32fast::hash(bytes),
        }
    }

    /// The metadata value: decimal length, a colon, eight hex digits.
    pub fn to_value(self) -> String {
        format!("{}:{:08x}", self.len, self.crc)
    }

    /// None for a value not in the form [`Self::to_value`] writes.
    pub fn parse(value: &str) -> Option<Self> {
        let (len, crc) = value.split_once(':')?;
        if crc.len() != 8 {
            return None;
        }
        Some(Self {
            len: len.parse().ok()?,
            crc: u32::from_str_radix(crc, 16).ok()?,
        })
    }
}

/// The file in a capture directory that `record` holds locked while it writes there, and
/// that names the holder's pid for a second `record` to report. `analyze` tells by it a
/// directory whose recorder wrote nothing yet from one that is not a capture.
pub const LOCK_FILE: &str = ".record.lock";

/// File name extension of finished table files.
pub const FILE_EXTENSION: &str = "parquet";

/// Every table of a capture, in the order a reader registers them.
pub const TABLES: [&str; 4] = [
    syscalls::TABLE,
    aggregates::TABLE,
    processes::TABLE,
    capture::TABLE,
];

/// A task name as the `comm` columns hold it: the kernel's first 15 bytes
/// ([`comm_bytes`]) as UTF-8, a character the cut split shown as U+FFFD, as the recorder
/// writes it. `analyze --comm` compares names so.
pub fn comm_of(name: &str) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(comm_bytes(name))
}

/// The kernel's name for a thread called `name`: its first 15 bytes, wherever they cut. A
/// cut inside a character (`ééééééééé` is 18 bytes) is kept as the kernel keeps it; cut
/// back to a whole character, it matched no thread.
pub fn comm_bytes(name: &str) -> &[u8] {
    &name.as_bytes()[..name.len().min(15)]
}

/// Wall-clock timestamps are UTC so that captures from several hosts line up, and
/// microseconds, the finest unit that DuckDB, pandas, polars and Spark all read.
pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

/// A time in nanoseconds since the Unix epoch as a value of [`ts_type`]: rounded down to
/// the microsecond, so a row's `ts` never sorts after its `ts_ns`.
pub fn ts_value(ns: i64) -> i64 {
    ns.div_euclid(1_000)
}

/// The schema of `table`, if it is one of [`TABLES`].
pub fn schema_of(table: &str) -> Option<SchemaRef> {
    match table {
        syscalls::TABLE => Some(syscalls::schema()),
        aggregates::TABLE => Some(aggregates::schema()),
        capture::TABLE => Some(capture::schema()),
        processes::TABLE => Some(processes::schema()),
        _ => None,
    }
}

/// The `aggregates` table: calls that were not recorded one by one, counted exactly by the
/// kernel, per interval of about a second. Rows exist only for intervals and groups with
/// such calls: a capture with no loss and no `--min-duration` has none.
pub mod aggregates {
    use super::*;

    pub const TABLE: &str = "aggregates";

    pub const INTERVAL_START: &str = "interval_start";
    pub const INTERVAL_END: &str = "interval_end";
    pub const REASON: &str = "reason";
    pub const PID: &str = "pid";
    pub const SYSCALL: &str = "syscall";
    pub const NR: &str = "nr";
    pub const ERRNO: &str = "errno";
    pub const FAILED: &str = "failed";
    pub const LATENCY_LOG2: &str = "latency_log2";
    pub const CALLS: &str = "calls";
    pub const TOTAL_NS: &str = "total_ns";

    /// `reason`: the ring buffer was full, so the calls are lost as detail.
    pub const RING_FULL: &str = "ring_full";
    /// `reason`: shorter than `--min-duration`, so not sent, by request.
    pub const BELOW_MIN_DURATION: &str = "below_min_duration";
    /// `reason`: the kernel's thread table was full, so the calls were not timed.
    pub const THREAD_TABLE_FULL: &str = "thread_table_full";
    /// `reason`: the call succeeded, and `--failed` records only failures, by request.
    pub const NOT_FAILED: &str = "not_failed";

    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            Field::new(INTERVAL_START, ts_type(), false),
            Field::new(INTERVAL_END, ts_type(), false),
            Field::new(REASON, DataType::Utf8, false),
            Field::new(PID, DataType::Int32, true),
            Field::new(SYSCALL, DataType::Utf8, true),
            Field::new(NR, DataType::Int32, true),
            Field::new(ERRNO, DataType::Utf8, true),
            Field::new(FAILED, DataType::Boolean, true),
            Field::new(LATENCY_LOG2, DataType::Int32, true),
            Field::new(CALLS, DataType::Int64, false),
            Field::new(TOTAL_NS, DataType::Int64, true),
        ]))
    });

    /// The Arrow schema of the `aggregates` table.
    pub fn schema() -> SchemaRef {
        SCHEMA.clone()
    }
}

/// The `processes` table: one row per process seen, from /proc at attach and from the
/// kernel's fork, exec and exit events during the capture.
pub mod processes {
    use super::*;

    pub const TABLE: &str = "processes";

    pub const PID: &str = "pid";
    pub const PPID: &str = "ppid";
    pub const COMM: &str = "comm";
    pub const EXE: &str = "exe";
    pub const CMDLINE: &str = "cmdline";
    /// How a `cmdline` ends that the kernel cut and /proc could not complete: a word of its
    /// own after the quoted arguments, so it is never taken for part of the last one.
    pub const CMDLINE_CUT: &str = " \u{2026}";
    pub const UID: &str = "uid";
    pub const CGROUP: &str = "cgroup";
    pub const CONTAINER_ID: &str = "container_id";
    pub const START_TS: &str = "start_ts";
    pub const EXIT_TS: &str = "exit_ts";
    pub const EXIT_CODE: &str = "exit_code";
    pub const EXIT_SIGNAL: &str = "exit_signal";

    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            Field::new(PID, DataType::Int32, false),
            Field::new(PPID, DataType::Int32, true),
            Field::new(COMM, DataType::Utf8, true),
            Field::new(EXE, DataType::Utf8, true),
            Field::new(CMDLINE, DataType::Utf8, true),
            Field::new(UID, DataType::Int64, true),
            Field::new(CGROUP, DataType::Utf8, true),
            Field::new(CONTAINER_ID, DataType::Utf8, true),
            Field::new(START_TS, ts_type(), true),
            Field::new(EXIT_TS, ts_type(), true),
            Field::new(EXIT_CODE, DataType::Int32, true),
            Field::new(EXIT_SIGNAL, DataType::Int32, true),
        ]))
    });

    /// The Arrow schema of the `processes` table.
    pub fn schema() -> SchemaRef {
        SCHEMA.clone()
    }
}

/// The `capture` table: one row per recorder run into the capture directory.
pub mod capture {
    use super::*;

    pub const TABLE: &str = "capture";

    pub const CAPTURE_ID: &str = "capture_id";
    pub const HOST: &str = "host";
    pub const KERNEL: &str = "kernel";
    pub const BOOT_ID: &str = "boot_id";
    pub const STARTED: &str = "started";
    pub const ENDED: &str = "ended";
    pub const COMMAND_LINE: &str = "command_line";
    pub const TARGET: &str = "target";
    pub const MIN_DURATION_NS: &str = "min_duration_ns";
    pub const EVENTS: &str = "events";
    pub const LOST_EVENTS: &str = "lost_events";
    pub const RECORDER_VERSION: &str = "recorder_version";
    /// Why recording stopped before its target ended (a full disk, a write error); NULL
    /// when it ran to its end.
    pub const STOPPED_EARLY: &str = "stopped_early";
    /// From when calls are missing, when it stopped early.
    pub const INCOMPLETE_FROM: &str = "incomplete_from";
    /// With `--max-size`: the calls recorded one by one that this run deleted with the
    /// oldest files to stay within the bound (an earlier run's, too, in a continued
    /// capture). NULL without `--max-size`, and in captures written before it existed; 0
    /// with `--upload`, which deletes only what the store holds.
    pub const DELETED_EVENTS: &str = "deleted_events";
    /// Fork, exec and exit events the kernel could not send (the buffer was full): the
    /// `processes` table then lacks rows, exits or exit codes that it would have held.
    /// NULL when recording stopped early, and in captures written before it existed.
    pub const LOST_PROCESS_EVENTS: &str = "lost_process_events";

    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        Arc::new(Schema::new(vec![
            Field::new(CAPTURE_ID, DataType::Utf8, false),
            Field::new(HOST, DataType::Utf8, false),
            Field::new(KERNEL, DataType::Utf8, false),
            Field::new(BOOT_ID, DataType::Utf8, false),
            Field::new(STARTED, ts_type(), false),
            Field::new(ENDED, ts_type(), true),
            Field::new(COMMAND_LINE, DataType::Utf8, false),
            Field::new(TARGET, DataType::Utf8, false),
            Field::new(MIN_DURATION_NS, DataType::Int64, true),
            Field::new(EVENTS, DataType::Int64, true),
            Field::new(LOST_EVENTS, DataType::Int64, true),
            Field::new(RECORDER_VERSION, DataType::Utf8, false),
            Field::new(STOPPED_EARLY, DataType::Utf8, true),
            Field::new(INCOMPLETE_FROM, ts_type(), true),
            Field::new(DELETED_EVENTS, DataType::Int64, true),
            Field::new(LOST_PROCESS_EVENTS, DataType::Int64, true),
        ]))
    });

    /// The Arrow schema of the `capture` table.
    pub fn schema() -> SchemaRef {
        SCHEMA.clone()
    }
}

/// The `syscalls` table: one row per system call.
pub mod syscalls {
    use super::*;

    pub const TABLE: &str = "syscalls";

    pub const TS: &str = "ts";
    /// The entry time in nanoseconds since the Unix epoch (UTC): `ts` to the nanosecond.
    pub const TS_NS: &str = "ts_ns";
    pub const DURATION_NS: &str = "duration_ns";
    pub const PID: &str = "pid";
    pub const TID: &str = "tid";
    pub const COMM: &str = "comm";
    pub const SYSCALL: &str = "syscall";
    pub const NR: &str = "nr";
    pub const RET: &str = "ret";
    pub const ERRNO: &str = "errno";
    pub const ARGS: [&str; 6] = ["arg0", "arg1", "arg2", "arg3", "arg4", "arg5"];
    pub const PATH: &str = "path";
    pub const PATH_TRUNCATED: &str = "path_truncated";
    pub const ADDR: &str = "addr";
    pub const FD: &str = "fd";
    pub const FD_PATH: &str = "fd_path";
    pub const BYTES: &str = "bytes";
    /// `record --sched`: the call's time on a CPU.
    pub const ONCPU_NS: &str = "oncpu_ns";
    /// `record --sched`: the call's time runnable, waiting for a CPU.
    pub const RUNQ_NS: &str = "runq_ns";
    /// `record --sched`: the call's time off the CPU and not runnable (asleep, waiting for
    /// I/O or another thread). The three add up to `duration_ns`.
    pub const BLOCKED_NS: &str = "blocked_ns";
    /// `record --sched`: when the call was last woken, in nanoseconds since the Unix epoch.
    pub const WOKEN_TS_NS: &str = "woken_ts_ns";
    /// `record --sched`: the thread that woke the call last before it returned, and its
    /// process.
    pub const WAKER_TID: &str = "waker_tid";
    pub const WAKER_PID: &str = "waker_pid";
    pub const WAKER_COMM: &str = "waker_comm";
    /// `record --sched`: the waker's syscall in progress when it woke the call, where it
    /// was in one and is itself recorded.
    pub const WAKER_SYSCALL: &str = "waker_syscall";
    /// `record --sched`: what woke the call last: [`WAKER_THREAD`], [`WAKER_SOFTIRQ`],
    /// [`WAKER_IRQ`] or [`WAKER_TIMER`]; NULL when it was never woken.
    pub const WAKER_KIND: &str = "waker_kind";
    /// `record --stacks`: the kernel stack where the call blocked longest, outermost frame
    /// first, frames joined by `;` (the folded format flame graph tools read). NULL when
    /// the call never blocked, was shorter than `--stack-min`, its stack was refused by the
    /// kernel's stack map, or it was recorded without `--stacks` (a `--sched` file has the
    /// column, all NULL).
    pub const KERNEL_STACK: &str = "kernel_stack";
    /// `record --stacks`: the user-space call chain that made the call, outermost frame
    /// first, frames joined by `;`, unwound with the binaries' unwind tables (not frame
    /// pointers). `[unknown]` is a frame no symbol covers; a chain that starts with
    /// `[truncated]` was cut where the copied stack or the unwind tables ended. NULL when
    /// the call was shorter than `--stack-min`, its sample was lost, or it was recorded
    /// without `--stacks`.
    pub const USER_STACK: &str = "user_stack";
    /// A thread woke it: `waker_tid` did.
    pub const WAKER_THREAD: &str = "thread";
    /// A softirq woke it, running on `waker_tid`'s back: for loopback networking that is
    /// the sending thread, but a softirq can also run on whatever thread it interrupted.
    pub const WAKER_SOFTIRQ: &str = "softirq";
    /// A device's interrupt handler woke it; no thread did.
    pub const WAKER_IRQ: &str = "irq";
    /// A timer woke it: a sleep or a timeout ended; no thread did.
    pub const WAKER_TIMER: &str = "timer";
    /// The columns only `record --sched` fills. Files recorded without it leave them out,
    /// and readers of this crate read them as NULL.
    pub const SCHED_COLUMNS: [&str; 11] = [
        ONCPU_NS,
        RUNQ_NS,
        BLOCKED_NS,
        WOKEN_TS_NS,
        WAKER_PID,
        WAKER_TID,
        WAKER_COMM,
        WAKER_SYSCALL,
        WAKER_KIND,
        KERNEL_STACK,
        USER_STACK,
    ];

    /// Paths longer than this many bytes are cut, and `path_truncated` is true.
    pub const PATH_MAX_BYTES: usize = 255;

    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields = vec![
            Field::new(TS, ts_type(), false),
            Field::new(TS_NS, DataType::Int64, false),
            Field::new(DURATION_NS, DataType::Int64, true),
            Field::new(PID, DataType::Int32, false),
            Field::new(TID, DataType::Int32, false),
            Field::new(COMM, DataType::Utf8, false),
            Field::new(SYSCALL, DataType::Utf8, false),
            Field::new(NR, DataType::Int32, false),
            Field::new(RET, DataType::Int64, true),
            Field::new(ERRNO, DataType::Utf8, true),
        ];
        fields.extend(ARGS.iter().map(|a| Field::new(*a, DataType::UInt64, false)));
        fields.extend([
            Field::new(PATH, DataType::Utf8, true),
            Field::new(PATH_TRUNCATED, DataType::Boolean, true),
            Field::new(ADDR, DataType::Utf8, true),
            Field::new(FD, DataType::Int32, true),
            Field::new(FD_PATH, DataType::Utf8, true),
            Field::new(BYTES, DataType::Int64, true),
            Field::new(ONCPU_NS, DataType::Int64, true),
            Field::new(RUNQ_NS, DataType::Int64, true),
            Field::new(BLOCKED_NS, DataType::Int64, true),
            Field::new(WOKEN_TS_NS, DataType::Int64, true),
            Field::new(WAKER_PID, DataType::Int32, true),
            Field::new(WAKER_TID, DataType::Int32, true),
            Field::new(WAKER_COMM, DataType::Utf8, true),
            Field::new(WAKER_SYSCALL, DataType::Utf8, true),
            Field::new(WAKER_KIND, DataType::Utf8, true),
            Field::new(KERNEL_STACK, DataType::Utf8, true),
            Field::new(USER_STACK, DataType::Utf8, true),
        ]);
        Arc::new(Schema::new(fields))
    });
    static WITHOUT_SCHED: LazyLock<SchemaRef> = LazyLock::new(|| {
        let fields: Vec<Field> = SCHEMA
            .fields()
            .iter()
            .filter(|f| !SCHED_COLUMNS.contains(&f.name().as_str()))
            .map(|f| f.as_ref().clone())
            .collect();
        Arc::new(Schema::new(fields))
    });

    /// The Arrow schema of the `syscalls` table.
    pub fn schema() -> SchemaRef {
        SCHEMA.clone()
    }

    /// The schema of a file recorded with or without `--sched`: without it, the file has
    /// no [`SCHED_COLUMNS`] at all, so that a plain capture pays nothing for them.
    pub fn file_schema(sched: bool) -> SchemaRef {
        match sched {
            true => SCHEMA.clone(),
            false => WITHOUT_SCHED.clone(),
        }
    }
}

/// Schema version 1, which captures recorded before version 2 hold: every timestamp in
/// nanoseconds, and no `syscalls.ts_ns` (`ts` itself holds the nanoseconds).
pub mod v1 {
    use super::*;

    /// The version-1 schema of `table`, if it is one of [`TABLES`].
    pub fn schema_of(table: &str) -> Option<SchemaRef> {
        let current = super::schema_of(table)?;
        let fields: Vec<Field> = current
            .fields()
            .iter()
            .filter(|f| !(table == syscalls::TABLE && f.name() == syscalls::TS_NS))
            .map(|f| match f.data_type() {
                DataType::Timestamp(_, tz) => f
                    .as_ref()
                    .clone()
                    .with_data_type(DataType::Timestamp(TimeUnit::Nanosecond, tz.clone())),
                _ => f.as_ref().clone(),
            })
            .collect();
        Some(Arc::new(Schema::new(fields)))
    }
}

/// The schema of `table` as files of `version` hold it.
pub fn schema_of_version(table: &str, version: u32) -> Option<SchemaRef> {
    match version {
        1 => v1::schema_of(table),
        SCHEMA_VERSION => schema_of(table),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_cut_to_the_15_bytes_the_kernel_keeps() {
        assert_eq!(comm_of("pyenv-version-file"), "pyenv-version-f");
        assert_eq!(comm_of("nginx"), "nginx");
        assert_eq!(comm_of("ééééééééé"), "ééééééé\u{FFFD}");
        assert_eq!(comm_bytes("ééééééééé").len(), 15);
    }

    #[test]
    fn a_data_checksum_reads_back_and_odd_values_are_not_one() {
        // zlib's CRC-32 of "123456789", the standard check value.
        let c = DataChecksum::of(b"123456789");
        assert_eq!(c.to_value(), "9:cbf43926");
        assert_eq!(DataChecksum::parse("9:cbf43926"), Some(c));
        for odd in [
            "",
            "9",
            "9:cbf4392",
            "x:cbf43926",
            "9:cbf4392g",
            "-1:cbf43926",
        ] {
            assert_eq!(DataChecksum::parse(odd), None, "{odd:?}");
        }
    }

    /// The documented contract, spelled out independently of the constants above.
    #[test]
    fn syscalls_schema_matches_the_documented_contract() {
        let schema = syscalls::schema();
        let got: Vec<(String, String, bool)> = schema
            .fields()
            .iter()
            .map(|f| (f.name().clone(), f.data_type().to_string(), f.is_nullable()))
            .collect();
        let want = [
            ("ts", "Timestamp(µs, \"UTC\")", false),
            ("ts_ns", "Int64", false),
            ("duration_ns", "Int64", true),
            ("pid", "Int32", false),
            ("tid", "Int32", false),
            ("comm", "Utf8", false),
            ("syscall", "Utf8", false),
            ("nr", "Int32", false),
            ("ret", "Int64", true),
            ("errno", "Utf8", true),
            ("arg0", "UInt64", false),
            ("arg1", "UInt64", false),
            ("arg2", "UInt64", false),
            ("arg3", "UInt64", false),
            ("arg4", "UInt64", false),
            ("arg5", "UInt64", false),
            ("path", "Utf8", true),
            ("path_truncated", "Boolean", true),
            ("addr", "Utf8", true),
            ("fd", "Int32", true),
            ("fd_path", "Utf8", true),
            ("bytes", "Int64", true),
            ("oncpu_ns", "Int64", true),
            ("runq_ns", "Int64", true),
            ("blocked_ns", "Int64", true),
            ("woken_ts_ns", "Int64", true),
            ("waker_pid", "Int32", true),
            ("waker_tid", "Int32", true),
            ("waker_comm", "Utf8", true),
            ("waker_syscall", "Utf8", true),
            ("waker_kind", "Utf8", true),
            ("kernel_stack", "Utf8", true),
            ("user_stack", "Utf8", true),
        ];
        let want: Vec<(String, String, bool)> = want
            .iter()
            .map(|(n, t, null)| (n.to_string(), t.to_string(), *null))
            .collect();
        assert_eq!(got, want);
        // A file recorded without --sched has exactly the columns before them.
        let plain = syscalls::file_schema(false);
        assert_eq!(plain.fields().len(), 22);
        assert_eq!(plain.fields()[..], schema.fields()[..22]);
        assert_eq!(syscalls::file_schema(true), schema);
    }

    #[test]
    fn version_1_has_nanosecond_timestamps_and_no_ts_ns() {
        let v1 = schema_of_version(syscalls::TABLE, 1).unwrap();
        assert!(v1.field_with_name(syscalls::TS_NS).is_err());
        assert_eq!(
            v1.field_with_name(syscalls::TS).unwrap().data_type(),
            &DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
        );
        let v1 = schema_of_version(capture::TABLE, 1).unwrap();
        assert_eq!(
            v1.field_with_name(capture::ENDED).unwrap().data_type(),
            &DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
        );
        assert_eq!(v1.fields().len(), capture::schema().fields().len());
        assert!(schema_of_version(syscalls::TABLE, 3).is_none());
    }
}
