//! A call's entry: find or make the thread's slot, and store what the exit will send.
use crate::prelude::*;

/// The entry hook where the kernel has BTF: the arguments are read with plain loads. With
/// the exit hook of the same kind it took about 90 ns off each call of the getppid loop
/// (BENCHMARKS.md).
#[btf_tracepoint(function = "sys_enter")]
pub fn sys_enter(ctx: BtfTracePointContext) -> u32 {
    let regs: *const u64 = ctx.arg(0);
    // SAFETY: argument 0 of the sys_enter tracepoint is its `struct pt_regs *`.
    enter(
        ctx.arg(1),
        || unsafe { is_compat_btf(regs) },
        |compat| unsafe {
            match compat {
                true => compat_args_btf(regs),
                false => syscall_args_btf(regs),
            }
        },
    )
}

/// The entry hook for kernels without BTF (the recorder picks one of the two).
#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter_raw(ctx: RawTracePointContext) -> u32 {
    let regs: *const [u64; 15] = ctx.arg(0);
    enter(
        ctx.arg(1),
        || is_compat(regs.cast()),
        |compat| match compat {
            true => compat_args(regs),
            false => syscall_args(regs),
        },
    )
}

/// `is_compat` and `read_args` are called only for the traced threads' calls: most of the
/// host's are not.
#[inline(always)]
fn enter(
    nr: u64,
    is_compat: impl FnOnce() -> bool,
    read_args: impl FnOnce(bool) -> [u64; 6],
) -> u32 {
    let id = bpf_get_current_pid_tgid();
    let tid = id as u32;
    // Outside trace-all, a thread without a mark has no slot and gets none here.
    if global(&TRACE_ALL) == 0 && !may_have_slot(tid) {
        return 0;
    }
    let slot = match THREADS.get_ptr_mut(&tid) {
        Some(slot) => slot,
        None => {
            if global(&TRACE_ALL) == 0 || (id >> 32) as u32 == global(&SELF_TGID) {
                return 0;
            }
            let flags = scope_flags();
            mark_slot(tid, true);
            // Inserted from .rodata: a slot does not fit on the BPF stack beside the rest.
            if THREADS.insert(&tid, &IDLE, 0).is_err() {
                if flags & SLOT_IGNORED == 0 {
                    count_lost(LOST_THREAD_TABLE_FULL);
                    let key = AggregateKey {
                        pid: (id >> 32) as u32,
                        nr: nr as u32,
                        errno: ERRNO_UNKNOWN,
                        bucket: BUCKET_UNKNOWN,
                        reason: REASON_THREAD_TABLE_FULL,
                    };
                    aggregate(&key, 0, UNKEYED_THREAD_TABLE_FULL);
                }
                return 0;
            }
            match THREADS.get_ptr_mut(&tid) {
                Some(slot) => {
                    unsafe { (*slot).flags = flags };
                    slot
                }
                None => return 0,
            }
        }
    };
    let slot = unsafe { &mut *slot };
    // An execve can bring an ignored thread into scope (`--comm` names the new program):
    // its entry is kept, and the exit sends it only if the exec did.
    if slot.flags & SLOT_IGNORED != 0 {
        if nr != NR_EXECVE && nr != NR_EXECVEAT && !came_into_scope(slot) {
            return 0;
        }
    } else if left_scope(slot) {
        return 0;
    }
    slot.flags |= SLOT_ENTERED;
    // A number past the i386 table is not moved: it stays past every table.
    let compat = nr < COMPAT_BASE as u64 && is_compat();
    let nr = if compat { nr + COMPAT_BASE as u64 } else { nr };
    let mut info = syscall_info(nr);
    if info.traced == 0 && info.context == 0 {
        slot.nr = UNWANTED_SYSCALL;
        return 0;
    }
    let args = read_args(compat);
    // ioctl(FIOCLEX) and (FIONCLEX) set an fd's close-on-exec as fcntl(F_SETFD) does, and
    // the fd table must see them where -e, --min-duration or --failed leave ioctl out: a
    // fd it believed kept across an exec was named after a file the kernel had closed.
    // ioctl's other commands are no one's context.
    if info.context == CONTEXT_CLOEXEC_IOCTL {
        let cmd = args[1] as u32;
        info.context = u8::from(cmd == FIOCLEX || cmd == FIONCLEX);
        if info.traced == 0 && info.context == 0 {
            slot.nr = UNWANTED_SYSCALL;
            return 0;
        }
    }
    if nr == NR_EXIT || nr == NR_EXIT_GROUP || nr == NR_COMPAT_EXIT || nr == NR_COMPAT_EXIT_GROUP {
        // Before the clock: see `Stage::begin`.
        let mut stage = Stage::begin();
        let now = unsafe { bpf_ktime_get_ns() };
        let pid = (id >> 32) as u32;
        // Under --failed an exit is not a failure: counted, and sent only so that user space
        // learns the exit code.
        let mut flags = FLAG_NO_RETURN;
        if info.traced == 0 {
            // Left out by -e: sent for the exit code only, and not counted.
            flags |= FLAG_CONTEXT_ONLY;
        } else if global(&FAILED_ONLY) != 0 {
            flags |= FLAG_CONTEXT_ONLY;
            let key = AggregateKey {
                pid,
                nr: nr as u32,
                errno: ERRNO_UNKNOWN,
                bucket: BUCKET_UNKNOWN,
                reason: REASON_NOT_FAILED,
            };
            aggregate(&key, 0, UNKEYED_NOT_FAILED);
        }
        match stage.reserve(size_of::<SyscallEvent>()) {
            Some(at) => {
                unsafe {
                    at.cast::<SyscallEvent>().write(SyscallEvent {
                        enter_ns: now,
                        duration_ns: 0,
                        ret: 0,
                        args,
                        pid,
                        tid,
                        nr: nr as u32,
                        flags,
                        comm: slot_comm(slot),
                    })
                };
                stage.commit();
            }
            None if flags & FLAG_CONTEXT_ONLY == 0 => {
                count_lost(LOST_RING_FULL);
                let key = AggregateKey {
                    pid,
                    nr: nr as u32,
                    errno: ERRNO_UNKNOWN,
                    bucket: BUCKET_UNKNOWN,
                    reason: REASON_RING_FULL,
                };
                aggregate(&key, 0, UNKEYED_RING_FULL);
            }
            None => {}
        }
        slot.nr = NO_SYSCALL;
        return 0;
    }
    let now = unsafe { bpf_ktime_get_ns() };
    // Where the kernel's layout is known the exec event reads what it copied instead.
    if global(&BINPRM_P_OFFSET) == 0 {
        if nr == NR_EXECVE {
            save_exec_args(tid, args[1], false);
        } else if nr == NR_EXECVEAT {
            save_exec_args(tid, args[2], false);
        }
    }
    slot.enter_ns = now;
    slot.args = args;
    slot.nr = nr as u32;
    slot.info = info.traced as u32 | (info.context as u32) << 1 | (info.arg as u32) << 8;
    slot.extra_kind = EXTRA_NONE as u32;
    if info.extra != EXTRA_NONE {
        read_entry_extra(slot, info, &args);
    }
    if global(&SCHED) != 0 && info.traced != 0 {
        crate::sched::begin_call(now);
    }
    0
}
