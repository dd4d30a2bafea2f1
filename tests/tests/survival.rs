//! A capture survives a killed recorder and a full disk: every `*.parquet` file left behind
//! is complete and readable, and a failure is one clear line with a non-zero exit.
use std::{
    path::Path,
    process::{Command, Stdio},
    thread,
    time::Duration,
};

use tracepost_e2e::{
    analyze_query, bin, bpf_available, parquet_files, query, record, record_command, record_with,
    scalar,
};

/// A tmpfs of `size` mounted at `dir` (made), unmounted when dropped: a disk that fills.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir(dir).unwrap();
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .unwrap();
        assert!(mounted.success(), "mount a {size} tmpfs");
        Self(dir.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Makes a directory mutable again when dropped, after a test made it immutable
/// (`chattr +i`) so that no file in it can be made or finished.
struct Mutable(std::path::PathBuf);

impl Drop for Mutable {
    fn drop(&mut self) {
        let _ = Command::new("chattr").arg("-i").arg(&self.0).status();
    }
}

/// `record FLAGS -o CAPTURE -- sh -c "BEFORE; chattr +i CAPTURE/syscalls; AFTER"`: the
/// table's directory made immutable mid-run, so that no later file can be made or renamed,
/// and made mutable again once record has ended. Returns the exit code and stderr.
fn frozen_midway(
    capture: &Path,
    flags: &[&str],
    before: &str,
    after: &str,
) -> (Option<i32>, String) {
    let syscalls_dir = capture.join("syscalls");
    let _guard = Mutable(syscalls_dir.clone());
    let script = format!("{before}; chattr +i {}; {after}", syscalls_dir.display());
    let out = record_with(capture, flags, &["sh", "-c", &script]);
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The number that follows the first `phrase` in `text` (record's counts on stderr).
fn number_after(text: &str, phrase: &str) -> i64 {
    text.split(phrase)
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no number after {phrase:?}: {text}"))
}

/// `analyze summary DIR`, which must succeed: its stderr, where the warnings are.
fn summary_warnings(capture: &Path) -> String {
    let summary = Command::new(bin("analyze"))
        .arg("summary")
        .arg(capture)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&summary.stderr).into_owned();
    assert!(summary.status.success(), "{stderr}");
    stderr
}

/// Records a shell looping over `cat` with `flags`, kills the recorder with SIGKILL 3.5 s
/// in, then the shell, which outlives it.
fn kill_9_after_a_loop(capture: &Path, flags: &[&str]) {
    let pidfile = capture.with_extension("shell.pid");
    let script = format!(
        "echo $$ > {}; while :; do cat /etc/hostname >/dev/null; done",
        pidfile.display()
    );
    let mut record = record_command(capture, flags, &["sh", "-c", &script])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(3500));
    record.kill().unwrap(); // SIGKILL
    record.wait().unwrap();
    kill_the_shell(&pidfile);
}

/// Stops a traced shell that outlived its recorder, by the pid it wrote, and no other.
fn kill_the_shell(pidfile: &Path) {
    let shell: i32 = std::fs::read_to_string(pidfile)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: kill(2) with a pid this test's own child's child wrote; no memory involved.
    assert_eq!(unsafe { libc::kill(shell, libc::SIGKILL) }, 0);
}

#[test]
fn kill_9_leaves_every_closed_file_readable() {
    if !bpf_available("kill_9_leaves_every_closed_file_readable") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    kill_9_after_a_loop(&capture, &["-q", "--rotate", "1s"]);

    let files = parquet_files(&capture.join("syscalls"));
    assert!(
        files.len() >= 2,
        "rotation every 1 s over 3.5 s closed {} files",
        files.len()
    );
    let unfinished: Vec<_> = std::fs::read_dir(capture.join("syscalls"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".parquet"))
        .collect();
    assert!(
        unfinished
            .iter()
            .all(|n| n.starts_with('.') && n.ends_with(".inprogress")),
        "{unfinished:?}"
    );
    // Every table has a file, so that `DIR/TABLE/*.parquet` matches in every reader: the
    // processes still ran and nothing was lost, so these two had no rows to write yet.
    for table in ["processes", "aggregates"] {
        assert!(!parquet_files(&capture.join(table)).is_empty(), "{table}");
    }
    // Every closed file reads back whole, through analyze (DataFusion fails on a torn file).
    let rows = scalar(&capture, "SELECT count(*) FROM syscalls");
    assert!(rows > 1000, "{rows}");
    // The capture says itself that it did not end normally.
    let unended = scalar(
        &capture,
        "SELECT count(*) FROM capture WHERE ended IS NULL AND events IS NULL",
    );
    assert_eq!(unended, 1);
    // A window after its last call holds none of its calls, and says so: its end is not
    // known, but its last call is.
    let last = tracepost_e2e::query(
        &[&capture],
        "SELECT to_char(max(ts), '%Y-%m-%dT%H:%M:%S%.6fZ') AS t FROM syscalls",
    )[0]["t"]
        .as_str()
        .unwrap()
        .to_string();
    let out = Command::new(bin("analyze"))
        .args(["query"])
        .arg(&capture)
        .args(["SELECT count(*) AS n FROM syscalls", "--since", "+1d"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.lines().any(|l| l.ends_with(&format!(
            "begins after its last call ({last}): it holds none of its calls (its recorder \
             did not finish: killed, or still recording)"
        ))),
        "{stderr}"
    );
    // What is missing is said from that call on, not as "its last interval" alone: a
    // copy whose files were not all shipped lacks far more (helper-91).
    let unfinished = format!(
        "warning: capture {}: its recorder did not finish (killed, or still running): its \
         calls after {last} (the newest this copy holds) are missing: its last --rotate \
         interval, and more where files were not yet shipped or copied; `events` and \
         `lost_events` are NULL",
        capture.display()
    );
    assert!(stderr.lines().any(|l| l == unfinished), "{stderr}");
    // The killed run left the empty file that held its row's inode; the next run into the
    // capture removes it, and its own once its row is written: none stays.
    let unfinished_rows = || {
        std::fs::read_dir(capture.join("capture"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".inprogress"))
            .count()
    };
    assert_eq!(unfinished_rows(), 1);
    assert!(tracepost_e2e::record(&capture, &["true"]).status.success());
    assert_eq!(unfinished_rows(), 0);
}

/// A full disk under a command: recording stops, what was closed stays readable, the
/// capture row says why and from when, and `record` still waits for the command and exits
/// with its status, saying what happened in one line.
#[test]
fn full_disk_stops_recording_but_keeps_the_command_contract() {
    if !bpf_available("full_disk_stops_recording_but_keeps_the_command_contract") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    let _guard = SmallDisk::mount(&mnt, "256k");

    let capture = mnt.join("capture");
    let marker = tmp.path().join("ran-to-the-end");
    let out = Command::new(bin("record"))
        .args(["-q", "--rotate", "1s", "-o"])
        .arg(&capture)
        .args(["--", "sh", "-c"])
        .arg(format!(
            "for i in $(seq 3000); do cat /etc/hostname; done >/dev/null; sleep 0.5; \
             echo yes > {}; exit 7",
            marker.display()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7), "the command's status: {stderr}");
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "yes\n",
        "the command ran on to its end"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: capture "), "{stderr}");
    assert!(lines[0].contains("No space left on device"), "{stderr}");
    assert_eq!(
        lines[0].matches("No space left").count(),
        1,
        "said once: {stderr}"
    );
    assert!(lines[0].contains("recording stopped at"), "{stderr}");
    assert!(lines[0].ends_with("exit status 7"), "{stderr}");
    // One stop time: the line's, to the millisecond, is the capture row's `ended`.
    let said = lines[0]
        .split("recording stopped at ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap();
    let ended = tracepost_e2e::query(
        &[&capture],
        "SELECT to_char(ended, '%Y-%m-%dT%H:%M:%S%.3fZ') AS t FROM capture",
    );
    assert_eq!(ended[0]["t"].as_str(), Some(said), "{stderr}");
    // Every file left is readable, and the capture says why and from when it is incomplete.
    let why = tracepost_e2e::query(
        &[&capture],
        "SELECT stopped_early, incomplete_from >= started AS after_start, events FROM capture",
    );
    assert_eq!(why.len(), 1);
    assert!(
        why[0]["stopped_early"]
            .as_str()
            .is_some_and(|s| s.contains("No space left on device")),
        "{why:?}"
    );
    assert_eq!(why[0]["after_start"], serde_json::Value::Bool(true));
    assert_eq!(why[0]["events"], serde_json::Value::Null);
    scalar(&capture, "SELECT count(*) FROM syscalls");
    // The processes known when it stopped are kept: the disk had no room for the next
    // syscalls file, but once its part is removed, it has room for them.
    assert_eq!(
        // The command's process: its parent, record, is not recorded. (A child forked
        // when recording stopped, before its exec, is an `sh` too.)
        scalar(
            &capture,
            "SELECT count(*) FROM processes WHERE comm = 'sh' \
             AND ppid NOT IN (SELECT pid FROM processes)"
        ),
        1,
        "the command's process"
    );
    assert!(
        scalar(
            &capture,
            "SELECT count(*) FROM processes WHERE comm = 'cat'"
        ) > 0
    );
    // And analyze says so where the answer is read.
    let stderr = summary_warnings(&capture);
    assert!(
        stderr.contains("recording stopped early at ")
            && stderr.contains(", and calls from ")
            && stderr.contains("No space left on device"),
        "{stderr}"
    );
}

/// A disk another writer filled: removing record's half-written file frees next to
/// nothing, and the capture row had no room, so the capture read as one whose recorder
/// was killed (helper-70). The lock file holds room for the end's files.
#[test]
fn a_disk_another_writer_filled_still_gets_its_capture_row() {
    if !bpf_available("a_disk_another_writer_filled_still_gets_its_capture_row") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    let _guard = SmallDisk::mount(&mnt, "2m");
    let capture = mnt.join("capture");
    let out = Command::new(bin("record"))
        .args(["-q", "--rotate", "200ms", "-o"])
        .arg(&capture)
        .args(["--", "sh", "-c"])
        .arg(format!(
            "dd if=/dev/zero of={} bs=64k 2>/dev/null; \
             for i in $(seq 2000); do cat /etc/hostname; done >/dev/null; sleep 0.5",
            mnt.join("fill").display()
        ))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("No space left on device") && stderr.contains("the capture row says so"),
        "{stderr}"
    );
    let why = tracepost_e2e::query(&[&capture], "SELECT stopped_early FROM capture");
    assert!(
        why[0]["stopped_early"]
            .as_str()
            .is_some_and(|s| s.contains("No space left on device")),
        "{why:?}"
    );
    // The lock file gave its room back.
    assert!(
        std::fs::metadata(capture.join(".record.lock"))
            .unwrap()
            .len()
            < 16
    );
}

/// A call that blocked longer than the reorder lag waits for the file after its
/// neighbours'. If writing fails before that file closes, the call is lost although it
/// entered before the last closed file's newest row: `incomplete_from` must count it in.
/// Two `sleep`s block 0.2 s and 0.4 s while other calls are written; then the command
/// makes the `syscalls` directory immutable, so that no later file can be finished.
#[test]
fn a_call_held_for_the_next_file_is_inside_what_a_failure_says_is_missing() {
    if !bpf_available("a_call_held_for_the_next_file_is_inside_what_a_failure_says_is_missing") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    let (status, stderr) = frozen_midway(
        &capture,
        &["-q", "--rotate", "200ms"],
        "(sleep 0.2; cat /etc/hostname > /dev/null) & sleep 0.4",
        "sleep 1; exit 7",
    );
    assert_eq!(status, Some(7), "the command's status: {stderr}");
    assert!(
        stderr.contains("calls from ") && stderr.contains("the capture row says so"),
        "recording stopped early: {stderr}"
    );
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM processes WHERE comm = 'sleep' AND exit_ts IS NOT NULL"
        ),
        2,
        "both sleeps ran to their end before the failure"
    );
    // Each sleep's clock_nanosleep entered within its first tenth: it is a row, or the
    // capture says calls are missing from before it.
    let unsaid = query(
        &[&capture],
        "SELECT p.pid, CAST(c.incomplete_from AS VARCHAR) AS incomplete_from, \
                CAST(p.start_ts AS VARCHAR) AS started, CAST(p.exit_ts AS VARCHAR) AS exited \
         FROM processes p, capture c WHERE p.comm = 'sleep' \
         AND NOT EXISTS (SELECT 1 FROM syscalls s \
                         WHERE s.pid = p.pid AND s.syscall = 'clock_nanosleep') \
         AND date_part('epoch', c.incomplete_from) > date_part('epoch', p.start_ts) \
             + (date_part('epoch', p.exit_ts) - date_part('epoch', p.start_ts)) / 10",
    );
    assert!(
        unsaid.is_empty(),
        "a call lost with the failed file is before incomplete_from: {unsaid:?}"
    );
}

