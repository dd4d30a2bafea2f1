//! Copying records out of the CPUs' staging areas, merged into the order they were sent,
//! into chunks for the writer thread.
//!
//! Why merge here: the writer follows what each fd refers to by replaying calls in the
//! order they returned. A thread that opens a file on one CPU and reads it on another must
//! have its open replayed first, or the read would name the wrong file.
use std::{
    collections::VecDeque,
    mem::{self, offset_of},
    time::Duration,
};

use tracepost_common::{
    DetailedEvent, DetailedSchedEvent, FLAG_CONTEXT_ONLY, ProcessEvent, SchedEvent, SchedTimes,
    SyscallEvent,
};

use crate::{
    files::pipeline::{Chunk, Message, Pipeline, WriterGone},
    follow::{cgroup_names::CgroupNames, process_event::ProcessUpdate},
    kernel::call::Call,
    kernel::clock,
    kernel::decode::Detailed,
    kernel::intern::Interner,
    kernel::stage::Stage,
    user_stacks::UserStacks,
};

/// Records per chunk handed to the writer thread.
pub(super) const CHUNK: usize = 4 * 1024;
/// How long records read may wait in a part of a chunk for more: half the writer's tick.
const HOLD: Duration = Duration::from_millis(10);
/// Records per drain pass, over all CPUs.
const MAX_DRAIN: usize = 8 * CHUNK;
/// How far an idle CPU's clock may trail the recorder's: a program's store that marks its
/// area busy can sit in the CPU's store buffer for a moment after it read the clock.
const IDLE_SLACK_NS: u64 = 1_000_000;
/// A CPU that stays busy, or behind, longer than this stops holding back the others. With
/// preemption off a program is busy for microseconds, so this only bounds what a kernel
/// that ran programs preemptibly could make the recorder hold, in the heap past a part of
/// each area ([`EVACUATE_AT`]).
const STUCK_NS: u64 = 1_000_000_000;

/// What a drain pass did.
pub(super) struct Pass {
    /// Records read from the staging areas.
    pub read: usize,
    /// Of those handed on, the calls that will be rows.
    pub calls: u64,
    /// Every record sent before this time has been handed to the writer.
    pub complete_before: u64,
    /// How long the fullest-filling area would take to fill a quarter of itself at the
    /// rate its CPU wrote since the last pass: how long the loop may wait before the next.
    pub headroom: Duration,
    /// How long a chunk's worth of records takes to come, at the rate they came since the
    /// last pass (all CPUs together).
    pub chunk_in: Duration,
}

/// Reads the staging areas, and holds what it read until every CPU is known to be past it.
pub(super) struct Drain {
    stage: Stage,
    /// Per CPU: records read but not yet handed on. Most are left where the kernel wrote
    /// them until they are, so that each is decoded once, straight into the chunk: decoded
    /// first and queued here, each was moved twice more at 144 bytes, a `memcpy` call each
    /// time (BENCHMARKS.md).
    pending: Vec<VecDeque<Pending>>,
    /// Per CPU: what it is known to be past; no record it sends later is earlier.
    past: Vec<u64>,
    /// A garbled area was reported once already.
    garbled: bool,
    /// A record written over before it was handed on was reported once already.
    overwritten: bool,
    /// `--stacks`: read after the areas, so that every call read has its chain.
    user_stacks: Option<UserStacks>,
    /// Per CPU: its head at the last pass, and when that was: the rate each CPU writes.
    last_heads: Vec<u64>,
    last_pass_ns: u64,
    /// When the part of a chunk not yet sent was first held.
    held_since: Option<u64>,
    /// The paths of the cgroups process events name.
    cgroups: CgroupNames,
}

/// A record taken out of its CPU's area before it is handed on.
enum Record {
    Call(Call),
    /// Boxed: rare, and far larger than a call.
    Process(Box<ProcessUpdate>),
}

/// A record read from a CPU's area and not yet handed on.
struct Pending {
    /// When it was sent: see [`sent_at`].
    sent: u64,
    /// Where it is in its CPU's area.
    pos: u64,
    /// The record itself once it is out of the area: a process event, read at once so
    /// that `/proc` is read while the process most likely still exists; or a call moved
    /// out because the area was filling with records held back for order
    /// ([`EVACUATE_AT`]). `None` while it is still in the area, which is not given back
    /// past it.
    out: Option<Box<Record>>,
}

