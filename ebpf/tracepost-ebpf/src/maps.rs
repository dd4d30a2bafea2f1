//! The maps shared with user space, and the counting of calls that are not sent.
use crate::prelude::*;

/// A fresh slot, in `.rodata`: map updates copy from it instead of from the stack.
pub(crate) static IDLE: ThreadSlot = ThreadSlot::IDLE;

/// Sized by the recorder (`EbpfLoader::set_max_entries`) before load.
#[map]
pub(crate) static THREADS: HashMap<u32, ThreadSlot> = HashMap::with_max_entries(65536, 0);

/// A byte per thread id: whether `THREADS` may hold its slot. Most calls on a host are not
/// the traced threads'; for them one array load (the verifier inlines it) answers where a
/// hash lookup did, in each of the two hooks. The recorder marks the threads it adds
/// through a mapping, so it is `BPF_F_MMAPABLE`. Sized by the recorder from `pid_max`;
/// a thread id past its end is looked up in `THREADS`.
#[map]
pub(crate) static TRACED: Array<TracedPage> = Array::with_max_entries(1, crate::stage::MMAPABLE);

/// `--sched`: each traced thread's scheduling during its call, keyed by its
/// `task_struct`'s address. Sized by the recorder like `THREADS`.
#[map]
pub(crate) static SCHED_SLOTS: HashMap<u64, SchedSlot> = HashMap::with_max_entries(65536, 0);

/// `--stacks`: kernel stacks where traced calls blocked, by id. Sized by the recorder: one
/// entry without `--stacks`. Identical stacks share an id, so it holds each distinct stack
/// once; a stack whose hash collides with another's is not stored, and its call has none.
/// A BTF-defined map, to hold `STACK_DEPTH` frames a stack instead of the legacy map's
/// 127: the kernel refuses a stack map deeper than `kernel.perf_event_max_stack`, and
/// this map exists in every capture, `--stacks` or not.
#[btf_map]
pub(crate) static KSTACKS: aya_ebpf::btf_maps::StackTrace<1, 0, STACK_DEPTH> =
    aya_ebpf::btf_maps::StackTrace::new();

/// `--sched`: how deep this CPU is in each kind of interrupt (`CTX_*`), to tell a wakeup
/// by a thread from one by a timer or a device.
#[map]
pub(crate) static WAKE_CONTEXT: PerCpuArray<u32> = PerCpuArray::with_max_entries(CTX_KINDS, 0);

#[map]
pub(crate) static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(LOST_COUNTERS, 0);

/// Calls not sent as detail, counted exactly. Touched only off the common path (a full
/// ring, a call a detail filter leaves out, a full thread table). Sized by the recorder.
#[map]
pub(crate) static AGGREGATES: PerCpuHashMap<AggregateKey, AggregateValue> =
    PerCpuHashMap::with_max_entries(16384, 0);

/// Per syscall number: whether `-e` keeps it, and what context to read. One array lookup
/// per call serves both.
#[map]
pub(crate) static SYSCALLS: Array<SyscallInfo> = Array::with_max_entries(MAX_SYSCALL_NR, 0);

/// execve's arguments, read at entry (while the old program's memory still holds them) and
/// sent with the exec event. Keyed by thread; removed at exec and at exit.
#[map]
pub(crate) static EXEC_ARGS: HashMap<u32, ExecArgs> = HashMap::with_max_entries(4096, 0);

/// Where execve's arguments are gathered before they are stored per thread.
#[map]
pub(crate) static EXEC_SCRATCH: PerCpuArray<ExecArgs> = PerCpuArray::with_max_entries(1, 0);

/// `--cgroup`: the directory's id since it was made anew, and how often that happened
/// (`CGROUP_NOW_*`). A restarted service gets a new cgroup at the same path; written by the
/// recorder, read when a thread's scope is decided.
#[map]
pub(crate) static CGROUP_NOW: Array<u64> = Array::with_max_entries(3, 0);

/// `--comm` names, NUL-padded like the kernel's.
#[map]
pub(crate) static COMMS: HashMap<[u8; COMM_LEN], u8> = HashMap::with_max_entries(64, 0);

/// Adds one call to its aggregate, or to the `unkeyed` counter when the table is full, so
/// that the call is counted either way.
#[inline(always)]
pub(crate) fn aggregate(key: &AggregateKey, duration_ns: u64, unkeyed: u32) {
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
pub(crate) fn errno_of(ret: i64) -> u16 {
    if (-4095..0).contains(&ret) {
        (-ret) as u16
    } else {
        0
    }
}

/// floor(log2(v)) for v > 0, without a loop the verifier would have to unroll.
#[inline(always)]
pub(crate) fn log2(mut v: u64) -> u8 {
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
pub(crate) fn count_lost(index: u32) {
    if let Some(counter) = LOST.get_ptr_mut(index) {
        unsafe { *counter += 1 };
    }
}

#[inline(always)]
pub(crate) fn unsent_key(
    pid_tgid: u64,
    nr: u32,
    ret: i64,
    duration_ns: u64,
    reason: u8,
) -> AggregateKey {
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
