//! A call's return: turn the slot into one record in this CPU's staging area, or count it.
use crate::file_kind::{is_open, opened_fifo};
use crate::prelude::*;

/// The exit hook where the kernel has BTF, beside the entry hook of the same kind.
#[btf_tracepoint(function = "sys_exit")]
pub fn sys_exit(ctx: BtfTracePointContext) -> u32 {
    exit(ctx.arg(0), ctx.arg(1))
}

/// The exit hook for kernels without BTF.
#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit_raw(ctx: RawTracePointContext) -> u32 {
    exit(ctx.arg(0), ctx.arg(1))
}

/// `regs`: the thread's user registers, `struct pt_regs *`.
#[inline(always)]
fn exit(regs: *const u8, ret: i64) -> u32 {
    let id = bpf_get_current_pid_tgid();
    let tid = id as u32;
    if !may_have_slot(tid) {
        return 0;
    }
    let Some(slot) = THREADS.get_ptr_mut(&tid) else {
        return 0;
    };
    let slot = unsafe { &mut *slot };
    let nr = slot.nr;
    if nr >= UNWANTED_SYSCALL {
        if nr == NO_SYSCALL && slot.flags & (SLOT_ENTERED | SLOT_IGNORED) == SLOT_ENTERED {
            not_entered(regs, ret, id, slot);
        }
        slot.nr = NO_SYSCALL;
        return 0;
    }
    slot.nr = NO_SYSCALL;
    let ret = as_the_task_sees_it(nr, ret);
    // An execve can take a thread out of scope: what `--comm` excludes stays absent.
    if slot.flags & SLOT_IGNORED != 0 {
        if global(&SCHED) != 0 {
            crate::sched::cancel_call();
        }
        return 0;
    }
    // Before the clock: see `Stage::begin`.
    let mut stage = Stage::begin();
    let now = unsafe { bpf_ktime_get_ns() };
    let duration_ns = now.wrapping_sub(slot.enter_ns);
    // Ended before any filter can return, so that no split runs on past its call.
    let sched = if global(&SCHED) != 0 {
        crate::sched::end_call(duration_ns)
    } else {
        None
    };
    let traced = slot.info & 1 != 0;
    let context = slot.info & 2 != 0;
    // Not asked for by -e: sent only for the fd bookkeeping, and not counted.
    let mut flags = if traced { 0 } else { FLAG_CONTEXT_ONLY };
    if traced && counted_only(id, nr, ret, duration_ns) {
        if !context {
            return 0;
        }
        flags = FLAG_CONTEXT_ONLY;
    }
    flags |= take_fd_lost(slot);
    let event = SyscallEvent {
        enter_ns: slot.enter_ns,
        duration_ns,
        ret,
        args: slot.args,
        pid: (id >> 32) as u32,
        tid,
        nr,
        flags,
        comm: slot_comm(slot),
    };
    // Only rows carry it.
    let sched = sched.filter(|_| flags & FLAG_CONTEXT_ONLY == 0);
    // Sent before the record, so that a reader that has the record has its stack too. An
    // exec that succeeded returns into a new program, which has no caller yet.
    if global(&STACKS) != 0
        && flags & FLAG_CONTEXT_ONLY == 0
        && duration_ns >= global_u64(&STACK_MIN_NS)
        && !(ret == 0 && (nr as u64 == NR_EXECVE || nr as u64 == NR_EXECVEAT))
    {
        crate::user_stack::send(regs, id, slot.enter_ns, duration_ns);
    }
    let trailer = if sched.is_some() {
        size_of::<SchedTimes>()
    } else {
        0
    };
    let sent = if slot.extra_kind == EXTRA_NONE as u32 {
        match stage.reserve(size_of::<SyscallEvent>() + trailer) {
            Some(at) => {
                unsafe { at.cast::<SyscallEvent>().write(event) };
                if let Some(times) = sched {
                    unsafe {
                        at.add(size_of::<SyscallEvent>())
                            .cast::<SchedTimes>()
                            .write(times)
                    };
                }
                true
            }
            None => false,
        }
    } else {
        match stage.reserve(size_of::<DetailedEvent>() + trailer) {
            Some(at) => {
                if let Some(times) = sched {
                    unsafe {
                        at.add(size_of::<DetailedEvent>())
                            .cast::<SchedTimes>()
                            .write(times)
                    };
                }
                let out = unsafe { &mut *at.cast::<DetailedEvent>() };
                out.event = event;
                out.extra_kind = slot.extra_kind;
                out.extra_len = slot.extra_len;
                out.extra_flags = slot.extra_flags;
                out.second_len = 0;
                let kind = slot.extra_kind as u8;
                if kind == EXTRA_PATH_PAIR {
                    out.extra = slot.extra;
                    let arg = (slot.info >> 8) as u8;
                    read_path_pair(out, arg, &slot.args, ret);
                } else if kind == EXTRA_SOCKADDR_OUT || kind == EXTRA_FD_PAIR {
                    out.extra_len = 0;
                    out.extra_flags = 0;
                    let arg = (slot.info >> 8) as u8;
                    read_exit_extra(out, slot, arg, ret);
                } else if kind == EXTRA_PATH
                    && slot.extra_flags & EXTRA_UNREADABLE != 0
                    && !(ret == 0 && is_exec(nr as u64))
                {
                    // The string's page was not resident at entry; the kernel has read it
                    // since, so it is now. Not after an exec that succeeded: the memory is
                    // the new program's (`sched_process_exec` gave execve the kernel's
                    // name for the file instead); a failed one kept the caller's.
                    let arg = (slot.info >> 8) as u8;
                    read_path(out, arg_at(&slot.args, arg));
                } else {
                    out.extra = slot.extra;
                }
                if kind == EXTRA_PATH && ret >= 0 && is_open(nr as u64) && opened_fifo(ret) {
                    out.event.flags |= FLAG_OPENED_FIFO;
                }
                true
            }
            None => false,
        }
    };
    if sent {
        stage.commit();
    }
    drop(stage);
    if !sent {
        not_sent(slot, flags, context, id, nr, ret, duration_ns);
    }
    0
}

