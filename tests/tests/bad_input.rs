//! Bad input gets one clear line naming the thing at fault, a non-zero exit, no panic, and
//! nothing written.
use std::{os::unix::ffi::OsStrExt as _, process::Command};

use tracepost_e2e::{analyze_in, analyze_query, bin, bpf_available, record};

/// The single `error: ...` line, after checking there is exactly one and no panic.
fn one_error_line(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    assert!(!text.contains("panicked"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {text}");
    assert!(lines[0].starts_with("error: "), "{text}");
    lines[0].to_string()
}

#[test]
fn analyze_names_a_missing_or_foreign_capture() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let out = analyze_query(&[&missing], "SELECT 1", "table");
    assert_eq!(out.status.code(), Some(1));
    let line = one_error_line(&out.stderr);
    assert!(
        line.contains(&format!("capture {}: no such directory", missing.display())),
        "{line}"
    );

    let out = analyze_query(&[tmp.path()], "SELECT 1", "table");
    assert_eq!(out.status.code(), Some(1));
    let line = one_error_line(&out.stderr);
    assert!(line.contains("no syscalls data"), "{line}");

    // What a `record` killed as it started leaves: its lock and empty table directories.
    let killed = tmp.path().join("killed");
    for table in ["syscalls", "processes", "aggregates", "capture"] {
        std::fs::create_dir_all(killed.join(table)).unwrap();
    }
    std::fs::write(killed.join(".record.lock"), "4242\n").unwrap();
    let out = analyze_query(&[&killed], "SELECT 1", "table");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_error_line(&out.stderr),
        format!(
            "error: capture {}: its recorder wrote no file (killed as it started, or \
             starting now): nothing to read",
            killed.display()
        )
    );
}

#[test]
fn record_refuses_bad_targets_before_writing_anything() {
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");

    // No target at all: a usage error from the argument parser.
    let out = Command::new(bin("record"))
        .arg("-o")
        .arg(&capture)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(!capture.exists());

    if !bpf_available("record_refuses_bad_targets_before_writing_anything") {
        return;
    }
    // record's own pid (a shell that execs record with -p $$).
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "exec {} -o {} -p $$",
            bin("record").display(),
            capture.display()
        ))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        one_error_line(&out.stderr)
            .ends_with("is this record itself: it cannot record its own calls"),
        "{out:?}"
    );
    assert!(!capture.exists());
    // As a shell would: 127 for a command that is not there, 126 for one that cannot run.
    let out = record(&capture, &["no-such-command-tracepost"]);
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(
        one_error_line(&out.stderr),
        "error: command not found: no-such-command-tracepost"
    );
    assert!(!capture.exists());
    // An empty name shows as one.
    let out = record(&capture, &[""]);
    assert_eq!(out.status.code(), Some(127));
    assert_eq!(one_error_line(&out.stderr), "error: command not found: ''");
    let not_executable = tmp.path().join("data.txt");
    std::fs::write(&not_executable, "not a program").unwrap();
    let out = record(&capture, &[not_executable.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(126));
    assert_eq!(
        one_error_line(&out.stderr),
        format!(
            "error: {}: not an executable file",
            not_executable.display()
        )
    );
    assert!(!capture.exists());
    // Found on PATH but not runnable: 126 too, as bash says.
    let out = Command::new(bin("record"))
        .env("PATH", tmp.path())
        .arg("-o")
        .arg(&capture)
        .args(["--", "data.txt"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(126), "{out:?}");
    assert!(!capture.exists());

    let out = Command::new(bin("record"))
        .args(["-p", "999999999", "-o"])
        .arg(&capture)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_error_line(&out.stderr),
        "error: no such process: 999999999"
    );
    assert!(!capture.exists());

    let busy = tmp.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("notes.txt"), "keep me").unwrap();
    let mode = |p: &std::path::Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).unwrap().permissions())
            & 0o7777
    };
    std::fs::set_permissions(&busy, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let out = record(&busy, &["true"]);
    assert_eq!(out.status.code(), Some(1));
    let line = one_error_line(&out.stderr);
    assert!(
        line.contains("is not empty and is not a tracepost capture"),
        "{line}"
    );
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);
    // Refused as it was found: a mistyped `-o /var/www` must not lock its readers out.
    assert_eq!(mode(&busy), 0o755);
}

