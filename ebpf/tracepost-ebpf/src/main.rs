//! Kernel side of tracepost.
//!
//! `sys_enter` stores the entry time and arguments in the calling thread's slot,
//! `sys_exit` turns the slot into one `SyscallEvent` in the ring buffer. A thread is traced
//! exactly when it has a slot, so the filter costs no extra lookup: one hash lookup on each
//! side of a call. Slots are inherited on fork and dropped on exit, which is how a command's
//! descendants are followed and how dead threads stop costing memory.
#![no_std]
#![no_main]

use aya_ebpf::{
    bindings::BPF_RB_NO_WAKEUP,
    helpers::{
        bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_ktime_get_ns, bpf_probe_read_kernel,
    },
    macros::{map, raw_tracepoint, tracepoint},
    maps::{HashMap, PerCpuArray, PerCpuHashMap, RingBuf},
    programs::{RawTracePointContext, TracePointContext},
};
use tracepost_common::{
    AggregateKey, AggregateValue, BUCKET_UNKNOWN, COMM_LEN, ERRNO_UNKNOWN, FLAG_NO_RETURN,
    LOST_COUNTERS, LOST_RING_FULL, LOST_THREAD_TABLE_FULL, NO_SYSCALL, REASON_BELOW_MIN_DURATION,
    REASON_RING_FULL, REASON_THREAD_TABLE_FULL, SyscallEvent, ThreadSlot,
    UNKEYED_BELOW_MIN_DURATION, UNKEYED_RING_FULL, UNKEYED_THREAD_TABLE_FULL,
};

#[cfg(not(bpf_target_arch = "x86_64"))]
compile_error!("only x86_64 is supported: the pt_regs argument layout below is x86_64's");

/// x86_64 `exit` and `exit_group`: they never reach sys_exit, so they are sent at entry.
const NR_EXIT: u64 = 60;
const NR_EXIT_GROUP: u64 = 231;

/// Set by the recorder at load time (`.rodata`, so reading them costs no map lookup).
#[unsafe(no_mangle)]
static TRACE_ALL: u32 = 0;
#[unsafe(no_mangle)]
static SELF_TGID: u32 = 0;
/// `--min-duration`: shorter calls are counted in `AGGREGATES` instead of sent.
#[unsafe(no_mangle)]
static MIN_DURATION_NS: u64 = 0;
/// Offset of `child_pid` in the `sched_process_fork` record; it moves between kernels.
#[unsafe(no_mangle)]
static FORK_CHILD_PID_OFFSET: u32 = 20;

/// Sized by the recorder (`EbpfLoader::set_max_entries`) before load.
#[map]
static THREADS: HashMap<u32, ThreadSlot> = HashMap::with_max_entries(65536, 0);

/// Sized by the recorder before load.
#[map]
static EVENTS: RingBuf = RingBuf::with_byte_size(16 * 1024 * 1024, 0);

#[map]
static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(LOST_COUNTERS, 0);

/// Calls not sent as detail, counted exactly. Touched only off the common path (a full
/// ring, a short call under `--min-duration`, a full thread table). Sized by the recorder.
#[map]
static AGGREGATES: PerCpuHashMap<AggregateKey, AggregateValue> =
    PerCpuHashMap::with_max_entries(16384, 0);

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

