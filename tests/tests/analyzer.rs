//! The postmortem toolkit on real captures: summary against strace, canned queries and
//! narrowing, reports for tickets, diff, several captures at once, and the SQL functions.
use std::{collections::BTreeMap, path::Path, process::Command};

use serde_json::Value;
use tracepost_e2e::{
    bin, bpf_available, build_program, query, record, record_command, record_with, strace_counts,
};

fn analyze(args: &[&str]) -> std::process::Output {
    Command::new(bin("analyze")).args(args).output().unwrap()
}

fn json(args: &[&str]) -> Vec<BTreeMap<String, Value>> {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(["--format", "json"]);
    let out = analyze(&all);
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn summary_counts_match_strace_even_when_detail_was_shed() {
    if !bpf_available("summary_counts_match_strace_even_when_detail_was_shed") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program(tmp.path(), "short_and_slow");
    Command::new(&exe).output().unwrap();
    let strace = strace_counts(tmp.path(), &[path(&exe)]);
    let capture = tmp.path().join("capture");
    let out = record_with(&capture, &["-q", "--min-duration", "5ms"], &[path(&exe)]);
    assert!(out.status.success());

    let csv = analyze(&["summary", path(&capture), "--format", "csv"]);
    let header = String::from_utf8_lossy(&csv.stdout)
        .lines()
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        header,
        "syscall,calls,errors,total_ns,avg_ns,p50_ns,p90_ns,p99_ns,max_ns,time_pct"
    );
    let rows = json(&["summary", path(&capture)]);
    let mut got: BTreeMap<String, (i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["syscall"].as_str().unwrap().to_string(),
                (r["calls"].as_i64().unwrap(), r["errors"].as_i64().unwrap()),
            )
        })
        .collect();
    // strace -c leaves out exit_group: it never returns.
    assert_eq!(got.remove("exit_group"), Some((1, 0)));
    assert_eq!(got, strace);
    // Sorted by total time: the three 20 ms sleeps, recorded one by one, come first.
    assert_eq!(rows[0]["syscall"], Value::from("clock_nanosleep"));
    assert!(rows[0]["p50_ns"].as_i64().unwrap() >= 20_000_000);
    // exit_group's share is NULL: it has no time to share.
    let share: f64 = rows.iter().filter_map(|r| r["time_pct"].as_f64()).sum();
    assert!((share - 100.0).abs() < 0.1, "{share}");

    let errnos = json(&["summary", path(&capture), "--by", "errno"]);
    let ebadf = errnos.iter().find(|r| r["errno"] == "EBADF").unwrap();
    assert_eq!(ebadf["calls"].as_i64(), Some(20));

    // The report's rate chart draws the counted calls too, and says how; the latency
    // charts, of the recorded calls only, say what they leave out.
    let counted = json(&[
        "query",
        path(&capture),
        "SELECT CAST(sum(calls) AS BIGINT) AS n FROM aggregates",
    ])[0]["n"]
        .as_i64()
        .unwrap();
    assert!(counted > 20, "{counted}");
    let html = tmp.path().join("r.html");
    assert!(
        analyze(&["report", path(&capture), "-o", path(&html)])
            .status
            .success()
    );
    let page = std::fs::read_to_string(&html).unwrap();
    let captions: Vec<&str> = page
        .split("<figcaption class=\"note\">")
        .skip(1)
        .map(|c| &c[..c.find("</figcaption>").unwrap()])
        .collect();
    assert_eq!(
        captions.len(),
        page.matches("<figure>").count(),
        "{captions:?}"
    );
    assert_eq!(
        captions[1],
        format!(
            "With the {counted} calls the kernel counted without recording them \
             (<code>record --min-duration</code>, <code>--failed</code>, or a full ring), \
             each interval's count spread evenly over it: the kernel counts in intervals of \
             about a second."
        )
    );
    for (i, caption) in captions.iter().enumerate().filter(|(i, _)| *i != 1) {
        assert_eq!(
            *caption,
            format!(
                "Of the recorded calls only: {counted} calls the kernel counted without \
                 recording them are not in it."
            ),
            "chart {i}"
        );
    }
}

