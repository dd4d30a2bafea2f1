//! A shared mapping of an eBPF array map made with `BPF_F_MMAPABLE`: how the recorder reads
//! the staging areas and marks the threads it adds, without a syscall per access.
use std::{
    io,
    os::fd::{AsRawFd, BorrowedFd},
    ptr::{self, NonNull},
};

/// A shared mapping of a `BPF_F_MMAPABLE` array, unmapped on drop.
pub struct Mapping {
    pub ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is owned; what its users share with the programs through it, they
// read and write with atomics or volatile loads.
unsafe impl Send for Mapping {}

/// The host's page size, the unit of a mapping's offset and length.
pub fn page_size() -> usize {
    // SAFETY: sysconf reads a constant of the system.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    }
}

impl Mapping {
    pub fn new(fd: BorrowedFd<'_>, len: usize, writable: bool) -> io::Result<Self> {
        Self::at(fd, 0, len, writable)
    }

    /// `len` bytes from `offset`, a multiple of the page size.
    pub fn at(fd: BorrowedFd<'_>, offset: usize, len: usize, writable: bool) -> io::Result<Self> {
        let page = page_size();
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
                offset as libc::off_t,
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
        // SAFETY: the mapping made in `at`, unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}
