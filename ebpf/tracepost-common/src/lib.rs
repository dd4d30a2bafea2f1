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
/// `SyscallEvent::flags`: sent only so that user space can follow fds; not a row (a filter
/// leaves it out, and if it is detail-filtered it is already counted in the aggregates).
pub const FLAG_CONTEXT_ONLY: u32 = 2;
/// `SyscallEvent::flags`: the thread lost a call that changes fds since its last record
/// (the ring was full), so what its process's fds refer to is no longer known.
pub const FLAG_FD_STATE_LOST: u32 = 4;

/// `SyscallEvent::flags`: the kernel stopped the call before running it and made its
/// result itself (seccomp's `SECCOMP_RET_ERRNO` or `TRAP`, a `PTRACE_SYSEMU` tracer): the
/// entry hook never saw it, so its duration is 0 and it changed no fd.
pub const FLAG_NOT_RUN: u32 = 8;
/// `SyscallEvent::flags`: the fd an open returned is a FIFO (a named pipe), read from the
/// kernel's fd table as the call returned. It has a path, like a file, but a read of it
/// waits for a writer as a pipe's does, which the path alone cannot tell.
pub const FLAG_OPENED_FIFO: u32 = 16;

/// Marks a thread slot with no syscall in flight.
pub const NO_SYSCALL: u32 = u32::MAX;
/// Marks a thread slot whose call in flight `-e` leaves out: its return is no call the kernel
/// skipped (see [`SLOT_ENTERED`]).
pub const UNWANTED_SYSCALL: u32 = u32::MAX - 1;

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
/// Index into the `LOST` per-CPU array: successful calls under `--failed` the aggregates
/// had no room for.
pub const UNKEYED_NOT_FAILED: u32 = 5;
/// Index into the `LOST` per-CPU array: process events (not syscalls) dropped because the
/// ring was full; the processes table then misses what they said.
pub const LOST_PROCESS_EVENTS: u32 = 6;
/// Index into the `LOST` per-CPU array, `record --stacks`: times a thread went off the CPU
/// blocked and its kernel stack could not be stored (the map was full, or the stack's slot
/// held another stack). A call whose longest wait was one of them has no stack.
pub const LOST_STACKS: u32 = 7;
/// Index into the `LOST` per-CPU array, `record --stacks`: slow calls whose user stack
/// could not be sent (the `USER_STACKS` ring was full). Their rows have no `user_stack`.
pub const LOST_USER_STACKS: u32 = 8;
/// Number of counters in the `LOST` array.
pub const LOST_COUNTERS: u32 = 9;

/// Why a call went into the aggregates instead of the ring: `AggregateKey::reason`.
pub const REASON_RING_FULL: u8 = 1;
pub const REASON_BELOW_MIN_DURATION: u8 = 2;
pub const REASON_THREAD_TABLE_FULL: u8 = 3;
/// `--failed` leaves out calls that succeeded.
pub const REASON_NOT_FAILED: u8 = 4;

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

/// Bytes of context a record can carry: a path, a socket address, a pair of fds.
pub const EXTRA_LEN: usize = 256;

/// `SyscallInfo::extra` and `DetailedEvent::extra_kind`: what context a syscall carries.
pub const EXTRA_NONE: u8 = 0;
/// A NUL-terminated pathname, read from user memory at entry from argument `arg`.
pub const EXTRA_PATH: u8 = 1;
/// A socket address passed in: argument `arg` points to it, argument `arg + 1` is its
/// length. Read at entry.
pub const EXTRA_SOCKADDR_IN: u8 = 2;
/// A socket address returned (accept): argument `arg` points to it, argument `arg + 1` to
/// its length. Read at exit.
pub const EXTRA_SOCKADDR_OUT: u8 = 3;
/// Two fds returned through argument `arg` (pipe, pipe2, socketpair). Read at exit.
pub const EXTRA_FD_PAIR: u8 = 4;
/// clone3's flags: the first 8 bytes of `struct clone_args` at argument `arg`.
pub const EXTRA_CLONE_ARGS: u8 = 5;
/// Two pathnames, for the renames: the source, argument `arg & 0xf`, read at entry into
/// the first half of `extra` (`extra_len` bytes); the target, argument `arg >> 4`, read at
/// exit when the call succeeded into the second half (`second_len` bytes). The fd table
/// needs the target: a file open under that name has lost it.
pub const EXTRA_PATH_PAIR: u8 = 6;
/// Bytes of each half of `extra` for [`EXTRA_PATH_PAIR`].
pub const PATH_PAIR_HALF: usize = EXTRA_LEN / 2;

