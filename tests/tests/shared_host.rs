//! Safe on a shared host: one recorder per capture directory, and neither `record` nor
//! `analyze -o` writes through anything another user could have planted.
use std::{
    os::unix::fs::PermissionsExt as _,
    path::Path,
    process::{Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use tracepost_e2e::{analyze, analyze_query, bpf_available, record, record_command, scalar};

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
    let mut first = record_command(&capture, &["-q"], &["sleep", "1.5"])
        .spawn()
        .unwrap();
    // Wait until the first holds the lock (it writes its pid there).
    let lock = capture.join(".record.lock");
    let started = Instant::now();
    while std::fs::read_to_string(&lock).map_or(true, |s| s.trim().is_empty()) {
        assert!(started.elapsed() < Duration::from_secs(10), "no lock file");
        thread::sleep(Duration::from_millis(20));
    }
    // Its user opened it to the group meanwhile: refused, it keeps that mode (helper-72).
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&capture, std::fs::Permissions::from_mode(0o750)).unwrap();
    let second = record(&capture, &["true"]);
    assert_eq!(second.status.code(), Some(1));
    let mode = std::fs::metadata(&capture).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o750, "{mode:o}");
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

    // record: a symlink on the way that another user owns, or that sits in their directory.
    // The resolved path is all root's, so only the link itself says whose choice it was;
    // that user could also re-point it mid-capture.
    // Their symlink in a sticky directory everyone can write, as /tmp is.
    let sticky = tmp.path().join("sticky");
    std::fs::create_dir(&sticky).unwrap();
    std::fs::set_permissions(
        &sticky,
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    let their_link = sticky.join("link");
    std::os::unix::fs::symlink(&elsewhere, &their_link).unwrap();
    std::os::unix::fs::lchown(&their_link, Some(65534), Some(65534)).unwrap();
    let out = record(&their_link.join("new").join("cap"), &["true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_line(&out).ends_with("it is a symlink that belongs to another user (uid 65534)"),
        "{out:?}"
    );
    // Refused before anything was made through it.
    assert!(!elsewhere.join("new").exists());
    // A `..` after a directory that does not exist yet cannot be judged: it led through
    // their link unchecked, and the refused path had made `new` in their directory.
    let out = record(
        &sticky.join("missing").join("..").join("link").join("cap"),
        &["true"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_line(&out).ends_with("it does not exist, and the path goes on with .. after it"),
        "{out:?}"
    );
    assert!(!sticky.join("missing").exists());
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    // Root's symlink under a directory others can write: the directory and the link in it
    // could be swapped mid-capture.
    let open_dir = tmp.path().join("open");
    std::fs::create_dir_all(open_dir.join("sub")).unwrap();
    std::fs::set_permissions(
        &open_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o777),
    )
    .unwrap();
    std::os::unix::fs::symlink(&elsewhere, open_dir.join("sub").join("l")).unwrap();
    let out = record(&open_dir.join("sub").join("l").join("cap"), &["true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_line(&out).contains("other users can write it"),
        "{out:?}"
    );
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    nobody(&home);
    let root_link = home.join("rootlink");
    std::os::unix::fs::symlink(&elsewhere, &root_link).unwrap();
    let out = record(&root_link.join("cap"), &["true"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_line(&out).contains("belongs to another user (uid 65534)"),
        "{out:?}"
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    // A symlink of root's, in root's directory, is followed as before.
    let ours = tmp.path().join("ours");
    std::os::unix::fs::symlink(&elsewhere, &ours).unwrap();
    assert!(record(&ours.join("cap"), &["true"]).status.success());
    assert!(elsewhere.join("cap").join("syscalls").is_dir());

    // An existing directory others can write, empty or sticky (/dev/shm, a fresh /tmp):
    // made 0700, it was closed to every other user for good (helper-76). Refused, as found.
    for mode in [0o777, 0o1777] {
        let shared = tmp.path().join(format!("shared-{mode:o}"));
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::os::unix::fs::PermissionsExt::from_mode(mode))
            .unwrap();
        let out = record(&shared, &["true"]);
        assert_eq!(out.status.code(), Some(1));
        assert_eq!(
            stderr_line(&out),
            format!(
                "error: output {} is a directory other users can write: name a new directory \
                 (inside it, if you like)",
                shared.display()
            )
        );
        let now = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777;
        assert_eq!(now, mode);
        assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0);
        // A new directory inside a sticky one is fine, as under /tmp.
        let inside = record(&shared.join("cap"), &["true"]).status.success();
        assert_eq!(inside, mode == 0o1777);
    }
    // A link of /proc leads into the process's own view of the files (a container's
    // mount namespace), where the checks of its text looked at the host's directories
    // (helper-76). Refused, and nothing made.
    let theirs = tmp.path().join("theirs-view");
    std::fs::create_dir(&theirs).unwrap();
    let mut sleeper = Command::new("sleep")
        .arg("30")
        .current_dir(&theirs)
        .spawn()
        .unwrap();
    let through_proc = Path::new("/proc")
        .join(sleeper.id().to_string())
        .join("cwd")
        .join("cap");
    let out = record(&through_proc, &["true"]);
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr_line(&out).ends_with(
            "cwd is not safe to write under: it is a link of /proc, which leads into another \
             process's view of the files: name the directory itself"
        ),
        "{out:?}"
    );
    assert_eq!(std::fs::read_dir(&theirs).unwrap().count(), 0);

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
    // analyze -o, through the links and directories record refused above: another user's
    // symlink (in a sticky directory, and root's directory's link in their directory), and
    // a directory others can write, above one of root's. Each leads to a directory of
    // root's, but its owner could point it anywhere.
    for (through, why) in [
        (
            their_link.join("out.csv"),
            "it is a symlink that belongs to another user (uid 65534)",
        ),
        (
            root_link.join("out.csv"),
            "it belongs to another user (uid 65534)",
        ),
        (
            open_dir.join("sub").join("out.csv"),
            "other users can write it",
        ),
    ] {
        let out = analyze(&["summary", c, "-o", through.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let line = stderr_line(&out);
        assert!(
            line.starts_with(&format!("error: output {}: ", through.display()))
                && line.ends_with(&format!(
                    "is not safe to write under: {why}; write elsewhere"
                )),
            "{line}"
        );
    }
    assert!(!elsewhere.join("out.csv").exists());
    assert!(!open_dir.join("sub").join("out.csv").exists());
}

/// `analyze report CAPTURE -o OUT`, which must succeed, and what it wrote: the output meant
/// to be shared, where every secret must be masked.
fn shared_report(capture: &Path, out: &Path) -> String {
    let run = analyze(&[
        "report",
        capture.to_str().unwrap(),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{run:?}");
    std::fs::read_to_string(out).unwrap()
}

/// A command given to record with a secret of several words, one holding a quote: the
/// capture's target, its command line and the process's cmdline each keep every argument
/// one word (empty ones too), and the report masks each whole.
#[test]
fn a_secret_of_several_words_is_masked_whole() {
    if !bpf_available("a_secret_of_several_words_is_masked_whole") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("cap");
    let command = [
        "/bin/true",
        "--db-password",
        "horse sp4ce-leak",
        "--password=it's qu0te-leak",
        "a",
        "",
        "b",
        // A dict, as `python -c` programs hold one: quoted for a shell, it read as no dict
        // to the masking (helper-69).
        "{'token': 'd1ct-leak'}",
    ];
    assert!(record(&capture, &command).status.success());
    let c = capture.to_str().unwrap();
    let cmdline = analyze(&[
        "query",
        c,
        "SELECT cmdline FROM processes",
        "--format",
        "csv",
    ]);
    let cmdline = String::from_utf8_lossy(&cmdline.stdout).to_string();
    assert!(
        cmdline
            .contains(r"--db-password 'horse sp4ce-leak' --password='it'\''s qu0te-leak' a '' b"),
        "{cmdline}"
    );
    let report = shared_report(&capture, &tmp.path().join("r.md"));
    for leak in ["sp4ce-leak", "qu0te-leak", "d1ct-leak"] {
        assert!(!report.contains(leak), "the report shows {leak}: {report}");
    }
    assert!(
        report.contains(
            r"| target | command /bin/true --db-password '\*\*\*' --password='\*\*\*' a '' b '{'\\''token'\\'': '\\''\*\*\*'\\''}' |"
        ),
        "{report}"
    );
    // In a script: an escaped sign in a value, and a flag quoted apart from its value
    // (helper-70: both were in the report in clear).
    let script = tmp.path().join("script");
    let command = [
        "sh",
        "-c",
        r"/bin/true --password=Tr0ub\&esc-leak '--pwd' pair-leak",
    ];
    assert!(record(&script, &command).status.success());
    let report = shared_report(&script, &tmp.path().join("s.md"));
    for leak in ["esc-leak", "pair-leak"] {
        assert!(!report.contains(leak), "the report shows {leak}: {report}");
    }
    // A secret after a name that says where one is kept, in what the rule took for that
    // name's value (helper-75: in clear in the report), and that name left as it is.
    let kept = tmp.path().join("kept");
    let command = [
        "sh",
        "-c",
        "/bin/true --set auth.type=basic,auth.password=list-leak; \
         /bin/true --password-stdin --token stdin-leak --password-file=/etc/pw",
    ];
    assert!(record(&kept, &command).status.success());
    let report = shared_report(&kept, &tmp.path().join("k.md"));
    for leak in ["list-leak", "stdin-leak"] {
        assert!(!report.contains(leak), "the report shows {leak}: {report}");
    }
    assert!(
        report.contains("auth.type=basic,auth.password=\\*\\*\\*")
            && report.contains("--password-file=/etc/pw"),
        "{report}"
    );
    // What an expect script sends to a password prompt: nothing names it but the prompt.
    // It was in clear, and `"; send "` masked in its place.
    let sent = tmp.path().join("sent");
    let command = [
        "/bin/true",
        "-c",
        r#"spawn su; expect "Enter password:"; send "exp-leak\r"; interact"#,
    ];
    assert!(record(&sent, &command).status.success());
    let report = shared_report(&sent, &tmp.path().join("e.md"));
    assert!(
        !report.contains("exp-leak"),
        "the report shows exp-leak: {report}"
    );
    assert!(
        report.contains(r#"expect "Enter password:"; send "\*\*\*"; interact"#),
        "{report}"
    );
    // A secret in an argument the kernel cut at 127 bytes, inside its quotes: the quote
    // never closes, and the value ran to the end in clear.
    let cut = tmp.path().join("cut");
    let long = "y".repeat(200);
    let command = [
        "sh",
        "-c",
        &format!(
            "/bin/true \"{{'token': 'cut-leak{long}'}}\" --password=\"glued-leak{long}\" \
             https://oauth2:url-leak{long}@git.example.com/x.git dir"
        ),
    ];
    assert!(record(&cut, &command).status.success());
    let report = shared_report(&cut, &tmp.path().join("c.md"));
    for leak in ["cut-leak", "glued-leak", "url-leak"] {
        assert!(!report.contains(leak), "the report shows {leak}: {report}");
    }
    let out = analyze_query(
        &[&cut],
        "SELECT cmdline FROM processes WHERE comm = 'true'",
        "markdown",
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && table.contains("true "), "{out:?}");
    assert!(!table.contains("-leak"), "{table}");
    // A URL cut before its `@` with words after it, in a line with no quotes: the rule for
    // a cut URL looked only at the end of the line (helper-71).
    let bare = tmp.path().join("bare");
    // Through `sh -c`, so that the program is gone before /proc is read, as a short-lived
    // child of a script is: its line is the kernel's, cut.
    let script =
        format!("/bin/true git clone https://oauth2:bare-leak{long}@git.example.com/x dir");
    let command = ["sh", "-c", &script];
    assert!(record(&bare, &command).status.success());
    let out = analyze_query(
        &[&bare],
        "SELECT cmdline FROM processes WHERE comm = 'true'",
        "markdown",
    );
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && table.contains("/bin/true git clone https://oauth2:"),
        "{out:?}"
    );
    assert!(!table.contains("bare-leak"), "{table}");
}

/// Secrets planted in a real workload (command lines, paths) are in the capture, and are
/// masked in everything written to be shared: both report formats, Markdown output and
/// `-o` files. `--no-redact` keeps them; the terminal's own output is not masked.
#[test]
fn secrets_are_masked_wherever_output_is_meant_to_be_shared() {
    if !bpf_available("secrets_are_masked_wherever_output_is_meant_to_be_shared") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("cap");
    let secrets = [
        "hunter2",
        "tok3n-url-pass",
        "AKIAIOSFODNN7EXAMPLE",
        "sekrit-token-123",
        "abcdefgh12345bearer",
        "json-pw-9",
        "stapl3-word",
        "sp4ced-second",
        "my5ql-pw",
        "q5ql$",
    ];
    // A MySQL client's password glued to `-p`, by a program named as one.
    let mysql = tmp.path().join("mysql");
    std::os::unix::fs::symlink("/bin/true", &mysql).unwrap();
    let script = format!(
        "{m} -u root -pmy5ql-pw -p 3306 orders; {m} '-pq5ql$ word'; ",
        m = mysql.display()
    ) + "sh -c 'exit 0' --password=hunter2; \
        /bin/true -d '{\"user\":\"a\",\"password\":\"json-pw-9\"}'; \
        cat '/nonexistent/https://deploy:tok3n-url-pass@git.example.com/x' 2>/dev/null; \
        cat /nonexistent/AKIAIOSFODNN7EXAMPLE 2>/dev/null; \
        /bin/true --token sekrit-token-123; \
        /bin/true '--password=horse stapl3-word' --token 'one sp4ced-second'; \
        cat '/nonexistent/Authorization: Bearer abcdefgh12345bearer' 2>/dev/null; exit 0";
    assert!(record(&capture, &["sh", "-c", &script]).status.success());
    let c = capture.to_str().unwrap();
    // The oracle: the capture holds every secret (so this test can fail).
    let raw = analyze(&[
        "query",
        c,
        "SELECT string_agg(coalesce(path, ''), ' ') AS p FROM syscalls
         UNION ALL SELECT string_agg(coalesce(cmdline, ''), ' ') FROM processes",
        "--format",
        "json",
    ]);
    let raw = String::from_utf8_lossy(&raw.stdout).to_string();
    for s in secrets {
        assert!(raw.contains(s), "{s} not in the capture: {raw}");
    }

    let shared = |args: &[&str], file: Option<&Path>| -> String {
        let out = analyze(args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        match file {
            Some(f) => std::fs::read_to_string(f).unwrap(),
            None => String::from_utf8_lossy(&out.stdout).to_string(),
        }
    };
    let md = tmp.path().join("r.md");
    let html = tmp.path().join("r.html");
    let csv = tmp.path().join("p.csv");
    let trace = tmp.path().join("t.json");
    let outputs = [
        (
            "report md",
            shared(&["report", c, "-o", md.to_str().unwrap()], Some(&md)),
        ),
        (
            "report html",
            shared(&["report", c, "-o", html.to_str().unwrap()], Some(&html)),
        ),
        (
            "markdown",
            shared(&["query", c, "processes", "--format", "markdown"], None),
        ),
        (
            "SQL markdown",
            shared(
                &[
                    "query",
                    c,
                    "SELECT path FROM syscalls WHERE path LIKE '/nonexistent/%'",
                    "--format",
                    "markdown",
                ],
                None,
            ),
        ),
        (
            "nested markdown",
            shared(
                &[
                    "query",
                    c,
                    "SELECT array_agg(cmdline) AS l, named_struct('c', min(cmdline)) AS s \
                     FROM processes",
                    "--format",
                    "markdown",
                ],
                None,
            ),
        ),
        (
            "-o csv",
            shared(
                &[
                    "query",
                    c,
                    "processes",
                    "-f",
                    "csv",
                    "-o",
                    csv.to_str().unwrap(),
                ],
                Some(&csv),
            ),
        ),
        (
            "perfetto trace",
            shared(
                &["export", c, "--perfetto", trace.to_str().unwrap()],
                Some(&trace),
            ),
        ),
    ];
    for (what, text) in &outputs {
        for s in secrets {
            assert!(!text.contains(s), "{what} shows {s}");
        }
        // Markdown escapes the mask (`\*\*\*`), which renders as `***`.
        let masked = text.replace(r"\*", "*");
        assert!(masked.contains("***"), "{what} masks nothing");
    }
    // A canned query's examples are whatever `min(path)` picks, which depends on the
    // environment (cargo's LD_LIBRARY_PATH adds failed opens): no secret, masked or not.
    let errors = shared(&["query", c, "errors", "--format", "markdown"], None);
    for s in secrets {
        assert!(!errors.contains(s), "errors markdown shows {s}");
    }
    let report = &outputs[0].1.replace(r"\*", "*");
    assert!(
        report.contains("--password=***"),
        "the kind of secret stays readable"
    );
    assert!(report.contains("https://deploy:***@git.example.com"));

    let kept = shared(
        &["report", c, "-o", md.to_str().unwrap(), "--no-redact"],
        Some(&md),
    );
    assert!(kept.contains("--password=hunter2"));
    let terminal = shared(&["query", c, "processes"], None);
    assert!(
        terminal.contains("hunter2"),
        "the terminal table is not masked"
    );
}

/// `dev/build-record` makes `record` one static executable: no interpreter, no shared
/// libraries, and it records a real command with the command's exit status.
#[test]
fn the_static_record_is_one_file_and_records() {
    if !bpf_available("the_static_record_is_one_file_and_records") {
        return;
    }
    let exe = std::env::var_os("TRACEPOST_STATIC_RECORD")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../target/x86_64-unknown-linux-gnu/release/record")
        });
    assert!(
        exe.exists(),
        "{}: run dev/build-record (dev/test does)",
        exe.display()
    );
    let elf = Command::new("readelf")
        .args(["--program-headers", "--dynamic"])
        .arg(&exe)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&elf.stdout);
    assert!(elf.status.success(), "readelf: {text}");
    assert!(!text.contains("INTERP"), "no dynamic loader: {text}");
    assert!(!text.contains("(NEEDED)"), "no shared library: {text}");

    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("cap");
    let out = Command::new(&exe)
        .args(["-q", "-o"])
        .arg(&capture)
        .args(["--", "sh", "-c", "cat /etc/hostname >/dev/null; exit 3"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(
        scalar(
            &capture,
            "SELECT count(*) FROM syscalls WHERE comm = 'cat' AND syscall = 'execve'"
        ),
        1
    );
    assert_eq!(
        scalar(&capture, "SELECT events FROM capture"),
        scalar(&capture, "SELECT count(*) FROM syscalls")
    );
}

/// `record`, which runs as root on production hosts, keeps its image at a random address
/// (a PIE; the static copy a static PIE). `analyze` is linked at a fixed address to start
/// 6-7 ms sooner (analyzer/build.rs).
#[test]
fn record_is_position_independent_and_analyze_is_not() {
    // e_type, the 16-bit field after the 16 bytes of e_ident: 2 a fixed-address
    // executable, 3 a position-independent one.
    let elf_type = |exe: &Path| {
        let bytes = std::fs::read(exe).unwrap();
        assert_eq!(&bytes[..4], b"\x7fELF", "{}", exe.display());
        u16::from_le_bytes([bytes[16], bytes[17]])
    };
    assert_eq!(elf_type(&tracepost_e2e::bin("record")), 3, "record");
    assert_eq!(elf_type(&tracepost_e2e::bin("analyze")), 2, "analyze");
    if let Some(exe) = std::env::var_os("TRACEPOST_STATIC_RECORD") {
        assert_eq!(elf_type(Path::new(&exe)), 3, "the static record");
    }
}

/// The `max_entries` of the recorder's table of unsent calls, read from the kernel's own
/// fdinfo once the programs are loaded: its one per-CPU hash map with 12-byte keys and
/// 16-byte values (the feature probe before the load creates one with 1-byte keys).
fn loss_table_entries(args: &[&str]) -> u64 {
    let tmp = tempfile::tempdir().unwrap();
    let mut child = Command::new(tracepost_e2e::bin("record"))
        .args(["-q", "-o"])
        .arg(tmp.path().join("cap"))
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let fdinfo = format!("/proc/{}/fdinfo", child.id());
    let started = Instant::now();
    let entries = loop {
        let found = std::fs::read_dir(&fdinfo)
            .into_iter()
            .flatten()
            .flatten()
            .find_map(|e| {
                let info = std::fs::read_to_string(e.path()).ok()?;
                let field = |name: &str| {
                    info.lines()
                        .find_map(|l| l.strip_prefix(name))
                        .map(|v| v.trim().to_string())
                };
                // BPF_MAP_TYPE_PERCPU_HASH
                let ours = field("map_type:")?.as_str() == "5"
                    && field("key_size:")?.as_str() == "12"
                    && field("value_size:")?.as_str() == "16";
                ours.then(|| field("max_entries:"))?
            });
        if let Some(entries) = found {
            break entries.parse::<u64>().unwrap();
        }
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "record {args:?} ended ({status}) before its table was seen: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if started.elapsed() > Duration::from_secs(10) {
            child.kill().ok();
            panic!("record {args:?}: no table of unsent calls in 10 s");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    entries
}

/// Preallocated with a value per possible CPU per group: 32,768 groups would be 32 MiB of
/// kernel memory at 64 CPUs. Only `--failed`, `--min-duration` and `-a` need many groups.
#[test]
fn the_table_of_unsent_calls_is_sized_by_what_uses_it_and_the_cpus() {
    if !bpf_available("the_table_of_unsent_calls_is_sized_by_what_uses_it_and_the_cpus") {
        return;
    }
    // The kernel's count of possible CPUs: "0-1", "0-63", "0".
    let possible = std::fs::read_to_string("/sys/devices/system/cpu/possible").unwrap();
    let cpus: u64 = possible
        .trim()
        .split(',')
        .map(|range| match range.split_once('-') {
            Some((a, b)) => b.parse::<u64>().unwrap() - a.parse::<u64>().unwrap() + 1,
            None => 1,
        })
        .sum();
    let many = ((16u64 << 20) / (16 * cpus)).clamp(4096, 32768);
    let sleep = ["--", "sleep", "0.5"];
    assert_eq!(loss_table_entries(&sleep), 4096);
    assert_eq!(
        loss_table_entries(&[&["-e", "read"][..], &sleep].concat()),
        4096
    );
    assert_eq!(
        loss_table_entries(&[&["--failed"][..], &sleep].concat()),
        many
    );
    assert_eq!(
        loss_table_entries(&[&["--min-duration", "1ms"][..], &sleep].concat()),
        many
    );
    assert_eq!(loss_table_entries(&["-a", "-d", "300ms"]), many);
}

/// A traced process can make `record` follow many copies of a big fd table: one of 19,000
/// fds that forked 400 children took 562 MB of the recorder's memory (helper-65). A child
/// shares its parent's table in the recorder until one of them changes it, so the peak
/// stays within the README's 64 MiB, and the children's fds are still named.
#[test]
fn many_children_of_a_process_with_many_fds_cost_no_copy_each() {
    if !bpf_available("many_children_of_a_process_with_many_fds_cost_no_copy_each") {
        return;
    }
    let forked = children_of_many_fds(false);
    // Each child's fstat of the last fd names it, from the table it shares.
    assert_eq!(forked.named, CHILDREN, "{forked:?}");
    assert_eq!(forked.unnamed, 0, "{forked:?}");
}

/// Children that each change a big inherited table each need a copy of it: 300 children of
/// 10,000 fds that close one took 233 MB (helper-67 measured 564 MB for 400 of 19,000).
/// Past the tracker's bound a child's inherited names are let go instead: its fds read
/// NULL, never a wrong name, and the warning counts the tables.
#[test]
fn children_that_change_a_big_inherited_table_stay_within_the_memory_bound() {
    if !bpf_available("children_that_change_a_big_inherited_table_stay_within_the_memory_bound") {
        return;
    }
    let forked = children_of_many_fds(true);
    // The bound holds 2^18 copied entries: 26 copies of a table of 10,004 fds at once,
    // more if children exit before the last forks.
    assert!(forked.named >= 26, "{forked:?}");
    assert_eq!(forked.named + forked.unnamed, CHILDREN, "{forked:?}");
    let warning = format!(
        "warning: {} processes' fd tables were too big to copy within the fd tracker's \
         memory bound: the fds they held before their first change have no fd_path",
        forked.unnamed
    );
    assert!(forked.stderr.contains(&warning), "{forked:?}");
}

const CHILDREN: i64 = 300;

#[derive(Debug)]
struct Forked {
    /// Children whose fstat of the parent's last fd was named `/dev/null`, and left NULL.
    named: i64,
    unnamed: i64,
    stderr: String,
}

/// Records a process of 10,000 fds that forks 300 children, each of which, if `change`,
/// closes the first fd, and then fstats the last one. Asserts that no child's fd had a
/// wrong name and that the recorder's peak RSS stayed within 64 MiB.
fn children_of_many_fds(change: bool) -> Forked {
    const FDS: usize = 10_000;
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("cap");
    let close = if change { "os.close(fds[0])" } else { "pass" };
    let script = format!(
        "import os, resource, time\n\
         hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]\n\
         resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))\n\
         fds = [os.open('/dev/null', os.O_RDONLY) for _ in range({FDS})]\n\
         kids = []\n\
         for _ in range({CHILDREN}):\n\
         \x20   pid = os.fork()\n\
         \x20   if pid == 0:\n\
         \x20       {close}\n\
         \x20       os.fstat(fds[-1])\n\
         \x20       time.sleep(2)\n\
         \x20       os._exit(0)\n\
         \x20   kids.append(pid)\n\
         for pid in kids:\n\
         \x20   os.waitpid(pid, 0)\n\
         print(fds[-1])\n"
    );
    let python = match Path::new("/usr/bin/python3").exists() {
        true => "/usr/bin/python3",
        false => "python3",
    };
    let mut child = record_command(&capture, &["-q"], &[python, "-c", &script])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The peak so far, read until the recorder exits.
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kib = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(text) = std::fs::read_to_string(&status)
            && let Some(line) = text.lines().find(|l| l.starts_with("VmHWM:"))
        {
            peak_kib = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        }
        thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    let fd: i64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert!(peak_kib > 0, "no peak read");
    assert!(
        peak_kib < 64 * 1024,
        "record's peak RSS was {peak_kib} KiB with {CHILDREN} children of {FDS} fds"
    );
    let count = |which: &str| {
        scalar(
            &capture,
            &format!(
                "SELECT count(DISTINCT pid) FROM syscalls WHERE syscall = 'newfstatat' \
                 AND fd = {fd} AND {which}"
            ),
        )
    };
    assert_eq!(count("fd_path <> '/dev/null'"), 0, "a wrong name");
    Forked {
        named: count("fd_path = '/dev/null'"),
        unnamed: count("fd_path IS NULL"),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Root's `analyze` does not read a capture another user can write into: that user could
/// put a symlink there to a file only root may read, whose rows then reached root's answer,
/// or swap a file for a FIFO after its check, which hung the query (helper-65).
#[test]
fn root_does_not_analyze_a_directory_another_user_can_write() {
    if !bpf_available("root_does_not_analyze_a_directory_another_user_can_write") {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let capture = tmp.path().join("cap");
    assert!(record(&capture, &["true"]).status.success());
    let copy = |name: &str| {
        let to = tmp.path().join(name);
        let copied = Command::new("cp").arg("-a").arg(&capture).arg(&to).status();
        assert!(copied.unwrap().success());
        to
    };
    let theirs = copy("theirs");
    let chowned = Command::new("chown")
        .args(["-R", "65534:65534"])
        .arg(&theirs)
        .status();
    assert!(chowned.unwrap().success());
    let open = copy("open");
    let mode = |dir: &Path, mode: u32| {
        std::fs::set_permissions(dir.join("syscalls"), std::fs::Permissions::from_mode(mode))
            .unwrap()
    };
    mode(&open, 0o777);
    // Group 0 is no guard: containers run users in it.
    let group = copy("group");
    mode(&group, 0o770);
    // `setfacl -m u:nobody:rwx`, as the kernel stores it: the mode's group bits are then the
    // ACL's mask, which must let the named user write.
    let acl = copy("acl");
    let set = Command::new("python3")
        .arg("-c")
        .arg(
            "import os, struct, sys\n\
             e = [(1, 7, 0xffffffff), (2, 7, 65534), (4, 0, 0xffffffff), (0x10, 7, 0xffffffff), \
             (0x20, 0, 0xffffffff)]\n\
             d = struct.pack('<I', 2) + b''.join(struct.pack('<HHI', *x) for x in e)\n\
             os.setxattr(sys.argv[1], 'system.posix_acl_access', d)",
        )
        .arg(acl.join("syscalls"))
        .status();
    assert!(set.unwrap().success());
    // Root's own capture below a directory of another user's: they can swap it for theirs.
    let home = tmp.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let copied = Command::new("cp")
        .arg("-a")
        .arg(&capture)
        .arg(home.join("cap"))
        .status();
    assert!(copied.unwrap().success());
    std::os::unix::fs::chown(&home, Some(65534), Some(65534)).unwrap();
    let below = home.join("cap");
    // A symlink to root's capture that another user owns: they can point it elsewhere
    // between the check and the reads (helper-71). And root's own link to a capture below
    // that user's directory, checked where it leads.
    let their_link = tmp.path().join("their-link");
    std::os::unix::fs::symlink(&capture, &their_link).unwrap();
    std::os::unix::fs::lchown(&their_link, Some(65534), Some(65534)).unwrap();
    let root_link = tmp.path().join("root-link");
    std::os::unix::fs::symlink(&below, &root_link).unwrap();
    // Root's link to a second link, root's too, in a directory any user can write: they can
    // swap the second (helper-73).
    let open_dir = tmp.path().join("open-dir");
    std::fs::create_dir(&open_dir).unwrap();
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    std::os::unix::fs::symlink(&capture, open_dir.join("hop")).unwrap();
    let chain = tmp.path().join("chain");
    std::os::unix::fs::symlink(open_dir.join("hop"), &chain).unwrap();
    // Root's link to theirs, written with a trailing `/`.
    let slashed_chain = tmp.path().join("slashed-chain");
    std::os::unix::fs::symlink(their_link.join(""), &slashed_chain).unwrap();
    for (dir, refused, why) in [
        (&theirs, theirs.clone(), "is owned by uid 65534"),
        (
            &their_link,
            their_link.clone(),
            "is a symlink owned by uid 65534",
        ),
        (
            &root_link,
            home.clone(),
            "is on the way to it, and it belongs to another user (uid 65534)",
        ),
        (
            &chain,
            open_dir.clone(),
            "is on the way to it, and other users can write it",
        ),
        // The same links named with a trailing `/` or `/.`, which make lstat follow them
        // (helper-74).
        (
            &their_link.join(""),
            their_link.clone(),
            "is a symlink owned by uid 65534",
        ),
        (
            &their_link.join("."),
            their_link.clone(),
            "is a symlink owned by uid 65534",
        ),
        (
            &slashed_chain,
            their_link.clone(),
            "is a symlink owned by uid 65534",
        ),
        (
            &below,
            home.clone(),
            "is on the way to it, and it belongs to another user (uid 65534)",
        ),
        (
            &open,
            open.join("syscalls"),
            "is writable by other users (mode 0777)",
        ),
        (
            &group,
            group.join("syscalls"),
            "is writable by other users (mode 0770)",
        ),
        (
            &acl,
            acl.join("syscalls"),
            "is writable by other users (mode 0770)",
        ),
    ] {
        let out = analyze(&["summary", dir.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        assert_eq!(
            stderr_line(&out),
            format!(
                "error: capture {}: {} {why}: root's analyze would read what that user can \
                 put there (a symlink to a file only root may read, a FIFO that hangs the \
                 query); run analyze as that user, or on a copy root owns",
                dir.display(),
                refused.display()
            )
        );
    }
    // Named from inside that directory, as `cap`: the same.
    let out = Command::new(tracepost_e2e::bin("analyze"))
        .args(["summary", "cap"])
        .current_dir(&home)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        stderr_line(&out).starts_with(&format!(
            "error: capture cap: {} is on the way to it, and it belongs to another user",
            home.display()
        )),
        "{out:?}"
    );
    // A symlink in root's own copy (`cp -r` keeps a planted one) is not followed.
    let linked = copy("linked");
    let target = std::fs::read_dir(capture.join("syscalls"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "parquet"))
        .unwrap();
    let link = linked.join("syscalls").join("part-000999.parquet");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let out = analyze(&["summary", linked.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        stderr_line(&out),
        format!(
            "error: {}: a symlink, which analyze run as root does not follow (it could lead \
             to a file only root may read): copy the file in; --skip-bad-files answers from \
             the readable files",
            link.display()
        )
    );
    // A table directory that is a symlink, in root's own copy: refused, and not said to be
    // another user's doing.
    let moved = copy("moved");
    std::fs::rename(moved.join("aggregates"), moved.join("agg_real")).unwrap();
    std::os::unix::fs::symlink("agg_real", moved.join("aggregates")).unwrap();
    let out = analyze(&["summary", moved.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        stderr_line(&out),
        format!(
            "error: capture {0}: {0}/aggregates is a symlink, which analyze run as root does \
             not follow (it could lead to files only root may read): put the directory itself \
             in its place",
            moved.display()
        )
    );
    // Root's own copy is read as it is.
    assert!(scalar(&capture, "SELECT count(*) FROM syscalls") > 10);
}
