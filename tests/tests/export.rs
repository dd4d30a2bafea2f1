//! `analyze export --perfetto`: the trace holds one slice per recorded call on the right
//! process and thread, names every process and thread, marks the intervals whose calls
//! were lost, and keeps several captures apart.
use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
};

use serde_json::Value;
use tracepost_e2e::{analyze, bpf_available, build_program, query, record_with, scalar};

const WORKERS: usize = 2;
const CALLS: i64 = 3000;

/// Records busy_workers with `flags` and returns the workers' pids, as the program
/// printed them.
fn record_workers(dir: &Path, exe: &Path, flags: &[&str]) -> Vec<i64> {
    let out = record_with(
        dir,
        flags,
        &[
            exe.to_str().unwrap(),
            &WORKERS.to_string(),
            &CALLS.to_string(),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("worker=")?.parse().ok())
        .collect()
}

fn export(captures: &[&Path], file: &Path) -> Value {
    let mut args = vec!["export"];
    args.extend(captures.iter().map(|c| c.to_str().unwrap()));
    args.extend(["--perfetto", file.to_str().unwrap()]);
    let out = analyze(&args);
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&std::fs::read(file).unwrap()).expect("the trace is JSON")
}

fn events<'a>(trace: &'a Value, ph: &[&str]) -> Vec<&'a Value> {
    trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| ph.contains(&e["ph"].as_str().unwrap()))
        .collect()
}

#[test]
fn every_call_is_a_slice_on_its_own_thread() {
    if !bpf_available("every_call_is_a_slice_on_its_own_thread") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program(tmp.path(), "busy_workers");
    let cap = tmp.path().join("cap");
    let workers = record_workers(&cap, &exe, &["-q"]);
    assert_eq!(workers.len(), WORKERS);
    let trace = export(&[&cap], &tmp.path().join("trace.json"));
    let mode = std::fs::metadata(tmp.path().join("trace.json")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );

    let slices: Vec<&Value> = events(&trace, &["X", "i"])
        .into_iter()
        .filter(|e| e["cat"] == "syscall")
        .collect();
    assert_eq!(
        slices.len() as i64,
        scalar(&cap, "SELECT count(*) FROM syscalls")
    );
    // Each worker: exactly its getppid calls, and its failed closes with their errno.
    for pid in &workers {
        let mine = |name: &str| {
            slices
                .iter()
                .filter(|e| e["pid"] == *pid && e["tid"] == *pid && e["name"] == name)
                .collect::<Vec<_>>()
        };
        assert_eq!(mine("getppid").len() as i64, CALLS, "worker {pid}");
        let closes = mine("close");
        assert_eq!(closes.len() as i64, CALLS / 100, "worker {pid}");
        assert!(closes.iter().all(|e| e["args"]["errno"] == "EBADF"
            && e["args"]["ret"] == -9
            && e["dur"].as_f64().unwrap() > 0.0));
    }
    // Slices start where the calls did: the first at 0, in microseconds, and durations
    // are the capture's to the nanosecond.
    let min_ts = slices
        .iter()
        .map(|e| e["ts"].as_f64().unwrap())
        .fold(f64::MAX, f64::min);
    assert_eq!(min_ts, 0.0);
    let total_us: f64 = slices.iter().filter_map(|e| e["dur"].as_f64()).sum();
    let total_ns = scalar(&cap, "SELECT sum(duration_ns) FROM syscalls");
    assert!(
        (total_us * 1000.0 - total_ns as f64).abs() < slices.len() as f64,
        "{total_us} us against {total_ns} ns"
    );

    // Every thread and process in the capture is named, and no other.
    let names = |kind: &str, key: &str| -> BTreeMap<i64, String> {
        events(&trace, &["M"])
            .into_iter()
            .filter(|e| e["name"] == kind)
            .map(|e| {
                (
                    e[key].as_i64().unwrap(),
                    e["args"]["name"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let tids: BTreeSet<i64> = query(&[&cap], "SELECT DISTINCT tid FROM syscalls")
        .iter()
        .map(|r| r["tid"].as_i64().unwrap())
        .collect();
    let threads = names("thread_name", "tid");
    assert_eq!(threads.keys().copied().collect::<BTreeSet<_>>(), tids);
    let processes = names("process_name", "pid");
    for pid in &workers {
        assert_eq!(processes[pid], format!("busy_workers {pid}"));
    }
}

#[test]
fn lost_calls_are_marked_and_captures_kept_apart() {
    if !bpf_available("lost_calls_are_marked_and_captures_kept_apart") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program(tmp.path(), "busy_workers");
    // host-b's name holds a secret's shape: masked in the trace, and still told apart.
    let (a, b) = (tmp.path().join("host-a"), tmp.path().join("token=abc"));
    record_workers(&a, &exe, &["-q"]);
    // A ring far too small for the load: calls are lost, and counted.
    let out = record_with(
        &b,
        &["-q", "--buffer-size", "32KiB"],
        &[exe.to_str().unwrap(), "2", "200000"],
    );
    assert!(out.status.success(), "{out:?}");
    let lost = scalar(
        &b,
        "SELECT sum(calls) FROM aggregates WHERE reason = 'ring_full'",
    );
    assert!(lost > 0, "the small ring lost nothing");

    let trace = export(&[&a, &b], &tmp.path().join("both.json"));
    let slices = events(&trace, &["X", "i"]);
    let calls = |e: &&&Value| e["cat"] == "syscall";
    let in_b = |e: &&&Value| e["pid"].as_i64().unwrap() >= 10_000_000;
    let rows = |c: &Path| scalar(c, "SELECT count(*) FROM syscalls");
    assert_eq!(
        slices.iter().filter(calls).filter(|e| !in_b(e)).count() as i64,
        rows(&a)
    );
    assert_eq!(
        slices.iter().filter(calls).filter(in_b).count() as i64,
        rows(&b)
    );
    // The lost intervals: on host-b's "calls lost" track, adding up to what was lost.
    let marked: i64 = slices
        .iter()
        .filter(|e| e["cat"] == "lost")
        .map(|e| {
            assert!(in_b(&e), "{e}");
            e["args"]["calls"].as_i64().unwrap()
        })
        .sum();
    assert_eq!(marked, lost);
    let process_names: Vec<&str> = events(&trace, &["M"])
        .into_iter()
        .filter(|e| e["name"] == "process_name")
        .map(|e| e["args"]["name"].as_str().unwrap())
        .collect();
    let b_name = b.to_str().unwrap().replace("token=abc", "token=***");
    assert!(process_names.contains(&format!("calls lost @ {b_name}").as_str()));
    assert!(
        process_names
            .iter()
            .any(|n| n.starts_with("busy_workers ") && n.ends_with(&format!(" @ {b_name}"))),
        "{process_names:?}"
    );
    // Only the capture that lost calls has a track for them.
    assert_eq!(
        process_names
            .iter()
            .filter(|n| n.starts_with("calls lost"))
            .count(),
        1
    );
    let text = std::fs::read_to_string(tmp.path().join("both.json")).unwrap();
    assert!(
        !text.contains("abc"),
        "the secret in a capture's name leaked"
    );

    // The trace is written while the capture is read: never into the capture itself.
    let part = tracepost_e2e::parquet_files(&a.join("syscalls"))[0].clone();
    let before = std::fs::read(&part).unwrap();
    let out = analyze(&[
        "export",
        a.to_str().unwrap(),
        "--perfetto",
        part.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("error: output ") && err.contains("inside capture"),
        "{err}"
    );
    assert_eq!(std::fs::read(&part).unwrap(), before);
}