/// `DetailedEvent::extra_flags`: the string filled the buffer and was cut.
pub const EXTRA_TRUNCATED: u32 = 1;
/// `DetailedEvent::extra_flags`: user memory could not be read (paged out, bad pointer).
pub const EXTRA_UNREADABLE: u32 = 2;
/// `DetailedEvent::extra_flags`: [`EXTRA_PATH_PAIR`]'s second path filled its half.
pub const EXTRA_SECOND_TRUNCATED: u32 = 4;
/// `DetailedEvent::extra_flags`: [`EXTRA_PATH_PAIR`]'s second path was not read (the call
/// failed) or could not be.
pub const EXTRA_SECOND_UNREAD: u32 = 8;
/// `DetailedEvent::extra_flags`: the path is the kernel's name for an exec relative to a
/// descriptor, `/dev/fd/N/` and then the name the caller gave, which is the path.
pub const EXTRA_FD_PREFIXED: u32 = 16;

/// Where the calls of 32-bit (ia32) tasks are numbered: their own i386 number plus this.
/// Their numbers are another table's (3 is `read` there, `close` on x86_64), so the programs
/// move them here, and no number means two calls.
pub const COMPAT_BASE: u32 = 1024;

/// Number of entries in the `SYSCALLS` array: x86_64 numbers are below [`COMPAT_BASE`],
/// ia32 ones between it and this.
pub const MAX_SYSCALL_NR: u32 = 2048;

/// What the kernel does for one syscall number, set by the recorder before attaching.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyscallInfo {
    /// 0 when `-e` leaves the syscall out: the call is not recorded or counted.
    pub traced: u8,
    /// `EXTRA_*`.
    pub extra: u8,
    /// The argument `extra` refers to.
    pub arg: u8,
    /// 1 for calls user space needs whatever the filters: those that create, copy or close
    /// fds or change the cwd (to tell what every fd refers to), and exits (for exit codes).
    /// When a filter leaves one out, it is sent with `FLAG_CONTEXT_ONLY` and never becomes a
    /// row. [`CONTEXT_CLOEXEC_IOCTL`] for ioctl, which is context for two commands only.
    pub context: u8,
}

/// `SyscallInfo::context` of x86_64's ioctl: context only when its command (argument 1) is
/// [`FIOCLEX`] or [`FIONCLEX`], which set an fd's close-on-exec as `fcntl(F_SETFD)` does.
/// The kernel decides per call; the table cannot.
pub const CONTEXT_CLOEXEC_IOCTL: u8 = 2;
/// ioctl's commands that clear and set an fd's close-on-exec flag.
pub const FIONCLEX: u32 = 0x5450;
pub const FIOCLEX: u32 = 0x5451;

/// A `SyscallEvent` with context that only some calls have. Sent instead of the plain
/// record when the syscall carries any, so the common record stays small.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetailedEvent {
    pub event: SyscallEvent,
    /// `EXTRA_*`.
    pub extra_kind: u32,
    /// Bytes of `extra` that are valid (for a path, without its NUL).
    pub extra_len: u32,
    /// `EXTRA_TRUNCATED`, `EXTRA_UNREADABLE`, `EXTRA_SECOND_*`.
    pub extra_flags: u32,
    /// [`EXTRA_PATH_PAIR`]: bytes of the second path, from `extra[PATH_PAIR_HALF]`.
    pub second_len: u32,
    pub extra: [u8; EXTRA_LEN],
}

