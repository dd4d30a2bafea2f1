//! Kernel side of tracepost.
//!
//! `sys_enter` stores the entry time, arguments and any context (a path, a socket address)
//! in the calling thread's slot, `sys_exit` turns the slot into one record in the ring
//! buffer. Process lifecycle events go through the same ring. A thread is traced
//! exactly when it has a slot, so the filter costs no extra lookup: one hash lookup on each
//! side of a call. Slots are inherited on fork and dropped on exit, which is how a command's
//! descendants are followed and how dead threads stop costing memory.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::BPF_RB_NO_WAKEUP,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid, bpf_ktime_get_ns,
        bpf_probe_read_kernel, generated,
    },
    macros::{map, raw_tracepoint, tracepoint},
    maps::{Array, HashMap, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{RawTracePointContext, TracePointContext},
};
use tracepost_common::{
    ARG_MAX_LEN, ARGS_LEN, AggregateKey, AggregateValue, BUCKET_UNKNOWN, COMM_LEN, DetailedEvent,
    ERRNO_UNKNOWN, EXEC_ARGS_MASK, EXTRA_CLONE_ARGS, EXTRA_FD_PAIR, EXTRA_LEN, EXTRA_NONE,
    EXTRA_PATH, EXTRA_SOCKADDR_IN, EXTRA_SOCKADDR_OUT, EXTRA_TRUNCATED, EXTRA_UNREADABLE, ExecArgs,
    FLAG_CONTEXT_ONLY, FLAG_FD_STATE_LOST, FLAG_NO_RETURN, LOST_COUNTERS, LOST_PROCESS_EVENTS,
    LOST_RING_FULL, LOST_THREAD_TABLE_FULL, MAX_ARGS, MAX_SYSCALL_NR, NO_SYSCALL, PROCESS_EXEC,
    PROCESS_EXIT, PROCESS_NEW, ProcessEvent, REASON_BELOW_MIN_DURATION, REASON_NOT_FAILED,
    REASON_RING_FULL, REASON_THREAD_TABLE_FULL, SLOT_COMM_KNOWN, SLOT_FD_LOST, SLOT_IGNORED,
    SyscallEvent, SyscallInfo, ThreadSlot, UNKEYED_BELOW_MIN_DURATION, UNKEYED_NOT_FAILED,
    UNKEYED_RING_FULL, UNKEYED_THREAD_TABLE_FULL,
};

#[cfg(not(bpf_target_arch = "x86_64"))]
compile_error!("only x86_64 is supported: the pt_regs argument layout below is x86_64's");

/// x86_64 `exit` and `exit_group`: they never reach sys_exit, so they are sent at entry.
const NR_EXIT: u64 = 60;
const NR_EXIT_GROUP: u64 = 231;
const NR_EXECVE: u64 = 59;
const NR_EXECVEAT: u64 = 322;
const CLONE_THREAD: u64 = 0x0001_0000;
/// Socket addresses are at most `sizeof(struct sockaddr_storage)`.
const SOCKADDR_MAX: u32 = 128;

/// Set by the recorder at load time (`.rodata`, so reading them costs no map lookup).
#[unsafe(no_mangle)]
static TRACE_ALL: u32 = 0;
#[unsafe(no_mangle)]
static SELF_TGID: u32 = 0;
/// `--min-duration`: shorter calls are counted in `AGGREGATES` instead of sent.
#[unsafe(no_mangle)]
static MIN_DURATION_NS: u64 = 0;
/// `--failed`: successful calls are counted in `AGGREGATES` instead of sent.
#[unsafe(no_mangle)]
static FAILED_ONLY: u32 = 0;
/// `--comm`: only threads whose name is a key of `COMMS` are recorded.
#[unsafe(no_mangle)]
static FILTER_COMM: u32 = 0;
/// `--cgroup`: only tasks in this cgroup v2 (its id, at this depth) or below are recorded.
#[unsafe(no_mangle)]
static FILTER_CGROUP_ID: u64 = 0;
#[unsafe(no_mangle)]
static FILTER_CGROUP_LEVEL: u32 = 0;
/// Offsets in the `task/task_newtask` record; they can move between kernels.
#[unsafe(no_mangle)]
static NEWTASK_PID_OFFSET: u32 = 8;
#[unsafe(no_mangle)]
static NEWTASK_FLAGS_OFFSET: u32 = 32;
/// Offsets of `pid` and `newcomm` in the `task/task_rename` record.
#[unsafe(no_mangle)]
static RENAME_PID_OFFSET: u32 = 8;
#[unsafe(no_mangle)]
static RENAME_NEWCOMM_OFFSET: u32 = 28;

