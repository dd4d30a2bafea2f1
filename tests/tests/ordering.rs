//! Rows are written in entry order, and a call that entered long before calls that
//! returned first is neither lost nor written out of order: within the recorder's 30 ms
//! lag it takes its place in the file, and past it it goes to the next file.
use std::path::{Path, PathBuf};

use tempfile::TempDir;
use tracepost_e2e::{
    bpf_available, build_program, parquet_files, read_with, record, record_command, scalar,
};

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
    // Had a call shorter than the lag been released after rows that entered later, it
    // would have gone to a later file than those rows. A 15 ms sleep can itself outlast
    // the lag on a loaded machine (CI saw one take over 30 ms): that call then rightly
    // starts the next file, and the calls after it follow it there. So the check is on
    // entry times, not on the number of files: every call shorter than the lag entered
    // after every row of the files before its own.
    let files = short_calls_in_place(&capture);
    let longest = scalar(&capture, "SELECT max(duration_ns) FROM syscalls");
    if longest < LAG_NS {
        assert_eq!(files.len(), 1, "no call outlasted the lag, yet: {files:?}");
    }
}

/// Checks that every call shorter than the lag entered after every row of the files
/// before its own: none was released after rows that entered later. Returns the files.
fn short_calls_in_place(capture: &Path) -> Vec<PathBuf> {
    let files = parquet_files(&capture.join("syscalls"));
    let mut written_up_to = i64::MIN;
    for file in &files {
        let first_short = duckdb_value(
            file,
            &format!(
                "coalesce(min(ts_ns) FILTER (WHERE duration_ns < {LAG_NS}), {})",
                i64::MAX
            ),
        );
        assert!(
            first_short >= written_up_to,
            "{}: a call shorter than the lag entered at {first_short} ns, before rows \
             already written (up to {written_up_to} ns): {files:?}",
            file.display()
        );
        written_up_to = written_up_to.max(duckdb_value(file, "max(ts_ns)"));
    }
    files
}

/// A recorder that falls behind (here it is stopped for 120 ms while a spinner fills its
/// ring) must not let the wall clock release rows before the calls still in its ring:
/// a 15 ms sleep that entered before spins already written would go to the next file.
/// Calls are lost while the ring is full; that is counted, and not what this checks.
#[test]
fn a_recorder_that_falls_behind_still_puts_short_calls_in_place() {
    if !bpf_available("a_recorder_that_falls_behind_still_puts_short_calls_in_place") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program(tmp.path(), "sleeper_and_spinner");
    let capture = tmp.path().join("capture");
    let mut child = record_command(&capture, &["-q"], &[exe.to_str().unwrap(), "15", "40"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    std::thread::sleep(std::time::Duration::from_millis(250));
    // SAFETY: signals to the child this test started and has not yet waited for.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    std::thread::sleep(std::time::Duration::from_millis(120));
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert!(child.wait().unwrap().success());
    let sleeps = "SELECT count(*) FROM syscalls WHERE syscall = 'clock_nanosleep'";
    assert!(scalar(&capture, sleeps) > 0, "the sleeps were recorded");
    short_calls_in_place(&capture);
}

/// The recorder's reorder lag (`LAG` in recorder/src/files/pipeline.rs).
const LAG_NS: i64 = 30_000_000;

/// One value over the rows of one Parquet file (`expr`: an aggregate), as DuckDB reads it.
fn duckdb_value(file: &Path, expr: &str) -> i64 {
    let sql = format!("SELECT {expr} FROM read_parquet('{}')", file.display());
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import duckdb, sys; print(duckdb.connect().execute(sys.argv[1]).fetchone()[0])",
        ])
        .arg(sql)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
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

/// Each CPU sends its records through its own staging area. A file opened on one CPU and
/// written from the other, 3000 times under the same fd number: had the recorder replayed
/// one CPU's calls before the other's, a write would name the file before its own, with
/// confidence. Every write must name its own file.
#[test]
fn calls_on_two_cpus_are_replayed_in_the_order_they_returned() {
    if !bpf_available("calls_on_two_cpus_are_replayed_in_the_order_they_returned") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program(tmp.path(), "cpu_hopper");
    let files = tmp.path().join("files");
    std::fs::create_dir(&files).unwrap();
    let capture = tmp.path().join("capture");
    let out = record(
        &capture,
        &[exe.to_str().unwrap(), files.to_str().unwrap(), "3000"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.starts_with("cpus=2 "),
        "needs two CPUs to hop between: {stdout}"
    );
    let pid: i64 = stdout
        .split("pid=")
        .nth(1)
        .and_then(|p| p.trim().parse().ok())
        .expect("pid printed");
    let sql = format!(
        "SELECT count(*) AS writes, \
         sum(CASE WHEN fd_path = '{dir}/hop-' || CAST(arg2 - 1 AS VARCHAR) THEN 1 ELSE 0 END) \
         AS named_right \
         FROM syscalls WHERE pid = {pid} AND syscall = 'write' AND fd <> 1",
        dir = files.display()
    );
    let rows = tracepost_e2e::query(&[&capture], &sql);
    assert_eq!(rows[0]["writes"], 3000, "{rows:?}");
    assert_eq!(rows[0]["named_right"], 3000, "{rows:?}");
    // And every pin took effect: the kernel moves a thread pinned elsewhere before the call
    // returns.
    assert_eq!(
        scalar(
            &capture,
            &format!(
                "SELECT count(*) FROM syscalls \
                 WHERE pid = {pid} AND syscall = 'sched_setaffinity' AND ret = 0"
            )
        ),
        6000
    );
}
