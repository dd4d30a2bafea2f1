//! Stopping: detach the programs, drain what the ring still holds, take the kernel's last
//! counts, and wait for the writer to close its files.
use std::{thread, time::Duration};

use anyhow::anyhow;

use super::{Mode, WriterStopped, capture_loop::Ended, drain::drain, start::Capture};
use crate::{
    files::capture_dir::CaptureDir, files::capture_table::CaptureInfo, files::pipeline::Message,
    files::writer::WrittenStats, kernel::bpf::Lost, kernel::clock,
};

/// A capture whose programs are detached and whose writer has finished.
pub(super) struct Stopped {
    pub dir: CaptureDir,
    pub info: CaptureInfo,
    pub mode: Mode,
    pub lost: Lost,
    /// Calls read that became rows.
    pub events: u64,
    /// What the writer wrote, or why the capture is incomplete.
    pub written: Result<WrittenStats, anyhow::Error>,
    /// When the writer was found gone, if it was.
    pub gone_at_ns: Option<i64>,
}

pub(super) fn stop(c: Capture, ended: Result<Ended, WriterStopped>) -> (Stopped, Ended) {
    let Capture {
        dir,
        info,
        probes,
        mut ring,
        pipeline,
        mode,
        mut chunk,
        mut paths,
        mut events,
        mut sampler,
        mut unsent_rows,
        ..
    } = c;
    let (ended, mut gone) = match ended {
        Ok(ended) => (ended, None),
        Err(gone) => (Ended::default(), Some(gone)),
    };
    // Detach first, so no new record enters the ring. A program already running on another
    // CPU may still submit, and the reader stops at a record reserved but not yet submitted,
    // so drain until the ring stays empty.
    let mut detached = probes.detach();
    if gone.is_none() {
        let mut empty_passes = 0;
        while empty_passes < 2 {
            match drain(&mut ring, &pipeline, &mut chunk, &mut paths) {
                Ok((0, _)) => empty_passes += 1,
                Ok((_, calls)) => {
                    events += calls;
                    empty_passes = 0;
                }
                Err(e) => {
                    gone = Some(e.into());
                    break;
                }
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
    // Read after the last drain: a program still running at detach counts its losses late.
    let lost = detached.lost();
    unsent_rows.extend(sampler.sample(&mut detached.aggregates, lost, clock::monotonic_ns()));
    // A partial chunk the writer had no room for during the drain, and the last counts.
    if gone.is_none() && !chunk.is_empty() {
        gone = pipeline.send(Message::Records(chunk)).err().map(Into::into);
    }
    if gone.is_none() && !unsent_rows.is_empty() {
        gone = pipeline
            .send(Message::Aggregates(unsent_rows))
            .err()
            .map(Into::into);
    }
    let written = match pipeline.finish() {
        Ok(w) if gone.is_none() => Ok(w),
        Ok(_) => Err(anyhow!("the writer stopped unexpectedly")),
        Err(e) => Err(anyhow::Error::new(e)),
    };
    let stopped = Stopped {
        dir,
        info,
        mode,
        lost,
        events,
        written,
        gone_at_ns: gone.map(|g| g.at_ns),
    };
    (stopped, ended)
}
