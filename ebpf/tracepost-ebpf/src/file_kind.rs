//! What kind of file an fd refers to, read from the kernel's fd table: a FIFO is named by a
//! path, like a file, but a read of it waits for a writer as a pipe's does.
use crate::prelude::*;

/// `S_IFMT` and `S_IFIFO` of `inode.i_mode`.
const S_IFMT: u16 = 0o170000;
const S_IFIFO: u16 = 0o010000;

/// Whether `fd`, just returned by an open, is a FIFO in the calling thread's fd table. Read
/// as the open returns, so that the fd is the one it made: another thread can close it and
/// take its number again only once the call has returned. False where the BTF gave no
/// offsets or a read failed: then the fd is named as a file, as before.
#[inline(always)]
pub(crate) fn opened_fifo(fd: i64) -> bool {
    if global(&FILE_OFFSETS_KNOWN) == 0 || fd < 0 {
        return false;
    }
    let task = unsafe { generated::bpf_get_current_task() } as *const u8;
    let at = |base: *const u8, offset: &u32| base.wrapping_add(global(offset) as usize);
    let Some(files) = read_kernel::<u64>(at(task, &TASK_FILES_OFFSET)) else {
        return false;
    };
    let Some(fdt) = read_kernel::<u64>(at(files as *const u8, &FILES_FDT_OFFSET)) else {
        return false;
    };
    let fdt = fdt as *const u8;
    match read_kernel::<u32>(at(fdt, &FDT_MAX_FDS_OFFSET)) {
        Some(max) if (fd as u64) < max as u64 => {}
        _ => return false,
    }
    let Some(array) = read_kernel::<u64>(at(fdt, &FDT_FD_OFFSET)) else {
        return false;
    };
    let Some(file) = read_kernel::<u64>((array as *const u8).wrapping_add(fd as usize * 8)) else {
        return false;
    };
    let Some(inode) = read_kernel::<u64>(at(file as *const u8, &FILE_INODE_OFFSET)) else {
        return false;
    };
    read_kernel::<u16>(at(inode as *const u8, &INODE_MODE_OFFSET))
        .is_some_and(|mode| mode & S_IFMT == S_IFIFO)
}

/// A kernel value at `at`; `None` for a null pointer's fields (a read near 0) or a failed
/// read.
#[inline(always)]
fn read_kernel<T>(at: *const u8) -> Option<T> {
    if (at as u64) < 4096 {
        return None;
    }
    unsafe { bpf_probe_read_kernel(at.cast::<T>()) }.ok()
}

/// Whether `nr` is a call that opens a file by its path and returns the new fd.
#[inline(always)]
pub(crate) fn is_open(nr: u64) -> bool {
    nr == NR_OPEN || nr == NR_OPENAT || nr == NR_OPENAT2 || nr == NR_CREAT
}
