//! The capture directory format.
//!
//! Column names and types here are a contract with users' SQL, DuckDB and pandas: add
//! columns freely, but renaming or retyping one is a new `SCHEMA_VERSION`.
//!
//! A capture directory holds one sub-directory per table (`syscalls/`), each holding
//! finished `*.parquet` files. Files still being written never end in `.parquet`.

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
        ];
        let want: Vec<(String, String, bool)> = want
            .iter()
            .map(|(n, t, null)| (n.to_string(), t.to_string(), *null))
            .collect();
        assert_eq!(got, want);
    }
}