/// `ProcessEvent::kind`: a process or thread was created (`task_newtask`, in the parent).
pub const PROCESS_NEW: u32 = 1;
/// `ProcessEvent::kind`: a process completed an execve.
pub const PROCESS_EXEC: u32 = 2;
/// `ProcessEvent::kind`: a thread exited; `group_dead` says whether it was the last one.
pub const PROCESS_EXIT: u32 = 3;
/// `ProcessEvent::kind`: a thread was made without `CLONE_FILES` or without `CLONE_FS`
/// (`clone_flags` says which), so it has an fd table or a working directory of its own.
/// No call of it says so, as `unshare` would: only the clone's flags do.
pub const PROCESS_THREAD_APART: u32 = 4;

/// A process lifecycle event, for the `processes` table.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcessEvent {
    /// `bpf_ktime_get_ns()`.
    pub ts_ns: u64,
    /// `clone` flags for `PROCESS_NEW`.
    pub clone_flags: u64,
    /// `PROCESS_NEW`: when the parent's clone call entered (the clock of `ts_ns`), or 0
    /// where the parent had no slot. The kernel copied the fd table between the two, so a
    /// change to it another thread made in that time may or may not be in the child's copy.
    pub clone_enter_ns: u64,
    /// The cgroup v2 id (the cgroup directory's inode number) of the current task.
    pub cgroup_id: u64,
    /// `PROCESS_*`.
    pub kind: u32,
    /// The current task's process and thread ids (for `PROCESS_NEW`, the parent's).
    pub pid: u32,
    pub tid: u32,
    /// `PROCESS_NEW`: the new task's id.
    pub child_tid: u32,
    pub uid: u32,
    /// `PROCESS_EXIT`: 1 when the whole process is gone.
    pub group_dead: u32,
    /// The current task's name (after an exec, the new one).
    pub comm: [u8; COMM_LEN],
    /// `PROCESS_EXEC`: bytes of `args` that are valid.
    pub args_len: u32,
    /// `PROCESS_EXIT`: the dying task's `exit_code`, the status wait(2) reports, or
    /// `EXIT_STATUS_UNKNOWN`.
    pub exit_status: u32,
    /// `PROCESS_EXEC`: the new program's arguments, each NUL-terminated, each cut to
    /// `ARG_MAX_LEN - 1` bytes, as many as fit.
    pub args: [u8; ARGS_LEN],
    /// `PROCESS_EXEC`: bytes of `program` that are valid.
    pub program_len: u32,
    pub _pad: u32,
    /// `PROCESS_EXEC`: the file the kernel ran, as it was named (`bprm->interp`): a
    /// script's `#!` interpreter, binfmt_misc's handler, or else the path the caller gave.
    pub program: [u8; PROGRAM_LEN],
}

/// Bytes of `ProcessEvent::program`.
pub const PROGRAM_LEN: usize = 256;

/// `ProcessEvent::exit_status` when the kernel's BTF did not say where to read it.
pub const EXIT_STATUS_UNKNOWN: u32 = u32::MAX;

/// Bytes of arguments a `ProcessEvent` carries.
pub const ARGS_LEN: usize = 384;
/// Longest single argument kept, with its NUL.
pub const ARG_MAX_LEN: usize = 128;
/// Most arguments read.
pub const MAX_ARGS: usize = 16;

/// Scratch space for reading execve's arguments. Every read has a constant size at an
/// offset masked to `EXEC_ARGS_MASK`, so the buffer holds the mask plus one more argument.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct ExecArgs {
    pub len: u32,
    pub _pad: u32,
    pub data: [u8; EXEC_ARGS_MASK + 1 + ARG_MAX_LEN],
}

/// Offsets into `ExecArgs::data` are masked with this (a power of two minus one, at least
/// `ARGS_LEN`) so that the verifier can bound them.
pub const EXEC_ARGS_MASK: usize = 511;