/// A command the kernel will not run: the capture holds the failed execve and the exit,
/// and `record` says why in one line and exits as a shell would (126 found but not runnable, 127
/// missing). It exited 127 after a summary that read like success.
#[test]
fn a_command_that_cannot_be_executed_is_named_with_the_reason() {
    if !bpf_available("a_command_that_cannot_be_executed_is_named_with_the_reason") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let script = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        p
    };
    let no_shebang = script("no_shebang.sh", "echo hi\n");
    let bad_interp = script("bad_interp.sh", "#!/nonexistent/interp\n");
    for (program, code, why, errno) in [
        (
            &no_shebang,
            126,
            "not a program this system runs (no #! line?)",
            "ENOEXEC",
        ),
        (
            &bad_interp,
            127,
            "it, or the interpreter its #! line names, does not exist",
            "ENOENT",
        ),
    ] {
        let capture = tmp.path().join(format!("cap-{code}"));
        let out = Command::new(bin("record"))
            .arg("-q")
            .arg("-o")
            .arg(&capture)
            .arg("--")
            .arg(program)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{out:?}");
        assert_eq!(
            one_error_line(&out.stderr),
            format!("error: cannot execute {}: {why}", program.display())
        );
        // The failed execve, then the child's exit: none of the recorder's own calls (it
        // wrote the errno to a pipe, a 4-byte `write` in the capture).
        let rows = tracepost_e2e::query(
            &[&capture],
            "SELECT syscall, errno FROM syscalls ORDER BY ts_ns",
        );
        let calls: Vec<_> = rows.iter().map(|r| r["syscall"].as_str()).collect();
        assert_eq!(calls, [Some("execve"), Some("exit_group")], "{rows:?}");
        assert_eq!(rows[0]["errno"], errno);
        // The process's exit is the status record gives.
        let exit = tracepost_e2e::query(&[&capture], "SELECT exit_code FROM processes");
        assert_eq!(exit[0]["exit_code"].as_i64(), Some(code.into()), "{exit:?}");
    }
}