/// With `-p`, a failure while recording is the same one line as in command mode (from
/// when calls are missing), and exit status 1.
#[test]
fn a_failure_under_pids_says_from_when_calls_are_missing() {
    if !bpf_available("a_failure_under_pids_says_from_when_calls_are_missing") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    let syscalls_dir = capture.join("syscalls");
    let _guard = Mutable(syscalls_dir.clone());
    let mut busy = Command::new("sh")
        .args(["-c", "while :; do cat /etc/hostname > /dev/null; done"])
        .spawn()
        .unwrap();
    let recorder = Command::new(bin("record"))
        .args(["-q", "--rotate", "200ms", "-o"])
        .arg(&capture)
        .args(["-p", &busy.id().to_string()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(700));
    let _ = Command::new("chattr").arg("+i").arg(&syscalls_dir).status();
    let out = recorder.wait_with_output().unwrap();
    let _ = busy.kill();
    let _ = busy.wait();
    let _ = Command::new("chattr").arg("-i").arg(&syscalls_dir).status();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].starts_with("error: capture "), "{stderr}");
    assert!(
        lines[0].contains("; recording stopped at ")
            && lines[0].contains(" on are missing (the capture row says so)"),
        "{stderr}"
    );
}

/// A disk already full when `record` starts: one line naming the file and the reason, a
/// non-zero exit, the command not run, and no directory left that a reader would take for
/// a recorder killed as it started.
#[test]
fn a_full_disk_at_the_start_leaves_nothing_behind() {
    if !bpf_available("a_full_disk_at_the_start_leaves_nothing_behind") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    let _guard = SmallDisk::mount(&mnt, "128k");
    // Filled to the last byte: dd stops at the error.
    let _ = Command::new("dd")
        .args(["if=/dev/zero", "bs=4k"])
        .arg(format!("of={}", mnt.join("fill").display()))
        .stderr(Stdio::null())
        .status();
    let capture = mnt.join("capture");
    let marker = tmp.path().join("ran");
    let out = Command::new(bin("record"))
        .arg("-o")
        .arg(&capture)
        .args(["--", "touch"])
        .arg(&marker)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("error: cannot ")
            && lines[0].contains(&capture.display().to_string())
            && lines[0].ends_with("No space left on device (os error 28)"),
        "{stderr}"
    );
    assert!(!marker.exists(), "the command did not run");
    assert!(!capture.exists(), "nothing left behind");
}

