//! Records a program whose system calls are known in advance and checks, through
//! `analyze query`, every count, errno, pid, tid and duration it makes.
use tracepost_e2e::{bpf_available, build_program, query, record, scalar};

struct Pids {
    parent: i64,
    child: i64,
    thread: i64,
}

fn parse_pids(stdout: &str) -> Pids {
    let field = |name: &str| -> i64 {
        stdout
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
            .unwrap_or_else(|| panic!("no {name}= in {stdout:?}"))
            .parse()
            .unwrap()
    };
    assert_eq!(field("child_status"), 3, "child exit status");
    Pids {
        parent: field("parent"),
        child: field("child"),
        thread: field("thread"),
    }
}

#[test]
fn ground_truth_program_is_recorded_exactly() {
    if !bpf_available("ground_truth_program_is_recorded_exactly") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program(tmp.path(), "ground_truth");
    let capture = tmp.path().join("capture");
    let out = record(&capture, &[exe.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The command's status and stdout pass through.
    assert_eq!(
        out.status.code(),
        Some(7),
        "record exit status; stderr: {stderr}"
    );
    let pids = parse_pids(&String::from_utf8_lossy(&out.stdout));
    assert_ne!(pids.parent, pids.child);
    assert_ne!(pids.parent, pids.thread);
    let c = capture.as_path();

    let count = |filter: &str| scalar(c, &format!("SELECT count(*) FROM syscalls WHERE {filter}"));
    let (p, ch, t) = (pids.parent, pids.child, pids.thread);

    // The command's first recorded call is its execve, and the recorder never appears.
    let first = query(
        &[c],
        "SELECT syscall, pid, comm, ret FROM syscalls ORDER BY ts LIMIT 1",
    );
    assert_eq!(first[0]["syscall"], "execve");
    assert_eq!(first[0]["pid"], p);
    assert_eq!(first[0]["ret"], 0);
    assert_eq!(first[0]["comm"], "ground_truth");
    assert_eq!(count("syscall = 'execve'"), 1);
    assert_eq!(
        count(&format!("pid NOT IN ({p}, {ch})")),
        0,
        "rows from other processes"
    );

    // Exact counts, attributed to the right process and thread.
    assert_eq!(count("syscall = 'getppid'"), 1000);
    assert_eq!(
        count(&format!(
            "syscall = 'getppid' AND pid = {p} AND tid = {p} AND ret > 0"
        )),
        1000
    );
    assert_eq!(count("syscall = 'getuid'"), 77);
    assert_eq!(
        count(&format!(
            "syscall = 'getuid' AND pid = {ch} AND tid = {ch} AND ret = 0"
        )),
        77
    );
    assert_eq!(count("syscall = 'gettid'"), 55);
    assert_eq!(
        count(&format!(
            "syscall = 'gettid' AND pid = {p} AND tid = {t} AND ret = {t}"
        )),
        55
    );

    // Failures with their errno and raw return value.
    assert_eq!(count("syscall = 'chdir'"), 3);
    assert_eq!(
        count("syscall = 'chdir' AND errno = 'ENOENT' AND ret = -2"),
        3
    );
    assert_eq!(count("syscall = 'mkdir'"), 2);
    assert_eq!(
        count("syscall = 'mkdir' AND errno = 'EEXIST' AND ret = -17"),
        2
    );
    assert_eq!(count(&format!("errno IS NOT NULL AND pid = {ch}")), 0);

    // Reads and writes of known size, with their raw arguments.
    assert_eq!(count("syscall = 'write' AND ret = 4096 AND arg2 = 4096"), 5);
    assert_eq!(count("syscall = 'read' AND ret = 1000 AND arg2 = 1000"), 4);

    // Calls that never return: exit_group with its status argument, no ret, no duration.
    let exits = query(
        &[c],
        "SELECT pid, arg0, ret, duration_ns FROM syscalls WHERE syscall = 'exit_group' ORDER BY pid",
    );
    assert_eq!(exits.len(), 2, "{exits:?}");
    let by_pid = |pid: i64| {
        exits
            .iter()
            .find(|r| r["pid"] == pid)
            .expect("exit_group row")
    };
    assert_eq!(by_pid(ch)["arg0"], 3);
    assert_eq!(by_pid(p)["arg0"], 7);
    for row in &exits {
        assert!(
            row["ret"].is_null() && row["duration_ns"].is_null(),
            "{row:?}"
        );
    }
    // The thread ends with `exit`, which never returns either.
    assert_eq!(
        count(&format!(
            "syscall = 'exit' AND tid = {t} AND duration_ns IS NULL AND ret IS NULL"
        )),
        1
    );
    assert_eq!(
        count("duration_ns IS NULL"),
        3,
        "only the exits lack a duration"
    );

    // Sleeps last at least as long as asked, and not absurdly longer.
    let sleeps = query(
        &[c],
        &format!(
            "SELECT tid, duration_ns FROM syscalls WHERE syscall = 'clock_nanosleep' \
             AND pid = {p} ORDER BY ts"
        ),
    );
    assert_eq!(sleeps.len(), 3, "{sleeps:?}");
    let dur = |row: &std::collections::BTreeMap<String, serde_json::Value>| {
        row["duration_ns"].as_i64().unwrap()
    };
    for row in &sleeps[..2] {
        assert_eq!(row["tid"], p);
        assert!((100_000_000..1_000_000_000).contains(&dur(row)), "{row:?}");
    }
    assert_eq!(sleeps[2]["tid"], t);
    assert!(
        (50_000_000..1_000_000_000).contains(&dur(&sleeps[2])),
        "{:?}",
        sleeps[2]
    );

    // Timestamps are wall-clock: the capture just happened.
    let age_s = scalar(
        c,
        "SELECT CAST(to_unixtime(now()) - to_unixtime(min(ts)) AS BIGINT) FROM syscalls",
    );
    assert!((0..120).contains(&age_s), "first call {age_s} s ago");
}

#[test]
fn execve_from_a_non_leader_thread_keeps_the_process_traced() {
    if !bpf_available("execve_from_a_non_leader_thread_keeps_the_process_traced") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program(tmp.path(), "thread_exec");
    let capture = tmp.path().join("capture");
    let out = record(&capture, &[exe.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let c = capture.as_path();
    let execs = query(
        &[c],
        "SELECT pid, tid, comm, ret, arg0 FROM syscalls WHERE syscall = 'execve' ORDER BY ts",
    );
    assert_eq!(execs.len(), 2, "{execs:?}");
    let leader = execs[0]["pid"].as_i64().unwrap();
    // The second execve was entered by another thread but returns as the leader.
    assert_eq!(execs[1]["pid"], leader);
    assert_eq!(execs[1]["tid"], leader);
    assert_eq!(execs[1]["ret"], 0);
    assert_eq!(execs[1]["comm"], "true");
    // The new image is traced to its end.
    let exits = query(
        &[c],
        "SELECT pid, comm, arg0 FROM syscalls WHERE syscall = 'exit_group'",
    );
    assert_eq!(exits.len(), 1, "{exits:?}");
    assert_eq!(exits[0]["pid"], leader);
    assert_eq!(exits[0]["comm"], "true");
    assert_eq!(exits[0]["arg0"], 0);
    let after_exec = scalar(
        c,
        &format!("SELECT count(*) FROM syscalls WHERE comm = 'true' AND tid = {leader}"),
    );
    assert!(
        after_exec > 10,
        "only {after_exec} calls of /bin/true recorded"
    );
}

#[test]
fn renamed_threads_carry_their_new_name() {
    if !bpf_available("renamed_threads_carry_their_new_name") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program(tmp.path(), "rename");
    let capture = tmp.path().join("capture");
    let out = record(&capture, &[exe.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let worker: i64 = stdout
        .trim()
        .strip_prefix("worker_tid=")
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no worker tid in {stdout:?}"));
    // The recorder keeps each thread's name and asks again only after a rename, so every
    // way of renaming must reach it: the thread's own prctl, and another thread's write to
    // /proc/self/task/TID/comm.
    let rows = query(
        &[capture.as_path()],
        "SELECT comm, tid = pid AS main, count(*) AS calls FROM syscalls
         WHERE syscall = 'getppid' GROUP BY 1, 2 ORDER BY 1, 2",
    );
    let got: Vec<(String, bool, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["comm"].as_str().unwrap().to_string(),
                r["main"].as_bool().unwrap(),
                r["calls"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("peer-set".to_string(), false, 2),
            ("rename".to_string(), true, 3),
            ("renamed".to_string(), false, 1),
            ("renamed".to_string(), true, 4),
        ]
    );
    let prctl = query(
        &[capture.as_path()],
        "SELECT comm FROM syscalls WHERE syscall = 'prctl' AND arg0 = 15",
    );
    assert_eq!(prctl.len(), 1, "{prctl:?}");
    assert_eq!(prctl[0]["comm"], "renamed");
    let workers = scalar(
        capture.as_path(),
        &format!("SELECT count(*) FROM syscalls WHERE syscall = 'getppid' AND tid = {worker}"),
    );
    assert_eq!(workers, 3);
}
