//! DuckDB, an independent Parquet reader, opens our files unchanged: the types are the
//! contract's, the counts agree with `analyze`, and every file is sorted by ts.
use std::process::Command;

use tracepost_e2e::{bpf_available, record, scalar};

const CHECK: &str = r#"
import duckdb, json, sys
glob = sys.argv[1] + "/syscalls/*.parquet"
con = duckdb.connect()
types = {r[0]: r[1] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{glob}')").fetchall()}
rows = con.execute(f"SELECT count(*) FROM read_parquet('{glob}')").fetchone()[0]
errors = con.execute(f"SELECT count(*) FROM read_parquet('{glob}') WHERE errno IS NOT NULL").fetchone()[0]
unsorted = con.execute(f"""
    SELECT count(*) FROM (
        SELECT ts < lag(ts) OVER (PARTITION BY filename ORDER BY file_row_number) AS back
        FROM read_parquet('{glob}', filename = true, file_row_number = true))
    WHERE back""").fetchone()[0]
version = con.execute(f"""
    SELECT DISTINCT decode(value) FROM parquet_kv_metadata('{glob}')
    WHERE decode(key) = 'tracepost.schema_version'""").fetchall()
print(json.dumps({"types": types, "rows": rows, "errors": errors, "unsorted": unsorted,
                  "version": [v[0] for v in version]}))
"#;

#[test]
fn duckdb_reads_our_files_and_agrees() {
    if !bpf_available("duckdb_reads_our_files_and_agrees") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    let out = record(
        &capture,
        &[
            "sh",
            "-c",
            "ls -la / /nonexistent >/dev/null 2>&1; cat /etc/hostname >/dev/null",
        ],
    );
    assert!(
        out.status.code() == Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let result = Command::new("python3")
        .arg("-c")
        .arg(CHECK)
        .arg(&capture)
        .output()
        .unwrap();
    assert!(
        result.status.success(),
        "duckdb check failed (dev/setup --test installs duckdb): {}",
        String::from_utf8_lossy(&result.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&result.stdout).unwrap();
    let types = &v["types"];
    // Nanosecond precision and UTC-adjusted survive the trip.
    assert_eq!(types["ts"], "TIMESTAMPTZ_NS");
    assert_eq!(types["duration_ns"], "BIGINT");
    assert_eq!(types["pid"], "INTEGER");
    assert_eq!(types["syscall"], "VARCHAR");
    assert_eq!(types["errno"], "VARCHAR");
    assert_eq!(types["arg0"], "UBIGINT");
    assert_eq!(v["unsorted"], 0, "rows out of ts order within a file");
    assert_eq!(v["version"], serde_json::json!(["1"]));

    let rows = scalar(&capture, "SELECT count(*) FROM syscalls");
    let errors = scalar(
        &capture,
        "SELECT count(*) FROM syscalls WHERE errno IS NOT NULL",
    );
    assert!(
        rows > 100,
        "ls and cat make well over 100 calls, got {rows}"
    );
    assert!(errors > 0);
    assert_eq!(v["rows"], rows);
    assert_eq!(v["errors"], errors);
}
