//! `record --sched` (issue 15): each call's time split into on a CPU, waiting for a CPU and
//! blocked, and the thread that woke it, on a program whose every wait is known: a pipe
//! read that a named thread ends 40 ms later, a 20 ms sleep, and yields to a spinner.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use serde_json::{Value, json};
use tracepost_e2e::{
    HangFs, analyze, analyze_json, bpf_available, build_program_o2, one_error_line, query,
    read_with, record, record_command, record_with, scalar,
};

const MS: i64 = 1_000_000;

fn tids(stdout: &[u8]) -> BTreeMap<String, i64> {
    String::from_utf8_lossy(stdout)
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.parse().unwrap()))
        .collect()
}

fn one(capture: &Path, sql: &str) -> BTreeMap<String, Value> {
    let rows = query(&[capture], sql);
    assert_eq!(rows.len(), 1, "{sql}: {rows:?}");
    rows.into_iter().next().unwrap()
}

fn int(row: &BTreeMap<String, Value>, column: &str) -> i64 {
    row[column]
        .as_i64()
        .unwrap_or_else(|| panic!("{column} in {row:?}"))
}

/// A sleep of `ms` as the split must show it. Almost always it blocks for all of `ms` and a
/// timer ends it. On a loaded machine the thread can be preempted after it marked itself
/// asleep and before it blocked: it stays runnable, and when the timer fires before it has
/// the CPU back, it never blocks at all. Then the wait is all `runq_ns`, and no wakeup
/// ended a blocked stretch, so it has no waker. CI met that case in 2 runs of 8; either
/// way the parts add up to the call and cover the sleep.
fn assert_slept(row: &BTreeMap<String, Value>, ms: i64) {
    let (blocked, runq) = (int(row, "blocked_ns"), int(row, "runq_ns"));
    assert_eq!(
        int(row, "oncpu_ns") + runq + blocked,
        int(row, "duration_ns"),
        "{row:?}"
    );
    assert!(runq + blocked >= ms * MS - MS / 10, "{row:?}");
    assert_eq!(row["waker_tid"], Value::Null, "{row:?}");
    if blocked > 0 {
        assert_eq!(row["waker_kind"], "timer", "{row:?}");
    } else {
        assert_eq!(row["waker_kind"], Value::Null, "{row:?}");
    }
}

/// The folded stack in `column` of the first call of `tid` to `syscall` that took between
/// `from_ms` and `to_ms`, frame by frame. The first: why_slow's later 10 ms sleep, pinned
/// beside a spinning thread, can wait long enough for the CPU to fall in the window of
/// the 20 ms sleep before it.
fn folded(
    capture: &Path,
    column: &str,
    tid: i64,
    syscall: &str,
    (from_ms, to_ms): (i64, i64),
) -> Vec<String> {
    let row = one(
        capture,
        &format!(
            "SELECT {column} FROM syscalls WHERE tid = {tid} \
             AND syscall = '{syscall}' AND duration_ns BETWEEN {} AND {} \
             ORDER BY ts LIMIT 1",
            from_ms * MS,
            to_ms * MS
        ),
    );
    let text = row[column]
        .as_str()
        .unwrap_or_else(|| panic!("{syscall}: {row:?}"));
    text.split(';').map(str::to_string).collect()
}

/// `record -q --stacks --stack-min 5ms -o CAPTURE -- EXE`: why_slow's sleeps, read and
/// yields that took 5 ms or more send their stacks; its start-up calls do not.
fn record_stacks(capture: &Path, exe: &Path) -> std::process::Output {
    record_with(
        capture,
        &["-q", "--stacks", "--stack-min", "5ms"],
        &[exe.to_str().unwrap()],
    )
}

/// `slowest-calls`' row for the pipe read of thread `reader`.
fn slowest_read(capture: &str, reader: i64) -> BTreeMap<String, Value> {
    let slowest = analyze_json(&["query", capture, "slowest-calls", "--param", "limit=5"]);
    slowest
        .into_iter()
        .find(|r| r["syscall"] == "read" && r["tid"] == reader)
        .unwrap_or_else(|| panic!("no read of {reader} in slowest-calls"))
}

