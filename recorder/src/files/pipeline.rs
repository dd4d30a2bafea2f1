//! The writer thread: context, reorder, batch, write. The capture loop only decodes records
//! out of the staging areas, and gives the areas back before it waits for this thread, so
//! a slow disk delays files before it fills the kernel's buffer.
use std::{
    sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender},
    thread::{self, JoinHandle},
    time::Duration,
};

use tracepost_common::FLAG_CONTEXT_ONLY;

use crate::{
    files::batch::BatchBuilder,
    files::parquet_file,
    files::reorder::Reorder,
    files::small_table::SmallTableWriter,
    files::writer::{TableWriter, WriterError, WrittenStats},
    follow::fd_table::{FdTracker, Snapshot},
    follow::launch::ExitStatus,
    follow::process_event::ProcessUpdate,
    follow::processes::{self, ProcessRow, ProcessTable},
    kernel::aggregates::AggregateRow,
    kernel::call::Call,
    kernel::clock::monotonic_ns,
};

/// Rows wait until every call that returned this much later than they entered has
/// arrived. The clock is the newest return the writer has seen, not the wall clock, so how
/// long records take to reach the writer (the poll, the chunk queue) never makes a call
/// late: only calls that block longer than this do. Those go to the next file, where they
/// are as much at home. Memory held for reordering is about rate × (LAG + TICK): 100 ms
/// and 50 ms held 30 MB of calls at the getppid loop's rate (BENCHMARKS.md).
const LAG: Duration = Duration::from_millis(30);
/// The most calls the reorder window holds, 8 MiB of them. `LAG` bounds the window by
/// time, so its memory grows with the rate: 2.5M calls/s filled it with 32 MB. Past this
/// the oldest leave early, which shortens the lag at rates above about 1.3M calls/s; a call
/// that blocked longer than that then goes to the next file, like any late call.
const MAX_WINDOW: usize = 64 * 1024;
/// How often ready rows move from the reorder window to the file.
const TICK: Duration = Duration::from_millis(20);
/// Chunks in flight between the capture loop and the writer.
const QUEUE_CHUNKS: usize = 8;
/// Emptied chunks waiting to be filled again. A chunk is megabytes: allocating each one
/// afresh cost the writer a fifth of its time in page faults at full load. As many as the
/// queue holds, so that a queue that filled and drained again is refilled with chunks
/// already faulted in: with 2, the getppid loop took 28-31K page faults a run, with 8,
/// 16-18K, for 1 MiB more peak RSS (BENCHMARKS.md).
const SPARE_CHUNKS: usize = QUEUE_CHUNKS;

/// Records as the capture loop hands them on: the calls in the order they were sent, and
/// the rare process events beside them, each with the place among the calls it was sent
/// at. Not a list of records of either kind: an enum's tag made each 136 bytes where a
/// call is 128, and at 136 each move into the chunk and out of it was a `memcpy` call, a
/// sixth of the capture thread's samples on the getppid loop (BENCHMARKS.md).
#[derive(Default)]
pub struct Chunk {
    pub calls: Vec<Call>,
    /// `(n, event)`: the event was sent after the first `n` calls and before the rest.
    pub processes: Vec<(usize, Box<ProcessUpdate>)>,
}

impl Chunk {
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            calls: Vec::with_capacity(capacity),
            processes: Vec::new(),
        }
    }

    /// Records held, calls and process events.
    pub fn len(&self) -> usize {
        self.calls.len() + self.processes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A process event, sent after the calls the chunk holds so far.
    pub fn push_process(&mut self, update: Box<ProcessUpdate>) {
        self.processes.push((self.calls.len(), update));
    }
}

/// What the capture loop hands to the writer thread.
pub enum Message {
    /// What the targets held when tracing began: sent before any record.
    Attached {
        fds: Vec<Snapshot>,
        processes: Vec<ProcessRow>,
    },
    Records(Chunk),
    /// One interval of the kernel's counts of unsent calls.
    Aggregates(Vec<AggregateRow>),
    /// Every record sent before this instant (`CLOCK_MONOTONIC` ns) has been handed on:
    /// the drain's merge frontier, once the staging areas were found empty. When no records
    /// come, this moves the writer's clock on, so that rows reach the file while the traced
    /// programs are idle.
    Drained(u64),
    /// The command `record` ran was reaped with this status: its row takes it where its
    /// exit event was lost (a full buffer), since record knows it first hand.
    Reaped {
        pid: u32,
        status: ExitStatus,
    },
}

