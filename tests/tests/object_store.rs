//! Captures in object storage: a bucket answers exactly as the directory it was copied
//! from, local and remote captures mix in one command, and every failure of a store (a
//! missing bucket, an endpoint that does not answer, a damaged object) is one line naming
//! the URL, in bounded time. S3 is served by moto (PyPI) on 127.0.0.1, configured only
//! through the standard `AWS_*` variables; Azure Blob by azurite (npm), through the
//! `AZURE_*` and `AZURITE_*` variables; `http://` by WsgiDAV (PyPI), a WebDAV server, since
//! listing a directory over HTTP takes WebDAV.
use std::{
    io::BufRead as _,
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Output, Stdio},
    time::{Duration, Instant},
};

use tracepost_e2e::{
    bin, bpf_available, one_error_line, parquet_files, record_command, record_with, run_unpanicked,
};

/// An S3 API server for one test, stopped when dropped.
struct Moto {
    _server: Server,
    port: u16,
}

/// A port nothing listens on: bound and released, then given to a server.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A server for one test, stopped when dropped, whether the test passed or not: with
/// SIGTERM, as an operator stops it, so that an executor removes its work directory (a
/// SIGKILL left one in /tmp per test run), and with SIGKILL if it has not ended in 10 s.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        // SAFETY: kill has no memory preconditions; the pid is our own unreaped child.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        for _ in 0..100 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `program ARGS` and waits until it accepts connections on `port`.
fn serve(program: &str, args: &[&str], port: u16) -> Server {
    let mut command = Command::new(program);
    command.args(args);
    serve_command(command, port)
}

/// Starts `command` and waits until it accepts connections on `port`.
fn serve_command(mut command: Command, port: u16) -> Server {
    let program = command.get_program().to_string_lossy().into_owned();
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{program} is installed (dev/setup --test): {e}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{program} {:?} exited: {status}", command.get_args());
        }
        assert!(Instant::now() < deadline, "{program} did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    Server(child)
}

impl Moto {
    fn start() -> Self {
        let port = free_port();
        let server = serve(
            "moto_server",
            &["-H", "127.0.0.1", "-p", &port.to_string()],
            port,
        );
        Self {
            _server: server,
            port,
        }
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Copies a capture directory to `s3://bucket/prefix/`, creating the bucket, with the
    /// AWS SDK for Python (which moto brings): an uploader that is not ours.
    fn upload(&self, dir: &Path, bucket: &str, prefix: &str) {
        let script = r#"
import os, sys, boto3
endpoint, root, bucket, prefix = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
    s3.create_bucket(Bucket=bucket)
for parent, _, files in os.walk(root):
    for name in files:
        path = os.path.join(parent, name)
        key = prefix + "/" + os.path.relpath(path, root)
        s3.upload_file(path, bucket, key)
"#;
        let status = Command::new("python3")
            .args(["-c", script, &self.endpoint()])
            .arg(dir)
            .args([bucket, prefix])
            .status()
            .expect("run python3");
        assert!(status.success(), "upload to moto failed");
    }

    /// Creates `bucket` and returns `key size` for each object under `prefix/`, sorted,
    /// as the AWS SDK for Python lists them.
    fn objects(&self, bucket: &str, prefix: &str) -> Vec<String> {
        let script = r#"
import sys, boto3
endpoint, bucket, prefix = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="test", aws_secret_access_key="test")
if bucket not in [b["Name"] for b in s3.list_buckets().get("Buckets", [])]:
    s3.create_bucket(Bucket=bucket)
pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/")
for page in pages:
    for o in page.get("Contents", []):
        print(o["Key"][len(prefix) + 1:], o["Size"])
"#;
        let out = Command::new("python3")
            .args(["-c", script, &self.endpoint(), bucket, prefix])
            .output()
            .expect("run python3");
        assert!(out.status.success(), "listing moto failed: {out:?}");
        let mut keys: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect();
        keys.sort();
        keys
    }

    /// Deletes `bucket`, every object in it first, and with `again` makes it again,
    /// empty: what a bucket deleted (and made again) by hand, or by a deploy, looks like to
    /// a client.
    fn delete_bucket(&self, bucket: &str, again: bool) {
        let script = r#"
import sys, boto3
endpoint, bucket, again = sys.argv[1:4]
s3 = boto3.resource("s3", endpoint_url=endpoint, region_name="us-east-1",
                    aws_access_key_id="test", aws_secret_access_key="test")
b = s3.Bucket(bucket)
# A recorder may put an object between the two: emptied again until the delete holds.
for attempt in range(50):
    b.objects.all().delete()
    try:
        b.delete()
        break
    except s3.meta.client.exceptions.ClientError as e:
        if e.response["Error"]["Code"] != "BucketNotEmpty":
            raise
if again == "again":
    s3.create_bucket(Bucket=bucket)
"#;
        let again = if again { "again" } else { "gone" };
        let status = Command::new("python3")
            .args(["-c", script, &self.endpoint(), bucket, again])
            .status()
            .expect("run python3");
        assert!(status.success(), "deleting the bucket failed");
    }