/// Killed before its first `--rotate` interval closed, `record` still leaves a capture
/// every reader opens: the processes it saw, and a `syscalls` table that is empty rather
/// than absent. analyze answers from it and says that calls are missing.
#[test]
fn kill_9_before_the_first_rotation_leaves_a_capture_that_reads() {
    if !bpf_available("kill_9_before_the_first_rotation_leaves_a_capture_that_reads") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    let pidfile = tmp.path().join("shell.pid");
    let script = format!("echo $$ > {}; exec sleep 30", pidfile.display());
    let mut record = record_command(&capture, &["-q", "--rotate", "60s"], &["sh", "-c", &script])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    for _ in 0..100 {
        if pidfile.exists() {
            break;
        }
        thread::sleep(Duration::from_millis(50));
    }
    thread::sleep(Duration::from_millis(300));
    // Still running, it holds the capture's lock: said so, not as maybe killed
    // (helper-97).
    let stderr = summary_warnings(&capture);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "warning: capture {}: its recorder is still running (pid {}): its calls are not \
             in its files yet, those of its current --rotate interval; `events` and \
             `lost_events` are NULL until it ends",
            capture.display(),
            record.id()
        )
    );
    record.kill().unwrap(); // SIGKILL
    record.wait().unwrap();
    kill_the_shell(&pidfile);

    for table in ["processes", "aggregates"] {
        assert_eq!(parquet_files(&capture.join(table)).len(), 1, "{table}");
    }
    // The empty file written at the start, numbered before any file with calls.
    let syscalls = parquet_files(&capture.join("syscalls"));
    assert_eq!(syscalls.len(), 1, "{syscalls:?}");
    assert!(syscalls[0].ends_with("part-000000.parquet"), "{syscalls:?}");
    assert_eq!(scalar(&capture, "SELECT count(*) FROM syscalls"), 0);
    let stderr = summary_warnings(&capture);
    assert_eq!(
        stderr.trim_end(),
        "warning: capture capture: its recorder did not finish (killed, or still running): \
         calls of its last --rotate interval are missing, and `events` and `lost_events` are NULL"
            .replace("capture capture", &format!("capture {}", capture.display())),
    );

    // Killed a moment earlier, before its capture row (written last): the tables read,
    // and analyze says the row is missing.
    let rowless = tmp.path().join("rowless");
    std::fs::create_dir(&rowless).unwrap();
    for table in ["syscalls", "processes", "aggregates", "capture"] {
        std::fs::create_dir(rowless.join(table)).unwrap();
    }
    for table in ["syscalls", "processes", "aggregates"] {
        for file in parquet_files(&capture.join(table)) {
            std::fs::copy(&file, rowless.join(table).join(file.file_name().unwrap())).unwrap();
        }
    }
    let stderr = summary_warnings(&rowless);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "warning: capture {}: it has no capture row: its recorder was killed as it \
             started (or is starting now), and calls may be missing",
            rowless.display()
        )
    );

    // Recording again into the same directory: the killed run's empty file goes once this
    // run's first file with calls is closed, as its own would have, and analyze names the
    // run that did not finish by its start.
    let again = record_command(&capture, &["-q"], &["cat", "/nonexistent-after-kill"])
        .stderr(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "cat's exit status");
    let syscalls = parquet_files(&capture.join("syscalls"));
    assert!(
        !syscalls.iter().any(|f| f.ends_with("part-000000.parquet")),
        "{syscalls:?}"
    );
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE path = '/nonexistent-after-kill' \
             AND errno = 'ENOENT'"
        ),
        1
    );
    let killed = query(
        &[&capture],
        "SELECT CAST(started AS VARCHAR) AS started FROM capture WHERE ended IS NULL",
    );
    assert_eq!(killed.len(), 1, "{killed:?}");
    let killed_started = killed[0]["started"].as_str().unwrap();
    let stderr = summary_warnings(&capture);
    assert_eq!(
        stderr.trim_end(),
        format!(
            "warning: capture {} (the run started {killed_started}): its recorder did not \
             finish (killed, or still running): calls of its last --rotate interval are \
             missing, and `events` and `lost_events` are NULL",
            capture.display()
        ),
    );
}

