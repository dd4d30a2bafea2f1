//! Copying records out of the CPUs' staging areas, merged into the order they were sent,
//! into chunks for the writer thread.
//!
//! Why merge here: the writer follows what each fd refers to by replaying calls in the
//! order they returned. A thread that opens a file on one CPU and reads it on another must
//! have its open replayed first, or the read would name the wrong file.
use std::{
    collections::VecDeque,
    mem::{self, offset_of},
};

use tracepost_common::{
    DetailedEvent, DetailedSchedEvent, FLAG_CONTEXT_ONLY, ProcessEvent, SchedEvent, SchedTimes,
    SyscallEvent,
};

use crate::{
    files::pipeline::{Message, Pipeline, Record, WriterGone},
    follow::process_event::ProcessUpdate,
    kernel::call::Call,
    kernel::clock,
    kernel::decode::Detailed,
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
    /// Per CPU: records read but not yet handed on, left where the kernel wrote them
    /// until they are, so that each is decoded once, straight into the chunk. Decoded
    /// first and queued here, each was moved twice more at 144 bytes, a `memcpy` call each
    /// time (BENCHMARKS.md). Entries are 24 bytes and the area holds at most one per 112
    /// bytes, so a queue never grows past a quarter of its CPU's area.
    pending: Vec<VecDeque<Pending>>,
    /// Per CPU: what it is known to be past; no record it sends later is earlier.
    past: Vec<u64>,
    /// A garbled area was reported once already.
    garbled: bool,
}

/// A record read from a CPU's area and not yet handed on.
struct Pending {
    /// When it was sent: see [`sent_at`].
    sent: u64,
    /// Where it is in its CPU's area.
    pos: u64,
    /// A process event, read at once: `/proc` is read while the process most likely
    /// still exists, not a pass later.
    process: Option<Box<ProcessUpdate>>,
}

/// When a record was sent: a call when it returned (or entered, for one that never returns),
/// a process event when it happened. Each CPU sends in this order. `None` for a record
/// no version of the programs sends.
fn sent_at(bytes: &[u8]) -> Option<u64> {
    let u64_at = |offset: usize| {
        bytes
            .get(offset..offset + 8)
            .map(|b| u64::from_ne_bytes(b.try_into().expect("8 bytes")))
    };
    match bytes.len() {
        len if len == size_of::<ProcessEvent>() => u64_at(offset_of!(ProcessEvent, ts_ns)),
        len if [
            size_of::<SyscallEvent>(),
            size_of::<DetailedEvent>(),
            size_of::<SchedEvent>(),
            size_of::<DetailedSchedEvent>(),
        ]
        .contains(&len) =>
        {
            // Every call record starts with its `SyscallEvent`. The kernel's duration is
            // `exit - enter` with wrapping, so this gives back its exit clock exactly, even
            // where two CPUs' clocks disagree by a little.
            let enter = u64_at(offset_of!(SyscallEvent, enter_ns))?;
            Some(enter.wrapping_add(u64_at(offset_of!(SyscallEvent, duration_ns))?))
        }
        _ => None,
    }
}

impl Drain {
    pub(super) fn new(stage: Stage) -> Self {
        let cpus = stage.cpus() as usize;
        Self {
            stage,
            pending: (0..cpus).map(|_| VecDeque::new()).collect(),
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
            let result = self.stage.read(cpu, look.head, per_cpu, |pos, bytes| {
                let Some(sent) = sent_at(bytes) else { return };
                let process = (bytes.len() == size_of::<ProcessEvent>()).then(|| {
                    // SAFETY: a whole ProcessEvent, as the length says.
                    let p =
                        unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<ProcessEvent>()) };
                    Box::new(ProcessUpdate::read(p))
                });
                pending.push_back(Pending { sent, pos, process });
            });
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
            if let Some(last) = pending.back() {
                *past = (*past).max(last.sent);
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
                let Some(Pending { sent: t, .. }) = queue.front() else {
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
            let mut take = 1 + queue.iter().skip(1).take_while(|p| p.sent < bound).count();
            while take > 0 {
                let room = CHUNK - chunk.len();
                for p in queue.drain(..take.min(room)) {
                    let record = match p.process {
                        Some(update) => Record::Process(update),
                        None => match self.stage.record_at(cpu as u32, p.pos) {
                            Some(bytes) => match decode_call(bytes, paths) {
                                Some(call) => Record::Call(call),
                                None => continue,
                            },
                            None => continue,
                        },
                    };
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
        // What is handed on goes back to the kernel; what is still pending stays.
        for (cpu, queue) in self.pending.iter().enumerate() {
            let cpu = cpu as u32;
            let to = queue.front().map_or(self.stage.read_to(cpu), |p| p.pos);
            self.stage.release_to(cpu, to);
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

/// Call records are told apart by size. Areas only guarantee 8-byte alignment, hence the
/// unaligned reads; each read is of exactly the size checked.
fn decode_call(bytes: &[u8], paths: &mut Interner) -> Option<Call> {
    Some(match bytes.len() {
        len if len == size_of::<SyscallEvent>() => {
            // SAFETY: a whole SyscallEvent, as the length says.
            let e = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<SyscallEvent>()) };
            Call::from(e)
        }
        len if len == size_of::<DetailedEvent>() => {
            let d = Detailed::read(bytes)?;
            match d.shared(paths) {
                Some(context) => Call::with_context(d.event, context),
                None => Call::new(d.event, d.extra(paths), None),
            }
        }
        len if len == size_of::<SchedEvent>() => {
            // SAFETY: a whole SchedEvent, as the length says.
            let e = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<SchedEvent>()) };
            Call::new(e.event, None, Some(e.sched))
        }
        len if len == size_of::<DetailedSchedEvent>() => {
            let d = Detailed::read(bytes)?;
            let at = offset_of!(DetailedSchedEvent, sched);
            // SAFETY: a whole DetailedSchedEvent, as the length says, so its times are
            // inside `bytes`.
            let sched =
                unsafe { std::ptr::read_unaligned(bytes.as_ptr().add(at).cast::<SchedTimes>()) };
            Call::new(d.event, d.extra(paths), Some(sched))
        }
        _ => return None,
    })
}