#[test]
fn canned_queries_narrowing_files_and_functions() {
    if !bpf_available("canned_queries_narrowing_files_and_functions") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    assert!(
        record(&a, &["sh", "-c", "cat /etc/hostname >/dev/null; exit 0"])
            .status
            .success()
    );
    assert!(record(&b, &["ls", "/nonexistent"]).status.code() == Some(2));

    let list = String::from_utf8(analyze(&["list"]).stdout).unwrap();
    for name in [
        "latency-by-syscall",
        "latency-by-process",
        "slowest-calls",
        "errors",
        "file-io",
        "network",
        "timeline",
        "processes",
        "lost-events",
    ] {
        assert!(list.contains(name), "{name} missing from {list}");
        let out = analyze(&["query", path(&a), name]);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Narrowing applies before the SQL: a pid filter leaves only that pid's rows.
    let cat = query(&[&a], "SELECT pid FROM processes WHERE comm = 'cat'");
    let cat_pid = cat[0]["pid"].as_i64().unwrap().to_string();
    let pids = json(&[
        "query",
        path(&a),
        "SELECT DISTINCT pid FROM syscalls",
        "--pid",
        &cat_pid,
    ]);
    assert_eq!(pids.len(), 1);
    assert_eq!(pids[0]["pid"].as_i64().unwrap().to_string(), cat_pid);
    let by_name = json(&[
        "query",
        path(&a),
        "SELECT DISTINCT comm FROM syscalls",
        "--comm",
        "cat",
    ]);
    assert_eq!(by_name.len(), 1);
    // A pid or name that no capture holds answers nothing, and says so: a mistyped pid
    // read as "that process made no calls". One held by either capture says nothing.
    let count = "SELECT count(*) AS n FROM syscalls";
    let both = |narrowing: &[&str]| {
        let mut args = vec!["query", path(&a), path(&b), count];
        args.extend(narrowing);
        analyze(&args)
    };
    let held = both(&["--pid", &cat_pid, "--comm", "cat"]);
    assert!(held.status.success() && held.stderr.is_empty(), "{held:?}");
    let typo = both(&[
        "--pid",
        "2147483647",
        "--pid",
        &cat_pid,
        "--comm",
        "no-such-name",
    ]);
    let stderr = String::from_utf8_lossy(&typo.stderr);
    assert!(typo.status.success(), "{stderr}");
    assert_eq!(
        stderr.lines().collect::<Vec<_>>(),
        [
            "warning: --pid 2147483647: no process with that id in any of the 2 captures, so \
             the answer holds nothing of it (a thread's id is `tid`; its process's is `pid`)",
            "warning: --comm no-such-name: no process or thread of that name in any of the 2 \
             captures, so the answer holds nothing of it",
        ]
    );
    // Each held, but by different processes: the answer, which keeps what both keep, is
    // empty, and says so.
    let apart = both(&["--pid", &cat_pid, "--comm", "ls"]);
    let stderr = String::from_utf8_lossy(&apart.stderr);
    assert!(apart.status.success(), "{stderr}");
    assert_eq!(
        stderr.trim_end(),
        format!(
            "warning: --pid {cat_pid} and --comm ls: no process in any of the 2 captures has \
             both that id and that name, and the answer keeps only what both keep, so it holds \
             nothing"
        )
    );
    // A negative pid or time gets a line that names the flag, not clap's "unexpected
    // argument '-1' found".
    for (flag, value, said) in [
        ("--pid", "-5", "error: invalid value '-5' for '--pid <PID>'"),
        ("--since", "-1s", "error: --since -1s: not a time"),
        ("--until", "-1s", "error: --until -1s: not a time"),
    ] {
        let out = analyze(&["query", path(&a), count, flag, value]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success() && stderr.starts_with(said),
            "{flag} {value}: {stderr}"
        );
    }
    let none = json(&[
        "query",
        path(&a),
        "SELECT count(*) AS n FROM syscalls",
        "--since",
        "+1h",
    ]);
    assert_eq!(none[0]["n"].as_i64(), Some(0));
    // Such a window says why the answer is empty: a wrong day or zone reads otherwise as
    // "nothing happened". A window inside the recording says nothing.
    let sql = "SELECT count(*) AS n FROM syscalls";
    let outside = analyze(&["query", path(&a), sql, "--since", "+1h"]);
    let stderr = String::from_utf8_lossy(&outside.stderr);
    assert!(outside.status.success(), "{stderr}");
    let said = format!("warning: capture {}: the window from ", path(&a));
    assert!(
        stderr.contains(&said) && stderr.contains("lies outside its recording ("),
        "{stderr}"
    );
    let before = analyze(&["query", path(&a), sql, "--until", "2000-01-01T00:00:00Z"]);
    let stderr = String::from_utf8_lossy(&before.stderr);
    assert!(
        stderr.contains("the window before 2000-01-01T00:00:00.000000Z lies outside"),
        "{stderr}"
    );
    let inside = analyze(&["query", path(&a), sql, "--since", "+0s"]);
    assert!(inside.stderr.is_empty(), "{inside:?}");
    // Over two captures, each failed call is its own capture's: a pid of one host is not
    // a process of another, so `errors` keeps them apart.
    let both = json(&[
        "query",
        path(&a),
        path(&b),
        "errors",
        "--param",
        "limit=1000",
    ]);
    for c in [&a, &b] {
        let failed = query(&[c], "SELECT count(errno) AS n FROM syscalls")[0]["n"]
            .as_i64()
            .unwrap();
        let rows: i64 = both
            .iter()
            .filter(|r| r["capture"] == path(c))
            .map(|r| r["calls"].as_i64().unwrap())
            .sum();
        assert!(failed > 0, "{c:?} has failed calls");
        assert_eq!(rows, failed, "{c:?}: {both:?}");
    }
    // A diff whose window holds no call of a side says so: its every row would otherwise
    // read as a change.
    let out = Command::new(bin("analyze"))
        .args(["diff", path(&a), path(&b), "--since", "+1h"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for (side, c) in [("baseline", &a), ("incident", &b)] {
        assert!(
            stderr.contains(&format!(
                "warning: diff: the {side} {} has no calls (in the window given)",
                path(c)
            )),
            "{stderr}"
        );
    }
    let out = Command::new(bin("analyze"))
        .args(["diff", path(&a), path(&b)])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("has no calls"));
    // A .sql file, and a parameter.
    let file = tmp.path().join("mine.sql");
    std::fs::write(
        &file,
        "-- name: mine\nSELECT count(*) AS n FROM processes\n",
    )
    .unwrap();
    let n = json(&["query", path(&a), path(&file)]);
    assert_eq!(n[0]["n"].as_i64(), Some(2));
    let slow = json(&["query", path(&a), "slowest-calls", "--param", "limit=3"]);
    assert_eq!(slow.len(), 3);
    // Several captures at once, told apart by the capture column.
    let per = json(&[
        "query",
        path(&a),
        path(&b),
        "SELECT capture, count(*) AS n FROM syscalls GROUP BY 1 ORDER BY 1",
    ]);
    let names: Vec<&str> = per.iter().map(|r| r["capture"].as_str().unwrap()).collect();
    assert_eq!(names, [path(&a), path(&b)]);
    // errno_name agrees with the recorder on every failed call.
    let disagree = json(&[
        "query",
        path(&b),
        "SELECT count(*) AS n FROM syscalls WHERE errno IS NOT NULL AND errno_name(ret) <> errno",
    ]);
    assert_eq!(disagree[0]["n"].as_i64(), Some(0));
    let fmt = json(&[
        "query",
        path(&b),
        "SELECT fmt_duration(1500000) AS d, fmt_bytes(2048) AS b",
    ]);
    assert_eq!(fmt[0]["d"], Value::from("1.5ms"));
    assert_eq!(fmt[0]["b"], Value::from("2.0 KiB"));
    // --output writes a private file.
    let out_file = tmp.path().join("errors.csv");
    let out = analyze(&[
        "query",
        path(&b),
        "errors",
        "-f",
        "csv",
        "-o",
        path(&out_file),
    ]);
    assert!(out.status.success());
    assert!(
        std::fs::read_to_string(&out_file)
            .unwrap()
            .starts_with("capture,syscall,errno,pid")
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&out_file).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // Mistakes get one line naming them.
    let bad = analyze(&["query", path(&a), "slowest"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr).trim(),
        "error: no canned query named `slowest` (see `analyze list`)"
    );
}

#[test]
fn reports_and_diff() {
    if !bpf_available("reports_and_diff") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let incident = tmp.path().join("incident");
    assert!(record(&base, &["true"]).status.success());
    assert!(record(&incident, &["ls", "/nonexistent"]).status.code() == Some(2));

    let md = tmp.path().join("r.md");
    let out = analyze(&["report", path(&incident), "-o", path(&md)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&md).unwrap();
    for heading in [
        "# Incident report",
        "## Capture",
        "## Top findings",
        "### Worst latency (p99)",
        "### Error bursts",
        "### Hottest files",
        "### latency-by-syscall",
        "### lost-events",
    ] {
        assert!(text.contains(heading), "{heading} missing");
    }
    assert!(
        text.contains("| complete | 100.0% |"),
        "complete, nothing lost, as one fact of a key/value list"
    );
    assert!(text.contains("| statx | ENOENT |"), "the errors section");
    assert!(text.contains("| /nonexistent |"), "with its example path");

    let html = tmp.path().join("r.html");
    let out = analyze(&["report", path(&incident), "-o", path(&html)]);
    assert!(out.status.success());
    let page = std::fs::read_to_string(&html).unwrap();
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert_eq!(
        page.matches("<svg").count(),
        2 + 4,
        "heatmap, per-second, 4 histograms"
    );
    // Self-contained: nothing to fetch (report_in_browser.rs checks it in Chromium).
    assert!(!page.contains("src=") && !page.contains("href="));
    // The findings are the same in both formats: one model, two layouts.
    for finding in ["Worst latency (p99)", "Error bursts", "Hottest files"] {
        assert!(page.contains(&format!("<h3>{finding}</h3>")), "{finding}");
    }
    assert!(
        page.contains("<td>statx</td><td>ENOENT</td>"),
        "the errors section"
    );

    let diff = json(&["diff", path(&base), path(&incident)]);
    let statx = diff
        .iter()
        .find(|r| r["kind"] == "syscall" && r["name"] == "statx")
        .unwrap_or_else(|| panic!("{diff:?}"));
    assert_eq!(statx["base_per_s"], Value::Null);
    assert_eq!(statx["incident_error_pct"].as_f64(), Some(100.0));
    let bad = analyze(&["diff", path(&base), path(&base)]);
    assert_eq!(bad.status.code(), Some(1));
}

/// A report says what it cannot show: a capture with no call in scope, and narrowing that
/// leaves calls out. Files whose names hold a colon are files, not peers; a finding's
/// parameter is a count or refused in one line.
#[test]
fn reports_say_what_they_leave_out() {
    if !bpf_available("reports_say_what_they_leave_out") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let none = tmp.path().join("none");
    assert!(
        record_with(&none, &["-e", "mount"], &["true"])
            .status
            .success()
    );
    let md = tmp.path().join("none.md");
    assert!(
        analyze(&["report", path(&none), "-o", path(&md)])
            .status
            .success()
    );
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(text.contains("| complete | no calls in scope |"), "{text}");

    let colon = tmp.path().join("d:ir");
    std::fs::create_dir(&colon).unwrap();
    std::fs::write(colon.join("f:ile"), "x").unwrap();
    let file = colon.join("f:ile");
    let c = tmp.path().join("c");
    assert!(record(&c, &["cat", path(&file)]).status.success());
    let peers = json(&["query", path(&c), "hottest-peers"]);
    assert!(peers.is_empty(), "{peers:?}");
    let files = json(&["query", path(&c), "hottest-files"]);
    assert!(
        files
            .iter()
            .any(|r| r["file"].as_str() == Some(path(&file))),
        "{files:?}"
    );

    let md = tmp.path().join("narrowed.md");
    let out = analyze(&["report", path(&c), "--since", "+1h", "-o", path(&md)]);
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&md).unwrap();
    assert!(
        text.contains(
            "| narrowed_to | --since +1h (first_call, last_call, calls_shown, findings, \
             charts and details; the other facts cover the whole capture) |"
        ),
        "{text}"
    );
    // The window holds no call, and says so, beside the capture's own count.
    assert!(text.contains("| calls_shown | 0 |"), "{text}");
    assert!(text.contains("| first_call |  |"), "{text}");
    let events = json(&["query", path(&c), "SELECT events FROM capture"]);
    assert!(events[0]["events"].as_i64().unwrap() > 0, "{events:?}");
    assert!(
        text.contains(&format!("| events | {} |", events[0]["events"])),
        "{text}"
    );

    let bad = analyze(&["query", path(&c), "worst-latency", "--param", "limit=NaN"]);
    assert_eq!(bad.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&bad.stderr).trim(),
        "error: parameter `limit` must be a whole number, not `NaN`"
    );
    let twice = analyze(&[
        "query",
        path(&c),
        "worst-latency",
        "--param",
        "limit=2",
        "--param",
        "limit=3",
    ]);
    assert_eq!(twice.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&twice.stderr).trim(),
        "error: parameter `limit` is given twice"
    );
}

/// `summary --by BY` on a real capture: it runs, and its `calls` add up to the recorded
/// rows it covers (nothing is filtered, so `aggregates` is empty).
fn summary_accounts_for_every_call(by: &str, covered: &str, key: &[&str], key_sql: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("c");
    let out = record(
        &capture,
        &[
            "sh",
            "-c",
            "cat /etc/hostname >/dev/null; ls /nonexistent 2>/dev/null; exit 0",
        ],
    );
    assert!(out.status.success());
    let c = path(&capture);
    let rows = json(&["summary", c, "--by", by]);
    let calls: i64 = rows.iter().map(|r| r["calls"].as_i64().unwrap()).sum();
    let want = tracepost_e2e::scalar(
        &capture,
        &format!("SELECT count(*) FROM syscalls WHERE {covered}"),
    );
    assert!(want > 0);
    assert_eq!(calls, want, "--by {by}");
    let groups = tracepost_e2e::scalar(
        &capture,
        &format!("SELECT count(*) FROM (SELECT DISTINCT {key_sql} FROM syscalls WHERE {covered})"),
    );
    assert_eq!(rows.len() as i64, groups, "--by {by}: one row per group");
    // time_pct is a share of every call's time (these captures count none apart), not of
    // the rows': the failed calls of --by errno took a few percent, not all of it.
    let all_ns = tracepost_e2e::scalar(&capture, "SELECT sum(duration_ns) FROM syscalls");
    for r in rows.iter().filter(|r| !r["total_ns"].is_null()) {
        let want = 100.0 * r["total_ns"].as_f64().unwrap() / all_ns as f64;
        let got = r["time_pct"].as_f64().unwrap();
        assert!(
            (got - want).abs() <= 0.0051,
            "--by {by}: {got} against {want}: {r:?}"
        );
    }
    for r in &rows {
        for k in key {
            assert!(r.contains_key(*k), "--by {by} lacks {k}: {r:?}");
        }
        for column in [
            "errors", "total_ns", "p50_ns", "p99_ns", "max_ns", "time_pct",
        ] {
            assert!(r.contains_key(column), "--by {by} lacks {column}");
        }
    }
}