/// The Perfetto slice of the pipe read of thread `reader`, exported into `dir`.
fn perfetto_read_slice(dir: &Path, capture: &str, reader: i64) -> Value {
    let trace_path = dir.join("trace.json");
    let out = analyze(&[
        "export",
        capture,
        "--perfetto",
        trace_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let trace: Value =
        serde_json::from_str(&std::fs::read_to_string(&trace_path).unwrap()).unwrap();
    trace["traceEvents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "read" && e["tid"] == reader && e["dur"].as_f64().unwrap() > 10e3)
        .cloned()
        .unwrap_or_else(|| panic!("no read slice"))
}

#[test]
fn sched_splits_each_call_and_names_the_thread_that_woke_it() {
    if !bpf_available("sched_splits_each_call_and_names_the_thread_that_woke_it") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program_o2(tmp.path(), "why_slow");
    let capture = tmp.path().join("capture");
    let out = record_with(&capture, &["-q", "--sched"], &[exe.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = tids(&out.stdout);
    let (reader, writer) = (t["reader"], t["writer"]);

    // The read on the pipe: blocked for the writer's 40 ms sleep, woken by its write.
    let read = one(
        &capture,
        &format!(
            "SELECT duration_ns, oncpu_ns, runq_ns, blocked_ns, waker_tid, waker_comm, \
             waker_syscall, waker_kind FROM syscalls \
             WHERE tid = {reader} AND syscall = 'read' AND duration_ns > {}",
            10 * MS
        ),
    );
    let blocked = int(&read, "blocked_ns");
    assert!((38 * MS..60 * MS).contains(&blocked), "{read:?}");
    assert!(int(&read, "oncpu_ns") < MS, "{read:?}");
    assert_eq!(
        int(&read, "oncpu_ns") + int(&read, "runq_ns") + blocked,
        int(&read, "duration_ns")
    );
    assert_eq!(int(&read, "waker_tid"), writer, "{read:?}");
    assert_eq!(read["waker_comm"], "pipe-writer");
    assert_eq!(read["waker_syscall"], "write");
    assert_eq!(read["waker_kind"], "thread");

    // The 20 ms sleep, the reader's first: blocked, and a timer woke it, not a thread.
    let sleep = one(
        &capture,
        &format!(
            "SELECT blocked_ns, waker_tid, waker_comm, waker_syscall, waker_kind, duration_ns, \
                    oncpu_ns, runq_ns FROM syscalls \
             WHERE tid = {reader} AND syscall = 'clock_nanosleep' ORDER BY ts LIMIT 1"
        ),
    );
    assert_slept(&sleep, 20);
    assert_eq!(sleep["waker_comm"], Value::Null, "{sleep:?}");
    assert_eq!(sleep["waker_syscall"], Value::Null, "{sleep:?}");

    // The yields: they wait for the CPU the spinner holds, and never block.
    let yields = one(
        &capture,
        &format!(
            "SELECT count(*) AS calls, sum(blocked_ns) AS blocked, max(runq_ns) AS runq, \
             count(waker_kind) AS woken FROM syscalls \
             WHERE tid = {reader} AND syscall = 'sched_yield'"
        ),
    );
    assert_eq!(int(&yields, "calls"), 20);
    assert_eq!(int(&yields, "blocked"), 0, "{yields:?}");
    assert!(int(&yields, "runq") >= MS / 2, "{yields:?}");
    assert_eq!(int(&yields, "woken"), 0, "{yields:?}");

    // Every call that returned has its split, and it adds up to its duration, to within
    // what two CPUs' clocks can disagree by.
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE duration_ns IS NOT NULL AND oncpu_ns IS NULL"
        ),
        0
    );
    assert!(
        scalar(
            &capture,
            "SELECT max(abs(oncpu_ns + runq_ns + blocked_ns - duration_ns)) FROM syscalls"
        ) <= 1_000
    );
    assert!(scalar(&capture, "SELECT count(*) FROM syscalls") > 40);

    // The wakeup happened inside the writer's write call, by the writer's own record, and
    // the waker's process is the reader's (they are threads of one).
    let woke = one(
        &capture,
        &format!(
            "SELECT r.waker_pid, r.pid, w.syscall FROM syscalls r JOIN syscalls w \
             ON w.tid = r.waker_tid \
             AND r.woken_ts_ns BETWEEN w.ts_ns AND w.ts_ns + w.duration_ns \
             WHERE r.tid = {reader} AND r.syscall = 'read' AND r.duration_ns > {}",
            10 * MS
        ),
    );
    assert_eq!(woke["waker_pid"], woke["pid"], "{woke:?}");
    assert_eq!(woke["syscall"], "write", "{woke:?}");

    // Perfetto's timeline draws it: an arrow from the writer's thread to the reader's
    // read, at that moment.
    let trace_path = tmp.path().join("trace.json");
    let out = analyze(&[
        "export",
        capture.to_str().unwrap(),
        "--perfetto",
        trace_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let trace: Value =
        serde_json::from_str(&std::fs::read_to_string(&trace_path).unwrap()).unwrap();
    let events = trace["traceEvents"].as_array().unwrap();
    let read_slice = events
        .iter()
        .find(|e| e["name"] == "read" && e["tid"] == reader && e["dur"].as_f64().unwrap() > 10e3)
        .unwrap();
    // The arrow that lands in the read. The writer wakes the reader again later (its
    // exit ends the reader's join), and the trace's events follow the order the rows
    // were read in, which is not always time: so not the writer's first arrow.
    let (from, dur) = (
        read_slice["ts"].as_f64().unwrap(),
        read_slice["dur"].as_f64().unwrap(),
    );
    let finish = events
        .iter()
        .find(|e| {
            e["ph"] == "f"
                && e["tid"] == reader
                && e["ts"]
                    .as_f64()
                    .is_some_and(|t| from < t && t <= from + dur)
        })
        .unwrap_or_else(|| panic!("no arrow into {read_slice}"));
    assert_eq!(finish["bp"], "e");
    let start = events
        .iter()
        .find(|e| e["ph"] == "s" && e["id"] == finish["id"])
        .unwrap();
    assert_eq!(start["tid"], writer, "{start} to {finish}");
    assert_eq!(finish["ts"], start["ts"]);
    assert_eq!(read_slice["args"]["waker_tid"], writer);

    // What the analyzer makes of it: the read is the slowest call, with its split and its
    // waker; off-cpu puts it first; the report says why.
    let path = capture.to_str().unwrap();
    // The writer's own 40 ms sleep can outlast the read it ends: find the read among the
    // slowest rather than expect it first.
    let slowest = analyze_json(&["query", path, "slowest-calls", "--param", "limit=5"]);
    let read_row = slowest
        .iter()
        .find(|r| r["syscall"] == "read" && r["tid"] == reader)
        .unwrap_or_else(|| panic!("{slowest:?}"));
    assert_eq!(
        read_row["woken_by"],
        format!("pipe-writer ({writer}) in write"),
        "{slowest:?}"
    );
    assert!(
        read_row["blocked"].as_str().unwrap().ends_with("ms"),
        "{slowest:?}"
    );
    let off = analyze_json(&["query", path, "off-cpu"]);
    // Waits inside work come first: the yields' 4 ms waits for the CPU; the pipe read and
    // the sleeps are waits for an event (the `waiting` rule), after them.
    assert_eq!(off[0]["syscall"], "sched_yield", "{off:?}");
    assert_eq!(off[0]["idle_wait"], false, "{off:?}");
    let read = off
        .iter()
        .find(|r| r["syscall"] == "read")
        .unwrap_or_else(|| panic!("{off:?}"));
    assert_eq!(read["tid"], reader, "{off:?}");
    assert_eq!(read["blocked_ns"], blocked, "{off:?}");
    assert_eq!(read["idle_wait"], true, "{off:?}");
    let timer = off
        .iter()
        .find(|r| r["tid"] == reader && r["syscall"] == "clock_nanosleep")
        .unwrap_or_else(|| panic!("{off:?}"));
    assert_eq!(timer["woken_by"], "timer");
    let report = tmp.path().join("report.md");
    let out = analyze(&["report", path, "-o", report.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.contains("Why slow"), "{text}");
    assert!(
        text.contains(&format!("pipe-writer ({writer}) in write")),
        "{text}"
    );
}

/// `record --stacks`: the kernel stack where each call of at least `--stack-min` blocked
/// longest, from this host's kernel symbols, in the folded format flame graph tools read.
#[test]
fn stacks_name_the_kernel_functions_each_slow_call_blocked_in() {
    if !bpf_available("stacks_name_the_kernel_functions_each_slow_call_blocked_in") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program_o2(tmp.path(), "why_slow");
    let capture = tmp.path().join("capture");
    let out = record_stacks(&capture, &exe);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reader = tids(&out.stdout)["reader"];
    let stack_of = |syscall: &str, from_ms: i64, to_ms: i64| {
        folded(&capture, "kernel_stack", reader, syscall, (from_ms, to_ms))
    };
    // Outermost first: the syscall entry, then down to where the thread gave up its CPU.
    let read = stack_of("read", 10, 200);
    assert!(read[0].starts_with("entry_SYSCALL_64"), "{read:?}");
    assert_eq!(read.last().unwrap(), "schedule", "{read:?}");
    // `pipe_read` before Linux 6.16, `anon_pipe_read` since.
    assert!(read.iter().any(|f| f.ends_with("pipe_read")), "{read:?}");
    assert!(read.iter().any(|f| f == "vfs_read"), "{read:?}");
    let sleep = stack_of("clock_nanosleep", 19, 30);
    assert!(sleep.iter().any(|f| f == "do_nanosleep"), "{sleep:?}");
    assert!(!sleep.iter().any(|f| f.ends_with("pipe_read")), "{sleep:?}");
    // The yields never block, and calls shorter than --stack-min keep no stack.
    assert_eq!(
        scalar(
            &capture,
            &format!(
                "SELECT count(kernel_stack) FROM syscalls \
                 WHERE syscall = 'sched_yield' OR duration_ns < {}",
                5 * MS
            )
        ),
        0
    );
    // The analyzer shows it beside the split: the slowest call, and the waits by place.
    let path = capture.to_str().unwrap();
    // The read and the writer's 40 ms sleep are close: either can be the slowest.
    let read_row = slowest_read(path, reader);
    assert_eq!(read_row["blocked_in"], read.join(";"), "{read_row:?}");
    let off = analyze_json(&["query", path, "off-cpu"]);
    let waits = off
        .iter()
        .find(|r| r["tid"] == reader && r["syscall"] == "read")
        .unwrap_or_else(|| panic!("{off:?}"));
    assert_eq!(waits["blocked_in"], read.join(";"), "{off:?}");
    // And Perfetto's timeline carries it in the slice's arguments.
    let slice = perfetto_read_slice(tmp.path(), path, reader);
    assert_eq!(slice["args"]["kernel_stack"], read.join(";"), "{slice}");
    // --stacks brings --sched's columns with it.
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE duration_ns IS NOT NULL AND oncpu_ns IS NULL"
        ),
        0
    );

    // Without --stacks a --sched capture keeps no stack; --stack-min alone is refused.
    let plain = tmp.path().join("plain");
    let out = record_with(&plain, &["-q", "--sched"], &[exe.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        scalar(&plain, "SELECT count(kernel_stack) FROM syscalls"),
        0
    );
    let out = record_with(
        &tmp.path().join("refused"),
        &["-q", "--stack-min", "5ms"],
        &["/bin/true"],
    );
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--stacks"),
        "{out:?}"
    );

    // Stacks the map refuses are counted, not lost silently: with one slot, the pipe
    // read's stack and the sleep's cannot both be kept.
    let full = tmp.path().join("full");
    // With --stack-min 0, whichever stack takes the slot first is kept, whatever its call's
    // length.
    let mut command = record_command(
        &full,
        &["-q", "--stacks", "--stack-min", "0"],
        &[exe.to_str().unwrap()],
    );
    let out = command
        .env("TRACEPOST_TEST_MAX_STACKS", "1")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("kernel stacks not stored"), "{stderr}");
    assert_eq!(
        scalar(&full, "SELECT count(DISTINCT kernel_stack) FROM syscalls"),
        1
    );

    // A host that hides kernel addresses gets a refusal, not stacks of `[unknown]`.
    let hidden = tmp.path().join("hidden");
    let out = with_kptr_restrict("2", || {
        record_with(&hidden, &["-q", "--stacks"], &["/bin/true"])
    });
    let line = one_error_line(&out);
    assert!(line.contains("kptr_restrict"), "{line}");
    assert!(!hidden.exists(), "a refused capture leaves no directory");
}

/// `record --stacks`: the user-space chain that made each call of at least `--stack-min`,
/// unwound with the binaries' unwind tables. why_slow is built as distributions build
/// (`-O2`, so without frame pointers) against the system's glibc: a frame-pointer walk
/// would lose the program's own functions between `main` and libc.
#[test]
fn stacks_unwind_the_user_space_chain_of_each_slow_call() {
    if !bpf_available("stacks_unwind_the_user_space_chain_of_each_slow_call") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program_o2(tmp.path(), "why_slow");
    let capture = tmp.path().join("capture");
    let out = record_stacks(&capture, &exe);
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = tids(&out.stdout);
    let (reader, writer) = (t["reader"], t["writer"]);
    let chain_of = |tid: i64, syscall: &str, from_ms: i64, to_ms: i64| {
        folded(&capture, "user_stack", tid, syscall, (from_ms, to_ms))
    };
    // Outermost first, whole from glibc's `_start` to the libc function that entered the
    // kernel, every function of the program's chain in order.
    let sleep = chain_of(reader, "clock_nanosleep", 19, 30);
    assert_eq!(sleep[0], "_start", "{sleep:?}");
    assert_eq!(sleep.last().unwrap(), "clock_nanosleep", "{sleep:?}");
    let chain = ["main", "outer_sleep", "middle_sleep", "deep_sleep"].map(String::from);
    assert!(sleep.windows(4).any(|w| w == chain), "{sleep:?}");
    let read = chain_of(reader, "read", 10, 200);
    assert_eq!(read[0], "_start", "{read:?}");
    assert_eq!(read[read.len() - 2..], ["main", "read"], "{read:?}");
    // The writer thread's chain starts in its thread function, not in main.
    let wait = chain_of(writer, "clock_nanosleep", 30, 200);
    assert!(wait.contains(&"writer".to_string()), "{wait:?}");
    assert_ne!(wait[0], "[truncated]", "{wait:?}");
    assert!(!wait.contains(&"main".to_string()), "{wait:?}");
    // Every slow call of the main thread has its whole chain, the last ones too, which
    // the recorder unwinds after the process is gone; shorter calls have none.
    assert_eq!(
        scalar(
            &capture,
            &format!(
                "SELECT count(*) FROM syscalls WHERE tid = {reader} AND duration_ns >= {} \
                 AND (user_stack IS NULL OR NOT starts_with(user_stack, '_start;') \
                 OR strpos(user_stack, ';main;') = 0)",
                5 * MS
            )
        ),
        0
    );
    assert_eq!(
        scalar(
            &capture,
            &format!(
                "SELECT count(user_stack) FROM syscalls WHERE duration_ns < {}",
                5 * MS
            )
        ),
        0
    );
    // slowest-calls shows it as called_from, and Perfetto's slices carry it.
    let path = capture.to_str().unwrap();
    let read_row = slowest_read(path, reader);
    assert_eq!(read_row["called_from"], read.join(";"), "{read_row:?}");
    let slice = perfetto_read_slice(tmp.path(), path, reader);
    assert_eq!(slice["args"]["user_stack"], read.join(";"), "{slice}");

    // Without --stacks the column is there, and NULL.
    let plain = tmp.path().join("plain");
    let out = record_with(&plain, &["-q", "--sched"], &[exe.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(scalar(&plain, "SELECT count(user_stack) FROM syscalls"), 0);

    // Samples the ring has no room for are counted, and their calls have no chain: one
    // page holds no sample.
    let full = tmp.path().join("full");
    let mut command = record_command(
        &full,
        &["-q", "--stacks", "--stack-min", "5ms"],
        &[exe.to_str().unwrap()],
    );
    let out = command
        .env("TRACEPOST_TEST_USER_STACK_RING", "4096")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let slow = scalar(
        &full,
        &format!(
            "SELECT count(*) FROM syscalls WHERE duration_ns >= {} AND syscall <> 'execve'",
            5 * MS
        ),
    );
    assert!(slow >= 4, "{slow}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("user stacks not sent: {slow} ")),
        "{slow}: {stderr}"
    );
    assert_eq!(scalar(&full, "SELECT count(user_stack) FROM syscalls"), 0);
}

/// A traced program chooses its own binaries: one whose unwind tables pass 32 MiB (here
/// a 40 MiB `.debug_frame`, and no `.eh_frame`) is not unwound, rather than kept in root's
/// recorder (README, "what --stacks reads and keeps"). The same program as built names
/// `main` in every slow call's chain (the test above).
#[test]
fn a_binary_with_tables_past_the_bound_is_not_kept() {
    if !bpf_available("a_binary_with_tables_past_the_bound_is_not_kept") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program_o2(tmp.path(), "why_slow");
    let junk = tmp.path().join("junk");
    std::fs::write(&junk, vec![0x5a; 40 << 20]).unwrap();
    let big = tmp.path().join("why_slow_big");
    let status = Command::new("objcopy")
        .args([
            "--remove-section=.eh_frame",
            "--remove-section=.eh_frame_hdr",
        ])
        .arg(format!("--add-section=.debug_frame={}", junk.display()))
        .arg(&exe)
        .arg(&big)
        .status()
        .unwrap();
    assert!(status.success());
    let capture = tmp.path().join("capture");
    let out = record_stacks(&capture, &big);
    assert!(out.status.success(), "{out:?}");
    let slow = scalar(
        &capture,
        &format!(
            "SELECT count(*) FROM syscalls WHERE duration_ns >= {}",
            5 * MS
        ),
    );
    assert!(slow > 0);
    // No chain names a frame of the program's code: its tables were not kept. Kept,
    // they named `main` and `deep_sleep` (the build before). Whether libc's frames are
    // named depends on whether the process was still there when its mappings were read,
    // after the 40 MiB file: a cold page cache makes that late.
    assert!(scalar(&capture, "SELECT count(user_stack) FROM syscalls") > 0);
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE regexp_like(user_stack, \
             '(^|;)(main|outer_sleep|middle_sleep|deep_sleep|writer)(;|$)')"
        ),
        0
    );
}

/// Runs `f` with `kernel.kptr_restrict` set to `value`, and puts it back even if `f` panics.
fn with_kptr_restrict<T>(value: &str, f: impl FnOnce() -> T) -> T {
    const KNOB: &str = "/proc/sys/kernel/kptr_restrict";
    struct Restore(String);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = std::fs::write(KNOB, &self.0);
        }
    }
    let _restore = Restore(std::fs::read_to_string(KNOB).unwrap());
    std::fs::write(KNOB, value).unwrap();
    f()
}

/// Without `--sched` the files carry none of its columns (a plain capture pays nothing for
/// them), and the analyzer reads them as NULL.
#[test]
fn without_sched_the_columns_are_not_in_the_files_and_read_as_null() {
    if !bpf_available("without_sched_the_columns_are_not_in_the_files_and_read_as_null") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    let out = record(&capture, &["/bin/true"]);
    assert!(out.status.success());
    assert!(scalar(&capture, "SELECT count(*) FROM syscalls") > 10);
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE oncpu_ns IS NOT NULL OR runq_ns IS NOT NULL \
             OR blocked_ns IS NOT NULL OR waker_tid IS NOT NULL OR waker_comm IS NOT NULL \
             OR waker_syscall IS NOT NULL OR waker_kind IS NOT NULL"
        ),
        0
    );
    // DuckDB, a reader no one here wrote, sees the columns in a --sched capture only.
    let with = tmp.path().join("with");
    let out = record_with(&with, &["-q", "--sched"], &["/bin/true"]);
    assert!(out.status.success());
    // The column names DuckDB's DESCRIBE gives, through the readers' script.
    let columns = |capture: &Path| {
        let types = read_with("duckdb", capture)["types"].clone();
        let names: Vec<String> = types.as_object().unwrap().keys().cloned().collect();
        names.join(",")
    };
    // Both at once: the plain capture's calls read as NULL beside the other's.
    let rows = query(
        &[&capture, &with],
        "SELECT capture, count(*) AS calls, count(oncpu_ns) AS split FROM syscalls \
         GROUP BY capture ORDER BY capture",
    );
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        let split = row["split"].as_i64().unwrap();
        match row["capture"].as_str().unwrap().ends_with("with") {
            true => assert_eq!(split, row["calls"].as_i64().unwrap() - 1, "{row:?}"),
            false => assert_eq!(split, 0, "{row:?}"),
        }
    }
    // off-cpu cannot answer for a plain capture, and says so rather than answering that
    // nothing waited; the report leaves its finding out.
    let path = capture.to_str().unwrap();
    let refused = analyze(&["query", path, "off-cpu"]);
    assert_eq!(refused.status.code(), Some(1));
    assert_eq!(
        one_error_line(&refused),
        "error: query `off-cpu` needs a capture recorded with `record --sched`: no call here \
         has its time split (recorded without it, or narrowed to calls that lack it)"
    );
    let report = tmp.path().join("plain.md");
    assert!(
        analyze(&["report", path, "-o", report.to_str().unwrap()])
            .status
            .success()
    );
    assert!(
        !std::fs::read_to_string(&report)
            .unwrap()
            .contains("Why slow")
    );
    // With a capture that has the split, the answer is of that one, and the plain one is
    // named as left out rather than read as one where nothing waited.
    let slept = tmp.path().join("slept");
    let out = record_with(&slept, &["-q", "--sched"], &["sleep", "0.05"]);
    assert!(out.status.success());
    let with_path = slept.to_str().unwrap();
    let both = analyze(&["query", path, with_path, "off-cpu", "--format", "json"]);
    assert!(both.status.success(), "{both:?}");
    assert_eq!(
        String::from_utf8_lossy(&both.stderr).trim_end(),
        format!(
            "warning: capture {path}: no call has its time split (recorded without `record \
             --sched`, or narrowed to calls that lack it): query `off-cpu` answers for the \
             other captures only"
        )
    );
    let rows: serde_json::Value = serde_json::from_slice(&both.stdout).unwrap();
    let rows = rows.as_array().unwrap();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r["capture"] == with_path), "{rows:?}");
    let report = tmp.path().join("both.md");
    assert!(
        analyze(&["report", path, with_path, "-o", report.to_str().unwrap()])
            .status
            .success()
    );
    let report = std::fs::read_to_string(&report).unwrap();
    assert!(report.contains("Why slow"), "{report}");
    assert!(
        report.contains(&format!(
            "Capture `{path}` is not in it: no call has its time split (recorded without \
             `record --sched`, or narrowed to calls that lack it)."
        )),
        "{report}"
    );
    // A name with a backtick in it stays one code span, in Markdown as in HTML: before,
    // it ended the span and made code of the rest of the note.
    let odd = tmp.path().join("plain`one");
    let copied = std::process::Command::new("cp")
        .arg("-a")
        .arg(&capture)
        .arg(&odd)
        .status();
    assert!(copied.unwrap().success());
    let odd = odd.to_str().unwrap();
    for (file, span) in [
        ("odd.md", format!("``{odd}``")),
        ("odd.html", format!("<code>{odd}</code>")),
    ] {
        let report = tmp.path().join(file);
        let out = analyze(&["report", odd, with_path, "-o", report.to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
        let report = std::fs::read_to_string(&report).unwrap();
        assert!(
            report.contains(&format!(
                "Capture {span} is not in it: no call has its time"
            )),
            "{report}"
        );
    }
    let plain = columns(&capture);
    // Continued with --sched, the plain capture holds files of both kinds: analyze reads
    // the old calls as NULL, and DuckDB reads the directory with union_by_name (README).
    let out = record_with(&capture, &["-q", "--sched"], &["/bin/true"]);
    assert!(out.status.success());
    // And record says so: pandas kept the first file's columns without a word (helper-88).
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        format!(
            "warning: output {}: its last run was recorded without --sched and this one is \
             with it, so its syscalls files have two sets of columns: analyze reads them all, \
             DuckDB needs read_parquet(..., union_by_name = true), and pandas or pyarrow a \
             schema that holds both",
            capture.display()
        )
    );
    let calls = scalar(&capture, "SELECT count(*) FROM syscalls");
    let split = scalar(&capture, "SELECT count(oncpu_ns) FROM syscalls");
    assert!(split > 10 && split < calls, "{split} of {calls}");
    let duck = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            "import duckdb, sys; print(duckdb.sql(f\"SELECT count(*), count(oncpu_ns) FROM \
             read_parquet('{sys.argv[1]}/syscalls/*.parquet', union_by_name = true)\").fetchall()[0])",
        )
        .arg(&capture)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&duck.stdout).trim(),
        format!("({calls}, {split})"),
        "{}",
        String::from_utf8_lossy(&duck.stderr)
    );
    assert!(
        plain.contains("fd_path") && !plain.contains("oncpu_ns"),
        "{plain}"
    );
    let sched = columns(&with);
    for column in [
        "oncpu_ns",
        "runq_ns",
        "blocked_ns",
        "woken_ts_ns",
        "waker_pid",
        "waker_tid",
        "waker_comm",
        "waker_syscall",
        "waker_kind",
    ] {
        assert!(sched.contains(column), "{sched}");
    }
}