/// Whether `--min-duration` or `--failed` leaves the call out: then it is counted in the
/// aggregates here, and no row.
#[inline(always)]
fn counted_only(id: u64, nr: u32, ret: i64, duration_ns: u64) -> bool {
    let (reason, unkeyed) = if duration_ns < global_u64(&MIN_DURATION_NS) {
        (REASON_BELOW_MIN_DURATION, UNKEYED_BELOW_MIN_DURATION)
    } else if global(&FAILED_ONLY) != 0 && errno_of(ret) == 0 {
        (REASON_NOT_FAILED, UNKEYED_NOT_FAILED)
    } else {
        return false;
    };
    aggregate(
        &unsent_key(id, nr, ret, duration_ns, reason),
        duration_ns,
        unkeyed,
    );
    true
}

/// [`FLAG_FD_STATE_LOST`] if the thread lost an fd change the record must tell of, taken
/// off the slot: [`not_sent`] puts it back if the record is lost too.
#[inline(always)]
fn take_fd_lost(slot: &mut ThreadSlot) -> u32 {
    if slot.flags & SLOT_FD_LOST == 0 {
        return 0;
    }
    slot.flags &= !SLOT_FD_LOST;
    FLAG_FD_STATE_LOST
}

/// The record found no room in the staging area: a lost fd change, or the news of an
/// earlier one, waits for the next record, and a row is counted as lost (already counted
/// if a filter left it out; out of scope if -e did).
#[inline(always)]
fn not_sent(
    slot: &mut ThreadSlot,
    flags: u32,
    context: bool,
    id: u64,
    nr: u32,
    ret: i64,
    duration_ns: u64,
) {
    if context || flags & FLAG_FD_STATE_LOST != 0 {
        slot.flags |= SLOT_FD_LOST;
    }
    if flags & FLAG_CONTEXT_ONLY == 0 {
        count_lost(LOST_RING_FULL);
        let key = unsent_key(id, nr, ret, duration_ns, REASON_RING_FULL);
        aggregate(&key, duration_ns, UNKEYED_RING_FULL);
    }
}

/// A call the entry hook never saw, returning in a thread that has entered calls since its
/// slot was made: the kernel stopped it before the entry tracepoint and made its result
/// itself. seccomp does so (`SECCOMP_RET_ERRNO`, `TRAP`, a supervisor's answer), and so does
/// a `PTRACE_SYSEMU` tracer. A container's or a service's seccomp profile refusing a call
/// left no row and no count (helper-95). Recorded at its return, with duration 0 and
/// [`FLAG_NOT_RUN`], its number and arguments read from the registers; no path or address
/// (the entry read none), no `--sched` times and no stack.
#[inline(always)]
fn not_entered(regs: *const u8, ret: i64, id: u64, slot: &mut ThreadSlot) {
    let Some((nr, args)) = call_in_regs(regs) else {
        return;
    };
    let ret = as_the_task_sees_it(nr as u32, ret);
    if syscall_info(nr).traced == 0 {
        return;
    }
    let nr = nr as u32;
    if counted_only(id, nr, ret, 0) {
        return;
    }
    // Before the clock: see `Stage::begin`.
    let mut stage = Stage::begin();
    let now = unsafe { bpf_ktime_get_ns() };
    let flags = FLAG_NOT_RUN | take_fd_lost(slot);
    let event = SyscallEvent {
        enter_ns: now,
        duration_ns: 0,
        ret,
        args,
        pid: (id >> 32) as u32,
        tid: id as u32,
        nr,
        flags,
        comm: slot_comm(slot),
    };
    match stage.reserve(size_of::<SyscallEvent>()) {
        Some(at) => {
            unsafe { at.cast::<SyscallEvent>().write(event) };
            stage.commit();
        }
        None => not_sent(slot, flags, false, id, nr, ret, 0),
    }
}

/// A 32-bit task's return as it sees it, a 32-bit value. The kernel stores most calls'
/// returns sign-extended, but `sigreturn` and `rt_sigreturn` restore eax from the signal
/// frame, zero-extended: the EINTR of a read a handler interrupted came back as 4294967292,
/// a success to every query and to `--failed` (helper-99). As strace reads i386 returns:
/// the upper half zero and the lower one -4095..-1 is that error. No address a 32-bit call
/// returns is one (mmap2's are page-aligned, so at most 0xfffff000).
#[inline(always)]
fn as_the_task_sees_it(nr: u32, ret: i64) -> i64 {
    let compat = (COMPAT_BASE..UNWANTED_SYSCALL).contains(&nr);
    if compat && (0xffff_f001..=0xffff_ffff).contains(&ret) {
        ret as i32 as i64
    } else {
        ret
    }
}
