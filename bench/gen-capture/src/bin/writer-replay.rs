//! `writer-replay CAPTURE [ROUNDS] [RECORD...]`: the recorder's writer fed a real
//! capture's calls again, so that changes to the writer can be compared on what a server
//! really issues (issue 12). `writer-scaling`'s synthetic mix has no pointers in its
//! arguments and few distinct values, and a live server adds the noise of its load tool.
//!
//! The calls of CAPTURE's `syscalls` table (for example one recorded from nginx under
//! wrk) are rebuilt as the capture thread hands them on, in the order they returned, in
//! chunks of the capture loop's size, and written through the recorder's own
//! [`Pipeline`] (reorder, fd and process tracking, pages, zstd) into a new capture
//! directory. Only the writer is timed: the process's CPU time from the first chunk sent
//! to the last file closed, per 1M calls. The calls' fds are followed from the calls
//! replayed, so `fd_path` is filled for what they opened themselves.
//!
//! ROUNDS runs (default 5); prints each run's CPU-s per 1M calls and the median. With
//! `WRITER_REPLAY_KEEP=DIR`, the last run's capture is kept as DIR (which must not exist),
//! so that two builds' files can be compared.
use std::{path::Path, time::Instant};

use anyhow::{Context as _, Result, bail};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
    StringViewArray, UInt64Array,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use tracepost_bench::harness::{CHUNK, cpu_seconds, median, start, tempdir};
use tracepost_common::{FLAG_NO_RETURN, SyscallEvent};
use tracepost_recorder::{
    files::pipeline::{Chunk, Message},
    kernel::{call::Call, decode::Extra, intern::Interner},
};
use tracepost_schema::syscalls as col;

fn main() -> std::process::ExitCode {
    tracepost_bench::harness::main_of(run_main)
}

fn run_main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let capture = args
        .next()
        .context("usage: writer-replay CAPTURE [ROUNDS]")?;
    let rounds: usize = match args.next() {
        None => 5,
        Some(r) => r
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .with_context(|| format!("ROUNDS must be a positive number, not `{r}`"))?,
    };
    let calls = read_calls(Path::new(&capture))?;
    if calls.is_empty() {
        bail!("{capture}: no calls in its syscalls table");
    }
    let work = tempdir("writer-replay")?;
    let mut runs = Vec::new();
    println!("{} calls from {capture}", calls.len());
    for round in 0..rounds {
        let dir = work.join(format!("r{round}"));
        let (cpu, wall) = run(&dir, &calls)?;
        let per_m = cpu / (calls.len() as f64 / 1e6);
        let bytes = table_bytes(&dir.join(col::TABLE))?;
        println!(
            "run {round}: {per_m:.3} CPU-s per 1M calls ({wall:.2} s wall), {:.2} bytes/call",
            bytes as f64 / calls.len() as f64
        );
        runs.push(per_m);
        match std::env::var_os("WRITER_REPLAY_KEEP") {
            Some(keep) if round + 1 == rounds => {
                std::fs::rename(&dir, &keep).with_context(|| {
                    format!(
                        "cannot keep the capture as {} (it stays in {})",
                        keep.display(),
                        dir.display()
                    )
                })?
            }
            _ => std::fs::remove_dir_all(&dir).ok().unwrap_or_default(),
        }
    }
    println!("median: {:.3} CPU-s per 1M calls", median(&runs));
    std::fs::remove_dir_all(&work).ok();
    Ok(())
}

/// Writes `calls` through a new writer; returns the CPU-s and wall seconds it took.
fn run(dir: &Path, calls: &[Call]) -> Result<(f64, f64)> {
    std::fs::create_dir(dir)?;
    // Built before the clock starts: the capture thread's work is not what is timed.
    let chunks: Vec<Chunk> = calls
        .chunks(CHUNK)
        .map(|c| Chunk {
            calls: c.to_vec(),
            processes: Vec::new(),
        })
        .collect();
    let pipeline = start(dir)?;
    let cpu_before = cpu_seconds()?;
    let started = Instant::now();
    for chunk in chunks {
        if pipeline.send(Message::Records(chunk)).is_err() {
            break;
        }
    }
    let written = pipeline.finish().context("the writer failed")?;
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds()? - cpu_before;
    if written.rows != calls.len() as u64 {
        bail!("{} rows written of {} calls", written.rows, calls.len());
    }
    Ok((cpu, wall))
}

