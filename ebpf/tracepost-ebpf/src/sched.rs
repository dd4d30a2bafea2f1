//! `record --sched`: where each traced call's time went, from the scheduler's tracepoints.
//!
//! A call's time is split by a small state machine per thread ([`SchedSlot`]): `sys_enter`
//! starts it on the CPU, `sched_switch` moves it off (runnable if preempted, else blocked
//! until a wakeup says it slept) and back on, `sched_wakeup` ends a blocked stretch, and
//! `sys_exit` ends it. Each change adds the time since the last one to the state being
//! left; the time on the CPU is what the other two leave of the duration, so the three
//! add up to it exactly.
//!
//! A stretch off the CPU is called blocked only when a wakeup ends it: a task that went
//! to sleep with a signal pending never slept, and comes back without one. That, and not
//! the state `sched_switch` passes (Linux 5.18 and later only), is what tells them apart,
//! so `--sched` works wherever the tracepoints exist.
//!
//! The waker is the thread running `sched_waking`, which the kernel fires in the waker's
//! own context, unlike `sched_wakeup`, which can run later on the wakee's CPU. A wakeup
//! from a timer or a hardware interrupt has no waker thread; the interrupt hooks below
//! tell those apart.
//!
//! Nothing here is attached without `--sched`, so a plain capture pays nothing for it.
use crate::prelude::*;
use aya_ebpf::programs::tracing::StackIdContext as _;

/// A context switch on this CPU. Fires for every switch on the host: a thread in no
/// traced call costs the two lookups and nothing more.
#[raw_tracepoint(tracepoint = "sched_switch")]
pub fn sched_switch(ctx: RawTracePointContext) -> u32 {
    let prev: u64 = ctx.arg(1);
    let next: u64 = ctx.arg(2);
    let left = SCHED_SLOTS.get_ptr_mut(&prev);
    let came = SCHED_SLOTS.get_ptr_mut(&next);
    // Not `is_none() && is_none()`: that compiles to an OR of two pointers, which the
    // verifier refuses.
    let now = match (&left, &came) {
        (None, None) => return 0,
        _ => unsafe { bpf_ktime_get_ns() },
    };
    if let Some(s) = left {
        let s = unsafe { &mut *s };
        if s.state != SCHED_IDLE {
            s.times.oncpu_ns += advance(s, now);
            let preempt = ctx.arg::<u64>(0) as u8 != 0;
            s.state = if preempt {
                SCHED_RUNNABLE
            } else {
                // The thread going off is the one running: this is its kernel stack, where
                // it blocked. Only for threads in a traced call, so only with --stacks.
                if global(&STACKS) != 0 {
                    s.pending_stack = match ctx.get_stackid(&KSTACKS, 0) {
                        Ok(id) => id as i32,
                        Err(_) => {
                            count_lost(LOST_STACKS);
                            NO_STACK
                        }
                    };
                }
                SCHED_BLOCKED
            };
        }
    }
    if let Some(s) = came {
        let s = unsafe { &mut *s };
        let state = s.state;
        if state == SCHED_IDLE {
            return 0;
        }
        let spent = advance(s, now);
        // Volatile adds: as a plain `match`, LLVM indexed the three fields by the state,
        // and the verifier refuses an index it cannot bound.
        if state == SCHED_RUNNABLE || state == SCHED_BLOCKED {
            // Off without a wakeup: it never slept, and waited for the CPU.
            add(&mut s.times.runq_ns, spent);
        } else {
            add(&mut s.times.oncpu_ns, spent);
        }
        s.state = SCHED_ON_CPU;
    }
    0
}

/// `try_to_wake_up` began, in the waker. Only noted: the wakee may still be on its way
/// off another CPU, so the state changes at `sched_wakeup`, which the kernel fires after.
#[raw_tracepoint(tracepoint = "sched_waking")]
pub fn sched_waking(ctx: RawTracePointContext) -> u32 {
    let task: u64 = ctx.arg(0);
    let Some(s) = SCHED_SLOTS.get_ptr_mut(&task) else {
        return 0;
    };
    let s = unsafe { &mut *s };
    if s.state == SCHED_IDLE {
        return 0;
    }
    let id = bpf_get_current_pid_tgid();
    let tid = id as u32;
    let kind = wake_kind(tid);
    s.waking_kind = kind;
    // Now, in the waker: `sched_wakeup` can run much later, on the wakee's CPU, after an
    // IPI brings it out of idle, when the waker has long moved on.
    s.waking_ns = unsafe { bpf_ktime_get_ns() };
    if tid != 0 && (kind == WAKER_THREAD || kind == WAKER_SOFTIRQ) {
        s.waking_tid = tid;
        s.waking_pid = (id >> 32) as u32;
        s.waking_comm = comm();
        s.waking_nr = match THREADS.get_ptr(&tid) {
            // A call `-e` leaves out is no traced call.
            Some(waker) => match unsafe { (*waker).nr } {
                UNWANTED_SYSCALL => NO_SYSCALL,
                nr => nr,
            },
            None => NO_SYSCALL,
        };
    } else {
        s.waking_tid = 0;
        s.waking_pid = 0;
        s.waking_nr = NO_SYSCALL;
        s.waking_comm = [0; COMM_LEN];
    }
    0
}

