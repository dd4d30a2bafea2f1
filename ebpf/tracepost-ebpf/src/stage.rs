//! Sending records: each CPU appends to its own staging area with plain stores.
//!
//! The BPF ring buffer's reserve and submit helpers were the largest single cost of a
//! recorded call (BENCHMARKS.md). Programs here run with preemption off and do not nest on a
//! CPU, so each CPU's area has one writer at a time and needs no lock: the record's bytes are
//! stored, then the new `head`. The recorder maps the areas and merges the CPUs by time.
use core::ptr::{read_volatile, write_volatile};

use crate::prelude::*;

/// `BPF_F_MMAPABLE`: user space reads the areas through one mapping, without a copy.
pub(crate) const MMAPABLE: u32 = 1 << 10;

/// Every CPU's chunks, CPU by CPU (`StageHead::first_chunk`). Sized by the recorder.
#[map]
pub(crate) static STAGE: Array<StageChunk> = Array::with_max_entries(1, MMAPABLE);

/// One per CPU. Sized by the recorder.
#[map]
pub(crate) static STAGE_HEADS: Array<StageHead> = Array::with_max_entries(1, MMAPABLE);

/// Calls leave this part of each area (1/16: 512 KiB of 8 MiB, about 1,100 process
/// events) to process events.
const PROCESS_ROOM_SHIFT: u32 = 4;

/// This CPU's area, marked busy from `begin` until this is dropped. `head` is null when
/// the area could not be had: then nothing is reserved, and the record counts as lost.
pub(crate) struct Stage {
    head: *mut StageHead,
    next: u64,
}

impl Stage {
    /// Marks this CPU's area busy. Call it before reading the clock that orders the record:
    /// a reader that finds the area idle then knows that what is still to come here is
    /// later than its own clock. Not had only if a program were already writing on this
    /// CPU, which preemption being off rules out.
    #[inline(always)]
    pub(crate) fn begin() -> Stage {
        let none = Stage {
            head: core::ptr::null_mut(),
            next: 0,
        };
        let cpu = unsafe { bpf_get_smp_processor_id() };
        let Some(head) = STAGE_HEADS.get_ptr_mut(cpu) else {
            return none;
        };
        unsafe {
            if read_volatile(&(*head).busy) != 0 {
                return none;
            }
            write_volatile(&mut (*head).busy, 1);
        }
        Stage { head, next: 0 }
    }

    /// Room for a call's record of `len` bytes, after its header; `None` when the area is
    /// full, or all but its last [`PROCESS_ROOM_SHIFT`] part. Nothing is visible to the
    /// reader until `commit`.
    #[inline(always)]
    pub(crate) fn reserve(&mut self, len: usize) -> Option<*mut u8> {
        self.reserve_keeping(len, PROCESS_ROOM_SHIFT)
    }

    /// Room for a process event, in the whole area. A call the buffer had no room for is
    /// counted, by syscall and process, in `aggregates`; a fork, exec or exit lost leaves
    /// `processes` without a row, an exit or an exit code, which nothing can put back. So
    /// calls leave the area's last part to them, and under a flood of calls the processes
    /// are still known.
    #[inline(always)]
    pub(crate) fn reserve_for_process(&mut self, len: usize) -> Option<*mut u8> {
        self.reserve_keeping(len, 0)
    }

    /// `keep_shift`: leave `capacity >> keep_shift` bytes free (none for 0).
    #[inline(always)]
    fn reserve_keeping(&mut self, len: usize, keep_shift: u32) -> Option<*mut u8> {
        let h = self.head;
        if h.is_null() {
            return None;
        }
        // Whatever the recorder wrote here, the lookup below is bounds-checked and the
        // offset masked: a wrong value can lose records, never write outside the array.
        let (first, chunks) = unsafe { ((*h).first_chunk, (*h).chunks) };
        if chunks == 0 {
            return None;
        }
        let whole = chunks as u64 * STAGE_CHUNK_BYTES as u64;
        let capacity = match keep_shift {
            0 => whole,
            shift => whole - (whole >> shift),
        };
        let pos = unsafe { (*h).head };
        let next = stage_next(pos, stage_size(len));
        unsafe {
            if next.wrapping_sub((*h).tail_seen) > capacity {
                (*h).tail_seen = read_volatile(&(*h).tail);
                if next.wrapping_sub((*h).tail_seen) > capacity {
                    return None;
                }
            }
        }
        let chunk = stage_chunk(pos, chunks);
        let area = STAGE.get_ptr_mut(first.wrapping_add(chunk))?;
        let offset = pos as usize & (STAGE_CHUNK_BYTES - 1);
        self.next = next;
        unsafe {
            let at = (*area).bytes.as_mut_ptr().add(offset);
            at.cast::<StageHeader>().write(StageHeader {
                len: len as u32,
                _pad: 0,
            });
            Some(at.add(size_of::<StageHeader>()))
        }
    }

    /// Publishes the record `reserve` gave room for.
    #[inline(always)]
    pub(crate) fn commit(&mut self) {
        if self.head.is_null() {
            return;
        }
        // The record's bytes before the head that makes them readable.
        barrier();
        unsafe { write_volatile(&mut (*self.head).head, self.next) };
    }
}

impl Drop for Stage {
    #[inline(always)]
    fn drop(&mut self) {
        if self.head.is_null() {
            return;
        }
        barrier();
        unsafe { write_volatile(&mut (*self.head).busy, 0) };
    }
}

/// Keeps the compiler from moving stores across it. The CPU needs nothing more: x86 makes
/// stores visible in program order. (LLVM's BPF backend cannot select a fence, even a
/// compiler-only one, hence an empty `asm!`, which may touch any memory.)
#[inline(always)]
fn barrier() {
    unsafe { core::arch::asm!("", options(nostack, preserves_flags)) };
}
