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
use std::{path::Path, thread, time::Instant};

use anyhow::{Context as _, Result, bail};
use tracepost_bench::{
    harness::{CHUNK, cpu_seconds, median, start, tempdir},
    mix::Mix,
};
use tracepost_recorder::{
    files::pipeline::{Chunk, Message},
    kernel::clock::monotonic_ns,
};
const WRITERS: [usize; 2] = [1, 2];

fn main() -> std::process::ExitCode {
    tracepost_bench::harness::main_of(run_main)
}

fn run_main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let events: usize = parse(args.next(), 3_000_000, "EVENTS")?;
    let rounds: usize = parse(args.next(), 3, "ROUNDS")?;
    let work = tempdir("writer-scaling")?;
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
    let chunks: Vec<Vec<Chunk>> = (0..n)
        .map(|k| {
            let mut mix = Mix::new(
                0x9E37_79B9_7F4A_7C15 + k as u64,
                start_ns,
                1000 + 100 * k as u32,
            );
            (0..events.div_ceil(CHUNK))
                .map(|c| {
                    let len = CHUNK.min(events - c * CHUNK);
                    Chunk {
                        calls: (0..len).map(|_| mix.call()).collect(),
                        processes: Vec::new(),
                    }
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
