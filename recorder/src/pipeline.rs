//! The writer thread: reorder, batch, write. The capture loop only copies records out of
//! the ring buffer, so a slow disk delays files instead of stalling the ring.
use std::{
    sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender},
    thread::{self, JoinHandle},
    time::Duration,
};

use tracepost_common::SyscallEvent;

use crate::{
    aggregates::AggregateRow,
    batch::BatchBuilder,
    clock::monotonic_ns,
    reorder::Reorder,
    small_table::SmallTableWriter,
    writer::{TableWriter, WriterError, WrittenStats},
};

/// A call that blocks longer than this arrives after rows entered later were written and
/// goes to the next file. Memory held for reordering is about rate × (LAG + TICK).
const LAG: Duration = Duration::from_millis(100);
/// How often ready rows move from the reorder window to the file.
const TICK: Duration = Duration::from_millis(50);
/// Chunks in flight between the capture loop and the writer.
const QUEUE_CHUNKS: usize = 8;

/// What the capture loop hands to the writer thread.
pub enum Message {
    /// Records as they left the ring, not yet in entry-time order.
    Events(Vec<SyscallEvent>),
    /// One interval of the kernel's counts of unsent calls.
    Aggregates(Vec<AggregateRow>),
}

pub struct Pipeline {
    tx: SyncSender<Message>,
    handle: JoinHandle<Result<WrittenStats, WriterError>>,
}

/// The writer thread is gone; [`Pipeline::finish`] says why.
#[derive(Debug)]
pub struct WriterGone;

impl Pipeline {
    pub fn start(
        writer: TableWriter,
        aggregates: SmallTableWriter,
        builder: BatchBuilder,
    ) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::sync_channel(QUEUE_CHUNKS);
        let handle = thread::Builder::new()
            .name("writer".into())
            .spawn(move || run(rx, writer, aggregates, builder))?;
        Ok(Self { tx, handle })
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

    /// Flushes everything and closes the files.
    pub fn finish(self) -> Result<WrittenStats, WriterError> {
        drop(self.tx);
        match self.handle.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

fn run(
    rx: Receiver<Message>,
    mut writer: TableWriter,
    mut aggregates: SmallTableWriter,
    builder: BatchBuilder,
) -> Result<WrittenStats, WriterError> {
    let mut reorder = Reorder::default();
    let mut last_tick = monotonic_ns();
    loop {
        match rx.recv_timeout(TICK) {
            Ok(Message::Events(chunk)) => reorder.push(chunk),
            Ok(Message::Aggregates(rows)) => aggregates.push(builder.build_aggregates(&rows)?),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        let now = monotonic_ns();
        if now.saturating_sub(last_tick) < TICK.as_nanos() as u64 {
            continue;
        }
        last_tick = now;
        let watermark = now.saturating_sub(LAG.as_nanos() as u64);
        writer.append(reorder.take_before(watermark))?;
        let held_back = writer.rotate_if_due()?;
        reorder.push(held_back);
        aggregates.rotate_if_due()?;
    }
    writer.append(reorder.take_all())?;
    let stats = writer.finish()?;
    aggregates.finish()?;
    Ok(stats)
}