#[test]
fn max_size_keeps_the_newest_files_within_the_bound() {
    if !bpf_available("max_size_keeps_the_newest_files_within_the_bound") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    let out = Command::new(bin("record"))
        .args(["--max-size", "64KiB", "--rotate", "200ms", "-o"])
        .arg(&capture)
        .args([
            "--",
            "timeout",
            "3",
            "sh",
            "-c",
            "while :; do cat /etc/hostname >/dev/null; done",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // timeout's own status when it ends the loop.
    assert_eq!(out.status.code(), Some(124), "{stderr}");
    assert!(stderr.contains("--max-size deleted the"), "{stderr}");
    // What was deleted is in the capture row, not only on stderr: the rows left and the
    // rows deleted are the calls recorded, and analyze warns of it.
    let said = number_after(&stderr, "oldest file(s), ");
    let row = analyze_query(
        &[&capture],
        "SELECT events, deleted_events, (SELECT count(*) FROM syscalls) AS kept FROM capture",
        "csv",
    );
    let text = String::from_utf8_lossy(&row.stdout);
    let values: Vec<i64> = text
        .lines()
        .nth(1)
        .unwrap()
        .split(',')
        .map(|v| v.parse().unwrap())
        .collect();
    let [events, deleted, kept] = values[..] else {
        panic!("{text}")
    };
    assert_eq!(deleted, said, "{text}");
    assert_eq!(kept + deleted, events, "{text}");
    let warned = String::from_utf8_lossy(&row.stderr);
    assert!(
        warned.contains(&format!("--max-size deleted {deleted} recorded calls")),
        "{warned}"
    );
    let files = parquet_files(&capture.join("syscalls"));
    let bytes: u64 = files
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    // Within the bound at every rotation; the files closed at stop (the newest calls and the
    // late ones) are kept even if they go over it by up to about a quarter.
    assert!(bytes <= 64 * 1024 * 3 / 2, "{bytes} bytes kept");
    assert!(
        !files.iter().any(|f| f.ends_with("part-000001.parquet")),
        "the oldest file was deleted"
    );
    // The newest calls survive: timeout's exit_group, its very last call, is kept.
    let exits = scalar(
        &capture,
        "SELECT count(*) FROM syscalls WHERE syscall = 'exit_group' AND comm = 'timeout'",
    );
    assert_eq!(exits, 1);
}

/// A flight recorder usually ends killed (kill -9, the OOM killer, a host that dies). Its
/// capture row said nothing of what `--max-size` had deleted, and `analyze` reported only
/// the last `--rotate` interval missing where most of the run was gone (helper-88). The
/// row now says, within a second, how many calls were deleted.
#[test]
fn a_killed_recorder_says_what_max_size_deleted() {
    if !bpf_available("a_killed_recorder_says_what_max_size_deleted") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    kill_9_after_a_loop(
        &capture,
        &["-q", "--max-size", "64KiB", "--rotate", "200ms"],
    );

    let deleted = scalar(&capture, "SELECT deleted_events FROM capture");
    let kept = scalar(&capture, "SELECT count(*) FROM syscalls");
    // 64 KiB keeps a few files of 200 ms: most of 3.5 s of the loop is gone.
    assert!(deleted > kept, "{deleted} deleted, {kept} kept");
    let warnings = summary_warnings(&capture);
    assert!(
        warnings.contains(&format!("--max-size deleted {deleted} recorded calls")),
        "{warnings}"
    );
    assert!(warnings.contains("did not finish"), "{warnings}");
}

/// A disk that fills during an always-on capture (logs, core dumps: often the incident
/// itself): with `--max-size` the recorder deletes its own oldest files to make room and
/// goes on recording, where before it stopped at the first file that did not fit, losing
/// the newest calls. The 1 MiB disk holds about 3 of the files a 200 ms rotation closes.
#[test]
fn max_size_makes_room_on_a_disk_that_fills() {
    if !bpf_available("max_size_makes_room_on_a_disk_that_fills") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("small");
    let _guard = SmallDisk::mount(&mnt, "1m");
    let capture = mnt.join("capture");
    let out = Command::new(bin("record"))
        .args(["--max-size", "64MiB", "--rotate", "200ms", "-o"])
        .arg(&capture)
        .args([
            "--",
            "timeout",
            "3",
            "sh",
            "-c",
            "while :; do cat /etc/hostname >/dev/null; done",
        ])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{stderr}");
    assert!(!stderr.contains("error"), "{stderr}");
    let room = number_after(&stderr, "filled up: --max-size deleted ");
    let deleted_files = number_after(&stderr, "--max-size deleted the ");
    assert!(room > 0 && room <= deleted_files, "{stderr}");
    let row = tracepost_e2e::query(
        &[&capture],
        "SELECT events, deleted_events, stopped_early, \
         (SELECT count(*) FROM syscalls) AS kept FROM capture",
    );
    assert_eq!(row[0]["stopped_early"], serde_json::Value::Null, "{row:?}");
    let events = row[0]["events"].as_i64().unwrap();
    let deleted = row[0]["deleted_events"].as_i64().unwrap();
    let kept = row[0]["kept"].as_i64().unwrap();
    assert!(deleted > 0, "{row:?}");
    assert_eq!(kept + deleted, events, "{row:?}");
    // Recording went on to the end: timeout's exit_group, its very last call, is kept.
    let exits = scalar(
        &capture,
        "SELECT count(*) FROM syscalls WHERE syscall = 'exit_group' AND comm = 'timeout'",
    );
    assert_eq!(exits, 1, "{stderr}");

    // A loss, so said under -q too.
    std::fs::remove_dir_all(&capture).unwrap();
    let out = Command::new(bin("record"))
        .args(["-q", "--max-size", "64MiB", "--rotate", "200ms", "-o"])
        .arg(&capture)
        .args(["--", "timeout", "2", "sh", "-c"])
        .arg("while :; do cat /etc/hostname >/dev/null; done")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "warning: the file system of {} filled up: --max-size deleted ",
            capture.display()
        )),
        "{stderr}"
    );
}

