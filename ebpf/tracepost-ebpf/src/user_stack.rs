//! `record --stacks`: the registers and the top of the user stack of each slow call, copied
//! as it returns, for the recorder to unwind. The kernel's own user stack walk follows frame
//! pointers, which most release binaries and Debian's glibc are built without, so it would
//! skip the very frames that say which code made the call.
use core::ffi::c_void;

use aya_ebpf::maps::RingBuf;

use crate::prelude::*;

/// Samples on their way to the recorder. Sized by the recorder: one page without
/// `--stacks`.
#[map]
pub(crate) static USER_STACKS: RingBuf = RingBuf::with_byte_size(4096, 0);

/// Offsets in x86_64's `struct pt_regs`: the user registers saved at the syscall's entry.
const PT_REGS_BP: usize = 4 * 8;
const PT_REGS_IP: usize = 16 * 8;
const PT_REGS_SP: usize = 19 * 8;

/// Sends the user registers in `regs` and the top of the stack of the thread `id`, whose
/// call entered at `enter_ns` and took `duration_ns`. A full ring is counted, and the
/// call's row has no stack.
#[inline(always)]
pub(crate) fn send(regs: *const u8, id: u64, enter_ns: u64, duration_ns: u64) {
    let Some(mut entry) = USER_STACKS.reserve::<UserStackSample>(0) else {
        count_lost(LOST_USER_STACKS);
        return;
    };
    let out = entry.as_mut_ptr();
    unsafe {
        (*out).pid = (id >> 32) as u32;
        (*out).tid = id as u32;
        (*out).enter_ns = enter_ns;
        (*out).duration_ns = duration_ns;
        (*out).ip = bpf_probe_read_kernel(regs.add(PT_REGS_IP).cast::<u64>()).unwrap_or(0);
        (*out).sp = bpf_probe_read_kernel(regs.add(PT_REGS_SP).cast::<u64>()).unwrap_or(0);
        (*out).bp = bpf_probe_read_kernel(regs.add(PT_REGS_BP).cast::<u64>()).unwrap_or(0);
        (*out)._pad = 0;
        let sp = (*out).sp as *const c_void;
        let dst = (*out).stack.as_mut_ptr().cast::<c_void>();
        // A read that would run past the end of the stack's mapping fails whole, so shorter
        // ones follow: a thread near the top of its stack gets most of what is there. A
        // page swapped out fails any read that covers it.
        let mut len = 0;
        for n in [
            USER_STACK_BYTES as u32,
            6144,
            4096,
            3072,
            2048,
            1024,
            512,
            256,
        ] {
            if generated::bpf_probe_read_user(dst, n, sp) == 0 {
                len = n;
                break;
            }
        }
        (*out).len = len;
    }
    entry.submit(0);
}