/// Everything the writer thread owns.
pub struct Writers {
    pub syscalls: TableWriter,
    pub aggregates: SmallTableWriter,
    pub processes: SmallTableWriter,
    pub builder: BatchBuilder,
    pub processes_table: ProcessTable,
}

pub struct Pipeline {
    tx: SyncSender<Message>,
    spares: Receiver<Chunk>,
    handle: JoinHandle<Result<WrittenStats, Failed>>,
}

/// Why the writer stopped, and from when calls may be missing: the earliest entry
/// (wall-clock ns) among the calls it took but never put in a closed file. A call that
/// blocked longer than the reorder lag waits for the file after its neighbours', so it
/// can be older than anything the last closed file holds.
#[derive(Debug)]
pub struct Failed {
    pub error: WriterError,
    pub unwritten_from_ns: Option<i64>,
}

impl std::fmt::Display for Failed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for Failed {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// The writer thread is gone; [`Pipeline::finish`] says why.
#[derive(Debug)]
pub struct WriterGone;

impl Pipeline {
    pub fn start(writers: Writers) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(QUEUE_CHUNKS);
        let (spare_tx, spares) = mpsc::sync_channel(SPARE_CHUNKS);
        let handle = thread::Builder::new()
            .name("writer".into())
            .spawn(move || run(rx, spare_tx, writers))?;
        Ok(Self { tx, spares, handle })
    }

    /// An empty chunk with room for `capacity` records: one the writer has emptied if there
    /// is one.
    pub fn empty_chunk(&self, capacity: usize) -> Chunk {
        self.spares
            .try_recv()
            .unwrap_or_else(|_| Chunk::with_capacity(capacity))
    }

    /// Waits for room: for full chunks, which the capture loop cannot hold on to.
    pub fn send(&self, message: Message) -> Result<(), WriterGone> {
        self.tx.send(message).map_err(|_| WriterGone)
    }

    /// Sends if there is room, else gives the message back: it can wait for the next poll
    /// instead of stalling the capture loop while the writer closes a file.
    pub fn try_send(&self, message: Message) -> Result<Option<Message>, WriterGone> {
        match self.tx.try_send(message) {
            Ok(()) => Ok(None),
            Err(mpsc::TrySendError::Full(message)) => Ok(Some(message)),
            Err(mpsc::TrySendError::Disconnected(_)) => Err(WriterGone),
        }
    }

    /// Flushes everything and closes the files. A writer thread that died is an error,
    /// not a panic of the recorder: in command mode the command must still be waited for.
    pub fn finish(self) -> Result<WrittenStats, Failed> {
        drop(self.tx);
        match self.handle.join() {
            Ok(result) => result,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "a panic".into());
                Err(Failed {
                    error: WriterError::Died(what),
                    unwritten_from_ns: None,
                })
            }
        }
    }
}

/// The writer thread's whole work. Never inlined, so that a profile can count exactly it
/// (`callgrind --toggle-collect='tracepost_recorder::files::pipeline::run*'`, as
/// BENCHMARKS.md does); a call once a thread costs nothing.
#[inline(never)]
fn run(
    rx: Receiver<Message>,
    spares: SyncSender<Chunk>,
    mut w: Writers,
) -> Result<WrittenStats, Failed> {
    crate::priority::raise_this_thread();
    let mut reorder = Reorder::default();
    let recorded = record(&rx, &spares, &mut w, &mut reorder);
    let Writers {
        mut syscalls,
        aggregates,
        mut processes,
        mut processes_table,
        builder,
    } = w;
    let dir = syscalls.dir().to_path_buf();
    // Every call not yet in a closed file: what is lost if what follows fails.
    let unclosed = |syscalls: &TableWriter, reorder: &Reorder| {
        syscalls
            .unclosed_from()
            .into_iter()
            .chain(reorder.oldest())
            .min()
    };
    let mut unwritten = None;
    let stats = match recorded.and_then(|()| {
        syscalls.rows_written_before(u64::MAX);
        syscalls.append_due(reorder.take_all())
    }) {
        // Most files end here, their row group written only now: a full disk fails here
        // more often than anywhere.
        Ok(()) => {
            let before = unclosed(&syscalls, &reorder);
            syscalls.finish().inspect_err(|_| {
                unwritten = before;
                parquet_file::remove_unfinished(&dir);
            })
        }
        // The open file can never be finished (it has no footer yet), and on a full disk
        // its bytes are the room the other tables need.
        Err(e) => {
            // And the calls the capture thread had already handed on.
            let queued = rx.try_iter().filter_map(|m| match m {
                Message::Records(chunk) => chunk.calls.iter().map(Call::enter_ns).min(),
                _ => None,
            });
            unwritten = unclosed(&syscalls, &reorder)
                .into_iter()
                .chain(queued)
                .min();
            drop(syscalls);
            parquet_file::remove_unfinished(&dir);
            Err(e)
        }
    };
    // The small tables keep what is known whatever happened to `syscalls`: a disk that
    // was too full for its next file may still have room for them, and they say which
    // processes ran and what the kernel counted until then.
    let small = aggregates.finish().and_then(|()| {
        let rows = processes_table.take_all();
        if !rows.is_empty() {
            processes.push(processes::batch(&rows)?);
        }
        processes.finish()
    });
    let failed = |error| Failed {
        error,
        unwritten_from_ns: unwritten.map(|ns| builder.clock().to_wall_ns(ns)),
    };
    match stats {
        Ok(mut stats) => {
            stats.fd_tables_let_go = crate::follow::fd_table::tables_let_go();
            small.map(|()| stats).map_err(failed)
        }
        Err(e) => Err(failed(e)),
    }
}