/// A file system out of inodes, the other way a disk fills (a runaway that makes small
/// files): recording stops, with or without `--max-size` (which deletes for bytes only:
/// README, Limits), and the capture row, whose inode was held from the start, says so.
/// Before, the end could not create the row, and the capture read as killed.
#[test]
fn a_file_system_out_of_inodes_still_gets_its_capture_row() {
    if !bpf_available("a_file_system_out_of_inodes_still_gets_its_capture_row") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mnt = tmp.path().join("few-inodes");
    let _guard = SmallDisk::mount(&mnt, "64m,nr_inodes=48");
    // Calls for 0.6 s, then every inode left taken, then calls for 1.5 s.
    let script = format!(
        "end=$((SECONDS+1)); while [ $SECONDS -lt $end ]; do read x < /etc/hostname; done; \
         j=0; while : > {dir}/f$j 2>/dev/null; do j=$((j+1)); done; \
         end=$((SECONDS+2)); while [ $SECONDS -lt $end ]; do read x < /etc/hostname; done",
        dir = mnt.display()
    );
    for (name, flags) in [
        ("plain", &["--rotate", "200ms"][..]),
        ("ring", &["--max-size", "64MiB", "--rotate", "200ms"][..]),
    ] {
        let capture = mnt.join(name);
        let out = record_with(&capture, flags, &["bash", "-c", &script]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{stderr}");
        assert!(
            stderr.contains("No space left on device")
                && stderr.contains("(the capture row says so)"),
            "{stderr}"
        );
        let row = query(&[&capture], "SELECT stopped_early FROM capture");
        assert!(
            row[0]["stopped_early"]
                .as_str()
                .is_some_and(|s| s.contains("No space left on device")),
            "{row:?}"
        );
        // The inodes back for the next run.
        std::fs::remove_dir_all(&capture).unwrap();
        for f in std::fs::read_dir(&mnt).unwrap() {
            let f = f.unwrap().path();
            if f.file_name().unwrap().to_string_lossy().starts_with('f') {
                std::fs::remove_file(f).unwrap();
            }
        }
    }
}

/// A file whose footer is written but whose rename is refused (the table's directory made
/// immutable mid-run) is whole: it is kept and named, where before the line said only that
/// its calls were missing (helper-72). And a run that fails removes only the unfinished
/// files it began: an earlier run's, which may be whole like this one, stays.
#[test]
fn a_failure_keeps_whole_files_and_other_runs_unfinished_ones() {
    if !bpf_available("a_failure_keeps_whole_files_and_other_runs_unfinished_ones") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    let syscalls_dir = capture.join("syscalls");
    let (status, stderr) = frozen_midway(
        &capture,
        &["-q", "--rotate", "200ms"],
        "for i in $(seq 20); do ls / >/dev/null; sleep .05; done",
        "for i in $(seq 10); do ls / >/dev/null; sleep .05; done; exit 6",
    );
    assert_eq!(status, Some(6), "{stderr}");
    let named = stderr
        .split("cannot rename ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("no file named: {stderr}"));
    let kept = number_after(&stderr, "(its ");
    assert!(kept > 0, "{stderr}");
    assert!(
        stderr.contains(" rows are whole and kept there: rename it by hand to read them)"),
        "{stderr}"
    );
    // Whole: renamed by hand, it reads, and holds what the line says.
    let before = scalar(&capture, "SELECT count(*) FROM syscalls");
    let unhidden = syscalls_dir.join("part-000900.parquet");
    std::fs::rename(named, &unhidden).unwrap();
    let total = scalar(&capture, "SELECT count(*) FROM syscalls");
    assert_eq!(total - before, kept, "{total} {before} {kept}");

    // An earlier run's unfinished file in a capture continued by a run that fails, here on
    // a disk another writer filled.
    let mnt = tmp.path().join("small");
    let _disk = SmallDisk::mount(&mnt, "2m");
    let capture = mnt.join("capture");
    assert!(record(&capture, &["true"]).status.success());
    let earlier = capture.join("syscalls").join(".part-000950.inprogress");
    std::fs::write(&earlier, b"an earlier run's").unwrap();
    let filled = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "dd if=/dev/zero of={}/fill bs=1k count=$(($(df -k --output=avail {} | tail -1) - 8)) 2>/dev/null",
            mnt.display(),
            mnt.display()
        ))
        .status()
        .unwrap();
    assert!(filled.success());
    let script = "for i in $(seq 30); do ls / >/dev/null; sleep .02; done; exit 5";
    let out = record_with(
        &capture,
        &["-q", "--rotate", "200ms"],
        &["sh", "-c", script],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(5), "{stderr}");
    assert!(stderr.contains("No space left on device"), "{stderr}");
    assert_eq!(
        std::fs::read(&earlier).unwrap(),
        b"an earlier run's",
        "{stderr}"
    );
}

