//! Copying records out of the CPUs' staging areas, merged into the order they were sent,
//! into chunks for the writer thread.
//!
//! Why merge here: the writer follows what each fd refers to by replaying calls in the
//! order they returned. A thread that opens a file on one CPU and reads it on another must
//! have its open replayed first, or the read would name the wrong file.
use std::mem;

use tracepost_common::{
    DetailedEvent, DetailedSchedEvent, FLAG_CONTEXT_ONLY, ProcessEvent, SchedEvent, SyscallEvent,
};

use crate::{
    files::block_queue::BlockQueue,
    files::pipeline::{Message, Pipeline, Record, WriterGone},
    follow::process_event::ProcessUpdate,
    kernel::call::Call,
    kernel::clock,
    kernel::decode,
    kernel::intern::Interner,
    kernel::stage::Stage,
};

/// Records per chunk handed to the writer thread.
pub(super) const CHUNK: usize = 4 * 1024;
/// Records per drain pass, over all CPUs.
const MAX_DRAIN: usize = 8 * CHUNK;
/// How far an idle CPU's clock may trail the recorder's: a program's store that marks its
/// area busy can sit in the CPU's store buffer for a moment after it read the clock.
const IDLE_SLACK_NS: u64 = 1_000_000;
/// A CPU that stays busy, or behind, longer than this stops holding back the others. With
/// preemption off a program is busy for microseconds, so this only bounds what a kernel
/// that ran programs preemptibly could make the recorder hold.
const STUCK_NS: u64 = 1_000_000_000;

/// What a drain pass did.
pub(super) struct Pass {
    /// Records read from the staging areas.
    pub read: usize,
    /// Of those handed on, the calls that will be rows.
    pub calls: u64,
    /// Every record sent before this time has been handed to the writer.
    pub complete_before: u64,
}

/// Reads the staging areas, and holds what it read until every CPU is known to be past it.
pub(super) struct Drain {
    stage: Stage,
    /// Per CPU: records read but not yet handed on, with the time each was sent.
    pending: Vec<BlockQueue<(u64, Record)>>,
    /// Per CPU: what it is known to be past; no record it sends later is earlier.
    past: Vec<u64>,
    /// A garbled area was reported once already.
    garbled: bool,
}

/// When a record was sent: a call when it returned (or entered, for one that never returns),
/// a process event when it happened. Each CPU sends in this order.
fn sent_at(record: &Record) -> u64 {
    match record {
        // The kernel's duration is `exit - enter` with wrapping, so this gives back its
        // exit clock exactly, even where two CPUs' clocks disagree by a little.
        Record::Call(c) => c.event.enter_ns.wrapping_add(c.event.duration_ns),
        Record::Process(p) => p.event.ts_ns,
    }
}

impl Drain {
    pub(super) fn new(stage: Stage) -> Self {
        let cpus = stage.cpus() as usize;
        Self {
            stage,
            pending: (0..cpus).map(|_| BlockQueue::default()).collect(),
            past: vec![0; cpus],
            garbled: false,
        }
    }

