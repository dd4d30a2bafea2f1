//! Helpers for the end-to-end tests: finding the built binaries, deciding whether BPF tests
//! can run, and running `record` and `analyze`.
//!
//! The binaries come from `TRACEPOST_BIN_DIR` (set by `dev/test`), else `target/release`.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use serde_json::Value;

pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("TRACEPOST_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release"));
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build first (dev/test does), or set TRACEPOST_BIN_DIR",
        path.display()
    );
    path
}

/// Whether this process may load BPF. Under `CI=true` a test must not skip, so a missing
/// privilege is a failure there.
pub fn bpf_available(test: &str) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let ok = cap_eff & (1 << 21) != 0 || (cap_eff & (1 << 39) != 0 && cap_eff & (1 << 38) != 0);
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!(
                "{test}: BPF cannot be loaded here (need root or CAP_BPF+CAP_PERFMON), and CI=true"
            );
        }
        eprintln!("SKIPPED {test}: needs root or CAP_BPF+CAP_PERFMON");
    }
    ok
}

/// Runs `record -q -o DIR -- command...` and returns its output.
pub fn record(dir: &Path, command: &[&str]) -> Output {
    let out = Command::new(bin("record"))
        .arg("-q")
        .arg("-o")
        .arg(dir)
        .arg("--")
        .args(command)
        .stdin(Stdio::null())
        .output()
        .expect("run record");
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "record panicked: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `analyze query` with JSON output and returns the rows.
pub fn query(captures: &[&Path], sql: &str) -> Vec<BTreeMap<String, Value>> {
    let out = analyze_query(captures, sql, "json");
    assert!(
        out.status.success(),
        "analyze failed on {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("analyze prints a JSON array")
}

pub fn analyze_query(captures: &[&Path], sql: &str, format: &str) -> Output {
    Command::new(bin("analyze"))
        .arg("query")
        .args(captures)
        .arg(sql)
        .arg("--format")
        .arg(format)
        .output()
        .expect("run analyze")
}

/// One integer from a single-row, single-column query.
pub fn scalar(capture: &Path, sql: &str) -> i64 {
    let rows = query(&[capture], sql);
    assert_eq!(rows.len(), 1, "{sql} returned {rows:?}");
    let value = rows[0].values().next().expect("one column");
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{sql} returned {value}"))
}

/// `syscall -> (calls, errors)` for a whole capture.
pub fn calls_and_errors(capture: &Path, filter: &str) -> BTreeMap<String, (i64, i64)> {
    let sql = format!(
        "SELECT syscall, count(*) AS calls, count(errno) AS errors FROM syscalls {filter} GROUP BY syscall"
    );
    query(&[capture], &sql)
        .into_iter()
        .map(|row| {
            (
                row["syscall"].as_str().unwrap().to_string(),
                (
                    row["calls"].as_i64().unwrap(),
                    row["errors"].as_i64().unwrap(),
                ),
            )
        })
        .collect()
}
