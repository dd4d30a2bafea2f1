//! What the recorder sets at load time, and the x86_64 numbers the programs test for.

#[cfg(not(bpf_target_arch = "x86_64"))]
compile_error!("only x86_64 is supported: the pt_regs argument layout below is x86_64's");

/// x86_64 `exit` and `exit_group`: they never reach sys_exit, so they are sent at entry.
pub(crate) const NR_EXIT: u64 = 60;
pub(crate) const NR_EXIT_GROUP: u64 = 231;
pub(crate) const NR_EXECVE: u64 = 59;
pub(crate) const NR_EXECVEAT: u64 = 322;
pub(crate) const NR_OPEN: u64 = 2;
pub(crate) const NR_CREAT: u64 = 85;
pub(crate) const NR_OPENAT: u64 = 257;
pub(crate) const NR_OPENAT2: u64 = 437;
/// ia32 `exit` and `exit_group`, as the programs number them (`COMPAT_BASE` + i386's).
pub(crate) const NR_COMPAT_EXIT: u64 = tracepost_common::COMPAT_BASE as u64 + 1;
pub(crate) const NR_COMPAT_EXIT_GROUP: u64 = tracepost_common::COMPAT_BASE as u64 + 252;
/// ia32 `execve` and `execveat`, as the programs number them.
pub(crate) const NR_COMPAT_EXECVE: u64 = tracepost_common::COMPAT_BASE as u64 + 11;
pub(crate) const NR_COMPAT_EXECVEAT: u64 = tracepost_common::COMPAT_BASE as u64 + 358;
/// `AT_FDCWD`: a path relative to the working directory.
pub(crate) const AT_FDCWD: i32 = -100;

/// Whether `nr` is an exec, of either ABI.
#[inline(always)]
pub(crate) fn is_exec(nr: u64) -> bool {
    nr == NR_EXECVE || nr == NR_EXECVEAT || nr == NR_COMPAT_EXECVE || nr == NR_COMPAT_EXECVEAT
}
/// `pt_regs.cs` of a task running 32-bit code (`__USER32_CS`).
pub(crate) const USER32_CS: u64 = 0x23;
pub(crate) const CLONE_THREAD: u64 = 0x0001_0000;
pub(crate) const CLONE_FS: u64 = 0x0200;
pub(crate) const CLONE_FILES: u64 = 0x0400;
pub(crate) const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;
/// Socket addresses are at most `sizeof(struct sockaddr_storage)`.
pub(crate) const SOCKADDR_MAX: u32 = 128;

/// Set by the recorder at load time (`.rodata`, so reading them costs no map lookup).
#[unsafe(no_mangle)]
pub(crate) static TRACE_ALL: u32 = 0;
#[unsafe(no_mangle)]
pub(crate) static SELF_TGID: u32 = 0;
/// Where `exit_code` sits in this kernel's `struct task_struct`, from its BTF; 0 when
/// unknown. Without it a process killed by a signal has its status only while /proc still
/// shows it as a zombie, and a parent that reaps at once takes that away.
#[unsafe(no_mangle)]
pub(crate) static TASK_EXIT_CODE_OFFSET: u32 = 0;
/// Where `p` (the new program's stack pointer, once it is loaded), `argc` and `filename` sit
/// in this kernel's `struct linux_binprm`, from its BTF; 0 when unknown. With them the exec
/// event's arguments are read from the new program's stack, which the kernel has just written; at
/// the execve's entry they may lie in a page the caller never touched (a forked child's
/// string literals), which a BPF program cannot fault in.
#[unsafe(no_mangle)]
pub(crate) static BINPRM_P_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
pub(crate) static BINPRM_ARGC_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
pub(crate) static BINPRM_FILENAME_OFFSET: u32 = 0;
/// `bprm->interp`: the file the kernel ran (a script's interpreter), as it was named.
#[unsafe(no_mangle)]
pub(crate) static BINPRM_INTERP_OFFSET: u32 = 0;
/// Where the programs find the file an fd refers to, and its type, from the BTF: the
/// offsets of `task_struct.files`, `files_struct.fdt`, `fdtable.max_fds`, `fdtable.fd`,
/// `file.f_inode` and `inode.i_mode`, used only where `FILE_OFFSETS_KNOWN` is 1 (two of
/// them are 0 on every kernel). An open that returns a FIFO is marked so
/// ([`tracepost_common::FLAG_OPENED_FIFO`]).
#[unsafe(no_mangle)]
pub(crate) static FILE_OFFSETS_KNOWN: u32 = 0;
#[unsafe(no_mangle)]
pub(crate) static TASK_FILES_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
pub(crate) static FILES_FDT_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
pub(crate) static FDT_MAX_FDS_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
pub(crate) static FDT_FD_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
pub(crate) static FILE_INODE_OFFSET: u32 = 0;
#[unsafe(no_mangle)]
pub(crate) static INODE_MODE_OFFSET: u32 = 0;
/// `--min-duration`: shorter calls are counted in `AGGREGATES` instead of sent.
#[unsafe(no_mangle)]
pub(crate) static MIN_DURATION_NS: u64 = 0;
/// `--failed`: successful calls are counted in `AGGREGATES` instead of sent.
#[unsafe(no_mangle)]
pub(crate) static FAILED_ONLY: u32 = 0;
/// `--sched`: split each traced call's time by the scheduler's tracepoints.
#[unsafe(no_mangle)]
pub(crate) static SCHED: u32 = 0;
/// `--stacks`: with `SCHED`, keep the kernel stack where each call blocked longest.
#[unsafe(no_mangle)]
pub(crate) static STACKS: u32 = 0;
/// `--stack-min`: with `STACKS`, the user stack of each recorded call at least this long is
/// sent ([`crate::user_stack`]).
#[unsafe(no_mangle)]
pub(crate) static STACK_MIN_NS: u64 = u64::MAX;
/// `--comm`: only threads whose name is a key of `COMMS` are recorded.
#[unsafe(no_mangle)]
pub(crate) static FILTER_COMM: u32 = 0;
/// `--cgroup`: only tasks in this cgroup v2 (its id, at this depth) or below are recorded.
#[unsafe(no_mangle)]
pub(crate) static FILTER_CGROUP_ID: u64 = 0;
#[unsafe(no_mangle)]
pub(crate) static FILTER_CGROUP_LEVEL: u32 = 0;
/// Offsets in the `task/task_newtask` record; they can move between kernels.
#[unsafe(no_mangle)]
pub(crate) static NEWTASK_PID_OFFSET: u32 = 8;
#[unsafe(no_mangle)]
pub(crate) static NEWTASK_FLAGS_OFFSET: u32 = 32;
/// Offsets of `pid` and `newcomm` in the `task/task_rename` record.
#[unsafe(no_mangle)]
pub(crate) static RENAME_PID_OFFSET: u32 = 8;
#[unsafe(no_mangle)]
pub(crate) static RENAME_NEWCOMM_OFFSET: u32 = 28;

#[inline(always)]
pub(crate) fn global(v: &u32) -> u32 {
    // The verifier only sees the value the loader patched in if the load really happens.
    unsafe { core::ptr::read_volatile(v) }
}

#[inline(always)]
pub(crate) fn global_u64(v: &u64) -> u64 {
    unsafe { core::ptr::read_volatile(v) }
}
