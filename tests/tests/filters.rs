//! Each filter, on real recordings: what it keeps is there, and what it excludes is absent.
use std::{path::Path, process::Command};

use tracepost_e2e::{
    bin, bpf_available, build_program, calls_and_errors, query, record_with, scalar, strace_counts,
    strace_counts_with,
};

/// Where cgroup v2 is mounted: /sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid hosts.
fn cgroup2_root() -> std::path::PathBuf {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap();
    mounts
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| std::path::PathBuf::from(f[1]))
        })
        .expect("a cgroup v2 mount")
}

/// `record -q FLAGS -o CAPTURE -- COMMAND`, which must succeed.
fn record_ok(capture: &Path, flags: &[&str], command: &[&str]) {
    let flags: Vec<&str> = std::iter::once("-q").chain(flags.iter().copied()).collect();
    let out = record_with(capture, &flags, command);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn comm_keeps_only_threads_of_that_name() {
    if !bpf_available("comm_keeps_only_threads_of_that_name") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    record_ok(
        &capture,
        &["--comm", "cat"],
        &[
            "sh",
            "-c",
            "ls / >/dev/null; cat /etc/hostname >/dev/null; ls / >/dev/null",
        ],
    );
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE comm <> 'cat'"
        ),
        0
    );
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE syscall = 'openat' AND path = '/etc/hostname'"
        ),
        1
    );
    // The excluded shell and ls are still followed: their processes are known.
    assert_eq!(
        scalar(&capture, "SELECT count(*) FROM processes WHERE comm = 'ls'"),
        2
    );
    // The execve that made the shell's child cat began under the shell's name and returned
    // as cat: it is cat's (a call's `comm` is its name when it returned), and kept.
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE syscall = 'execve' AND ret = 0"
        ),
        1
    );
    let full = tmp.path().join("full");
    record_ok(
        &full,
        &[],
        &[
            "sh",
            "-c",
            "ls / >/dev/null; cat /etc/hostname >/dev/null; ls / >/dev/null",
        ],
    );
    let cat_calls = "SELECT count(*) FROM syscalls WHERE comm = 'cat'";
    assert_eq!(scalar(&capture, cat_calls), scalar(&full, cat_calls));
    // The capture says what narrowed it.
    let target = |c: &std::path::Path| {
        tracepost_e2e::query(&[c], "SELECT target FROM capture")[0]["target"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(
        target(&capture).ends_with("', named cat"),
        "{}",
        target(&capture)
    );
    assert!(!target(&full).contains("named"), "{}", target(&full));
}

/// A thread `--comm` leaves out at one execve and takes back at a later one changed its
/// fds while it was out: fd 7 went from file A to file B unseen, and the second write
/// was named after A (helper-89). Its fds are unnamed until it names them again.
#[test]
fn a_thread_back_in_scope_after_an_exec_does_not_keep_stale_fd_names() {
    if !bpf_available("a_thread_back_in_scope_after_an_exec_does_not_keep_stale_fd_names") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let script = format!(
        "import os\n\
         fd = os.open({a:?}, os.O_WRONLY | os.O_CREAT); os.dup2(fd, 7); os.write(7, b'a')\n\
         os.execvp('sh', ['sh', '-c', 'exec 7>{b}; exec python3 -c \"import os; os.write(7, b\\'x\\')\"'])\n",
        a = a.to_str().unwrap(),
        b = b.display()
    );
    let capture = tmp.path().join("capture");
    record_ok(
        &capture,
        &["--comm", "python3"],
        &["python3", "-c", &script],
    );
    assert_eq!(std::fs::read(&b).unwrap(), b"x");
    let writes = query(
        &[&capture],
        "SELECT fd_path FROM syscalls WHERE syscall = 'write' AND fd = 7 ORDER BY ts",
    );
    assert_eq!(writes.len(), 2, "{writes:?}");
    assert_eq!(writes[0]["fd_path"], a.to_str().unwrap(), "{writes:?}");
    assert!(
        writes[1]["fd_path"].is_null() || writes[1]["fd_path"] == b.to_str().unwrap(),
        "{writes:?}"
    );
}

/// A run of `slow_marks` under `--cgroup`: the capture, record's stderr, and each process's
/// `getppid` marks and the fd_path of its last read (8 bytes of fd 3, the file it opened
/// at its start), in the order the processes began.
struct MarksInCgroup {
    _tmp: tempfile::TempDir,
    /// The cgroup's directory, removed by now.
    cgroup: std::path::PathBuf,
    capture: std::path::PathBuf,
    stderr: String,
    /// Per process, first first: its marks, the name of the file its last read was
    /// charged to, and how many such reads were recorded.
    marks: Vec<(i64, Option<String>, i64)>,
}

/// Records `sh -c SCRIPT` with `--cgroup` on a cgroup v2 directory of its own (removed
/// after); `script` is given the directory and the built `slow_marks`.
fn slow_marks_in_cgroup(name: &str, script: impl Fn(&Path, &Path) -> String) -> MarksInCgroup {
    let cgroup = cgroup2_root().join(format!("tracepost-e2e-{name}-{}", std::process::id()));
    std::fs::create_dir(&cgroup).expect("create a cgroup v2 directory (needs root)");
    let tmp = tempfile::tempdir().unwrap();
    let program = build_program(tmp.path(), "slow_marks");
    let capture = tmp.path().join("capture");
    let out = record_with(
        &capture,
        &["-q", "--cgroup", cgroup.to_str().unwrap()],
        &["sh", "-c", &script(&cgroup, &program)],
    );
    let _ = std::fs::remove_dir(&cgroup);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let marks = query(
        &[&capture],
        "SELECT count(*) FILTER (WHERE syscall = 'getppid') AS marks, \
         max(fd_path) FILTER (WHERE syscall = 'read' AND fd = 3 AND arg2 = 8) AS read_from, \
         count(*) FILTER (WHERE syscall = 'read' AND fd = 3 AND arg2 = 8) AS reads \
         FROM syscalls WHERE comm = 'slow_marks' GROUP BY pid ORDER BY min(ts)",
    )
    .iter()
    .map(|r| {
        (
            r["marks"].as_i64().unwrap(),
            r["read_from"].as_str().map(str::to_string),
            r["reads"].as_i64().unwrap(),
        )
    })
    .collect();
    MarksInCgroup {
        _tmp: tmp,
        cgroup,
        capture,
        stderr,
        marks,
    }
}

/// systemd restarts a service into a new cgroup at the same path (the old one goes with
/// its last process). `--cgroup` followed the directory it found at the start, so the
/// restarted service was left out without a word (helper-88). Now the path is followed: a
/// process of the new cgroup is recorded from when record sees it (within 100 ms), its fds
/// unnamed until it names them again, and stderr says so.
#[test]
fn a_cgroup_made_anew_at_its_path_is_recorded_again() {
    if !bpf_available("a_cgroup_made_anew_at_its_path_is_recorded_again") {
        return;
    }
    let run = slow_marks_in_cgroup("anew", |cgroup, program| {
        let run = |n: u32| {
            format!(
                "sh -c 'echo $$ > {cg}/cgroup.procs; exec {p} {n} 2'",
                cg = cgroup.display(),
                p = program.display()
            )
        };
        // The first run, the cgroup made anew as its last process left it, the second run.
        format!(
            "{}; rmdir {cg}; mkdir {cg}; {}",
            run(50),
            run(150),
            cg = cgroup.display()
        )
    });
    assert!(
        run.stderr.contains(&format!(
            "warning: --cgroup {} was made anew (a restarted service?): recording it now; its \
             calls in the 100 ms before are missing",
            run.cgroup.display()
        )),
        "{}",
        run.stderr
    );
    let marks = &run.marks;
    assert_eq!(marks.len(), 2, "{marks:?}");
    assert!(marks.iter().all(|m| m.2 == 1), "{marks:?}");
    assert_eq!(marks[0].0, 50, "{marks:?}");
    // 150 marks 2 ms apart: at most the first 100 ms of them are missing.
    assert!((90..=150).contains(&marks[1].0), "{marks:?}");
    // Its file was opened before record saw it, most likely: unnamed, never misnamed.
    assert!(
        matches!(marks[1].1.as_deref(), None | Some("/etc/hostname")),
        "{marks:?}"
    );
    // Nothing outside the cgroup: the shells' own calls before they moved (the open of
    // cgroup.procs) are not there.
    assert_eq!(
        scalar(
            &run.capture,
            "SELECT count(*) FROM syscalls WHERE path LIKE '%cgroup.procs'"
        ),
        0
    );
}

/// A process moved into the cgroup by another (`echo PID > cgroup.procs`, no exec) was
/// left out until its next exec: its calls in the cgroup were neither recorded nor counted
/// (found this stop). Each move now has the threads left out ask again at their next call:
/// the mover's marks after the move are recorded, its fd unnamed (it changed unseen).
#[test]
fn a_process_moved_into_the_cgroup_is_recorded_from_then_on() {
    if !bpf_available("a_process_moved_into_the_cgroup_is_recorded_from_then_on") {
        return;
    }
    // 150 marks 2 ms apart (about 400 ms with the sleeps' slack), moved in after 100 ms by
    // its parent, which stays outside.
    let run = slow_marks_in_cgroup("moved", |cgroup, program| {
        format!(
            "{p} 150 2 & sleep 0.1; echo $! > {cg}/cgroup.procs; wait",
            p = program.display(),
            cg = cgroup.display()
        )
    });
    let marks = &run.marks;
    assert_eq!(marks.len(), 1, "{marks:?}");
    assert!((50..150).contains(&marks[0].0), "{marks:?}");
    assert_eq!(marks[0].2, 1, "{marks:?}");
    // Its file was opened before the move: unnamed, never misnamed.
    assert_eq!(marks[0].1, None, "{marks:?}");
    // The parent stayed outside.
    assert_eq!(
        scalar(
            &run.capture,
            "SELECT count(*) FROM syscalls WHERE comm = 'sh'"
        ),
        0
    );
}

/// A process moved out of the cgroup by another was recorded until its next exec: calls
/// of a process outside the scope asked for. It is left out from its next call.
#[test]
fn a_process_moved_out_of_the_cgroup_is_left_out_from_then_on() {
    if !bpf_available("a_process_moved_out_of_the_cgroup_is_left_out_from_then_on") {
        return;
    }
    // 150 marks 2 ms apart, inside from the start, moved back out after 150 ms by its
    // parent, which stays outside.
    let run = slow_marks_in_cgroup("out", |cgroup, program| {
        format!(
            "sh -c 'echo $$ > {cg}/cgroup.procs; exec {p} 150 2' & sleep 0.15; \
             echo $! > {cg}/../cgroup.procs; wait",
            p = program.display(),
            cg = cgroup.display()
        )
    });
    let marks = &run.marks;
    assert_eq!(marks.len(), 1, "{marks:?}");
    assert!((10..140).contains(&marks[0].0), "{marks:?}");
    // Its read at the end came after the move.
    assert_eq!(marks[0].2, 0, "{marks:?}");
}

/// `clone3(CLONE_INTO_CGROUP)` puts a child straight into another cgroup, as systemd and
/// container runtimes start services: under `--cgroup` one put outside was recorded whole
/// (helper-94). It is left out from its first call; its parent, inside, is recorded.
#[test]
fn a_child_cloned_into_another_cgroup_is_left_out() {
    if !bpf_available("a_child_cloned_into_another_cgroup_is_left_out") {
        return;
    }
    let root = cgroup2_root();
    let inside = root.join(format!("tracepost-e2e-into-{}", std::process::id()));
    let outside = root.join(format!("tracepost-e2e-outside-{}", std::process::id()));
    std::fs::create_dir(&inside).expect("create a cgroup v2 directory (needs root)");
    std::fs::create_dir(&outside).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let program = build_program(tmp.path(), "into_cgroup");
    let capture = tmp.path().join("capture");
    // `record` itself starts inside, so that no process moves while it records: a move
    // has every thread ask again, which would hide the defect.
    let script = format!(
        "echo $$ > {inside}/cgroup.procs; exec {record} -q -o {capture} --cgroup {inside} \
         -- {program} {outside}",
        inside = inside.display(),
        record = bin("record").display(),
        capture = capture.display(),
        program = program.display(),
        outside = outside.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    let _ = std::fs::remove_dir(&inside);
    let _ = std::fs::remove_dir(&outside);
    assert!(out.status.success(), "{out:?}");
    let child: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let calls = |sql: &str| scalar(&capture, sql);
    assert_eq!(
        calls("SELECT count(*) FROM syscalls WHERE syscall = 'getpid' AND comm = 'into_cgroup'"),
        20
    );
    assert_eq!(
        calls(&format!(
            "SELECT count(*) FROM syscalls WHERE pid = {child}"
        )),
        0
    );
}

/// Without `--cgroup`, the processes table named such a child's cgroup after its parent's:
/// the kernel's event for a new task carries the caller's. /proc, read by this test, is
/// the oracle for both.
#[test]
fn a_child_cloned_into_another_cgroup_has_that_cgroup() {
    if !bpf_available("a_child_cloned_into_another_cgroup_has_that_cgroup") {
        return;
    }
    let root = cgroup2_root();
    let name = format!("tracepost-e2e-into-row-{}", std::process::id());
    let outside = root.join(&name);
    std::fs::create_dir(&outside).expect("create a cgroup v2 directory (needs root)");
    let tmp = tempfile::tempdir().unwrap();
    let program = build_program(tmp.path(), "into_cgroup");
    let capture = tmp.path().join("capture");
    let out = record_with(
        &capture,
        &["-q"],
        &[program.to_str().unwrap(), outside.to_str().unwrap()],
    );
    let _ = std::fs::remove_dir(&outside);
    assert!(out.status.success(), "{out:?}");
    let child: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    let ours = std::fs::read_to_string("/proc/self/cgroup").unwrap();
    let ours = ours.lines().find_map(|l| l.strip_prefix("0::")).unwrap();
    let rows = query(
        &[&capture],
        "SELECT pid, cgroup FROM processes WHERE comm = 'into_cgroup' ORDER BY pid",
    );
    let cgroups: Vec<(i64, &str)> = rows
        .iter()
        .map(|r| (r["pid"].as_i64().unwrap(), r["cgroup"].as_str().unwrap()))
        .collect();
    assert_eq!(cgroups.len(), 2, "{rows:?}");
    assert!(cgroups.contains(&(child, &*format!("/{name}"))), "{rows:?}");
    assert!(
        cgroups.iter().any(|&(pid, cg)| pid != child && cg == ours),
        "{rows:?} {ours}"
    );
}

#[test]
fn cgroup_keeps_only_processes_inside_it() {
    if !bpf_available("cgroup_keeps_only_processes_inside_it") {
        return;
    }
    let cgroup = cgroup2_root().join(format!("tracepost-e2e-{}", std::process::id()));
    std::fs::create_dir(&cgroup).expect("create a cgroup v2 directory (needs root)");
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    // The shell moves itself into the cgroup, runs true, then becomes cat: the shell from
    // its move on, true (from its fork, inside the cgroup, before its exec too) and cat
    // are inside.
    let script = format!(
        "ls / >/dev/null; echo $$ > {}/cgroup.procs; /bin/true; exec cat /etc/hostname",
        cgroup.display()
    );
    record_ok(
        &capture,
        &["--cgroup", cgroup.to_str().unwrap()],
        &["sh", "-c", &script],
    );
    let _ = std::fs::remove_dir(&cgroup);
    // The capture says what narrowed it.
    let target = tracepost_e2e::query(&[&capture], "SELECT target FROM capture")[0]["target"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        target,
        format!("command sh -c '{script}', in cgroup {}", cgroup.display())
    );
    // The shell's calls after it moved in are (its fork of true among them), and none
    // before: not its open of cgroup.procs, nor anything of ls, which ran before.
    assert!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE comm = 'sh' AND syscall IN ('clone', \
             'clone3', 'vfork', 'fork')"
        ) >= 1
    );
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE comm NOT IN ('cat', 'true', 'sh') \
             AND pid NOT IN (SELECT pid FROM processes WHERE comm = 'true')"
        ),
        0
    );
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE path LIKE '%cgroup.procs' \
             OR (syscall = 'openat' AND path = '/')"
        ),
        0,
        "ls ran before the move"
    );
    // Each is named in the cgroup it ran in, which its parent moved into after it started:
    // the kernel says where a process forked and exec'd, and /proc may be gone by then.
    let inside = format!("/{}", cgroup.file_name().unwrap().to_str().unwrap());
    assert_eq!(
        scalar(
            &capture,
            &format!(
                "SELECT count(*) FROM processes WHERE comm IN ('cat', 'true') AND cgroup = '{inside}'"
            )
        ),
        2
    );
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE syscall = 'openat' AND path = '/etc/hostname'"
        ),
        1
    );
    let bad = Command::new(bin("record"))
        .args(["--cgroup", "/proc", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.starts_with("error: --cgroup /proc: not a cgroup v2 directory"),
        "{stderr}"
    );
}

