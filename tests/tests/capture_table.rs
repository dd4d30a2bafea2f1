//! The `capture` table: one row per recorder run, with facts checked against /proc, and a
//! capture directory that a restarted recorder continues instead of refusing.
use std::{os::unix::fs::PermissionsExt, path::Path};

use tracepost_e2e::{bpf_available, query, record, record_with, scalar};

fn proc(path: &str) -> String {
    std::fs::read_to_string(path).unwrap().trim().to_string()
}

#[test]
fn the_capture_row_says_where_when_what_and_how_complete() {
    if !bpf_available("the_capture_row_says_where_when_what_and_how_complete") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    let out = record_with(
        &capture,
        &["-q", "--min-duration", "1ms"],
        &["sleep", "0.2"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = query(
        &[&capture],
        "SELECT capture_id, host, kernel, boot_id, command_line, target, min_duration_ns, \
         events, lost_events, recorder_version, \
         (arrow_cast(ended, 'Int64') - arrow_cast(started, 'Int64')) * 1000 AS span_ns FROM capture",
    );
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    let text = |k: &str| row[k].as_str().unwrap().to_string();
    assert_eq!(text("host"), proc("/proc/sys/kernel/hostname"));
    assert_eq!(text("kernel"), proc("/proc/sys/kernel/osrelease"));
    assert_eq!(text("boot_id"), proc("/proc/sys/kernel/random/boot_id"));
    assert_eq!(text("capture_id").len(), 36, "a UUID");
    assert_eq!(text("target"), "command sleep 0.2");
    assert!(text("command_line").ends_with("-- sleep 0.2"), "{row:?}");
    assert_eq!(text("recorder_version"), env!("CARGO_PKG_VERSION"));
    assert_eq!(row["min_duration_ns"].as_i64(), Some(1_000_000));
    assert_eq!(row["lost_events"].as_i64(), Some(0));
    let events = scalar(&capture, "SELECT count(*) FROM syscalls");
    assert_eq!(row["events"].as_i64(), Some(events));
    // The sleep is the one call of 1 ms or more, beside exit_group which has no duration.
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE syscall = 'clock_nanosleep'"
        ),
        1
    );
    let span_ms = row["span_ns"].as_i64().unwrap() / 1_000_000;
    assert!((200..5000).contains(&span_ms), "{span_ms} ms");
    assert_private(&capture);
}

/// Captures hold sensitive data: every directory 0700, every file 0600, all three tables
/// present.
fn assert_private(capture: &Path) {
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(capture), 0o700);
    let mut files = 0;
    for table in ["syscalls", "aggregates", "capture"] {
        let dir = capture.join(table);
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            assert_eq!(mode(&path), 0o600, "{}", path.display());
            files += 1;
        }
    }
    assert!(files >= 3, "one file per table at least");
}

#[test]
fn a_restarted_recorder_continues_the_capture() {
    if !bpf_available("a_restarted_recorder_continues_the_capture") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    for _ in 0..2 {
        let out = record(&capture, &["true"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(DISTINCT capture_id) FROM capture WHERE ended IS NOT NULL"
        ),
        2
    );
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE syscall = 'execve'"
        ),
        2
    );
    let files: Vec<String> = std::fs::read_dir(capture.join("syscalls"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut files = files;
    files.sort();
    assert_eq!(files, ["part-000001.parquet", "part-000002.parquet"]);
}

/// The names in `dir`, sorted: the captures record named there.
fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// The default name has a second's resolution: runs started in one second get names of
/// their own (`-2`, `-3`), and none continues another's capture.
#[test]
fn runs_in_one_second_without_a_name_make_captures_of_their_own() {
    if !bpf_available("runs_in_one_second_without_a_name_make_captures_of_their_own") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for _ in 0..3 {
        let out = std::process::Command::new(tracepost_e2e::bin("record"))
            .args(["-q", "--", "true"])
            .current_dir(tmp.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let names = names_in(tmp.path());
    assert_eq!(names.len(), 3, "{names:?}");
    for name in &names {
        assert!(name.starts_with("capture-"), "{names:?}");
        assert_eq!(
            scalar(&tmp.path().join(name), "SELECT count(*) FROM capture"),
            1,
            "{name} holds one run"
        );
    }
}

/// A host name holding a `/` (anyone who may make a UTS namespace can set one) nested the
/// default capture's directory, or sent it up the tree with `..` (helper-76): each `/` is
/// a `_` in the name.
#[test]
fn a_host_name_with_a_slash_stays_one_directory() {
    if !bpf_available("a_host_name_with_a_slash_stays_one_directory") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let script = format!(
        "printf 'web/../x' > /proc/sys/kernel/hostname && exec {} -q -- true",
        tracepost_e2e::bin("record").display()
    );
    let out = std::process::Command::new("unshare")
        .args(["-u", "sh", "-c", &script])
        .current_dir(tmp.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let names = names_in(tmp.path());
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(names[0].starts_with("capture-web_.._x-"), "{names:?}");
    assert_eq!(
        scalar(&tmp.path().join(&names[0]), "SELECT count(*) FROM capture"),
        1
    );
}
