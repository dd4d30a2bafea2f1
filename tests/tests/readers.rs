//! DuckDB, pandas, polars and Spark, readers no one here wrote, open every table of a real
//! capture unchanged through the plain glob, and count the same rows as `analyze`. A table
//! with no rows (here `aggregates`: nothing was lost or filtered) reads as 0 rows.
use std::{path::Path, process::Command};

use serde_json::{Value, json};
use tracepost_e2e::{bpf_available, read_with, record, record_with, scalar};

const TABLES: [&str; 4] = ["syscalls", "aggregates", "processes", "capture"];

#[test]
fn four_readers_read_every_table_and_agree_with_analyze() {
    if !bpf_available("four_readers_read_every_table_and_agree_with_analyze") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    // With --sched, so that its columns are read too.
    let out = record_with(
        &capture,
        &["-q", "--sched"],
        &[
            "sh",
            "-c",
            "ls -la / /nonexistent >/dev/null 2>&1; cat /etc/hostname >/dev/null",
        ],
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut want = serde_json::Map::new();
    for t in TABLES {
        want.insert(
            t.into(),
            json!(scalar(&capture, &format!("SELECT count(*) FROM {t}"))),
        );
    }
    let want = Value::Object(want);
    assert!(want["syscalls"].as_i64().unwrap() > 100, "{want}");
    assert_eq!(want["aggregates"], 0, "nothing lost: the empty table");
    assert_eq!(want["processes"], 3, "sh, ls and cat");
    assert_eq!(want["capture"], 1);

    let duck = read_with("duckdb", &capture);
    assert_eq!(duck["rows"], want, "duckdb");
    let types = &duck["types"];
    assert_eq!(types["ts"], "TIMESTAMP WITH TIME ZONE");
    assert_eq!(types["ts_ns"], "BIGINT");
    assert_eq!(types["duration_ns"], "BIGINT");
    assert_eq!(types["pid"], "INTEGER");
    assert_eq!(types["syscall"], "VARCHAR");
    assert_eq!(types["arg0"], "UBIGINT");
    assert_eq!(types["blocked_ns"], "BIGINT");
    assert_eq!(types["waker_tid"], "INTEGER");
    assert_eq!(types["waker_kind"], "VARCHAR");
    // The split, summed by readers no one here wrote, is what analyze sums.
    let blocked = scalar(&capture, "SELECT sum(blocked_ns) FROM syscalls");
    assert!(blocked > 0, "sh waits for ls and cat");
    assert_eq!(duck["blocked_sum"], blocked, "duckdb");
    assert_eq!(duck["unsorted"], 0, "rows out of order within a file");
    assert_eq!(duck["ts_mismatch"], 0, "ts is ts_ns to the microsecond");
    assert_eq!(duck["version"], json!(["2"]));

    let pandas = read_with("pandas", &capture);
    assert_eq!(pandas["rows"], want, "pandas");
    assert_eq!(pandas["types"]["ts"], "datetime64[us, UTC]");
    assert_eq!(pandas["types"]["ts_ns"], "int64");

    let polars = read_with("polars", &capture);
    assert_eq!(polars["rows"], want, "polars");
    assert_eq!(
        polars["types"]["ts"],
        "Datetime(time_unit='us', time_zone='UTC')"
    );

    let spark = read_with("spark", &capture);
    assert_eq!(spark["rows"], want, "spark");
    assert_eq!(spark["types"]["ts"], "timestamp");
    assert_eq!(spark["types"]["ts_ns"], "bigint");
    assert_eq!(spark["types"]["runq_ns"], "bigint");
    assert_eq!(spark["types"]["waker_comm"], "string");
    assert_eq!(spark["blocked_sum"], blocked, "spark");
}

/// Captures written in schema version 1 (nanosecond timestamps, no `ts_ns`) read as they
/// did, alone, beside a version-2 capture, and mixed with version-2 files in one
/// directory (a capture continued by a newer recorder).
#[test]
fn version_1_captures_still_read_exactly() {
    if !bpf_available("version_1_captures_still_read_exactly") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let v2 = tmp.path().join("v2");
    assert!(record(&v2, &["ls", "/", "/nonexistent"]).status.code() == Some(2));
    let v1 = tmp.path().join("v1");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("readers/to_v1.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(&v2)
        .arg(&v1)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let p = |c: &Path| c.to_str().unwrap().to_string();
    let summary = |c: &Path| {
        let rows = tracepost_e2e::analyze_json(&["summary", &p(c)]);
        serde_json::to_string(&rows).unwrap()
    };
    assert_eq!(summary(&v1), summary(&v2), "summary of v1 and v2");
    // The nanoseconds survive: ts_ns of the v1 copy is what v2 recorded.
    let exact = "SELECT sum(ts_ns % 1000000) AS sub_ms, count(DISTINCT ts_ns) AS n,
                        max(arrow_cast(ts, 'Int64')) AS max_us
                 FROM syscalls";
    assert_eq!(
        tracepost_e2e::query(&[&v1], exact),
        tracepost_e2e::query(&[&v2], exact)
    );
    let both = tracepost_e2e::query(
        &[&v1, &v2],
        "SELECT capture, count(*) AS n, min(started) AS started FROM syscalls
         JOIN capture USING (capture) GROUP BY capture ORDER BY capture",
    );
    assert_eq!(both.len(), 2);
    assert_eq!(both[0]["n"], both[1]["n"]);
    assert_eq!(both[0]["started"], both[1]["started"]);

    // Continued by a newer recorder: v1 files and v2 files in one directory.
    assert!(record(&v1, &["true"]).status.success());
    let mixed = scalar(&v1, "SELECT count(*) FROM syscalls");
    let only_true = {
        let t = tmp.path().join("t");
        assert!(record(&t, &["true"]).status.success());
        scalar(&t, "SELECT count(*) FROM syscalls")
    };
    assert_eq!(
        mixed,
        scalar(&v2, "SELECT count(*) FROM syscalls") + only_true
    );
    assert_eq!(scalar(&v1, "SELECT count(*) FROM capture"), 2);
}