impl Default for ProcessEvent {
    fn default() -> Self {
        Self {
            ts_ns: 0,
            clone_flags: 0,
            clone_enter_ns: 0,
            cgroup_id: 0,
            kind: 0,
            pid: 0,
            tid: 0,
            child_tid: 0,
            uid: 0,
            group_dead: 0,
            comm: [0; COMM_LEN],
            args_len: 0,
            exit_status: EXIT_STATUS_UNKNOWN,
            args: [0; ARGS_LEN],
            program_len: 0,
            _pad: 0,
            program: [0; PROGRAM_LEN],
        }
    }
}

/// `SchedTimes::waker_kind`: how the call's last wakeup came. A thread made it (a write
/// to a pipe, a futex wake, a signal).
pub const WAKER_THREAD: u32 = 1;
/// A softirq made it, on the back of `waker_tid`: on loopback networking that thread is
/// the sender, but a softirq can also run on whatever thread an interrupt found.
pub const WAKER_SOFTIRQ: u32 = 2;
/// A hardware interrupt handler made it (a device finished I/O): no thread did.
pub const WAKER_IRQ: u32 = 3;
/// A timer expired (a sleep or a timeout ended): no thread did.
pub const WAKER_TIMER: u32 = 4;

/// Where a traced call spent its time, from the scheduler's tracepoints (`record
/// --sched`). Sent after the call's record. The three times add up to its duration.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedTimes {
    /// On a CPU.
    pub oncpu_ns: u64,
    /// Runnable, waiting for a CPU.
    pub runq_ns: u64,
    /// Off the CPU and not runnable: asleep, waiting for I/O or for another thread.
    pub blocked_ns: u64,
    /// When it was last woken (`bpf_ktime_get_ns()`), 0 if never.
    pub woken_ns: u64,
    /// The thread that woke it last, 0 for none (never woken, or woken by an interrupt).
    pub waker_tid: u32,
    /// The waker's syscall in progress, `NO_SYSCALL` when it was in none or is not traced.
    pub waker_nr: u32,
    pub waker_comm: [u8; COMM_LEN],
    /// `WAKER_*`, 0 when it was never woken during the call.
    pub waker_kind: u32,
    /// The waker's process (tgid), with `waker_tid`.
    pub waker_pid: u32,
    /// `record --stacks`: the id, in `KSTACKS`, of the kernel stack where the call blocked
    /// longest; [`NO_STACK`] when it never blocked, or the stack could not be stored.
    pub blocked_stack: i32,
    pub _pad: u32,
}

/// `SchedTimes::blocked_stack` when there is none.
pub const NO_STACK: i32 = -1;

/// `record --stacks`: frames kept of a kernel stack, innermost first. Blocked syscalls'
/// stacks run to 10-30 frames; the kernel refuses a stack map deeper than its
/// `kernel.perf_event_max_stack` (127 by default).
pub const STACK_DEPTH: usize = 64;

/// No time, no waker, and no stack: 0 is a stack id like any other.
impl Default for SchedTimes {
    fn default() -> Self {
        Self {
            oncpu_ns: 0,
            runq_ns: 0,
            blocked_ns: 0,
            woken_ns: 0,
            waker_tid: 0,
            waker_nr: 0,
            waker_comm: [0; COMM_LEN],
            waker_kind: 0,
            waker_pid: 0,
            blocked_stack: NO_STACK,
            _pad: 0,
        }
    }
}

/// `record --stacks`: bytes of the user stack copied from the stack pointer, as perf's DWARF
/// mode copies by default. Enough for the frames of most call chains; the unwinder marks
/// where the copy ends before the chain does.
pub const USER_STACK_BYTES: usize = 8192;

