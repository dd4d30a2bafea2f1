//! Rows are written in entry order, and a call that entered long before calls that
//! returned first is neither lost nor written out of order: within the recorder's 30 ms
//! lag it takes its place in the file, and past it it goes to the next file.
use std::path::{Path, PathBuf};

use tempfile::TempDir;
use tracepost_e2e::{bpf_available, build_program, parquet_files, read_with, record, scalar};

/// Records `sleeper_and_spinner MS COUNT` and checks that every getppid the spinner
/// counted is there, with `count` sleeps of at least `ms`, nothing lost, and each file
/// sorted as DuckDB reads it. Returns the capture.
fn record_sleeper(ms: i64, count: i64) -> (TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program(tmp.path(), "sleeper_and_spinner");
    let capture = tmp.path().join("capture");
    let (ms_arg, count_arg) = (ms.to_string(), count.to_string());
    let out = record(&capture, &[exe.to_str().unwrap(), &ms_arg, &count_arg]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spins: i64 = stdout
        .trim()
        .strip_prefix("getppid=")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count printed: {stdout}"));
    assert!(spins > 1000, "the spinner ran: {spins}");
    all_there(&capture, spins, ms, count);
    assert_eq!(
        read_with("duckdb", &capture)["unsorted"],
        0,
        "rows out of order"
    );
    (tmp, capture)
}

#[test]
fn calls_shorter_than_the_lag_take_their_place_in_one_sorted_file() {
    if !bpf_available("calls_shorter_than_the_lag_take_their_place_in_one_sorted_file") {
        return;
    }
    // 15 ms: longer than the 10 ms poll (so rows entered after each sleep began reach the
    // writer while it is in flight), shorter than the 30 ms lag.
    let (_tmp, capture) = record_sleeper(15, 10);
    // Had a sleep been released after rows that entered later, it would have waited for
    // a second file.
    assert_eq!(parquet_files(&capture.join("syscalls")).len(), 1);
}

#[test]
fn a_call_longer_than_the_lag_goes_to_the_next_file_and_nothing_is_lost() {
    if !bpf_available("a_call_longer_than_the_lag_goes_to_the_next_file_and_nothing_is_lost") {
        return;
    }
    let (_tmp, capture) = record_sleeper(300, 1);
    assert_eq!(parquet_files(&capture.join("syscalls")).len(), 2);
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