#[test]
fn syscall_lists_keep_only_those_calls_and_fds_stay_known() {
    if !bpf_available("syscall_lists_keep_only_those_calls_and_fds_stay_known") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program(tmp.path(), "context");
    let work = tmp.path().canonicalize().unwrap().join("work");
    std::fs::create_dir(&work).unwrap();
    let capture = tmp.path().join("capture");
    record_ok(
        &capture,
        &["-e", "write,read"],
        &[exe.to_str().unwrap(), work.to_str().unwrap()],
    );
    let names = query(
        &[&capture],
        "SELECT DISTINCT syscall FROM syscalls ORDER BY 1",
    );
    let names: Vec<&str> = names
        .iter()
        .map(|r| r["syscall"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["read", "write"]);
    // openat and close are not rows, but were followed: the write still knows its file.
    let file = work.join("data.txt");
    assert_eq!(
        scalar(
            &capture,
            &format!(
                "SELECT count(*) FROM syscalls WHERE syscall = 'write' AND fd_path = '{}' AND bytes = 5",
                file.display()
            )
        ),
        1
    );
    // Left out by -e is out of scope: not counted either.
    assert_eq!(scalar(&capture, "SELECT count(*) FROM aggregates"), 0);

    let net = tmp.path().join("net");
    record_ok(
        &net,
        &["-e", "%network"],
        &[exe.to_str().unwrap(), work.to_str().unwrap()],
    );
    let names = query(&[&net], "SELECT DISTINCT syscall FROM syscalls ORDER BY 1");
    let names: Vec<&str> = names
        .iter()
        .map(|r| r["syscall"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "accept",
            "bind",
            "connect",
            "getsockname",
            "listen",
            "recvfrom",
            "sendto",
            "socket"
        ]
    );

    let bad = Command::new(bin("record"))
        .args(["-e", "openat,opne", "--", "true"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("`opne`"));
}

/// `-e %file` against strace's own `%file`, on the same program: the same syscalls, each
/// as often.
#[test]
fn the_file_class_is_straces() {
    if !bpf_available("the_file_class_is_straces") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    let script = "import os\nos.getcwd(); os.stat('/'); os.access('/', 0); os.listdir('/etc')\n\
                  os.readlink('/proc/self/exe'); os.path.exists('/nonexistent')";
    let command = ["/usr/bin/python3", "-S", "-c", script];
    record_ok(&capture, &["-e", "%file"], &command);
    let calls = |counts: std::collections::BTreeMap<String, (i64, i64)>| {
        counts
            .into_iter()
            .map(|(name, (calls, _))| (name, calls))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    let ours = calls(calls_and_errors(&capture, ""));
    let theirs = calls(strace_counts_with(
        tmp.path(),
        &["-e", "trace=%file"],
        &command,
    ));
    assert!(theirs.contains_key("getcwd"), "{theirs:?}");
    assert_eq!(ours, theirs);
}

#[test]
fn failed_keeps_only_failures_and_counts_the_rest() {
    if !bpf_available("failed_keeps_only_failures_and_counts_the_rest") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    let command = ["sh", "-c", "ls /nonexistent 2>/dev/null; exit 0"];
    // Warm the page cache, so both runs see the same world.
    Command::new(command[0])
        .args(&command[1..])
        .output()
        .unwrap();
    let strace = strace_counts(tmp.path(), &command);
    record_ok(&capture, &["--failed"], &command);
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE errno IS NULL"
        ),
        0
    );
    // Every failure strace saw is a row, syscall by syscall.
    let failures: std::collections::BTreeMap<String, i64> = query(
        &[&capture],
        "SELECT syscall, count(*) AS n FROM syscalls GROUP BY 1",
    )
    .into_iter()
    .map(|r| {
        (
            r["syscall"].as_str().unwrap().to_string(),
            r["n"].as_i64().unwrap(),
        )
    })
    .collect();
    let want: std::collections::BTreeMap<String, i64> = strace
        .iter()
        .filter(|(_, (_, errors))| *errors > 0)
        .map(|(name, (_, errors))| (name.clone(), *errors))
        .collect();
    assert_eq!(failures, want);
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE path = '/nonexistent' AND errno = 'ENOENT'"
        ),
        strace["statx"].1
    );
    // The successes are counted, not lost: calls per syscall add up to strace's.
    let succeeded = scalar(
        &capture,
        "SELECT sum(calls) FROM aggregates WHERE reason = 'not_failed' AND NOT failed",
    );
    let strace_ok: i64 = strace.values().map(|(calls, errors)| calls - errors).sum();
    assert_eq!(succeeded, strace_ok);
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM aggregates WHERE reason <> 'not_failed'"
        ),
        0
    );
}

