//! Process lifecycle: new tasks, renames, exec and exit, sent through the same staging areas.
use crate::prelude::*;

#[inline(always)]
pub(crate) fn send_process_event(
    kind: u32,
    child_tid: u32,
    clone_flags: u64,
    clone_enter_ns: u64,
    group_dead: u32,
    args_of: u32,
    exit_status: u32,
    bprm: *const u8,
) {
    let id = bpf_get_current_pid_tgid();
    // Before the clock: see `Stage::begin`.
    let mut stage = Stage::begin();
    let ts_ns = unsafe { bpf_ktime_get_ns() };
    let Some(at) = stage.reserve_for_process(size_of::<ProcessEvent>()) else {
        // The processes table misses what it said; no syscall was lost.
        count_lost(LOST_PROCESS_EVENTS);
        return;
    };
    // Field by field: the record is too large for the BPF stack.
    let out = unsafe { &mut *at.cast::<ProcessEvent>() };
    out.ts_ns = ts_ns;
    out.clone_flags = clone_flags;
    out.clone_enter_ns = clone_enter_ns;
    out.cgroup_id = unsafe { generated::bpf_get_current_cgroup_id() };
    out.kind = kind;
    out.pid = (id >> 32) as u32;
    out.tid = id as u32;
    out.child_tid = child_tid;
    out.uid = bpf_get_current_uid_gid() as u32;
    out.group_dead = group_dead;
    out.comm = comm();
    out.args_len = 0;
    out.exit_status = exit_status;
    if kind == PROCESS_EXEC {
        if let Some(saved) = EXEC_ARGS.get_ptr(&args_of) {
            let saved = unsafe { &*saved };
            let len = saved.len as usize;
            unsafe {
                core::ptr::copy_nonoverlapping(saved.data.as_ptr(), out.args.as_mut_ptr(), ARGS_LEN)
            };
            out.args_len = if len > ARGS_LEN {
                ARGS_LEN as u32
            } else {
                len as u32
            };
        }
        let _ = EXEC_ARGS.remove(&args_of);
        out.program_len = exec_program(&mut out.program, bprm);
    }
    stage.commit();
}

/// Runs in the parent: a traced thread's new thread or process is traced from its first
/// instruction, before it can make a call. In trace-all mode slots are made lazily instead.
#[tracepoint(category = "task", name = "task_newtask")]
pub fn task_newtask(ctx: TracePointContext) -> u32 {
    let id = bpf_get_current_pid_tgid();
    let parent = id as u32;
    if !followed(parent, (id >> 32) as u32) {
        return 0;
    }
    let Ok(child) = (unsafe { ctx.read_at::<u32>(global(&NEWTASK_PID_OFFSET) as usize) }) else {
        return 0;
    };
    let flags = unsafe { ctx.read_at::<u64>(global(&NEWTASK_FLAGS_OFFSET) as usize) }.unwrap_or(0);
    // The parent is in its clone call, whose entry its slot holds: the kernel copied the
    // fd table since then.
    let (inherited, clone_enter_ns) = match THREADS.get_ptr(&parent) {
        Some(slot) => unsafe {
            let entered = match (*slot).nr {
                NO_SYSCALL | UNWANTED_SYSCALL => 0,
                _ => (*slot).enter_ns,
            };
            ((*slot).flags, entered)
        },
        None => (0, 0),
    };
    if global(&TRACE_ALL) == 0 {
        // The child starts with its parent's name and cgroup as they are now, and its scope
        // is decided on them, as every slot's is when it is made: the parent's was decided
        // on the name it had then, and a parent that renamed itself to the `--comm` name
        // had its children left out. The name is the child's own to ask for; IDLE already
        // has no other flag.
        // `clone3(CLONE_INTO_CGROUP)` puts the child in a cgroup of the caller's choosing:
        // under `--cgroup` it asks at its first call, as after a move (helper-94: one put
        // outside was recorded whole).
        let into_cgroup = flags & CLONE_INTO_CGROUP != 0 && global_u64(&FILTER_CGROUP_ID) != 0;
        let flags = (inherited & !(SLOT_COMM_KNOWN | SLOT_IGNORED | SLOT_ENTERED))
            | scope_flags_after(inherited & SLOT_IGNORED != 0);
        mark_slot(child, true);
        if THREADS.insert(&child, &IDLE, 0).is_err() {
            // The thread's calls will go unseen: counted once, as a thread.
            count_lost(LOST_THREAD_TABLE_FULL);
            count_lost(UNKEYED_THREAD_TABLE_FULL);
        } else if (flags != 0 || into_cgroup)
            && let Some(slot) = THREADS.get_ptr_mut(&child)
        {
            // Not yet running: nothing reads the slot before this.
            unsafe {
                (*slot).flags = flags;
                if into_cgroup {
                    (*slot).scope_gen = !scope_generation();
                }
            };
        }
    }
    // A thread shares its maker's fds and cwd unless its clone said otherwise (a raw
    // clone; pthreads always share): then calls followed by process would be named after
    // the other thread's files.
    let apart =
        flags & CLONE_THREAD != 0 && flags & (CLONE_FILES | CLONE_FS) != CLONE_FILES | CLONE_FS;
    if flags & CLONE_THREAD == 0 || apart {
        send_process_event(
            if apart {
                PROCESS_THREAD_APART
            } else {
                PROCESS_NEW
            },
            child,
            flags,
            clone_enter_ns,
            0,
            0,
            EXIT_STATUS_UNKNOWN,
            core::ptr::null(),
        );
    }
    0
}

