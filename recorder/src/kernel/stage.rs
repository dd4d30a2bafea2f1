//! The per-CPU staging areas the kernel programs write records into, as the recorder sees
//! them: one mapping of the chunks (read-only) and one of the heads, where the recorder
//! hands read bytes back by moving each CPU's `tail`.
//!
//! Each CPU's records are in the order their programs read the clock, since programs do not
//! nest on a CPU. Across CPUs there is no order; merging them is the drain's job, with
//! what [`Snapshot`] says about each CPU.
use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd},
    ptr::{self, NonNull},
    sync::atomic::{AtomicU64, Ordering},
};

use tracepost_common::{
    STAGE_CHUNK_BYTES, STAGE_SLACK, StageChunk, StageHead, StageHeader, stage_next, stage_size,
};

/// Bytes each CPU gets at least: two chunks, so that the kernel can fill one while the
/// recorder reads the other.
const MIN_CHUNKS: u64 = 2;

/// How `--buffer-size` is split: chunks per CPU, a power of two, at least two.
pub fn chunks_per_cpu(total_bytes: u64, cpus: u32) -> Result<u32, io::Error> {
    let per_cpu = total_bytes / u64::from(cpus.max(1));
    let chunks = (per_cpu / STAGE_CHUNK_BYTES as u64)
        .max(MIN_CHUNKS)
        .next_power_of_two();
    u32::try_from(chunks)
        .ok()
        .filter(|c| u64::from(*c) * u64::from(cpus) * (STAGE_CHUNK_BYTES as u64) < 1 << 40)
        .ok_or_else(|| io::Error::other("buffer size is too large"))
}

/// A shared mapping of a `BPF_F_MMAPABLE` array, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(fd: BorrowedFd<'_>, len: usize, writable: bool) -> io::Result<Self> {
        let page = 4096;
        let len = len.div_ceil(page) * page;
        let prot = if writable {
            libc::PROT_READ | libc::PROT_WRITE
        } else {
            libc::PROT_READ
        };
        // SAFETY: a fresh shared mapping of a map fd; the kernel checks the length.
        let ptr = unsafe {
            libc::mmap(
                ptr::null_mut(),
                len,
                prot,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Self {
            ptr: NonNull::new(ptr.cast()).ok_or_else(|| io::Error::other("mmap gave null"))?,
            len,
        })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// What one look at a CPU's head says.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot {
    /// Where this CPU's published records end.
    pub head: u64,
    /// A program was between its clock read and publishing a record. When false, every
    /// record this CPU publishes later read its clock after this look.
    pub busy: bool,
}

/// The staging areas, mapped.
pub struct Stage {
    heads: Mapping,
    chunks: Mapping,
    cpus: u32,
    chunks_per_cpu: u32,
    /// Distance between chunks in the mapping: the array's element size.
    stride: usize,
    /// Per CPU: where the next unread record starts.
    read: Vec<u64>,
}

// SAFETY: the mappings are owned and only read or written through `&mut self` or atomics.
unsafe impl Send for Stage {}

/// A record's length field said something no record says: a bug on one side or the other.
#[derive(Debug, thiserror::Error)]
#[error("cpu {cpu}'s staging area holds a record of {len} bytes at {pos}; skipped to {end}")]
pub struct Garbled {
    pub cpu: u32,
    pub pos: u64,
    pub len: u32,
    pub end: u64,
}

impl Stage {
    /// Maps the `STAGE_HEADS` and `STAGE` arrays the programs were loaded with.
    pub fn map(
        heads: BorrowedFd<'_>,
        chunks: BorrowedFd<'_>,
        cpus: u32,
        chunks_per_cpu: u32,
    ) -> io::Result<Self> {
        let stride = size_of::<StageChunk>().next_multiple_of(8);
        let n = cpus as usize * chunks_per_cpu as usize;
        Ok(Self {
            heads: Mapping::new(heads, cpus as usize * size_of::<StageHead>(), true)?,
            chunks: Mapping::new(chunks, n * stride, false)?,
            cpus,
            chunks_per_cpu,
            stride,
            read: vec![0; cpus as usize],
        })
    }

    pub fn cpus(&self) -> u32 {
        self.cpus
    }

