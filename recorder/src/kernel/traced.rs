//! The `TRACED` marks: a byte per thread id, set where the slot table may hold the thread.
//! The hooks run for every call on the host, and most of those calls are not the traced
//! threads'; a zero byte answers for them with one array load, where a hash lookup did.
use std::{
    collections::{HashMap, hash_map::Entry},
    fs, io,
    os::fd::{AsFd, OwnedFd},
    sync::atomic::{AtomicU8, Ordering},
};

use tracepost_common::{TIDS_PER_PAGE, TracedPage};

use super::mapping::{Mapping, page_size};

const _: () = assert!(size_of::<TracedPage>() == TIDS_PER_PAGE as usize);

/// The kernel's own limit on thread ids (`PID_MAX_LIMIT` on 64-bit hosts): 1024 elements,
/// 4 MiB of marks.
const PID_MAX_LIMIT: u32 = 4 << 20;

/// Elements of marks for the thread ids this host hands out now (`kernel.pid_max`). A
/// thread id past them is always looked up in the slot table, so a `pid_max` raised during
/// the capture costs a little speed, never a call.
pub fn elements() -> u32 {
    fs::read_to_string("/proc/sys/kernel/pid_max")
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .unwrap_or(PID_MAX_LIMIT)
        .clamp(1, PID_MAX_LIMIT)
        .div_ceil(TIDS_PER_PAGE)
}

/// The marks the recorder sets before it adds a slot (`ebpf/tracepost-ebpf/src/scope.rs`
/// says who clears them, and when).
pub struct TracedMarks {
    fd: OwnedFd,
    tids: u32,
    /// The host's pages of the array mapped so far, by index. Only those that hold the
    /// threads the recorder adds: a mapped page counts in its resident size, and all 4 MiB
    /// of marks (`pid_max` 4M) were 4 MiB more peak RSS.
    pages: HashMap<usize, Mapping>,
    page: usize,
}

impl TracedMarks {
    /// The `TRACED` array the programs were loaded with, `elements` long.
    pub fn new(fd: OwnedFd, elements: u32) -> Self {
        Self {
            fd,
            tids: elements * TIDS_PER_PAGE,
            pages: HashMap::new(),
            page: page_size(),
        }
    }

    /// Sets the mark of `tid`; only a dying thread clears its own. Ids past the marks need
    /// none. Fails only when the page cannot be mapped: then a thread must not be added.
    pub fn mark(&mut self, tid: u32) -> io::Result<()> {
        if tid >= self.tids {
            return Ok(());
        }
        // Elements are exactly `TIDS_PER_PAGE` bytes, so the marks lie back to back and a
        // thread's byte is at its id. The kernel rounds the array up to whole pages.
        let (at, size) = (tid as usize, self.page);
        let page = match self.pages.entry(at / size) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                e.insert(Mapping::at(self.fd.as_fd(), at / size * size, size, true)?)
            }
        };
        // SAFETY: inside the page mapped for it. The programs read and write the same
        // bytes, one byte per thread, so a byte store is all that is shared.
        let byte = unsafe { AtomicU8::from_ptr(page.ptr.as_ptr().add(at % size)) };
        byte.store(1, Ordering::Release);
        Ok(())
    }
}
