//! Calls that are not recorded one by one are still counted exactly, in the `aggregates`
//! table: under overload (a ring far too small) and under `--min-duration`. The counts are
//! checked against what the test programs themselves issued, and against strace.
use std::{collections::BTreeMap, process::Command};

use tracepost_e2e::{
    analyze, analyze_json, bpf_available, build_program, query, record_with, scalar, strace_counts,
    summary_lost,
};

fn pids(stdout: &[u8], key: &str) -> Vec<i64> {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{key}=")))
        .map(|p| p.parse().unwrap())
        .collect()
}

const WORKERS: usize = 3;
const CALLS: i64 = 300_000;

#[test]
fn overload_of_several_processes_is_recorded_or_counted_call_by_call() {
    if !bpf_available("overload_of_several_processes_is_recorded_or_counted_call_by_call") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program(tmp.path(), "busy_workers");
    let capture = tmp.path().join("capture");
    let (workers, calls) = (WORKERS.to_string(), CALLS.to_string());
    let out = record_with(
        &capture,
        &["--buffer-size", "32KiB"],
        &[exe.to_str().unwrap(), &workers, &calls],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let workers = pids(&out.stdout, "worker");
    assert_eq!(workers.len(), WORKERS);

    let mut lost_getppid = 0;
    for &pid in &workers {
        let recorded = scalar(
            &capture,
            &format!("SELECT count(*) FROM syscalls WHERE pid = {pid} AND syscall = 'getppid'"),
        );
        let counted = scalar(
            &capture,
            &format!(
                "SELECT coalesce(sum(calls), 0) FROM aggregates \
                 WHERE pid = {pid} AND syscall = 'getppid' AND reason = 'ring_full' \
                 AND failed = false"
            ),
        );
        assert_eq!(
            recorded + counted,
            CALLS,
            "worker {pid}: {recorded} + {counted}"
        );
        lost_getppid += counted;
        let failed_recorded = scalar(
            &capture,
            &format!(
                "SELECT count(*) FROM syscalls WHERE pid = {pid} AND syscall = 'close' \
                 AND errno = 'EBADF'"
            ),
        );
        let failed_counted = scalar(
            &capture,
            &format!(
                "SELECT coalesce(sum(calls), 0) FROM aggregates WHERE pid = {pid} \
                 AND syscall = 'close' AND errno = 'EBADF' AND failed"
            ),
        );
        assert_eq!(
            failed_recorded + failed_counted,
            CALLS / 100,
            "worker {pid}"
        );
    }
    assert!(
        lost_getppid > 0,
        "the smallest buffer (32 KiB a CPU) must overflow under 3 busy processes"
    );

    // The same total three ways: the intervals, the capture row, the summary line.
    let by_interval = scalar(
        &capture,
        "SELECT sum(calls) FROM aggregates WHERE reason IN ('ring_full', 'thread_table_full')",
    );
    let in_capture = scalar(&capture, "SELECT lost_events FROM capture");
    assert_eq!(by_interval, in_capture);
    assert_eq!(in_capture, summary_lost(&stderr));
    // Intervals are about a second long, so a query can tell which seconds are incomplete.
    let longest_ms = scalar(
        &capture,
        "SELECT max(arrow_cast(interval_end, 'Int64') - arrow_cast(interval_start, 'Int64')) \
         / 1000 FROM aggregates",
    );
    assert!(longest_ms <= 1500, "{longest_ms} ms");
    let events = scalar(&capture, "SELECT events FROM capture");
    assert_eq!(events, scalar(&capture, "SELECT count(*) FROM syscalls"));
    // Every question about failures counts the failures whose detail was lost: `timeline`
    // gave 4% of them where `errors` and `summary` gave all (a review). The workers'
    // failed closes are known exactly, and the failures in all are the recorded ones and
    // the counted ones.
    let total = |name: &str, column: &str| -> i64 {
        query(&[&capture], name)
            .iter()
            .map(|r| r[column].as_i64().unwrap())
            .sum()
    };
    let workers_closes: i64 = query(&[&capture], "errors")
        .iter()
        .filter(|r| {
            r["syscall"] == "close"
                && r["errno"] == "EBADF"
                && workers.contains(&r["pid"].as_i64().unwrap())
        })
        .map(|r| r["calls"].as_i64().unwrap())
        .sum();
    assert_eq!(workers_closes, WORKERS as i64 * (CALLS / 100));
    let failures = scalar(
        &capture,
        "SELECT (SELECT count(errno) FROM syscalls) \
         + (SELECT coalesce(sum(calls), 0) FROM aggregates WHERE errno IS NOT NULL)",
    );
    assert!(
        scalar(
            &capture,
            "SELECT coalesce(sum(calls), 0) FROM aggregates WHERE errno IS NOT NULL"
        ) > 0,
        "some failures lost their detail"
    );
    assert_eq!(total("timeline", "errors"), failures);
    assert_eq!(total("timeline", "lost"), in_capture);
}

#[test]
fn min_duration_records_the_slow_calls_and_counts_the_rest_exactly() {
    if !bpf_available("min_duration_records_the_slow_calls_and_counts_the_rest_exactly") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program(tmp.path(), "short_and_slow");
    let exe_str = exe.to_str().unwrap();
    // Warm the page cache, so that strace's run and ours load the program the same way.
    Command::new(&exe).output().unwrap();
    let strace = strace_counts(tmp.path(), &[exe_str]);

    let capture = tmp.path().join("capture");
    let out = record_with(&capture, &["-q", "--min-duration", "5ms"], &[exe_str]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pid = pids(&out.stdout, "pid")[0];

    // Only calls of 5 ms or more are rows (and exit_group, which has no duration).
    let short = scalar(
        &capture,
        "SELECT count(*) FROM syscalls WHERE duration_ns < 5000000",
    );
    assert_eq!(short, 0);
    let sleeps = query(
        &[&capture],
        &format!(
            "SELECT duration_ns FROM syscalls WHERE pid = {pid} AND syscall = 'clock_nanosleep'"
        ),
    );
    assert_eq!(sleeps.len(), 3);
    assert!(
        sleeps
            .iter()
            .all(|r| r["duration_ns"].as_i64().unwrap() >= 20_000_000)
    );

    let agg = |sql_filter: &str| {
        scalar(
            &capture,
            &format!(
                "SELECT coalesce(sum(calls), 0) FROM aggregates WHERE pid = {pid} \
                 AND reason = 'below_min_duration' AND {sql_filter}"
            ),
        )
    };
    assert_eq!(agg("syscall = 'getppid' AND NOT failed"), 1000);
    assert_eq!(agg("syscall = 'close' AND errno = 'EBADF'"), 20);
    // Every counted call sits in a latency bucket below 5 ms (2^22 ns < 5 ms < 2^23 ns).
    let top_bucket = scalar(&capture, "SELECT max(latency_log2) FROM aggregates");
    assert!(top_bucket <= 22, "{top_bucket}");

    // Rows plus counts give strace's calls and errors, syscall by syscall.
    let ours: BTreeMap<String, (i64, i64)> = query(
        &[&capture],
        "SELECT syscall, sum(calls) AS calls, sum(errors) AS errors FROM ( \
           SELECT syscall, count(*) AS calls, count(errno) AS errors FROM syscalls GROUP BY 1 \
           UNION ALL \
           SELECT syscall, sum(calls), sum(CASE WHEN failed THEN calls ELSE 0 END) \
           FROM aggregates GROUP BY 1) GROUP BY 1",
    )
    .into_iter()
    .map(|r| {
        (
            r["syscall"].as_str().unwrap().to_string(),
            (r["calls"].as_i64().unwrap(), r["errors"].as_i64().unwrap()),
        )
    })
    .collect();
    let mut ours = ours;
    // strace -c leaves out exit_group: it never returns.
    assert_eq!(ours.remove("exit_group"), Some((1, 0)));
    assert_eq!(ours, strace);

    // The questions about failures count the failed calls the kernel only counted: a
    // `--min-duration` capture read as one without failures in `errors`, `error-bursts`,
    // `timeline` and the report.
    let (calls, errors) = strace
        .values()
        .fold((0, 0), |(c, e), (calls, errors)| (c + calls, e + errors));
    assert!(errors >= 20, "{strace:?}");
    let close = query(&[&capture], "errors")
        .into_iter()
        .find(|r| r["syscall"] == "close" && r["errno"] == "EBADF")
        .expect("close EBADF in errors");
    assert_eq!(close["calls"].as_i64(), Some(20), "{close:?}");
    assert_eq!(close["counted"].as_i64(), Some(20), "{close:?}");
    assert_eq!(close["pid"].as_i64(), Some(pid), "{close:?}");
    assert_eq!(close["comm"], "short_and_slow", "{close:?}");
    let total = |name: &str, column: &str| -> i64 {
        query(&[&capture], name)
            .iter()
            .map(|r| r[column].as_i64().unwrap())
            .sum()
    };
    assert_eq!(total("errors", "calls"), errors);
    assert_eq!(total("error-bursts", "errors"), errors);
    assert_eq!(total("timeline", "errors"), errors);
    assert_eq!(total("timeline", "calls"), calls + 1);
    let report = tmp.path().join("report.md");
    let out = analyze(&[
        "report",
        capture.to_str().unwrap(),
        "-o",
        report.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let counted = scalar(
        &capture,
        "SELECT sum(calls) FROM aggregates WHERE reason = 'below_min_duration'",
    );
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(
        text.contains(&format!("| counted_by_request | {counted} |")),
        "{text}"
    );
    // Each section of recorded calls only says so; those that count them all do not.
    let note = |heading: &str| -> String {
        let at = text
            .find(&format!("### {heading}\n"))
            .unwrap_or_else(|| panic!("{heading} missing: {text}"));
        text[at..].lines().nth(2).unwrap_or_default().to_string()
    };
    let left_out = format!(
        "Of the recorded calls only: {counted} calls the kernel counted without recording \
         them are not in it."
    );
    for heading in [
        "Worst latency (p99)",
        "Most time working",
        "latency-by-process",
    ] {
        assert!(
            note(heading).contains(&left_out),
            "{heading}: {}",
            note(heading)
        );
    }
    for heading in ["Error bursts", "errors", "timeline"] {
        assert!(
            !note(heading).contains(&left_out),
            "{heading}: {}",
            note(heading)
        );
    }
    // `timeline` counts them, but its p99 cannot: a `--min-duration` capture's p99 is that
    // of the slow calls it kept.
    assert!(
        note("timeline").contains(&format!(
            "Its percentiles are of the recorded calls only: {counted} calls the kernel \
             counted without recording them are in its counts alone."
        )),
        "{}",
        note("timeline")
    );
    // A question of recorded calls only says how many it leaves out; one that counts
    // them all says nothing.
    let c = capture.to_str().unwrap();
    let said = format!("warning: capture {c}: {counted} calls were counted, not recorded");
    let out = analyze(&["query", c, "latency-by-process"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains(&said), "{stderr}");
    assert!(
        stderr.contains("this query reads the recorded calls only"),
        "{stderr}"
    );
    let out = analyze(&["query", c, "SELECT count(*) FROM syscalls"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&said),
        "{out:?}"
    );
    let out = analyze(&["query", c, "errors"]);
    assert!(out.stderr.is_empty(), "{out:?}");
    let out = analyze(&["query", c, "timeline"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        format!(
            "{said} (record --min-duration, --failed, or a full ring); this query counts \
             them, but its percentiles are of the recorded calls only"
        )
    );
    // `summary` counts them, but its percentiles and maximum cannot: its rows read as a
    // contradiction (an average above the maximum) until it says so.
    for (by, why) in [
        (
            "syscall",
            "calls, errors, total_ns and avg_ns count them, but p50_ns to max_ns are of the \
             recorded calls only",
        ),
        (
            "file",
            "summary by thread and by file counts the recorded calls only",
        ),
    ] {
        let out = analyze(&["summary", c, "--by", by]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success()
                && stderr.trim_end()
                    == format!("{said} (record --min-duration, --failed, or a full ring); {why}"),
            "{by}: {stderr}"
        );
    }
    let copy = tmp.path().join("copy");
    let cp = std::process::Command::new("cp")
        .arg("-r")
        .arg(&capture)
        .arg(&copy)
        .status();
    assert!(cp.unwrap().success());
    let out = analyze(&["diff", c, copy.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("its percentiles are of the recorded calls only"),
        "{stderr}"
    );
}

/// With neither `--failed` nor `--min-duration` the kernel keeps 4,096 groups of unsent
/// calls. Overloaded by 600 processes of eight (syscall, errno) groups each, it fills:
/// the calls past it are counted without their group, and every call is still a row or
/// counted, as strace counts them in a run of its own.
#[test]
fn a_full_table_of_unsent_calls_still_counts_every_call() {
    if !bpf_available("a_full_table_of_unsent_calls_still_counts_every_call") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program(tmp.path(), "many_groups");
    let exe_str = exe.to_str().unwrap();
    let command = [exe_str, "600", "20"];
    // Warm the page cache, so that strace's run and ours load the program the same way.
    assert!(
        Command::new(&exe)
            .args(&command[1..])
            .status()
            .unwrap()
            .success()
    );
    let strace = strace_counts(tmp.path(), &command);
    let issued: i64 = strace.values().map(|(calls, _)| calls).sum();

    let capture = tmp.path().join("capture");
    let out = record_with(&capture, &["-q", "--buffer-size", "32KiB"], &command);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let rows = scalar(&capture, "SELECT count(*) FROM syscalls");
    let keyed = scalar(
        &capture,
        "SELECT coalesce(sum(calls), 0) FROM aggregates WHERE pid IS NOT NULL",
    );
    let unkeyed = scalar(
        &capture,
        "SELECT coalesce(sum(calls), 0) FROM aggregates WHERE pid IS NULL",
    );
    let unkeyed_ring_full = scalar(
        &capture,
        "SELECT coalesce(sum(calls), 0) FROM aggregates WHERE pid IS NULL \
         AND reason = 'ring_full'",
    );
    assert!(
        unkeyed_ring_full > 0,
        "the table must fill: {keyed} calls in groups, none past them"
    );
    // Per interval: groups of exited processes leave the table between samples, so over a
    // long capture more than 4,096 can have passed through it.
    let groups = scalar(
        &capture,
        "SELECT max(n) FROM (SELECT interval_start, count(*) AS n FROM aggregates \
         WHERE pid IS NOT NULL GROUP BY interval_start)",
    );
    assert!(
        groups <= 4096,
        "{groups} groups in an interval, in a table of 4,096"
    );
    // strace -c leaves out exit_group, which never returns: one a process, 601.
    assert_eq!(
        rows + keyed + unkeyed,
        issued + 601,
        "{rows} rows + {keyed} in groups + {unkeyed} past them, against strace's {issued}"
    );
    assert_eq!(
        keyed + unkeyed,
        scalar(&capture, "SELECT lost_events FROM capture")
    );
    // `summary` and `diff` count them all too: the calls past the table are a group of
    // their own, keyed NULL in `summary` and `(ungrouped)` in `diff`.
    let cap = capture.to_str().unwrap();
    for (by, key) in [("syscall", "syscall"), ("process", "pid")] {
        let rows = analyze_json(&["summary", cap, "--by", by]);
        let total: i64 = rows.iter().map(|r| r["calls"].as_i64().unwrap()).sum();
        assert_eq!(total, issued + 601, "summary --by {by}");
        let ungrouped = rows.iter().find(|r| r[key].is_null()).expect("a NULL key");
        // Whether they failed is not known: NULL, not 0.
        assert!(ungrouped["errors"].is_null(), "{ungrouped:?}");
        assert_eq!(
            ungrouped["calls"].as_i64(),
            Some(unkeyed),
            "summary --by {by}"
        );
    }
    // A copy for the baseline: one capture given twice is refused.
    let baseline = tmp.path().join("baseline");
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(&capture)
            .arg(&baseline)
            .status()
            .unwrap()
            .success()
    );
    let diff = analyze_json(&["diff", baseline.to_str().unwrap(), cap, "--limit", "100000"]);
    for kind in ["syscall", "process"] {
        let ungrouped = diff
            .iter()
            .find(|r| r["kind"] == kind && r["name"] == "(ungrouped)")
            .expect("an (ungrouped) row");
        assert_eq!(
            ungrouped["incident_calls"].as_i64(),
            Some(unkeyed),
            "{kind}"
        );
    }
}

/// The first interval of `aggregates` holds every call counted before the first sample,
/// so it must begin no later than tracing did, which is when the capture began. It began at the end of `record`'s start-up,
/// after the command had run its first calls: under `--failed` the execve and the loader's
/// calls were counted in an interval that began after the first failure recorded, and
/// `--until` just past that failure read them as outside the window (helper-97).
#[test]
fn the_first_interval_begins_before_the_calls_it_counts() {
    if !bpf_available("the_first_interval_begins_before_the_calls_it_counts") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("cap");
    let out = record_with(&capture, &["-q", "--failed"], &["ls", "/no/such/dir"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let micros = |sql: &str| scalar(&capture, &format!("SELECT arrow_cast(({sql}), 'Int64')"));
    let first_interval = micros("SELECT min(interval_start) FROM aggregates");
    let started = micros("SELECT started FROM capture");
    let first_failure = micros("SELECT min(ts) FROM syscalls");
    // The capture began when counting did (helper-98: a first interval begun before it was
    // counted in windows that end before the capture began, and `--since +0s` said that
    // calls crossed its edge).
    assert_eq!(first_interval, started);
    assert!(started <= first_failure, "{started} > {first_failure}");
    let out = analyze(&["summary", capture.to_str().unwrap(), "--since", "+0s"]);
    assert!(out.status.success(), "{out:?}");
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(!warned.contains("cross"), "{warned}");
    // The execve is counted (it succeeded), in that first interval.
    assert_eq!(
        scalar(
            &capture,
            &format!(
                "SELECT sum(calls) FROM aggregates WHERE syscall = 'execve' \
                 AND arrow_cast(interval_start, 'Int64') = {first_interval}"
            )
        ),
        1
    );
}