    fn head_field(&self, cpu: u32, field: usize) -> &AtomicU64 {
        assert!(cpu < self.cpus);
        // SAFETY: inside the mapping (asserted), 8-byte aligned (page-aligned array of
        // 128-byte elements), and shared with the kernel only through atomic accesses.
        unsafe {
            let at = self
                .heads
                .ptr
                .as_ptr()
                .add(cpu as usize * size_of::<StageHead>() + field);
            AtomicU64::from_ptr(at.cast())
        }
    }

    /// Looks at a CPU's head. `busy` is read first: see [`Snapshot::busy`].
    pub fn snapshot(&self, cpu: u32) -> Snapshot {
        let busy = self
            .head_field(cpu, std::mem::offset_of!(StageHead, busy))
            .load(Ordering::Acquire);
        let head = self
            .head_field(cpu, std::mem::offset_of!(StageHead, head))
            .load(Ordering::Acquire);
        Snapshot {
            head,
            busy: busy != 0,
        }
    }

    /// Calls `each` with the bytes of each record of `cpu` from where reading stopped up
    /// to `end` (a head from [`Stage::snapshot`]), at most `max` records. Returns how many,
    /// and whether it reached `end`. The bytes are valid only during the call: they go back
    /// to the kernel with [`Stage::release`].
    pub fn read(
        &mut self,
        cpu: u32,
        end: u64,
        max: usize,
        mut each: impl FnMut(&[u8]),
    ) -> Result<(usize, bool), Garbled> {
        let mut pos = self.read[cpu as usize];
        let mut n = 0;
        while pos < end && n < max {
            let chunk = (pos / STAGE_CHUNK_BYTES as u64) % u64::from(self.chunks_per_cpu);
            let index = cpu as usize * self.chunks_per_cpu as usize + chunk as usize;
            let offset = (pos % STAGE_CHUNK_BYTES as u64) as usize;
            // SAFETY: index < cpus × chunks_per_cpu and offset < STAGE_CHUNK_BYTES, so the
            // header is inside the mapping; the kernel wrote it before publishing `end`.
            let at = unsafe { self.chunks.ptr.as_ptr().add(index * self.stride + offset) };
            let header = unsafe { ptr::read_volatile(at.cast::<StageHeader>()) };
            let len = header.len as usize;
            let size = stage_size(len);
            if len == 0 || !len.is_multiple_of(8) || size as usize > STAGE_SLACK {
                self.read[cpu as usize] = end;
                return Err(Garbled {
                    cpu,
                    pos,
                    len: header.len,
                    end,
                });
            }
            // SAFETY: offset + size <= STAGE_CHUNK_BYTES + STAGE_SLACK, inside this chunk.
            let bytes =
                unsafe { std::slice::from_raw_parts(at.add(size_of::<StageHeader>()), len) };
            each(bytes);
            n += 1;
            pos = stage_next(pos, size);
        }
        self.read[cpu as usize] = pos;
        Ok((n, pos >= end))
    }

    /// Gives what was read of `cpu`'s area back to the kernel.
    pub fn release(&self, cpu: u32) {
        self.head_field(cpu, std::mem::offset_of!(StageHead, tail))
            .store(self.read[cpu as usize], Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_is_split_between_cpus_in_whole_chunks() {
        let chunk = STAGE_CHUNK_BYTES as u64;
        assert_eq!(chunks_per_cpu(16 << 20, 2).unwrap(), 512);
        // Rounded up to a power of two, and never fewer than two per CPU.
        assert_eq!(chunks_per_cpu(3 * chunk * 4, 4).unwrap(), 4);
        assert_eq!(chunks_per_cpu(1, 64).unwrap(), 2);
        assert!(chunks_per_cpu(u64::MAX, 1).is_err());
    }

    #[test]
    fn a_record_that_reaches_into_the_slack_ends_its_chunk() {
        let chunk = STAGE_CHUNK_BYTES as u64;
        assert_eq!(stage_next(0, 112), 112);
        assert_eq!(stage_next(chunk - 112, 112), chunk);
        assert_eq!(stage_next(chunk - 104, 112), chunk);
        assert_eq!(stage_next(2 * chunk - 8, 464), 2 * chunk);
    }
}
