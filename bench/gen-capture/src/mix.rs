//! The web-like mix of syscalls that the benchmarks write through the recorder's own
//! code: reads, writes, polls, futexes, opens and closes, with long-tailed durations, a
//! few percent of errors, and paths and peers drawn from pools.
use std::sync::Arc;

use syscalls_nr::*;
use tracepost_common::SyscallEvent;
use tracepost_recorder::kernel::{call::Call, decode::Extra};

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

/// An endless stream of calls from eight processes, starting at `first_pid`, each call
/// entering 1 to 400 ns after the one before.
pub struct Mix {
    rng: Rng,
    now: u64,
    first_pid: u32,
    paths: Vec<Arc<str>>,
    peers: Vec<Arc<str>>,
}

impl Mix {
    /// The same stream every time for the same `seed`.
    pub fn new(seed: u64, start_ns: u64, first_pid: u32) -> Self {
        Self {
            rng: Rng(seed),
            now: start_ns,
            first_pid,
            paths: (0..1000)
                .map(|i| format!("/srv/app/data/shard-{:02}/object-{i:04}.dat", i % 37).into())
                .collect(),
            peers: (0..50)
                .map(|i| format!("10.0.{}.{}:5432", i / 10, i % 250 + 1).into())
                .collect(),
        }
    }

    /// When the last call generated entered.
    pub fn now(&self) -> u64 {
        self.now
    }

    pub fn call(&mut self) -> Call {
        let rng = &mut self.rng;
        self.now += 1 + rng.below(400);
        let pid = self.first_pid + rng.below(8) as u32;
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
        let path = self.paths[rng.below(self.paths.len() as u64) as usize].clone();
        let peer = self.peers[rng.below(self.peers.len() as u64) as usize].clone();
        let fd = 3 + rng.below(60);
        let (extra, fd_path) = match nr {
            OPENAT | NEWFSTATAT => (
                Some(Extra::Path {
                    path,
                    truncated: false,
                    target: None,
                }),
                None,
            ),
            CONNECT => (Some(Extra::Addr(peer.to_string())), None),
            SENDTO | RECVFROM => (None, Some(peer)),
            READ | WRITE | CLOSE => (None, Some(path)),
            _ => (None, None),
        };
        let event = SyscallEvent {
            enter_ns: self.now,
            duration_ns: duration,
            ret,
            args: [fd, 0, 0, 0, 0, 0],
            pid,
            tid,
            nr,
            flags: 0,
            comm: *b"app-worker\0\0\0\0\0\0",
        };
        let mut call = Call::new(event, extra, None);
        call.fd_path = fd_path;
        call
    }
}