/// prctl(PR_SET_NAME), a write to /proc/PID/comm, or an exec renamed a thread, maybe from
/// another thread on another CPU. This hands the new name over without touching what the
/// thread itself writes (its flags, its cached name), so nothing it does is undone.
#[tracepoint(category = "task", name = "task_rename")]
pub fn task_rename(ctx: TracePointContext) -> u32 {
    let Ok(tid) = (unsafe { ctx.read_at::<u32>(global(&RENAME_PID_OFFSET) as usize) }) else {
        return 0;
    };
    let Ok(name) =
        (unsafe { ctx.read_at::<[u8; COMM_LEN]>(global(&RENAME_NEWCOMM_OFFSET) as usize) })
    else {
        return 0;
    };
    if let Some(slot) = THREADS.get_ptr_mut(&tid) {
        // Two renames of one thread at once may bump the generation once: it still moves,
        // and the thread takes the name stored last.
        unsafe {
            core::ptr::write_volatile(&mut (*slot).renamed_to, name);
            let generation = core::ptr::read_volatile(&(*slot).rename_gen);
            core::ptr::write_volatile(&mut (*slot).rename_gen, generation.wrapping_add(1));
        }
    }
    0
}

/// An execve from a thread other than the leader makes that thread the leader: it returns
/// from the call with the leader's tid (whose slot the leader's exit already removed).
/// Moving the slot keeps the execve's record and keeps the process traced. A new program
/// has a new name, so `--comm` is asked again.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sched_process_exec(ctx: RawTracePointContext) -> u32 {
    let id = bpf_get_current_pid_tgid();
    let tid = id as u32;
    let old_tid: u32 = ctx.arg::<u64>(1) as u32;
    if old_tid != tid {
        if let Some(slot) = THREADS.get_ptr(&old_tid) {
            mark_slot(tid, true);
            if THREADS.insert(&tid, unsafe { &*slot }, 0).is_err() {
                count_lost(LOST_THREAD_TABLE_FULL);
                count_lost(UNKEYED_THREAD_TABLE_FULL);
            }
            // The old id's mark stays: that id is free already (see `may_have_slot`).
            let _ = THREADS.remove(&old_tid);
        }
    }
    if !followed(tid, (id >> 32) as u32) {
        return 0;
    }
    let bprm: *const u8 = ctx.arg(2);
    if let Some(slot) = THREADS.get_ptr_mut(&tid) {
        let slot = unsafe { &mut *slot };
        // A second exec back into scope named fds after files the thread had long closed
        // while it was left out (helper-89). A loss not yet told is kept, too.
        slot.flags = scope_flags_after(slot.flags & SLOT_IGNORED != 0)
            | SLOT_COMM_KNOWN
            | (slot.flags & SLOT_FD_LOST);
        // The new program's name is set by now, and renames before the exec are past (a
        // moved slot may hold one the thread never took).
        slot.seen_gen = unsafe { core::ptr::read_volatile(&slot.rename_gen) };
        slot.comm = comm();
        execve_path_from_kernel(slot, bprm);
    }
    exec_args_from_stack(old_tid, bprm);
    send_process_event(PROCESS_EXEC, 0, 0, 0, 0, old_tid, EXIT_STATUS_UNKNOWN, bprm);
    0
}