/// Bytes of the files in a table's directory.
fn table_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        total += entry?.metadata()?.len();
    }
    Ok(total)
}

/// Every row of the capture's `syscalls` files, as the kernel sent it: in return order.
fn read_calls(capture: &Path) -> Result<Vec<Call>> {
    let dir = capture.join(col::TABLE);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "parquet"))
        .collect();
    files.sort();
    let mut calls = Vec::new();
    // As the capture thread does: calls that name a whole path share its context.
    let mut paths = Interner::default();
    for file in files {
        let f = std::fs::File::open(&file)?;
        let reader = ParquetRecordBatchReaderBuilder::try_new(f)
            .with_context(|| format!("{}: not a Parquet file", file.display()))?
            .build()?;
        for batch in reader {
            let batch = batch?;
            push_rows(&batch, &mut paths, &mut calls)
                .with_context(|| format!("{}: not a tracepost syscalls file", file.display()))?;
        }
    }
    calls.sort_by_key(|c: &Call| c.event.enter_ns + c.event.duration_ns);
    Ok(calls)
}

fn push_rows(batch: &RecordBatch, paths: &mut Interner, out: &mut Vec<Call>) -> Result<()> {
    let column = |name: &str| {
        batch
            .column_by_name(name)
            .cloned()
            .with_context(|| format!("no column {name}"))
    };
    let ts = column(col::TS_NS)?;
    let duration = column(col::DURATION_NS)?;
    let ret = column(col::RET)?;
    let pid = column(col::PID)?;
    let tid = column(col::TID)?;
    let nr = column(col::NR)?;
    let comm = column(col::COMM)?;
    let path = column(col::PATH)?;
    let truncated = column(col::PATH_TRUNCATED)?;
    let addr = column(col::ADDR)?;
    let args = col::ARGS
        .iter()
        .map(|a| column(a))
        .collect::<Result<Vec<_>>>()?;
    let truncated = truncated
        .as_any()
        .downcast_ref::<BooleanArray>()
        .context("path_truncated is not boolean")?;
    for i in 0..batch.num_rows() {
        let returned = duration.is_valid(i);
        let mut comm_bytes = [0u8; 16];
        if let Some(c) = text(&comm, i) {
            let n = c.len().min(15);
            comm_bytes[..n].copy_from_slice(&c.as_bytes()[..n]);
        }
        let mut event_args = [0u64; 6];
        for (slot, a) in event_args.iter_mut().zip(&args) {
            *slot = int(a, i).unwrap_or(0) as u64;
        }
        let event = SyscallEvent {
            enter_ns: int(&ts, i).context("ts_ns is NULL")? as u64,
            duration_ns: int(&duration, i).unwrap_or(0) as u64,
            ret: int(&ret, i).unwrap_or(0),
            args: event_args,
            pid: int(&pid, i).unwrap_or(0) as u32,
            tid: int(&tid, i).unwrap_or(0) as u32,
            nr: int(&nr, i).unwrap_or(0) as u32,
            flags: if returned { 0 } else { FLAG_NO_RETURN },
            comm: comm_bytes,
        };
        let call = match text(&path, i) {
            Some(p) if truncated.is_valid(i) && truncated.value(i) => {
                let extra = Extra::Path {
                    path: paths.intern(p.as_bytes()),
                    truncated: true,
                    target: None,
                };
                Call::new(event, Some(extra), None)
            }
            Some(p) => Call::with_context(event, paths.context(p.as_bytes())),
            None => Call::new(
                event,
                text(&addr, i).map(|a| Extra::Addr(a.to_string())),
                None,
            ),
        };
        out.push(call);
    }
    Ok(())
}

fn int(a: &ArrayRef, i: usize) -> Option<i64> {
    if a.is_null(i) {
        return None;
    }
    let any = a.as_any();
    if let Some(a) = any.downcast_ref::<Int64Array>() {
        Some(a.value(i))
    } else if let Some(a) = any.downcast_ref::<Int32Array>() {
        Some(i64::from(a.value(i)))
    } else {
        any.downcast_ref::<UInt64Array>().map(|a| a.value(i) as i64)
    }
}

fn text(a: &ArrayRef, i: usize) -> Option<&str> {
    if a.is_null(i) {
        return None;
    }
    let any = a.as_any();
    if let Some(a) = any.downcast_ref::<StringArray>() {
        Some(a.value(i))
    } else {
        any.downcast_ref::<StringViewArray>().map(|a| a.value(i))
    }
}
