//! A right answer or a clear refusal, on every capture a postmortem meets: damaged and
//! foreign files (refused with one line naming the file, or skipped and said so with
//! `--skip-bad-files`), capture directories whose names look like patterns, times out of
//! range, and hostile SQL.
use std::{fs, path::Path, process::Command};

use tracepost_e2e::{
    analyze, analyze_json, bpf_available, one_error_line, parquet_files, record, scalar,
};

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A capture of two recorder runs, so `syscalls/` holds two files.
fn two_run_capture(dir: &Path) {
    for command in [
        &["ls", "/", "/nonexistent"][..],
        &["cat", "/etc/hostname"][..],
    ] {
        let out = record(dir, command);
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("error"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(parquet_files(&dir.join("syscalls")).len(), 2);
}

/// Each kind of damage: the file's name and what the one line must say about it.
fn damages(
    good: &Path,
    foreign_table: &Path,
    tmp: &Path,
) -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let bytes = fs::read(good).unwrap();
    let mut past_end = bytes.clone();
    let n = past_end.len();
    past_end[n - 8..n - 4].copy_from_slice(&u32::MAX.to_le_bytes());
    let mut random = vec![0u8; 8192];
    for (i, b) in random.iter_mut().enumerate() {
        *b = (i.wrapping_mul(2654435761) >> 13) as u8;
    }
    // A valid Parquet file of another tool: DuckDB writes it.
    let other = tmp.join("other.parquet");
    let status = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import duckdb; duckdb.sql(\"COPY (SELECT 1 AS ts, 'x' AS syscall) TO '{}' (FORMAT parquet)\")",
            other.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    // One of ours with `errno` dropped, its own metadata kept (version 2, table syscalls):
    // read as NULL, it answered that nothing failed.
    let no_errno = tmp.join("no-errno.parquet");
    let status = Command::new("python3")
        .arg("-c")
        .arg(format!(
            "import pyarrow.parquet as pq\n\
             t = pq.read_table('{good}')\n\
             kv = pq.read_metadata('{good}').metadata\n\
             md = {{k: v for k, v in kv.items() if k != b'ARROW:schema'}}\n\
             pq.write_table(t.drop(['errno']).replace_schema_metadata(md), '{out}')",
            good = good.display(),
            out = no_errno.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    vec![
        ("zero.parquet", Vec::new(), "0 bytes (an interrupted copy?)"),
        (
            "no-errno.parquet",
            fs::read(no_errno).unwrap(),
            "it lacks column errno",
        ),
        (
            "half.parquet",
            bytes[..bytes.len() / 2].to_vec(),
            "not a readable Parquet file (it does not end as a Parquet file does: cut short \
             (an interrupted copy?), or not Parquet)",
        ),
        ("random.parquet", random, "not a readable Parquet file"),
        ("past-end.parquet", past_end, "not a readable Parquet file"),
        (
            "foreign.parquet",
            fs::read(other).unwrap(),
            "not a tracepost file",
        ),
        (
            "other-table.parquet",
            fs::read(foreign_table).unwrap(),
            "a file of table processes, not of syscalls",
        ),
    ]
}

#[test]
fn every_kind_of_damage_is_named_or_skipped_and_said() {
    if !bpf_available("every_kind_of_damage_is_named_or_skipped_and_said") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let clean = tmp.path().join("clean");
    two_run_capture(&clean);
    let rows = scalar(&clean, "SELECT count(*) FROM syscalls");
    let files = parquet_files(&clean.join("syscalls"));
    let second_rows = {
        let only_first = tmp.path().join("only-first");
        copy_dir(&clean, &only_first);
        fs::remove_file(
            only_first
                .join("syscalls")
                .join(files[1].file_name().unwrap()),
        )
        .unwrap();
        rows - scalar(&only_first, "SELECT count(*) FROM syscalls")
    };
    let processes = parquet_files(&clean.join("processes"));

    for (i, (name, bytes, reason)) in damages(&files[0], &processes[0], tmp.path())
        .into_iter()
        .enumerate()
    {
        let capture = tmp.path().join(format!("damaged-{i}"));
        copy_dir(&clean, &capture);
        // The damage replaces the first run's file: the second's rows are what is left.
        let first = capture.join("syscalls").join(files[0].file_name().unwrap());
        fs::remove_file(&first).unwrap();
        let bad = capture.join("syscalls").join(name);
        fs::write(&bad, bytes).unwrap();

        for command in [
            vec!["summary", path(&capture)],
            vec!["query", path(&capture), "SELECT count(*) FROM syscalls"],
            vec!["report", path(&capture), "-o", "/dev/null/never.md"],
        ] {
            let line = one_error_line(&analyze(&command));
            assert!(
                line.starts_with(&format!("error: {}: {reason}", bad.display())),
                "{name}: {line}"
            );
            assert!(
                line.ends_with("--skip-bad-files answers from the readable files"),
                "{line}"
            );
        }

        let out = analyze(&[
            "query",
            path(&capture),
            "SELECT count(*) AS n, max(skipped_files) AS skipped FROM syscalls, capture",
            "--skip-bad-files",
            "--format",
            "json",
        ]);
        assert!(out.status.success(), "{name}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.starts_with(&format!("warning: skipped {}: {reason}", bad.display())),
            "{stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        // Two capture rows (two runs) times the second run's calls.
        assert_eq!(v[0]["n"].as_i64(), Some(2 * second_rows), "{name}");
        assert_eq!(v[0]["skipped"].as_i64(), Some(1), "{name}");

        let md = tmp.path().join(format!("report-{i}.md"));
        let out = analyze(&[
            "report",
            path(&capture),
            "-o",
            path(&md),
            "--skip-bad-files",
        ]);
        assert!(out.status.success(), "{name}: {out:?}");
        let text = fs::read_to_string(&md).unwrap();
        assert!(
            text.contains("unknown: 1 bad file(s) skipped"),
            "{name}: {text}"
        );
    }

    // A damaged `capture` file: the report still has the capture's row, and says why it
    // cannot say how complete it is.
    let capture = tmp.path().join("no-capture-row");
    copy_dir(&clean, &capture);
    for f in parquet_files(&capture.join("capture")) {
        fs::write(f, b"").unwrap();
    }
    let md = tmp.path().join("no-capture-row.md");
    let out = analyze(&[
        "report",
        path(&capture),
        "-o",
        path(&md),
        "--skip-bad-files",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stderr).lines().count(), 2);
    let text = fs::read_to_string(&md).unwrap();
    assert!(text.contains("unknown: 2 bad file(s) skipped"), "{text}");
    // The capture table still has a row for it, saying so.
    let out = analyze(&[
        "query",
        path(&capture),
        "SELECT count(*) AS n, max(skipped_files) AS skipped, max(host) AS host FROM capture",
        "--skip-bad-files",
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v[0]["n"], 1);
    assert_eq!(v[0]["skipped"], 2);
    assert_eq!(v[0]["host"], serde_json::Value::Null);

    // Nothing readable left: refused, not an empty answer.
    let capture = tmp.path().join("all-bad");
    copy_dir(&clean, &capture);
    for f in parquet_files(&capture.join("syscalls")) {
        fs::write(f, b"PAR1").unwrap();
    }
    let out = analyze(&["summary", path(&capture), "--skip-bad-files"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "two warnings and the error: {stderr}");
    assert!(
        lines[..2]
            .iter()
            .all(|l| l.starts_with("warning: skipped ")),
        "{stderr}"
    );
    assert_eq!(
        lines[2],
        format!(
            "error: capture {}: every syscalls file is bad (2 skipped); nothing is left to read",
            capture.display()
        )
    );
}

#[test]
fn capture_names_are_paths_never_patterns() {
    if !bpf_available("capture_names_are_paths_never_patterns") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    // `inc[7]` as a glob matches `inc7`, `what?` matches `whatX`, and `a*b` matches `axb`.
    for (name, decoy) in [
        ("inc[7]", "inc7"),
        ("what?", "whatX"),
        ("a*b", "axb"),
        ("100% #1", "x"),
    ] {
        let real = tmp.path().join(name);
        let other = tmp.path().join(decoy);
        assert!(record(&real, &["true"]).status.success());
        if !other.exists() {
            assert!(record(&other, &["ls", "/"]).status.success());
        }
        let want = scalar(&real, "SELECT count(*) FROM syscalls");
        let decoy_rows = scalar(&other, "SELECT count(*) FROM syscalls");
        assert_ne!(
            want, decoy_rows,
            "the test needs captures of different sizes"
        );
        let rows = analyze_json(&[
            "query",
            path(&real),
            "SELECT count(*) AS n, min(capture) AS capture FROM syscalls",
        ]);
        assert_eq!(rows[0]["n"].as_i64(), Some(want), "{name}");
        assert_eq!(rows[0]["capture"].as_str(), Some(path(&real)));
        let summary = analyze_json(&["summary", path(&real)]);
        let calls: i64 = summary.iter().map(|r| r["calls"].as_i64().unwrap()).sum();
        assert_eq!(calls, want, "{name}");
    }
}

/// A name object-store paths refuse (a newline) gets one line, not the store's message
/// with the path and its newline repeated over many lines. A copy of a capture given beside
/// it (or the same directory reached two ways) is the same recording: combined, its calls
/// count twice, and that is said.
#[test]
fn a_newline_in_a_name_is_one_line_and_a_recording_given_twice_is_said() {
    if !bpf_available("a_newline_in_a_name_is_one_line_and_a_recording_given_twice_is_said") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("cap");
    assert!(record(&real, &["true"]).status.success());
    let odd = tmp.path().join("nl\ncap");
    copy_dir(&real, &odd);
    let out = analyze(&["summary", path(&odd)]);
    assert_eq!(out.status.code(), Some(1));
    let line = one_error_line(&out);
    assert!(
        line.contains("nl\\x0acap/syscalls/")
            && line.contains("DataFusion cannot read a file at this path"),
        "{line}"
    );

    let copy = tmp.path().join("copy");
    copy_dir(&real, &copy);
    let id = fs::read_dir(real.join("capture"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .file_name()
        .to_string_lossy()
        .trim_end_matches(".parquet")
        .to_string();
    let out = analyze(&["summary", path(&real), path(&copy), "--format", "csv"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!(
            "warning: captures {} and {} hold the same recording ({id}); its calls are \
             counted once for each",
            path(&real),
            path(&copy)
        )
    );
    // diff of a capture against its copy is a comparison, and says nothing.
    let out = analyze(&["diff", path(&real), path(&copy), "--format", "csv"]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn times_out_of_range_and_hostile_sql_are_refused_in_one_line() {
    if !bpf_available("times_out_of_range_and_hostile_sql_are_refused_in_one_line") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("c");
    assert!(record(&capture, &["true"]).status.success());
    let c = path(&capture);
    for (flag, value) in [
        ("--since", "1600-01-01T00:00:00Z"),
        ("--until", "2263-01-01T00:00:00Z"),
        ("--until", "9999-12-31T23:59:59Z"),
        ("--since", "+400y"),
    ] {
        let line = one_error_line(&analyze(&["summary", c, flag, value]));
        assert!(
            line.starts_with(&format!(
                "error: {flag} {value}: outside the times a capture holds"
            )),
            "{line}"
        );
    }
    let line = one_error_line(&analyze(&["summary", c, "--since", "yesterday"]));
    assert!(
        line.starts_with("error: --since yesterday: not a time"),
        "{line}"
    );

    let deep = format!("SELECT {}", vec!["1"; 5000].join(" + "));
    let line = one_error_line(&analyze(&["query", c, &deep]));
    assert!(
        line.starts_with("error: SQL: expressions nest more than"),
        "{line}"
    );
    let nested = format!("SELECT {}1{}", "(".repeat(5000), ")".repeat(5000));
    let line = one_error_line(&analyze(&["query", c, &nested]));
    assert!(line.starts_with("error: SQL: "), "{line}");
    // Too long for one argument (Linux takes 128 KiB): from a file.
    let long = tmp.path().join("long.sql");
    fs::write(&long, format!("SELECT '{}'", "x".repeat(2 << 20))).unwrap();
    let line = one_error_line(&analyze(&["query", c, path(&long)]));
    assert!(line.starts_with("error: SQL: the query is"), "{line}");
    // A wide query a person might write still runs.
    let wide = format!(
        "SELECT count(*) AS n FROM syscalls WHERE pid IN ({})",
        (1..=5000)
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let rows = analyze_json(&["query", c, &wide]);
    assert!(rows[0]["n"].as_i64().is_some());
}

/// What a hostile user tried: statements that write, a capture given twice, UTC offsets,
/// a FIFO named like a file, `..` in a path, and a value no function should crash on.
#[test]
fn queries_only_each_capture_once_offsets_honoured_and_no_hangs() {
    if !bpf_available("queries_only_each_capture_once_offsets_honoured_and_no_hangs") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("c");
    assert!(record(&capture, &["ls", "/"]).status.success());
    let c = path(&capture);

    // No statement writes or changes state: analyze often runs as root.
    let target = tmp.path().join("written.csv");
    for sql in [
        format!("COPY (SELECT 1 AS a) TO '{}'", target.display()),
        format!(
            "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '{}'",
            target.display()
        ),
        "SET datafusion.execution.batch_size = 1".to_string(),
    ] {
        let line = one_error_line(&analyze(&["query", c, &sql]));
        assert!(line.starts_with("error: SQL: "), "{line}");
    }
    assert!(!target.exists());

    // A capture counts once, however it is named.
    let dotted = format!("{}/../c", c);
    let line = one_error_line(&analyze(&["summary", c, &dotted]));
    assert!(line.contains("is given twice"), "{line}");
    // `..` in a path is fine on its own.
    let rows = analyze_json(&["query", &dotted, "SELECT count(*) AS n FROM syscalls"]);
    assert_eq!(
        rows[0]["n"].as_i64(),
        Some(scalar(&capture, "SELECT count(*) FROM syscalls"))
    );

    // An offset is honoured: the same instant in two zones narrows alike.
    let last = analyze_json(&[
        "query",
        c,
        "SELECT CAST(max(ts_ns) / 1000000000 AS BIGINT) AS s FROM syscalls",
    ])[0]["s"]
        .as_i64()
        .unwrap();
    let at = |secs: i64, zone_hours: i64| {
        let t = std::time::UNIX_EPOCH
            + std::time::Duration::from_secs((secs + zone_hours * 3600) as u64);
        let utc = humantime_like(t);
        format!("{}{:+03}:00", &utc[..19], zone_hours)
    };
    let count_until = |until: &str| {
        analyze_json(&[
            "query",
            c,
            "SELECT count(*) AS n FROM syscalls",
            "--until",
            until,
        ])[0]["n"]
            .as_i64()
            .unwrap()
    };
    assert_eq!(count_until(&at(last, 0)), count_until(&at(last, 1)));
    assert_eq!(count_until(&at(last, 0)), count_until(&at(last, -5)));
    assert_eq!(count_until(&at(last - 3600, 1)), 0, "an hour earlier");
    let line = one_error_line(&analyze(&["summary", c, "--until", "2026-12-01T10:15:34"]));
    assert!(line.contains("not a time"), "{line}");

    // A FIFO named like a file is refused, not waited on.
    let fifo = capture.join("processes/part-000099.parquet");
    let name = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(name.as_ptr(), 0o600) }, 0);
    let line = one_error_line(&analyze(&["summary", c]));
    assert!(
        line.contains("part-000099.parquet: not a regular file"),
        "{line}"
    );
    fs::remove_file(&fifo).unwrap();

    let rows = analyze_json(&["query", c, "SELECT fmt_duration(-9223372036854775808) AS d"]);
    assert!(rows[0]["d"].as_str().unwrap().starts_with('-'));
}

/// `YYYY-MM-DDTHH:MM:SS` of a time, in UTC.
fn humantime_like(t: std::time::SystemTime) -> String {
    let secs = t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let out = Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%dT%H:%M:%S"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// A file whose footer is whole but whose pages are torn passes the checks made before any
/// SQL runs, and fails mid-query with the reader's message, which names no file. The
/// failed query then names the file.
#[test]
fn a_file_torn_inside_its_pages_is_named_when_a_query_meets_it() {
    if !bpf_available("a_file_torn_inside_its_pages_is_named_when_a_query_meets_it") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("cap");
    assert!(
        record(&capture, &["sh", "-c", "ls -la / /usr >/dev/null"])
            .status
            .success()
    );
    // A whole copy, for `diff` against the torn one.
    let whole = tmp.path().join("whole");
    copy_dir(&capture, &whole);
    let file = parquet_files(&capture.join("syscalls")).remove(0);
    tracepost_e2e::tear_pages(&file);
    for args in [
        vec!["summary", path(&capture)],
        vec!["query", path(&capture), "errors"],
        vec!["summary", path(&capture), "--skip-bad-files"],
        // diff read each side's span before its answer, unnamed (helper-93).
        vec!["diff", path(&whole), path(&capture)],
        vec!["diff", path(&capture), path(&whole)],
    ] {
        let out = analyze(&args);
        let line = one_error_line(&out);
        assert!(
            line.starts_with(&format!("error: {}: its data is damaged (", file.display()))
                && line.ends_with("); move the file out of the capture to read the rest"),
            "{args:?}: {line}"
        );
    }
}

/// Writes `file` as `bytes` with the bits of `mask` flipped in byte `at`, and runs `sql`:
/// the answer is the `clean` one, or one line that names the file (never a panic:
/// `analyze` fails the test on one). Whether it was refused.
fn refused_by_name(
    capture: &Path,
    file: &Path,
    sql: &str,
    clean: &[u8],
    (bytes, at, mask): (&[u8], usize, u8),
) -> bool {
    let mut damaged = bytes.to_vec();
    damaged[at] ^= mask;
    fs::write(file, damaged).unwrap();
    let out = analyze(&["query", path(capture), sql, "--format", "csv"]);
    if out.status.success() {
        assert!(
            out.stdout == clean,
            "a bit flipped at byte {at} of {} changed the answer",
            file.display()
        );
        return false;
    }
    let line = one_error_line(&out);
    assert!(
        line.contains(&file.display().to_string()),
        "a bit flipped at byte {at} of {}: {line}",
        file.display()
    );
    true
}

/// The length of a Parquet file's footer, from the four bytes before the closing `PAR1`.
fn footer_len(bytes: &[u8]) -> usize {
    u32::from_le_bytes(bytes[bytes.len() - 8..bytes.len() - 4].try_into().unwrap()) as usize
}

/// One bit flipped anywhere in a file's pages (a failing disk, a bad copy) gives the right
/// answer or the damaged-file line, never another answer: every data page's zstd frame
/// carries a checksum of its contents, which the reader checks.
#[test]
fn a_bit_flipped_in_any_page_is_refused_not_answered() {
    if !bpf_available("a_bit_flipped_in_any_page_is_refused_not_answered") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("cap");
    assert!(
        record(&capture, &["sh", "-c", "ls -la / /usr /etc >/dev/null"])
            .status
            .success()
    );
    let sql = "SELECT * FROM syscalls ORDER BY ts_ns, tid";
    let clean = analyze(&["query", path(&capture), sql, "--format", "csv"]);
    assert!(clean.status.success());
    let file = parquet_files(&capture.join("syscalls")).remove(0);
    let bytes = fs::read(&file).unwrap();
    // The pages lie between the leading magic and the footer (its length, then `PAR1`).
    let pages = 4..bytes.len() - 8 - footer_len(&bytes);
    let mut refused = 0;
    let tries = 60;
    for i in 0..tries {
        let at = pages.start + (pages.end - pages.start) * i / tries + i % 7;
        refused += usize::from(refused_by_name(
            &capture,
            &file,
            sql,
            &clean.stdout,
            (&bytes, at, 1 << (i % 8)),
        ));
    }
    assert!(
        refused > tries / 2,
        "only {refused} of {tries} flips were noticed"
    );
    fs::write(&file, &bytes).unwrap();
}

/// A bit flipped in a file's footer or page index, where the reader learns where each page
/// is, how many rows it holds and whether it may be NULL. Parquet's reader panics on some
/// such files (a column said to be REQUIRED, a page moved, the embedded Arrow schema
/// damaged); each must be refused by name, or answered as before, never a panic.
#[test]
fn a_bit_flipped_in_the_footer_is_refused_not_a_panic() {
    if !bpf_available("a_bit_flipped_in_the_footer_is_refused_not_a_panic") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("cap");
    let script = "import os\nfor i in range(2000): os.path.exists('/x%d' % i)";
    assert!(
        record(&capture, &["python3", "-c", script])
            .status
            .success()
    );
    let sql = "SELECT * FROM syscalls ORDER BY ts_ns, tid";
    let clean = analyze(&["query", path(&capture), sql, "--format", "csv"]);
    assert!(clean.status.success());
    let file = parquet_files(&capture.join("syscalls")).remove(0);
    let bytes = fs::read(&file).unwrap();
    // The page index lies just before the footer.
    let end = bytes.len() - 8;
    let start = end - footer_len(&bytes) - 700;
    let mut refused = 0;
    let tries = 400;
    for i in 0..tries {
        let at = start + (end - start) * i / tries;
        refused += usize::from(refused_by_name(
            &capture,
            &file,
            sql,
            &clean.stdout,
            (&bytes, at, [2u8, 8, 128][i % 3]),
        ));
    }
    assert!(refused > 0);
    fs::write(&file, &bytes).unwrap();
}

/// The small tables' files come from arrow's writer, whose pages carry no checksum: a bit
/// flipped in a `processes` file read as another pid or command line, with exit 0, and one
/// in its statistics made a filter skip rows. Every flip in the bytes the footer's checksum
/// covers is now refused by name, and the footer holds no statistics to spoil.
#[test]
fn a_bit_flipped_in_a_processes_or_capture_file_is_refused_not_answered() {
    if !bpf_available("a_bit_flipped_in_a_processes_or_capture_file_is_refused_not_answered") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("cap");
    assert!(
        record(
            &capture,
            &["sh", "-c", "ls / >/dev/null; cat /etc/hostname"]
        )
        .status
        .success()
    );
    for (table, sql) in [
        // A filter, so that statistics a flip could spoil would skip rows.
        (
            "processes",
            "SELECT * FROM processes WHERE pid > 1 ORDER BY pid, start_ts",
        ),
        ("capture", "SELECT * FROM capture"),
    ] {
        let clean = analyze(&["query", path(&capture), sql, "--format", "csv"]);
        assert!(clean.status.success(), "{}", one_error_line(&clean));
        // The file with rows: `processes/` also holds the empty one written at the start.
        let file = parquet_files(&capture.join(table))
            .into_iter()
            .max_by_key(|f| fs::metadata(f).unwrap().len())
            .unwrap();
        let bytes = fs::read(&file).unwrap();
        // The footer's checksum covers every byte before the footer: these files have no
        // page index.
        let covered = 4..bytes.len() - 8 - footer_len(&bytes);
        let tries = 40;
        for i in 0..tries {
            let at = covered.start + (covered.end - covered.start) * i / tries + i % 5;
            assert!(
                refused_by_name(
                    &capture,
                    &file,
                    sql,
                    &clean.stdout,
                    (&bytes, at, 1 << (i % 8))
                ),
                "a bit flipped at byte {at} of {} was answered",
                file.display()
            );
        }
        // The footer after them: the same answer or the damaged-file line, never another
        // answer.
        for at in covered.end..bytes.len() - 8 {
            refused_by_name(
                &capture,
                &file,
                sql,
                &clean.stdout,
                (&bytes, at, [4u8, 32, 1][at % 3]),
            );
        }
        fs::write(&file, &bytes).unwrap();
    }
}

/// A copy that lacks some of a finished capture's files (a copy cut short, a store that
/// lost objects) holds fewer calls than its recorder wrote: every command says how many
/// are missing, from the rows its files hold against the capture row's `events`. One with
/// another capture's file copied in holds more, and says so.
#[test]
fn a_copy_missing_files_says_how_many_calls_it_lacks() {
    if !bpf_available("a_copy_missing_files_says_how_many_calls_it_lacks") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    two_run_capture(&whole);
    let copy = tmp.path().join("copy");
    copy_dir(&whole, &copy);
    let files = parquet_files(&copy.join("syscalls"));
    fs::remove_file(files.last().unwrap()).unwrap();

    let sql = "SELECT count(*) FROM syscalls";
    let written = scalar(&whole, "SELECT sum(events) FROM capture");
    assert_eq!(scalar(&whole, sql), written);
    let held = scalar(&copy, sql);
    assert!(0 < held && held < written, "{held} of {written}");
    let warning = format!(
        "warning: capture {}: it holds {held} of the {written} calls its recorder kept; {} \
         are in files missing here (not copied, lost by a store, or deleted by --max-size \
         once --upload had shipped them): counts over the whole capture are short by that \
         many",
        copy.display(),
        written - held
    );
    let report = tmp.path().join("r.md");
    let commands = [
        vec!["summary", path(&copy)],
        vec!["query", path(&copy), sql],
        vec!["report", path(&copy), "--output", path(&report)],
    ];
    for args in commands {
        let out = analyze(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(stderr.lines().any(|l| l == warning), "{args:?}: {stderr}");
    }
    let out = analyze(&["summary", path(&whole)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("missing here"), "{stderr}");

    // The other way: a syscalls file of another capture copied in. Its calls were counted
    // as this capture's without a word.
    let other = tmp.path().join("other");
    let out = tracepost_e2e::record_with(&other, &["-q"], &["ls", "/"]);
    assert!(out.status.success(), "{out:?}");
    let foreign = parquet_files(&other.join("syscalls"));
    let mixed = tmp.path().join("mixed");
    copy_dir(&whole, &mixed);
    fs::copy(
        &foreign[0],
        mixed.join("syscalls").join("part-from-elsewhere.parquet"),
    )
    .unwrap();
    let extra = scalar(&other, sql);
    assert!(extra > 0);
    assert_eq!(scalar(&mixed, sql), written + extra);
    let warning = format!(
        "warning: capture {}: it holds {} calls, {extra} more than the {written} its recorder \
         kept: its syscalls/ holds files another recorder wrote (copied in from another \
         capture?), and answers count their calls too",
        mixed.display(),
        written + extra,
    );
    for args in [
        vec!["summary", path(&mixed)],
        vec!["query", path(&mixed), sql],
    ] {
        let out = analyze(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {stderr}");
        assert!(stderr.lines().any(|l| l == warning), "{args:?}: {stderr}");
    }
}

/// A copy without `aggregates/` or `processes/` (a copy of `syscalls/` alone, a sync that
/// left a directory out) read as a whole capture: a `--min-duration` capture's counted
/// calls and errors were gone from `summary` and `errors`, and nothing said so. Every
/// recorder gives every table a file as it starts, so a table without one is named.
#[test]
fn a_copy_without_a_table_says_what_it_lacks() {
    if !bpf_available("a_copy_without_a_table_says_what_it_lacks") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let out = tracepost_e2e::record_with(
        &whole,
        &["-q", "--min-duration", "1s"],
        &["ls", "/", "/nonexistent"],
    );
    assert_eq!(out.status.code(), Some(2), "ls's own status: {out:?}");
    let out = analyze(&["summary", path(&whole)]);
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("holds no file"),
        "{out:?}"
    );
    let lacks = [
        (
            "aggregates",
            "the calls the kernel only counted (--min-duration, --failed, a full buffer) are \
             missing from every count, and their errors too",
        ),
        (
            "processes",
            "`processes` is empty: no command lines, parents or exit codes",
        ),
    ];
    for (table, what) in lacks {
        let copy = tmp.path().join(format!("without-{table}"));
        copy_dir(&whole, &copy);
        // Emptied, and for aggregates removed: both are a table without a file.
        match table {
            "aggregates" => fs::remove_dir_all(copy.join(table)).unwrap(),
            _ => {
                for f in parquet_files(&copy.join(table)) {
                    fs::remove_file(f).unwrap();
                }
            }
        }
        let warning = format!(
            "warning: capture {}: {table}/ holds no file (a copy that left it out?): {what}",
            copy.display()
        );
        for args in [
            vec!["summary", path(&copy)],
            vec!["query", path(&copy), "errors"],
        ] {
            let out = analyze(&args);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "{args:?}: {stderr}");
            assert!(stderr.lines().any(|l| l == warning), "{args:?}: {stderr}");
        }
    }
}

/// A copy missing some of `aggregates`' files, where its recorder lost calls: the capture
/// row's `lost_events` says how many `aggregates` must count, and `summary` read a tenth
/// of the calls made without a word.
#[test]
fn a_copy_missing_counted_calls_says_how_many() {
    if !bpf_available("a_copy_missing_counted_calls_says_how_many") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let out = tracepost_e2e::record_with(
        &whole,
        &["-q", "--buffer-size", "32KiB"],
        &[
            "python3",
            "-c",
            "import os\nfor i in range(300000): os.getppid()",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let lost = scalar(&whole, "SELECT sum(lost_events) FROM capture");
    assert!(lost > 0, "a 32 KiB buffer lost none of 300,000 calls");
    let counted = "SELECT coalesce(CAST(sum(calls) AS BIGINT), 0) FROM aggregates \
                   WHERE reason IN ('ring_full', 'thread_table_full')";
    assert_eq!(scalar(&whole, counted), lost, "every lost call is counted");
    // Whole, narrowed or not: narrowed, `aggregates` holds that part of the counts only.
    let pid = scalar(&whole, "SELECT min(pid) FROM syscalls").to_string();
    for narrow in [
        &[][..],
        &["--pid", pid.as_str()][..],
        &["--until", "+1ms"][..],
    ] {
        let mut args = vec!["summary", path(&whole)];
        args.extend_from_slice(narrow);
        let out = analyze(&args);
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("files missing here"),
            "{narrow:?}: {out:?}"
        );
    }
    let copy = tmp.path().join("copy");
    copy_dir(&whole, &copy);
    // The file that counts the most goes.
    let biggest = parquet_files(&copy.join("aggregates"))
        .into_iter()
        .max_by_key(|f| fs::metadata(f).unwrap().len())
        .unwrap();
    fs::remove_file(&biggest).unwrap();
    let held = match parquet_files(&copy.join("aggregates")).is_empty() {
        true => 0,
        false => scalar(&copy, counted),
    };
    assert!(held < lost, "{held} of {lost}");
    let warning = format!(
        "warning: capture {}: its aggregates count {held} of the {lost} calls its recorder \
         lost (and counted there); {} are in aggregates files missing here (not copied, or \
         lost by a store): counts and errors are short by that many",
        copy.display(),
        lost - held
    );
    let out = analyze(&["summary", path(&copy)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.lines().any(|l| l == warning), "{stderr}");
}

/// A file copied beside itself in a table's directory (a second download, `part-000001
/// (1).parquet`) is read too, and its calls count twice: every command says which two
/// files hold the same rows.
#[test]
fn a_file_copied_beside_itself_is_named() {
    if !bpf_available("a_file_copied_beside_itself_is_named") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("cap");
    two_run_capture(&capture);
    let out = analyze(&["summary", path(&capture)]);
    assert!(out.status.success());
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let original = parquet_files(&capture.join("syscalls")).remove(1);
    let copy = capture.join("syscalls/part-000002 (1).parquet");
    fs::copy(&original, &copy).unwrap();
    let out = analyze(&["summary", path(&capture)]);
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    // Files are read in name order, and " (1)" sorts before ".parquet". The copy is the
    // one warning: not also a file another recorder wrote (helper-69).
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        stderr.lines().next(),
        Some(
            format!(
                "warning: capture {}: {} holds the same rows as {}, a copy beside it: both are \
                 read, and their rows count twice; move one out",
                capture.display(),
                original.display(),
                copy.display()
            )
            .as_str()
        ),
        "{stderr}"
    );
    // What looks like data but is not read is named: a hidden copy (DuckDB's
    // `*.parquet` reads it), one named `.PARQUET`, a directory (pandas reads it).
    fs::remove_file(&copy).unwrap();
    fs::copy(&original, capture.join("syscalls/.hidden.parquet")).unwrap();
    fs::copy(&original, capture.join("syscalls/part-9.PARQUET")).unwrap();
    fs::create_dir(capture.join("syscalls/sub")).unwrap();
    fs::copy(&original, capture.join("syscalls/sub/part-000001.parquet")).unwrap();
    let out = analyze(&["summary", path(&capture)]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        format!(
            "warning: capture {}: syscalls/ holds what analyze does not read: .hidden.parquet \
             (hidden), part-9.PARQUET (not named .parquet), sub (a directory); other readers \
             may read it, and answer otherwise",
            capture.display()
        )
    );
    fs::remove_file(capture.join("syscalls/.hidden.parquet")).unwrap();
    fs::remove_file(capture.join("syscalls/part-9.PARQUET")).unwrap();
    fs::remove_dir_all(capture.join("syscalls/sub")).unwrap();
    // A copy of a run's capture row: named, and its run counted once (not as calls
    // missing from the files).
    let row = parquet_files(&capture.join("capture")).remove(0);
    let row_copy = capture.join("capture").join(format!(
        "{} (1).parquet",
        row.file_stem().unwrap().to_str().unwrap()
    ));
    fs::copy(&row, &row_copy).unwrap();
    let out = analyze(&["summary", path(&capture)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(lines[0].contains("holds the same rows as"), "{stderr}");

    // Two runs of `-p` of one process write the same `processes` row, in files of the
    // same bytes: not a copy.
    let attached = tmp.path().join("attached");
    let mut sleeper = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let pid = sleeper.id().to_string();
    for _ in 0..2 {
        let out = Command::new(tracepost_e2e::bin("record"))
            .args(["-q", "-p", &pid, "-d", "300ms", "-o"])
            .arg(&attached)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let _ = sleeper.kill();
    let _ = sleeper.wait();
    let out = analyze(&["summary", path(&attached)]);
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
