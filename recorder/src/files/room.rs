//! How much room the file system holding a capture has left, for `--max-size` on a disk
//! that fills: an incident that fills the disk (logs, core dumps) is when the newest calls
//! matter most, so a flight recorder makes room by deleting its own oldest files rather
//! than stopping.
use std::{ffi::CString, io, os::unix::ffi::OsStrExt, path::Path};

/// Bytes that ordinary users may still write under `dir`, as `df` shows them available.
/// The blocks a file system keeps back for root are left to the host's own daemons: a
/// recorder running as root that wrote into them could starve the system it observes.
pub fn available(dir: &Path) -> io::Result<u64> {
    let path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut stat = std::mem::MaybeUninit::<libc::statvfs>::uninit();
    // SAFETY: `path` is a valid C string and `stat` is written by the call when it succeeds.
    if unsafe { libc::statvfs(path.as_ptr(), stat.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: statvfs returned 0, so it filled `stat`.
    let stat = unsafe { stat.assume_init() };
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_left_is_what_the_file_system_reports() {
        let dir = tempfile::tempdir().unwrap();
        let room = available(dir.path()).unwrap();
        assert!(room > 0);
        let missing = dir.path().join("missing");
        assert_eq!(
            available(&missing).unwrap_err().kind(),
            io::ErrorKind::NotFound
        );
    }
}
