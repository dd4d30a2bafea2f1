//! The capture loop: drain the staging areas, sample the kernel's counts, and check
//! whether the capture is over, until it is.
use std::{
    io, mem,
    sync::atomic::Ordering,
    thread,
    time::{Duration, Instant},
};

use tracepost_schema::capture;

use super::{Mode, WriterStopped, drain::CHUNK, start::Capture};
use crate::{
    cli::Args,
    files::pipeline::Message,
    files::progress::Progress,
    follow::cgroup_watch::{self, Change},
    follow::launch::ExitStatus,
    follow::target,
    kernel::bpf::Lost,
    kernel::clock,
};
use tracepost_common::{LOST_RING_FULL, LOST_THREAD_TABLE_FULL};

/// How long the loop sleeps when the staging areas are empty, and the longest it waits for
/// a chunk to gather. The kernel never wakes the reader (a wakeup per event costs more
/// than the event), so this also bounds how stale the areas get.
const POLL: Duration = Duration::from_millis(10);
/// A wait shorter than this is not worth the sleep and wakeup it costs.
const MIN_NAP: Duration = Duration::from_micros(100);
/// How often the kernel's aggregates are sampled: the resolution at which a query can tell
/// which seconds of a capture are incomplete.
const AGGREGATE_INTERVAL: Duration = Duration::from_secs(1);

/// How the loop ended, when the writer was still there.
#[derive(Default)]
pub(super) struct Ended {
    /// The command's status, when it ended the capture.
    pub status: Option<ExitStatus>,
    /// Waiting for the command failed: the capture stops, keeps what it has, and reports
    /// this after the files are closed.
    pub wait_error: Option<io::Error>,
}

pub(super) fn run(args: &Args, c: &mut Capture) -> Result<Ended, WriterStopped> {
    // The command, started already, keeps the priority it was given.
    crate::priority::raise_this_thread();
    let mut progress = Progress::new(args.quiet);
    let ended = run_until_done(args, c, &mut progress);
    progress.finish();
    ended
}

fn run_until_done(
    args: &Args,
    c: &mut Capture,
    progress: &mut Progress,
) -> Result<Ended, WriterStopped> {
    // A deadline past what the clock can represent is no deadline.
    let deadline = args.duration.and_then(|d| Instant::now().checked_add(d));
    let mut next_sample = Instant::now() + AGGREGATE_INTERVAL;
    loop {
        let pass = c
            .drain
            .pass(&c.pipeline, &mut c.chunk, &mut c.paths, false)?;
        c.events += pass.calls;
        progress.tick(c.events, &c.counters, || losses(&c.probes.lost()));
        if Instant::now() >= next_sample {
            next_sample += AGGREGATE_INTERVAL;
            sample_aggregates(c)?;
            note_deleted(args, c);
        }
        follow_cgroup(c);
        let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
        let ended = match &c.mode {
            Mode::Command(running) => match running.try_wait() {
                Ok(Some(s)) => Some(Ended {
                    status: Some(s),
                    wait_error: None,
                }),
                Ok(None) => timed_out.then(Ended::default),
                Err(e) => Some(Ended {
                    status: None,
                    wait_error: Some(e),
                }),
            },
            Mode::Pids(fds) => (c.stop.is_set() || timed_out || fds.iter().all(target::has_exited))
                .then(Ended::default),
            Mode::All => (c.stop.is_set() || timed_out).then(Ended::default),
        };
        if let Some(ended) = ended {
            return Ok(ended);
        }
        if pass.read == 0 {
            // If the queue is full the writer has records to move its clock on instead.
            c.pipeline
                .try_send(Message::Drained(pass.complete_before))?;
            thread::sleep(POLL);
        } else if pass.read < CHUNK {
            // Less than a chunk came since the last pass. Passing again at once handed the
            // writer a few records at a time, each with a wakeup of both threads: 30K
            // context switches a second on the getppid loop, a third of the recorder's CPU
            // (BENCHMARKS.md). So a chunk's worth gathers first, at the rate records came,
            // for at most a poll, and for as long as no area comes near full at the rate
            // its CPU writes: on a host of many CPUs each area is small. A fixed 2 ms wait
            // woke the loop 470 times a second on nginx, which sends a chunk in 15 ms. A
            // pass that reads a chunk or more goes on at once.
            let nap = POLL.min(pass.chunk_in).min(pass.headroom);
            if nap >= MIN_NAP {
                thread::sleep(nap);
            }
        }
    }
}

/// `--max-size`: the capture row says, once a second at most, how many calls were deleted
/// with the oldest files, so that a killed recorder's capture still says it. Not with
/// `--upload`, which deletes only what the store holds.
fn note_deleted(args: &Args, c: &mut Capture) {
    if args.max_size.is_none() || args.upload.is_some() {
        return;
    }
    let deleted = c.counters.deleted_rows.load(Ordering::Relaxed);
    if deleted == c.deleted_noted {
        return;
    }
    // A row that cannot be written now (a full disk) is tried again next second; the end
    // writes the whole count.
    if c.info
        .write_deleted(&c.dir.table_dir(capture::TABLE), deleted)
        .is_ok()
    {
        c.deleted_noted = deleted;
    }
}

/// `--cgroup`: a cgroup removed, or made anew at its path (a restarted service), is said
/// at once, even with `-q`: the calls of a new one before record saw it are missing. Its
/// threads left out until now are asked again at their next call.
fn follow_cgroup(c: &mut Capture) {
    let Some(watch) = &mut c.cgroup_watch else {
        return;
    };
    let Some(change) = watch.poll(Instant::now()) else {
        return;
    };
    let path = crate::visible(&watch.path().display().to_string());
    match change {
        Change::Gone => crate::say!(
            "warning: --cgroup {path} was removed; a cgroup made anew there is recorded \
             from when record sees it (within {} ms)",
            cgroup_watch::EVERY.as_millis()
        ),
        Change::MadeAnew => crate::say!(
            "warning: --cgroup {path} was made anew (a restarted service?): recording it \
             now; its calls in the {} ms before are missing",
            cgroup_watch::EVERY.as_millis()
        ),
    }
    if let Err(e) = c.probes.set_cgroup(watch.id(), watch.generation()) {
        crate::say!("warning: --cgroup {path}: cannot follow it to its new cgroup: {e}");
    }
}

/// Sends the kernel's counts of unsent calls since the last sample. Rows wait for room
/// rather than stall the drain; they are few.
fn sample_aggregates(c: &mut Capture) -> Result<(), WriterStopped> {
    let lost = c.probes.lost();
    let rows = c
        .sampler
        .sample(&mut c.probes.aggregates, lost, clock::monotonic_ns());
    c.unsent_rows.extend(rows);
    if c.unsent_rows.is_empty() {
        return Ok(());
    }
    match c
        .pipeline
        .try_send(Message::Aggregates(mem::take(&mut c.unsent_rows)))
    {
        Ok(None) => Ok(()),
        Ok(Some(Message::Aggregates(rows))) => {
            c.unsent_rows = rows;
            Ok(())
        }
        Ok(Some(_)) => unreachable!("sent aggregates"),
        Err(gone) => Err(gone.into()),
    }
}

/// `[ring full, thread table full]`: what was lost, by cause.
pub(super) fn losses(lost: &Lost) -> [u64; 2] {
    [
        lost[LOST_RING_FULL as usize],
        lost[LOST_THREAD_TABLE_FULL as usize],
    ]
}
