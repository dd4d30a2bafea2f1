//! Rows are written in entry order, and a call that entered long before calls that
//! returned first is neither lost nor written out of order: within the recorder's 30 ms
//! lag it takes its place in the file, and past it it goes to the next file.
use std::path::Path;

use tracepost_e2e::{bpf_available, build_program, parquet_files, record, scalar};

/// Records the program and returns the getppid count it printed.
fn record_sleeper(capture: &Path, exe: &Path, ms: &str, count: &str) -> i64 {
    let out = record(capture, &[exe.to_str().unwrap(), ms, count]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .trim()
        .strip_prefix("getppid=")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count printed: {stdout}"))
}

#[test]
fn calls_shorter_than_the_lag_take_their_place_in_one_sorted_file() {
    if !bpf_available("calls_shorter_than_the_lag_take_their_place_in_one_sorted_file") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program(tmp.path(), "sleeper_and_spinner");
    let capture = tmp.path().join("capture");
    // 15 ms: longer than the 10 ms poll (so rows entered after each sleep began reach the
    // writer while it is in flight), shorter than the 30 ms lag.
    let spins = record_sleeper(&capture, &exe, "15", "10");
    assert!(spins > 1000, "the spinner ran: {spins}");
    all_there(&capture, spins, 15, 10);
    // Had a sleep been released after rows that entered later, it would have waited for
    // a second file.
    assert_eq!(parquet_files(&capture.join("syscalls")).len(), 1);
    assert_eq!(unsorted(&capture), 0);
}

#[test]
fn a_call_longer_than_the_lag_goes_to_the_next_file_and_nothing_is_lost() {
    if !bpf_available("a_call_longer_than_the_lag_goes_to_the_next_file_and_nothing_is_lost") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program(tmp.path(), "sleeper_and_spinner");
    let capture = tmp.path().join("capture");
    let spins = record_sleeper(&capture, &exe, "300", "1");
    all_there(&capture, spins, 300, 1);
    assert_eq!(parquet_files(&capture.join("syscalls")).len(), 2);
    assert_eq!(unsorted(&capture), 0);
}

/// Every getppid the spinner counted, and `count` sleeps of at least `ms`, nothing lost.
fn all_there(capture: &Path, spins: i64, ms: i64, count: i64) {
    assert_eq!(scalar(capture, "SELECT lost_events FROM capture"), 0);
    let getppid = "SELECT count(*) FROM syscalls WHERE syscall = 'getppid'";
    assert_eq!(scalar(capture, getppid), spins);
    let sleeps = format!(
        "SELECT count(*) FROM syscalls WHERE syscall = 'clock_nanosleep' \
         AND duration_ns >= {}",
        ms * 1_000_000
    );
    assert_eq!(scalar(capture, &sleeps), count);
}

/// Rows whose entry time is before the row before them in the same file, as DuckDB reads
/// the files (no one here wrote it).
fn unsorted(capture: &Path) -> i64 {
    let glob = capture.join("syscalls/*.parquet");
    let sql = format!(
        "SELECT count(*) FROM (SELECT ts_ns < lag(ts_ns) OVER (PARTITION BY filename \
         ORDER BY file_row_number) AS back FROM read_parquet('{}', filename = true, \
         file_row_number = true)) WHERE back",
        glob.display()
    );
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import duckdb, sys; print(duckdb.sql(sys.argv[1]).fetchall()[0][0])",
        ])
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "duckdb (dev/setup --test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
}
