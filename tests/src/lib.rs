//! Helpers for the end-to-end tests: finding the built binaries, deciding whether BPF tests
//! can run, and running `record` and `analyze`.
//!
//! The binaries come from `TRACEPOST_BIN_DIR` (set by `dev/test`), else `target/release`.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
};

use serde_json::Value;

pub fn bin(name: &str) -> PathBuf {
    let dir = std::env::var_os("TRACEPOST_BIN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release"));
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not found: build first (dev/test does), or set TRACEPOST_BIN_DIR",
        path.display()
    );
    path
}

/// Whether this process may load BPF. A BPF test that cannot run fails, so that no test
/// passes without having run; `TRACEPOST_SKIP_BPF_TESTS=1` is the explicit way to skip
/// them (on a laptop without root, say), and it is refused under `CI=true`.
pub fn bpf_available(test: &str) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let ok = cap_eff & (1 << 21) != 0 || (cap_eff & (1 << 39) != 0 && cap_eff & (1 << 38) != 0);
    if ok {
        return true;
    }
    let skip = std::env::var("TRACEPOST_SKIP_BPF_TESTS").as_deref() == Ok("1");
    let ci = std::env::var("CI").as_deref() == Ok("true");
    if !skip || ci {
        panic!(
            "{test}: BPF cannot be loaded here (need root or CAP_BPF+CAP_PERFMON); \
             set TRACEPOST_SKIP_BPF_TESTS=1 to skip the BPF tests on purpose (not under CI=true)"
        );
    }
    eprintln!("SKIPPED {test}: TRACEPOST_SKIP_BPF_TESTS=1 and no BPF privilege");
    false
}

/// The `.parquet` files directly in `dir`, sorted by name (which is their order).
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "parquet"))
        .collect();
    files.sort();
    files
}

/// Tears the pages of a Parquet file and leaves its footer whole: every 31st byte of its
/// first half flipped, past the magic. It passes the checks made before any SQL, and a
/// query fails on it mid-way.
pub fn tear_pages(file: &Path) {
    let mut bytes = std::fs::read(file).unwrap();
    let half = bytes.len() / 2;
    for b in bytes[100..half].iter_mut().step_by(31) {
        *b ^= 0xff;
    }
    std::fs::write(file, bytes).unwrap();
}

/// Compiles tests/programs/NAME.c into `dir`.
pub fn build_program(dir: &Path, name: &str) -> PathBuf {
    compile(dir, name, "-O1")
}

/// Compiles tests/programs/NAME.c into `dir` as distributions build programs: `-O2`, no
/// frame pointers asked for, linked against the system's libc.
pub fn build_program_o2(dir: &Path, name: &str) -> PathBuf {
    compile(dir, name, "-O2")
}

/// Compiles tests/programs/NAME.c into `dir` as a 32-bit (ia32) program, `NAME32`.
pub fn build_program_m32(dir: &Path, name: &str) -> PathBuf {
    let exe = dir.join(format!("{name}32"));
    compile_to(
        &exe,
        name,
        &["-m32", "-O1"],
        "cc -m32 failed: is gcc-multilib installed?",
    );
    exe
}

fn compile(dir: &Path, name: &str, optimize: &str) -> PathBuf {
    let exe = dir.join(name);
    compile_to(&exe, name, &[optimize], "cc failed");
    exe
}

fn compile_to(exe: &Path, name: &str, flags: &[&str], failed: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("programs/{name}.c"));
    let status = Command::new("cc")
        .args(flags)
        .args(["-pthread", "-o"])
        .arg(exe)
        .arg(&src)
        .status()
        .expect("run cc");
    assert!(status.success(), "{failed}");
}

/// Runs `record -q -o DIR -- command...` and returns its output.
pub fn record(dir: &Path, command: &[&str]) -> Output {
    record_with(dir, &["-q"], command)
}

/// Runs `record FLAGS... -o DIR -- command...` and returns its output.
pub fn record_with(dir: &Path, flags: &[&str], command: &[&str]) -> Output {
    run_unpanicked(&mut record_command(dir, flags, command), "record")
}