#[raw_tracepoint(tracepoint = "sys_enter")]
pub fn sys_enter(ctx: RawTracePointContext) -> u32 {
    let id = bpf_get_current_pid_tgid();
    let tid = id as u32;
    let slot = match THREADS.get_ptr_mut(&tid) {
        Some(slot) => slot,
        None => {
            if global(&TRACE_ALL) == 0 || (id >> 32) as u32 == global(&SELF_TGID) {
                return 0;
            }
            if THREADS.insert(&tid, &ThreadSlot::IDLE, 0).is_err() {
                count_lost(LOST_THREAD_TABLE_FULL);
                let key = AggregateKey {
                    pid: (id >> 32) as u32,
                    nr: ctx.arg::<u64>(1) as u32,
                    errno: ERRNO_UNKNOWN,
                    bucket: BUCKET_UNKNOWN,
                    reason: REASON_THREAD_TABLE_FULL,
                };
                aggregate(&key, 0, UNKEYED_THREAD_TABLE_FULL);
                return 0;
            }
            match THREADS.get_ptr_mut(&tid) {
                Some(slot) => slot,
                None => return 0,
            }
        }
    };
    let nr: u64 = ctx.arg(1);
    let args = syscall_args(ctx.arg(0));
    let now = unsafe { bpf_ktime_get_ns() };
    if nr == NR_EXIT || nr == NR_EXIT_GROUP {
        match EVENTS.reserve::<SyscallEvent>(0) {
            Some(mut entry) => {
                entry.write(SyscallEvent {
                    enter_ns: now,
                    duration_ns: 0,
                    ret: 0,
                    args,
                    pid: (id >> 32) as u32,
                    tid,
                    nr: nr as u32,
                    flags: FLAG_NO_RETURN,
                    comm: comm(),
                });
                entry.submit(BPF_RB_NO_WAKEUP as u64);
            }
            None => {
                count_lost(LOST_RING_FULL);
                let key = AggregateKey {
                    pid: (id >> 32) as u32,
                    nr: nr as u32,
                    errno: ERRNO_UNKNOWN,
                    bucket: BUCKET_UNKNOWN,
                    reason: REASON_RING_FULL,
                };
                aggregate(&key, 0, UNKEYED_RING_FULL);
            }
        }
        unsafe { (*slot).nr = NO_SYSCALL };
        return 0;
    }
    unsafe {
        (*slot).enter_ns = now;
        (*slot).args = args;
        (*slot).nr = nr as u32;
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
    let now = unsafe { bpf_ktime_get_ns() };
    let duration_ns = now.wrapping_sub(slot.enter_ns);
    let ret: i64 = ctx.arg(1);
    if duration_ns < global_u64(&MIN_DURATION_NS) {
        let key = unsent_key(id, slot.nr, ret, duration_ns, REASON_BELOW_MIN_DURATION);
        aggregate(&key, duration_ns, UNKEYED_BELOW_MIN_DURATION);
        slot.nr = NO_SYSCALL;
        return 0;
    }
    match EVENTS.reserve::<SyscallEvent>(0) {
        Some(mut entry) => {
            entry.write(SyscallEvent {
                enter_ns: slot.enter_ns,
                duration_ns,
                ret,
                args: slot.args,
                pid: (id >> 32) as u32,
                tid,
                nr: slot.nr,
                flags: 0,
                comm: comm(),
            });
            entry.submit(BPF_RB_NO_WAKEUP as u64);
        }
        None => {
            count_lost(LOST_RING_FULL);
            let key = unsent_key(id, slot.nr, ret, duration_ns, REASON_RING_FULL);
            aggregate(&key, duration_ns, UNKEYED_RING_FULL);
        }
    }
    slot.nr = NO_SYSCALL;
    0
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

/// Runs in the parent: a traced thread's new thread or process is traced from its first
/// instruction, before it can make a call. In trace-all mode slots are made lazily instead.
#[tracepoint(category = "sched", name = "sched_process_fork")]
pub fn sched_process_fork(ctx: TracePointContext) -> u32 {
    if global(&TRACE_ALL) != 0 {
        return 0;
    }
    let parent = bpf_get_current_pid_tgid() as u32;
    if THREADS.get_ptr(&parent).is_none() {
        return 0;
    }
    let offset = global(&FORK_CHILD_PID_OFFSET) as usize;
    let Ok(child) = (unsafe { ctx.read_at::<u32>(offset) }) else {
        return 0;
    };
    if THREADS.insert(&child, &ThreadSlot::IDLE, 0).is_err() {
        // The thread's calls will go unseen: counted once, as a thread.
        count_lost(LOST_THREAD_TABLE_FULL);
        count_lost(UNKEYED_THREAD_TABLE_FULL);
    }
    0
}

/// An execve from a thread other than the leader makes that thread the leader: it returns
/// from the call with the leader's tid (whose slot the leader's exit already removed).
/// Moving the slot keeps the execve's record and keeps the process traced.
#[raw_tracepoint(tracepoint = "sched_process_exec")]
pub fn sched_process_exec(ctx: RawTracePointContext) -> u32 {
    let tid = bpf_get_current_pid_tgid() as u32;
    let old_tid: u32 = ctx.arg::<u64>(1) as u32;
    if old_tid == tid {
        return 0;
    }
    let Some(slot) = THREADS.get_ptr(&old_tid) else {
        return 0;
    };
    let slot = unsafe { *slot };
    if THREADS.insert(&tid, &slot, 0).is_err() {
        count_lost(LOST_THREAD_TABLE_FULL);
        count_lost(UNKEYED_THREAD_TABLE_FULL);
    }
    let _ = THREADS.remove(&old_tid);
    0
}

/// Fires in the dying thread: its slot goes with it, so the table never holds the dead.
#[raw_tracepoint(tracepoint = "sched_process_exit")]
pub fn sched_process_exit(_ctx: RawTracePointContext) -> u32 {
    let tid = bpf_get_current_pid_tgid() as u32;
    let _ = THREADS.remove(&tid);
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