/// The field at the BTF offset `at` of the kernel structure at `base`; `None` where the
/// BTF did not give the offset (0), or the read failed.
#[inline(always)]
fn kernel_field<T>(base: *const u8, at: &u32) -> Option<T> {
    let at = global(at);
    if at == 0 || base.is_null() {
        return None;
    }
    unsafe { bpf_probe_read_kernel(base.wrapping_add(at as usize).cast::<T>()) }.ok()
}

/// Copies the string that the pointer field at `at` of `base` points to into `dst` (at
/// most `len` bytes, its NUL included); the bytes copied, NUL included, or `None`.
#[inline(always)]
fn kernel_string_field(base: *const u8, at: &u32, dst: *mut u8, len: u32) -> Option<u32> {
    let name: u64 = kernel_field(base, at)?;
    let n = unsafe {
        generated::bpf_probe_read_kernel_str(dst.cast(), len, name as *const core::ffi::c_void)
    };
    (n > 0).then_some(n as u32)
}

/// The file the kernel ran, as it was named (`bprm->interp`), into `out`; its length, 0 when
/// unknown. /proc/PID/exe says the same while the process lives; this is for one that is
/// gone before the event is read, and it is what the kernel opened at the exec, not what
/// the path holds later.
#[inline(always)]
fn exec_program(out: &mut [u8; PROGRAM_LEN], bprm: *const u8) -> u32 {
    kernel_string_field(
        bprm,
        &BINPRM_INTERP_OFFSET,
        out.as_mut_ptr(),
        PROGRAM_LEN as u32,
    )
    .map_or(0, |n| n - 1)
}

/// Saves, for the exec event, the argument vector the kernel built on the new program's
/// stack: the current mm is the new program's by now, and `bprm->p` is its stack pointer,
/// where `argc` and then `argv` are, 8 bytes each, or 4 for a 32-bit program. A stack that
/// starts with neither width of `bprm->argc` is not that layout, and is left alone.
#[inline(always)]
fn exec_args_from_stack(args_of: u32, bprm: *const u8) {
    let (Some(sp), Some(argc)) = (
        kernel_field::<u64>(bprm, &BINPRM_P_OFFSET),
        kernel_field::<i32>(bprm, &BINPRM_ARGC_OFFSET),
    ) else {
        return;
    };
    let Ok(on_stack) = (unsafe { aya_ebpf::helpers::bpf_probe_read_user(sp as *const u64) }) else {
        return;
    };
    if on_stack == argc as u64 {
        save_exec_args(args_of, sp + 8, false);
    } else if on_stack as u32 == argc as u32 {
        save_exec_args(args_of, sp + 4, true);
    }
}