/// `record FLAGS... -o DIR -- command...`, not yet started: for tests that act on the
/// recorder while it runs (signal it, start a second one beside it).
pub fn record_command(dir: &Path, flags: &[&str], command: &[&str]) -> Command {
    let mut record = Command::new(bin("record"));
    record
        .args(flags)
        .arg("-o")
        .arg(dir)
        .arg("--")
        .args(command)
        .stdin(Stdio::null());
    record
}

/// Runs one of our binaries to its end, failing the test if it panicked: a panic is a
/// defect whatever the test was about.
pub fn run_unpanicked(command: &mut Command, name: &str) -> Output {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {name}: {e}"));
    assert!(
        !String::from_utf8_lossy(&out.stderr).contains("panicked"),
        "{name} panicked: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// The `L` of `record`'s summary line,
/// `record: R syscalls in F file(s), SIZE (B bytes/syscall), L lost: DIR`.
pub fn summary_lost(stderr: &str) -> i64 {
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("record: "))
        .expect("summary line");
    summary
        .split(" lost: ")
        .next()
        .and_then(|head| head.split_whitespace().last())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no lost count in {summary:?}"))
}

/// Runs `analyze query` with JSON output and returns the rows.
pub fn query(captures: &[&Path], sql: &str) -> Vec<BTreeMap<String, Value>> {
    let out = analyze_query(captures, sql, "json");
    assert!(
        out.status.success(),
        "analyze failed on {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("analyze prints a JSON array")
}

pub fn analyze_query(captures: &[&Path], sql: &str, format: &str) -> Output {
    Command::new(bin("analyze"))
        .arg("query")
        .args(captures)
        .arg(sql)
        .arg("--format")
        .arg(format)
        .output()
        .expect("run analyze")
}

/// One integer from a single-row, single-column query.
pub fn scalar(capture: &Path, sql: &str) -> i64 {
    let rows = query(&[capture], sql);
    assert_eq!(rows.len(), 1, "{sql} returned {rows:?}");
    let value = rows[0].values().next().expect("one column");
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{sql} returned {value}"))
}

/// `syscall -> (calls, errors)` for a whole capture.
pub fn calls_and_errors(capture: &Path, filter: &str) -> BTreeMap<String, (i64, i64)> {
    let sql = format!(
        "SELECT syscall, count(*) AS calls, count(errno) AS errors FROM syscalls {filter} GROUP BY syscall"
    );
    query(&[capture], &sql)
        .into_iter()
        .map(|row| {
            (
                row["syscall"].as_str().unwrap().to_string(),
                (
                    row["calls"].as_i64().unwrap(),
                    row["errors"].as_i64().unwrap(),
                ),
            )
        })
        .collect()
}

/// Parses `strace -c` output, `% time seconds usecs/call calls [errors] syscall`, into
/// syscall -> (calls, errors).
pub fn parse_strace_summary(text: &str) -> BTreeMap<String, (i64, i64)> {
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() < 5 || !f[0].chars().next().is_some_and(|c| c.is_ascii_digit()) {
            continue;
        }
        let (calls, errors, name) = match f.len() {
            6 => (f[3].parse().unwrap(), f[4].parse().unwrap(), f[5]),
            _ => (f[3].parse().unwrap(), 0, f[4]),
        };
        if name != "total" {
            out.insert(name.to_string(), (calls, errors));
        }
    }
    out
}

/// Runs `command` under `strace -f -c` and returns its counts: the oracle no one here
/// wrote.
pub fn strace_counts(dir: &Path, command: &[&str]) -> BTreeMap<String, (i64, i64)> {
    strace_counts_with(dir, &[], command)
}

/// [`strace_counts`] with more of strace's flags (`-e trace=%file`).
pub fn strace_counts_with(
    dir: &Path,
    flags: &[&str],
    command: &[&str],
) -> BTreeMap<String, (i64, i64)> {
    let summary = dir.join("strace.txt");
    let status = Command::new("strace")
        .args(["-f", "-c"])
        .args(flags)
        .arg("-o")
        .arg(&summary)
        .args(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .output()
        .expect("strace is installed (dev/setup --test)")
        .status;
    assert!(status.success(), "strace {command:?} failed");
    parse_strace_summary(&std::fs::read_to_string(summary).unwrap())
}

/// Runs `analyze ARGS...` and returns its output.
pub fn analyze(args: &[&str]) -> Output {
    run_unpanicked(Command::new(bin("analyze")).args(args), "analyze")
}

/// [`analyze`] in the working directory `dir`, where a relative `-o` lands.
pub fn analyze_in(dir: &Path, args: &[&str]) -> Output {
    run_unpanicked(
        Command::new(bin("analyze")).args(args).current_dir(dir),
        "analyze",
    )
}

/// Runs `analyze ARGS... --format json`, checks that it succeeded, and returns the rows.
pub fn analyze_json(args: &[&str]) -> Vec<BTreeMap<String, Value>> {
    let mut all = args.to_vec();
    all.extend(["--format", "json"]);
    let out = analyze(&all);
    assert!(
        out.status.success(),
        "analyze {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("analyze prints a JSON array")
}

/// The single `error: ...` line of a command that failed with status 1, after checking
/// there is exactly one line and no panic.
pub fn one_error_line(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(!text.contains("panicked"), "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "expected one line, got: {text}");
    assert!(lines[0].starts_with("error: "), "{text}");
    lines[0].to_string()
}

/// Reads every table of `capture` with `reader` (duckdb, pandas, polars or spark), readers
/// no one here wrote, through `readers/read_capture.py`, and returns what it printed.
pub fn read_with(reader: &str, capture: &Path) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("readers/read_capture.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(reader)
        .arg(capture)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{reader} could not read the capture (dev/setup --test installs it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    // Spark may print its own lines first; the answer is the last line.
    serde_json::from_str(stdout.lines().last().unwrap_or_default())
        .unwrap_or_else(|e| panic!("{reader}: {e}: {stdout}"))
}

/// `tests/programs/hang_fs.py` mounted at `mnt`, serving `file` as `mnt/prog`; it stops
/// answering once `flag` exists, and with `slow_flush` it takes that long to answer each
/// FLUSH (every close of its file). Dropped, the server goes (failing what it left
/// pending) and the mount with it. `None` where the machine has no /dev/fuse, which CI's
/// machines have: there that is a failure.
pub struct HangFs {
    mnt: PathBuf,
    server: std::process::Child,
}

impl HangFs {
    pub fn mount(
        mnt: &Path,
        file: &Path,
        flag: &Path,
        slow_flush: Option<std::time::Duration>,
    ) -> Option<Self> {
        let env: Vec<(&str, String)> = slow_flush
            .map(|slow| ("HANG_FS_SLOW_FLUSH", slow.as_secs_f64().to_string()))
            .into_iter()
            .collect();
        Self::mount_with(mnt, file, flag, &env)
    }

    /// The same, where a stat of its file waits too once `flag` exists
    /// (`HANG_FS_GETATTR`).
    pub fn mount_hanging_stat(mnt: &Path, file: &Path, flag: &Path) -> Option<Self> {
        Self::mount_with(mnt, file, flag, &[("HANG_FS_GETATTR", "1".to_string())])
    }

    fn mount_with(mnt: &Path, file: &Path, flag: &Path, env: &[(&str, String)]) -> Option<Self> {
        if !Path::new("/dev/fuse").exists() {
            assert!(std::env::var("CI").is_err(), "no /dev/fuse");
            eprintln!("skipped: no /dev/fuse");
            return None;
        }
        std::fs::create_dir_all(mnt).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/hang_fs.py");
        // Its output goes to a file: a pipe left unread would end it at its first message
        // (EPIPE), and with it the hang.
        let log = mnt.with_extension("log");
        let mut command = Command::new("python3");
        command
            .arg(&script)
            .args([mnt, file, flag])
            .stdout(std::fs::File::create(&log).unwrap());
        command.envs(env.iter().map(|(k, v)| (k, v)));
        let server = command.spawn().unwrap();
        let mounted = Self {
            mnt: mnt.to_path_buf(),
            server,
        };
        let began = std::time::Instant::now();
        while !std::fs::read_to_string(&log).unwrap().contains("mounted") {
            assert!(began.elapsed().as_secs() < 10, "hang_fs.py did not mount");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        Some(mounted)
    }
}

impl Drop for HangFs {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
        let _ = Command::new("umount").arg("-l").arg(&self.mnt).status();
    }
}