/// A fresh slot, in `.rodata`: map updates copy from it instead of from the stack.
static IDLE: ThreadSlot = ThreadSlot::IDLE;

/// Sized by the recorder (`EbpfLoader::set_max_entries`) before load.
#[map]
static THREADS: HashMap<u32, ThreadSlot> = HashMap::with_max_entries(65536, 0);

/// Sized by the recorder before load.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(16 * 1024 * 1024, 0);

#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(LOST_COUNTERS, 0);

/// Calls not sent as detail, counted exactly. Touched only off the common path (a full
/// ring, a call a detail filter leaves out, a full thread table). Sized by the recorder.
#[map]
static AGGREGATES: PerCpuHashMap<AggregateKey, AggregateValue> =
    PerCpuHashMap::with_max_entries(16384, 0);

/// Per syscall number: whether `-e` keeps it, and what context to read. One array lookup
/// per call serves both.
#[map]
static SYSCALLS: Array<SyscallInfo> = Array::with_max_entries(MAX_SYSCALL_NR, 0);

/// execve's arguments, read at entry (while the old program's memory still holds them) and
/// sent with the exec event. Keyed by thread; removed at exec and at exit.
#[map]
static EXEC_ARGS: HashMap<u32, ExecArgs> = HashMap::with_max_entries(4096, 0);

/// Where execve's arguments are gathered before they are stored per thread.
#[map]
static EXEC_SCRATCH: PerCpuArray<ExecArgs> = PerCpuArray::with_max_entries(1, 0);

/// `--comm` names, NUL-padded like the kernel's.
#[map]
static COMMS: HashMap<[u8; COMM_LEN], u8> = HashMap::with_max_entries(64, 0);

#[inline(always)]
fn global(v: &u32) -> u32 {
    // The verifier only sees the value the loader patched in if the load really happens.
    unsafe { core::ptr::read_volatile(v) }
}

#[inline(always)]
fn global_u64(v: &u64) -> u64 {
    unsafe { core::ptr::read_volatile(v) }
}

/// Adds one call to its aggregate, or to the `unkeyed` counter when the table is full, so
/// that the call is counted either way.
#[inline(always)]
fn aggregate(key: &AggregateKey, duration_ns: u64, unkeyed: u32) {
    if let Some(value) = AGGREGATES.get_ptr_mut(key) {
        // Per-CPU value, and tracepoint programs do not nest on a CPU: no atomics needed.
        unsafe {
            (*value).calls += 1;
            (*value).total_ns += duration_ns;
        }
        return;
    }
    let first = AggregateValue {
        calls: 1,
        total_ns: duration_ns,
    };
    // BPF_NOEXIST (1): another CPU may have created the key meanwhile; then add to it.
    if AGGREGATES.insert(key, &first, 1).is_ok() {
        return;
    }
    match AGGREGATES.get_ptr_mut(key) {
        Some(value) => unsafe {
            (*value).calls += 1;
            (*value).total_ns += duration_ns;
        },
        None => count_lost(unkeyed),
    }
}

/// The errno of a raw return value, 0 for success (the kernel's -4095..-1 rule).
#[inline(always)]
fn errno_of(ret: i64) -> u16 {
    if (-4095..0).contains(&ret) {
        (-ret) as u16
    } else {
        0
    }
}

