//! Copying records out of the ring buffer into chunks for the writer thread.
use std::mem;

use aya::maps::{MapData, RingBuf};
use tracepost_common::{DetailedEvent, FLAG_CONTEXT_ONLY, ProcessEvent, SyscallEvent};

use crate::{
    files::pipeline::{Message, Pipeline, Record, WriterGone},
    follow::process_event::ProcessUpdate,
    kernel::call::Call,
    kernel::decode,
    kernel::intern::Interner,
};

/// Records per chunk handed to the writer thread.
pub(super) const CHUNK: usize = 4 * 1024;
/// Records per drain pass.
const MAX_DRAIN: usize = 8 * CHUNK;

/// Copies records out of the ring into chunks for the writer. Returns how many, and how
/// many of them will be rows. A pass is bounded so that, however fast records arrive, the
/// loop still checks its stop conditions.
pub(super) fn drain(
    ring: &mut RingBuf<MapData>,
    pipeline: &Pipeline,
    chunk: &mut Vec<Record>,
    paths: &mut Interner,
) -> Result<(usize, u64), WriterGone> {
    let mut n = 0;
    let mut calls = 0;
    while n < MAX_DRAIN {
        let Some(item) = ring.next() else { break };
        n += 1;
        // Records are told apart by size. The ring only guarantees 8-byte alignment, hence
        // the unaligned reads; each read is of exactly the size checked.
        let record = match item.len() {
            len if len == size_of::<SyscallEvent>() => {
                // SAFETY: a whole SyscallEvent, as the length says.
                let e = unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<SyscallEvent>()) };
                Record::Call(Call::from(e))
            }
            len if len == size_of::<DetailedEvent>() => {
                // SAFETY: a whole DetailedEvent, as the length says.
                let d = unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<DetailedEvent>()) };
                Record::Call(Call {
                    event: d.event,
                    extra: decode::extra(&d, paths).map(Box::new),
                    fd_path: None,
                })
            }
            len if len == size_of::<ProcessEvent>() => {
                // SAFETY: a whole ProcessEvent, as the length says.
                let p = unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<ProcessEvent>()) };
                drop(item);
                // Now, while the process most likely still exists.
                Record::Process(Box::new(ProcessUpdate::read(p)))
            }
            _ => continue,
        };
        if let Record::Call(c) = &record
            && c.event.flags & FLAG_CONTEXT_ONLY == 0
        {
            calls += 1;
        }
        chunk.push(record);
        if chunk.len() == CHUNK {
            let full = mem::replace(chunk, pipeline.empty_chunk(CHUNK));
            pipeline.send(Message::Records(full))?;
        }
    }
    if !chunk.is_empty() {
        let part = mem::replace(chunk, pipeline.empty_chunk(CHUNK));
        pipeline.send(Message::Records(part))?;
    }
    Ok((n, calls))
}