/// With the filters: only the slow calls named by `-e` are rows, each with its split and
/// its waker, as without them.
#[test]
fn sched_splits_the_calls_that_filters_keep() {
    if !bpf_available("sched_splits_the_calls_that_filters_keep") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program_o2(tmp.path(), "why_slow");
    let capture = tmp.path().join("capture");
    let out = record_with(
        &capture,
        &[
            "-q",
            "--sched",
            "--min-duration",
            "15ms",
            "-e",
            "read,clock_nanosleep,sched_yield",
        ],
        &[exe.to_str().unwrap()],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t = tids(&out.stdout);
    let (reader, writer) = (t["reader"], t["writer"]);
    let rows = query(
        &[&capture],
        "SELECT tid, syscall, waker_tid, waker_kind, duration_ns, oncpu_ns, runq_ns, blocked_ns \
         FROM syscalls ORDER BY ts_ns",
    );
    let of = |tid: i64, syscall: &str| -> Vec<&BTreeMap<String, Value>> {
        rows.iter()
            .filter(|r| r["tid"] == tid && r["syscall"] == syscall)
            .collect()
    };
    // Every row the filters kept took 15 ms or more, and is one of the program's waits.
    for r in &rows {
        assert!(int(r, "duration_ns") >= 15 * MS, "{r:?}\n{rows:?}");
        let call = r["syscall"].as_str().unwrap_or_default();
        assert!(
            (r["tid"] == reader || r["tid"] == writer)
                && ["read", "clock_nanosleep", "sched_yield"].contains(&call),
            "{r:?}\n{rows:?}"
        );
    }
    // The read, woken by the writer's write.
    let read = of(reader, "read");
    assert_eq!(read.len(), 1, "{rows:?}");
    assert_eq!(read[0]["waker_tid"], json!(writer), "{rows:?}");
    assert_eq!(read[0]["waker_kind"], "thread", "{rows:?}");
    assert_eq!(
        int(read[0], "oncpu_ns") + int(read[0], "runq_ns") + int(read[0], "blocked_ns"),
        int(read[0], "duration_ns"),
        "{rows:?}"
    );
    // The writer's 40 ms sleep (which may begin before the read), and the reader's 20 ms
    // sleep. The reader's later 10 ms sleep is kept only when waiting for the CPU that the
    // spinner holds made it 15 ms.
    let writer_sleeps = of(writer, "clock_nanosleep");
    assert_eq!(writer_sleeps.len(), 1, "{rows:?}");
    assert_slept(writer_sleeps[0], 40);
    let sleeps = of(reader, "clock_nanosleep");
    assert!((1..=2).contains(&sleeps.len()), "{rows:?}");
    assert_slept(sleeps[0], 20);
    if let Some(ten) = sleeps.get(1) {
        assert_slept(ten, 10);
        assert!(int(ten, "runq_ns") >= 4 * MS, "{ten:?}");
    }
    // The yields are kept only when the machine's load kept them from the CPU for 15 ms:
    // they waited, and never blocked.
    for y in of(reader, "sched_yield") {
        assert_eq!(int(y, "blocked_ns"), 0, "{y:?}");
        assert!(int(y, "runq_ns") >= 14 * MS, "{y:?}");
        assert_eq!(y["waker_kind"], Value::Null, "{y:?}");
    }
}

/// `readelf -n`'s GNU build ID of `file`, in hex: binutils' reading, not ours.
fn readelf_build_id(file: &Path) -> String {
    let out = Command::new("readelf")
        .arg("-n")
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("Build ID: "))
        .unwrap_or_else(|| panic!("no build ID: {text}"))
        .trim()
        .to_string()
}