/// floor(log2(v)) for v > 0, without a loop the verifier would have to unroll.
#[inline(always)]
fn log2(mut v: u64) -> u8 {
    let mut r = 0u8;
    if v >= 1 << 32 {
        v >>= 32;
        r += 32;
    }
    if v >= 1 << 16 {
        v >>= 16;
        r += 16;
    }
    if v >= 1 << 8 {
        v >>= 8;
        r += 8;
    }
    if v >= 1 << 4 {
        v >>= 4;
        r += 4;
    }
    if v >= 1 << 2 {
        v >>= 2;
        r += 2;
    }
    if v >= 1 << 1 {
        r += 1;
    }
    r
}

#[inline(always)]
fn count_lost(index: u32) {
    if let Some(counter) = LOST.get_ptr_mut(index) {
        unsafe { *counter += 1 };
    }
}

/// Syscall arguments in ABI order from x86_64 `struct pt_regs`: rdi, rsi, rdx, r10, r8, r9.
/// One probe read of the first 15 registers is cheaper than six reads of one.
#[inline(always)]
fn syscall_args(regs: *const [u64; 15]) -> [u64; 6] {
    match unsafe { bpf_probe_read_kernel(regs) } {
        // pt_regs order: r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di
        Ok(r) => [r[14], r[13], r[12], r[7], r[9], r[8]],
        Err(_) => [0; 6],
    }
}

#[inline(always)]
fn comm() -> [u8; COMM_LEN] {
    bpf_get_current_comm().unwrap_or([0; COMM_LEN])
}

/// Whether the current task passes `--comm` and `--cgroup`. Asked when a task gets its
/// slot and again at execve (which changes its name), never per call.
#[inline(always)]
fn in_scope() -> bool {
    if global(&FILTER_COMM) != 0 {
        let name = comm();
        if unsafe { COMMS.get(&name) }.is_none() {
            return false;
        }
    }
    let cgroup = global_u64(&FILTER_CGROUP_ID);
    if cgroup != 0 {
        let level = global(&FILTER_CGROUP_LEVEL) as i32;
        if unsafe { generated::bpf_get_current_ancestor_cgroup_id(level) } != cgroup {
            return false;
        }
    }
    true
}

#[inline(always)]
fn scope_flags() -> u32 {
    if in_scope() { 0 } else { SLOT_IGNORED }
}

#[inline(always)]
fn syscall_info(nr: u64) -> SyscallInfo {
    match SYSCALLS.get(nr as u32) {
        Some(info) => *info,
        // A number past the table: record it, without context.
        None => SyscallInfo {
            traced: 1,
            extra: EXTRA_NONE,
            arg: 0,
            context: 0,
        },
    }
}

#[inline(always)]
fn arg_at(args: &[u64; 6], index: u8) -> u64 {
    match index {
        0 => args[0],
        1 => args[1],
        2 => args[2],
        3 => args[3],
        4 => args[4],
        _ => args[5],
    }
}

/// Reads a socket address of `len` bytes into `dst`; returns the bytes read, 0 on failure.
/// Each branch reads a constant size (the verifier must see the size bounded), the
/// smallest of sockaddr_in, sockaddr_in6 and sockaddr_un that holds `len`.
#[inline(always)]
fn read_sockaddr(dst: *mut u8, src: u64, len: u64) -> u32 {
    if src == 0 || len == 0 {
        return 0;
    }
    let size: u32 = if len <= 16 {
        16
    } else if len <= 28 {
        28
    } else {
        SOCKADDR_MAX
    };
    let src = src as *const core::ffi::c_void;
    let rc = match size {
        16 => unsafe { generated::bpf_probe_read_user(dst.cast(), 16, src) },
        28 => unsafe { generated::bpf_probe_read_user(dst.cast(), 28, src) },
        _ => unsafe { generated::bpf_probe_read_user(dst.cast(), SOCKADDR_MAX, src) },
    };
    if rc != 0 {
        return 0;
    }
    if len < size as u64 { len as u32 } else { size }
}