/// `record --stacks`: what unwinding a slow call's user-space chain starts from, taken as it
/// returns: its registers and the top of its stack. Sent through the `USER_STACKS` ring, not
/// a staging area: it is rare and far larger than a staging record. The recorder unwinds it
/// with the binaries' unwind tables at once and keeps only the frames, never these bytes.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct UserStackSample {
    pub pid: u32,
    pub tid: u32,
    /// The call's `SyscallEvent::enter_ns`: with `tid`, it names the call.
    pub enter_ns: u64,
    /// The call's `SyscallEvent::duration_ns`: the recorder keeps a chain until the merge
    /// has passed the call's return.
    pub duration_ns: u64,
    pub ip: u64,
    pub sp: u64,
    pub bp: u64,
    /// Bytes of `stack` read from `sp` up; 0 when none could be.
    pub len: u32,
    pub _pad: u32,
    pub stack: [u8; USER_STACK_BYTES],
}

/// A `SyscallEvent` with its `SchedTimes`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedEvent {
    pub event: SyscallEvent,
    pub sched: SchedTimes,
}

/// A `DetailedEvent` with its `SchedTimes`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DetailedSchedEvent {
    pub detailed: DetailedEvent,
    pub sched: SchedTimes,
}

/// `SchedSlot::state`: the thread is in no traced call.
pub const SCHED_IDLE: u32 = 0;
/// In a traced call, on a CPU.
pub const SCHED_ON_CPU: u32 = 1;
/// In a traced call, runnable but not running (preempted, or woken and not yet picked).
pub const SCHED_RUNNABLE: u32 = 2;
/// In a traced call, off the CPU without being preempted: blocked if a wakeup ends the
/// stretch, else it never slept (a signal was pending) and waited for the CPU.
pub const SCHED_BLOCKED: u32 = 3;

/// A traced thread's scheduling during its call in flight, keyed by its `task_struct`'s
/// address: that is what the scheduler's tracepoints pass, and the programs read no kernel
/// structure, so no field offset has to be known.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SchedSlot {
    /// `SCHED_*`.
    pub state: u32,
    /// The waker seen by `sched_waking`, made the call's waker when `sched_wakeup` ends a
    /// blocked stretch: the first runs in the waker, the second maybe on another CPU.
    pub waking_tid: u32,
    pub waking_nr: u32,
    pub waking_kind: u32,
    pub waking_pid: u32,
    pub waking_comm: [u8; COMM_LEN],
    /// When `sched_waking` ran, in the waker: the moment it woke the thread.
    pub waking_ns: u64,
    /// When `state` last changed.
    pub since_ns: u64,
    /// `record --stacks`: the stack where the thread last went off the CPU blocked, which
    /// becomes the call's when the wakeup that ends the stretch finds it the longest yet.
    pub pending_stack: i32,
    pub _pad: u32,
    /// The longest blocked stretch of the call so far.
    pub longest_block_ns: u64,
    pub times: SchedTimes,
}

/// `WakeContext`'s indices: how deep each kind of interrupt context is on this CPU.
pub const CTX_IRQ: u32 = 0;
pub const CTX_SOFTIRQ: u32 = 1;
pub const CTX_TIMER: u32 = 2;
pub const CTX_KINDS: u32 = 3;

// Records are told apart by size in the staging areas.
const _: () = assert!(size_of::<SyscallEvent>() != size_of::<DetailedEvent>());
const _: () = assert!(size_of::<SyscallEvent>() != size_of::<ProcessEvent>());
const _: () = assert!(size_of::<DetailedEvent>() != size_of::<ProcessEvent>());
const _: () = {
    let sizes = [
        size_of::<SyscallEvent>(),
        size_of::<DetailedEvent>(),
        size_of::<ProcessEvent>(),
        size_of::<SchedEvent>(),
        size_of::<DetailedSchedEvent>(),
    ];
    let mut i = 0;
    while i < sizes.len() {
        let mut j = i + 1;
        while j < sizes.len() {
            assert!(sizes[i] != sizes[j]);
            j += 1;
        }
        i += 1;
    }
};

/// Threads per element of the `TRACED` array: one byte each, a page an element.
pub const TIDS_PER_PAGE: u32 = 4096;

/// An element of the `TRACED` array: a byte per thread id, non-zero where `THREADS` may
/// hold that thread's slot. Set before a slot is added, and cleared only by a dying thread
/// after its slot is removed, so that a zero byte always means no slot.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct TracedPage {
    pub tids: [u8; TIDS_PER_PAGE as usize],
}

