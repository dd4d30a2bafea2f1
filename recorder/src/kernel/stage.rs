//! The per-CPU staging areas the kernel programs write records into, as the recorder sees
//! them: one mapping of the chunks (read-only) and one of the heads, where the recorder
//! hands bytes back, once it is done with their records, by moving each CPU's `tail`.
//!
//! Each CPU's records are in the order their programs read the clock, since programs do not
//! nest on a CPU. Across CPUs there is no order; merging them is the drain's job, with
//! what [`Snapshot`] says about each CPU.
use std::{
    io,
    os::fd::BorrowedFd,
    ptr,
    sync::atomic::{AtomicU64, Ordering},
};

use super::mapping::Mapping;
use crate::prefetch;
use tracepost_common::{
    STAGE_CHUNK_BYTES, STAGE_SLACK, StageChunk, StageHead, StageHeader, stage_chunk, stage_next,
    stage_size,
};

/// How far ahead of the record being read the next lines are asked for. Records arrive
/// from another CPU's cache, and a record's first load was 44% of `Drain::pass` on nginx
/// (`perf annotate`); asking 1 KiB ahead took the capture thread from 76 to 63 ns a call
/// there (medians of 5, BENCHMARKS.md).
const PREFETCH_AHEAD: u64 = 1024;

/// Bytes each CPU gets at least: two chunks, so that the kernel can fill one while the
/// recorder reads the other.
const MIN_CHUNKS: u64 = 2;

/// How `--buffer-size` is split: chunks for each of the `possible` CPUs. Those `online`
/// now share the buffer evenly, a power of two of chunks each; the others, which may come
/// online later, get the least (two chunks), so that a VM that lists far more CPUs than it
/// runs does not spread the buffer thin.
pub fn layout(total_bytes: u64, possible: u32, online: &[u32]) -> Result<Vec<u32>, io::Error> {
    let online_now = online.iter().filter(|c| **c < possible).count().max(1) as u64;
    let share = (total_bytes / online_now / STAGE_CHUNK_BYTES as u64)
        .max(MIN_CHUNKS)
        .next_power_of_two();
    let share = u32::try_from(share).map_err(|_| io::Error::other("buffer size is too large"))?;
    let chunks: Vec<u32> = (0..possible)
        .map(|cpu| match online.contains(&cpu) {
            true => share,
            false => MIN_CHUNKS as u32,
        })
        .collect();
    let total: u64 = chunks.iter().map(|c| u64::from(*c)).sum();
    match total * (STAGE_CHUNK_BYTES as u64) < 1 << 40 && total <= u64::from(u32::MAX) {
        true => Ok(chunks),
        false => Err(io::Error::other("buffer size is too large")),
    }
}

/// The record header at `at`, a place [`Stage::at`] gave.
fn header(at: *const u8) -> StageHeader {
    // SAFETY: see `Stage::at`; the kernel wrote the header before publishing a head past it.
    unsafe { ptr::read_volatile(at.cast::<StageHeader>()) }
}

/// What one look at a CPU's head says.
#[derive(Clone, Copy, Debug)]
pub struct Snapshot {
    /// Where this CPU's published records end.
    pub head: u64,
    /// A program on this CPU had marked its area busy (it does so before reading its
    /// clock). When false, every record this CPU publishes later read its clock after
    /// this look.
    pub busy: bool,
}

