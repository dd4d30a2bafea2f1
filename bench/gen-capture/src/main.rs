//! `gen-capture DIR EVENTS`: writes a capture of EVENTS syscalls through the recorder's own
//! writer (same files, same encoding, same sort order), with the web-like
//! [`Mix`]. For timing the analyzer on captures far larger than a test can record.
use std::{path::PathBuf, time::Duration};

use anyhow::{Context as _, Result};
use clap::Parser;
use tracepost_bench::mix::Mix;
use tracepost_recorder::{
    files::batch::BatchBuilder,
    files::capture_dir::CaptureDir,
    files::capture_table::{CaptureInfo, Ending},
    files::parquet_file,
    files::progress::Counters,
    files::writer::{Rotation, TableWriter},
    kernel::call::Call,
    kernel::clock::{WallClock, monotonic_ns},
};
use tracepost_schema::{aggregates, capture, processes, syscalls};

#[derive(Parser)]
struct Args {
    /// Capture directory to create.
    dir: PathBuf,
    /// Syscalls to write.
    events: u64,
}

fn main() -> std::process::ExitCode {
    tracepost_bench::harness::main_of(run_main)
}

fn run_main() -> Result<()> {
    let args = Args::parse();
    let dir = CaptureDir::create(&args.dir)?;
    let info = CaptureInfo::new(
        "bench-host".into(),
        format!("generated: {} syscalls", args.events),
        None,
    );
    info.write(&dir.table_dir(capture::TABLE))?;
    // Every table a file, as a recorder leaves them: `analyze` names a table without one.
    for table in [processes::TABLE, aggregates::TABLE] {
        let schema = tracepost_schema::schema_of(table).expect("a table of the schema");
        parquet_file::ensure_one(&dir.table_dir(table), table, schema)?;
    }
    let clock = WallClock::sample();
    let mut writer = TableWriter::new(
        &dir.table_dir(syscalls::TABLE),
        BatchBuilder::new(clock),
        Rotation {
            max_age: Duration::from_secs(3600),
            max_rows: 16 * 1024 * 1024,
            max_total_bytes: None,
        },
        Counters::new(),
    )?;
    let mut mix = Mix::new(0x9E37_79B9_7F4A_7C15, monotonic_ns(), 1000);
    let mut written = 0u64;
    // A 2-second window of calls per chunk, sorted, as the recorder hands them over.
    const CHUNK: u64 = 256 * 1024;
    while written < args.events {
        let n = CHUNK.min(args.events - written);
        let calls: Vec<Call> = (0..n).map(|_| mix.call()).collect();
        written += n;
        writer.append(calls)?;
        writer.rotate_if_due()?;
    }
    let stats = writer.finish().context("cannot finish the capture")?;
    info.write_ending(
        &dir.table_dir(capture::TABLE),
        Ending {
            ended_ns: clock.to_wall_ns(mix.now()),
            events: Some(stats.rows),
            lost_events: Some(0),
            stopped_early: None,
            deleted_events: None,
            lost_process_events: Some(0),
        },
    )?;
    println!(
        "gen-capture: {} syscalls in {} file(s), {} bytes",
        stats.rows, stats.files, stats.bytes
    );
    Ok(())
}