/// Reads execve's argument vector (at `argv`) for the exec event. Best effort: an argument
/// that cannot be read ends the list.
#[inline(always)]
fn save_exec_args(tid: u32, argv: u64) {
    let Some(scratch) = EXEC_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    let scratch = unsafe { &mut *scratch };
    let mut off: usize = 0;
    for i in 0..MAX_ARGS {
        if argv == 0 || off >= ARGS_LEN {
            break;
        }
        let slot = (argv + (i * 8) as u64) as *const u64;
        let Ok(ptr) = (unsafe { aya_ebpf::helpers::bpf_probe_read_user(slot) }) else {
            break;
        };
        if ptr == 0 {
            break;
        }
        // The mask bounds the offset for the verifier; a read of ARG_MAX_LEN after it stays
        // inside the buffer.
        let dst = unsafe { scratch.data.as_mut_ptr().add(off & EXEC_ARGS_MASK) };
        let n = unsafe {
            generated::bpf_probe_read_user_str(
                dst.cast(),
                ARG_MAX_LEN as u32,
                ptr as *const core::ffi::c_void,
            )
        };
        if n <= 0 {
            break;
        }
        off += n as usize;
    }
    scratch.len = if off > ARGS_LEN {
        ARGS_LEN as u32
    } else {
        off as u32
    };
    let _ = EXEC_ARGS.insert(&tid, scratch, 0);
}

/// Reads the context a call carries at entry into its slot.
#[inline(always)]
fn read_entry_extra(slot: &mut ThreadSlot, info: SyscallInfo, args: &[u64; 6]) {
    slot.extra_kind = info.extra as u32;
    slot.extra_len = 0;
    slot.extra_flags = 0;
    let ptr = arg_at(args, info.arg);
    match info.extra {
        EXTRA_PATH => {
            let n = unsafe {
                generated::bpf_probe_read_user_str(
                    slot.extra.as_mut_ptr().cast(),
                    EXTRA_LEN as u32,
                    ptr as *const core::ffi::c_void,
                )
            };
            if n <= 0 {
                slot.extra_flags = EXTRA_UNREADABLE;
            } else {
                // n counts the NUL; a full buffer means the string was cut.
                slot.extra_len = (n - 1) as u32;
                if n as usize >= EXTRA_LEN {
                    slot.extra_flags = EXTRA_TRUNCATED;
                }
            }
        }
        EXTRA_SOCKADDR_IN => {
            let len = arg_at(args, info.arg + 1);
            match read_sockaddr(slot.extra.as_mut_ptr(), ptr, len) {
                0 => slot.extra_flags = EXTRA_UNREADABLE,
                n => slot.extra_len = n,
            }
        }
        EXTRA_CLONE_ARGS => {
            if unsafe {
                generated::bpf_probe_read_user(
                    slot.extra.as_mut_ptr().cast(),
                    8,
                    ptr as *const core::ffi::c_void,
                )
            } == 0
            {
                slot.extra_len = 8;
            } else {
                slot.extra_flags = EXTRA_UNREADABLE;
            }
        }
        _ => {}
    }
}

/// Reads a path argument into the record being sent.
#[inline(always)]
fn read_path(out: &mut DetailedEvent, ptr: u64) {
    let n = unsafe {
        generated::bpf_probe_read_user_str(
            out.extra.as_mut_ptr().cast(),
            EXTRA_LEN as u32,
            ptr as *const core::ffi::c_void,
        )
    };
    if n <= 0 {
        out.extra_len = 0;
        out.extra_flags = EXTRA_UNREADABLE;
    } else {
        out.extra_len = (n - 1) as u32;
        out.extra_flags = if n as usize >= EXTRA_LEN {
            EXTRA_TRUNCATED
        } else {
            0
        };
    }
}