/// A thread id given to `-p`, and an output name that is not UTF-8: each refused in one
/// line before anything is written.
#[test]
fn a_thread_id_and_an_unreadable_output_name_are_refused() {
    if !bpf_available("a_thread_id_and_an_unreadable_output_name_are_refused") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let mut process = Command::new("python3")
        .args([
            "-c",
            "import threading,time,os\nt=threading.Thread(target=time.sleep,args=(30,))\n\
             t.start()\nprint(t.native_id, flush=True)\nt.join()",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(process.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    let tid = line.trim();
    let capture = tmp.path().join("tid");
    let out = Command::new(bin("record"))
        .args(["-p", tid, "-d", "1s", "-o"])
        .arg(&capture)
        .output()
        .unwrap();
    let _ = process.kill();
    let _ = process.wait();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_error_line(&out.stderr),
        format!(
            "error: {tid} is a thread of process {0}, not a process; give -p {0}",
            process.id()
        )
    );
    assert!(!capture.exists());
    // A kernel thread makes no calls: taken, it recorded nothing and read as idle.
    let kthread = tmp.path().join("kthread");
    let out = Command::new(bin("record"))
        .args(["-p", "2", "-d", "1s", "-o"])
        .arg(&kthread)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_error_line(&out.stderr),
        "error: 2 is a kernel thread (kthreadd): it makes no system calls to record"
    );
    assert!(!kthread.exists());

    let name = tmp.path().join(std::ffi::OsStr::from_bytes(b"nu\xff8"));
    let out = record(&name, &["true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        one_error_line(&out.stderr).ends_with(
            "the path is not UTF-8 or holds a control character, and analyze could not read a \
             capture there; choose another name"
        ),
        "{out:?}"
    );
    assert!(!name.exists());
    // A plain name under a directory that is not UTF-8, and a tab.
    let odd_dir = tmp.path().join(std::ffi::OsStr::from_bytes(b"nd\xff"));
    std::fs::create_dir(&odd_dir).unwrap();
    let out = Command::new(bin("record"))
        .args(["-q", "-o", "cap", "--", "true"])
        .current_dir(&odd_dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(one_error_line(&out.stderr).contains("not UTF-8 or holds a control character"));
    assert!(!odd_dir.join("cap").exists());
    let tab = tmp.path().join("tab\tcap");
    let out = record(&tab, &["true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(one_error_line(&out.stderr).contains("not UTF-8 or holds a control character"));
    assert!(!tab.exists());
    // A newline in the name: still one line, the newline shown as an escape.
    let newline = tmp.path().join("new\nline");
    let out = record(&newline, &["true"]);
    assert_eq!(out.status.code(), Some(1));
    let line = one_error_line(&out.stderr);
    assert!(line.contains("new\\x0aline"), "{line}");
    assert!(!newline.exists());
}

#[test]
fn record_without_privileges_says_what_it_needs() {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt};
    // A copy the unprivileged user can reach wherever the checkout lives.
    let tmp = tempfile::Builder::new()
        .prefix("tracepost-noperm")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let record = tmp.path().join("record");
    std::fs::copy(bin("record"), &record).unwrap();
    let capture = tmp.path().join("capture");
    // `record -o CAPTURE -- true` as nobody, with `caps` only.
    let as_nobody = |caps: &[&str]| {
        Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args(caps)
            .arg(&record)
            .arg("-o")
            .arg(&capture)
            .args(["--", "true"])
            .current_dir(tmp.path())
            .output()
            .expect("setpriv (util-linux)")
    };
    let out = as_nobody(&["--inh-caps=-all"]);
    assert_eq!(out.status.code(), Some(1));
    let line = one_error_line(&out.stderr);
    assert!(
        line.contains("needs root, or the capabilities CAP_BPF and CAP_PERFMON"),
        "{line}"
    );
    assert!(
        !capture.exists(),
        "nothing may be written without privileges"
    );
    // With the two capabilities it names, and tracefs closed to other users (0700 here),
    // the mount was reported as missing (helper-88).
    let closed = std::fs::metadata("/sys/kernel/tracing")
        .is_ok_and(|m| m.permissions().mode() & 0o005 == 0 && m.uid() == 0);
    if closed {
        let out = as_nobody(&["--inh-caps=+bpf,+perfmon", "--ambient-caps=+bpf,+perfmon"]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert_eq!(
            one_error_line(&out.stderr),
            "error: tracefs at /sys/kernel/tracing cannot be read by this user: run record as \
             root, or give it CAP_DAC_READ_SEARCH as well: Permission denied (os error 13)"
        );
        assert!(!capture.exists());
    }
}

#[test]
fn analyze_reports_bad_sql_in_one_line() {
    if !bpf_available("analyze_reports_bad_sql_in_one_line") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    assert!(record(&capture, &["true"]).status.success());
    for (sql, expect) in [
        ("SELEC 1", "SQL: "),
        ("SELECT nope FROM syscalls", "nope"),
        ("SELECT * FROM missing_table", "missing_table"),
        // DataFusion's own `sum` wrapped these to a negative total with exit 0: `true`
        // makes more than one `mmap`, and more than one call.
        (
            "SELECT syscall, sum(CASE WHEN pid > 0 THEN 9223372036854775000 END) \
             FROM syscalls GROUP BY syscall",
            "is past the 64-bit range",
        ),
        (
            "SELECT sum(CASE WHEN pid > 0 THEN 4611686018427387904 END) FROM syscalls",
            "is past the 64-bit range",
        ),
    ] {
        let out = analyze_query(&[&capture], sql, "table");
        assert_eq!(out.status.code(), Some(1), "{sql}");
        let line = one_error_line(&out.stderr);
        assert!(
            line.starts_with("error: SQL: ") && line.contains(expect),
            "{sql}: {line}"
        );
    }
}

/// A command's arguments are whatever bytes its caller gives: `record` passes on one that
/// is not UTF-8, as a shell would, rather than failing (or panicking) on it.
#[test]
fn record_passes_on_arguments_that_are_not_utf8() {
    if !bpf_available("record_passes_on_arguments_that_are_not_utf8") {
        return;
    }
    use std::os::unix::ffi::OsStrExt;
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(bin("record"))
        .arg("-q")
        .arg("-o")
        .arg(tmp.path().join("capture"))
        .args(["--", "/bin/echo"])
        .arg(std::ffi::OsStr::from_bytes(b"caf\xe9"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(out.stdout, b"caf\xe9\n");
}

/// A stderr that cannot be written (full, or a pipe whose reader has left) loses the
/// messages, not the exit status: a panic there turned a finished capture into status 101.
#[test]
fn a_stderr_that_cannot_be_written_does_not_change_the_exit_status() {
    let full = || {
        std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .unwrap()
    };
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(bin("analyze"))
        .args(["query"])
        .arg(tmp.path().join("nope"))
        .arg("SELECT 1")
        .stderr(full())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "a missing capture, with stderr full"
    );

    if !bpf_available("a_stderr_that_cannot_be_written_does_not_change_the_exit_status") {
        return;
    }
    let capture = tmp.path().join("capture");
    let status = Command::new(bin("record"))
        .arg("-o")
        .arg(&capture)
        .args(["--", "sh", "-c", "exit 3"])
        .stderr(full())
        .status()
        .unwrap();
    assert_eq!(
        status.code(),
        Some(3),
        "the command's status, with stderr full"
    );
    let rows = analyze_query(&[&capture], "SELECT count(*) AS n FROM processes", "csv");
    assert!(rows.status.success());
}

/// Without `--`, the command's name ends record's options: what follows is the command's,
/// its own `-o` included.
#[test]
fn a_command_needs_no_double_dash() {
    if !bpf_available("a_command_needs_no_double_dash") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    let out = Command::new(bin("record"))
        .arg("-q")
        .arg("-o")
        .arg(&capture)
        .args(["sh", "-c", "exit 4", "-o", "not-record's"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(4), "{out:?}");
    let rows = tracepost_e2e::query(
        &[&capture],
        "SELECT syscall FROM syscalls ORDER BY ts_ns LIMIT 1",
    );
    assert_eq!(rows[0]["syscall"], "execve");
}

/// A mistyped option, a missing value or a missing argument is one line too, with exit
/// status 2 and clap's suggestion kept; `--help` and `--version` still print in full.
#[test]
fn argument_errors_are_one_line() {
    let cases: [(&str, &[&str], &str); 13] = [
        (
            "record",
            &["--outptu", "x", "--", "true"],
            "similar argument exists: '--output'",
        ),
        ("record", &["--rotate"], "'--rotate <DUR>'"),
        // A negative value is a bad value of its option, not an unknown flag `-5`.
        (
            "record",
            &["-d", "-5s", "--", "true"],
            "'-5s' for '--duration <DUR>'",
        ),
        (
            "record",
            &["--max-size", "-1", "--", "true"],
            "'--max-size <SIZE>'",
        ),
        (
            "record",
            &["--min-duration", "-1ms", "--", "true"],
            "'--min-duration <DUR>'",
        ),
        ("record", &["-p", "0"], "'0' for '--pid <PID>'"),
        // Values a run would have raised, dropped or obeyed to no purpose, without a word.
        (
            "record",
            &["--buffer-size", "16KiB", "--", "true"],
            "'16KiB' for '--buffer-size <SIZE>': must be between 32KiB",
        ),
        (
            "record",
            &["--rotate", "1ns", "--", "true"],
            "'1ns' for '--rotate <DUR>': must be at least 100ms",
        ),
        (
            "record",
            &["-e", "read,,write", "--", "true"],
            "-e read,,write: an empty item between commas",
        ),
        (
            "record",
            &["--comm", "", "--", "true"],
            "'' for '--comm <NAME>': must not be empty",
        ),
        ("analyze", &["summry", "x"], "'summary'"),
        ("analyze", &["query"], "<CAPTURE"),
        ("analyze", &["summary", "x", "--formt", "csv"], "'--format'"),
    ];
    for (binary, args, names) in cases {
        let out = Command::new(bin(binary)).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{binary} {args:?}");
        let line = one_error_line(&out.stderr);
        assert!(line.contains(names), "{binary} {args:?}: {line}");
    }
    for binary in ["record", "analyze"] {
        let help = Command::new(bin(binary)).arg("--help").output().unwrap();
        assert!(help.status.success());
        assert!(String::from_utf8_lossy(&help.stdout).contains("Usage:"));
    }
}

/// A host whose `kernel.perf_event_max_stack` is below the 64 frames of record's stack map
/// refuses the map: the error names the setting, and nothing is left behind that a reader
/// would take for a recorder killed as it started.
#[test]
fn a_lowered_stack_depth_is_named_and_leaves_no_capture() {
    if !bpf_available("a_lowered_stack_depth_is_named_and_leaves_no_capture") {
        return;
    }
    const SETTING: &str = "/proc/sys/kernel/perf_event_max_stack";
    struct Restore(String);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = std::fs::write(SETTING, &self.0);
        }
    }
    let before = std::fs::read_to_string(SETTING).unwrap();
    let _restore = Restore(before.clone());
    std::fs::write(SETTING, "32").unwrap();
    let tmp = tempfile::tempdir().unwrap();
    // Under a parent it makes too: taken back with the capture.
    let out_dir = tmp.path().join("new").join("cap");
    let out = record(&out_dir, &["true"]);
    drop(_restore);
    assert_eq!(std::fs::read_to_string(SETTING).unwrap(), before);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_error_line(&out.stderr),
        "error: kernel.perf_event_max_stack is 32, and record's stack map needs 64 frames \
         (with or without --stacks): raise it, for example `sysctl \
         kernel.perf_event_max_stack=127`"
    );
    assert!(!tmp.path().join("new").exists(), "{}", out_dir.display());
}

/// A relative output under a working directory that was removed names the output and
/// why, where the error once named `.`.
#[test]
fn an_output_under_a_removed_working_directory_is_named() {
    if !bpf_available("an_output_under_a_removed_working_directory_is_named") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let gone = tmp.path().join("gone");
    std::fs::create_dir(&gone).unwrap();
    let script = format!(
        "cd '{}' && rmdir '{}' && exec '{}' -q -o rel -- true",
        gone.display(),
        gone.display(),
        bin("record").display()
    );
    let out = Command::new("sh").args(["-c", &script]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_error_line(&out.stderr),
        "error: output rel: relative to the current directory, which cannot be found (No such \
         file or directory (os error 2): removed?); give -o an absolute path"
    );
}

/// `-p` of a process that has exited and waits for its parent to reap it (a zombie) is
/// refused: it once ended at once with an empty capture and exit 0.
#[test]
fn a_zombie_is_refused_by_name() {
    if !bpf_available("a_zombie_is_refused_by_name") {
        return;
    }
    // This test is the parent, and it reaps `true` only after record has run. A shell as the
    // parent (`true & exec sleep`) could reap it between our look and record's (CI saw
    // "no such process").
    let mut child = Command::new("true").spawn().unwrap();
    let zombie = child.id().to_string();
    let state = || std::fs::read_to_string(format!("/proc/{zombie}/stat")).unwrap();
    for _ in 0..100 {
        if state().contains(") Z ") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(state().contains(") Z "), "{}", state());
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("cap");
    let out = Command::new(bin("record"))
        .args(["-q", "-p", &zombie, "-o"])
        .arg(&out_dir)
        .output()
        .unwrap();
    let _ = child.wait();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_error_line(&out.stderr),
        format!(
            "error: process {zombie} has exited (a zombie that its parent has not reaped): it \
             makes no more calls to record"
        )
    );
    assert!(!out_dir.exists());
}

/// A `-p` target that exits while record attaches to it once left a run with a capture
/// row and no end, which `analyze` then reported as a recorder killed as it started, even
/// in a capture that was continued (helper-88). The run is now taken back whole, and the
/// message says what happened. The target lives a little longer each try, until one exits
/// inside the attach.
#[test]
fn a_target_that_exits_while_attached_leaves_the_capture_as_it_was() {
    if !bpf_available("a_target_that_exits_while_attached_leaves_the_capture_as_it_was") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cap = tmp.path().join("cap");
    let first = record(&cap, &["true"]);
    assert!(first.status.success(), "{first:?}");
    let listing = || {
        let mut names: Vec<String> = ["capture", "syscalls", "processes", "aggregates"]
            .iter()
            .flat_map(|t| std::fs::read_dir(cap.join(t)).unwrap())
            .map(|e| e.unwrap().path().display().to_string())
            .collect();
        names.sort();
        names
    };
    let before = listing();
    let mut caught = false;
    for ms in [20, 50, 100, 150, 200, 300, 400, 600] {
        // A shell reaps it at once, as a service manager would: no zombie to refuse.
        let mut parent = Command::new("sh")
            .args(["-c", &format!("sleep 0.{ms:03} & echo $!; wait")])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut pid = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(parent.stdout.as_mut().unwrap()),
            &mut pid,
        )
        .unwrap();
        let pid = pid.trim().to_string();
        let out = Command::new(bin("record"))
            .args(["-q", "-d", "2s", "-p", &pid, "-o"])
            .arg(&cap)
            .output()
            .unwrap();
        let _ = parent.wait();
        if out.status.success() {
            // Attached in time: a run of its own, ended.
            break;
        }
        let line = one_error_line(&out.stderr);
        assert_eq!(listing(), before, "{line}");
        if line
            == format!(
                "error: process {pid} exited while record was attaching to it: nothing was recorded"
            )
        {
            caught = true;
            break;
        }
        assert_eq!(line, format!("error: no such process: {pid}"));
    }
    assert!(caught, "no target exited inside the attach");
    let summary = Command::new(bin("analyze"))
        .args(["summary"])
        .arg(&cap)
        .output()
        .unwrap();
    assert!(summary.status.success(), "{summary:?}");
    let warnings = String::from_utf8_lossy(&summary.stderr);
    assert!(!warnings.contains("did not finish"), "{warnings}");
}

/// An executor given one port for both its services once logged Ballista's error and
/// exited 0, which a supervisor takes for a clean stop.
#[test]
fn an_executor_given_one_port_twice_is_refused() {
    let out = Command::new(bin("analyze"))
        .args([
            "executor",
            "--scheduler",
            "127.0.0.1:1",
            "--bind",
            "127.0.0.1",
            "--port",
            "50981",
            "--grpc-port",
            "50981",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_error_line(&out.stderr),
        "error: --port and --grpc-port are both 50981: the Flight and task services need a \
         port each"
    );
}

/// A table directory the reader may not open is named as one, where the message once
/// called it the capture (`capture CAP/syscalls: cannot read it`); a capture directory it
/// may not open is named itself.
#[test]
fn an_unreadable_table_directory_is_named_as_one() {
    if !bpf_available("an_unreadable_table_directory_is_named_as_one") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::Builder::new()
        .prefix("tracepost-unreadable")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(tmp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let analyze = tmp.path().join("analyze");
    std::fs::copy(bin("analyze"), &analyze).unwrap();
    let capture = tmp.path().join("cap");
    assert!(record(&capture, &["true"]).status.success());
    // The other user's own copy, with its syscalls directory closed to itself.
    let theirs = tmp.path().join("theirs");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(&capture)
        .arg(&theirs)
        .status();
    assert!(copied.unwrap().success());
    let chowned = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&theirs)
        .status();
    assert!(chowned.unwrap().success());
    let table = theirs.join("syscalls");
    std::fs::set_permissions(&table, std::fs::Permissions::from_mode(0o000)).unwrap();
    // `analyze summary CAPTURE` as that user.
    let summary_as_them = |capture: &std::path::Path| {
        Command::new("setpriv")
            .args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
            ])
            .arg(&analyze)
            .args(["summary"])
            .arg(capture)
            .output()
            .expect("setpriv (util-linux)")
    };
    let out = summary_as_them(&theirs);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_error_line(&out.stderr),
        format!(
            "error: capture {}: cannot read its table directory {}: Permission denied (os \
             error 13)",
            theirs.display(),
            table.display()
        )
    );
    // root's capture (0700): the capture itself is what that user cannot read, where the
    // message blamed its first table's directory (helper-97).
    let out = summary_as_them(&capture);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_error_line(&out.stderr),
        format!(
            "error: capture {}: cannot read it: Permission denied (os error 13)",
            capture.display()
        )
    );
}

