//! The same programs under strace and under `record`: calls and errors per syscall must
//! match exactly. strace is the oracle no one here wrote.
use std::process::Command;

use tracepost_e2e::{bpf_available, calls_and_errors, parse_strace_summary, record, strace_counts};

fn compare_with_strace(test: &str, command: &[&str]) {
    if !bpf_available(test) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // Warm caches (page cache, Python's bytecode) so both runs see the same world.
    Command::new(command[0])
        .args(&command[1..])
        .output()
        .unwrap();
    let want = strace_counts(tmp.path(), command);
    let capture = tmp.path().join("capture");
    let out = record(&capture, command);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got = calls_and_errors(&capture, "");
    // strace -c leaves out calls that never return; we record them with a NULL ret.
    let exits = got.remove("exit_group").expect("exit_group recorded");
    assert_eq!(exits, (1, 0));
    got.remove("exit");
    assert_eq!(
        got, want,
        "record (left) vs strace -f -c (right) for {command:?}"
    );
}

#[test]
fn ls_matches_strace_exactly() {
    compare_with_strace("ls_matches_strace_exactly", &["ls", "-la", "/"]);
}

#[test]
fn python_matches_strace_exactly() {
    compare_with_strace(
        "python_matches_strace_exactly",
        &[
            "/usr/bin/python3",
            "-c",
            "import json, os; print(json.dumps(sorted(os.listdir('/'))))",
        ],
    );
}

#[test]
fn parses_strace_summaries() {
    let text = "% time     seconds  usecs/call     calls    errors syscall\n\
        ------ ----------- ----------- --------- --------- ----------------\n \
        16.61    0.000050           1        44        19 openat\n \
        12.96    0.000039           1        31           close\n\
        ------ ----------- ----------- --------- --------- ----------------\n\
        100.00    0.000301           1       295       103 total\n";
    let parsed = parse_strace_summary(text);
    assert_eq!(parsed.len(), 2);
    assert_eq!(parsed["openat"], (44, 19));
    assert_eq!(parsed["close"], (31, 0));
}