/// Reads what a call returned through user memory into the record being sent.
#[inline(always)]
fn read_exit_extra(out: &mut DetailedEvent, kind: u32, arg: u8, args: &[u64; 6], ret: i64) {
    let ptr = arg_at(args, arg);
    if ret < 0 || ptr == 0 {
        out.extra_flags = EXTRA_UNREADABLE;
        return;
    }
    match kind as u8 {
        EXTRA_SOCKADDR_OUT => {
            let len_ptr = arg_at(args, arg + 1) as *const u32;
            let len = if len_ptr.is_null() {
                0
            } else {
                unsafe { aya_ebpf::helpers::bpf_probe_read_user(len_ptr) }.unwrap_or(0)
            };
            match read_sockaddr(out.extra.as_mut_ptr(), ptr, len as u64) {
                0 => out.extra_flags = EXTRA_UNREADABLE,
                n => out.extra_len = n,
            }
        }
        EXTRA_FD_PAIR => {
            if unsafe {
                generated::bpf_probe_read_user(
                    out.extra.as_mut_ptr().cast(),
                    8,
                    ptr as *const core::ffi::c_void,
                )
            } == 0
            {
                out.extra_len = 8;
            } else {
                out.extra_flags = EXTRA_UNREADABLE;
            }
        }
        _ => {}
    }
}

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> u32 {
    let id = bpf_get_current_pid_tgid();
    let tid = id as u32;
    let nr: u64 = ctx.arg(1);
    let slot = match THREADS.get_ptr_mut(&tid) {
        Some(slot) => slot,
        None => {
            if global(&TRACE_ALL) == 0 || (id >> 32) as u32 == global(&SELF_TGID) {
                return 0;
            }
            let flags = scope_flags();
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
    if slot.flags & SLOT_IGNORED != 0 {
        return 0;
    }
    let info = syscall_info(nr);
    if info.traced == 0 && info.context == 0 {
        return 0;
    }
    let args = syscall_args(ctx.arg(0));
    let now = unsafe { bpf_ktime_get_ns() };
    if nr == NR_EXIT || nr == NR_EXIT_GROUP {
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
        match EVENTS.reserve::<SyscallEvent>(0) {
            Some(mut entry) => {
                entry.write(SyscallEvent {
                    enter_ns: now,
                    duration_ns: 0,
                    ret: 0,
                    args,
                    pid,
                    tid,
                    nr: nr as u32,
                    flags,
                    comm: slot_comm(slot),
                });
                entry.submit(BPF_RB_NO_WAKEUP as u64);
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
    if nr == NR_EXECVE {
        save_exec_args(tid, args[1]);
    } else if nr == NR_EXECVEAT {
        save_exec_args(tid, args[2]);
    }
    slot.enter_ns = now;
    slot.args = args;
    slot.nr = nr as u32;
    slot.info = info.traced as u32 | (info.context as u32) << 1 | (info.arg as u32) << 8;
    slot.extra_kind = EXTRA_NONE as u32;
    if info.extra != EXTRA_NONE {
        read_entry_extra(slot, info, &args);
    }
    0
}

#[raw_tracepoint(tracepoint = "sys_exit")]
pub fn sys_exit(ctx: RawTracePointContext) -> u32 {
    let id = bpf_get_current_pid_tgid();
    let tid = id as u32;
    let Some(slot) = THREADS.get_ptr_mut(&tid) else {
        return 0;
    };
    let slot = unsafe { &mut *slot };
    if slot.nr == NO_SYSCALL {
        return 0;
    }
    let nr = slot.nr;
    slot.nr = NO_SYSCALL;
    // An execve can take a thread out of scope: what `--comm` excludes stays absent.
    if slot.flags & SLOT_IGNORED != 0 {
        return 0;
    }
    let now = unsafe { bpf_ktime_get_ns() };
    let duration_ns = now.wrapping_sub(slot.enter_ns);
    let ret: i64 = ctx.arg(1);
    let traced = slot.info & 1 != 0;
    let context = slot.info & 2 != 0;
    // Not asked for by -e: sent only for the fd bookkeeping, and not counted.
    let mut flags = if traced { 0 } else { FLAG_CONTEXT_ONLY };
    if traced && duration_ns < global_u64(&MIN_DURATION_NS) {
        let key = unsent_key(id, nr, ret, duration_ns, REASON_BELOW_MIN_DURATION);
        aggregate(&key, duration_ns, UNKEYED_BELOW_MIN_DURATION);
        if !context {
            return 0;
        }
        flags = FLAG_CONTEXT_ONLY;
    } else if traced && global(&FAILED_ONLY) != 0 && errno_of(ret) == 0 {
        let key = unsent_key(id, nr, ret, duration_ns, REASON_NOT_FAILED);
        aggregate(&key, duration_ns, UNKEYED_NOT_FAILED);
        if !context {
            return 0;
        }
        flags = FLAG_CONTEXT_ONLY;
    }
    if slot.flags & SLOT_FD_LOST != 0 {
        slot.flags &= !SLOT_FD_LOST;
        flags |= FLAG_FD_STATE_LOST;
    }
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
    let sent = if slot.extra_kind == EXTRA_NONE as u32 {
        match EVENTS.reserve::<SyscallEvent>(0) {
            Some(mut entry) => {
                entry.write(event);
                entry.submit(BPF_RB_NO_WAKEUP as u64);
                true
            }
            None => false,
        }
    } else {
        match EVENTS.reserve::<DetailedEvent>(0) {
            Some(mut entry) => {
                let out = unsafe { &mut *entry.as_mut_ptr() };
                out.event = event;
                out.extra_kind = slot.extra_kind;
                out.extra_len = slot.extra_len;
                out.extra_flags = slot.extra_flags;
                out._pad = 0;
                let kind = slot.extra_kind as u8;
                if kind == EXTRA_SOCKADDR_OUT || kind == EXTRA_FD_PAIR {
                    out.extra_len = 0;
                    out.extra_flags = 0;
                    let arg = (slot.info >> 8) as u8;
                    read_exit_extra(out, slot.extra_kind, arg, &slot.args, ret);
                } else if kind == EXTRA_PATH
                    && slot.extra_flags & EXTRA_UNREADABLE != 0
                    && nr as u64 != NR_EXECVE
                    && nr as u64 != NR_EXECVEAT
                {
                    // The string's page was not resident at entry; the kernel has read it
                    // since, so it is now (an exec replaced the memory, so not for those).
                    let arg = (slot.info >> 8) as u8;
                    read_path(out, arg_at(&slot.args, arg));
                } else {
                    out.extra = slot.extra;
                }
                entry.submit(BPF_RB_NO_WAKEUP as u64);
                true
            }
            None => false,
        }
    };
    if !sent {
        // A lost fd change, or the news of an earlier one, waits for the next record.
        if context || flags & FLAG_FD_STATE_LOST != 0 {
            slot.flags |= SLOT_FD_LOST;
        }
        // Already counted if a filter left it out; out of scope if -e did.
        if flags & FLAG_CONTEXT_ONLY == 0 {
            count_lost(LOST_RING_FULL);
            let key = unsent_key(id, nr, ret, duration_ns, REASON_RING_FULL);
            aggregate(&key, duration_ns, UNKEYED_RING_FULL);
        }
    }
    0
}

/// The thread's name: asked of the kernel once for a new slot, then taken from renames.
/// Runs in the thread itself, the only writer of `comm`, `seen_gen` and `flags`.
#[inline(always)]
fn slot_comm(slot: &mut ThreadSlot) -> [u8; COMM_LEN] {
    // Read before the name: the renamer stores the name first, then the generation.
    let generation = unsafe { core::ptr::read_volatile(&slot.rename_gen) };
    if generation != slot.seen_gen {
        slot.comm = unsafe { core::ptr::read_volatile(&slot.renamed_to) };
        slot.seen_gen = generation;
        slot.flags |= SLOT_COMM_KNOWN;
    } else if slot.flags & SLOT_COMM_KNOWN == 0 {
        slot.comm = comm();
        slot.flags |= SLOT_COMM_KNOWN;
    }
    slot.comm
}

#[inline(always)]
fn unsent_key(pid_tgid: u64, nr: u32, ret: i64, duration_ns: u64, reason: u8) -> AggregateKey {
    AggregateKey {
        pid: (pid_tgid >> 32) as u32,
        nr,
        errno: errno_of(ret),
        bucket: if duration_ns == 0 {
            0
        } else {
            log2(duration_ns)
        },
        reason,
    }
}

#[inline(always)]
fn send_process_event(kind: u32, child_tid: u32, clone_flags: u64, group_dead: u32, args_of: u32) {
    let id = bpf_get_current_pid_tgid();
    let Some(mut entry) = EVENTS.reserve::<ProcessEvent>(0) else {
        // The processes table misses what it said; no syscall was lost.
        count_lost(LOST_PROCESS_EVENTS);
        return;
    };
    // Field by field: the record is too large for the BPF stack.
    let out = unsafe { &mut *entry.as_mut_ptr() };
    out.ts_ns = unsafe { bpf_ktime_get_ns() };
    out.clone_flags = clone_flags;
    out.cgroup_id = unsafe { generated::bpf_get_current_cgroup_id() };
    out.kind = kind;
    out.pid = (id >> 32) as u32;
    out.tid = id as u32;
    out.child_tid = child_tid;
    out.uid = bpf_get_current_uid_gid() as u32;
    out.group_dead = group_dead;
    out.comm = comm();
    out.args_len = 0;
    out._pad = 0;
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
    }
    entry.submit(BPF_RB_NO_WAKEUP as u64);
}

/// Whether the current task's process lifecycle belongs in the capture.
#[inline(always)]
fn followed(tid: u32, tgid: u32) -> bool {
    if global(&TRACE_ALL) != 0 {
        return tgid != global(&SELF_TGID);
    }
    THREADS.get_ptr(&tid).is_some()
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
    if global(&TRACE_ALL) == 0 {
        // The child starts with its parent's name and cgroup, so it inherits its scope.
        let inherited = match THREADS.get_ptr(&parent) {
            Some(slot) => unsafe { (*slot).flags },
            None => 0,
        };
        // The name is the child's own to ask for; IDLE already has no other flag.
        let flags = inherited & !SLOT_COMM_KNOWN;
        if THREADS.insert(&child, &IDLE, 0).is_err() {
            // The thread's calls will go unseen: counted once, as a thread.
            count_lost(LOST_THREAD_TABLE_FULL);
            count_lost(UNKEYED_THREAD_TABLE_FULL);
        } else if flags != 0
            && let Some(slot) = THREADS.get_ptr_mut(&child)
        {
            // Not yet running: nothing reads the slot before this.
            unsafe { (*slot).flags = flags };
        }
    }
    if flags & CLONE_THREAD == 0 {
        send_process_event(PROCESS_NEW, child, flags, 0, 0);
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
            if THREADS.insert(&tid, unsafe { &*slot }, 0).is_err() {
                count_lost(LOST_THREAD_TABLE_FULL);
                count_lost(UNKEYED_THREAD_TABLE_FULL);
            }
            let _ = THREADS.remove(&old_tid);
        }
    }
    if !followed(tid, (id >> 32) as u32) {
        return 0;
    }
    if let Some(slot) = THREADS.get_ptr_mut(&tid) {
        let slot = unsafe { &mut *slot };
        slot.flags = scope_flags() | SLOT_COMM_KNOWN;
        // The new program's name is set by now, and renames before the exec are past (a
        // moved slot may hold one the thread never took).
        slot.seen_gen = unsafe { core::ptr::read_volatile(&slot.rename_gen) };
        slot.comm = comm();
    }
    send_process_event(PROCESS_EXEC, 0, 0, 0, old_tid);
    0
}

/// Fires in the dying thread: its slot goes with it, so the table never holds the dead.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(ctx: RawTracePointContext) -> u32 {
    let group_dead = ctx.arg::<u64>(1) as u8 as u32;
    thread_exited(group_dead != 0)
}

/// `sched_process_exit` on kernels before 6.16, whose tracepoint has no `group_dead`
/// argument: reading it would make the kernel refuse the program. The leader's exit
/// stands for the process's; with exit_group (how processes end) every thread exits
/// within the same call.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit_leader(_ctx: RawTracePointContext) -> u32 {
    let id = bpf_get_current_pid_tgid();
    thread_exited(id as u32 == (id >> 32) as u32)
}

#[inline(always)]
fn thread_exited(group_dead: bool) -> u32 {
    let id = bpf_get_current_pid_tgid();
    let tid = id as u32;
    if group_dead && followed(tid, (id >> 32) as u32) {
        send_process_event(PROCESS_EXIT, 0, 0, 1, 0);
    }
    let _ = THREADS.remove(&tid);
    // An execve that failed leaves its arguments behind.
    let _ = EXEC_ARGS.remove(&tid);
    0
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
