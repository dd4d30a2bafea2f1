//! The same programs under strace and under `record`: calls and errors per syscall must
//! match exactly. strace is the oracle no one here wrote.
use std::process::Command;

use tracepost_e2e::{
    bpf_available, build_program, build_program_m32, calls_and_errors, parse_strace_summary, query,
    record, strace_counts,
};

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

/// A seccomp filter answers some calls itself (EPERM, a value, a trap), as a container's
/// or a service's profile does: the kernel stops them before the entry hook. They left no
/// row and no count (helper-95); each is now a row, as strace shows it.
#[test]
fn calls_a_seccomp_filter_answers_match_strace() {
    let tmp = tempfile::tempdir().unwrap();
    let program = build_program(tmp.path(), "seccomp_refuses");
    let program = program.to_str().unwrap();
    compare_with_strace("calls_a_seccomp_filter_answers_match_strace", &[program]);
    // A 32-bit program's calls come through the compat entry, numbered as i386 numbers them.
    let program32 = build_program_m32(tmp.path(), "seccomp_refuses");
    compare_with_strace(
        "calls_a_seccomp_filter_answers_match_strace",
        &[program32.to_str().unwrap()],
    );
    if !bpf_available("calls_a_seccomp_filter_answers_match_strace") {
        return;
    }
    let capture = tmp.path().join("capture");
    let out = record(&capture, &[program]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "-3 0 208 2\n");
    let rows = query(
        &[&capture],
        "SELECT syscall, ret, errno, min(duration_ns) AS shortest, \
         max(duration_ns) AS longest, count(*) AS calls FROM syscalls \
         WHERE syscall IN ('getuid', 'getppid', 'getgid') GROUP BY 1, 2, 3 ORDER BY 1",
    );
    let rows: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {}-{} x{}",
                r["syscall"], r["ret"], r["errno"], r["shortest"], r["longest"], r["calls"]
            )
        })
        .collect();
    // Not run, so no time: the filter answered at entry.
    assert_eq!(
        rows,
        [
            "\"getgid\" 104 null 0-0 x2",
            "\"getppid\" 0 null 0-0 x5",
            "\"getuid\" -1 \"EPERM\" 0-0 x3",
        ]
    );
}