    /// Waits until `bucket/prefix` holds a file of calls (not the empty first one): a
    /// recorder shipping there is mid-capture.
    fn wait_for_calls(&self, bucket: &str, prefix: &str) {
        let waiting = Instant::now();
        while !self
            .objects(bucket, prefix)
            .iter()
            .any(|o| o.starts_with("syscalls/") && !o.starts_with("syscalls/part-000000"))
        {
            assert!(
                waiting.elapsed() < Duration::from_secs(20),
                "nothing shipped"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `analyze ARGS...` with the store's standard variables pointing at this server.
    fn analyze(&self, args: &[&str]) -> Output {
        analyze_with_endpoint(&self.endpoint(), args)
    }
}

fn analyze_with_endpoint(endpoint: &str, args: &[&str]) -> Output {
    analyze_with(&aws_vars(endpoint), args)
}

/// `record FLAGS... -o DIR -- COMMAND...` with these variables and none of the machine's
/// own for any store, not yet started.
fn uploading_command(
    vars: &[(&str, &str)],
    dir: &Path,
    flags: &[&str],
    command: &[&str],
) -> Command {
    let mut record = record_command(dir, flags, command);
    without_store_vars(&mut record);
    record.envs(vars.iter().copied());
    record
}

/// [`uploading_command`], run to its end.
fn record_uploading(vars: &[(&str, &str)], dir: &Path, flags: &[&str], command: &[&str]) -> Output {
    run_unpanicked(&mut uploading_command(vars, dir, flags, command), "record")
}

/// `SELECT count(*) ...` over one capture, local or remote.
fn count_at(vars: &[(&str, &str)], capture: &str, sql: &str) -> i64 {
    let out = stdout(&analyze_with(
        vars,
        &["query", capture, sql, "--format", "csv"],
    ));
    out.lines()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in: {out}"))
}

/// Every local file of a capture, `TABLE/NAME size`, sorted: as [`Moto::objects`] lists.
fn local_files(dir: &Path) -> Vec<String> {
    let mut files: Vec<String> = ["aggregates", "capture", "processes", "syscalls"]
        .iter()
        .flat_map(|table| parquet_files(&dir.join(table)))
        .map(|f| {
            let relative = f.strip_prefix(dir).unwrap().display().to_string();
            format!("{relative} {}", std::fs::metadata(&f).unwrap().len())
        })
        .collect();
    files.sort();
    files
}

/// The standard variables that point the S3 store at `endpoint`.
fn aws_vars(endpoint: &str) -> [(&'static str, &str); 5] {
    [
        ("AWS_ENDPOINT_URL", endpoint),
        ("AWS_ALLOW_HTTP", "true"),
        ("AWS_ACCESS_KEY_ID", "test"),
        ("AWS_SECRET_ACCESS_KEY", "test"),
        ("AWS_DEFAULT_REGION", "us-east-1"),
    ]
}

/// `analyze ARGS...` with these variables and none of the machine's own for any store.
fn analyze_with(vars: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(bin("analyze"));
    without_store_vars(&mut command);
    command.args(args).envs(vars.iter().copied());
    run_unpanicked(&mut command, "analyze")
}

fn without_store_vars(command: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key_text = key.to_string_lossy();
        if ["AWS_", "AZURE_", "AZURITE_", "GOOGLE_"]
            .iter()
            .any(|p| key_text.starts_with(p))
        {
            command.env_remove(key);
        }
    }
}

#[track_caller]
fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "analyze failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// A small real capture: a listing, a failing open and a short sleep.
/// With `--sched`, so that its columns go through every store and the cluster too.
fn real_capture(dir: &Path) {
    let out = record_with(
        dir,
        &["-q", "--sched"],
        &[
            "sh",
            "-c",
            "ls / >/dev/null; cat /nonexistent 2>/dev/null; sleep 0.05",
        ],
    );
    assert!(
        out.status.success() || out.status.code() == Some(1),
        "{out:?}"
    );
}

#[test]
fn a_bucket_answers_every_canned_query_as_its_local_copy_does() {
    if !bpf_available("a_bucket_answers_every_canned_query_as_its_local_copy_does") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("web-1");
    real_capture(&local);
    let moto = Moto::start();
    moto.upload(&local, "captures", "inc-42/host=web-1");
    let url = "s3://captures/inc-42/host=web-1";
    let local_name = local.to_str().unwrap();

    let names = canned_queries();
    // The same rows, the `capture` column naming each capture as it was given.
    let endpoint = moto.endpoint();
    let vars = aws_vars(&endpoint);
    let same = |args: &[&str]| same_as_local(&vars, &local, url, args);
    for name in &names {
        same(&["query", "CAPTURE", name.as_str(), "--format", "csv"]);
    }
    same(&["summary", "CAPTURE", "--format", "csv"]);
    same(&["summary", "CAPTURE", "--by", "process", "--format", "json"]);
    // Every column of the capture row but the recorder's command line, which holds the
    // local path it was recorded to.
    same(&[
        "query",
        "CAPTURE",
        "SELECT * EXCLUDE (command_line) FROM capture",
        "--format",
        "json",
    ]);

    // The report, written from each, is the same document.
    let report = |capture: &str, file: &str| {
        let path = tmp.path().join(file);
        stdout(&moto.analyze(&["report", capture, "-o", path.to_str().unwrap()]));
        std::fs::read_to_string(path).unwrap()
    };
    // The recorder's command line names the directory it wrote to, in both.
    let recorded_to = format!("-o {local_name}");
    assert_eq!(
        report(local_name, "local.md")
            .replace(&recorded_to, "\0")
            .replace(local_name, url)
            .replace('\0', &recorded_to),
        report(url, "remote.md")
    );
    // A diff of a capture against its own copy: every call on both sides, no change.
    let diff = stdout(&moto.analyze(&["diff", local_name, url, "--format", "json"]));
    let rows: Vec<serde_json::Value> = serde_json::from_str(&diff).unwrap();
    assert!(rows.len() > 3, "{diff}");
    for row in &rows {
        assert!(row["base_calls"].as_i64().unwrap() > 0, "{row}");
        assert_eq!(row["base_calls"], row["incident_calls"], "{row}");
    }

    // Local and remote together: one row each, the same count, each named as given, and
    // the `host=web-1` segment of the URL a column (NULL for the local directory).
    let both = stdout(&moto.analyze(&[
        "query",
        local_name,
        url,
        "SELECT capture, host, count(*) AS calls FROM syscalls GROUP BY capture, host \
         ORDER BY capture",
        "--format",
        "csv",
    ]));
    let rows: Vec<&str> = both.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{both}");
    let calls = |row: &str| row.rsplit(',').next().unwrap().parse::<i64>().unwrap();
    assert_eq!(calls(rows[0]), calls(rows[1]), "{both}");
    assert!(calls(rows[0]) > 10, "{both}");
    assert!(both.contains(&format!("{local_name},,")), "{both}");
    assert!(both.contains(&format!("{url},web-1,")), "{both}");
    let web1 = stdout(&moto.analyze(&[
        "query",
        local_name,
        url,
        "SELECT count(*) AS calls FROM syscalls WHERE host = 'web-1'",
        "--format",
        "csv",
    ]));
    assert_eq!(
        web1.lines().nth(1).map(|n| n.parse::<i64>().unwrap()),
        Some(calls(rows[0]))
    );
    // The same capture twice, by a trailing slash, counts once; both spellings named.
    let twice = moto.analyze(&["summary", url, &format!("{url}/")]);
    assert_eq!(
        one_error_line(&twice),
        format!("error: capture {url}/ is given twice (as {url} too); each capture counts once"),
        "{twice:?}"
    );
    // A path that names a key twice with two values is refused, not read as the first.
    let nested = "s3://captures/inc-42/host=old/host=web-1";
    moto.upload(&local, "captures", "inc-42/host=old/host=web-1");
    let out = moto.analyze(&["query", nested, "SELECT DISTINCT host FROM syscalls"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert_eq!(
        one_error_line(&out),
        format!(
            "error: capture {nested}: its path gives `host` two values (\"old\", then \
             \"web-1\"), and the column `host` holds one; name the capture by a path that \
             gives `host=` once"
        )
    );
    // Beside a table's files, what analyze does not read is named as in a directory:
    // DuckDB's `s3://.../syscalls/*.parquet` reads a hidden object (helper-91).
    let odd = tmp.path().join("odd");
    std::fs::create_dir_all(odd.join("syscalls/sub")).unwrap();
    let part = parquet_files(&local.join("syscalls")).remove(0);
    std::fs::copy(&part, odd.join("syscalls/.old.parquet")).unwrap();
    std::fs::copy(&part, odd.join("syscalls/sub/part-000001.parquet")).unwrap();
    moto.upload(&odd, "captures", "inc-42/host=web-1");
    let out = moto.analyze(&["summary", url]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim_end(),
        format!(
            "warning: capture {url}: syscalls/ holds what analyze does not read: .old.parquet \
             (hidden), sub (a directory); other readers may read it, and answer otherwise"
        )
    );
}

#[test]
fn every_failure_of_a_store_is_one_line_naming_the_url() {
    if !bpf_available("every_failure_of_a_store_is_one_line_naming_the_url") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("web-2");
    real_capture(&local);
    // A damaged copy: the capture plus one file cut in half, as an interrupted upload
    // leaves it.
    let files = parquet_files(&local.join("syscalls"));
    let bytes = std::fs::read(&files[0]).unwrap();
    std::fs::write(
        local.join("syscalls/part-999999.parquet"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let moto = Moto::start();
    moto.upload(&local, "captures", "damaged");
    let url = "s3://captures/damaged";
    let bad = format!("{url}/syscalls/part-999999.parquet");

    let out = moto.analyze(&["summary", url]);
    let line = one_error_line(&out);
    assert!(line.contains(&bad), "{line}");
    // Cut short, as a local copy cut short is: not a footer that "claims" a length.
    assert!(
        line.contains(
            "not a readable Parquet file (it does not end as a Parquet file does: cut short \
             (an interrupted copy?), or not Parquet)"
        ),
        "{line}"
    );
    assert!(
        line.ends_with("--skip-bad-files answers from the readable files"),
        "{line}"
    );

    let sql = "SELECT count(*) AS n FROM syscalls";
    let skipped = moto.analyze(&["query", url, sql, "--skip-bad-files", "--format", "csv"]);
    let answer = stdout(&skipped);
    std::fs::remove_file(local.join("syscalls/part-999999.parquet")).unwrap();
    let local_answer =
        stdout(&moto.analyze(&["query", local.to_str().unwrap(), sql, "--format", "csv"]));
    assert_eq!(answer, local_answer);
    let warning = String::from_utf8_lossy(&skipped.stderr);
    assert!(
        warning.starts_with(&format!(
            "warning: skipped {bad}: not a readable Parquet file"
        )),
        "{warning}"
    );

    // A bit flipped in a `processes` file's data: its checksum, read from the bytes
    // fetched with the footer, refuses it by URL as a local copy's would be.
    let flipped = tmp.path().join("flipped");
    let copied = Command::new("cp")
        .arg("-a")
        .arg(&local)
        .arg(&flipped)
        .status();
    assert!(copied.unwrap().success());
    let processes = parquet_files(&flipped.join("processes"))
        .into_iter()
        .max_by_key(|f| std::fs::metadata(f).unwrap().len())
        .unwrap();
    let mut bytes = std::fs::read(&processes).unwrap();
    bytes[40] ^= 8;
    std::fs::write(&processes, &bytes).unwrap();
    moto.upload(&flipped, "captures", "flipped");
    let name = processes.file_name().unwrap().to_str().unwrap();
    let line = one_error_line(&moto.analyze(&["summary", "s3://captures/flipped"]));
    assert!(
        line.starts_with(&format!(
            "error: s3://captures/flipped/processes/{name}: its data does not match the checksum"
        )),
        "{line}"
    );

    // A key with `%` in it cannot be opened by URL as named: refused by name, not read as
    // empty.
    let odd = tmp.path().join("odd");
    std::fs::create_dir_all(odd.join("syscalls")).unwrap();
    std::fs::copy(&files[0], odd.join("syscalls/a%20b.parquet")).unwrap();
    moto.upload(&odd, "captures", "odd");
    let line = one_error_line(&moto.analyze(&["summary", "s3://captures/odd"]));
    assert!(
        line.starts_with(
            "error: s3://captures/odd/syscalls/a%20b.parquet: its name cannot be read"
        ),
        "{line}"
    );

    let started = Instant::now();
    let line = one_error_line(&moto.analyze(&["summary", "s3://no-such-bucket/inc-42"]));
    assert!(
        line.contains("capture s3://no-such-bucket/inc-42: cannot list it"),
        "{line}"
    );
    // What S3 said is in the response's body, after the status line.
    assert!(
        line.ends_with("404 Not Found: NoSuchBucket: The specified bucket does not exist"),
        "{line}"
    );

    let line = one_error_line(&moto.analyze(&["summary", "s3://captures/nothing-here"]));
    assert_eq!(
        line,
        "error: capture s3://captures/nothing-here: no syscalls data (syscalls/*.parquet); \
         is this a tracepost capture?"
    );

    let line = one_error_line(&moto.analyze(&["summary", "ftp://host/inc-42"]));
    assert!(
        line.contains("capture ftp://host/inc-42: unsupported URL scheme"),
        "{line}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );

    // Nothing listens on port 1: the retries end, and the line names the capture.
    let started = Instant::now();
    let out = analyze_with_endpoint("http://127.0.0.1:1", &["summary", url]);
    let line = one_error_line(&out);
    assert!(
        line.contains(&format!("capture {url}: cannot list it")),
        "{line}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "{:?}",
        started.elapsed()
    );
}

/// Runs `analyze ARGS` (`CAPTURE` standing for the capture) on the local capture and on
/// its copy at `url`, and requires the same output, with the `capture` column naming each
/// as it was given.
fn same_as_local(vars: &[(&str, &str)], local: &Path, url: &str, args: &[&str]) {
    let local_name = local.to_str().unwrap();
    let with = |capture: &str| {
        let args: Vec<&str> = args
            .iter()
            .map(|a| if *a == "CAPTURE" { capture } else { a })
            .collect();
        stdout(&analyze_with(vars, &args))
    };
    let here = with(local_name).replace(local_name, url);
    let there = with(url);
    assert_eq!(here, there, "analyze {args:?}");
    assert!(!there.trim().is_empty(), "analyze {args:?} printed nothing");
}

/// What the other stores are checked with, against the local copy.
fn same_answers(vars: &[(&str, &str)], local: &Path, url: &str) {
    let queries: [&[&str]; 4] = [
        &["summary", "CAPTURE", "--format", "csv"],
        &["query", "CAPTURE", "errors", "--format", "csv"],
        &["query", "CAPTURE", "file-io", "--format", "csv"],
        // Every column of the capture row but the recorder's command line, which holds
        // the local path it was recorded to.
        &[
            "query",
            "CAPTURE",
            "SELECT * EXCLUDE (command_line) FROM capture",
            "--format",
            "json",
        ],
    ];
    for args in queries {
        same_as_local(vars, local, url, args);
    }
}

/// `http://` needs a listing, which plain HTTP has not: a WebDAV server gives one.
#[test]
fn a_webdav_server_answers_as_the_local_copy_does() {
    if !bpf_available("a_webdav_server_answers_as_the_local_copy_does") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("served");
    let local = root.join("web-3");
    real_capture(&local);
    let port = free_port();
    let _server = serve(
        "wsgidav",
        &[
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--root",
            root.to_str().unwrap(),
            "--auth",
            "anonymous",
            "--no-config",
        ],
        port,
    );
    let base = format!("http://127.0.0.1:{port}");
    same_answers(&[], &local, &format!("{base}/web-3"));
    let missing = format!("{base}/no-such-capture");
    let line = one_error_line(&analyze_with(&[], &["summary", &missing]));
    assert!(line.contains(&format!("capture {missing}")), "{line}");

    // `record --upload http://...` ships to the same server, which has no conditional
    // put: the files arrive all the same, and read back as the directory does.
    let shipped = tmp.path().join("web-4");
    let url = format!("{base}/web-4");
    let out = record_uploading(
        &[],
        &shipped,
        &["--upload", &url],
        &[
            "sh",
            "-c",
            "ls / >/dev/null; cat /nonexistent 2>/dev/null; sleep 0.05",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(0), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    same_answers(&[], &shipped, &url);
}

/// Azure Blob Storage, served by azurite; the capture is uploaded with Microsoft's SDK
/// for Python, an uploader that is not ours.
#[test]
fn an_azure_container_answers_as_the_local_copy_does() {
    if !bpf_available("an_azure_container_answers_as_the_local_copy_does") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("web-4");
    real_capture(&local);
    let port = free_port();
    let data = tmp.path().join("azurite");
    let _server = serve(
        "azurite-blob",
        &[
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            &port.to_string(),
            "--location",
            data.to_str().unwrap(),
            "--silent",
            "--skipApiVersionCheck",
        ],
        port,
    );
    let endpoint = format!("http://127.0.0.1:{port}");
    // azurite's well-known development account.
    let script = r#"
import os, sys
from azure.storage.blob import BlobServiceClient
endpoint, root, container, prefix = sys.argv[1:5]
key = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
service = BlobServiceClient.from_connection_string(
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    f"AccountKey={key};BlobEndpoint={endpoint}/devstoreaccount1;")
service.create_container(container)
for parent, _, files in os.walk(root):
    for name in files:
        path = os.path.join(parent, name)
        blob = prefix + "/" + os.path.relpath(path, root)
        with open(path, "rb") as f:
            service.get_blob_client(container, blob).upload_blob(f)
"#;
    let status = Command::new("python3")
        .args(["-c", script, &endpoint])
        .arg(&local)
        .args(["captures", "inc-42/host=web-4"])
        .status()
        .expect("run python3");
    assert!(status.success(), "upload to azurite failed");
    let vars = [
        ("AZURE_STORAGE_USE_EMULATOR", "true"),
        ("AZURITE_BLOB_STORAGE_URL", endpoint.as_str()),
        ("AZURE_ALLOW_HTTP", "true"),
    ];
    let url = "az://captures/inc-42/host=web-4";
    same_answers(&vars, &local, url);
    // The `host=web-4` segment is a column here too.
    let hosts = stdout(&analyze_with(
        &vars,
        &[
            "query",
            url,
            "SELECT DISTINCT host FROM syscalls",
            "--format",
            "csv",
        ],
    ));
    assert_eq!(hosts, "host\nweb-4\n");
    let line = one_error_line(&analyze_with(
        &vars,
        &["summary", "az://no-such-container/x"],
    ));
    assert!(
        line.contains("capture az://no-such-container/x: cannot list it"),
        "{line}"
    );
}

/// `record --upload`: each file is in the bucket as soon as it is closed, while recording
/// goes on; at the end the bucket holds exactly the local files, byte for byte in size,
/// and answers as the directory does.
#[test]
fn record_ships_each_file_to_a_bucket_as_it_closes() {
    if !bpf_available("record_ships_each_file_to_a_bucket_as_it_closes") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("web-2");
    let moto = Moto::start();
    assert!(moto.objects("fleet", "inc-7/host=web-2").is_empty());
    let endpoint = moto.endpoint();
    let vars = aws_vars(&endpoint);
    let url = "s3://fleet/inc-7/host=web-2";
    // Ten failed opens, 0.3 s apart: three seconds of recording.
    let work = "for i in $(seq 10); do cat /nonexistent-$i 2>/dev/null; sleep 0.3; done";
    let mut running = uploading_command(
        &vars,
        &local,
        &["--upload", url, "--rotate", "200ms"],
        &["sh", "-c", work],
    )
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // A third of the way through, closed syscalls files are already in the bucket.
    std::thread::sleep(Duration::from_millis(1000));
    assert!(
        running.try_wait().unwrap().is_none(),
        "the recording ended early"
    );
    // Files with calls: part-000000 is the empty file written at the start.
    let early = moto.objects("fleet", "inc-7/host=web-2");
    assert!(
        early
            .iter()
            .any(|k| k.starts_with("syscalls/part-") && k != "syscalls/part-000000.parquet"),
        "nothing shipped while recording: {early:?}"
    );
    assert!(
        running.try_wait().unwrap().is_none(),
        "the recording ended before the bucket was listed: the test proves nothing"
    );
    let out = running.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("file upload(s) to {url}")),
        "{stderr}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");

    assert_eq!(
        moto.objects("fleet", "inc-7/host=web-2"),
        local_files(&local)
    );
    same_answers(&vars, &local, url);
    let opened = "SELECT count(*) AS n FROM syscalls WHERE path LIKE '/nonexistent-%' \
                  AND errno = 'ENOENT'";
    assert_eq!(count_at(&vars, url, opened), 10);

    // Two recorders started together on one new prefix both pass the listing; the store's
    // own precondition (a part file is put only where none is) still keeps either from
    // replacing the other's files, and one of them at least says so.
    let both: Vec<_> = ["web-9", "web-10"]
        .iter()
        .map(|name| {
            uploading_command(
                &vars,
                &tmp.path().join(name),
                &[
                    "--upload",
                    "s3://fleet/inc-12",
                    "--upload-wait",
                    "5s",
                    "--rotate",
                    "200ms",
                ],
                &[
                    "sh",
                    "-c",
                    "for i in 1 2 3 4 5; do ls / >/dev/null; sleep 0.2; done",
                ],
            )
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
        })
        .collect();
    let outs: Vec<Output> = both
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect();
    let refused = outs
        .iter()
        .filter(|o| {
            let stderr = String::from_utf8_lossy(&o.stderr);
            o.status.code() == Some(1) && stderr.contains("error: --upload s3://fleet/inc-12: ")
        })
        .count();
    assert!(refused >= 1, "{outs:?}");
    // What a refused recorder had shipped it takes back: the prefix holds the one that
    // went on, whole, or nothing.
    let winners: Vec<Vec<String>> = ["web-9", "web-10"]
        .iter()
        .zip(&outs)
        .filter(|(_, out)| out.status.success())
        .map(|(name, _)| local_files(&tmp.path().join(name)))
        .collect();
    let there = moto.objects("fleet", "inc-12");
    match winners.as_slice() {
        [] => assert!(there.is_empty(), "{there:?}"),
        [winner] => assert_eq!(&there, winner),
        _ => panic!("neither was refused: {outs:?}"),
    }

    // A wait past what the clock can hold is no wait at all when the store answers.
    let out = record_uploading(
        &vars,
        &tmp.path().join("web-8"),
        &[
            "--upload",
            "s3://fleet/inc-11",
            "--upload-wait",
            "18446744073709551615s",
        ],
        &["true"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Another capture given the same URL (two hosts, one prefix) would overwrite these
    // files with its own part-000001...: it ships nothing there, and says why.
    let shipped = moto.objects("fleet", "inc-7/host=web-2");
    let other = tmp.path().join("web-3");
    let out = record_uploading(
        &vars,
        &other,
        &["--upload", url, "--upload-wait", "1s"],
        &["true"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "error: --upload {url}: it already holds another capture"
        )),
        "{stderr}"
    );
    assert_eq!(moto.objects("fleet", "inc-7/host=web-2"), shipped);
    assert!(!local_files(&other).is_empty());
}

/// A store that answers with a refusal (no such bucket) is told from one that does not
/// answer, and the end does not wait `--upload-wait` (30 s by default) for an answer that
/// cannot change: the files are named as kept at once.
#[test]
fn a_missing_bucket_is_a_refusal_named_at_once() {
    if !bpf_available("a_missing_bucket_is_a_refusal_named_at_once") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    let endpoint = moto.endpoint();
    let vars = aws_vars(&endpoint);
    let dir = tmp.path().join("nobucket");
    let url = "s3://no-such-bucket/inc-1";
    let started = Instant::now();
    let out = record_uploading(&vars, &dir, &["--upload", url], &["true"]);
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(10), "{took:?}: {stderr}");
    assert!(
        stderr.contains(&format!("warning: the store refused {url}: ")),
        "{stderr}"
    );
    assert!(stderr.contains("NoSuchBucket"), "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with(&format!(
            "error: 5 file(s) were not uploaded to {url} and are kept in"
        )),
        "{stderr}"
    );
}

/// A password and a query's values (shared-access signatures) in the URL of `--upload`
/// reach neither stderr nor the capture row, which is shipped with the files.
#[test]
fn secrets_in_an_upload_url_are_masked_where_it_is_shown() {
    if !bpf_available("secrets_in_an_upload_url_are_masked_where_it_is_shown") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("masked");
    let url = format!(
        "http://deploy:Secret97@127.0.0.1:{}/inc?sig=Secret96&X-Amz-Signature=Secret95&sv=2024",
        free_port()
    );
    let flags = ["--upload", url.as_str(), "--upload-wait", "1s"];
    let running = uploading_command(&[], &dir, &flags, &["sleep", "0.5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // What every local user sees of the command line (`ps`), once the recorder holds its
    // directory: the URL's secrets masked in place, where they once stayed whole.
    let lock = dir.join(".record.lock");
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&lock).map_or(true, |s| s.trim().is_empty()) {
        assert!(started.elapsed().as_secs() < 10, "no lock file");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", running.id())).unwrap();
    let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
    assert!(!cmdline.contains("Secret9"), "{cmdline}");
    assert!(
        cmdline.contains("http://deploy:***@127.0.0.1:") && cmdline.contains("sleep 0.5"),
        "{cmdline}"
    );
    let out = running.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("Secret9"), "{stderr}");
    let shown = "http://deploy:***@127.0.0.1:";
    assert!(stderr.contains(shown), "{stderr}");
    assert!(
        stderr.contains("/inc?sig=***&X-Amz-Signature=***&sv=***"),
        "{stderr}"
    );
    let row = stdout(&analyze_with(
        &[],
        &[
            "query",
            dir.to_str().unwrap(),
            "SELECT command_line FROM capture",
        ],
    ));
    assert!(!row.contains("Secret9"), "{row}");
    assert!(row.contains("sig=***&X-Amz-Signature=***&sv=***"), "{row}");
    // The URL as given, masked, and not as `ps` shows it: padded to the URL's length, it
    // once read `/inc***` in the capture row.
    let plain = tmp.path().join("plain");
    let url = format!("http://deploy:Secret94@127.0.0.1:{}/inc", free_port());
    let flags = ["--upload", url.as_str(), "--upload-wait", "1s"];
    let out = record_uploading(&[], &plain, &flags, &["true"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let row = stdout(&analyze_with(
        &[],
        &[
            "query",
            plain.to_str().unwrap(),
            "SELECT command_line FROM capture",
        ],
    ));
    assert!(row.contains("/inc' --upload-wait 1s"), "{row}");
    // A `'` in the password, which the URL parser leaves as it is: the store's own error
    // quotes the URL, and the password's second half was in it in clear.
    let url = format!("http://u:pa'Secret93@127.0.0.1:{}/x", free_port());
    let out = analyze_with(&[], &["summary", &url]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("Secret93"), "{stderr}");
    assert!(
        stderr.contains("Error performing PROPFIND http://u:***@127.0.0.1:"),
        "{stderr}"
    );
}

/// With `--max-size`, the recorder deletes only what is in the bucket: the bucket ends with
/// every call, the directory with the newest files only. While the store does not answer,
/// nothing is deleted, and the files that were never shipped are named at the end, with a
/// non-zero exit, in bounded time.
#[test]
fn max_size_deletes_only_what_is_uploaded_and_unshipped_files_are_named() {
    if !bpf_available("max_size_deletes_only_what_is_uploaded_and_unshipped_files_are_named") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let work = "for i in 1 2 3 4 5 6; do cat /nonexistent-$i 2>/dev/null; sleep 0.25; done";
    let count = |vars: &[(&str, &str)], capture: &str| {
        count_at(
            vars,
            capture,
            "SELECT count(*) AS n FROM syscalls WHERE path LIKE '/nonexistent-%'",
        )
    };

    // A store that answers: everything reaches it, and the directory is trimmed.
    let moto = Moto::start();
    moto.objects("fleet", "inc-8");
    let endpoint = moto.endpoint();
    let vars = aws_vars(&endpoint);
    let url = "s3://fleet/inc-8/host=web-3";
    let local = tmp.path().join("web-3");
    let flags = ["--upload", url, "--rotate", "200ms", "--max-size", "64KiB"];
    let out = record_uploading(&vars, &local, &flags, &["sh", "-c", work]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("once they were uploaded; analyze of this directory warns"),
        "{stderr}"
    );
    let local_syscalls = local_files(&local)
        .iter()
        .filter(|f| f.starts_with("syscalls/"))
        .count();
    let shipped = moto.objects("fleet", "inc-8/host=web-3");
    let shipped_syscalls = shipped
        .iter()
        .filter(|f| f.starts_with("syscalls/"))
        .count();
    assert!(
        shipped_syscalls > local_syscalls,
        "{shipped:?} against {local_syscalls} local"
    );
    assert_eq!(count(&vars, url), 6);
    assert!(count(&vars, local.to_str().unwrap()) < 6);
    // The directory is a short copy, and says so; the bucket, which holds every call, not.
    let events = count_at(&vars, url, "SELECT events AS n FROM capture");
    let all = "SELECT count(*) AS n FROM syscalls";
    let held = count_at(&vars, local.to_str().unwrap(), all);
    assert_eq!(count_at(&vars, url, all), events);
    let here = analyze_with(&vars, &["query", local.to_str().unwrap(), all]);
    let warning = format!(
        "warning: capture {}: it holds {held} of the {events} calls its recorder kept; {} \
         are in files missing here (not copied, lost by a store, or deleted by --max-size \
         once --upload had shipped them): counts over the whole capture are short by that \
         many",
        local.display(),
        events - held
    );
    let stderr = String::from_utf8_lossy(&here.stderr);
    assert!(stderr.lines().any(|l| l == warning), "{stderr}");
    let there = analyze_with(&vars, &["query", url, all]);
    let stderr = String::from_utf8_lossy(&there.stderr);
    assert!(!stderr.contains("missing here"), "{stderr}");

    // A burst that closes files faster than they go up: what was over the bound only for
    // want of its upload is deleted once the last uploads are done, and the bucket still
    // holds every call.
    let url = "s3://fleet/inc-8/host=burst";
    let local = tmp.path().join("burst");
    let burst = "for i in $(seq 100); do ls /usr/lib >/dev/null; done";
    let flags = ["--upload", url, "--rotate", "200ms", "--max-size", "64KiB"];
    let out = record_uploading(&vars, &local, &flags, &["sh", "-c", burst]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let bytes: u64 = parquet_files(&local.join("syscalls"))
        .iter()
        .map(|f| std::fs::metadata(f).unwrap().len())
        .sum();
    // As without --upload: within the bound, but for the files closed at stop.
    assert!(bytes <= 64 * 1024 * 3 / 2, "{bytes} bytes kept: {stderr}");
    let events = count_at(&vars, url, "SELECT events AS n FROM capture");
    assert_eq!(
        count_at(&vars, url, "SELECT count(*) AS n FROM syscalls"),
        events
    );

    // A store that does not answer: nothing is deleted, and the end names what is kept.
    let dead = format!("http://127.0.0.1:{}", free_port());
    let dead_vars = aws_vars(&dead);
    let url = "s3://fleet/inc-9";
    let local = tmp.path().join("web-4");
    let started = Instant::now();
    let flags = [
        "--upload",
        url,
        "--upload-wait",
        "2s",
        "--rotate",
        "200ms",
        "--max-size",
        "64KiB",
    ];
    let out = record_uploading(&dead_vars, &local, &flags, &["sh", "-c", work]);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "{:?}",
        started.elapsed()
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("warning: cannot reach {url}: ")),
        "{stderr}"
    );
    assert!(!stderr.contains("--max-size deleted"), "{stderr}");
    let last = stderr.lines().last().unwrap();
    let kept = local_files(&local);
    assert!(
        last.starts_with(&format!(
            "error: {} file(s) were not uploaded to {url} and are kept in",
            kept.len()
        )),
        "{last}"
    );
    for file in &kept {
        let name = file.split(' ').next().unwrap();
        assert!(last.contains(name), "{name} not named in: {last}");
    }
    assert_eq!(count(&[], local.to_str().unwrap()), 6);

    // A store that accepts the connection and never answers: --upload-wait still bounds
    // the end, not the HTTP client's 60 s timeout.
    let port = free_port();
    let silent = "import socket, sys, time\n\
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
        s.bind(('127.0.0.1', int(sys.argv[1]))); s.listen(64)\n\
        held = []\n\
        while True: held.append(s.accept())";
    let _silent = serve("python3", &["-c", silent, &port.to_string()], port);
    let silent_endpoint = format!("http://127.0.0.1:{port}");
    let local = tmp.path().join("web-7");
    let started = Instant::now();
    let flags = ["--upload", url, "--upload-wait", "2s"];
    let out = record_uploading(&aws_vars(&silent_endpoint), &local, &flags, &["true"]);
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(15), "took {took:?}: {stderr}");
    assert!(stderr.contains("syscalls/part-000001.parquet"), "{stderr}");

    // A signal while record waits for the store stops the wait: the user who pressed
    // Ctrl-C once more gets the prompt back, and the files are named and kept.
    let local = tmp.path().join("web-8");
    let flags = ["--upload", url, "--upload-wait", "10min"];
    let mut running = uploading_command(&aws_vars(&silent_endpoint), &local, &flags, &["true"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(running.stderr.take().unwrap()).lines();
    let waiting = lines
        .by_ref()
        .map(Result::unwrap)
        .find(|l| l.starts_with("record: waiting"))
        .unwrap();
    assert!(
        waiting.starts_with("record: waiting up to 9m 5")
            && waiting.contains("s (--upload-wait; Ctrl-C stops waiting) for ")
            && waiting.ends_with(&format!(" to reach {url}")),
        "{waiting}"
    );
    let signalled = Instant::now();
    // SAFETY: kill(2) of a child not yet waited for.
    unsafe { libc::kill(running.id() as i32, libc::SIGINT) };
    let rest: Vec<String> = lines.map(Result::unwrap).collect();
    let status = running.wait().unwrap();
    assert!(
        signalled.elapsed() < Duration::from_secs(5),
        "{:?} after the signal: {rest:?}",
        signalled.elapsed()
    );
    assert_eq!(status.code(), Some(1), "{rest:?}");
    let last = rest.last().unwrap();
    assert!(
        last.starts_with("error: 5 file(s) were not uploaded") && last.contains("part-000001"),
        "{rest:?}"
    );
    assert_eq!(local_files(&local).len(), 5);
    // What ended the wait is said: the signal, not --upload-wait.
    assert!(
        rest.iter()
            .any(|l| l.contains("no answer before a signal stopped the wait")),
        "{rest:?}"
    );
    assert!(
        !rest.iter().any(|l| l.contains("--upload-wait ran out")),
        "{rest:?}"
    );
    // Nothing is retried once the wait is over, and no line says it will be.
    assert!(
        rest.iter()
            .any(|l| l.contains("no answer before a signal stopped the wait; files are kept here")),
        "{rest:?}"
    );
    assert!(!rest.iter().any(|l| l.contains("retried")), "{rest:?}");

    // In command mode a command's own failure status is kept, and the files still named.
    let local = tmp.path().join("web-5");
    let flags = ["--upload", url, "--upload-wait", "1s"];
    let out = record_uploading(&dead_vars, &local, &flags, &["sh", "-c", "exit 3"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.lines().last().unwrap().starts_with("error: "),
        "{stderr}"
    );
    assert!(stderr.contains("syscalls/part-000001.parquet"), "{stderr}");
    assert!(
        stderr.contains("record: waiting up to 1s (--upload-wait; Ctrl-C stops waiting)"),
        "{stderr}"
    );
    // -q keeps that note to itself, and says the error all the same.
    let local = tmp.path().join("web-5q");
    let quiet = ["-q", "--upload", url, "--upload-wait", "1s"];
    let out = record_uploading(&dead_vars, &local, &quiet, &["true"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(!stderr.contains("waiting up to"), "{stderr}");
    let last = stderr.lines().last().unwrap();
    assert!(
        last.starts_with("error: 5 file(s) were not uploaded"),
        "{stderr}"
    );

    // A URL that is not object storage: one line, before anything is created.
    let local = tmp.path().join("web-6");
    let out = record_uploading(&[], &local, &["--upload", "ftp://x/y"], &["true"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        one_error_line(&out),
        "error: --upload ftp://x/y: unsupported URL scheme (object storage is s3://, gs://, \
         az://, abfss:// or http(s)://)"
    );
    assert!(!local.exists());
}

/// A store that stops answering mid-capture and comes back after record has given up:
/// requests it had queued then land. The bucket must never hold the capture row written at
/// the end, which says the capture is complete, without every file of calls before it.
#[test]
fn a_store_that_stalls_never_holds_a_finished_capture_missing_calls() {
    if !bpf_available("a_store_that_stalls_never_holds_a_finished_capture_missing_calls") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    moto.objects("fleet", "inc-11");
    let endpoint = moto.endpoint();
    let vars = aws_vars(&endpoint);
    let url = "s3://fleet/inc-11";
    let local = tmp.path().join("web-11");
    let work = "for i in $(seq 12); do cat /nonexistent-$i 2>/dev/null; sleep 0.2; done";
    let flags = ["--upload", url, "--rotate", "300ms", "--upload-wait", "2s"];
    let recorder = uploading_command(&vars, &local, &flags, &["sh", "-c", work])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Mid-capture: once a file of calls is in the bucket. (A stall at a fixed 1 s came
    // before the first uploads; the test passed only because a pass cut short at the
    // deadline went on sending a request per file, which then landed.)
    moto.wait_for_calls("fleet", "inc-11");
    let moto_pid = moto._server.0.id() as i32;
    // SAFETY: kill has no memory preconditions; the pid is our own unreaped child.
    unsafe { libc::kill(moto_pid, libc::SIGSTOP) };
    let out = recorder.wait_with_output().unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(moto_pid, libc::SIGCONT) };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("were not uploaded"), "{stderr}");
    // What the stalled server had queued lands now.
    std::thread::sleep(Duration::from_secs(3));
    let local_calls = count_at(
        &[],
        local.to_str().unwrap(),
        "SELECT count(*) AS n FROM syscalls",
    );
    let shipped_calls = count_at(&vars, url, "SELECT count(*) AS n FROM syscalls");
    let ended = count_at(
        &vars,
        url,
        "SELECT count(*) AS n FROM capture WHERE ended IS NOT NULL",
    );
    assert!(
        shipped_calls < local_calls,
        "the stall came too late to test anything: {shipped_calls} of {local_calls}"
    );
    assert_eq!(
        ended, 0,
        "the bucket says the capture ended, with {shipped_calls} of {local_calls} calls"
    );
}

/// A bucket deleted and made again mid-run lost every file shipped before it, and
/// `record` exited 0 with the bucket lacking them (helper-91): each file shipped is looked
/// for once all are, and shipped again.
#[test]
fn files_lost_from_a_bucket_made_again_mid_run_are_shipped_again() {
    if !bpf_available("files_lost_from_a_bucket_made_again_mid_run_are_shipped_again") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    moto.objects("fleet", "inc-12");
    let endpoint = moto.endpoint();
    let vars = aws_vars(&endpoint);
    let url = "s3://fleet/inc-12";
    let local = tmp.path().join("web-12");
    let work = "for i in $(seq 12); do cat /nonexistent-$i 2>/dev/null; sleep 0.2; done";
    let flags = ["--upload", url, "--rotate", "200ms"];
    let recorder = uploading_command(&vars, &local, &flags, &["sh", "-c", work])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    moto.wait_for_calls("fleet", "inc-12");
    moto.delete_bucket("fleet", true);
    let out = recorder.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "are no longer there (the bucket was emptied or made again?); shipping them again"
        ),
        "{stderr}"
    );
    assert_eq!(moto.objects("fleet", "inc-12"), local_files(&local));
    // Each of the 12 `cat`s failed to open its file once, and the bucket has every one.
    let sql = "SELECT count(*) AS n FROM syscalls WHERE path LIKE '/nonexistent-%' \
               AND errno = 'ENOENT'";
    assert_eq!(count_at(&[], local.to_str().unwrap(), sql), 12);
    assert_eq!(count_at(&vars, url, sql), 12);

    // Under --max-size the files shipped and then deleted here cannot go again: they are
    // named, and the run fails.
    let url = "s3://fleet/inc-13";
    let local = tmp.path().join("web-13");
    let work = "for i in $(seq 30); do find /usr/share >/dev/null; sleep 0.1; done";
    let flags = ["--upload", url, "--rotate", "200ms", "--max-size", "200KiB"];
    let recorder = past_its_first_file(&vars, &local, &flags, work);
    moto.delete_bucket("fleet", true);
    let out = recorder.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            " file(s) shipped to {url} are no longer there, and --max-size had deleted them \
             here: syscalls/part-000001.parquet, "
        )),
        "{stderr}"
    );

    // A bucket deleted for good: what was still here is named as not uploaded, with what
    // --max-size had deleted (helper-94: its listing's NoSuchBucket was taken for no
    // answer, and those were named nowhere).
    moto.objects("gone", "inc-14");
    let url = "s3://gone/inc-14";
    let local = tmp.path().join("web-14");
    let flags = [
        "--upload",
        url,
        "--rotate",
        "200ms",
        "--max-size",
        "200KiB",
        "--upload-wait",
        "2s",
    ];
    let recorder = past_its_first_file(&vars, &local, &flags, work);
    moto.delete_bucket("gone", false);
    let out = recorder.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!(
            " file(s) were not uploaded to {url} and are kept in {}: ",
            local.display()
        )),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            " file(s) shipped there are no longer there, and --max-size had deleted them here: \
             syscalls/part-000001.parquet, "
        ),
        "{stderr}"
    );
}

/// `record FLAGS -- sh -c WORK` shipping `local`, started and waited on until `--max-size`
/// has deleted its first file of calls here.
fn past_its_first_file(
    vars: &[(&str, &str)],
    local: &Path,
    flags: &[&str],
    work: &str,
) -> std::process::Child {
    let recorder = uploading_command(vars, local, flags, &["sh", "-c", work])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let first = local.join("syscalls/part-000001.parquet");
    let waiting = Instant::now();
    // Until the directory is there and its first file of calls is gone.
    while !local.join("syscalls").exists() || first.exists() {
        assert!(
            waiting.elapsed() < Duration::from_secs(20),
            "--max-size deleted nothing"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    recorder
}

/// A proxy to `upstream` on `port` that, while `hang` exists, takes requests and never
/// answers them, as a store that lost a connection's packets does: a connection that saw
/// the hang stays silent after it, and new ones go through again.
fn hanging_proxy(port: u16, upstream: u16, hang: &Path) -> Server {
    let proxy = "import os, socket, sys, threading\n\
        port, up, hang = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]\n\
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
        s.bind(('127.0.0.1', port)); s.listen(64)\n\
        held = []\n\
        def pipe(a, b):\n    \
            try:\n        \
                while True:\n            \
                    d = a.recv(65536)\n            \
                    if not d: break\n            \
                    if os.path.exists(hang): held.append((a, b)); return\n            \
                    b.sendall(d)\n    \
            except OSError: pass\n    \
            for x in (a, b):\n        \
                try: x.shutdown(socket.SHUT_RDWR)\n        \
                except OSError: pass\n\
        while True:\n    \
            c, _ = s.accept(); u = socket.create_connection(('127.0.0.1', up))\n    \
            threading.Thread(target=pipe, args=(c, u), daemon=True).start()\n    \
            threading.Thread(target=pipe, args=(u, c), daemon=True).start()\n";
    serve(
        "python3",
        &[
            "-c",
            proxy,
            &port.to_string(),
            &upstream.to_string(),
            hang.to_str().unwrap(),
        ],
        port,
    )
}

/// A store that takes a request and never answers it, for 3 s, mid-capture: the one
/// upload thread waited for the HTTP client's 60 s, every file closed meanwhile waited
/// without a word, and a store that answered for the rest of the capture got none of
/// them (helper-91). A request is now given up after 10 s (and 4 s a MiB), said at once,
/// and retried; the whole capture is in the bucket when record ends.
#[test]
fn a_request_the_store_never_answers_holds_up_uploads_for_seconds_not_a_minute() {
    if !bpf_available("a_request_the_store_never_answers_holds_up_uploads_for_seconds_not_a_minute")
    {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let moto = Moto::start();
    moto.objects("fleet", "inc-12");
    let port = free_port();
    let hang = tmp.path().join("hang");
    let _proxy = hanging_proxy(port, moto.port, &hang);
    let endpoint = format!("http://127.0.0.1:{port}");
    let vars = aws_vars(&endpoint);
    let url = "s3://fleet/inc-12";
    let local = tmp.path().join("web-12");
    let work = "for i in $(seq 40); do cat /nonexistent-$i 2>/dev/null; sleep 0.25; done";
    let flags = ["--upload", url, "--rotate", "300ms", "--upload-wait", "8s"];
    let started = Instant::now();
    let recorder = uploading_command(&vars, &local, &flags, &["sh", "-c", work])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    while !moto
        .objects("fleet", "inc-12")
        .iter()
        .any(|o| o.starts_with("syscalls/"))
    {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "nothing shipped"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::fs::write(&hang, "").unwrap();
    std::thread::sleep(Duration::from_secs(3));
    std::fs::remove_file(&hang).unwrap();
    let out = recorder.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("no answer in 10s; files are kept and retried"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("uploads to {url} resumed")),
        "{stderr}"
    );
    let local_calls = count_at(
        &[],
        local.to_str().unwrap(),
        "SELECT count(*) AS n FROM syscalls",
    );
    let shipped_calls = count_at(&vars, url, "SELECT count(*) AS n FROM syscalls");
    assert_eq!(shipped_calls, local_calls);
    assert!(local_calls > 200, "{local_calls}");
}

/// A Ballista cluster for one test: `analyze scheduler` and two `analyze executor`s, as
/// separate processes on 127.0.0.1, each with the store's variables of its own.
struct Cluster {
    _nodes: Vec<Server>,
    scheduler: String,
}

impl Cluster {
    fn start(vars: &[(&str, &str)], work: &Path) -> Self {
        let port = free_port();
        let scheduler = format!("127.0.0.1:{port}");
        let node = |args: &[&str], port: u16| {
            let mut command = Command::new(bin("analyze"));
            without_store_vars(&mut command);
            command.args(args).envs(vars.iter().copied());
            serve_command(command, port)
        };
        let mut nodes = vec![node(&["scheduler", "--bind", &scheduler], port)];
        for i in 0..2 {
            let (flight, grpc) = (free_port(), free_port());
            let dir = work.join(format!("executor-{i}"));
            nodes.push(node(
                &[
                    "executor",
                    "--scheduler",
                    &scheduler,
                    "--port",
                    &flight.to_string(),
                    "--grpc-port",
                    &grpc.to_string(),
                    "--tasks",
                    "2",
                    "--work-dir",
                    dir.to_str().unwrap(),
                ],
                flight,
            ));
        }
        Self {
            _nodes: nodes,
            scheduler,
        }
    }
}

/// The names of the canned queries, as `analyze list` gives them.
fn canned_queries() -> Vec<String> {
    let canned = stdout(&analyze_with(&[], &["list"]));
    let names: Vec<String> = canned
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 9, "{canned}");
    names
}

/// Every line of `text` but the header, sorted: the cluster may hand rows of equal sort
/// keys over in another order.
fn rows_sorted(text: &str) -> Vec<String> {
    let mut rows: Vec<String> = text.lines().skip(1).map(str::to_string).collect();
    rows.sort();
    rows
}

#[test]
fn a_ballista_cluster_answers_every_canned_query_as_one_machine_does() {
    if !bpf_available("a_ballista_cluster_answers_every_canned_query_as_one_machine_does") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let local = tmp.path().join("web-1");
    real_capture(&local);
    let moto = Moto::start();
    moto.upload(&local, "captures", "inc-42/host=web-1");
    moto.upload(&local, "captures", "inc-42/host=web-2");
    let copy_of_local = |name: &str| {
        let copy = tmp.path().join(name);
        let copied = Command::new("cp").arg("-a").arg(&local).arg(&copy).status();
        assert!(copied.unwrap().success());
        copy
    };
    // A third capture that lacks a table, as one recorded before the table existed.
    let partial = copy_of_local("web-3");
    std::fs::remove_dir_all(partial.join("processes")).unwrap();
    moto.upload(&partial, "captures", "inc-42/host=web-3");
    // A fourth like it: over web-3 and web-4 no capture has `processes`.
    moto.upload(&partial, "captures", "inc-42/host=web-4");
    // A fifth whose `capture` file is damaged.
    let damaged = copy_of_local("web-5");
    for file in parquet_files(&damaged.join("capture")) {
        std::fs::write(&file, b"not parquet").unwrap();
    }
    moto.upload(&damaged, "captures", "inc-42/host=web-5");
    // A sixth whose footers are whole and whose `syscalls` pages are torn: it passes the
    // checks made before any SQL, and fails mid-query.
    let torn = copy_of_local("web-6");
    let torn_file = parquet_files(&torn.join("syscalls")).remove(0);
    tracepost_e2e::tear_pages(&torn_file);
    moto.upload(&torn, "captures", "inc-42/host=web-6");
    let web1 = "s3://captures/inc-42/host=web-1";
    let web2 = "s3://captures/inc-42/host=web-2";
    let web3 = "s3://captures/inc-42/host=web-3";
    let web4 = "s3://captures/inc-42/host=web-4";
    let endpoint = moto.endpoint();
    let vars = aws_vars(&endpoint);
    let cluster = Cluster::start(&vars, tmp.path());
    // Bounded: a Ballista job that never finishes (as diff's did) fails the test instead of
    // hanging it.
    let on_cluster = |args: &[&str]| {
        let mut command = Command::new("timeout");
        command.args(["--kill-after=5", "180"]).arg(bin("analyze"));
        without_store_vars(&mut command);
        command
            .args(args)
            .args(["--cluster", cluster.scheduler.as_str()])
            .envs(vars.iter().copied());
        let out = run_unpanicked(&mut command, "analyze");
        // 124: timed out; 137 or no code: killed after the grace period.
        assert!(
            !matches!(out.status.code(), Some(124 | 137) | None),
            "analyze {args:?} hung on the cluster: {out:?}"
        );
        out
    };
    // The executors register with the scheduler after they listen: the first query waits
    // for them (`--cluster-wait`, 30 s by default), and then runs.
    let first = on_cluster(&["query", web1, "SELECT count(*) FROM syscalls"]);
    assert!(first.status.success(), "{first:?}");

    let names = canned_queries();
    let same = |args: &[&str]| {
        let (here, there) = (analyze_with(&vars, args), on_cluster(args));
        for (out, place) in [(&here, "here"), (&there, "on the cluster")] {
            assert!(out.status.success(), "analyze {args:?} {place}: {out:?}");
        }
        let (here, there) = (stdout(&here), stdout(&there));
        assert_eq!(
            there.lines().next(),
            here.lines().next(),
            "header of analyze {args:?}"
        );
        let rows = rows_sorted(&here);
        assert_eq!(rows_sorted(&there), rows, "analyze {args:?}");
        rows.len()
    };
    // Two captures at once, each with its `capture` and `host` columns, through every
    // canned query and the summaries. A few canned queries have nothing to say of this
    // capture (no connects, no lost calls); most do.
    let answered = names
        .iter()
        .filter(|name| same(&["query", web1, web2, name.as_str(), "--format", "csv"]) > 0)
        .count();
    assert!(answered >= names.len() - 4, "{answered} of {}", names.len());
    same(&["summary", web1, "--format", "csv"]);
    // Three captures, one of them without a `processes` table.
    for name in ["processes", "latency-by-process"] {
        same(&["query", web1, web2, web3, name, "--format", "csv"]);
    }
    same(&["summary", web1, web2, "--by", "process", "--format", "csv"]);
    same(&["query", web1, "errors", "--since", "+0s", "--format", "csv"]);
    same(&[
        "query",
        web1,
        web2,
        "SELECT host, count(*) AS calls, sum(duration_ns) AS ns FROM syscalls GROUP BY host",
        "--format",
        "csv",
    ]);
    // A scalar subquery does not plan on a cluster (README); the window that says the same
    // runs there as here.
    let subquery = on_cluster(&[
        "query",
        web1,
        "SELECT syscall, sum(duration_ns) * 1.0 / (SELECT sum(duration_ns) FROM syscalls) \
         AS share FROM syscalls GROUP BY syscall",
    ]);
    assert!(
        one_error_line(&subquery).contains("scalar_subquery_to_join"),
        "{subquery:?}"
    );
    same(&[
        "query",
        web1,
        "SELECT syscall, sum(duration_ns) * 1.0 / sum(sum(duration_ns)) OVER () AS share \
         FROM syscalls GROUP BY syscall",
        "--format",
        "csv",
    ]);
    // A table with no file in any capture named (web-3 has no `processes`): it stands in as
    // an empty table that a cluster can run.
    let counted = stdout(&on_cluster(&[
        "query",
        web3,
        "SELECT count(*) AS n FROM processes",
        "--format",
        "csv",
    ]));
    assert_eq!(counted, "n\n0\n");
    // diff: one capture against another, against one without processes, and two without
    // processes, where the empty table sits in a union under diff's aggregates (as an
    // EmptyTable that job never finished, and every later job on the scheduler hung). Each
    // name then comes from the threads alone.
    let base_calls = |text: &str, name: &str| -> i64 {
        let line = text
            .lines()
            .find(|l| l.starts_with(&format!("syscall,{name},")))
            .unwrap_or_else(|| panic!("no {name} row in\n{text}"));
        line.split(',').nth(2).unwrap().parse().unwrap()
    };
    for pair in [[web1, web2], [web1, web3], [web3, web4]] {
        let args = [
            "diff", pair[0], pair[1], "--limit", "1000", "--format", "csv",
        ];
        assert!(same(&args) > 10, "analyze {args:?}");
    }
    let diffed = stdout(&on_cluster(&[
        "diff", web1, web2, "--limit", "1000", "--format", "csv",
    ]));
    // The baseline's reads, as `summary` counts them (the counted calls included).
    let summary = stdout(&analyze_with(&vars, &["summary", web1, "--format", "csv"]));
    let reads = summary
        .lines()
        .find_map(|l| l.strip_prefix("read,"))
        .and_then(|rest| rest.split(',').next())
        .expect("the capture has reads");
    assert_eq!(
        base_calls(&diffed, "read"),
        reads.parse::<i64>().unwrap(),
        "{diffed}"
    );
    // A capture whose `capture` table --skip-bad-files left out: refused there (README).
    let refused = on_cluster(&[
        "query",
        "s3://captures/inc-42/host=web-5",
        "SELECT count(*) FROM syscalls",
        "--skip-bad-files",
    ]);
    // The skipped file is named first, as everywhere.
    let stderr = String::from_utf8_lossy(&refused.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert!(!refused.status.success(), "{refused:?}");
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(lines[0].starts_with("warning: skipped s3://captures/inc-42/host=web-5/capture/"));
    assert!(
        lines[1].starts_with(
            "error: capture s3://captures/inc-42/host=web-5: its capture table was skipped"
        ),
        "{stderr}"
    );
    // The report runs its queries on the cluster too.
    let report = tmp.path().join("cluster.md");
    let local_report = tmp.path().join("one-machine.md");
    stdout(&on_cluster(&[
        "report",
        web1,
        "-o",
        report.to_str().unwrap(),
    ]));
    stdout(&analyze_with(
        &vars,
        &["report", web1, "-o", local_report.to_str().unwrap()],
    ));
    let text = std::fs::read_to_string(&report).unwrap();
    assert!(text.contains(web1), "{text}");
    assert_eq!(text, std::fs::read_to_string(&local_report).unwrap());
    // The timeline export: the same slices, whoever computed them.
    let slices = |out: Output| {
        assert!(out.status.success(), "{out:?}");
        let err = String::from_utf8(out.stderr).unwrap();
        let line = err
            .lines()
            .find(|l| l.starts_with("export: "))
            .unwrap_or_default();
        line.to_string()
    };
    let trace = tmp.path().join("trace.json");
    let trace = trace.to_str().unwrap();
    let here = slices(analyze_with(&vars, &["export", web1, "--perfetto", trace]));
    let there = slices(on_cluster(&["export", web1, "--perfetto", trace]));
    assert!(here.contains(" calls as slices"), "{here}");
    assert_eq!(here, there);

    // A scheduler that is not there: one line naming it, in bounded time.
    let dead = format!("127.0.0.1:{}", free_port());
    let started = Instant::now();
    let out = analyze_with(&vars, &["summary", web1, "--cluster", &dead]);
    let line = one_error_line(&out);
    assert!(
        line.contains(&format!("--cluster {dead}: cannot reach the scheduler")),
        "{line}"
    );
    assert!(started.elapsed() < Duration::from_secs(60), "{line}");
    // A scheduler with no executor would queue the job for ever: refused once
    // --cluster-wait has passed, with a line that says what to start.
    let port = free_port();
    let lonely = format!("127.0.0.1:{port}");
    let mut command = Command::new(bin("analyze"));
    command.args(["scheduler", "--bind", &lonely]);
    let _lonely = serve_command(command, port);
    // With a proxy set for other traffic, as on many hosts: the scheduler is still asked
    // directly (a local capture, so the store is not asked through the proxy).
    let proxied = [
        ("http_proxy", "http://127.0.0.1:1"),
        ("HTTP_PROXY", "http://127.0.0.1:1"),
    ];
    let started = Instant::now();
    let out = analyze_with(
        &proxied,
        &[
            "summary",
            local.to_str().unwrap(),
            "--cluster",
            &lonely,
            "--cluster-wait",
            "2s",
        ],
    );
    let waited = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 2, "{err}");
    assert!(
        lines[0].contains("has no executor yet; waiting up to 2s"),
        "{err}"
    );
    assert!(
        lines[1].starts_with(&format!(
            "error: --cluster {lonely}: no executor registered with the scheduler within 2s"
        )) && lines[1].contains(&format!("analyze executor --scheduler {lonely}")),
        "{err}"
    );
    assert!(
        waited >= Duration::from_secs(2) && waited < Duration::from_secs(20),
        "{waited:?}"
    );
    // Something else listens there (the S3 server): named, not waited on.
    let moto_addr = endpoint.trim_start_matches("http://").to_string();
    let out = analyze_with(&vars, &["summary", web1, "--cluster", &moto_addr]);
    let line = one_error_line(&out);
    assert!(
        line.contains(&format!("--cluster {moto_addr}: "))
            && line.contains("is it a Ballista 55 scheduler"),
        "{line}"
    );
    // --cluster-wait means nothing alone.
    let out = analyze_with(&vars, &["summary", web1, "--cluster-wait", "2s"]);
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    // An executor refuses a work directory that others can enter, and a wildcard address
    // (it is also where others fetch its results).
    let open_dir = tmp.path().join("open");
    std::fs::create_dir(&open_dir).unwrap();
    std::fs::set_permissions(
        &open_dir,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let executor = |extra: &[&str]| {
        let port = free_port().to_string();
        let grpc = free_port().to_string();
        let mut args = vec![
            "executor",
            "--scheduler",
            cluster.scheduler.as_str(),
            "--port",
            &port,
            "--grpc-port",
            &grpc,
        ];
        args.extend(extra);
        one_error_line(&analyze_with(&vars, &args))
    };
    let line = executor(&["--work-dir", open_dir.to_str().unwrap()]);
    assert!(line.contains("closed to others"), "{line}");
    let line = executor(&["--bind", "0.0.0.0"]);
    assert!(line.contains("--bind 0.0.0.0: "), "{line}");
    let out = analyze_with(&vars, &["summary", web1, "--cluster", "no port"]);
    let line = one_error_line(&out);
    assert!(
        line.contains("--cluster no port: not a HOST:PORT"),
        "{line}"
    );

    // Torn pages are named by the object's URL, read here or by the cluster's executors,
    // whose job's failure once named no file.
    let web6 = "s3://captures/inc-42/host=web-6";
    let torn_url = format!(
        "{web6}/syscalls/{}",
        torn_file.file_name().unwrap().to_str().unwrap()
    );
    for (out, place) in [
        (analyze_with(&vars, &["summary", web6]), "here"),
        (on_cluster(&["summary", web6]), "on the cluster"),
        (
            on_cluster(&["summary", torn.to_str().unwrap()]),
            "a local path, on the cluster",
        ),
    ] {
        let line = one_error_line(&out);
        let named = match place {
            "a local path, on the cluster" => torn_file.display().to_string(),
            _ => torn_url.clone(),
        };
        assert!(
            line.starts_with(&format!("error: {named}: its data is damaged (")),
            "{place}: {line}"
        );
    }
}

/// A cluster node's stderr: Ballista's own log, warnings by default and more under
/// `RUST_LOG` (README).
#[test]
fn a_cluster_node_logs_what_rust_log_asks_for() {
    let tmp = tempfile::tempdir().unwrap();
    // The stderr of a scheduler, or of an executor of the scheduler at `scheduler`.
    let log_of = |rust_log: Option<&str>, scheduler: Option<u16>| {
        let port = free_port();
        let log = tmp.path().join(format!("node-{port}.log"));
        let mut command = Command::new(bin("analyze"));
        match scheduler {
            None => command.args(["scheduler", "--bind", &format!("127.0.0.1:{port}")]),
            Some(at) => command.args([
                "executor",
                "--scheduler",
                &format!("127.0.0.1:{at}"),
                "--port",
                &port.to_string(),
                "--grpc-port",
                &free_port().to_string(),
            ]),
        };
        command
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        if let Some(filter) = rust_log {
            command.env("RUST_LOG", filter);
        }
        let node = Server(command.spawn().unwrap());
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "the node did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        // What it logs as it starts serving (and an executor as it registers) comes just
        // after it listens.
        std::thread::sleep(Duration::from_millis(1000));
        drop(node);
        std::fs::read_to_string(&log).unwrap()
    };
    let quiet = log_of(None, None);
    assert!(quiet.contains("scheduler: listening on"), "{quiet}");
    assert!(!quiet.contains(" INFO "), "{quiet}");
    let told = log_of(Some("info"), None);
    assert!(
        told.lines()
            .any(|l| l.contains(" INFO ") && l.contains("ballista")),
        "{told}"
    );
    // An executor too, registering with a scheduler.
    let port = free_port();
    let mut command = Command::new(bin("analyze"));
    command.args(["scheduler", "--bind", &format!("127.0.0.1:{port}")]);
    let scheduler = serve_command(command, port);
    let told = log_of(Some("info"), Some(port));
    drop(scheduler);
    assert!(
        told.lines()
            .any(|l| l.contains(" INFO ") && l.contains("ballista_executor")),
        "{told}"
    );
}