#[test]
fn summary_by_syscall_accounts_for_every_call() {
    if bpf_available("summary_by_syscall_accounts_for_every_call") {
        summary_accounts_for_every_call("syscall", "true", &["syscall"], "syscall");
    }
}

#[test]
fn summary_by_process_accounts_for_every_call() {
    if bpf_available("summary_by_process_accounts_for_every_call") {
        summary_accounts_for_every_call("process", "true", &["pid", "comm"], "pid");
    }
}

#[test]
fn summary_by_thread_accounts_for_every_call() {
    if bpf_available("summary_by_thread_accounts_for_every_call") {
        summary_accounts_for_every_call("thread", "true", &["pid", "tid", "comm"], "pid, tid");
    }
}

/// Under `--min-duration`, a process that neither made a slow call nor exited while
/// recorded is only counted in `aggregates`; its row still names it, from `processes`.
#[test]
fn summary_by_process_names_a_process_only_counted() {
    if !bpf_available("summary_by_process_names_a_process_only_counted") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("c");
    let mut busy = Command::new("sh")
        .args(["-c", "while :; do sleep 0.01; done"])
        .spawn()
        .unwrap();
    let out = Command::new(bin("record"))
        .args(["-q", "--min-duration", "1s", "-d", "1s", "-o"])
        .arg(&capture)
        .args(["-p", &busy.id().to_string()])
        .output()
        .unwrap();
    let _ = busy.kill();
    let _ = busy.wait();
    assert!(out.status.success(), "{out:?}");
    let c = path(&capture);
    let shell = format!("SELECT count(*) FROM syscalls WHERE pid = {}", busy.id());
    assert_eq!(
        tracepost_e2e::scalar(&capture, &shell),
        0,
        "no call lasts a second"
    );
    let rows = json(&["summary", c, "--by", "process"]);
    let row = rows
        .iter()
        .find(|r| r["pid"].as_i64() == Some(busy.id() as i64))
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert!(row["calls"].as_i64().unwrap() > 0, "{row:?}");
    assert_eq!(row["comm"].as_str(), Some("sh"), "{rows:?}");
}

#[test]
fn summary_by_file_covers_every_call_with_a_file() {
    if bpf_available("summary_by_file_covers_every_call_with_a_file") {
        summary_accounts_for_every_call(
            "file",
            "coalesce(nullif(path, ''), fd_path) IS NOT NULL",
            &["file"],
            "coalesce(nullif(path, ''), fd_path)",
        );
    }
}

#[test]
fn summary_by_errno_covers_every_failed_call() {
    if bpf_available("summary_by_errno_covers_every_failed_call") {
        summary_accounts_for_every_call("errno", "errno IS NOT NULL", &["errno"], "errno");
    }
}

/// A baseline recorded in full and an incident of the same workload recorded with
/// `--failed` count the same calls and the same error rate in `diff`: the incident's
/// successful calls are in `aggregates`, and diff counts them.
#[test]
fn diff_counts_what_aggregates_counted() {
    if !bpf_available("diff_counts_what_aggregates_counted") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = build_program(tmp.path(), "short_and_slow");
    let base = tmp.path().join("base");
    let incident = tmp.path().join("incident");
    assert!(record(&base, &[path(&exe)]).status.success());
    assert!(
        record_with(&incident, &["-q", "--failed"], &[path(&exe)])
            .status
            .success()
    );
    // The incident recorded only the 20 failed closes one by one.
    assert_eq!(
        tracepost_e2e::scalar(
            &incident,
            "SELECT count(*) FROM syscalls WHERE syscall = 'close'"
        ),
        20
    );
    let diff = json(&["diff", path(&base), path(&incident), "--limit", "1000"]);
    let row = |name: &str| {
        diff.iter()
            .find(|r| r["kind"] == "syscall" && r["name"] == name)
            .unwrap_or_else(|| panic!("{name} not in {diff:?}"))
            .clone()
    };
    let getppid = row("getppid");
    assert_eq!(getppid["base_calls"].as_i64(), Some(1000));
    assert_eq!(getppid["incident_calls"].as_i64(), Some(1000));
    let close = row("close");
    assert_eq!(close["base_calls"], close["incident_calls"]);
    assert_eq!(close["base_error_pct"], close["incident_error_pct"]);
    let sleep = row("clock_nanosleep");
    assert_eq!(sleep["incident_calls"].as_i64(), Some(3));
    // Same workload, same seconds recorded: the rates agree within scheduling noise.
    let (b, i) = (
        getppid["base_per_s"].as_f64().unwrap(),
        getppid["incident_per_s"].as_f64().unwrap(),
    );
    assert!((i / b - 1.0).abs() < 0.5, "{b} vs {i}");
    // --comm keeps the counted calls of the processes with that name.
    let named = json(&[
        "diff",
        path(&base),
        path(&incident),
        "--limit",
        "1000",
        "--comm",
        "short_and_slow",
    ]);
    let getppid = named
        .iter()
        .find(|r| r["kind"] == "syscall" && r["name"] == "getppid")
        .unwrap_or_else(|| panic!("{named:?}"));
    assert_eq!(getppid["base_calls"].as_i64(), Some(1000));
    assert_eq!(getppid["incident_calls"].as_i64(), Some(1000));
    // Per process too: recorded and counted calls go under the same name.
    for r in diff.iter().filter(|r| r["kind"] == "process") {
        assert_eq!(r["base_calls"], r["incident_calls"], "{r:?}");
    }
    // Over several captures a process is one capture's, and counted calls join it.
    let by_process = json(&["summary", path(&base), path(&incident), "--by", "process"]);
    let prog: Vec<_> = by_process
        .iter()
        .filter(|r| r["comm"] == "short_and_slow")
        .collect();
    assert_eq!(prog.len(), 2, "{by_process:?}");
    assert_ne!(prog[0]["capture"], prog[1]["capture"]);
    assert_eq!(prog[0]["calls"], prog[1]["calls"]);
    // Every syscall the baseline saw, the incident counted exactly as often.
    for r in diff.iter().filter(|r| r["kind"] == "syscall") {
        assert_eq!(r["base_calls"], r["incident_calls"], "{r:?}");
        assert_eq!(r["base_error_pct"], r["incident_error_pct"], "{r:?}");
    }
}

