//! What a call carries besides its number: arguments, and the path, socket address, fd
//! pair or argument vector read from the caller's memory.
use crate::prelude::*;

/// Syscall arguments in ABI order from x86_64 `struct pt_regs`: rdi, rsi, rdx, r10, r8, r9.
/// One probe read of the first 15 registers is cheaper than six reads of one.
#[inline(always)]
pub(crate) fn syscall_args(regs: *const [u64; 15]) -> [u64; 6] {
    match unsafe { bpf_probe_read_kernel(regs) } {
        Ok(r) => [
            r[REG_DI], r[REG_SI], r[REG_DX], r[REG_R10], r[REG_R8], r[REG_R9],
        ],
        Err(_) => [0; 6],
    }
}

/// The same arguments where `regs` is a pointer the verifier knows the type of (a BTF
/// tracepoint's): plain loads, which the JIT turns into fault-safe moves. The probe read
/// they replace was about 45 ns of a 290 ns entry program (BENCHMARKS.md).
///
/// # Safety
/// `regs` must be the `struct pt_regs *` argument of a BTF tracepoint.
#[inline(always)]
pub(crate) unsafe fn syscall_args_btf(regs: *const u64) -> [u64; 6] {
    let reg = |i: usize| unsafe { core::ptr::read_volatile(regs.add(i)) };
    [
        reg(REG_DI),
        reg(REG_SI),
        reg(REG_DX),
        reg(REG_R10),
        reg(REG_R8),
        reg(REG_R9),
    ]
}

/// Whether the call comes from 32-bit code (an ia32 task): its number and arguments are
/// i386's. Read from `pt_regs.cs`, as `regs` of [`syscall_args_btf`].
///
/// # Safety
/// `regs` must be the `struct pt_regs *` argument of a BTF tracepoint.
#[inline(always)]
pub(crate) unsafe fn is_compat_btf(regs: *const u64) -> bool {
    unsafe { core::ptr::read_volatile(regs.add(REG_CS)) == USER32_CS }
}

/// The same, through a probe read, for the raw tracepoint.
#[inline(always)]
pub(crate) fn is_compat(regs: *const u64) -> bool {
    matches!(
        unsafe { bpf_probe_read_kernel(regs.wrapping_add(REG_CS)) },
        Ok(USER32_CS)
    )
}

/// An ia32 call's arguments: ebx, ecx, edx, esi, edi, ebp.
///
/// # Safety
/// `regs` must be the `struct pt_regs *` argument of a BTF tracepoint.
#[inline(always)]
pub(crate) unsafe fn compat_args_btf(regs: *const u64) -> [u64; 6] {
    let reg = |i: usize| unsafe { core::ptr::read_volatile(regs.add(i)) } & 0xffff_ffff;
    [
        reg(REG_BX),
        reg(REG_CX),
        reg(REG_DX),
        reg(REG_SI),
        reg(REG_DI),
        reg(REG_BP),
    ]
}

/// The same, through a probe read, for the raw tracepoint.
pub(crate) fn compat_args(regs: *const [u64; 15]) -> [u64; 6] {
    match unsafe { bpf_probe_read_kernel(regs) } {
        Ok(r) => [
            r[REG_BX], r[REG_CX], r[REG_DX], r[REG_SI], r[REG_DI], r[REG_BP],
        ]
        .map(|v| v & 0xffff_ffff),
        Err(_) => [0; 6],
    }
}

// Indices of the registers in x86_64 `struct pt_regs`, whose order is
// r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx dx si di orig_ax ip cs: the architecture's
// ABI, not a kernel's choice, so no BTF is needed to find them.
const REG_BP: usize = 4;
const REG_BX: usize = 5;
const REG_CX: usize = 11;
const REG_CS: usize = 17;
const REG_R10: usize = 7;
const REG_R9: usize = 8;
const REG_R8: usize = 9;
const REG_DX: usize = 12;
const REG_SI: usize = 13;
const REG_DI: usize = 14;
const REG_ORIG_AX: usize = 15;

