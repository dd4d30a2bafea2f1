//! `record --stacks`: the user-space call chain of each slow call.
//!
//! The programs send the registers and the top of the stack of each call of at least
//! `--stack-min` as it returns ([`UserStackSample`]), before the call's record. The capture
//! thread reads them after the staging areas and hands each to a thread of its own
//! ([`unwind`]), which unwinds it at once, while the process is most likely still there,
//! with the binaries' own unwind tables: most release binaries and Debian's glibc keep no
//! frame pointers, so a frame-pointer walk would skip the program's own functions. Only the
//! named frames are kept, never the stack's bytes, which hold the program's data. The
//! writer takes a call's chain when it writes the call's row ([`chains`]).
//!
//! Unwinding reads binaries, and a binary on a hung network file system blocks its reader
//! for as long as the server is gone: on the capture thread, that would stop recording.
//! So the capture thread only waits a little for the unwinder before it hands records on,
//! and not at all once the unwinder has fallen behind; calls whose chain comes too late
//! for their row are counted, and `record` still ends on time.
pub mod chains;
mod modules;
pub mod reader;
mod unwind;

use std::{
    sync::{
        Arc, Condvar, Mutex,
        mpsc::{self, Receiver, SyncSender, TrySendError},
    },
    thread,
    time::{Duration, Instant},
};

use aya::maps::{MapData, RingBuf};
use tracepost_common::UserStackSample;

use self::chains::Chains;

/// Samples read in one pass: the rest wait in the ring (which counts what it has no room
/// for), so that the staging areas are read again soon whatever the rate of slow calls.
const MAX_PER_PASS: usize = 256;
/// Passes' samples waiting for the unwinder, besides the one it works on: at most 2 MiB
/// each. Past it, a pass's samples are dropped and counted.
const QUEUE: usize = 1;
/// How long a pass waits for the unwinder to catch up before it hands records on.
const PASS_WAIT: Duration = Duration::from_millis(100);
/// How long the end of a capture waits for it.
const FINAL_WAIT: Duration = Duration::from_secs(2);

/// How far the unwinder has got: samples it has finished, in the order they were sent.
#[derive(Default)]
struct Progress {
    done: Mutex<u64>,
    advanced: Condvar,
}

/// Reads the samples and hands them to the unwinder; knows how far behind it is.
pub struct UserStacks {
    ring: RingBuf<MapData>,
    /// A pass's samples go as one batch: a channel operation and a wakeup a pass, not a
    /// sample. The unwinder sends emptied batches back, so none is allocated again.
    queue: SyncSender<Vec<UserStackSample>>,
    spare: Receiver<Vec<UserStackSample>>,
    /// The batch the next sample goes into: kept across passes that read none, and
    /// allocated (2 MiB) only when a sample comes and no emptied batch is back.
    batch: Vec<UserStackSample>,
    progress: Arc<Progress>,
    chains: Arc<Mutex<Chains>>,
    /// Samples handed to the unwinder.
    sent: u64,
    /// Samples dropped because the unwinder's queue was full.
    dropped: u64,
    /// The unwinder missed the last wait: passes hand records on without waiting for it
    /// until it has caught up.
    behind: bool,
    final_wait_done: bool,
}

impl UserStacks {
    /// Starts the unwinder thread.
    pub fn new(ring: RingBuf<MapData>) -> std::io::Result<Self> {
        let (queue, samples) = mpsc::sync_channel(QUEUE);
        let (give_back, spare) = mpsc::sync_channel(QUEUE + 1);
        let progress = Arc::new(Progress::default());
        let chains = Arc::new(Mutex::new(Chains::default()));
        let worker = unwind::Unwinding::new(chains.clone());
        let p = progress.clone();
        // Never joined: a thread blocked in a read of a hung file system cannot be, and
        // the capture must still end.
        thread::Builder::new()
            .name("unwind".into())
            .spawn(move || worker.run(samples, &give_back, &p))?;
        Ok(Self {
            ring,
            queue,
            spare,
            batch: Vec::new(),
            progress,
            chains,
            sent: 0,
            dropped: 0,
            behind: false,
            final_wait_done: false,
        })
    }

    /// What the writer takes chains from.
    pub fn chains(&self) -> Arc<Mutex<Chains>> {
        self.chains.clone()
    }

    /// Hands what the ring holds to the unwinder, up to [`MAX_PER_PASS`] samples, then
    /// waits for it to finish them (see [`Self::wait`]). Called after the staging areas
    /// are read, before records are handed on: a call's sample is committed before its
    /// record is, so its chain is there when the writer looks.
    pub fn drain(&mut self, last: bool) {
        while self.batch.len() < MAX_PER_PASS {
            let Some(item) = self.ring.next() else { break };
            if item.len() < size_of::<UserStackSample>() {
                continue;
            }
            if self.batch.capacity() == 0 {
                self.batch = self
                    .spare
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(MAX_PER_PASS));
            }
            // SAFETY: a whole sample, as the length says; read unaligned, as the ring
            // aligns records to 8 bytes only.
            self.batch
                .push(unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<UserStackSample>()) });
        }
        if !self.batch.is_empty() {
            let n = self.batch.len() as u64;
            match self.queue.try_send(std::mem::take(&mut self.batch)) {
                Ok(()) => self.sent += n,
                Err(TrySendError::Full(mut batch) | TrySendError::Disconnected(mut batch)) => {
                    self.dropped += n;
                    batch.clear();
                    self.batch = batch;
                }
            }
        }
        self.wait(last);
    }

    /// Waits for the unwinder to finish what it was sent: up to [`PASS_WAIT`], or once
    /// [`FINAL_WAIT`] at the end; not at all while it is behind.
    fn wait(&mut self, last: bool) {
        let limit = if last && !self.final_wait_done {
            self.final_wait_done = true;
            FINAL_WAIT
        } else if self.behind {
            Duration::ZERO
        } else {
            PASS_WAIT
        };
        let deadline = Instant::now() + limit;
        // An unwinder that panicked holding it is behind for good.
        let Ok(mut done) = self.progress.done.lock() else {
            self.behind = true;
            return;
        };
        while *done < self.sent {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            done = match self.progress.advanced.wait_timeout(done, left) {
                Ok((d, _)) => d,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
        self.behind = *done < self.sent;
    }

    /// Calls whose chain never reached their row: samples the unwinder had no room for,
    /// chains it finished after the row was written, and samples it has not finished
    /// (stuck, or gone). Read once the writer is done.
    pub fn late(&self) -> u64 {
        let chains = self.chains.lock().unwrap_or_else(|e| e.into_inner());
        let done = *self.progress.done.lock().unwrap_or_else(|e| e.into_inner());
        self.dropped + chains.late() + self.sent.saturating_sub(done)
    }
}