/// Takes messages until the capture thread hangs up, writing as rows come due.
fn record(
    rx: &Receiver<Message>,
    spares: &SyncSender<Chunk>,
    w: &mut Writers,
    reorder: &mut Reorder,
) -> Result<(), WriterError> {
    let mut fds = FdTracker::new();
    let args = w.builder.arg_table();
    let mut last_tick = monotonic_ns();
    // The latest return among the records received: records arrive in the order calls
    // returned, so every call that returned before it has arrived.
    let mut newest_return = 0u64;
    loop {
        match rx.recv_timeout(TICK) {
            Ok(Message::Attached {
                fds: snapshots,
                processes,
            }) => {
                for snap in &snapshots {
                    fds.apply_snapshot(snap);
                }
                for row in processes {
                    w.processes_table.add(row);
                }
            }
            Ok(Message::Records(mut chunk)) => {
                // The calls between two process events in one plain loop: a check for an
                // event at every call cost the loop a tenth more.
                let mut calls = chunk.calls.drain(..);
                let mut updates = chunk.processes.drain(..);
                let mut done = 0;
                loop {
                    let update = updates.next();
                    let until = update.as_ref().map_or(usize::MAX, |(at, _)| *at);
                    for mut call in calls.by_ref().take(until - done) {
                        let e = &call.event;
                        newest_return = newest_return.max(e.enter_ns.saturating_add(e.duration_ns));
                        let fd = args.followed_fd(&call);
                        fds.observe(&mut call, fd);
                        w.processes_table.observe_call(&call);
                        // Sent only so that fds could be followed: not a row.
                        if call.event.flags & FLAG_CONTEXT_ONLY == 0 {
                            reorder.push_one(call);
                        }
                    }
                    done = until;
                    let Some((_, update)) = update else { break };
                    fds.on_process(&update);
                    w.processes_table
                        .on_update(&update, |pid, name| fds.place_of(pid, name));
                }
                drop((calls, updates));
                // Full or not wanted: then it is freed.
                let _ = spares.try_send(chunk);
                if reorder.len() > MAX_WINDOW {
                    let excess = reorder.len() - MAX_WINDOW;
                    w.syscalls.append_due(reorder.take_oldest(excess))?;
                }
            }
            Ok(Message::Aggregates(rows)) => w.aggregates.push(w.builder.build_aggregates(&rows)?),
            Ok(Message::Drained(before)) => newest_return = newest_return.max(before),
            Ok(Message::Reaped { pid, status }) => w.processes_table.reaped(pid, status),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now = monotonic_ns();
        if now.saturating_sub(last_tick) < TICK.as_nanos() as u64 {
            continue;
        }
        last_tick = now;
        // No call returns in the future: a record that says so moves the clock to now at most.
        // Never the wall clock alone: while records wait in the kernel (a backlog, a stalled
        // capture thread), a wall-clock bound released rows before calls that entered
        // earlier and returned quickly had arrived, and those then went to the next file.
        let watermark = newest_return.min(now).saturating_sub(LAG.as_nanos() as u64);
        // Said before the rows are written: a chain that comes while they are is late
        // unless its row still takes it, and only chains no row took are counted.
        w.syscalls.rows_written_before(watermark);
        w.syscalls.append_due(reorder.take_before(watermark))?;
        let held_back = w.syscalls.rotate_if_due()?;
        reorder.push(held_back);
        let exited = w.processes_table.take_exited();
        if !exited.is_empty() {
            w.processes.push(processes::batch(&exited)?);
        }
        w.aggregates.rotate_if_due()?;
        w.processes.rotate_if_due()?;
    }
    Ok(())
}