/// The number and arguments of the call returning with `regs`, through probe reads, for a
/// call whose entry the hook never saw (rare): the kernel leaves `orig_ax` and the argument
/// registers as the call found them. `None` where a ptrace tracer skipped the call, which
/// sets the number to -1: which call it was is gone.
#[inline(always)]
pub(crate) fn call_in_regs(regs: *const u8) -> Option<(u64, [u64; 6])> {
    let regs = regs.cast::<u64>();
    let nr: u64 = unsafe { bpf_probe_read_kernel(regs.wrapping_add(REG_ORIG_AX)) }.ok()?;
    if nr as i64 == -1 {
        return None;
    }
    if is_compat(regs) {
        let nr = nr & 0xffff_ffff;
        let nr = if nr < COMPAT_BASE as u64 {
            nr + COMPAT_BASE as u64
        } else {
            nr
        };
        Some((nr, compat_args(regs.cast())))
    } else {
        Some((nr, syscall_args(regs.cast())))
    }
}

#[inline(always)]
pub(crate) fn syscall_info(nr: u64) -> SyscallInfo {
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
pub(crate) fn arg_at(args: &[u64; 6], index: u8) -> u64 {
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
pub(crate) fn read_sockaddr(dst: *mut u8, src: u64, len: u64) -> u32 {
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

/// Reads an argument vector (at `argv`, NULL-terminated, of 8-byte pointers or, with
/// `narrow`, a 32-bit program's 4-byte ones) for the exec event. Best effort: an argument
/// that cannot be read ends the list. At the execve's entry this is the caller's vector,
/// where the kernel's `linux_binprm` layout is unknown; otherwise the new program's, on
/// the stack the kernel has just written (`sched_process_exec`).
#[inline(always)]
pub(crate) fn save_exec_args(tid: u32, argv: u64, narrow: bool) {
    let Some(scratch) = EXEC_SCRATCH.get_ptr_mut(0) else {
        return;
    };
    let scratch = unsafe { &mut *scratch };
    let mut off: usize = 0;
    for i in 0..MAX_ARGS {
        if argv == 0 || off >= ARGS_LEN {
            break;
        }
        let ptr = if narrow {
            let slot = (argv + (i * 4) as u64) as *const u32;
            unsafe { aya_ebpf::helpers::bpf_probe_read_user(slot) }.map(u64::from)
        } else {
            let slot = (argv + (i * 8) as u64) as *const u64;
            unsafe { aya_ebpf::helpers::bpf_probe_read_user(slot) }
        };
        let Ok(ptr) = ptr else {
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
        if n < 0 {
            break;
        }
        // Before Linux 6.x's fix an empty string read as 0 bytes, not 1 (its NUL).
        if n == 0 {
            unsafe { *dst = 0 };
        }
        off += n.max(1) as usize;
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
pub(crate) fn read_entry_extra(slot: &mut ThreadSlot, info: SyscallInfo, args: &[u64; 6]) {
    slot.extra_kind = info.extra as u32;
    slot.extra_len = 0;
    slot.extra_flags = 0;
    // The low four bits: a path pair keeps its second argument in the high ones.
    let ptr = arg_at(args, info.arg & 0xf);
    match info.extra {
        EXTRA_PATH_PAIR => {
            let (len, flags) = read_str::<PATH_PAIR_HALF>(slot.extra.as_mut_ptr(), ptr);
            slot.extra_len = len;
            slot.extra_flags = flags;
        }
        EXTRA_PATH => {
            let (len, flags) = read_str::<EXTRA_LEN>(slot.extra.as_mut_ptr(), ptr);
            slot.extra_len = len;
            slot.extra_flags = flags;
        }
        EXTRA_SOCKADDR_IN => {
            let len = arg_at(args, info.arg + 1);
            match read_sockaddr(slot.extra.as_mut_ptr(), ptr, len) {
                0 => slot.extra_flags = EXTRA_UNREADABLE,
                n => slot.extra_len = n,
            }
        }
        EXTRA_SOCKADDR_OUT => {
            // The buffer's size, as the caller gave it: the kernel writes no more than
            // that, and the exit reads back only what it wrote.
            slot.extra_len = read_user_u32(arg_at(args, info.arg + 1));
        }
        EXTRA_CLONE_ARGS => {
            if read_user_u64(slot.extra.as_mut_ptr(), ptr) {
                slot.extra_len = 8;
            } else {
                slot.extra_flags = EXTRA_UNREADABLE;
            }
        }
        _ => {}
    }
}

/// Copies 8 bytes of user memory at `ptr` (clone's flags, pipe's two fds) to `dst`.
#[inline(always)]
fn read_user_u64(dst: *mut u8, ptr: u64) -> bool {
    unsafe { generated::bpf_probe_read_user(dst.cast(), 8, ptr as *const core::ffi::c_void) == 0 }
}

/// The `u32` at user address `ptr` (a socklen_t), 0 if there is none or it cannot be read.
#[inline(always)]
fn read_user_u32(ptr: u64) -> u32 {
    if ptr == 0 {
        return 0;
    }
    unsafe { aya_ebpf::helpers::bpf_probe_read_user(ptr as *const u32) }.unwrap_or(0)
}

/// Reads a path argument into the record being sent.
#[inline(always)]
pub(crate) fn read_path(out: &mut DetailedEvent, ptr: u64) {
    let (len, flags) = read_str::<EXTRA_LEN>(out.extra.as_mut_ptr(), ptr);
    out.extra_len = len;
    out.extra_flags = flags;
}

/// Reads a NUL-terminated string of at most `N` bytes, its NUL included, from user memory
/// at `ptr` to `dst`. Returns its length without the NUL, and `EXTRA_TRUNCATED` when it
/// filled the `N` bytes (it may have been cut) or `EXTRA_UNREADABLE`. `N` is a constant,
/// as the verifier requires of the size.
#[inline(always)]
fn read_str<const N: usize>(dst: *mut u8, ptr: u64) -> (u32, u32) {
    let n = unsafe {
        generated::bpf_probe_read_user_str(dst.cast(), N as u32, ptr as *const core::ffi::c_void)
    };
    if n < 0 {
        (0, EXTRA_UNREADABLE)
    } else {
        // n counts the NUL; an empty string read as 0 before Linux 6.x's fix.
        let len = n.max(1) as u32 - 1;
        (len, if n as usize >= N { EXTRA_TRUNCATED } else { 0 })
    }
}

/// A rename's paths into the record being sent: the source again if its page was not
/// resident at entry, and the target once the call succeeded (the kernel has just read
/// it, so it is resident). A failed rename changed no name: its target is not read.
#[inline(always)]
pub(crate) fn read_path_pair(out: &mut DetailedEvent, arg: u8, args: &[u64; 6], ret: i64) {
    if out.extra_flags & EXTRA_UNREADABLE != 0 {
        let (len, flags) =
            read_str::<PATH_PAIR_HALF>(out.extra.as_mut_ptr(), arg_at(args, arg & 0xf));
        out.extra_len = len;
        out.extra_flags = flags;
    }
    if ret != 0 {
        out.extra_flags |= EXTRA_SECOND_UNREAD;
        return;
    }
    let second = unsafe { out.extra.as_mut_ptr().add(PATH_PAIR_HALF) };
    let (len, flags) = read_str::<PATH_PAIR_HALF>(second, arg_at(args, arg >> 4));
    out.second_len = len;
    if flags & EXTRA_TRUNCATED != 0 {
        out.extra_flags |= EXTRA_SECOND_TRUNCATED;
    }
    if flags & EXTRA_UNREADABLE != 0 {
        out.extra_flags |= EXTRA_SECOND_UNREAD;
    }
}

/// Reads what a call returned through user memory into the record being sent.
#[inline(always)]
pub(crate) fn read_exit_extra(out: &mut DetailedEvent, slot: &ThreadSlot, arg: u8, ret: i64) {
    let args = &slot.args;
    let ptr = arg_at(args, arg);
    if ret < 0 || ptr == 0 {
        out.extra_flags = EXTRA_UNREADABLE;
        return;
    }
    match slot.extra_kind as u8 {
        EXTRA_SOCKADDR_OUT => {
            // The address's whole length; the kernel wrote at most the buffer's size of it.
            // Past that the buffer holds the caller's old bytes, which would name another
            // peer: only what the kernel wrote is read, marked as cut.
            let mut len = read_user_u32(arg_at(args, arg + 1));
            if len > slot.extra_len {
                len = slot.extra_len;
                out.extra_flags = EXTRA_TRUNCATED;
            }
            match read_sockaddr(out.extra.as_mut_ptr(), ptr, len as u64) {
                0 => out.extra_flags = EXTRA_UNREADABLE,
                n => out.extra_len = n,
            }
        }
        EXTRA_FD_PAIR => {
            if read_user_u64(out.extra.as_mut_ptr(), ptr) {
                out.extra_len = 8;
            } else {
                out.extra_flags = EXTRA_UNREADABLE;
            }
        }
        _ => {}
    }
}