/// Bytes of one staging chunk that records start in. A power of two, so that positions
/// map to chunks and offsets by shifts and masks the verifier can bound.
pub const STAGE_CHUNK_BYTES: usize = 16 * 1024;
/// Room after a chunk's last start offset: a record that starts near the end runs on into
/// it, so that no record is ever split. At least the largest record with its header.
pub const STAGE_SLACK: usize = 768;

/// One chunk of a CPU's staging area (an element of the `STAGE` array).
///
/// Why not the BPF ring buffer: its reserve and submit helpers cost about 110 ns a call on
/// the kernel side here (BENCHMARKS.md), and user space maps it twice. Each CPU instead
/// writes its records with plain stores into its own chunks, and the recorder reads them
/// through one `mmap` of the array.
#[repr(C)]
pub struct StageChunk {
    pub bytes: [u8; STAGE_CHUNK_BYTES + STAGE_SLACK],
}

/// The state of one CPU's staging area (an element of the `STAGE_HEADS` array). The
/// kernel's half and the recorder's half sit in separate cache lines, so that neither side
/// bounces the other's line on every record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageHead {
    /// Position after the last whole record, in bytes since the capture began. Written by
    /// the kernel after the record's bytes.
    pub head: u64,
    /// Non-zero from before a program on this CPU reads the clock that orders its record
    /// until it is done (whether or not it sends one), so that a reader that finds it zero
    /// knows every record yet to come on this CPU was sent after that moment.
    pub busy: u64,
    /// The kernel's copy of `tail`, refreshed only when the area looks full.
    pub tail_seen: u64,
    /// This CPU's chunks: `chunks` elements of `STAGE` from `first_chunk`, a power of two.
    /// Set by the recorder before the programs attach, so that CPUs online at the start
    /// share the buffer and those offline get the least.
    pub first_chunk: u32,
    pub chunks: u32,
    pub _kernel_pad: [u64; 4],
    /// Position up to which the recorder is done with the records: the kernel may write
    /// over what is before it. Written by the recorder only.
    pub tail: u64,
    pub _user_pad: [u64; 7],
}

/// Precedes each record in a staging area.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StageHeader {
    /// Bytes of the record after this header; records are told apart by it.
    pub len: u32,
    pub _pad: u32,
}

/// Bytes a record of `len` takes in a staging area, header included.
pub const fn stage_size(len: usize) -> u64 {
    (size_of::<StageHeader>() + len) as u64
}

const _: () = assert!(stage_size(size_of::<ProcessEvent>()) as usize <= STAGE_SLACK);
const _: () = assert!(stage_size(size_of::<DetailedEvent>()) as usize <= STAGE_SLACK);
const _: () = assert!(stage_size(size_of::<DetailedSchedEvent>()) as usize <= STAGE_SLACK);
const _: () = assert!(size_of::<SchedEvent>().is_multiple_of(8));
const _: () = assert!(size_of::<DetailedSchedEvent>().is_multiple_of(8));
const _: () = assert!(size_of::<SyscallEvent>().is_multiple_of(8));
const _: () = assert!(size_of::<DetailedEvent>().is_multiple_of(8));
const _: () = assert!(size_of::<ProcessEvent>().is_multiple_of(8));

/// Where the record after one at `pos` of `size` bytes starts. Both sides follow this rule:
/// a record that reached past its chunk's start offsets (into the slack) ends the chunk.
pub const fn stage_next(pos: u64, size: u64) -> u64 {
    let chunk = STAGE_CHUNK_BYTES as u64;
    if pos % chunk + size > chunk {
        (pos / chunk + 1) * chunk
    } else {
        pos + size
    }
}