/// `--max-size` deleted older files, then writing failed: what it deleted is still in the
/// capture row and the line. Counted when each file went, it was NULL once the writer
/// failed, and a disk another writer kept full read as an idle stretch before the kept
/// calls. Here the bound deletes files every 200 ms, then the table's directory is made
/// immutable, so that no later file can be finished.
#[test]
fn a_failure_after_max_size_deleted_files_still_counts_them() {
    if !bpf_available("a_failure_after_max_size_deleted_files_still_counts_them") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    let (status, stderr) = frozen_midway(
        &capture,
        &["-q", "--max-size", "64KiB", "--rotate", "200ms"],
        "end=$(($(date +%s) + 2)); while [ $(date +%s) -lt $end ]; do \
         cat /etc/hostname >/dev/null; done",
        "sleep 0.6; exit 7",
    );
    assert_eq!(status, Some(7), "the command's status: {stderr}");
    let deleted = stderr
        .split("--max-size deleted the ")
        .nth(1)
        .unwrap_or_else(|| panic!("no count of deleted calls in the failure's line: {stderr}"));
    let said = number_after(deleted, " oldest file(s), ");
    let row = &query(
        &[&capture],
        "SELECT deleted_events, stopped_early IS NOT NULL AS stopped FROM capture",
    )[0];
    assert_eq!(row["stopped"], true, "{row:?}");
    assert_eq!(row["deleted_events"], said, "{row:?}");
    assert!(said > 0, "{stderr}");
}