/// The wakee is runnable again: a blocked stretch ends, and its waker becomes the call's.
#[raw_tracepoint(tracepoint = "sched_wakeup")]
pub fn sched_wakeup(ctx: RawTracePointContext) -> u32 {
    let task: u64 = ctx.arg(0);
    let Some(s) = SCHED_SLOTS.get_ptr_mut(&task) else {
        return 0;
    };
    let s = unsafe { &mut *s };
    if s.state == SCHED_BLOCKED {
        let now = unsafe { bpf_ktime_get_ns() };
        let spent = advance(s, now);
        s.times.blocked_ns += spent;
        if spent > s.longest_block_ns {
            s.longest_block_ns = spent;
            s.times.blocked_stack = s.pending_stack;
        }
        s.state = SCHED_RUNNABLE;
        s.times.woken_ns = s.waking_ns;
        s.times.waker_kind = s.waking_kind;
        s.times.waker_tid = s.waking_tid;
        s.times.waker_pid = s.waking_pid;
        s.times.waker_nr = s.waking_nr;
        s.times.waker_comm = s.waking_comm;
    }
    // Each wakeup has its own `sched_waking`: nothing carries over to the next.
    s.waking_kind = 0;
    0
}

/// Starts the split of a traced call that entered at `now`. In place when the thread has
/// its slot: a map update would swap in a new element on every call.
#[inline(always)]
pub(crate) fn begin_call(now: u64) {
    let task = unsafe { generated::bpf_get_current_task() };
    if let Some(s) = SCHED_SLOTS.get_ptr_mut(&task) {
        let s = unsafe { &mut *s };
        s.since_ns = now;
        s.waking_kind = 0;
        s.times.oncpu_ns = 0;
        s.times.runq_ns = 0;
        s.times.blocked_ns = 0;
        s.times.woken_ns = 0;
        s.times.waker_kind = 0;
        s.times.waker_tid = 0;
        s.times.waker_nr = NO_SYSCALL;
        s.times.blocked_stack = NO_STACK;
        s.pending_stack = NO_STACK;
        s.longest_block_ns = 0;
        // Last: the scheduler's hooks on other CPUs act on a slot only once it is in a call.
        unsafe { core::ptr::write_volatile(&mut s.state, SCHED_ON_CPU) };
        return;
    }
    let fresh = SchedSlot {
        state: SCHED_ON_CPU,
        waking_tid: 0,
        waking_nr: NO_SYSCALL,
        waking_kind: 0,
        waking_pid: 0,
        waking_comm: [0; COMM_LEN],
        waking_ns: 0,
        since_ns: now,
        pending_stack: NO_STACK,
        _pad: 0,
        longest_block_ns: 0,
        times: SchedTimes {
            oncpu_ns: 0,
            runq_ns: 0,
            blocked_ns: 0,
            woken_ns: 0,
            waker_tid: 0,
            waker_nr: NO_SYSCALL,
            waker_comm: [0; COMM_LEN],
            waker_kind: 0,
            waker_pid: 0,
            blocked_stack: NO_STACK,
            _pad: 0,
        },
    };
    // A full table leaves the call without a split: its columns are NULL, not wrong.
    let _ = SCHED_SLOTS.insert(&task, &fresh, 0);
}

/// Ends the split of the thread's call, which took `duration_ns`. `None` when the call's
/// entry was not seen with `--sched` on (or the table was full).
#[inline(always)]
pub(crate) fn end_call(duration_ns: u64) -> Option<SchedTimes> {
    let task = unsafe { generated::bpf_get_current_task() };
    let s = SCHED_SLOTS.get_ptr_mut(&task)?;
    let s = unsafe { &mut *s };
    if s.state == SCHED_IDLE {
        return None;
    }
    s.state = SCHED_IDLE;
    // What the other two leave: the sum is the duration even when a clock read on another
    // CPU ran a hair ahead of this one's.
    let off = s.times.runq_ns + s.times.blocked_ns;
    s.times.oncpu_ns = if duration_ns > off {
        duration_ns - off
    } else {
        0
    };
    Some(s.times)
}

