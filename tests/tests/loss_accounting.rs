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

    let (rows, lost) = run(tmp.path(), &exe, "32KiB");
    assert!(
        lost > 0,
        "the smallest buffer (32 KiB a CPU) must overflow under a tight loop"
    );
    assert_eq!(rows + lost, all_rows, "recorded {rows} + lost {lost}");
}

/// The capture loop and the writer run ten nice steps above `record`'s own priority, so
/// that they empty the staging areas before the traced processes fill them; the command
/// keeps the priority it was started with.
#[test]
fn the_recorder_runs_ahead_of_the_command_it_records() {
    if !bpf_available("the_recorder_runs_ahead_of_the_command_it_records") {
        return;
    }
    // A thread's name and nice value from its stat line; the name is in parentheses and
    // may hold spaces, and nice is the 17th field after it.
    let parse = |line: &str| {
        let (head, tail) = line.rsplit_once(')')?;
        let name = head.split_once('(')?.1.to_string();
        let nice: i64 = tail.split_whitespace().nth(16)?.parse().ok()?;
        Some((name, nice))
    };
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
    let started_at = parse(&stat).unwrap().1;
    let tmp = tempfile::tempdir().unwrap();
    let out = tracepost_e2e::record_command(
        &tmp.path().join("cap"),
        &["-q"],
        &[
            "sh",
            "-c",
            "sleep 0.3; cat /proc/$PPID/task/*/stat /proc/self/stat",
        ],
    )
    .output()
    .unwrap();
    assert!(out.status.success(), "{out:?}");
    let threads: Vec<(String, i64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(parse)
        .collect();
    let nice_of = |name: &str| -> Vec<i64> {
        threads
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, nice)| *nice)
            .collect()
    };
    let raised = (started_at - 10).max(-20);
    assert_eq!(nice_of("record"), [raised], "{threads:?}");
    assert_eq!(nice_of("writer"), [raised], "{threads:?}");
    assert_eq!(nice_of("cat"), [started_at], "{threads:?}");
}

/// Under a flood of calls that fills the buffer, the processes are still known: calls
/// leave the last part of each CPU's area to fork, exec and exit events, since a call lost
/// is counted in `aggregates` but a process event lost leaves `processes` without a row or
/// an exit that nothing puts back. With a buffer too small even for that, what was lost is
/// in the capture row and `analyze` says so, where before only record's stderr did.
#[test]
fn a_flood_of_calls_leaves_the_processes_known_or_counted_lost() {
    if !bpf_available("a_flood_of_calls_leaves_the_processes_known_or_counted_lost") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = tracepost_e2e::build_program(tmp.path(), "fork_flood");
    let exe = exe.to_str().unwrap();
    let facts = "SELECT count(*) AS procs, count(*) FILTER (WHERE exit_code = 0) AS exits, \
                 (SELECT max(lost_process_events) FROM capture) AS lost_process, \
                 (SELECT max(lost_events) FROM capture) AS lost FROM processes";

    let whole = tmp.path().join("whole");
    let out = record_with(&whole, &["-q"], &[exe, "200", "20000"]);
    assert!(out.status.success(), "{out:?}");
    let row = &tracepost_e2e::query(&[&whole], facts)[0];
    // The command and its 200 children, every one with its exit.
    assert_eq!(row["procs"], 201, "{row:?}");
    assert_eq!(row["exits"], 201, "{row:?}");
    assert_eq!(row["lost_process"], 0, "{row:?}");

    let small = tmp.path().join("small");
    let out = record_with(
        &small,
        &["-q", "--buffer-size", "32KiB"],
        &[exe, "100", "5000"],
    );
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said: i64 = stderr
        .split("warning: ")
        .find_map(|w| {
            let (n, rest) = w.split_once(' ')?;
            rest.starts_with("process events (fork, exec, exit) were lost")
                .then(|| n.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no count of lost process events: {stderr}"));
    let row = &tracepost_e2e::query(&[&small], facts)[0];
    assert!(said > 0, "{stderr}");
    assert_eq!(row["lost_process"], said, "{row:?}");
    // Under -q too, the run's last word on calls lost is the capture row's count: the live
    // warnings count only those lost "so far".
    let last = stderr
        .lines()
        .rev()
        .find_map(|l| {
            l.strip_prefix("warning: ")?
                .strip_suffix(" syscalls were lost because the buffer was full (see --buffer-size)")
        })
        .unwrap_or_else(|| panic!("no count of the calls lost: {stderr}"));
    assert_eq!(row["lost"], last.parse::<i64>().unwrap(), "{stderr}");
    let summary = Command::new(tracepost_e2e::bin("analyze"))
        .arg("summary")
        .arg(&small)
        .output()
        .unwrap();
    let warned = String::from_utf8_lossy(&summary.stderr);
    // And the report, which goes into the ticket, lists it among its facts.
    let report = tmp.path().join("report.md");
    let out = Command::new(tracepost_e2e::bin("analyze"))
        .arg("report")
        .arg(&small)
        .arg("-o")
        .arg(&report)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(
        text.contains(&format!("| lost_process_events | {said} |")),
        "{text}"
    );
    assert!(
        warned.contains(&format!(
            "warning: capture {}: {said} process events (fork, exec, exit) were lost because \
             its recorder's buffer was full: `processes` lacks some rows, exits and exit codes",
            small.display()
        )),
        "{warned}"
    );
}