/// SIGHUP, as when the on-call engineer's SSH session drops under a foreground `record -p`:
/// the capture ends as it does on Ctrl-C, every table written and the capture row closed.
/// By default the signal killed the recorder as `kill -9` does, losing every call since the
/// last rotation and the whole processes table. The same for every other signal whose
/// default is to end a process: SIGQUIT (Ctrl-\\), and SIGUSR1, SIGUSR2 and SIGALRM sent
/// by mistake.
#[test]
fn a_hangup_or_another_ending_signal_ends_the_capture_cleanly() {
    if !bpf_available("a_hangup_or_another_ending_signal_ends_the_capture_cleanly") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for signal in [
        libc::SIGHUP,
        libc::SIGQUIT,
        libc::SIGUSR1,
        libc::SIGUSR2,
        libc::SIGALRM,
    ] {
        let capture = tmp.path().join(format!("capture-{signal}"));
        ends_cleanly_on(&capture, signal);
    }
}

/// A SIGTERM in record's first moments, as `timeout` or a supervisor sends it: the
/// handlers were installed only once the programs had loaded, so it killed the recorder
/// (status 143) and left a capture of empty tables. It is now passed on to the command as
/// the command starts, and the capture closes as it does on any SIGTERM.
#[test]
fn a_signal_as_record_starts_reaches_the_command_and_the_capture_closes() {
    if !bpf_available("a_signal_as_record_starts_reaches_the_command_and_the_capture_closes") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    for delay_ms in [5, 50] {
        let capture = tmp.path().join(format!("capture-{delay_ms}"));
        let started = std::time::Instant::now();
        let record = Command::new(bin("record"))
            .args(["-q", "-o"])
            .arg(&capture)
            .args(["--", "sleep", "30"])
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        thread::sleep(Duration::from_millis(delay_ms));
        // SAFETY: kill(2) of this test's own child; no memory involved.
        assert_eq!(unsafe { libc::kill(record.id() as i32, libc::SIGTERM) }, 0);
        let out = record.wait_with_output().unwrap();
        assert!(started.elapsed() < Duration::from_secs(10), "{out:?}");
        // The command's status, as a shell gives it: killed by SIGTERM.
        assert_eq!(out.status.code(), Some(143), "{out:?}");
        assert!(out.stderr.is_empty(), "{out:?}");
        assert_eq!(
            scalar(
                &capture,
                "SELECT count(*) FROM capture WHERE ended IS NOT NULL AND events IS NOT NULL"
            ),
            1
        );
        assert_eq!(
            scalar(
                &capture,
                "SELECT count(*) FROM syscalls WHERE syscall = 'execve' AND ret = 0"
            ),
            1
        );
    }
}

