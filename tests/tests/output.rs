//! What `analyze` writes, found wanting by a hostile review: a terminal table that kept
//! every row in memory (2.2 GB for 200,000 rows, then an abort), `-o` that overwrote a
//! capture's own Parquet file, and a file left holding half an answer after an error.
use std::{path::Path, process::Command};

use tracepost_e2e::{bin, bpf_available, record};

fn analyze(args: &[&str]) -> std::process::Output {
    Command::new(bin("analyze")).args(args).output().unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A small real capture: a shell that lists a directory.
fn capture(dir: &Path) -> std::path::PathBuf {
    let capture = dir.join("capture");
    let out = record(&capture, &["sh", "-c", "ls / >/dev/null"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    capture
}

#[test]
fn a_table_shows_a_thousand_rows_and_counts_the_rest_while_other_formats_write_all() {
    if !bpf_available(
        "a_table_shows_a_thousand_rows_and_counts_the_rest_while_other_formats_write_all",
    ) {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = capture(tmp.path());
    let sql = "SELECT value FROM generate_series(1, 2500)";

    let table = analyze(&["query", path(&capture), sql]);
    assert!(table.status.success());
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("| 1000  |"), "{text}");
    assert!(!text.contains("| 1001  |"), "{text}");
    assert!(
        text.trim_end().ends_with("+-------+"),
        "the table alone on stdout"
    );
    assert_eq!(
        String::from_utf8_lossy(&table.stderr).trim(),
        "warning: 1500 more rows not shown: a table shows the first 1000; --format csv, json \
         or markdown writes every row"
    );

    let csv = analyze(&["query", path(&capture), sql, "--format", "csv"]);
    let csv = String::from_utf8(csv.stdout).unwrap();
    assert_eq!(csv.lines().count(), 2501, "a header and every row");
    assert_eq!(csv.lines().last(), Some("2500"));
    let json = analyze(&["query", path(&capture), sql, "--format", "json"]);
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(rows.len(), 2500);
    let md = analyze(&["query", path(&capture), sql, "--format", "markdown"]);
    assert_eq!(String::from_utf8(md.stdout).unwrap().lines().count(), 2502);
    // `-o` without `--format` writes what the file's extension names: a table cut at 1000
    // rows went into `x.csv` before.
    for (name, lines) in [("all.csv", 2501), ("all.md", 2502)] {
        let file = tmp.path().join(name);
        let out = analyze(&["query", path(&capture), sql, "-o", path(&file)]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            std::fs::read_to_string(&file).unwrap().lines().count(),
            lines,
            "{name}"
        );
    }
    let file = tmp.path().join("all.json");
    assert!(
        analyze(&["query", path(&capture), sql, "-o", path(&file)])
            .status
            .success()
    );
    let rows: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(rows.len(), 2500);

    // Every row of the capture through CSV: streamed, not held.
    let all = analyze(&[
        "query",
        path(&capture),
        "SELECT * FROM syscalls",
        "--format",
        "csv",
    ]);
    let calls = analyze(&[
        "query",
        path(&capture),
        "SELECT count(*) AS n FROM syscalls",
        "--format",
        "csv",
    ]);
    let n: usize = String::from_utf8(calls.stdout)
        .unwrap()
        .lines()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(n > 100, "{n}");
    let header_and_rows = String::from_utf8(all.stdout)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("20")) // each row starts with its timestamp
        .count();
    assert_eq!(header_and_rows, n);
}

#[test]
fn no_output_file_lands_inside_a_capture_and_a_failed_one_is_removed() {
    if !bpf_available("no_output_file_lands_inside_a_capture_and_a_failed_one_is_removed") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = capture(tmp.path());
    let other = tmp.path().join("other");
    assert!(record(&other, &["true"]).status.success());
    let part = std::fs::read_dir(capture.join("syscalls"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .unwrap();
    let before = std::fs::read(&part).unwrap();
    let inside = path(&part);
    let report = capture.join("capture").join("report.md");
    // With --format: `.parquet` names no format of ours, which is refused first.
    for args in [
        vec!["summary", path(&capture), "-o", inside, "--format", "csv"],
        vec![
            "query",
            path(&capture),
            "errors",
            "-o",
            inside,
            "--format",
            "csv",
        ],
        vec![
            "diff",
            path(&other),
            path(&capture),
            "-o",
            inside,
            "--format",
            "csv",
        ],
        vec!["report", path(&capture), "-o", path(&report)],
    ] {
        let out = analyze(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} wrote inside the capture");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains("inside capture"), "{args:?}: {stderr}");
    }
    assert_eq!(
        std::fs::read(&part).unwrap(),
        before,
        "the capture's file is intact"
    );
    assert!(!report.exists());

    // A struct in CSV is written as its text.
    let out_file = tmp.path().join("q.csv");
    let out = analyze(&[
        "query",
        path(&capture),
        "SELECT latency_percentiles(duration_ns) AS q FROM syscalls",
        "--format",
        "csv",
        "-o",
        path(&out_file),
    ]);
    assert!(out.status.success(), "{out:?}");
    let written = std::fs::read_to_string(&out_file).unwrap();
    assert!(
        written.starts_with("q\n") && written.contains(r#"{""p50"":"#),
        "{written}"
    );
    std::fs::remove_file(&out_file).unwrap();
    // A query that fails as it runs: the error comes after the file was created, and the
    // file must not stay behind holding just a header.
    let fails_midway = || {
        analyze(&[
            "query",
            path(&capture),
            "SELECT ret / (ret - ret) AS x FROM syscalls",
            "--format",
            "csv",
            "-o",
            path(&out_file),
        ])
    };
    let out = fails_midway();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Divide by zero"));
    assert!(
        !out_file.exists(),
        "a partial answer was left in {out_file:?}"
    );
    // One that was there stays as it was when a query fails midway.
    std::fs::write(&out_file, "yesterday's answer\n").unwrap();
    let out = fails_midway();
    assert!(!out.status.success());
    assert_eq!(
        std::fs::read_to_string(&out_file).unwrap(),
        "yesterday's answer\n"
    );
    let left: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 3, "no temporary file left: {left:?}");
    // And a query that succeeds replaces it, privately.
    let out = analyze(&[
        "summary",
        path(&capture),
        "--format",
        "csv",
        "-o",
        path(&out_file),
    ]);
    assert!(out.status.success());
    assert!(
        std::fs::read_to_string(&out_file)
            .unwrap()
            .starts_with("syscall,calls,")
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&out_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
}

/// A full disk under stdout is one line that says the output could not be written, in
/// every format; a window that ends before it begins is refused, not answered with nothing.
#[test]
fn a_full_disk_and_an_empty_window_are_one_line_each() {
    if !bpf_available("a_full_disk_and_an_empty_window_are_one_line_each") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = capture(tmp.path());
    let sql = "SELECT value FROM generate_series(1, 100000)";
    for format in ["table", "csv", "json", "markdown"] {
        let out = Command::new(bin("analyze"))
            .args(["query", path(&capture), sql, "--format", format])
            .stdout(
                std::fs::OpenOptions::new()
                    .write(true)
                    .open("/dev/full")
                    .unwrap(),
            )
            .output()
            .unwrap();
        let line = tracepost_e2e::one_error_line(&out);
        assert!(
            line.starts_with("error: cannot write output: ") && line.contains("No space left"),
            "{format}: {line}"
        );
    }
    let out = analyze(&[
        "summary",
        path(&capture),
        "--since",
        "+5s",
        "--until",
        "+2s",
    ]);
    let line = tracepost_e2e::one_error_line(&out);
    assert_eq!(
        line,
        "error: --since +5s is not before --until +2s: the window holds no time"
    );
    // A relative bound against an absolute one counts from this capture's start: a
    // window empty here is said to be, not answered as no calls in silence.
    let started = tracepost_e2e::query(
        &[&capture],
        "SELECT CAST(min(started) AS VARCHAR) AS s FROM capture",
    );
    let started = started[0]["s"].as_str().unwrap().to_string();
    let out = analyze(&[
        "summary",
        path(&capture),
        "--since",
        &started,
        "--until",
        "+0s",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("its window holds no time, and it answers nothing"),
        "{stderr}"
    );
    let out = analyze(&["summary", path(&capture), "--pid=-1"]);
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("-1 is not in 0.."));
}
