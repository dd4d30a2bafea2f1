//! Safe on a shared host: one recorder per capture directory, and neither `record` nor
//! `analyze -o` writes through anything another user could have planted.
use std::{
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use tracepost_e2e::{analyze, bin, bpf_available, record, scalar};

fn stderr_line(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!text.contains("panicked"), "{text}");
    assert_eq!(text.lines().count(), 1, "one line: {text}");
    text.trim().to_string()
}

#[test]
fn a_second_recorder_on_the_same_directory_is_refused_and_the_first_loses_nothing() {
    if !bpf_available(
        "a_second_recorder_on_the_same_directory_is_refused_and_the_first_loses_nothing",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("cap");
    let mut first = Command::new(bin("record"))
        .args(["-q", "-o"])
        .arg(&capture)
        .args(["--", "sleep", "1.5"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first holds the lock (it writes its pid there).
    let lock = capture.join(".record.lock");
    let started = Instant::now();
    while std::fs::read_to_string(&lock).map_or(true, |s| s.trim().is_empty()) {
        assert!(started.elapsed() < Duration::from_secs(10), "no lock file");
        thread::sleep(Duration::from_millis(20));
    }
    let second = record(&capture, &["true"]);
    assert_eq!(second.status.code(), Some(1));
    assert_eq!(
        stderr_line(&second),
        format!(
            "error: output {} is being recorded by another record (pid {}); give another -o",
            capture.display(),
            first.id()
        )
    );
    assert!(first.wait().unwrap().success());
    // The first capture is whole: its sleep, one run, every recorded event a row.
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE syscall = 'clock_nanosleep'"
        ),
        1
    );
    assert_eq!(scalar(&capture, "SELECT count(*) FROM capture"), 1);
    assert_eq!(
        scalar(&capture, "SELECT events FROM capture"),
        scalar(&capture, "SELECT count(*) FROM syscalls")
    );
    // Once it is gone, the directory is free again, and the capture is continued.
    assert!(record(&capture, &["true"]).status.success());
    assert_eq!(scalar(&capture, "SELECT count(*) FROM capture"), 2);
}

#[test]
fn root_never_writes_through_what_another_user_planted() {
    if !bpf_available("root_never_writes_through_what_another_user_planted") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let victim = tmp.path().join("victim");
    std::fs::write(&victim, "keep").unwrap();
    let nobody = |p: &Path| std::os::unix::fs::chown(p, Some(65534), Some(65534)).unwrap();

    // record: an empty directory another user made in advance.
    let theirs = tmp.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    nobody(&theirs);
    let out = record(&theirs, &["true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_line(&out).contains("belongs to another user (uid 65534)"),
        "{out:?}"
    );
    assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0);

    // record: `-o link/` to a directory elsewhere.
    let elsewhere = tmp.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let link = tmp.path().join("link");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let out = record(Path::new(&format!("{}/", link.display())), &["true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr_line(&out).contains("is a symlink"), "{out:?}");
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

    // analyze -o: a symlink to someone's file, and a hard link to it.
    let capture = tmp.path().join("cap");
    assert!(record(&capture, &["true"]).status.success());
    let c = capture.to_str().unwrap();
    let planted = tmp.path().join("report.md");
    std::os::unix::fs::symlink(&victim, &planted).unwrap();
    let out = analyze(&["report", c, "-o", planted.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        stderr_line(&out),
        format!(
            "error: output {}: it is a symlink; give the real path",
            planted.display()
        )
    );
    let hard = tmp.path().join("hard.csv");
    std::fs::hard_link(&victim, &hard).unwrap();
    let out = analyze(&["summary", c, "-o", hard.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_line(&out).contains("has other hard links"),
        "{out:?}"
    );
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
}