fn ends_cleanly_on(capture: &Path, signal: i32) {
    let mut target = Command::new("sh")
        .args([
            "-c",
            "while :; do cat /etc/hostname >/dev/null; sleep 0.01; done",
        ])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let record = Command::new(bin("record"))
        .args(["-q", "-p", &target.id().to_string(), "-o"])
        .arg(capture)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    thread::sleep(Duration::from_millis(1500));
    // SAFETY: kill(2) of this test's own child; no memory involved.
    assert_eq!(unsafe { libc::kill(record.id() as i32, signal) }, 0);
    let out = record.wait_with_output().unwrap();
    let _ = target.kill();
    let _ = target.wait();
    assert_eq!(out.status.code(), Some(0), "signal {signal}: {out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for table in ["syscalls", "processes", "aggregates", "capture"] {
        assert!(!parquet_files(&capture.join(table)).is_empty(), "{table}");
    }
    assert!(
        scalar(
            capture,
            "SELECT count(*) FROM syscalls WHERE syscall = 'openat'"
        ) > 10
    );
    assert_eq!(
        scalar(
            capture,
            "SELECT count(*) FROM capture WHERE ended IS NOT NULL"
        ),
        1
    );
    assert!(scalar(capture, "SELECT count(*) FROM processes") >= 1);
}