/// A handler that interrupts a blocking read returns through sigreturn, which gives back
/// the read's EINTR. In a 32-bit task the kernel restores that return zero-extended, and it
/// was recorded as 4294967292, a success, where strace shows `-1 EINTR` (helper-99).
#[test]
fn a_signal_return_that_gives_back_an_error_is_that_error() {
    let tmp = tempfile::tempdir().unwrap();
    let programs = [
        (build_program(tmp.path(), "sigreturn_eintr"), "rt_sigreturn"),
        (
            build_program_m32(tmp.path(), "sigreturn_eintr"),
            "sigreturn",
        ),
    ];
    for (program, _) in &programs {
        compare_with_strace(
            "a_signal_return_that_gives_back_an_error_is_that_error",
            &[program.to_str().unwrap()],
        );
    }
    if !bpf_available("a_signal_return_that_gives_back_an_error_is_that_error") {
        return;
    }
    for (i, (program, name)) in programs.iter().enumerate() {
        let capture = tmp.path().join(format!("capture-{i}"));
        let out = record(&capture, &[program.to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
        let rows = query(
            &[&capture],
            "SELECT syscall, ret, errno FROM syscalls WHERE syscall LIKE '%sigreturn'",
        );
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0]["syscall"], *name, "{rows:?}");
        assert_eq!(rows[0]["ret"], -4, "{rows:?}");
        assert_eq!(rows[0]["errno"], "EINTR", "{rows:?}");
        // --failed keeps it, as a failure.
        let failed = tmp.path().join(format!("failed-{i}"));
        let out =
            tracepost_e2e::record_with(&failed, &["-q", "--failed"], &[program.to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            tracepost_e2e::scalar(
                &failed,
                &format!(
                    "SELECT count(*) FROM syscalls WHERE syscall = '{name}' AND errno = 'EINTR'"
                )
            ),
            1
        );
    }
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

/// A 32-bit (ia32) program: its calls are numbered from the i386 table (3 is `read` there,
/// `close` on x86_64), and strace names them so. Built with `cc -m32` (gcc-multilib, which
/// dev/setup --test installs). Its threads' futex calls depend on timing, so they are left
/// out; every other call and error must match.
#[test]
fn a_32_bit_program_matches_strace() {
    if !bpf_available("a_32_bit_program_matches_strace") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program_m32(tmp.path(), "ground_truth");
    let command = [exe.to_str().unwrap()];
    Command::new(command[0]).output().unwrap();
    // ground_truth exits with 7, which strace_counts would take for a failure.
    let summary = tmp.path().join("strace.txt");
    let traced = Command::new("strace")
        .args(["-f", "-c", "-o"])
        .arg(&summary)
        .arg(&exe)
        .output()
        .unwrap();
    assert_eq!(traced.status.code(), Some(7), "{traced:?}");
    let mut want = parse_strace_summary(&std::fs::read_to_string(&summary).unwrap());
    let capture = tmp.path().join("capture");
    let out = record(&capture, &command);
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got = calls_and_errors(&capture, "");
    for timing in ["futex", "exit", "exit_group"] {
        got.remove(timing);
        want.remove(timing);
    }
    // Named from the i386 table: x86_64's would call these close, stat and socket.
    assert_eq!(got["read"], (5, 0), "{got:?}");
    assert_eq!(got["getppid"], (1000, 0), "{got:?}");
    assert!(got.contains_key("mmap2"), "{got:?}");
    // Paths and bytes, as for the x86_64 calls of the same names.
    let paths = tracepost_e2e::query(
        &[&capture],
        "SELECT syscall, path, count(*) AS n FROM syscalls \
         WHERE syscall IN ('chdir', 'mkdir') GROUP BY 1, 2 ORDER BY 1",
    );
    assert_eq!(paths.len(), 2, "{paths:?}");
    assert_eq!(paths[0]["path"], "/nonexistent/tracepost", "{paths:?}");
    assert_eq!(paths[1]["path"], "/", "{paths:?}");
    let opened = tracepost_e2e::scalar(
        &capture,
        "SELECT count(*) FROM syscalls WHERE syscall = 'openat' AND path IN ('/dev/null', '/dev/zero')",
    );
    assert_eq!(opened, 2);
    assert_eq!(
        tracepost_e2e::scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE syscall = 'write' \
             AND (bytes IS NULL OR bytes <> ret)"
        ),
        0
    );
    // The fd of each call that takes one in argument 0, as x86_64's calls have it; never
    // a name for it, since a 32-bit task's opens and closes are not followed.
    let fds = tracepost_e2e::query(
        &[&capture],
        "SELECT count(*) AS calls, count(fd) FILTER (WHERE fd = CAST(arg0 AS INT)) AS fds, \
                count(fd_path) AS named \
         FROM syscalls WHERE syscall IN ('read', 'write', 'close')",
    );
    assert!(fds[0]["calls"].as_i64() > Some(5), "{fds:?}");
    assert_eq!(fds[0]["fds"], fds[0]["calls"], "{fds:?}");
    assert_eq!(fds[0]["named"], 0, "{fds:?}");
    assert_eq!(got, want, "record (left) vs strace -f -c (right)");

    // -e names x86_64 calls, and keeps the 32-bit calls of those names.
    let only = tmp.path().join("only");
    let out = tracepost_e2e::record_with(&only, &["-q", "-e", "getppid"], &command);
    assert_eq!(out.status.code(), Some(7), "{out:?}");
    let kept = calls_and_errors(&only, "");
    assert_eq!(
        kept.into_iter().collect::<Vec<_>>(),
        [("getppid".to_string(), (1000, 0))]
    );
    // i386-only names are not -e's (README).
    let refused =
        tracepost_e2e::record_with(&tmp.path().join("no"), &["-q", "-e", "mmap2"], &command);
    assert_eq!(refused.status.code(), Some(2), "{refused:?}");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("-e: unknown syscall or class `mmap2`"),
        "{refused:?}"
    );
}

/// A call a signal interrupts ends with the kernel's own restart code, which strace
/// names (`= ? ERESTART_RESTARTBLOCK (Interrupted by signal)`) and the README promises:
/// `sleep` killed by `timeout`'s SIGTERM in its `clock_nanosleep`.
#[test]
fn a_call_a_signal_interrupts_has_the_restart_code_strace_shows() {
    if !bpf_available("a_call_a_signal_interrupts_has_the_restart_code_strace_shows") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let command = ["timeout", "-s", "TERM", "0.3", "sleep", "5"];
    let log = tmp.path().join("strace.txt");
    let traced = Command::new("strace")
        .args(["-f", "-o"])
        .arg(&log)
        .args(command)
        .output()
        .unwrap();
    assert_eq!(traced.status.code(), Some(124), "{traced:?}");
    let log = std::fs::read_to_string(&log).unwrap();
    let want: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("nanosleep") && l.contains("= ? ERESTART"))
        .filter_map(|l| l.split("= ? ").nth(1)?.split(' ').next())
        .collect();
    assert_eq!(want, ["ERESTART_RESTARTBLOCK"], "{log}");

    let capture = tmp.path().join("capture");
    let out = tracepost_e2e::record_with(&capture, &["-q"], &command);
    assert_eq!(out.status.code(), Some(124), "{out:?}");
    let rows = tracepost_e2e::query(
        &[&capture],
        "SELECT syscall, ret, errno FROM syscalls \
         WHERE comm = 'sleep' AND syscall LIKE '%nanosleep' ORDER BY ts",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["errno"], want[0], "{rows:?}");
    assert_eq!(rows[0]["ret"], -516, "{rows:?}");
    // The process's last call: the signal killed it, and it never exited by a call.
    let last = tracepost_e2e::query(
        &[&capture],
        "SELECT syscall FROM syscalls WHERE comm = 'sleep' ORDER BY ts DESC LIMIT 1",
    );
    assert_eq!(last[0]["syscall"], rows[0]["syscall"], "{last:?}");
}