/// An exec whose path the entry program could not read (a page of the caller's never
/// touched) takes the name the kernel opened, `bprm->filename`: the path as the caller gave
/// it, except for an execveat relative to a descriptor, which the kernel names
/// `/dev/fd/N/` and then the caller's name: marked, so that user space takes that name.
/// `/dev/fd/N` alone is the kernel's name for an empty path (`AT_EMPTY_PATH`, fexecve):
/// the caller passed "", which user space needs to give the row its fd.
#[inline(always)]
fn execve_path_from_kernel(slot: &mut ThreadSlot, bprm: *const u8) {
    let nr = slot.nr as u64;
    if !is_exec(nr) || slot.extra_kind != EXTRA_PATH as u32 || slot.extra_flags != EXTRA_UNREADABLE
    {
        return;
    }
    let dst = slot.extra.as_mut_ptr();
    let Some(n) = kernel_string_field(bprm, &BINPRM_FILENAME_OFFSET, dst, EXTRA_LEN as u32) else {
        return;
    };
    let at_fd =
        (nr == NR_EXECVEAT || nr == NR_COMPAT_EXECVEAT) && slot.args[0] as u32 as i32 != AT_FDCWD;
    if at_fd && slot.extra[..8] == *b"/dev/fd/" {
        if digits_only(&slot.extra, 8, n as usize - 1) {
            slot.extra_len = 0;
            slot.extra_flags = 0;
        } else {
            // `/dev/fd/N/` and the caller's own name, which user space takes (helper-95:
            // a successful execveat(dirfd, "bin/true") had no path).
            slot.extra_len = (n - 1) as u32;
            slot.extra_flags = EXTRA_FD_PREFIXED
                | if n as usize >= EXTRA_LEN {
                    EXTRA_TRUNCATED
                } else {
                    0
                };
        }
        return;
    }
    slot.extra_len = (n - 1) as u32;
    slot.extra_flags = if n as usize >= EXTRA_LEN {
        EXTRA_TRUNCATED
    } else {
        0
    };
}

/// Whether `s[from..end]` is one to ten decimal digits: an fd's number.
#[inline(always)]
fn digits_only(s: &[u8; EXTRA_LEN], from: usize, end: usize) -> bool {
    if end <= from || end > from + 10 {
        return false;
    }
    for i in from..from + 10 {
        if i >= end {
            break;
        }
        if !s[i].is_ascii_digit() {
            return false;
        }
    }
    true
}

/// Fires in the dying thread: its slot goes with it, so the table never holds the dead.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(ctx: RawTracePointContext) -> u32 {
    let group_dead = ctx.arg::<u64>(1) as u8 as u32;
    thread_exited(ctx.arg(0), group_dead != 0)
}

/// `sched_process_exit` on kernels before 6.16, whose tracepoint has no `group_dead`
/// argument: reading it would make the kernel refuse the program. The leader's exit
/// stands for the process's; with exit_group (how processes end) every thread exits
/// within the same call.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit_leader(ctx: RawTracePointContext) -> u32 {
    let id = bpf_get_current_pid_tgid();
    thread_exited(ctx.arg(0), id as u32 == (id >> 32) as u32)
}

/// `task`: the dying thread's `struct task_struct *` (the tracepoint's first argument).
#[inline(always)]
pub(crate) fn thread_exited(task: *const u8, group_dead: bool) -> u32 {
    let id = bpf_get_current_pid_tgid();
    let tid = id as u32;
    if group_dead && followed(tid, (id >> 32) as u32) {
        send_process_event(
            PROCESS_EXIT,
            0,
            0,
            0,
            1,
            0,
            exit_status(task),
            core::ptr::null(),
        );
    }
    let _ = THREADS.remove(&tid);
    mark_slot(tid, false);
    if global(&SCHED) != 0 {
        crate::sched::forget_thread();
    }
    // An execve that failed leaves its arguments behind.
    let _ = EXEC_ARGS.remove(&tid);
    0
}

/// The dying task's `exit_code`: `do_exit` stores it before this tracepoint fires, and a
/// whole process's exit (exit_group, a fatal signal) gives every thread the same one.
#[inline(always)]
fn exit_status(task: *const u8) -> u32 {
    match kernel_field::<i32>(task, &TASK_EXIT_CODE_OFFSET) {
        // A wait(2) status is 16 bits; anything else is not one.
        Some(status) if (0..=0xffff).contains(&status) => status as u32,
        _ => EXIT_STATUS_UNKNOWN,
    }
}
