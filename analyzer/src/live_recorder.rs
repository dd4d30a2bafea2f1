//! Whether a capture's recorder is still running, as far as this host can tell: a recorder
//! holds an flock on the capture's lock file for as long as it lives, and the kernel lists
//! every lock held in `/proc/locks`. Reading that list takes no lock, so a recorder
//! starting meanwhile is never refused because `analyze` looked.
use std::{os::unix::fs::MetadataExt as _, path::Path};

use tracepost_schema::LOCK_FILE;

/// The pid of the process holding the flock on `capture`'s lock file, if one does. A copy
/// of a capture whose recorder runs on another host has no such holder here.
pub fn holder(capture: &Path) -> Option<u32> {
    let meta = std::fs::metadata(capture.join(LOCK_FILE)).ok()?;
    let locks = std::fs::read_to_string("/proc/locks").ok()?;
    holder_in(
        &locks,
        libc::major(meta.dev()),
        libc::minor(meta.dev()),
        meta.ino(),
    )
}

/// The holder of an flock on the file (`major`:`minor`, inode `ino`) in `/proc/locks`'s
/// text: lines such as `3: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF`, with the
/// device's numbers in hex. Lines of waiters (`3: -> FLOCK ...`) hold nothing.
fn holder_in(locks: &str, major: u32, minor: u32, ino: u64) -> Option<u32> {
    locks.lines().find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [_, "FLOCK", _, _, pid, file, ..] = fields[..] else {
            return None;
        };
        let mut parts = file.split(':');
        let (maj, min, inode) = (parts.next()?, parts.next()?, parts.next()?);
        let same = u32::from_str_radix(maj, 16).ok()? == major
            && u32::from_str_radix(min, 16).ok()? == minor
            && inode.parse::<u64>().ok()? == ino;
        same.then(|| pid.parse().ok()).flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_holder_is_read_from_the_kernels_list() {
        let locks = "1: POSIX  ADVISORY  WRITE 99 fd:01:1234 0 EOF\n\
                     2: FLOCK  ADVISORY  WRITE 4242 fd:01:1234 0 EOF\n\
                     2: -> FLOCK  ADVISORY  WRITE 77 fd:01:1234 0 EOF\n\
                     3: FLOCK  ADVISORY  WRITE 5151 00:2c:1234 0 EOF\n";
        assert_eq!(holder_in(locks, 0xfd, 1, 1234), Some(4242));
        assert_eq!(holder_in(locks, 0, 0x2c, 1234), Some(5151));
        assert_eq!(holder_in(locks, 0xfd, 1, 1235), None);
        assert_eq!(holder_in("", 0xfd, 1, 1234), None);
    }
}