/// The debug file's place under a debug directory, as gdb and Debian lay it out.
fn build_id_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(".build-id")
        .join(&id[..2])
        .join(format!("{}.debug", &id[2..]))
}

fn run(program: &str, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(out.status.success(), "{program}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A stripped program's frames carry its binary, address and build ID; `--debug-dir` names
/// them from its debug file, found by that ID, as gdb and perf would. Checked against
/// binutils: `readelf` for the ID, `addr2line` for each address's function.
#[test]
fn debug_dirs_name_the_frames_of_a_stripped_program() {
    if !bpf_available("debug_dirs_name_the_frames_of_a_stripped_program") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let built = tmp.path().join("built");
    std::fs::create_dir(&built).unwrap();
    let full = build_program_o2(&built, "why_slow");
    // As a distribution ships it: the symbols in a separate debug file, the binary
    // stripped of them.
    let debug_file = tmp.path().join("why_slow.debug");
    let exe = tmp.path().join("why_slow");
    run(
        "objcopy",
        &[
            "--only-keep-debug".as_ref(),
            full.as_os_str(),
            debug_file.as_os_str(),
        ],
    );
    run(
        "strip",
        &[
            "--strip-all".as_ref(),
            "-o".as_ref(),
            exe.as_os_str(),
            full.as_os_str(),
        ],
    );
    let id = readelf_build_id(&exe);
    assert_eq!(readelf_build_id(&debug_file), id);

    let capture = tmp.path().join("capture");
    let out = record_stacks(&capture, &exe);
    assert!(out.status.success(), "{out:?}");
    let reader = tids(&out.stdout)["reader"];
    let sleep_of = |flags: &[&str]| -> Vec<String> {
        let mut args = vec!["query", capture.to_str().unwrap()];
        args.extend_from_slice(flags);
        let sql = format!(
            "SELECT user_stack FROM syscalls WHERE tid = {reader} \
             AND syscall = 'clock_nanosleep' AND duration_ns BETWEEN {} AND {} \
             ORDER BY ts LIMIT 1",
            19 * MS,
            30 * MS
        );
        args.push(&sql);
        let rows = analyze_json(&args);
        assert_eq!(rows.len(), 1, "{rows:?}");
        let chain = rows[0]["user_stack"].as_str().unwrap().to_string();
        chain.split(';').map(str::to_string).collect()
    };

    // On the host, the program's own frames have no name: each says where it is, and
    // addr2line over the debug file names each as the unstripped build would.
    let raw = sleep_of(&[]);
    let ours: Vec<&String> = raw
        .iter()
        .filter(|f| f.starts_with("[why_slow+0x"))
        .collect();
    assert!(ours.len() >= 5, "{raw:?}");
    let mut named_by_binutils = Vec::new();
    for f in &ours {
        let (place, frame_id) = f[1..f.len() - 1].split_once(' ').unwrap();
        assert_eq!(frame_id, id, "{f}");
        let address = place.strip_prefix("why_slow+").unwrap();
        let line = run(
            "addr2line",
            &[
                "-f".as_ref(),
                "-e".as_ref(),
                debug_file.as_os_str(),
                address.as_ref(),
            ],
        );
        named_by_binutils.push(line.lines().next().unwrap().to_string());
    }
    assert_eq!(
        named_by_binutils,
        [
            "_start",
            "main",
            "outer_sleep",
            "middle_sleep",
            "deep_sleep"
        ],
        "{raw:?}"
    );

    // A debug file of another build at this ID's place names nothing.
    let dbg = tmp.path().join("debug");
    let place = build_id_path(&dbg, &id);
    std::fs::create_dir_all(place.parent().unwrap()).unwrap();
    let other = build_program_o2(tmp.path(), "ground_truth");
    std::fs::copy(&other, &place).unwrap();
    let dir_flag = ["--debug-dir", dbg.to_str().unwrap()];
    assert_eq!(sleep_of(&dir_flag), raw);

    // Its own debug file names every frame of the program, in order.
    std::fs::copy(&debug_file, &place).unwrap();
    let named = sleep_of(&dir_flag);
    assert_eq!(named.len(), raw.len(), "{named:?}");
    assert_eq!(named[0], "_start", "{named:?}");
    let chain = ["main", "outer_sleep", "middle_sleep", "deep_sleep"].map(String::from);
    assert!(named.windows(4).any(|w| w == chain), "{named:?}");
    assert!(
        !named.iter().any(|f| f.starts_with("[why_slow")),
        "{named:?}"
    );

    // glibc's internals, with Debian's own debug file (libc6-dbg) from /usr/lib/debug.
    let libc = raw
        .iter()
        .find(|f| f.starts_with("[libc.so.6+0x"))
        .unwrap_or_else(|| panic!("{raw:?}"));
    let libc_id = libc[1..libc.len() - 1].split_once(' ').unwrap().1;
    let system = Path::new("/usr/lib/debug");
    if build_id_path(system, libc_id).exists() {
        let both = sleep_of(&[
            "--debug-dir",
            dbg.to_str().unwrap(),
            "--debug-dir",
            "/usr/lib/debug",
        ]);
        assert_eq!(
            both[..3],
            ["_start", "__libc_start_main", "__libc_start_call_main"],
            "{both:?}"
        );
    } else {
        assert!(
            std::env::var("CI").is_err(),
            "CI needs libc6-dbg for libc {libc_id} (dev/setup --test installs it)"
        );
    }

    // The canned queries see the names: off-cpu's grouping by the chain, and why-slow's
    // called_from.
    let path = capture.to_str().unwrap();
    let off = analyze_json(&[
        "query",
        path,
        "off-cpu",
        "--debug-dir",
        dbg.to_str().unwrap(),
    ]);
    let sleep_row = off
        .iter()
        .find(|r| {
            r["tid"] == reader
                && r["syscall"] == "clock_nanosleep"
                && r["called_from"]
                    .as_str()
                    .is_some_and(|c| c.contains(";outer_sleep;"))
        })
        .unwrap_or_else(|| panic!("{off:?}"));
    assert_eq!(sleep_row["calls"], 1, "{sleep_row:?}");
    let why = analyze_json(&[
        "query",
        path,
        "why-slow",
        "--param",
        "limit=40",
        "--debug-dir",
        dbg.to_str().unwrap(),
    ]);
    let read = why
        .iter()
        .find(|r| r["tid"] == reader && r["syscall"] == "read")
        .unwrap_or_else(|| panic!("{why:?}"));
    assert_eq!(read["idle_wait"], true, "{read:?}");
    assert!(
        read["called_from"]
            .as_str()
            .unwrap()
            .ends_with(";main;read"),
        "{read:?}"
    );
    // Work of at least 1 ms comes first: the yields, each waiting for the CPU a spinner
    // holds. Then the rest, slowest first: the read and the sleeps before the start-up
    // calls of microseconds.
    let ns = |r: &BTreeMap<String, Value>| r["duration_ns"].as_i64().unwrap();
    let rest = why
        .iter()
        .position(|r| r["idle_wait"] == true || ns(r) < MS)
        .unwrap();
    // Other work can pass 1 ms on a busy machine (a madvise took 2.5 ms once): the
    // yields must be there, not alone.
    assert!(
        why[..rest].iter().any(|r| r["syscall"] == "sched_yield"),
        "{why:?}"
    );
    let work = |r: &BTreeMap<String, Value>| r["idle_wait"] == false && ns(r) >= MS;
    assert!(!why[rest..].iter().any(work), "{why:?}");
    for part in [&why[..rest], &why[rest..]] {
        assert!(part.windows(2).all(|w| ns(&w[0]) >= ns(&w[1])), "{why:?}");
    }
    assert_eq!(why[rest]["idle_wait"], true, "{why:?}");

    // The report's section for its worst calls, the yields first, with the names.
    let report = tmp.path().join("report.md");
    let out = analyze(&[
        "report",
        path,
        "--debug-dir",
        dbg.to_str().unwrap(),
        "-o",
        report.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&report).unwrap();
    let section = &text[text.find("Why slow: the worst calls").expect("the section")..];
    assert!(section.contains("| why_slow | sched_yield |"), "{section}");
    assert!(!section.contains("[why_slow+"), "{section}");

    // A directory without a .build-id directory names nothing, and says so.
    let out = analyze(&[
        "query",
        path,
        "--debug-dir",
        tmp.path().to_str().unwrap(),
        "SELECT 1",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "warning: --debug-dir {}: no .build-id directory in it; debug files are found as \
             DIR/.build-id/xx/rest-of-id.debug",
            tmp.path().display()
        )
    );

    // A directory that is not there is named, not ignored; a cluster cannot use one.
    let missing = tmp.path().join("no-such-dir");
    let out = analyze(&[
        "query",
        path,
        "slowest-calls",
        "--debug-dir",
        missing.to_str().unwrap(),
    ]);
    assert_eq!(
        one_error_line(&out),
        format!(
            "error: --debug-dir {}: No such file or directory (os error 2)",
            missing.display()
        )
    );
    let out = analyze(&[
        "query",
        path,
        "slowest-calls",
        "--debug-dir",
        dbg.to_str().unwrap(),
        "--cluster",
        "127.0.0.1:1",
    ]);
    assert!(one_error_line(&out).contains("--debug-dir"), "{out:?}");
}

/// The unwinder reads binaries, and one on a hung network file system blocks that read for
/// as long as the server is gone. Recording must not stop with it: the capture thread
/// waits only a little for the unwinder, every call is still recorded, the calls whose
/// chain came too late are counted, and `record` ends on time. A pause before each sample
/// (`TRACEPOST_TEST_UNWIND_DELAY_MS`) stands in for the hung read.
#[test]
fn a_stuck_unwinder_costs_chains_not_calls() {
    if !bpf_available("a_stuck_unwinder_costs_chains_not_calls") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program_o2(tmp.path(), "why_slow");
    let slow = |capture: &Path| {
        scalar(
            capture,
            &format!(
                "SELECT count(*) FROM syscalls WHERE duration_ns >= {} AND syscall <> 'execve'",
                5 * MS
            ),
        )
    };
    let run_on = |exe: &Path, name: &str, delay_ms: &str| {
        let capture = tmp.path().join(name);
        let mut command = record_command(
            &capture,
            &["-q", "--stacks", "--stack-min", "5ms"],
            &[exe.to_str().unwrap()],
        );
        let started = std::time::Instant::now();
        let out = command
            .env("TRACEPOST_TEST_UNWIND_DELAY_MS", delay_ms)
            .output()
            .unwrap();
        (capture, out, started.elapsed())
    };

    let run = |name: &str, delay_ms: &str| run_on(&exe, name, delay_ms);
    let warned = |stderr: &[u8]| -> i64 {
        let text = String::from_utf8_lossy(stderr);
        text.split("not unwound in time: ")
            .nth(1)
            .map_or(0, |rest| rest.split(' ').next().unwrap().parse().unwrap())
    };

    // Slow, but within what a pass waits for: every chain is there.
    let (capture, out, _) = run("slow", "50");
    assert!(out.status.success(), "{out:?}");
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = slow(&capture);
    assert!(calls >= 4, "{calls}");
    assert_eq!(
        scalar(&capture, "SELECT count(user_stack) FROM syscalls"),
        calls
    );

    // Stuck for ten minutes a sample: the capture ends on time with every call, the 20
    // yields and the pipe read among them, and counts each chain it could not give.
    let (capture, out, took) = run("stuck", "600000");
    assert!(out.status.success(), "{out:?}");
    assert!(took < std::time::Duration::from_secs(20), "{took:?}");
    let late = slow(&capture);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim(),
        format!(
            "warning: --stacks: user stacks not unwound in time: {late} (the unwinder fell \
             behind); those calls have no user_stack"
        )
    );
    assert_eq!(
        scalar(&capture, "SELECT count(user_stack) FROM syscalls"),
        0
    );
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE syscall = 'sched_yield'"
        ),
        20
    );
    assert_eq!(
        scalar(
            &capture,
            &format!(
                "SELECT count(*) FROM syscalls WHERE syscall = 'read' AND duration_ns > {}",
                30 * MS
            )
        ),
        1
    );
    assert_eq!(scalar(&capture, "SELECT lost_events FROM capture"), 0);

    // Behind by 150 ms a sample while another thread's calls keep the writer writing
    // rows: the slow calls' rows are written before their chains come, and the warning
    // counts exactly the calls left without one.
    let busy = build_program_o2(tmp.path(), "sleeps_among_calls");
    let (capture, out, _) = run_on(&busy, "busy", "150");
    assert!(out.status.success(), "{out:?}");
    let without = scalar(
        &capture,
        &format!(
            "SELECT count(*) FROM syscalls WHERE duration_ns >= {} AND syscall <> 'execve' \
             AND user_stack IS NULL",
            5 * MS
        ),
    );
    assert!(without > 0, "the unwinder never fell behind");
    assert_eq!(
        warned(&out.stderr),
        without,
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(scalar(&capture, "SELECT lost_events FROM capture"), 0);
}

/// A binary on a FUSE mount whose server stops answering, as a network file system's does
/// when its server is gone: a read of it would block the unwinder in the kernel, where no
/// signal reaches it, and a process cannot exit while one of its threads is there. `record`
/// reads no binary on such a mount (`tests/programs/hang_fs.py` serves this one), so it
/// ends on time, and the chains through the program are marked cut.
#[test]
fn a_binary_on_a_hung_fuse_mount_does_not_hold_record() {
    if !bpf_available("a_binary_on_a_hung_fuse_mount_does_not_hold_record") {
        return;
    }
    binary_on_a_hung_mount(false);
}

/// The same binary seen through an overlay whose lower layer is that FUSE mount, as
/// lazy-pulled container images are: the mapping names the overlay's device, which is not
/// known to be local, so a helper process reads it, and is left behind when it hangs.
#[test]
fn a_binary_on_an_overlay_over_hung_fuse_does_not_hold_record() {
    if !bpf_available("a_binary_on_an_overlay_over_hung_fuse_does_not_hold_record") {
        return;
    }
    binary_on_a_hung_mount(true);
}

fn binary_on_a_hung_mount(overlay: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("late.c");
    std::fs::write(
        &src,
        "#include <fcntl.h>\n#include <time.h>\n#include <unistd.h>\n\
         int main(int argc, char **argv) { struct timespec a = {0, 800000000}, \
         b = {0, 20000000}; close(open(argv[1], O_CREAT | O_WRONLY, 0600)); \
         nanosleep(&a, 0); for (int i = 0; i < 5; i++) nanosleep(&b, 0); return 0; }\n",
    )
    .unwrap();
    let exe = tmp.path().join("late");
    run(
        "cc",
        &[
            "-O2".as_ref(),
            "-o".as_ref(),
            exe.as_os_str(),
            src.as_os_str(),
        ],
    );
    let mnt = tmp.path().join("mnt");
    let flag = tmp.path().join("HANG");
    // Whatever happens below, the server goes (which fails its pending requests) and the
    // mount with it.
    let Some(_mounted) = HangFs::mount(&mnt, &exe, &flag, None) else {
        return;
    };
    let dir = if overlay {
        let (ov, up, work) = (
            tmp.path().join("ov"),
            tmp.path().join("up"),
            tmp.path().join("work"),
        );
        for d in [&ov, &up, &work] {
            std::fs::create_dir(d).unwrap();
        }
        let options = format!(
            "lowerdir={},upperdir={},workdir={}",
            mnt.display(),
            up.display(),
            work.display()
        );
        run(
            "mount",
            &[
                "-t".as_ref(),
                "overlay".as_ref(),
                "overlay".as_ref(),
                "-o".as_ref(),
                options.as_ref(),
                ov.as_os_str(),
            ],
        );
        ov
    } else {
        mnt.clone()
    };
    struct UnmountOverlay(Option<PathBuf>);
    impl Drop for UnmountOverlay {
        fn drop(&mut self) {
            if let Some(ov) = &self.0 {
                let _ = Command::new("umount").arg("-l").arg(ov).status();
            }
        }
    }
    let _overlay = UnmountOverlay(overlay.then(|| dir.clone()));

    let capture = tmp.path().join("capture");
    let running = tmp.path().join("running");
    let prog = dir.join("prog");
    let mut record = record_command(
        &capture,
        &["-q", "--stacks", "--stack-min", "5ms"],
        &[prog.to_str().unwrap(), running.to_str().unwrap()],
    );
    let started = std::time::Instant::now();
    let mut child = record
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the program runs (it makes `running`, then sleeps), the mount answers nothing.
    while !running.exists() {
        assert!(
            started.elapsed().as_secs() < 10,
            "the program did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    std::fs::write(&flag, "").unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            panic!("record has not ended 30 s after it began");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    // All six sleeps, each with the part of its chain that was read: libc, then the cut.
    let rows = query(
        &[&capture],
        &format!(
            "SELECT user_stack FROM syscalls WHERE syscall = 'clock_nanosleep' \
             AND duration_ns >= {}",
            5 * MS
        ),
    );
    assert_eq!(rows.len(), 6, "{rows:?}");
    // Through the overlay, the helper is given up on after 2 s without an answer, and
    // the calls whose rows were written meanwhile have no chain, counted in the warning.
    let mut without = 0;
    for r in &rows {
        let Some(chain) = r["user_stack"].as_str() else {
            assert!(overlay, "{rows:?}");
            without += 1;
            continue;
        };
        assert!(chain.starts_with("[truncated];"), "{chain}");
        assert!(chain.ends_with(";clock_nanosleep"), "{chain}");
    }
    let stderr = String::from_utf8_lossy(&child.wait_with_output().unwrap().stderr).into_owned();
    match without {
        0 => assert!(stderr.is_empty(), "{stderr}"),
        n => assert!(
            stderr.contains(&format!("not unwound in time: {n} ")),
            "{n}: {stderr}"
        ),
    }
}