/// The rows of the Markdown table under `heading`, as cells.
fn table_after(text: &str, heading: &str) -> Vec<Vec<String>> {
    let start = text
        .find(heading)
        .unwrap_or_else(|| panic!("{heading} missing"));
    text[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

#[test]
fn waiting_is_shown_apart_from_work() {
    if !bpf_available("waiting_is_shown_apart_from_work") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cap = tmp.path().join("cap");
    let script = "sleep 0.2; cat /etc/hostname >/dev/null; ls /usr/lib >/dev/null";
    assert!(record(&cap, &["sh", "-c", script]).status.success());
    let md = tmp.path().join("r.md");
    let out = analyze(&["report", path(&cap), "-o", path(&md)]);
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&md).unwrap();
    let waits = ["wait4", "clock_nanosleep", "vfork"];
    // The work leads: none of the waits is among the calls that took the most time, or
    // among the worst latencies.
    for heading in ["### Most time working", "### Worst latency (p99)"] {
        let rows = table_after(&text, heading);
        for row in &rows {
            assert!(!waits.contains(&row[0].as_str()), "{heading}: {row:?}");
        }
    }
    assert!(!table_after(&text, "### Most time working").is_empty());
    // The waiting is shown apart: the shell waiting for sleep, and sleep's own 200 ms.
    let waiting = table_after(&text, "### Most time waiting");
    let total = |name: &str| -> i64 {
        waiting
            .iter()
            .find(|r| r[0] == name)
            .unwrap_or_else(|| panic!("{name} not in {waiting:?}"))[2]
            .parse()
            .unwrap()
    };
    assert!(total("clock_nanosleep") >= 200_000_000);
    assert!(total("wait4") >= 200_000_000);

    // The canned query uses the same rule: sleep's process waited its 200 ms, and its
    // waiting is not counted as work.
    let rows = json(&["query", path(&cap), "waiting"]);
    let sleep = rows
        .iter()
        .find(|r| r["comm"] == "sleep")
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(sleep["wait_calls"].as_i64(), Some(1));
    assert!(sleep["wait_ns"].as_i64().unwrap() >= 200_000_000);
    assert!(sleep["work_ns"].as_i64().unwrap() < 100_000_000);
    let same = query(
        &[&cap],
        &format!(
            "SELECT sum(duration_ns) AS ns FROM syscalls WHERE pid = {} \
             AND NOT is_waiting(syscall, arg1, fd_path, duration_ns)",
            sleep["pid"]
        ),
    );
    assert_eq!(same[0]["ns"], sleep["work_ns"]);
}

/// A sleep that a stop interrupted ends in `restart_syscall`, which is the rest of the
/// sleep, not work; and a process is named by its main thread, not by a worker that
/// renamed itself and made the last call (helper-90: `restart_syscall` 99.9% of the time
/// working, and the process shown as `worker-thr`).
#[test]
fn a_stopped_sleep_is_waiting_and_a_process_keeps_its_main_threads_name() {
    if !bpf_available("a_stopped_sleep_is_waiting_and_a_process_keeps_its_main_threads_name") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let worker = tmp.path().join("worker.py");
    std::fs::write(
        &worker,
        "import ctypes, os, threading, time\n\
         libc = ctypes.CDLL(None)\n\
         def work():\n    \
             libc.prctl(15, b'worker-thr'); time.sleep(0.05); os.getppid(); os._exit(0)\n\
         r, w = os.pipe()\n\
         threading.Thread(target=work).start()\n\
         os.read(r, 1)\n",
    )
    .unwrap();
    let cap = tmp.path().join("cap");
    let script = format!(
        "sleep 0.5 & p=$!; sleep 0.1; kill -STOP $p; sleep 0.1; kill -CONT $p; wait $p; \
         python3 {}",
        path(&worker)
    );
    let out = record(&cap, &["sh", "-c", &script]);
    assert!(out.status.success(), "{out:?}");
    let all = ["--param", "limit=1000"];
    let rows = json(&["query", path(&cap), "waiting", all[0], all[1]]);
    // `sleep 0.5`, not the two of 0.1 s.
    let sleep = rows
        .iter()
        .filter(|r| r["comm"] == "sleep")
        .max_by_key(|r| r["wait_ns"].as_i64().unwrap_or(0) + r["work_ns"].as_i64().unwrap_or(0))
        .unwrap_or_else(|| panic!("{rows:?}"));
    let resumed = query(
        &[&cap],
        &format!(
            "SELECT count(*) AS n, sum(duration_ns) AS ns FROM syscalls \
             WHERE pid = {} AND syscall = 'restart_syscall'",
            sleep["pid"]
        ),
    );
    assert_eq!(resumed[0]["n"].as_i64(), Some(1), "{resumed:?}");
    assert!(
        resumed[0]["ns"].as_i64().unwrap() >= 200_000_000,
        "{resumed:?}"
    );
    // 500 ms less the 100 ms it was stopped between its two calls.
    assert!(
        sleep["wait_ns"].as_i64().unwrap() >= 350_000_000,
        "{sleep:?}"
    );
    assert!(sleep["work_ns"].as_i64().unwrap() < 50_000_000, "{sleep:?}");
    // The python process: its worker renamed itself and made the last calls.
    let renamed = query(
        &[&cap],
        "SELECT pid FROM syscalls WHERE comm = 'worker-thr' AND syscall = 'exit_group'",
    );
    assert_eq!(renamed.len(), 1, "{renamed:?}");
    let pid = renamed[0]["pid"].clone();
    for (args, key) in [
        (
            vec!["query", path(&cap), "latency-by-process", all[0], all[1]],
            "comm",
        ),
        (vec!["query", path(&cap), "waiting", all[0], all[1]], "comm"),
        (vec!["summary", path(&cap), "--by", "process"], "comm"),
    ] {
        let rows = json(&args);
        let row = rows
            .iter()
            .find(|r| r["pid"] == pid)
            .unwrap_or_else(|| panic!("{args:?}: no {pid} in {rows:?}"));
        assert_eq!(row[key], "python3", "{args:?}: {row:?}");
    }
}

/// A pid the kernel gives again within one capture (a host that wraps `pid_max`): the
/// answers grouped by pid add both processes up, `sleep`'s 300 ms wait shown as `ls`'s
/// (helper-90). They now say so, naming the pid and both programs; the answers that are
/// not by process do not.
#[test]
fn a_pid_given_twice_is_named_where_answers_are_grouped_by_pid() {
    if !bpf_available("a_pid_given_twice_is_named_where_answers_are_grouped_by_pid") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let program = build_program(tmp.path(), "pid_again");
    let cap = tmp.path().join("cap");
    let out = record(&cap, &[program.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let pid = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let rows = query(
        &[&cap],
        &format!("SELECT comm FROM processes WHERE pid = {pid} ORDER BY start_ts"),
    );
    let names: Vec<_> = rows.iter().map(|r| r["comm"].as_str().unwrap()).collect();
    assert_eq!(names, ["sleep", "ls"]);
    let warning = format!(
        "warning: capture {}: pid {pid} was given to more than one process (sleep, then ls): \
         this answer, grouped by pid, adds them up; `processes` has a row for each, to tell \
         them apart by `ts`",
        cap.display()
    );
    for args in [
        vec!["query", path(&cap), "latency-by-process"],
        vec!["query", path(&cap), "waiting"],
        vec!["summary", path(&cap), "--by", "process"],
    ] {
        let out = analyze(&args);
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.lines().any(|l| l == warning), "{args:?}: {stderr}");
    }
    for args in [
        vec!["query", path(&cap), "latency-by-syscall"],
        vec!["summary", path(&cap)],
    ] {
        let out = analyze(&args);
        assert!(out.status.success(), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("was given to more"), "{args:?}: {stderr}");
    }
}

/// `file-io` totals each file's bytes by direction, and its calls and errors: a file
/// written once and read back whole twice, by programs whose reads end at EOF, then once
/// each by sendfile, copy_file_range and splice (as `cp` and web servers read files),
/// which `bytes_read` once left out.
#[test]
fn file_io_counts_each_files_bytes_by_direction() {
    if !bpf_available("file_io_counts_each_files_bytes_by_direction") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("data.bin");
    let cap = tmp.path().join("cap");
    let f = path(&file);
    let copy = tmp.path().join("copy.bin");
    let moves = format!(
        "import os\n\
         i = os.open('{f}', os.O_RDONLY)\n\
         assert os.sendfile(os.open('/dev/null', os.O_WRONLY), i, 0, 12345) == 12345\n\
         o = os.open('{}', os.O_WRONLY | os.O_CREAT, 0o600)\n\
         assert os.copy_file_range(i, o, 12345, 0, 0) == 12345\n\
         r, w = os.pipe()\n\
         assert os.splice(i, w, 12345, 0) == 12345\n",
        copy.display()
    );
    let script = format!(
        "head -c 12345 /dev/zero > {f}; cat {f} > /dev/null; cat {f} > /dev/null; \
         /usr/bin/python3 -c \"$MOVES\""
    );
    let out = record_command(&cap, &[], &["sh", "-c", &script])
        .env("MOVES", &moves)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let moved = query(
        &[&cap],
        &format!(
            "SELECT syscall, sum(bytes) AS bytes FROM syscalls WHERE fd_path = '{f}' \
             AND syscall IN ('sendfile', 'copy_file_range', 'splice') GROUP BY 1 ORDER BY 1"
        ),
    );
    let moved: Vec<(String, i64)> = moved
        .iter()
        .map(|r| {
            (
                r["syscall"].as_str().unwrap().to_string(),
                r["bytes"].as_i64().unwrap(),
            )
        })
        .collect();
    let each = |name: &str| (name.to_string(), 12345);
    assert_eq!(
        moved,
        [each("copy_file_range"), each("sendfile"), each("splice")]
    );
    let rows = json(&["query", path(&cap), "file-io"]);
    let row = rows
        .iter()
        .find(|r| r["file"] == f)
        .unwrap_or_else(|| panic!("{f} not in {rows:?}"));
    assert_eq!(row["bytes_written"].as_i64(), Some(12345), "{row:?}");
    assert_eq!(row["bytes_read"].as_i64(), Some(5 * 12345), "{row:?}");
    assert_eq!(row["errors"].as_i64(), Some(0), "{row:?}");
    // The same calls counted one by one from the table.
    let calls = tracepost_e2e::scalar(
        &cap,
        &format!("SELECT count(*) FROM syscalls WHERE fd_path = '{f}'"),
    );
    assert_eq!(row["calls"].as_i64(), Some(calls), "{row:?}");
}

/// Found by a hostile review: `network` counted every non-blocking connect as a failure
/// (curl, Go, nginx and Java all connect so), `errno_name(ret)` named successful returns
/// (an fd of 3 as `ESRCH`), and `summary` averaged over calls with no time (0 ns for
/// `exit_group`).
#[test]
fn connects_in_progress_are_not_failures_and_only_failures_have_errno_names() {
    if !bpf_available("connects_in_progress_are_not_failures_and_only_failures_have_errno_names") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/connects.py");
    let capture = tmp.path().join("capture");
    let out = record(&capture, &["python3", path(&script)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ports = String::from_utf8(out.stdout).unwrap();
    let [listening, closed, completed, refused_later, full] =
        ports.split_whitespace().collect::<Vec<_>>()[..]
    else {
        panic!("{ports}")
    };

    let rows = json(&["query", path(&capture), "network"]);
    let row = |port: &str| {
        rows.iter()
            .find(|r| r["addr"] == format!("127.0.0.1:{port}"))
            .unwrap_or_else(|| panic!("no connect to {port}: {rows:?}"))
    };
    let pending = row(listening);
    assert_eq!(pending["connects"].as_i64(), Some(1));
    assert_eq!(pending["failures"].as_i64(), Some(0));
    assert_eq!(pending["in_progress"].as_i64(), Some(1));
    assert_eq!(pending["an_errno"], Value::Null);
    let refused = row(closed);
    assert_eq!(refused["failures"].as_i64(), Some(1));
    assert_eq!(refused["an_errno"], Value::from("ECONNREFUSED"));
    assert_eq!(refused["in_progress"].as_i64(), Some(0));
    // A second connect on a pending socket says how its attempt ended: connects count
    // attempts, EALREADY is no failure, and a close ends an attempt (helper-87).
    let outcome = |port: &str| {
        let r = row(port);
        (
            r["connects"].as_i64().unwrap(),
            r["failures"].as_i64().unwrap(),
            r["an_errno"].as_str().map(str::to_string),
            r["in_progress"].as_i64().unwrap(),
        )
    };
    assert_eq!(outcome(completed), (1, 0, None, 0));
    assert_eq!(
        outcome(refused_later),
        (1, 1, Some("ECONNREFUSED".to_string()), 0)
    );
    assert_eq!(outcome(full), (3, 0, None, 2));
    // Under --failed the closes are not recorded, nor the connect that filled the queue:
    // an EINPROGRESS begins an attempt of its own all the same (helper-89).
    let failed = tmp.path().join("failed");
    let out = tracepost_e2e::record_with(&failed, &["-q", "--failed"], &["python3", path(&script)]);
    assert!(out.status.success(), "{out:?}");
    let ports = String::from_utf8(out.stdout).unwrap();
    let full = ports.split_whitespace().last().unwrap().to_string();
    let rows = json(&["query", path(&failed), "network"]);
    let r = rows
        .iter()
        .find(|r| r["addr"] == format!("127.0.0.1:{full}"))
        .unwrap_or_else(|| panic!("{rows:?}"));
    assert_eq!(
        (
            r["connects"].as_i64(),
            r["failures"].as_i64(),
            r["in_progress"].as_i64()
        ),
        (Some(2), Some(0), Some(2)),
        "{rows:?}"
    );

    let named = query(
        &[&capture],
        "SELECT count(*) FILTER (WHERE ret > 0) AS positive,
                count(errno_name(ret)) FILTER (WHERE ret >= 0) AS named_successes,
                count(*) FILTER (WHERE errno_name(ret) = errno) AS failures_named
         FROM syscalls",
    );
    assert!(named[0]["positive"].as_i64().unwrap() > 10, "{named:?}");
    assert_eq!(named[0]["named_successes"].as_i64(), Some(0), "{named:?}");
    assert!(
        named[0]["failures_named"].as_i64().unwrap() >= 1,
        "{named:?}"
    );

    let summary = json(&["summary", path(&capture)]);
    let exit = summary
        .iter()
        .find(|r| r["syscall"] == "exit_group")
        .unwrap();
    for column in ["total_ns", "avg_ns", "time_pct"] {
        assert_eq!(
            exit[column],
            Value::Null,
            "exit_group never returns: {exit:?}"
        );
    }
    // Unknown times sort last, not first as DESC puts NULLs.
    assert_eq!(
        summary.last().unwrap()["total_ns"],
        Value::Null,
        "{summary:?}"
    );
    let connect = summary.iter().find(|r| r["syscall"] == "connect").unwrap();
    assert_eq!(
        connect["avg_ns"].as_i64(),
        Some(connect["total_ns"].as_i64().unwrap() / connect["calls"].as_i64().unwrap())
    );
}

/// The kernel's counts come in intervals of about a second, kept whole by a time window
/// they overlap: a 100 ms window showed the whole capture's counted calls without a word.
/// Rows cannot be split, so the window says how many came in that way.
#[test]
fn a_window_that_cuts_the_kernels_intervals_says_so() {
    if !bpf_available("a_window_that_cuts_the_kernels_intervals_says_so") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    let work = "for i in 1 2 3; do cat /etc/hostname >/dev/null; sleep 0.1; done";
    let out = record_with(
        &capture,
        &["-q", "--min-duration", "1ms"],
        &["sh", "-c", work],
    );
    assert!(out.status.success());
    let window = analyze(&[
        "summary",
        path(&capture),
        "--since",
        "+0.15s",
        "--until",
        "+0.25s",
        "--format",
        "csv",
    ]);
    assert!(window.status.success());
    let stderr = String::from_utf8_lossy(&window.stderr);
    let counted = query(
        &[&capture],
        "SELECT CAST(sum(calls) AS BIGINT) AS n FROM aggregates",
    )[0]["n"]
        .as_i64()
        .unwrap();
    assert!(counted > 100, "{counted}");
    // Every counted call lies in an interval the window overlaps or in one it leaves out.
    let prefix = format!("warning: capture {}: ", path(&capture));
    // `summary` also says what its percentiles leave out; that line is tested elsewhere.
    let stderr = stderr
        .lines()
        .filter(|l| l.contains("lie in intervals"))
        .collect::<Vec<_>>()
        .join("\n");
    let warned: i64 = stderr
        .trim()
        .strip_prefix(&prefix)
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(warned > 0 && warned <= counted, "{warned} of {counted}");
    assert!(
        stderr.trim().ends_with(
            "calls the kernel counted without recording them (aggregates) lie in intervals \
             that cross --since/--until, and are counted whole: counts can include calls \
             from up to an interval (about 1 s) outside the window"
        ),
        "{stderr}"
    );
    let whole = analyze(&["summary", path(&capture), "--format", "csv"]);
    let stderr = String::from_utf8_lossy(&whole.stderr);
    assert!(!stderr.contains("lie in intervals"), "{stderr}");
}

/// glibc's `fstat(fd)` is `newfstatat(fd, "", AT_EMPTY_PATH)`: the call is about the file
/// the fd holds. It had no `fd` and no `fd_path`, and `summary --by file` put every such
/// call under a file named ''.
#[test]
fn an_fstat_is_a_call_on_its_file() {
    if !bpf_available("an_fstat_is_a_call_on_its_file") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("data.txt");
    std::fs::write(&file, "x").unwrap();
    let capture = tmp.path().join("capture");
    let script = format!(
        "import os\nfd = os.open({:?}, os.O_RDONLY)\nfor _ in range(7):\n    os.fstat(fd)\nos.close(fd)\n",
        path(&file)
    );
    let out = record(&capture, &["/usr/bin/python3", "-c", &script]);
    assert!(out.status.success(), "{out:?}");
    let c = path(&capture);
    let fstats = query(
        &[&capture],
        &format!(
            "SELECT count(*) AS n, min(fd) AS fd FROM syscalls \
             WHERE syscall = 'newfstatat' AND path = '' AND fd_path = '{}'",
            path(&file)
        ),
    );
    assert_eq!(fstats[0]["n"].as_i64(), Some(7), "{fstats:?}");
    let rows = json(&["summary", c, "--by", "file"]);
    assert!(rows.iter().all(|r| r["file"] != ""), "{rows:?}");
    let ours = rows
        .iter()
        .find(|r| r["file"] == path(&file))
        .expect("the file");
    // openat, the seven fstats, close.
    assert_eq!(ours["calls"].as_i64(), Some(9), "{ours:?}");
    // The call lists name the file too, not the empty path.
    let slow = json(&["query", c, "slowest-calls", "--param", "limit=100000"]);
    let targets: Vec<&Value> = slow
        .iter()
        .filter(|r| r["syscall"] == "newfstatat" && r["target"] == path(&file))
        .map(|r| &r["target"])
        .collect();
    assert_eq!(targets.len(), 7, "{slow:?}");
    assert!(slow.iter().all(|r| r["target"] != ""), "{slow:?}");
}

/// A server's listening socket named no peer, yet led `hottest-peers` (and the report's
/// "Hottest peers") with the time its accept waited for a client.
#[test]
fn hottest_peers_are_peers_and_not_a_wait_for_one() {
    if !bpf_available("hottest_peers_are_peers_and_not_a_wait_for_one") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    let script = "import socket, threading, time\n\
        srv = socket.socket(); srv.bind(('0.0.0.0', 0)); srv.listen()\n\
        port = srv.getsockname()[1]\n\
        def client():\n    time.sleep(0.3)\n    c = socket.create_connection(('127.0.0.1', port))\n    c.sendall(b'hi'); c.close()\n\
        threading.Thread(target=client).start()\n\
        c, _ = srv.accept(); c.recv(10); c.close()\n\
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(('127.0.0.1', 0))\n\
        print('udp=%d' % u.getsockname()[1], flush=True)\n\
        k = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
        for _ in range(20):\n    k.sendto(b'x', u.getsockname()); u.recvfrom(10)\n\
        probe = socket.socket(); probe.bind(('127.0.0.1', 0)); p2 = probe.getsockname()[1]; probe.close()\n\
        l2 = socket.socket(); l2.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
        l2.bind(('127.0.0.1', p2)); l2.listen(); print('tcp2=%d' % p2, flush=True)\n\
        c2 = socket.create_connection(('127.0.0.1', p2)); a2, _ = l2.accept()\n\
        for _ in range(10):\n    c2.sendall(b'y' * 1000); a2.recv(1000)\n\
        import os, tempfile\n\
        up = os.path.join(tempfile.mkdtemp(), 'u.sock')\n\
        us = socket.socket(socket.AF_UNIX); us.bind(up); us.listen()\n\
        for _ in range(50):\n    us.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE)\n\
        uc = socket.socket(socket.AF_UNIX); uc.connect(up); ua, _ = us.accept()\n\
        uc.sendall(b'z' * 100); ua.recv(100); ua.close(); uc.close(); us.close()\n\
        print('unix=%s' % up, flush=True)\n\
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.bind(('127.0.0.1', 0))\n\
        p3 = b.getsockname()[1]; n = b.fileno(); b.close()\n\
        r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
        s3 = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s3.bind(('127.0.0.1', p3))\n\
        r.connect(('127.0.0.1', p3)); same = r.fileno() == n\n\
        for _ in range(10):\n    r.send(b'q' * 64); s3.recv(64)\n\
        r.close(); s3.close()\n\
        print('reused=%d %d' % (p3, same), flush=True)\n";
    let out = record(&capture, &["/usr/bin/python3", "-c", script]);
    assert!(out.status.success(), "{out:?}");
    let printed = |key: &str| {
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")).map(str::to_string))
            .unwrap_or_else(|| panic!("no {key}= printed: {out:?}"))
    };
    let udp = printed("udp");
    let rows = json(&[
        "query",
        path(&capture),
        "hottest-peers",
        "--param",
        "limit=20",
    ]);
    assert!(!rows.is_empty());
    // An unconnected UDP server is named by the address it bound: not a peer of its own.
    assert!(
        rows.iter()
            .all(|r| r["peer"] != format!("127.0.0.1:{udp}").as_str()),
        "{rows:?}"
    );
    // A client of the process's own listener is a peer, though the process bound the
    // address it connects to.
    let tcp2 = printed("tcp2");
    let own = rows
        .iter()
        .find(|r| r["peer"] == format!("127.0.0.1:{tcp2}").as_str())
        .unwrap_or_else(|| panic!("the client of 127.0.0.1:{tcp2}: {rows:?}"));
    assert!(own["calls"].as_i64().unwrap() >= 10, "{own:?}");
    // A unix listener's own calls are not its client's: the fd table names it
    // `unix:PATH` where its bind's `addr` is PATH. The client's connect, send and close.
    let unix = format!("unix:{}", printed("unix"));
    let client = rows
        .iter()
        .find(|r| r["peer"] == unix.as_str())
        .unwrap_or_else(|| panic!("{unix}: {rows:?}"));
    assert_eq!(
        (client["calls"].as_i64(), client["bytes"].as_str()),
        (Some(3), Some("100 B")),
        "{client:?}"
    );
    // A socket connected to an address an earlier socket on its fd number bound: its
    // connect, its ten sends and its close are a peer's.
    let reused = printed("reused");
    let (port, same_fd) = reused.split_once(' ').unwrap();
    assert_eq!(same_fd, "1", "the fd number was not reused");
    let peer = rows
        .iter()
        .find(|r| r["peer"] == format!("127.0.0.1:{port}").as_str())
        .unwrap_or_else(|| panic!("127.0.0.1:{port}: {rows:?}"));
    assert_eq!(
        (peer["calls"].as_i64(), peer["bytes"].as_str()),
        (Some(12), Some("640 B")),
        "{peer:?}"
    );
    for r in &rows {
        // The listener's client, and the connection it accepted (`unix:unnamed`).
        if r["peer"].as_str().unwrap().starts_with("unix:") {
            continue;
        }
        let peer = r["peer"].as_str().unwrap();
        assert!(peer.starts_with("127.0.0.1:"), "{rows:?}");
        // The accept waited 300 ms for the client; no peer's calls took a tenth of that.
        assert!(r["total_ns"].as_i64().unwrap() < 30_000_000, "{rows:?}");
    }
}

/// `aggregates` carries no names: under `--failed` the successful calls of a shell that
/// exec'd `sleep` are counted for its pid under either name. `--comm sh` keeps them all,
/// and says so, rather than giving `sleep`'s 200 ms as the shell's in silence.
#[test]
fn comm_says_when_counted_calls_cannot_be_split_by_name() {
    if !bpf_available("comm_says_when_counted_calls_cannot_be_split_by_name") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    let out = record_with(
        &capture,
        &["-q", "--failed"],
        &["sh", "-c", "ls /nonexistent 2>/dev/null; exec sleep 0.2"],
    );
    assert!(out.status.code().is_some(), "{out:?}");
    let c = path(&capture);
    let warned = |comm: &str| {
        let out = analyze(&["summary", c, "--comm", comm]);
        assert!(out.status.success(), "{out:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let sh = warned("sh");
    assert!(
        sh.starts_with(&format!(
            "warning: capture {c}: --comm sh: 1 process(es) of that name also ran under another"
        )) && sh.contains("calls the kernel only counted for them carry no name"),
        "{sh}"
    );
    let ls = warned("ls");
    assert!(!ls.contains("--comm"), "{ls}");
}

/// A side whose recording has no known start (its capture row missing, as after a `record`
/// killed as it started) still has its calls compared; its rates, and the extra time per
/// second, are unknown. They were: every one of its calls left out, which read as all new
/// in the other side; and a NULL rate taken for 0, as if that side spent nothing.
/// Where `--max-size` deleted the oldest files, rates are per second of what is left.
#[test]
fn diff_rates_are_of_the_seconds_its_calls_cover() {
    if !bpf_available("diff_rates_are_of_the_seconds_its_calls_cover") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let whole = tmp.path().join("whole");
    let out = record(
        &whole,
        &[
            "sh",
            "-c",
            "for i in 1 2 3 4 5; do cat /etc/hostname; done >/dev/null",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let startless = tmp.path().join("startless");
    let cp = Command::new("cp")
        .arg("-a")
        .arg(&whole)
        .arg(&startless)
        .status();
    assert!(cp.unwrap().success());
    for f in std::fs::read_dir(startless.join("capture")).unwrap() {
        std::fs::remove_file(f.unwrap().path()).unwrap();
    }
    let out = analyze(&[
        "diff",
        path(&startless),
        path(&whole),
        "--limit",
        "1000",
        "--format",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "warning: diff: the baseline {} has no known start (its capture row is missing or \
             was skipped): its calls are compared, but its rates and extra_ns_per_s are NULL",
            path(&startless)
        )),
        "{stderr}"
    );
    let rows: Vec<BTreeMap<String, Value>> = serde_json::from_slice(&out.stdout).unwrap();
    let calls = tracepost_e2e::scalar(&whole, "SELECT count(DISTINCT syscall) FROM syscalls");
    let syscalls: Vec<_> = rows.iter().filter(|r| r["kind"] == "syscall").collect();
    assert_eq!(syscalls.len() as i64, calls, "{rows:?}");
    for r in &rows {
        assert_eq!(r["base_calls"], r["incident_calls"], "{r:?}");
        assert!(
            r["base_per_s"].is_null() && r["extra_ns_per_s"].is_null(),
            "{r:?}"
        );
        assert!(!r["incident_per_s"].is_null(), "{r:?}");
    }

    // About 3 s of getppid, files of 250 ms, the newest 96 KiB kept.
    let kept = tmp.path().join("kept");
    let loop_ =
        "import os, time\nend = time.time() + 3\nwhile time.time() < end:\n    os.getppid()\n";
    let out = record_with(
        &kept,
        &["-q", "--rotate", "250ms", "--max-size", "96KiB"],
        &["python3", "-c", loop_],
    );
    assert!(out.status.success(), "{out:?}");
    let facts = query(
        &[&kept],
        "SELECT CAST(count(*) FILTER (WHERE syscall = 'getppid') AS BIGINT) AS n, \
                min(ts_ns + coalesce(duration_ns, 0)) AS first_ns, \
                (SELECT max(deleted_events) FROM capture) AS deleted, \
                (SELECT arrow_cast(max(ended), 'Int64') * 1000 FROM capture) AS ended_ns \
         FROM syscalls",
    );
    let f = &facts[0];
    assert!(f["deleted"].as_i64().unwrap() > 0, "nothing deleted: {f:?}");
    let secs = (f["ended_ns"].as_i64().unwrap() - f["first_ns"].as_i64().unwrap()) as f64 / 1e9;
    let want = f["n"].as_i64().unwrap() as f64 / secs;
    let getppid_rate = |capture: &Path, narrowing: &[&str]| -> f64 {
        let mut args = vec!["diff", path(capture), path(&whole)];
        args.extend(narrowing);
        let rows = json(&args);
        let getppid = rows
            .iter()
            .find(|r| r["kind"] == "syscall" && r["name"] == "getppid")
            .unwrap_or_else(|| panic!("{rows:?}"));
        getppid["base_per_s"].as_f64().unwrap()
    };
    let rate = getppid_rate(&kept, &[]);
    assert!((rate - want).abs() <= 0.1, "{rate} per s, want {want}");
    // DataFusion 55's aggregate dynamic filter let max(ts_ns) skip files that the same
    // query's min(ts_ns + duration_ns) needed, and the answer depended on which file a
    // thread read first (about one run in 40 on 2 CPUs), as diff's span is asked: the plan
    // over these several files must not have one.
    let plan = analyze(&[
        "query",
        path(&kept),
        "EXPLAIN SELECT min(ts_ns + duration_ns), max(ts_ns) FROM syscalls",
        "--format",
        "csv",
    ]);
    let plan = String::from_utf8_lossy(&plan.stdout);
    assert!(
        plan.contains("AggregateExec") && !plan.contains("DynamicFilter"),
        "{plan}"
    );

    // A loop under --failed: its getppids are only counted, in `aggregates`, which
    // --max-size never deletes. Counted over the whole run and divided by the seconds
    // left, they read several times what those seconds hold: the rate must lie between
    // the counts of the intervals wholly after the first kept call and those that end
    // after it, over the same seconds.
    // Each turn also fails a close, so that recorded rows fill files for --max-size.
    let loop_ = "import os, time\nend = time.time() + 3\n\
                 while time.time() < end:\n    os.getppid()\n    \
                 try:\n        os.close(9999)\n    except OSError:\n        pass\n";
    let failed = tmp.path().join("failed");
    let out = record_with(
        &failed,
        &["-q", "--failed", "--rotate", "250ms", "--max-size", "64KiB"],
        &["python3", "-c", loop_],
    );
    assert!(out.status.success(), "{out:?}");
    let bounds = query(
        &[&failed],
        "WITH k AS (SELECT min(ts_ns + coalesce(duration_ns, 0)) AS from_ns FROM syscalls), \
              c AS (SELECT arrow_cast(max(ended), 'Int64') * 1000 AS to_ns, \
                           max(deleted_events) AS deleted FROM capture), \
              a AS (SELECT arrow_cast(interval_start, 'Int64') * 1000 AS s, \
                           arrow_cast(interval_end, 'Int64') * 1000 AS e, calls \
                    FROM aggregates WHERE syscall = 'getppid') \
         SELECT c.deleted, (c.to_ns - k.from_ns) / 1e9 AS secs, \
                CAST(sum(CASE WHEN a.s >= k.from_ns THEN a.calls ELSE 0 END) AS BIGINT) AS low, \
                CAST(sum(CASE WHEN a.e > k.from_ns THEN a.calls ELSE 0 END) AS BIGINT) AS high \
         FROM a, k, c GROUP BY c.deleted, c.to_ns, k.from_ns",
    );
    let b = &bounds[0];
    assert!(b["deleted"].as_i64().unwrap() > 0, "nothing deleted: {b:?}");
    let secs = b["secs"].as_f64().unwrap();
    let (low, high) = (
        b["low"].as_i64().unwrap() as f64 / secs,
        b["high"].as_i64().unwrap() as f64 / secs,
    );
    let rate = getppid_rate(&failed, &[]);
    assert!(
        low - 0.1 <= rate && rate <= high + 0.1,
        "{rate} per s, not within {low} to {high}: {b:?}"
    );

    // Narrowed by --pid to a process that began 0.3 s after the first call kept (the loop's
    // files are deleted; the small ones after it, /bin/true's among them, are kept), the
    // seconds are still the capture's: from its first kept call, not the process's.
    let narrowed = tmp.path().join("narrowed");
    let script = "python3 -c 'import os, time\nend = time.time() + 3\nwhile time.time() < end:\n    \
                  os.getppid()'; sleep 0.3; /bin/true; sleep 0.3; \
                  python3 -c 'import os\nfor _ in range(3000):\n    os.getppid()'";
    let out = record_with(
        &narrowed,
        &["-q", "--rotate", "250ms", "--max-size", "512KiB"],
        &["sh", "-c", script],
    );
    assert!(out.status.success(), "{out:?}");
    let facts = query(
        &[&narrowed],
        "WITH last AS (SELECT max(pid) AS pid FROM processes WHERE comm = 'python3') \
         SELECT last.pid, \
                (SELECT count(*) FROM syscalls s WHERE s.pid = last.pid \
                 AND s.syscall = 'getppid') AS n, \
                (SELECT min(ts_ns + coalesce(duration_ns, 0)) FROM syscalls) AS first_ns, \
                (SELECT min(ts_ns) FROM syscalls s WHERE s.pid = last.pid) AS own_first_ns, \
                (SELECT arrow_cast(max(ended), 'Int64') * 1000 FROM capture) AS ended_ns, \
                (SELECT max(deleted_events) FROM capture) AS deleted \
         FROM last",
    );
    let f = &facts[0];
    let int = |k: &str| f[k].as_i64().unwrap_or_else(|| panic!("{k}: {f:?}"));
    assert!(int("deleted") > 0, "nothing deleted: {f:?}");
    assert!(int("own_first_ns") - int("first_ns") > 200_000_000, "{f:?}");
    let want = int("n") as f64 / ((int("ended_ns") - int("first_ns")) as f64 / 1e9);
    let pid = int("pid").to_string();
    let rate = getppid_rate(&narrowed, &["--pid", &pid]);
    assert!(
        (rate - want).abs() <= 0.1,
        "{rate} per s, want {want}: {f:?}"
    );
}

/// A directory recorded into twice has a column of facts per run. Each run's first and
/// last call were once the whole directory's: the first run's last call came after it
/// ended, and the second's first call before it started.
#[test]
fn a_report_gives_each_run_its_own_first_and_last_call() {
    if !bpf_available("a_report_gives_each_run_its_own_first_and_last_call") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let cap = tmp.path().join("cap");
    assert!(record(&cap, &["ls", "/"]).status.success());
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(record(&cap, &["cat", "/etc/hostname"]).status.success());
    let md = tmp.path().join("r.md");
    let out = Command::new(bin("analyze"))
        .args(["report", path(&cap), "--output", path(&md)])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&md).unwrap();
    let fact = |name: &str| -> Vec<String> {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("| {name} |")))
            .unwrap_or_else(|| panic!("no {name} in {text}"));
        line.split('|')
            .skip(2)
            .map(|c| c.trim())
            .filter(|c| !c.is_empty())
            .map(nine_digits)
            .collect()
    };
    let (first, last) = (fact("first_call"), fact("last_call"));
    // Each run's own calls, by the command that made them, as the oracle.
    let bounds = query(
        &[&cap],
        "SELECT comm, CAST(min(ts) AS VARCHAR) AS first, CAST(max(ts) AS VARCHAR) AS last \
         FROM syscalls WHERE comm IN ('ls', 'cat') GROUP BY comm",
    );
    let of = |comm: &str, key: &str| -> String {
        let row = bounds.iter().find(|r| r["comm"] == comm).unwrap();
        nine_digits(row[key].as_str().unwrap())
    };
    let (started, ended) = (fact("started"), fact("ended"));
    assert_eq!((first.len(), last.len()), (2, 2), "{text}");
    for run in 0..2 {
        assert!(
            started[run] <= first[run] && last[run] <= ended[run],
            "run {run}: {text}"
        );
    }
    // The runs' calls lie between their own first and last (`record`'s own start and exec
    // come before `ls` or `cat` is named, so those bound the runs from outside).
    let inside = |t: &str, run: usize| first[run].as_str() <= t && t <= last[run].as_str();
    assert!(inside(&of("ls", "last"), 0), "{bounds:?}: {text}");
    assert!(inside(&of("cat", "first"), 1), "{bounds:?}: {text}");
}

/// An RFC 3339 UTC time with its fraction written to nine digits, so that two compare as
/// text: `.756Z` (micros of 756000, as the report writes them) sorts after `.756123Z`.
fn nine_digits(t: &str) -> String {
    let t = t.trim_end_matches('Z');
    let (whole, fraction) = t.split_once('.').unwrap_or((t, ""));
    format!("{whole}.{fraction:0<9}Z")
}

/// JSON has no NaN or infinity, and arrow's writer put `null` for them: a ratio of 0/0 read
/// in the ticket as a value that was missing. Checked on stdout and through `-o FILE.json`.
#[test]
fn json_tells_a_float_that_is_not_a_number_from_null() {
    if !bpf_available("json_tells_a_float_that_is_not_a_number_from_null") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    let out = record(&capture, &["true"]);
    assert!(out.status.success(), "{out:?}");
    let sql = "SELECT CAST('NaN' AS DOUBLE) AS nan, CAST('inf' AS DOUBLE) AS inf, \
               CAST('-inf' AS DOUBLE) AS neg, CAST(NULL AS DOUBLE) AS none, \
               [CAST('NaN' AS DOUBLE), 0.5] AS list, count(*) > 0 AS calls FROM syscalls";
    let expected = r#"[{"nan":"NaN","inf":"Infinity","neg":"-Infinity","none":null,"list":["NaN",0.5],"calls":true}]"#;
    let rows = json(&["query", path(&capture), sql]);
    assert_eq!(
        serde_json::to_string(&rows[0]).unwrap().len(),
        expected.len() - 2
    );
    assert_eq!(rows[0]["nan"], "NaN");
    assert_eq!(rows[0]["inf"], "Infinity");
    assert_eq!(rows[0]["neg"], "-Infinity");
    assert_eq!(rows[0]["none"], Value::Null);
    assert_eq!(rows[0]["list"], serde_json::json!(["NaN", 0.5]));
    let file = tmp.path().join("answer.json");
    let out = analyze(&["query", path(&capture), sql, "-o", path(&file)]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim_end(), expected);

    // A name given twice is made unique, and said: a JSON object keeps one value a name.
    let out = analyze(&[
        "query",
        path(&capture),
        "SELECT s.comm, p.comm, 1 AS comm_2 FROM syscalls s JOIN processes p \
         ON s.pid = p.pid LIMIT 1",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim_end(),
        r#"[{"comm":"true","comm_3":"true","comm_2":1}]"#
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        "warning: --format json: a column name repeats, and a JSON object holds each name \
         once: written comm as comm_3 (alias them with AS to choose)"
    );

    // A struct's field name given twice, and a map keyed by numbers, which failed the
    // whole output ("Only UTF8 keys supported"), as JSON and as a CSV's nested cell.
    let sql = "SELECT named_struct('a', 1, 'a', 2) AS s, map([1, 2], ['x', NULL]) AS m";
    for (format, stdout) in [
        ("json", r#"[{"s":{"a":1,"a_2":2},"m":{"1":"x","2":null}}]"#),
        (
            "csv",
            "s,m\n\"{\"\"a\"\":1,\"\"a_2\"\":2}\",\"{\"\"1\"\":\"\"x\"\",\"\"2\"\":null}\"",
        ),
    ] {
        let out = analyze(&["query", path(&capture), sql, "--format", format]);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), stdout);
        assert_eq!(
            String::from_utf8_lossy(&out.stderr).trim_end(),
            format!(
                "warning: --format {format}: a struct's field name repeats, and a JSON object \
                 holds each name once: written a as a_2"
            )
        );
    }
}

/// Arrow's display showed `[NULL]`, `[]` and `['']` alike and `['a, b']` as `['a','b']`, a
/// right-to-left override in a path reordered the table, a time past any date was written
/// as the text `ERROR: Cast error ...` with exit 0, a map keyed by structs and a result of
/// no columns failed with arrow's own words, and two secrets masked alike made a map's keys
/// one.
#[test]
fn every_format_tells_nested_values_apart_or_refuses_in_one_line() {
    if !bpf_available("every_format_tells_nested_values_apart_or_refuses_in_one_line") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("capture");
    let out = record(
        &capture,
        &[
            "sh",
            "-c",
            "cat '/nonexistent/a, b' \"/nonexistent/$(printf '\\342\\200\\256')x\" 2>/dev/null; true",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let c = path(&capture);
    let run = |sql: &str, format: &str| {
        let out = analyze(&["query", c, sql, "--format", format]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).trim_end().to_string(),
            String::from_utf8_lossy(&out.stderr).trim_end().to_string(),
        )
    };
    let sql = "SELECT array_agg(DISTINCT path ORDER BY path) AS p, [NULL] AS n, [''] AS e, \
               CAST([] AS VARCHAR[]) AS none FROM syscalls WHERE path LIKE '/nonexistent/%'";
    let (code, table, _) = run(sql, "table");
    assert_eq!(code, Some(0));
    let row: Vec<&str> = table
        .lines()
        .nth(3)
        .unwrap()
        .split('|')
        .map(str::trim)
        .collect();
    assert_eq!(
        row[1..5],
        [
            r#"["/nonexistent/a, b","/nonexistent/\u{202e}x"]"#,
            "[null]",
            r#"[""]"#,
            "[]"
        ]
    );
    assert!(!table.contains('\u{202e}'), "{table}");
    let (code, md, _) = run(sql, "markdown");
    assert_eq!(code, Some(0));
    assert_eq!(
        md.lines().nth(2).unwrap(),
        r#"| \["/nonexistent/a, b","/nonexistent/\\u{202e}x"\] | \[null\] | \[""\] | \[\] |"#
    );

    // A time past any date, at the top and inside a list: refused, naming the column.
    for sql in [
        "SELECT arrow_cast(9223372036854775807, 'Timestamp(Second, None)') AS t",
        "SELECT [arrow_cast(9223372036854775807, 'Timestamp(Second, None)')] AS t",
    ] {
        for format in ["table", "csv", "json", "markdown"] {
            let (code, stdout, stderr) = run(sql, format);
            assert_eq!(code, Some(1), "{sql} {format}");
            // Nothing on stdout: Markdown wrote its header first (helper-93).
            assert_eq!(stdout, "", "{sql} {format}");
            assert_eq!(
                stderr,
                "error: column t holds 9223372036854775807 seconds from 1970-01-01, a time \
                 past any date that can be written: cast it to BIGINT to see the number"
            );
        }
    }

    // No columns: JSON writes an object a row; the others cannot lay a row out.
    let sql = "SELECT FROM syscalls LIMIT 2";
    assert_eq!(run(sql, "json"), (Some(0), "[{},{}]".into(), String::new()));
    for format in ["table", "csv", "markdown"] {
        let (code, stdout, stderr) = run(sql, format);
        assert_eq!((code, stdout.as_str()), (Some(1), ""));
        assert_eq!(
            stderr,
            format!(
                "error: the answer has no columns, which --format {format} cannot show: \
                 name a column in SELECT, or use --format json"
            )
        );
    }

    // CSV writes a cell as it is, a spreadsheet's formula too (README Limits).
    assert_eq!(
        run("SELECT '=1+1' AS f, '@x' AS g", "csv"),
        (Some(0), "f,g\n=1+1,@x".into(), String::new())
    );

    // An empty string is `""` and NULL an empty cell: the loader's fstat of each library
    // is newfstatat(fd, "", AT_EMPTY_PATH). DuckDB, told that `""` is not NULL, reads back
    // the capture's own counts.
    let counts = json(&[
        "query",
        path(&capture),
        "SELECT count(*) AS n, count(path) AS paths, count(*) FILTER (WHERE path = '') AS empty \
         FROM syscalls",
    ]);
    let (n, paths, empty) = (
        counts[0]["n"].as_i64().unwrap(),
        counts[0]["paths"].as_i64().unwrap(),
        counts[0]["empty"].as_i64().unwrap(),
    );
    assert!(empty > 0 && paths > empty && n > paths, "{counts:?}");
    let csv = tmp.path().join("paths.csv");
    let out = analyze(&[
        "query",
        path(&capture),
        "SELECT syscall, path FROM syscalls",
        "-o",
        path(&csv),
    ]);
    assert!(out.status.success(), "{out:?}");
    let duck = Command::new("python3")
        .arg("-c")
        .arg(
            "import duckdb, sys; print(duckdb.sql(f\"SELECT count(*), count(path), \
             count(*) FILTER (WHERE path = '') FROM read_csv('{sys.argv[1]}', \
             allow_quoted_nulls = false, all_varchar = true)\").fetchall()[0])",
        )
        .arg(&csv)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&duck.stdout).trim(),
        format!("({n}, {paths}, {empty})"),
        "{}",
        String::from_utf8_lossy(&duck.stderr)
    );

    // A map keyed by a struct: the key is its JSON text.
    let sql = "SELECT map([named_struct('a', 1)], [2]) AS m";
    assert_eq!(
        run(sql, "json"),
        (Some(0), r#"[{"m":{"{\"a\":1}":2}}]"#.into(), String::new())
    );
    assert_eq!(
        run(sql, "csv"),
        (
            Some(0),
            "m\n\"{\"\"{\\\"\"a\\\"\":1}\"\":2}\"".into(),
            String::new()
        )
    );

    // Two secrets masked alike stay two keys in a shared file.
    let file = tmp.path().join("m.json");
    let out = analyze(&[
        "query",
        c,
        "SELECT map(['--password=a', '--password=b'], [1, 2]) AS m",
        "-o",
        path(&file),
    ]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().trim_end(),
        r#"[{"m":{"--password=***":1,"--password=***_2":2}}]"#
    );
    // Bytes that are text hold a secret as much as text does.
    let (code, md, _) = run(
        "SELECT arrow_cast('--password=hunter2', 'Binary') AS b",
        "markdown",
    );
    assert_eq!(code, Some(0));
    let masked: String = b"--password=***"
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(md.lines().nth(2).unwrap(), format!("| {masked} |"));
}

/// A run killed with `kill -9` and followed by another into the same directory: its seconds
/// end at its own last call. They ended at the directory's last call, the next run's, so
/// the gap between the runs and the next run's seconds counted again, and `diff`'s rates
/// came out several times too low.
#[test]
fn diff_ends_a_killed_run_at_its_own_last_call() {
    if !bpf_available("diff_ends_a_killed_run_at_its_own_last_call") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    let out = record(&base, &["sh", "-c", "cat /etc/hostname >/dev/null"]);
    assert!(out.status.success(), "{out:?}");
    let twice = tmp.path().join("twice");
    let mut first = tracepost_e2e::record_command(
        &twice,
        &["-q", "--rotate", "200ms"],
        &[
            "sh",
            "-c",
            "for i in $(seq 30); do cat /etc/hostname >/dev/null; sleep 0.05; done",
        ],
    )
    .spawn()
    .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1000));
    assert_eq!(unsafe { libc::kill(first.id() as i32, libc::SIGKILL) }, 0);
    first.wait().unwrap();
    // The shell runs on unrecorded; the next run starts well after the first's last call.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let out = record(
        &twice,
        &[
            "sh",
            "-c",
            "for i in $(seq 20); do cat /etc/hostname; done >/dev/null",
        ],
    );
    assert!(out.status.success(), "{out:?}");
    // The seconds recorded, from the capture itself: the killed run's start to its last
    // call's entry, and the finished run's start to its end.
    let facts = &query(
        &[&twice],
        "WITH runs AS (SELECT arrow_cast(started, 'Int64') * 1000 AS s, \
                              arrow_cast(ended, 'Int64') * 1000 AS e FROM capture) \
         SELECT (SELECT count(*) FROM runs WHERE e IS NULL) AS killed, \
                (SELECT max(ts_ns) FROM syscalls WHERE ts_ns < (SELECT max(s) FROM runs)) \
                  - (SELECT min(s) FROM runs) AS first_ns, \
                (SELECT max(e) - max(s) FROM runs) AS second_ns, \
                (SELECT count(*) FROM syscalls WHERE syscall = 'openat') AS openat",
    )[0];
    assert_eq!(facts["killed"], 1, "{facts:?}");
    let secs =
        (facts["first_ns"].as_i64().unwrap() + facts["second_ns"].as_i64().unwrap()) as f64 / 1e9;
    let openat = facts["openat"].as_f64().unwrap();
    let rows = json(&["diff", path(&base), path(&twice), "--limit", "1000"]);
    let row = rows
        .iter()
        .find(|r| r["kind"] == "syscall" && r["name"] == "openat")
        .unwrap();
    let rate = row["incident_per_s"].as_f64().unwrap();
    assert!(
        (rate - openat / secs).abs() <= 0.1,
        "{rate} calls/s, where {openat} calls in {secs} s is {}",
        openat / secs
    );
    // Its last run finished, so the recording's end is known: a window after it lies
    // outside it, though an earlier run was killed.
    let out = analyze(&[
        "query",
        path(&twice),
        "SELECT count(*) FROM syscalls",
        "--since",
        "+100s",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("lies outside its recording (") && !stderr.contains("its end unknown"),
        "{stderr}"
    );
}