    /// One pass: read each CPU, then hand on, in order, what every CPU is past. A pass is
    /// bounded so that, however fast records arrive, the loop still checks its stop
    /// conditions. With `everything`, the programs are detached and done: all is handed on.
    pub(super) fn pass(
        &mut self,
        pipeline: &Pipeline,
        chunk: &mut Vec<Record>,
        paths: &mut Interner,
        everything: bool,
    ) -> Result<Pass, WriterGone> {
        let now = clock::monotonic_ns();
        let cpus = self.stage.cpus();
        let per_cpu = (MAX_DRAIN / cpus as usize).max(CHUNK);
        let mut read = 0;
        for cpu in 0..cpus {
            let look = self.stage.snapshot(cpu);
            let pending = &mut self.pending[cpu as usize];
            let result = self.stage.read(cpu, look.head, per_cpu, |bytes| {
                if let Some(record) = decode_record(bytes, paths) {
                    pending.push_back((sent_at(&record), record));
                }
            });
            self.stage.release(cpu);
            let (n, whole) = match result {
                Ok(r) => r,
                Err(garbled) => {
                    if !mem::replace(&mut self.garbled, true) {
                        eprintln!("warning: {garbled}");
                    }
                    (0, true)
                }
            };
            read += n;
            let past = &mut self.past[cpu as usize];
            if let Some((t, _)) = pending.back() {
                *past = (*past).max(*t);
            }
            if whole && !look.busy {
                *past = (*past).max(now.saturating_sub(IDLE_SLACK_NS));
            }
        }
        let complete_before = match everything {
            true => u64::MAX,
            false => self
                .past
                .iter()
                .map(|past| (*past).max(now.saturating_sub(STUCK_NS)))
                .min()
                .unwrap_or(0),
        };
        let mut calls = 0;
        // A k-way merge by a scan of the CPUs' fronts: a handful of CPUs here. The earliest
        // CPU hands on its whole run up to the next CPU's front, so that a thread that stays
        // on one CPU costs one scan per run, not per record. Ties go to the lower CPU.
        loop {
            let mut best: Option<(u64, usize)> = None;
            let mut bound = complete_before;
            for (cpu, queue) in self.pending.iter().enumerate() {
                let Some((t, _)) = queue.front() else {
                    continue;
                };
                match best {
                    Some((b, _)) if *t >= b => bound = bound.min(*t),
                    _ => {
                        if let Some((b, _)) = best {
                            bound = bound.min(b);
                        }
                        best = Some((*t, cpu));
                    }
                }
            }
            let Some((first, cpu)) = best else { break };
            if first >= complete_before {
                break;
            }
            let queue = &mut self.pending[cpu];
            // The first record goes whatever the bound: it is the earliest of all.
            let mut take = 1 + queue.iter().skip(1).take_while(|(t, _)| *t < bound).count();
            while take > 0 {
                let room = CHUNK - chunk.len();
                for (_, record) in queue.drain_front(take.min(room)) {
                    if let Record::Call(c) = &record
                        && c.event.flags & FLAG_CONTEXT_ONLY == 0
                    {
                        calls += 1;
                    }
                    chunk.push(record);
                }
                take -= take.min(room);
                if chunk.len() == CHUNK {
                    let full = mem::replace(chunk, pipeline.empty_chunk(CHUNK));
                    pipeline.send(Message::Records(full))?;
                }
            }
        }
        if !chunk.is_empty() {
            let part = mem::replace(chunk, pipeline.empty_chunk(CHUNK));
            pipeline.send(Message::Records(part))?;
        }
        Ok(Pass {
            read,
            calls,
            complete_before,
        })
    }
}

/// Records are told apart by size. Areas only guarantee 8-byte alignment, hence the
/// unaligned reads; each read is of exactly the size checked.
fn decode_record(bytes: &[u8], paths: &mut Interner) -> Option<Record> {
    Some(match bytes.len() {
        len if len == size_of::<SyscallEvent>() => {
            // SAFETY: a whole SyscallEvent, as the length says.
            let e = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<SyscallEvent>()) };
            Record::Call(Call::from(e))
        }
        len if len == size_of::<DetailedEvent>() => {
            // SAFETY: a whole DetailedEvent, as the length says.
            let d = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<DetailedEvent>()) };
            Record::Call(Call::new(d.event, decode::extra(&d, paths), None))
        }
        len if len == size_of::<SchedEvent>() => {
            // SAFETY: a whole SchedEvent, as the length says.
            let e = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<SchedEvent>()) };
            Record::Call(Call::new(e.event, None, Some(e.sched)))
        }
        len if len == size_of::<DetailedSchedEvent>() => {
            // SAFETY: a whole DetailedSchedEvent, as the length says.
            let d =
                unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<DetailedSchedEvent>()) };
            Record::Call(Call::new(
                d.detailed.event,
                decode::extra(&d.detailed, paths),
                Some(d.sched),
            ))
        }
        len if len == size_of::<ProcessEvent>() => {
            // SAFETY: a whole ProcessEvent, as the length says.
            let p = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<ProcessEvent>()) };
            // Now, while the process most likely still exists.
            Record::Process(Box::new(ProcessUpdate::read(p)))
        }
        _ => return None,
    })
}
