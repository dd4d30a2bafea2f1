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
pub const SCHEMA_VERSION: u32 = 1;

/// Parquet key/value metadata key holding `SCHEMA_VERSION`.
pub const SCHEMA_VERSION_KEY: &str = "tracepost.schema_version";
/// Parquet key/value metadata key naming the table a file belongs to.
pub const TABLE_KEY: &str = "tracepost.table";

/// File name extension of finished table files.
pub const FILE_EXTENSION: &str = "parquet";

/// Every table of a capture, in the order a reader registers them.
pub const TABLES: [&str; 4] = [
    syscalls::TABLE,
    aggregates::TABLE,
    processes::TABLE,
    capture::TABLE,
];

/// Wall-clock timestamps are UTC so that captures from several hosts line up.
pub fn ts_type() -> DataType {
    DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
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

    /// Paths longer than this many bytes are cut, and `path_truncated` is true.
    pub const PATH_MAX_BYTES: usize = 255;

    /// Timestamps are UTC wall-clock so that captures from several hosts line up.
    pub fn ts_type() -> DataType {
        DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
    }

    static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
        let mut fields = vec![
            Field::new(TS, ts_type(), false),
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
        ]);
        Arc::new(Schema::new(fields))
    });

    /// The Arrow schema of the `syscalls` table.
    pub fn schema() -> SchemaRef {
        SCHEMA.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            ("ts", "Timestamp(ns, \"UTC\")", false),
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
        ];
        let want: Vec<(String, String, bool)> = want
            .iter()
            .map(|(n, t, null)| (n.to_string(), t.to_string(), *null))
            .collect();
        assert_eq!(got, want);
    }
}
