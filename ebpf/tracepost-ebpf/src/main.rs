//! Kernel side of tracepost.
//!
//! `sys_enter` stores the entry time, arguments and any context (a path, a socket address)
//! in the calling thread's slot, `sys_exit` turns the slot into one record in this CPU's
//! staging area ([`stage`]). Process lifecycle events go the same way. A thread is traced
//! exactly when it has a slot, so the filter costs no extra lookup: one hash lookup on each
//! side of a traced call, after a byte per thread id ([`scope::may_have_slot`]) that lets
//! every other thread's calls, most of a host's, return without one. Slots are inherited
//! on fork and dropped on exit, which is how a command's descendants are followed and how
//! dead threads stop costing memory.
//!
//! Each hook has its file ([`sys_enter`], [`sys_exit`], [`process`]); what they share is in
//! [`maps`], [`scope`] (who is recorded), [`context`] (what a call carries) and [`config`]
//! (what the recorder sets at load time).
#![no_std]
#![no_main]
// An empty `asm!` is the only compiler barrier the BPF backend accepts (`stage::barrier`).
#![feature(asm_experimental_arch)]

mod config;
mod context;
mod file_kind;
mod maps;
mod process;
mod sched;
mod scope;
mod stage;
mod sys_enter;
mod sys_exit;
mod user_stack;

/// The names every program file uses: aya's, the layouts shared with user space, and this
/// crate's own helpers.
mod prelude {
    pub(crate) use crate::{config::*, context::*, maps::*, scope::*, stage::Stage};
    pub(crate) use aya_ebpf::{
        helpers::{
            bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_get_current_uid_gid,
            bpf_get_smp_processor_id, bpf_ktime_get_ns, bpf_probe_read_kernel, generated,
        },
        macros::{btf_map, btf_tracepoint, map, raw_tracepoint, tracepoint},
        maps::{Array, HashMap, PerCpuArray, PerCpuHashMap},
        programs::{BtfTracePointContext, RawTracePointContext, TracePointContext},
    };
    pub(crate) use tracepost_common::{
        ARG_MAX_LEN, ARGS_LEN, AggregateKey, AggregateValue, BUCKET_UNKNOWN, CGROUP_NOW_GEN,
        CGROUP_NOW_ID, CGROUP_NOW_MOVES, COMM_LEN, COMPAT_BASE, CONTEXT_CLOEXEC_IOCTL, CTX_IRQ,
        CTX_KINDS, CTX_SOFTIRQ, CTX_TIMER, DetailedEvent, ERRNO_UNKNOWN, EXEC_ARGS_MASK,
        EXIT_STATUS_UNKNOWN, EXTRA_CLONE_ARGS, EXTRA_FD_PAIR, EXTRA_FD_PREFIXED, EXTRA_LEN,
        EXTRA_NONE, EXTRA_PATH, EXTRA_PATH_PAIR, EXTRA_SECOND_TRUNCATED, EXTRA_SECOND_UNREAD,
        EXTRA_SOCKADDR_IN, EXTRA_SOCKADDR_OUT, EXTRA_TRUNCATED, EXTRA_UNREADABLE, ExecArgs,
        FIOCLEX, FIONCLEX, FLAG_CONTEXT_ONLY, FLAG_FD_STATE_LOST, FLAG_NO_RETURN, FLAG_NOT_RUN,
        FLAG_OPENED_FIFO, LOST_COUNTERS, LOST_PROCESS_EVENTS, LOST_RING_FULL, LOST_STACKS,
        LOST_THREAD_TABLE_FULL, LOST_USER_STACKS, MAX_ARGS, MAX_SYSCALL_NR, NO_STACK, NO_SYSCALL,
        PATH_PAIR_HALF, PROCESS_EXEC, PROCESS_EXIT, PROCESS_NEW, PROCESS_THREAD_APART, PROGRAM_LEN,
        ProcessEvent, REASON_BELOW_MIN_DURATION, REASON_NOT_FAILED, REASON_RING_FULL,
        REASON_THREAD_TABLE_FULL, SCHED_BLOCKED, SCHED_IDLE, SCHED_ON_CPU, SCHED_RUNNABLE,
        SLOT_COMM_KNOWN, SLOT_ENTERED, SLOT_FD_LOST, SLOT_IGNORED, STACK_DEPTH, STAGE_CHUNK_BYTES,
        SchedSlot, SchedTimes, StageChunk, StageHead, StageHeader, SyscallEvent, SyscallInfo,
        TIDS_PER_PAGE, ThreadSlot, TracedPage, UNKEYED_BELOW_MIN_DURATION, UNKEYED_NOT_FAILED,
        UNKEYED_RING_FULL, UNKEYED_THREAD_TABLE_FULL, UNWANTED_SYSCALL, USER_STACK_BYTES,
        UserStackSample, WAKER_IRQ, WAKER_SOFTIRQ, WAKER_THREAD, WAKER_TIMER, stage_chunk,
        stage_next, stage_size,
    };
}

#[cfg(not(test))]
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    loop {}
}

#[unsafe(link_section = "license")]
#[unsafe(no_mangle)]
static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