/// `-o -` and `--perfetto -` made a file named `-` without a word (helper-69): what goes to
/// a file is masked and what is printed is not, so `-` is refused rather than taken for
/// stdout.
#[test]
fn a_dash_for_an_output_is_refused_not_made_a_file() {
    if !bpf_available("a_dash_for_an_output_is_refused_not_made_a_file") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("cap");
    assert!(record(&capture, &["true"]).status.success());
    let c = capture.to_str().unwrap();
    for args in [
        &["query", c, "processes", "-o", "-"][..],
        &["summary", c, "-o", "-"],
        &["export", c, "--perfetto", "-"],
    ] {
        let out = analyze_in(tmp.path(), args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert_eq!(
            one_error_line(&out.stderr),
            "error: output -: give a file name (`-` is not taken for stdout)",
            "{args:?}"
        );
        assert!(!tmp.path().join("-").exists(), "{args:?}");
    }
    // A report is named by its extension.
    let out = analyze_in(tmp.path(), &["report", c, "-o", "-"]);
    assert_eq!(
        one_error_line(&out.stderr),
        "error: report -: give a file ending in .md or .html"
    );
    // So is a trace, which is JSON: it was written to `t.csv` (helper-97).
    let out = analyze_in(tmp.path(), &["export", c, "--perfetto", "t.csv"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        one_error_line(&out.stderr),
        "error: export --perfetto t.csv: give a file ending in .json (the trace is JSON)"
    );
    assert!(!tmp.path().join("t.csv").exists());
}

/// `-o x.parquet` and `-o x.html` wrote an aligned table under a name that promised
/// another format (helper-93): the extension is refused unless `--format` is given.
#[test]
fn an_output_named_for_a_format_not_written_is_refused() {
    if !bpf_available("an_output_named_for_a_format_not_written_is_refused") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("cap");
    assert!(record(&capture, &["true"]).status.success());
    let c = capture.to_str().unwrap();
    for (args, file, hint) in [
        (&["query", c, "processes", "-o"][..], "x.parquet", ""),
        (
            &["summary", c, "-o"],
            "x.html",
            " (`analyze report -o FILE.html` writes the HTML report)",
        ),
        (&["diff", c, c, "-o"], "x.xlsx", ""),
    ] {
        let out = analyze_in(tmp.path(), &[args, &[file]].concat());
        assert_eq!(out.status.code(), Some(1), "{args:?}: {out:?}");
        assert_eq!(
            one_error_line(&out.stderr),
            format!(
                "error: -o {file}: its extension names no format written here{hint}; use \
                 .csv, .json, .md or .txt, or give --format (table, csv, json, markdown)"
            ),
            "{args:?}"
        );
        assert!(!tmp.path().join(file).exists(), "{args:?}");
    }
    // Named, the format wins over the extension.
    let out = analyze_in(
        tmp.path(),
        &[
            "query",
            c,
            "SELECT 1 AS one",
            "-o",
            "x.parquet",
            "--format",
            "csv",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(tmp.path().join("x.parquet")).unwrap(),
        "one\n1\n"
    );
}
