//! Nothing lost silently: with a ring buffer far too small for the load, every call is
//! either a row or counted as lost, and the two add up to what a lossless run records.
use std::{path::Path, process::Command};

use tracepost_e2e::{bpf_available, record_with, scalar, summary_lost};

const CALLS: &str = "1000000";

/// Runs `record` on the getppid loop and returns (rows, lost) from the capture and from the
/// summary line.
fn run(dir: &Path, exe: &Path, buffer: &str) -> (i64, i64) {
    let capture = dir.join(format!("capture-{buffer}"));
    let out = record_with(
        &capture,
        &["--buffer-size", buffer],
        &[exe.to_str().unwrap(), CALLS],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let lost = summary_lost(&stderr);
    let rows = scalar(&capture, "SELECT count(*) FROM syscalls");
    (rows, lost)
}

#[test]
fn recorded_plus_lost_accounts_for_every_call() {
    if !bpf_available("recorded_plus_lost_accounts_for_every_call") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = tmp.path().join("getppid_loop");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../bench/getppid_loop.c");
    assert!(
        Command::new("cc")
            .args(["-O2", "-o"])
            .arg(&exe)
            .arg(&src)
            .status()
            .unwrap()
            .success()
    );

    let (all_rows, none_lost) = run(tmp.path(), &exe, "64MiB");
    assert_eq!(none_lost, 0, "a 64 MiB ring keeps up with one getppid loop");
    assert!(all_rows > 1_000_000, "{all_rows}");

    let (rows, lost) = run(tmp.path(), &exe, "8KiB");
    assert!(
        lost > 0,
        "the smallest buffer (32 KiB a CPU) must overflow under a tight loop"
    );
    assert_eq!(rows + lost, all_rows, "recorded {rows} + lost {lost}");
}