/// The share of a CPU's area (one part in this many) that records held back for order may
/// fill, after a pass has handed on what it could, before they are moved out to the heap:
/// another CPU that is behind or busy holds them back, for up to [`STUCK_NS`], and in the
/// kernel's area they would make it report the area full. Two processes at 800K calls/s
/// each with a 2 MiB buffer lost 0.01-0.15% of their calls, as when every record was
/// copied out at once (BENCHMARKS.md); at the default buffer nginx never comes near it.
const EVACUATE_AT: u64 = 16;

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
    /// `record --stacks`: calls whose user-space chain never reached their row. Read once
    /// the writer has finished.
    pub(super) fn late_user_stacks(&self) -> u64 {
        self.user_stacks.as_ref().map_or(0, UserStacks::late)
    }

    pub(super) fn new(stage: Stage, user_stacks: Option<UserStacks>) -> Self {
        let cpus = stage.cpus() as usize;
        Self {
            stage,
            pending: (0..cpus).map(|_| VecDeque::new()).collect(),
            past: vec![0; cpus],
            garbled: false,
            overwritten: false,
            user_stacks,
            last_heads: vec![0; cpus],
            last_pass_ns: clock::monotonic_ns(),
            held_since: None,
            cgroups: CgroupNames::new(),
        }
    }

    /// One pass: read each CPU, then hand on, in order, what every CPU is past. A pass is
    /// bounded so that, however fast records arrive, the loop still checks its stop
    /// conditions. With `everything`, the programs are detached and done: all is handed on.
    pub(super) fn pass(
        &mut self,
        pipeline: &Pipeline,
        chunk: &mut Chunk,
        paths: &mut Interner,
        everything: bool,
    ) -> Result<Pass, WriterGone> {
        let now = clock::monotonic_ns();
        let cpus = self.stage.cpus();
        let per_cpu = (MAX_DRAIN / cpus as usize).max(CHUNK);
        let mut read = 0;
        let since_ns = now.saturating_sub(mem::replace(&mut self.last_pass_ns, now));
        let mut headroom_ns = u64::MAX;
        for cpu in 0..cpus {
            let look = self.stage.snapshot(cpu);
            let wrote = look.head.saturating_sub(self.last_heads[cpu as usize]);
            self.last_heads[cpu as usize] = look.head;
            if wrote > 0 {
                let quarter = u128::from(self.stage.capacity(cpu) / 4);
                let fills_in = quarter * u128::from(since_ns) / u128::from(wrote);
                headroom_ns = headroom_ns.min(fills_in.min(u128::from(u64::MAX)) as u64);
            }
            let pending = &mut self.pending[cpu as usize];
            let cgroups = &mut self.cgroups;
            let result = self.stage.read(cpu, look.head, per_cpu, |pos, bytes| {
                let Some(sent) = sent_at(bytes) else { return };
                let out = (bytes.len() == size_of::<ProcessEvent>()).then(|| {
                    // SAFETY: a whole ProcessEvent, as the length says.
                    let p =
                        unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<ProcessEvent>()) };
                    Box::new(Record::Process(Box::new(ProcessUpdate::read(p, cgroups))))
                });
                pending.push_back(Pending { sent, pos, out });
            });
            let (n, whole) = match result {
                Ok(r) => r,
                Err(garbled) => {
                    if !mem::replace(&mut self.garbled, true) {
                        crate::say!("warning: {garbled}");
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
        if let Some(user_stacks) = &mut self.user_stacks {
            user_stacks.drain(everything);
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
            let queue = &self.pending[cpu];
            // The first record goes whatever the bound: it is the earliest of all.
            let mut take = 1 + queue.iter().skip(1).take_while(|p| p.sent < bound).count();
            while take > 0 {
                let n = take.min(CHUNK - chunk.len());
                calls += self.hand_on(cpu, n, chunk, paths);
                take -= n;
                if chunk.len() == CHUNK {
                    // Before a send that may wait for the writer: the kernel keeps writing.
                    self.give_back();
                    let full = mem::replace(chunk, pipeline.empty_chunk(CHUNK));
                    pipeline.send(Message::Records(full))?;
                    self.held_since = None;
                }
            }
        }
        // What is still held back waits for the next pass, in the area unless it fills it.
        for cpu in 0..cpus {
            self.evacuate_if_filling(cpu, paths);
        }
        self.give_back();
        // A part of a chunk waits for the next passes, up to `HOLD`: sent after every pass,
        // at a server's rate each send was a few hundred records and a wakeup of the
        // writer, 500 a second. It goes at once when the pass read nothing, so that the
        // writer's clock, moved on after such a pass, never passes a record it lacks.
        if chunk.is_empty() {
            self.held_since = None;
        } else {
            let since = *self.held_since.get_or_insert(now);
            if everything || read == 0 || now.saturating_sub(since) >= HOLD.as_nanos() as u64 {
                let part = mem::replace(chunk, pipeline.empty_chunk(CHUNK));
                pipeline.send(Message::Records(part))?;
                self.held_since = None;
            }
        }
        Ok(Pass {
            read,
            calls,
            complete_before,
            headroom: Duration::from_nanos(headroom_ns),
            chunk_in: match read {
                0 => Duration::MAX,
                n => Duration::from_nanos(
                    (u128::from(since_ns) * CHUNK as u128 / n as u128).min(u128::from(u64::MAX))
                        as u64,
                ),
            },
        })
    }

    /// Moves the first `n` pending records of `cpu` into `chunk`. Returns how many of them
    /// will be rows.
    fn hand_on(&mut self, cpu: usize, n: usize, chunk: &mut Chunk, paths: &mut Interner) -> u64 {
        let mut calls = 0;
        for p in self.pending[cpu].drain(..n) {
            let call = match p.out {
                Some(record) => match *record {
                    Record::Call(call) => call,
                    Record::Process(update) => {
                        chunk.push_process(update);
                        continue;
                    }
                },
                None => match read_call(&self.stage, cpu as u32, p.pos, paths) {
                    Some(call) => call,
                    None => {
                        report_overwritten(&mut self.overwritten, cpu, p.pos);
                        continue;
                    }
                },
            };
            if call.event.flags & FLAG_CONTEXT_ONLY == 0 {
                calls += 1;
            }
            chunk.calls.push(call);
        }
        calls
    }

    /// Moves `cpu`'s records out of its area once those held back fill [`EVACUATE_AT`] of it.
    fn evacuate_if_filling(&mut self, cpu: u32, paths: &mut Interner) {
        let queue = &mut self.pending[cpu as usize];
        let held = self.stage.read_to(cpu) - in_area_from(queue, &self.stage, cpu);
        if held < self.stage.capacity(cpu) / EVACUATE_AT {
            return;
        }
        let mut overwritten = false;
        for p in queue.iter_mut().filter(|p| p.out.is_none()) {
            match read_call(&self.stage, cpu, p.pos, paths) {
                Some(call) => p.out = Some(Box::new(Record::Call(call))),
                None => {
                    report_overwritten(&mut self.overwritten, cpu as usize, p.pos);
                    overwritten = true;
                }
            }
        }
        if overwritten {
            queue.retain(|p| p.out.is_some());
        }
    }

    /// Gives each CPU's area back to the kernel up to its first record still in it.
    fn give_back(&mut self) {
        for (cpu, queue) in self.pending.iter().enumerate() {
            let cpu = cpu as u32;
            let to = in_area_from(queue, &self.stage, cpu);
            self.stage.release_to(cpu, to);
        }
    }
}

/// Where `cpu`'s records still in its area begin: its first pending record not moved out,
/// or where reading stopped if there is none.
#[inline]
fn in_area_from(queue: &VecDeque<Pending>, stage: &Stage, cpu: u32) -> u64 {
    queue
        .iter()
        .find(|p| p.out.is_none())
        .map_or(stage.read_to(cpu), |p| p.pos)
}

/// The call at `pos` of `cpu`'s area; `None` if its bytes are no longer a call.
#[inline(always)]
fn read_call(stage: &Stage, cpu: u32, pos: u64, paths: &mut Interner) -> Option<Call> {
    decode_call(stage.record_at(cpu, pos)?, paths)
}

/// The kernel wrote over a record the recorder had not given back: a bug on one side.
fn report_overwritten(reported: &mut bool, cpu: usize, pos: u64) {
    if !mem::replace(reported, true) {
        crate::say!(
            "warning: cpu {cpu}'s staging area no longer holds the record read at {pos}; skipped"
        );
    }
}

/// Call records are told apart by size. Areas only guarantee 8-byte alignment, hence the
/// unaligned reads; each read is of exactly the size checked. Inlined into the merge: as
/// a call, returning the 128-byte call through memory, the capture thread took a tenth
/// more instructions a record (callgrind).
#[inline(always)]
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
