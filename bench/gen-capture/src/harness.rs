//! What the benchmark binaries share: how they exit on an error, a writer as `record`
//! starts it, the process's CPU time, a private work directory, and medians.
use std::{path::Path, time::Duration};

use anyhow::{Context as _, Result, bail};
use tracepost_recorder::{
    files::batch::BatchBuilder,
    files::capture_dir::CaptureDir,
    files::pipeline::{Pipeline, Writers},
    files::progress::Counters,
    files::small_table::SmallTableWriter,
    files::writer::{Rotation, TableWriter},
    follow::processes::ProcessTable,
    kernel::clock::WallClock,
};
use tracepost_schema::{aggregates, processes, syscalls};

/// Runs a binary's body; an error is one line, `error: ...` with its causes, and exit
/// status 1, as `record` and `analyze` report theirs (not a debug dump and backtrace).
pub fn main_of(body: impl FnOnce() -> Result<()>) -> std::process::ExitCode {
    match body() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Records per chunk: the capture loop's own.
pub const CHUNK: usize = 4 * 1024;

/// One writer, as `record` starts it, into its own capture directory.
pub fn start(dir: &Path) -> Result<Pipeline> {
    let dir = CaptureDir::create(dir)?;
    let clock = WallClock::sample();
    let rotate = Duration::from_secs(10);
    let small = |table, schema| SmallTableWriter::new(&dir.table_dir(table), table, schema, rotate);
    Ok(Pipeline::start(Writers {
        syscalls: TableWriter::new(
            &dir.table_dir(syscalls::TABLE),
            BatchBuilder::new(clock),
            Rotation {
                max_age: rotate,
                max_rows: 16 * 1024 * 1024,
                max_total_bytes: None,
            },
            Counters::new(),
        )?,
        aggregates: small(aggregates::TABLE, aggregates::schema())?,
        processes: small(processes::TABLE, processes::schema())?,
        builder: BatchBuilder::new(clock),
        processes_table: ProcessTable::new(clock),
    })?)
}

/// User and system CPU time of this process, all threads.
pub fn cpu_seconds() -> Result<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()) } != 0 {
        bail!("getrusage: {}", std::io::Error::last_os_error());
    }
    // SAFETY: filled by the successful call above.
    let u = unsafe { usage.assume_init() };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Ok(secs(u.ru_utime) + secs(u.ru_stime))
}

/// A new private directory: creating it fails rather than follow anything planted there.
pub fn tempdir(name: &str) -> Result<std::path::PathBuf> {
    use std::os::unix::fs::DirBuilderExt as _;
    let dir = std::env::temp_dir().join(format!("{name}.{}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

pub fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