/// Drops the split of the thread's call without a record: the call is not recorded.
#[inline(always)]
pub(crate) fn cancel_call() {
    let task = unsafe { generated::bpf_get_current_task() };
    if let Some(s) = SCHED_SLOTS.get_ptr_mut(&task) {
        unsafe { (*s).state = SCHED_IDLE };
    }
}

/// The thread is gone: its `task_struct`'s address may be reused.
#[inline(always)]
pub(crate) fn forget_thread() {
    let task = unsafe { generated::bpf_get_current_task() };
    let _ = SCHED_SLOTS.remove(&task);
}

/// The time since the state last changed, and `now` as the new mark. Clocks read on two
/// CPUs can be a hair apart: the mark never moves back, so the sum stays the duration.
#[inline(always)]
fn advance(s: &mut SchedSlot, now: u64) -> u64 {
    if now <= s.since_ns {
        return 0;
    }
    let spent = now - s.since_ns;
    s.since_ns = now;
    spent
}

#[inline(always)]
fn add(total: &mut u64, spent: u64) {
    unsafe { core::ptr::write_volatile(total, core::ptr::read_volatile(total) + spent) };
}

/// Who is waking: `WAKER_*` from what this CPU is running.
#[inline(always)]
fn wake_kind(tid: u32) -> u32 {
    let depth = |kind: u32| match WAKE_CONTEXT.get(kind) {
        Some(d) => *d,
        None => 0,
    };
    if depth(CTX_TIMER) != 0 {
        WAKER_TIMER
    } else if depth(CTX_IRQ) != 0 {
        WAKER_IRQ
    } else if depth(CTX_SOFTIRQ) != 0 {
        WAKER_SOFTIRQ
    } else if tid == 0 {
        // The idle task wakes nobody itself: an interrupt without a handler we hook (an
        // IPI, an irq_work) did.
        WAKER_IRQ
    } else {
        WAKER_THREAD
    }
}

#[inline(always)]
fn enter_context(kind: u32) -> u32 {
    if let Some(d) = WAKE_CONTEXT.get_ptr_mut(kind) {
        unsafe { *d += 1 };
    }
    0
}

/// Never below zero: the recorder may attach while an interrupt is running.
#[inline(always)]
fn leave_context(kind: u32) -> u32 {
    if let Some(d) = WAKE_CONTEXT.get_ptr_mut(kind) {
        unsafe {
            if *d > 0 {
                *d -= 1;
            }
        }
    }
    0
}

#[raw_tracepoint(tracepoint = "irq_handler_entry")]
pub fn irq_handler_entry(_ctx: RawTracePointContext) -> u32 {
    enter_context(CTX_IRQ)
}

#[raw_tracepoint(tracepoint = "irq_handler_exit")]
pub fn irq_handler_exit(_ctx: RawTracePointContext) -> u32 {
    leave_context(CTX_IRQ)
}

#[raw_tracepoint(tracepoint = "softirq_entry")]
pub fn softirq_entry(_ctx: RawTracePointContext) -> u32 {
    enter_context(CTX_SOFTIRQ)
}

#[raw_tracepoint(tracepoint = "softirq_exit")]
pub fn softirq_exit(_ctx: RawTracePointContext) -> u32 {
    leave_context(CTX_SOFTIRQ)
}

/// High-resolution timers: sleeps, and the timeouts of poll, epoll and futex.
#[raw_tracepoint(tracepoint = "hrtimer_expire_entry")]
pub fn hrtimer_expire_entry(_ctx: RawTracePointContext) -> u32 {
    enter_context(CTX_TIMER)
}

#[raw_tracepoint(tracepoint = "hrtimer_expire_exit")]
pub fn hrtimer_expire_exit(_ctx: RawTracePointContext) -> u32 {
    leave_context(CTX_TIMER)
}

/// Timer-wheel timers: coarse timeouts (`schedule_timeout`).
#[raw_tracepoint(tracepoint = "timer_expire_entry")]
pub fn timer_expire_entry(_ctx: RawTracePointContext) -> u32 {
    enter_context(CTX_TIMER)
}

#[raw_tracepoint(tracepoint = "timer_expire_exit")]
pub fn timer_expire_exit(_ctx: RawTracePointContext) -> u32 {
    leave_context(CTX_TIMER)
}
