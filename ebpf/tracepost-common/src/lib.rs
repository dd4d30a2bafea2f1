//! The `#[repr(C)]` records that cross from the kernel programs to the recorder.
//!
//! Both sides compile this crate, so a layout change is caught at build time rather than
//! decoded as garbage at run time. Keep records small and fixed-size: the ring buffer
//! reserves their size on every call.
#![no_std]

/// Length of a task's command name in the kernel (`TASK_COMM_LEN`).
pub const COMM_LEN: usize = 16;

/// `SyscallEvent::flags`: the call never returned (exit, exit_group), so `ret` and
/// `duration_ns` carry no meaning.
pub const FLAG_NO_RETURN: u32 = 1;

/// Marks a thread slot with no syscall in flight.
pub const NO_SYSCALL: u32 = u32::MAX;

/// Index into the `LOST` per-CPU array: calls dropped because the ring was full (all of
/// them, whether or not the aggregates also hold them).
pub const LOST_RING_FULL: u32 = 0;
/// Index into the `LOST` per-CPU array: calls not tracked because the thread table was
/// full, and threads a traced parent created then (counted once each).
pub const LOST_THREAD_TABLE_FULL: u32 = 1;
/// Index into the `LOST` per-CPU array: ring-full calls the aggregates had no room for.
pub const UNKEYED_RING_FULL: u32 = 2;
/// Index into the `LOST` per-CPU array: calls below `--min-duration` the aggregates had no
/// room for.
pub const UNKEYED_BELOW_MIN_DURATION: u32 = 3;
/// Index into the `LOST` per-CPU array: thread-table-full calls the aggregates had no room
/// for.
pub const UNKEYED_THREAD_TABLE_FULL: u32 = 4;
/// Number of counters in the `LOST` array.
pub const LOST_COUNTERS: u32 = 5;

/// Why a call went into the aggregates instead of the ring: `AggregateKey::reason`.
pub const REASON_RING_FULL: u8 = 1;
pub const REASON_BELOW_MIN_DURATION: u8 = 2;
pub const REASON_THREAD_TABLE_FULL: u8 = 3;

/// `AggregateKey::errno` when the return value is unknown (the call was never paired).
pub const ERRNO_UNKNOWN: u16 = u16::MAX;
/// `AggregateKey::bucket` when the duration is unknown (the call never returned, or was
/// never paired).
pub const BUCKET_UNKNOWN: u8 = u8::MAX;

/// A group of calls that were not sent as detail. The kernel counts them exactly, so counts
/// and errors stay exact whatever happens to detail.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct AggregateKey {
    pub pid: u32,
    pub nr: u32,
    /// 0 for success, else the errno; or `ERRNO_UNKNOWN`.
    pub errno: u16,
    /// floor(log2(duration_ns)): the calls took [2^b, 2^(b+1)) ns. Or `BUCKET_UNKNOWN`.
    pub bucket: u8,
    /// `REASON_*`.
    pub reason: u8,
}

/// Running totals of one `AggregateKey`, per CPU. Never reset: user space takes
/// differences, so reading never races with counting.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AggregateValue {
    pub calls: u64,
    pub total_ns: u64,
}

/// One finished system call, as it leaves the kernel.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyscallEvent {
    /// `bpf_ktime_get_ns()` at entry (CLOCK_MONOTONIC); user space converts to wall time.
    pub enter_ns: u64,
    /// Entry to exit in nanoseconds.
    pub duration_ns: u64,
    /// Raw return value.
    pub ret: i64,
    /// Raw arguments, in the order of the architecture's syscall ABI.
    pub args: [u64; 6],
    /// Process id (tgid) in the initial pid namespace.
    pub pid: u32,
    /// Thread id in the initial pid namespace.
    pub tid: u32,
    /// Syscall number.
    pub nr: u32,
    /// `FLAG_*` bits.
    pub flags: u32,
    /// Thread name at exit (after an execve, the new image's name).
    pub comm: [u8; COMM_LEN],
}

/// Per-thread state between sys_enter and sys_exit. The map entry's existence is also
/// the filter: a thread without one is not traced.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ThreadSlot {
    pub enter_ns: u64,
    pub args: [u64; 6],
    /// Syscall in flight, or `NO_SYSCALL`.
    pub nr: u32,
    pub _pad: u32,
}

impl ThreadSlot {
    /// A traced thread with no syscall in flight: its first exit is ignored, so a thread
    /// added while blocked in a call never yields a half-measured event.
    pub const IDLE: ThreadSlot = ThreadSlot {
        enter_ns: 0,
        args: [0; 6],
        nr: NO_SYSCALL,
        _pad: 0,
    };
}

// SAFETY: plain-old-data records, `#[repr(C)]`, every bit pattern valid.
#[cfg(feature = "user")]
unsafe impl aya::Pod for ThreadSlot {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for SyscallEvent {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for AggregateKey {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for AggregateValue {}