/// The staging areas, mapped.
pub struct Stage {
    heads: Mapping,
    chunks: Mapping,
    /// Per CPU: its first chunk, and how many (a power of two).
    first: Vec<u32>,
    count: Vec<u32>,
    /// Distance between chunks in the mapping: the array's element size.
    stride: usize,
    /// Per CPU: where the next unread record starts.
    read: Vec<u64>,
}

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
    /// Maps the `STAGE_HEADS` and `STAGE` arrays the programs were loaded with, and tells
    /// each CPU's head where its chunks are (`layout`). Before the programs attach.
    pub fn map(
        heads: BorrowedFd<'_>,
        chunks: BorrowedFd<'_>,
        layout: Vec<u32>,
    ) -> io::Result<Self> {
        // The programs find a chunk by masking (`stage_chunk`).
        if !layout.iter().all(|c| c.is_power_of_two()) {
            return Err(io::Error::other("a CPU's chunks are not a power of two"));
        }
        let stride = size_of::<StageChunk>().next_multiple_of(8);
        let cpus = layout.len() as u32;
        let n: usize = layout.iter().map(|c| *c as usize).sum();
        let first: Vec<u32> = layout
            .iter()
            .scan(0u32, |next, c| {
                let first = *next;
                *next += c;
                Some(first)
            })
            .collect();
        let stage = Self {
            heads: Mapping::new(heads, cpus as usize * size_of::<StageHead>(), true)?,
            chunks: Mapping::new(chunks, n * stride, false)?,
            first,
            count: layout,
            stride,
            read: vec![0; cpus as usize],
        };
        for cpu in 0..cpus {
            let i = cpu as usize;
            let where_ = u64::from(stage.first[i]) | u64::from(stage.count[i]) << 32;
            stage
                .head_field(cpu, std::mem::offset_of!(StageHead, first_chunk))
                .store(where_, Ordering::Release);
        }
        Ok(stage)
    }

    pub fn cpus(&self) -> u32 {
        self.count.len() as u32
    }

    fn head_field(&self, cpu: u32, field: usize) -> &AtomicU64 {
        assert!(cpu < self.cpus());
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

    /// Calls `each` with the position and bytes of each record of `cpu` from where reading
    /// stopped up to `end` (a head from [`Stage::snapshot`]), at most `max` records.
    /// Returns how many, and whether it reached `end`. A record stays in the area, and
    /// [`Stage::record_at`] finds it again, until [`Stage::release_to`] hands it back.
    pub fn read(
        &mut self,
        cpu: u32,
        end: u64,
        max: usize,
        mut each: impl FnMut(u64, &[u8]),
    ) -> Result<(usize, bool), Garbled> {
        let mut pos = self.read[cpu as usize];
        let mut n = 0;
        while pos < end && n < max {
            let Some(bytes) = self.record_at(cpu, pos) else {
                let len = self.header_at(cpu, pos).len;
                self.read[cpu as usize] = end;
                return Err(Garbled { cpu, pos, len, end });
            };
            each(pos, bytes);
            n += 1;
            pos = stage_next(pos, stage_size(bytes.len()));
            prefetch::line(self.at(cpu, pos + PREFETCH_AHEAD));
        }
        self.read[cpu as usize] = pos;
        Ok((n, pos >= end))
    }

    /// Bytes of `cpu`'s area.
    pub fn capacity(&self, cpu: u32) -> u64 {
        u64::from(self.count[cpu as usize]) * STAGE_CHUNK_BYTES as u64
    }

    /// Where the next record [`Stage::read`] would give starts.
    pub fn read_to(&self, cpu: u32) -> u64 {
        self.read[cpu as usize]
    }

    fn header_at(&self, cpu: u32, pos: u64) -> StageHeader {
        header(self.at(cpu, pos))
    }

    /// Where `pos` of `cpu`'s area is in the mapping.
    fn at(&self, cpu: u32, pos: u64) -> *const u8 {
        let c = cpu as usize;
        let index = self.first[c] as usize + stage_chunk(pos, self.count[c]) as usize;
        let offset = (pos % STAGE_CHUNK_BYTES as u64) as usize;
        // SAFETY: index < the sum of the layout and offset < STAGE_CHUNK_BYTES, so a
        // header there is inside the mapping.
        unsafe { self.chunks.ptr.as_ptr().add(index * self.stride + offset) }
    }

    /// The record at `pos`, which [`Stage::read`] gave and which has not been released
    /// since; `None` if its length says something no record says (the kernel broke its
    /// side and wrote over it).
    pub fn record_at(&self, cpu: u32, pos: u64) -> Option<&[u8]> {
        let at = self.at(cpu, pos);
        let len = header(at).len as usize;
        if len == 0 || !len.is_multiple_of(8) || stage_size(len) as usize > STAGE_SLACK {
            return None;
        }
        // SAFETY: offset + size <= STAGE_CHUNK_BYTES + STAGE_SLACK, inside this chunk.
        Some(unsafe { std::slice::from_raw_parts(at.add(size_of::<StageHeader>()), len) })
    }

    /// Gives `cpu`'s area back to the kernel up to `pos`: at most where reading stopped.
    pub fn release_to(&mut self, cpu: u32, pos: u64) {
        let pos = pos.min(self.read[cpu as usize]);
        self.head_field(cpu, std::mem::offset_of!(StageHead, tail))
            .store(pos, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_buffer_is_split_between_online_cpus_in_whole_chunks() {
        let chunk = STAGE_CHUNK_BYTES as u64;
        assert_eq!(layout(16 << 20, 2, &[0, 1]).unwrap(), vec![512, 512]);
        // Rounded up to a power of two, and never fewer than two per CPU.
        assert_eq!(layout(3 * chunk * 4, 4, &[0, 1, 2, 3]).unwrap(), vec![4; 4]);
        assert_eq!(layout(1, 3, &[0, 1, 2]).unwrap(), vec![2; 3]);
        // A VM that lists 64 CPUs and runs 2: the two share the buffer.
        let split = layout(16 << 20, 64, &[0, 1]).unwrap();
        assert_eq!(&split[..3], &[512, 512, 2]);
        assert_eq!(split.iter().sum::<u32>(), 1024 + 62 * 2);
        assert!(layout(u64::MAX, 1, &[0]).is_err());
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
