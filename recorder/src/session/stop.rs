//! Stopping: detach the programs, drain what the staging areas still hold, take the
//! kernel's last counts, and wait for the writer to close its files.
use std::{sync::atomic::Ordering, thread, time::Duration};

use anyhow::anyhow;

use super::{Mode, WriterStopped, capture_loop::Ended, start::Capture};
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
    /// If the writer failed: the earliest entry (wall ns) among the calls it held that no
    /// closed file has.
    pub unwritten_from_ns: Option<i64>,
    /// `record --stacks`: calls whose user-space chain came too late for their row.
    pub late_user_stacks: u64,
    /// Files and rows `--max-size` deleted, known even if the writer failed after.
    pub deleted: (u64, u64),
}

pub(super) fn stop(c: Capture, ended: Result<Ended, WriterStopped>) -> (Stopped, Ended) {
    let Capture {
        dir,
        info,
        probes,
        mut drain,
        pipeline,
        mode,
        mut chunk,
        mut paths,
        mut events,
        mut sampler,
        mut unsent_rows,
        counters,
        ..
    } = c;
    let (ended, mut gone) = match ended {
        Ok(ended) => (ended, None),
        Err(gone) => (Ended::default(), Some(gone)),
    };
    // Detach first, so no new record is sent, draining while the kernel detaches (it takes
    // a while, and the programs run on meanwhile). A program already running on another
    // CPU may still finish its record, so drain until the areas stay empty; then hand on
    // what was held for merging.
    let mut detached = probes.detach_while(|| {
        if gone.is_none() {
            match drain.pass(&pipeline, &mut chunk, &mut paths, false) {
                Ok(p) => events += p.calls,
                Err(e) => gone = Some(e.into()),
            }
        }
        thread::sleep(Duration::from_millis(1));
    });
    if gone.is_none() {
        // Two empty passes, then passes that hand on everything until one reads nothing:
        // once a pass has handed on everything, none may hold records back again.
        let mut pass = |everything| {
            drain
                .pass(&pipeline, &mut chunk, &mut paths, everything)
                .map(|p| {
                    events += p.calls;
                    p.read
                })
        };
        let mut empty_passes = 0;
        let mut drained = Ok(());
        while empty_passes < 2 {
            match pass(false) {
                Ok(0) => empty_passes += 1,
                Ok(_) => empty_passes = 0,
                Err(e) => {
                    drained = Err(e);
                    break;
                }
            }
            thread::sleep(Duration::from_millis(5));
        }
        while drained.is_ok() {
            match pass(true) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => drained = Err(e),
            }
        }
        gone = drained.err().map(Into::into);
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
    if gone.is_none()
        && let (Mode::Command(running), Some(status)) = (&mode, ended.status)
    {
        let pid = running.pid() as u32;
        gone = pipeline
            .send(Message::Reaped { pid, status })
            .err()
            .map(Into::into);
    }
    let mut unwritten_from_ns = None;
    let written = match pipeline.finish() {
        Ok(w) if gone.is_none() => Ok(w),
        Ok(_) => Err(anyhow!("the writer stopped unexpectedly")),
        Err(e) => {
            unwritten_from_ns = e.unwritten_from_ns;
            Err(anyhow::Error::new(e))
        }
    };
    let stopped = Stopped {
        dir,
        info,
        mode,
        lost,
        events,
        written,
        gone_at_ns: gone.map(|g| g.at_ns),
        unwritten_from_ns,
        late_user_stacks: drain.late_user_stacks(),
        deleted: (
            counters.deleted_files.load(Ordering::Relaxed),
            counters.deleted_rows.load(Ordering::Relaxed),
        ),
    };
    (stopped, ended)
}