/// Which of a CPU's `chunks` (a power of two) holds `pos`. Both sides follow this rule.
#[inline(always)]
pub const fn stage_chunk(pos: u64, chunks: u32) -> u32 {
    (pos / STAGE_CHUNK_BYTES as u64) as u32 & chunks.wrapping_sub(1)
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
    /// `SLOT_*`.
    pub flags: u32,
    /// `EXTRA_*` of the call in flight.
    pub extra_kind: u32,
    pub extra_len: u32,
    pub extra_flags: u32,
    /// `SyscallInfo` of the call in flight, `traced | context << 1 | arg << 8`, so that the
    /// exit needs no second lookup.
    pub info: u32,
    /// The thread's name, valid while `SLOT_COMM_KNOWN` is set. Asking the kernel for it
    /// on every call cost a twentieth of a traced getppid loop's time. Written only by the
    /// thread itself, like `flags`.
    pub comm: [u8; COMM_LEN],
    /// The name a rename gave, written by the renaming thread (maybe on another CPU) before
    /// it bumps `rename_gen`. The kernel fires `task_rename` before it copies the new name,
    /// so the thread takes it from here rather than asking the kernel.
    pub renamed_to: [u8; COMM_LEN],
    pub rename_gen: u32,
    /// `rename_gen` when the thread last took its name; written only by the thread.
    pub seen_gen: u32,
    /// `--cgroup`: the generation of the cgroup's id (`CGROUP_NOW`) when the thread was
    /// last found out of scope; written only by the thread.
    pub scope_gen: u32,
    pub _pad: u32,
    /// Context read at entry (a path, a socket address) for the exit to send.
    pub extra: [u8; EXTRA_LEN],
}

/// `CGROUP_NOW[CGROUP_NOW_ID]`: the id of the directory `--cgroup` names, once it has been
/// made anew (0 until then: the id given at load stands; `CGROUP_GONE` while there is none).
pub const CGROUP_NOW_ID: u32 = 0;
/// `CGROUP_NOW[CGROUP_NOW_GEN]`: how many times that id changed.
pub const CGROUP_NOW_GEN: u32 = 1;
/// `CGROUP_NOW[CGROUP_NOW_MOVES]`: how many times, while `--cgroup` records, a process
/// was moved from one cgroup to another (any two): a thread left out may have been moved
/// in, and asks again at its next call.
pub const CGROUP_NOW_MOVES: u32 = 2;
/// No cgroup has this id.
pub const CGROUP_GONE: u64 = u64::MAX;

/// `ThreadSlot::flags`: the thread is followed (its children inherit a slot) but its calls
/// are not recorded: `--comm` or `--cgroup` leave it out.
pub const SLOT_IGNORED: u32 = 1;
/// `ThreadSlot::flags`: a call that changes fds was lost; the next record says so.
pub const SLOT_FD_LOST: u32 = 2;
/// `ThreadSlot::flags`: `comm` holds the thread's name. Clear on a new thread's slot.
pub const SLOT_COMM_KNOWN: u32 = 4;
/// `ThreadSlot::flags`: the thread has entered a call since its slot was made, so a return
/// with no call in flight is one the kernel stopped before the entry hook (seccomp), not
/// the return of the fork that made the thread, nor a call in flight when `-p` took it.
/// Clear on a new thread's slot and after an exec.
pub const SLOT_ENTERED: u32 = 8;

impl ThreadSlot {
    /// A traced thread with no syscall in flight: its first exit is ignored, so a thread
    /// added while blocked in a call never yields a half-measured event.
    pub const IDLE: ThreadSlot = ThreadSlot {
        enter_ns: 0,
        args: [0; 6],
        nr: NO_SYSCALL,
        flags: 0,
        extra_kind: 0,
        extra_len: 0,
        extra_flags: 0,
        info: 0,
        comm: [0; COMM_LEN],
        renamed_to: [0; COMM_LEN],
        rename_gen: 0,
        seen_gen: 0,
        scope_gen: 0,
        _pad: 0,
        extra: [0; EXTRA_LEN],
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
unsafe impl aya::Pod for SyscallInfo {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for AggregateValue {}
#[cfg(feature = "user")]
unsafe impl aya::Pod for SchedSlot {}
