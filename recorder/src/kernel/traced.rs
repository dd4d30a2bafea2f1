//! The `TRACED` marks: a byte per thread id, set where the slot table may hold the thread.
//! The hooks run for every call on the host, and most of those calls are not the traced
//! threads'; a zero byte answers for them with one array load, where a hash lookup did.
use std::{
    collections::HashMap,
    fs, io,
    os::fd::{AsFd, OwnedFd},
    sync::atomic::{AtomicU8, Ordering},
};

use tracepost_common::TIDS_PER_PAGE;

use super::mapping::Mapping;

/// The kernel's own limit on thread ids (`PID_MAX_LIMIT` on 64-bit hosts): 1024 elements,
/// 4 MiB of marks.
const PID_MAX_LIMIT: u32 = 4 << 20;

/// The unit the marks are mapped in: the recorder maps only the pages that hold the
/// threads it adds, since a mapped page counts in its resident size (all 4 MiB of them
/// were 4 MiB more peak RSS where `pid_max` is 4M).
const PAGE: usize = 4096;

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

/// The marks the recorder sets before it adds a slot and clears after it removes one.
pub struct TracedMarks {
    fd: OwnedFd,
    tids: u32,
    /// The pages mapped so far, by index.
    pages: HashMap<usize, Mapping>,
}

// SAFETY: the mappings are owned, and their bytes are only written atomically.
unsafe impl Send for TracedMarks {}

impl TracedMarks {
    /// The `TRACED` array the programs were loaded with, `elements` long.
    pub fn new(fd: OwnedFd, elements: u32) -> Self {
        Self {
            fd,
            tids: elements * TIDS_PER_PAGE,
            pages: HashMap::new(),
        }
    }

    /// Sets (`on`) or clears the mark of `tid`. Ids past the marks need none. Fails only
    /// when the page cannot be mapped: then a thread must not be added.
    pub fn mark(&mut self, tid: u32, on: bool) -> io::Result<()> {
        if tid >= self.tids {
            return Ok(());
        }
        let at = tid as usize;
        let page = match self.pages.entry(at / PAGE) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(Mapping::at(self.fd.as_fd(), at / PAGE * PAGE, PAGE, true)?)
            }
        };
        // SAFETY: inside the page mapped for it. The programs read and write the same
        // bytes, one byte per thread, so a byte store is all that is shared.
        let byte = unsafe { AtomicU8::from_ptr(page.ptr.as_ptr().add(at % PAGE)) };
        byte.store(u8::from(on), Ordering::Release);
        Ok(())
    }
}