/// The kernel keeps 15 bytes of a name: `record --comm` and `analyze --comm` given the
/// whole of a longer one both match it, by its first 15 bytes.
#[test]
fn a_name_longer_than_the_kernel_keeps_matches_by_its_first_15_bytes() {
    if !bpf_available("a_name_longer_than_the_kernel_keeps_matches_by_its_first_15_bytes") {
        return;
    }
    // The second's 15th byte is inside its 8th `é`: the kernel keeps half a character,
    // which a cut back to a whole one (14 bytes) matched in neither binary.
    for (name, kept) in [
        ("a-very-long-program-name", "a-very-long-pro"),
        ("ééééééééé", "ééééééé\u{FFFD}"),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let long = tmp.path().join(name);
        std::fs::copy("/bin/true", &long).unwrap();
        let capture = tmp.path().join("capture");
        record_ok(
            &capture,
            &["--comm", name],
            &["sh", "-c", &format!("{}; ls / > /dev/null", long.display())],
        );
        assert!(
            scalar(
                &capture,
                &format!("SELECT count(*) FROM syscalls WHERE comm = '{kept}'")
            ) > 0,
            "{name}"
        );
        let out = std::process::Command::new(tracepost_e2e::bin("analyze"))
            .arg("query")
            .arg(&capture)
            .args([
                "SELECT count(*) AS n FROM syscalls",
                "--comm",
                name,
                "--format",
                "csv",
            ])
            .output()
            .unwrap();
        assert!(out.status.success() && out.stderr.is_empty(), "{out:?}");
        let n: i64 = String::from_utf8_lossy(&out.stdout)
            .lines()
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(
            n,
            scalar(&capture, "SELECT count(*) FROM syscalls"),
            "{name}: analyze --comm matches what record --comm kept"
        );
    }
}

/// A child's scope is decided on the name it is born with, its parent's name as it is at
/// the fork: a process that renamed itself to the `--comm` name had its children left out,
/// since they took the decision made on its name before. The renamed process itself is
/// not re-checked (README, Limits); a child that renames itself away keeps being recorded,
/// but its own child, born with the other name, is not.
#[test]
fn a_child_is_in_scope_by_the_name_it_is_born_with() {
    if !bpf_available("a_child_is_in_scope_by_the_name_it_is_born_with") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = tracepost_e2e::build_program(tmp.path(), "renamed_parent");
    let capture = tmp.path().join("capture");
    record_ok(&capture, &["--comm", "zzz"], &[exe.to_str().unwrap()]);
    let rows = tracepost_e2e::query(
        &[&capture],
        "SELECT comm, count(*) AS n FROM syscalls WHERE syscall = 'getppid' \
         GROUP BY comm ORDER BY comm",
    );
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["comm"], "zzz", "{rows:?}");
    assert_eq!(rows[0]["n"], 1000, "{rows:?}");
    let exited = scalar(
        &capture,
        "SELECT count(*) FROM processes WHERE comm = 'zzz' AND exit_code = 5",
    );
    assert_eq!(exited, 1);
}
