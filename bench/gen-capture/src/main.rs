//! `gen-capture DIR EVENTS`: writes a capture of EVENTS syscalls through the recorder's own
//! writer (same files, same encoding, same sort order), with a plausible mix: a web-like
//! service's reads, writes, polls, futexes, opens and closes, with long-tailed durations,
//! a few percent of errors, and paths and peers drawn from pools. For timing the analyzer on
//! captures far larger than a test can record.
use std::{path::PathBuf, sync::Arc, time::Duration};

use anyhow::{Context as _, Result};
use clap::Parser;
use syscalls_nr::*;
use tracepost_common::SyscallEvent;
use tracepost_recorder::{
    files::batch::BatchBuilder,
    files::capture_dir::CaptureDir,
    files::capture_table::{CaptureInfo, Ending},
    files::progress::Counters,
    files::writer::{Rotation, TableWriter},
    kernel::call::Call,
    kernel::clock::{WallClock, monotonic_ns},
    kernel::decode::Extra,
};
use tracepost_schema::{capture, syscalls};

/// x86_64 numbers of the syscalls generated.
mod syscalls_nr {
    pub const READ: u32 = 0;
    pub const WRITE: u32 = 1;
    pub const CLOSE: u32 = 3;
    pub const MMAP: u32 = 9;
    pub const SENDTO: u32 = 44;
    pub const RECVFROM: u32 = 45;
    pub const CONNECT: u32 = 42;
    pub const FUTEX: u32 = 202;
    pub const EPOLL_WAIT: u32 = 232;
    pub const OPENAT: u32 = 257;
    pub const NEWFSTATAT: u32 = 262;
}

#[derive(Parser)]
struct Args {
    /// Capture directory to create.
    dir: PathBuf,
    /// Syscalls to write.
    events: u64,
}

/// xorshift64*: fast, and the same capture every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// Long-tailed: mostly around `typical`, sometimes 10-1000 times more.
    fn duration(&mut self, typical: u64) -> u64 {
        let base = typical / 2 + self.below(typical.max(1));
        match self.below(1000) {
            0 => base * 1000,
            1..=9 => base * 100,
            10..=99 => base * 10,
            _ => base,
        }
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let dir = CaptureDir::create(&args.dir)?;
    let info = CaptureInfo::new(
        "bench-host".into(),
        format!("generated: {} syscalls", args.events),
        None,
    );
    info.write(&dir.table_dir(capture::TABLE))?;
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
    let paths: Vec<Arc<str>> = (0..1000)
        .map(|i| format!("/srv/app/data/shard-{:02}/object-{i:04}.dat", i % 37).into())
        .collect();
    let peers: Vec<Arc<str>> = (0..50)
        .map(|i| format!("10.0.{}.{}:5432", i / 10, i % 250 + 1).into())
        .collect();
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut now: u64 = monotonic_ns();
    let mut written = 0u64;
    // A 2-second window of calls per chunk, sorted, as the recorder hands them over.
    const CHUNK: u64 = 256 * 1024;
    while written < args.events {
        let n = CHUNK.min(args.events - written);
        let mut calls = Vec::with_capacity(n as usize);
        for _ in 0..n {
            now += 1 + rng.below(400);
            let pid = 1000 + rng.below(8) as u32;
            let tid = pid * 10 + rng.below(16) as u32;
            let roll = rng.below(1000);
            let (nr, typical) = match roll {
                0..=299 => (READ, 3_000),
                300..=499 => (WRITE, 5_000),
                500..=599 => (EPOLL_WAIT, 200_000),
                600..=699 => (FUTEX, 50_000),
                700..=779 => (OPENAT, 8_000),
                780..=859 => (CLOSE, 1_000),
                860..=899 => (NEWFSTATAT, 2_000),
                900..=929 => (MMAP, 4_000),
                930..=964 => (SENDTO, 9_000),
                965..=994 => (RECVFROM, 12_000),
                _ => (CONNECT, 150_000),
            };
            let duration = rng.duration(typical);
            let fails = rng.below(100)
                < match nr {
                    OPENAT | NEWFSTATAT => 8,
                    READ | RECVFROM => 3,
                    CONNECT => 20,
                    FUTEX => 5,
                    _ => 0,
                };
            let errno: i64 = match nr {
                OPENAT | NEWFSTATAT => 2,
                READ | RECVFROM | FUTEX => 11,
                CONNECT => 111,
                _ => 0,
            };
            let bytes = 1 + rng.below(65536) as i64;
            let ret = if fails {
                -errno
            } else {
                match nr {
                    READ | WRITE | SENDTO | RECVFROM => bytes,
                    OPENAT => 3 + rng.below(60) as i64,
                    _ => 0,
                }
            };
            let path = paths[rng.below(paths.len() as u64) as usize].clone();
            let peer = peers[rng.below(peers.len() as u64) as usize].clone();
            let fd = 3 + rng.below(60);
            let (extra, fd_path) = match nr {
                OPENAT | NEWFSTATAT => (
                    Some(Box::new(Extra::Path {
                        path: path.to_string(),
                        truncated: false,
                    })),
                    None,
                ),
                CONNECT => (Some(Box::new(Extra::Addr(peer.to_string()))), None),
                SENDTO | RECVFROM => (None, Some(peer)),
                READ | WRITE | CLOSE => (None, Some(path)),
                _ => (None, None),
            };
            calls.push(Call {
                event: SyscallEvent {
                    enter_ns: now,
                    duration_ns: duration,
                    ret,
                    args: [fd, 0, 0, 0, 0, 0],
                    pid,
                    tid,
                    nr,
                    flags: 0,
                    comm: *b"app-worker\0\0\0\0\0\0",
                },
                extra,
                fd_path,
            });
        }
        written += n;
        writer.append(calls)?;
        writer.rotate_if_due()?;
    }
    let stats = writer.finish().context("cannot finish the capture")?;
    info.write_ending(
        &dir.table_dir(capture::TABLE),
        Ending {
            ended_ns: clock.to_wall_ns(now),
            events: Some(stats.rows),
            lost_events: Some(0),
            stopped_early: None,
        },
    )?;
    println!(
        "gen-capture: {} syscalls in {} file(s), {} bytes",
        stats.rows, stats.files, stats.bytes
    );
    Ok(())
}
