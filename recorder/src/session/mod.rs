//! One capture, from start to stop, in four phases that each have a file:
//! [`start`] refuses what it must and sets everything up, [`capture_loop`] moves records
//! from the staging areas to the writer until a stop condition, [`stop`] detaches and
//! drains what the kernel still holds, and [`finish`] closes the files and writes the
//! capture row.
//!
//! A writer thread that dies (a full disk, a write error) ends the capture early from
//! whichever phase sees it; each phase returns that as [`WriterStopped`], and [`finish`]
//! turns it into a capture row that says from when calls are missing.
use anyhow::Result;

use crate::{cli::Args, files::writer::WrittenStats, follow::launch::Running};
use std::os::fd::OwnedFd;

mod capture_loop;
mod drain;
mod finish;
pub mod signals;
mod start;
mod stop;

/// What a capture produced.
#[derive(Debug)]
pub struct Outcome {
    /// The command's status in command mode, else 0.
    pub exit_code: u8,
    pub written: WrittenStats,
    pub lost: u64,
}

/// What is being recorded, and so what ends the capture.
enum Mode {
    Command(Running),
    Pids(Vec<OwnedFd>),
    All,
}

/// The writer thread stopped taking records, at this wall-clock time: calls from then on
/// are not recorded. The pipeline says only that it is gone; this adds when.
#[derive(Clone, Copy, Debug)]
struct WriterStopped {
    at_ns: i64,
}

impl From<crate::files::pipeline::WriterGone> for WriterStopped {
    fn from(_: crate::files::pipeline::WriterGone) -> Self {
        Self {
            at_ns: crate::kernel::clock::realtime_ns(),
        }
    }
}

pub fn run(args: Args) -> Result<Outcome> {
    let mut capture = start::start(&args)?;
    let uploader = capture.uploader.take();
    let signals = capture.stop.clone();
    let ended = capture_loop::run(&args, &mut capture);
    let (stopped, ended) = stop::stop(capture, ended);
    let outcome = finish::finish(&args, stopped, ended);
    match uploader {
        Some(uploader) => {
            // A signal from now on is one given to stop waiting for the uploads.
            let before = signals.signals();
            finish::uploads(&args, uploader, outcome, || signals.signals() > before)
        }
        None => outcome,
    }
}
