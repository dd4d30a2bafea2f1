//! `writer-scaling [EVENTS] [ROUNDS]`: does the recorder's user-space path scale with the
//! number of writer threads when each is fed by its own producer (issue 12)?
//!
//! Each writer is the recorder's own [`Pipeline`]: the writer thread that reorders calls,
//! follows fds and processes, builds columns and writes zstd Parquet files, behind the
//! same bounded chunk queue. Each producer stands in for the capture loop of one ring: it
//! hands over chunks of [`CHUNK`] records, as `drain` does, of calls already decoded. The
//! calls are generated before the clock starts (the web-like [`Mix`], eight processes per
//! producer, disjoint pids), so what is timed is the path from chunk to file.
//!
//! For N = 1 and 2, alternating, ROUNDS times: N producers and N writers run at once, each
//! writer into its own capture directory, EVENTS calls each. It prints each run's rate and
//! the median, then the scaling: the N-writer rate over N times the one-writer rate.
use std::{
    path::Path,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context as _, Result, bail};
use tracepost_bench::mix::Mix;
use tracepost_recorder::{
    files::batch::BatchBuilder,
    files::capture_dir::CaptureDir,
    files::pipeline::{Message, Pipeline, Record, Writers},
    files::progress::Counters,
    files::small_table::SmallTableWriter,
    files::writer::{Rotation, TableWriter},
    follow::processes::ProcessTable,
    kernel::clock::{WallClock, monotonic_ns},
};
use tracepost_schema::{aggregates, processes, syscalls};

/// Records per chunk: the capture loop's own.
const CHUNK: usize = 4 * 1024;
const WRITERS: [usize; 2] = [1, 2];

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let events: usize = parse(args.next(), 3_000_000, "EVENTS")?;
    let rounds: usize = parse(args.next(), 3, "ROUNDS")?;
    let work = tempdir()?;
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); WRITERS.len()];
    println!("writers  events/s    cpu-s per 1M events   (EVENTS={events} per writer)");
    for round in 0..rounds {
        for (i, &n) in WRITERS.iter().enumerate() {
            let dir = work.join(format!("r{round}-n{n}"));
            let (rate, cpu) = run(&dir, n, events)?;
            println!("{n:>7}  {rate:>10.0}  {cpu:>8.3}");
            rates[i].push(rate);
            std::fs::remove_dir_all(&dir).ok();
        }
    }
    let one = median(&rates[0]);
    println!("median events/s: 1 writer {one:.0}");
    for (i, &n) in WRITERS.iter().enumerate().skip(1) {
        let m = median(&rates[i]);
        println!(
            "median events/s: {n} writers {m:.0}; scaling {:.2} of {n}x one writer's rate",
            m / (one * n as f64)
        );
    }
    std::fs::remove_dir_all(&work).ok();
    Ok(())
}

/// Runs `n` producer/writer pairs of `events` calls each; returns events/s over all of
/// them, and the process's CPU-s per 1M events during the run.
fn run(dir: &Path, n: usize, events: usize) -> Result<(f64, f64)> {
    std::fs::create_dir(dir)?;
    let start_ns = monotonic_ns();
    let chunks: Vec<Vec<Vec<Record>>> = (0..n)
        .map(|k| {
            let mut mix = Mix::new(
                0x9E37_79B9_7F4A_7C15 + k as u64,
                start_ns,
                1000 + 100 * k as u32,
            );
            (0..events.div_ceil(CHUNK))
                .map(|c| {
                    let len = CHUNK.min(events - c * CHUNK);
                    (0..len).map(|_| Record::Call(mix.call())).collect()
                })
                .collect()
        })
        .collect();
    let pipelines = (0..n)
        .map(|k| start(&dir.join(format!("writer-{k}"))))
        .collect::<Result<Vec<_>>>()?;
    let cpu_before = cpu_seconds()?;
    let started = Instant::now();
    // Each producer owns its writer's end of the queue, as the capture loop does.
    let producers: Vec<_> = pipelines
        .into_iter()
        .zip(chunks)
        .map(|(p, chunks)| {
            thread::spawn(move || {
                let fed = chunks
                    .into_iter()
                    .all(|chunk| p.send(Message::Records(chunk)).is_ok());
                (p, fed)
            })
        })
        .collect();
    let mut rows = 0;
    for producer in producers {
        let (p, fed) = producer.join().expect("a producer does not panic");
        let written = p.finish().context("a writer failed")?;
        if !fed {
            bail!("a writer stopped early");
        }
        rows += written.rows;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu_before;
    if rows != (n * events) as u64 {
        bail!("{rows} rows written of {} calls", n * events);
    }
    Ok((rows as f64 / wall, cpu / (rows as f64 / 1e6)))
}

/// One writer, as `record` starts it, into its own capture directory.
fn start(dir: &Path) -> Result<Pipeline> {
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
fn cpu_seconds() -> Result<f64> {
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
fn tempdir() -> Result<std::path::PathBuf> {
    use std::os::unix::fs::DirBuilderExt as _;
    let dir = std::env::temp_dir().join(format!("writer-scaling.{}", std::process::id()));
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

fn parse(arg: Option<String>, default: usize, name: &str) -> Result<usize> {
    match arg {
        None => Ok(default),
        Some(a) => a
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("{name} must be a positive number, not `{a}`")),
    }
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
