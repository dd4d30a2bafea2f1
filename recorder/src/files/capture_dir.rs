//! The capture directory: where it goes, and that it is private.
//!
//! Captures hold sensitive data (paths, arguments, who talked to whom), so the directory is
//! 0700 and is never a symlink someone else planted, nor an existing directory of other
//! files that a mistyped `-o` would mix a capture into. An existing capture is continued:
//! an always-on recorder restarted after a reboot keeps writing where it left off.
use std::{
    ffi::CString,
    fs::{self, DirBuilder},
    io,
    os::{
        fd::{AsRawFd as _, FromRawFd as _, OwnedFd},
        unix::{ffi::OsStrExt as _, fs::DirBuilderExt},
    },
    path::{Path, PathBuf},
    time::SystemTime,
};

use tracepost_paths::{PathError, euid};
use tracepost_schema::{LOCK_FILE, TABLES, syscalls};

#[derive(Debug, thiserror::Error)]
pub enum CaptureDirError {
    #[error("output {} is a symlink; give the real directory", .0.display())]
    Symlink(PathBuf),
    /// The default name was free when chosen, and taken before it could be made.
    #[error("output {} was made by someone else as record started; run it again or give -o", .0.display())]
    Taken(PathBuf),
    #[error(
        "output {} belongs to another user (uid {uid}); record writes only into its own directories",
        path.display()
    )]
    Owned { path: PathBuf, uid: u32 },
    #[error("output {}: {} is not safe to write under: {why}", path.display(), dir.display())]
    UnsafeParent {
        path: PathBuf,
        dir: PathBuf,
        why: String,
    },
    #[error("output {} is not empty and is not a tracepost capture", .0.display())]
    NotEmpty(PathBuf),
    #[error("output {} exists and is not a directory", .0.display())]
    NotDir(PathBuf),
    /// Empty or not, sticky or not: made private, a shared directory (`/dev/shm`, a fresh
    /// `/tmp`) would be closed to every other user for good; and what others put in it
    /// may not be a capture's (helper-76).
    #[error(
        "output {} is a directory other users can write: name a new directory (inside it, if you like)",
        .0.display()
    )]
    OpenToOthers(PathBuf),
    #[error(
        "output {} is not a file record made (a symlink, a hard link or another user's): it may have been planted",
        .0.display()
    )]
    Planted(PathBuf),
    /// A table directory or lock of a capture that other users can write: what is in it
    /// may be theirs.
    #[error(
        "output {} is writable by other users: what it holds may be theirs; make it 0700 (or 0600) if it is yours",
        .0.display()
    )]
    WritableByOthers(PathBuf),
    #[error(
        "output {} is being recorded by another record (pid {pid}); give another -o",
        path.display()
    )]
    Busy { path: PathBuf, pid: String },
    #[error("cannot lock output directory {}", path.display())]
    Lock {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("cannot create output directory {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// `capture-<host>-<UTC time>`, e.g. `capture-web-3-20261123T225500Z`.
pub fn default_name(host: &str, now: SystemTime) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(now)
        .to_string()
        .replace(['-', ':'], "");
    PathBuf::from(format!("capture-{host}-{stamp}"))
}

/// `base`, or `base-2`, `base-3`, ... : the first name nothing has. The default name has
/// a second's resolution, and two runs that began in one second must not become one
/// capture: only a name the user gives is continued.
pub fn unused(base: PathBuf) -> PathBuf {
    let free =
        |p: &Path| matches!(fs::symlink_metadata(p), Err(e) if e.kind() == io::ErrorKind::NotFound);
    if free(&base) {
        return base;
    }
    let mut n = 2u32;
    loop {
        let mut name = base.clone().into_os_string();
        name.push(format!("-{n}"));
        let candidate = PathBuf::from(name);
        if free(&candidate) || n == u32::MAX {
            return candidate;
        }
        n += 1;
    }
}

/// The host's name, as a part of a directory's name: a `/` or a control character in it
/// (anyone who may set a UTS namespace's name can put them there) nested the default
/// capture's directory or sent it elsewhere (helper-76), so each becomes `_`.
pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| {
            h.trim()
                .chars()
                .map(|c| if c == '/' || c.is_control() { '_' } else { c })
                .collect::<String>()
        })
        .ok()
        .filter(|h| !h.is_empty() && h != "." && h != "..")
        .unwrap_or_else(|| "localhost".to_string())
}

/// A created, private capture directory, locked for this recorder for as long as the
/// value lives.
#[derive(Debug, Clone)]
pub struct CaptureDir {
    root: PathBuf,
    /// The flock on `LOCK_FILE`: the kernel releases it when the recorder dies, however it
    /// dies, so a `kill -9` leaves no stale lock behind.
    lock: std::sync::Arc<fs::File>,
    /// Whether this recorder made the directory (rather than continuing a capture).
    created: bool,
    /// The missing parents this recorder made for it (`-o new/inc-42`): a start that
    /// fails takes them back too.
    made_parents: Vec<PathBuf>,
}

impl CaptureDir {
    /// Creates or continues the capture at `root`. Everything is decided on descriptors,
    /// never on a path that could change in between: the directory is opened without
    /// following a symlink, checked and made private through its descriptor, and its table
    /// directories are made and opened relative to it, again without following symlinks.
    pub fn create(root: &Path) -> Result<Self, CaptureDirError> {
        Self::make(root, false)
    }

    /// Creates a capture at `root`, which must not exist yet: for a name record chose.
    pub fn create_new(root: &Path) -> Result<Self, CaptureDirError> {
        Self::make(root, true)
    }

    fn make(root: &Path, new: bool) -> Result<Self, CaptureDirError> {
        // `link/` would name what the symlink points to: the slash is dropped, so that the
        // symlink itself is judged, and refused (an owner of the link could move it).
        let root: PathBuf = root.components().collect();
        if root.as_os_str().is_empty() {
            return Err(CaptureDirError::NotDir(root));
        }
        let parents = check_parent(&root)?;
        let created = match DirBuilder::new().mode(0o700).create(&root) {
            Ok(()) => true,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && new => {
                return Err(CaptureDirError::Taken(root));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
            Err(source) => return Err(CaptureDirError::Create { path: root, source }),
        };
        let mut made = Self::prepare_or_undo(root, created)?;
        made.made_parents = parents.keep();
        Ok(made)
    }

    /// [`Self::prepare`], and a directory this run made removed again if that fails. Only
    /// if it is still empty: until the lock is ours, another record may have locked it and
    /// begun its capture there (a second record started on the same -o at the same
    /// moment). Refused once locked, it went whole in `prepare`, while still locked.
    fn prepare_or_undo(root: PathBuf, created: bool) -> Result<Self, CaptureDirError> {
        let made = Self::prepare(root.clone(), created);
        if made.is_err() && created {
            let _ = fs::remove_dir(&root);
        }
        made
    }

    fn prepare(root: PathBuf, created: bool) -> Result<Self, CaptureDirError> {
        let fd = open_dir(None, &root, &root)?;
        let st = fstat(&fd).map_err(|source| create_err(&root, source))?;
        if st.st_uid != euid() {
            return Err(CaptureDirError::Owned {
                path: root,
                uid: st.st_uid,
            });
        }
        // Judged before it is touched: a mistyped `-o /var/www` or `-o .` is refused as
        // it was found, not left closed to the users and services that read it.
        if !created {
            if st.st_mode & 0o022 != 0 {
                return Err(CaptureDirError::OpenToOthers(root));
            }
            let empty = fs::read_dir(&root)
                .map_err(|source| create_err(&root, source))?
                .filter_map(Result::ok)
                .all(|e| e.file_name() == LOCK_FILE);
            if !empty {
                is_capture(&fd, &root)?;
            }
            check_entries(&fd, &root)?;
        }
        // Then private: from here on no other user can add an entry.
        fchmod(&fd, 0o700).map_err(|source| create_err(&root, source))?;
        // A directory refused after that (another record holds it, a lock file planted)
        // gets its mode back: it is left as it was found (helper-72).
        let mode_back = || {
            if !created {
                let _ = fchmod(&fd, st.st_mode & 0o7777);
            }
        };
        let mut lock = lock(&fd, &root).inspect_err(|_| mode_back())?;
        if let Err(e) = write_pid(&mut lock, &root).and_then(|()| Self::make_tables(&fd, &root)) {
            // Ours and locked: nothing of anyone else's is in it, and no half-made capture
            // is left behind.
            if created {
                let _ = fs::remove_dir_all(&root);
            }
            mode_back();
            return Err(e);
        }
        Ok(Self {
            root,
            lock: std::sync::Arc::new(lock),
            created,
            made_parents: Vec::new(),
        })
    }

    /// The table directories, made if missing, and each checked to be ours and private.
    fn make_tables(fd: &OwnedFd, root: &Path) -> Result<(), CaptureDirError> {
        for table in TABLES {
            let path = root.join(table);
            let name = c_name(table);
            // SAFETY: a NUL-terminated name relative to an open directory descriptor.
            if unsafe { libc::mkdirat(fd.as_raw_fd(), name.as_ptr(), 0o700) } != 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::AlreadyExists {
                    return Err(create_err(&path, e));
                }
            }
            let table_fd = open_dir(Some(fd), Path::new(table), &path)?;
            let st = fstat(&table_fd).map_err(|source| create_err(&path, source))?;
            if st.st_uid != euid() {
                return Err(CaptureDirError::Owned {
                    path,
                    uid: st.st_uid,
                });
            }
            fchmod(&table_fd, 0o700).map_err(|source| create_err(&path, source))?;
        }
        Ok(())
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Frees the room the lock file held for the end's files, before they are written:
    /// on a full disk it is all there is.
    pub fn release_room(&self) {
        let _ = self.lock.set_len(pid_len());
    }

    pub fn table_dir(&self, table: &str) -> PathBuf {
        self.root.join(table)
    }

    /// Undoes a start that failed before the capture row was written: a directory this
    /// recorder made goes whole; a continued capture loses only the unfinished files this
    /// run began. Nothing is left that a reader would take for a recorder killed as it
    /// started.
    pub fn abandon(self) {
        if self.created {
            let _ = fs::remove_dir_all(&self.root);
            // Only if still empty: another program may have put something there since.
            for dir in self.made_parents.iter().rev() {
                let _ = fs::remove_dir(dir);
            }
            return;
        }
        for table in TABLES {
            crate::files::parquet_file::remove_unfinished(&self.table_dir(table));
        }
    }
}

/// The table directories and the lock file that already exist must be ours, and what they
/// claim to be, before the directory is made private or locked: a refused directory is left
/// as it was found.
fn check_entries(dir: &OwnedFd, root: &Path) -> Result<(), CaptureDirError> {
    for name in TABLES.iter().copied().chain([LOCK_FILE]) {
        let path = root.join(name);
        let c = c_name(name);
        // SAFETY: an all-zero stat is a valid value to be overwritten.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: a NUL-terminated name relative to an open directory; `st` is writable.
        let rc = unsafe {
            libc::fstatat(
                dir.as_raw_fd(),
                c.as_ptr(),
                &mut st,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::NotFound {
                continue;
            }
            return Err(create_err(&path, e));
        }
        let kind = st.st_mode & libc::S_IFMT;
        if name == LOCK_FILE {
            if kind != libc::S_IFREG || st.st_uid != euid() {
                return Err(CaptureDirError::Planted(path));
            }
            if st.st_mode & 0o022 != 0 {
                return Err(CaptureDirError::WritableByOthers(path));
            }
            continue;
        }
        if kind == libc::S_IFLNK {
            return Err(CaptureDirError::Symlink(path));
        }
        if kind != libc::S_IFDIR {
            return Err(CaptureDirError::NotDir(path));
        }
        if st.st_uid != euid() {
            return Err(CaptureDirError::Owned {
                path,
                uid: st.st_uid,
            });
        }
        // Ours, but others could have put files in it (symlinks named as the next part,
        // to be read by root's `analyze`): judged as the capture directory itself is, and
        // left as it was found rather than quietly closed with their files inside.
        if st.st_mode & 0o022 != 0 {
            return Err(CaptureDirError::WritableByOthers(path));
        }
    }
    Ok(())
}

/// Takes the directory's lock, or names the pid of the `record` that holds it.
fn lock(dir: &OwnedFd, root: &Path) -> Result<fs::File, CaptureDirError> {
    use std::io::Read as _;
    let err = |source| CaptureDirError::Lock {
        path: root.to_path_buf(),
        source,
    };
    let name = c_name(LOCK_FILE);
    let flags = libc::O_RDWR | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    // SAFETY: a NUL-terminated name relative to an open directory descriptor.
    let raw = unsafe { libc::openat(dir.as_raw_fd(), name.as_ptr(), flags, 0o600) };
    if raw < 0 {
        return Err(err(io::Error::last_os_error()));
    }
    // SAFETY: a descriptor just opened and owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // What was opened, not what a name said a moment before: a regular file of ours, and
    // no hard link to a file elsewhere that the pid written below would overwrite.
    let st = fstat(&fd).map_err(err)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG || st.st_uid != euid() || st.st_nlink != 1 {
        return Err(CaptureDirError::Planted(root.join(LOCK_FILE)));
    }
    let mut file = fs::File::from(fd);
    // SAFETY: flock on a descriptor this function owns; no memory is passed.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::WouldBlock {
            return Err(err(e));
        }
        let mut pid = String::new();
        let _ = file.read_to_string(&mut pid);
        let pid = pid.trim();
        return Err(CaptureDirError::Busy {
            path: root.to_path_buf(),
            pid: if pid.is_empty() {
                "unknown".into()
            } else {
                pid.into()
            },
        });
    }
    Ok(file)
}

/// This recorder's pid into the lock file it holds, for the line a second record prints.
/// Apart from [`lock`]: once the lock is held, a failure here (a full disk) may remove
/// the directory this run made, and nothing else's.
fn write_pid(file: &mut fs::File, root: &Path) -> Result<(), CaptureDirError> {
    use std::io::{Seek as _, Write as _};
    let err = |source| CaptureDirError::Lock {
        path: root.to_path_buf(),
        source,
    };
    file.set_len(0).map_err(err)?;
    file.rewind().map_err(err)?;
    writeln!(file, "{}", std::process::id()).map_err(err)?;
    // Room for the capture row of a disk that fills: without it a full disk left no
    // capture row, and the capture read as one whose recorder was killed (helper-70).
    // Spaces, which the pid's reader trims; best effort, as the disk may be full now. No
    // sync: a write takes its blocks from the free count when it is made (delayed
    // allocation reserves them), and an fsync at start-up can stall on a busy disk.
    if file.write_all(&[b' '; ROOM_FOR_THE_END]).is_err() {
        let _ = file.set_len(pid_len());
    }
    Ok(())
}

/// Bytes the lock file holds for the end's files: the capture row (about 4 KiB) and an
/// empty file for each table that has none.
const ROOM_FOR_THE_END: usize = 64 * 1024;

/// The length of this recorder's pid line in the lock file.
fn pid_len() -> u64 {
    format!("{}\n", std::process::id()).len() as u64
}

/// The directory `root` is made in, and every one above it, must be safe from other users:
/// owned by root or by us, and not writable by others unless sticky (as /tmp is, where
/// others cannot rename or remove what is ours). Otherwise another user could swap the
/// capture directory for a symlink after it is checked. Missing ones are created 0700.
fn check_parent(root: &Path) -> Result<MadeParents, CaptureDirError> {
    let parent = match root.parent() {
        // A path that ends in `..` names a directory above the one before it, and is
        // checked whole: `-o missing/..` made `missing`, then called the directory above
        // it not empty, by the name given (helper-76).
        _ if root.ends_with("..") => root.to_path_buf(),
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    // Before anything is made: a missing parent would be made through whatever the path
    // passes on its way there. What is missing is made one directory at a time, each
    // relative to the one checked before it, never through a link.
    let (deepest, missing) = tracepost_paths::check_path(&parent).map_err(|e| match e {
        PathError::Unsafe { dir, why } => CaptureDirError::UnsafeParent {
            path: root.to_path_buf(),
            dir,
            why,
        },
        PathError::Io { path, source } => create_err(&path, source),
    })?;
    make_missing(root, &deepest, &missing)
}

/// Makes the missing directories `names` below `deepest`, a directory that was checked:
/// each with mkdirat relative to the descriptor of the one above, then opened without
/// following a link and checked to be ours. In a sticky directory (/tmp) another user can
/// plant a missing name between the check and the mkdir; their link or directory is found
/// here and refused.
fn make_missing(
    root: &Path,
    deepest: &Path,
    names: &[PathBuf],
) -> Result<MadeParents, CaptureDirError> {
    let mut made = MadeParents::default();
    if names.is_empty() {
        return Ok(made);
    }
    let mut fd = open_dir(None, deepest, deepest)?;
    let mut shown = deepest.to_path_buf();
    for name in names {
        shown.push(name);
        let c = CString::new(name.as_os_str().as_bytes())
            .map_err(|_| CaptureDirError::NotDir(shown.clone()))?;
        // SAFETY: a NUL-terminated name relative to an open directory descriptor.
        if unsafe { libc::mkdirat(fd.as_raw_fd(), c.as_ptr(), 0o700) } == 0 {
            made.0.push(shown.clone());
        } else {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(create_err(&shown, e));
            }
        }
        let next = open_dir(Some(&fd), name, &shown)?;
        let st = fstat(&next).map_err(|source| create_err(&shown, source))?;
        if st.st_uid != euid() && st.st_uid != 0 {
            return Err(CaptureDirError::UnsafeParent {
                path: root.to_path_buf(),
                dir: shown.clone(),
                why: format!("it belongs to another user (uid {})", st.st_uid),
            });
        }
        fd = next;
    }
    Ok(made)
}

/// The parent directories `record` made for a capture, removed again (deepest first) if
/// the capture itself cannot be made: a refused `-o a/b/NAME` (a name too long, no room)
/// should leave the tree as it found it. Only empty directories go, so nothing anyone put
/// there meanwhile is touched.
#[derive(Default)]
#[must_use]
struct MadeParents(Vec<PathBuf>);

impl MadeParents {
    /// The capture was made: its parents stay, unless its start fails
    /// ([`CaptureDir::abandon`]).
    fn keep(mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.0)
    }
}

impl Drop for MadeParents {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            let _ = fs::remove_dir(dir);
        }
    }
}

/// Opens a directory without following a symlink in its last component.
fn open_dir(at: Option<&OwnedFd>, name: &Path, shown: &Path) -> Result<OwnedFd, CaptureDirError> {
    let c = CString::new(name.as_os_str().as_bytes())
        .map_err(|_| CaptureDirError::NotDir(shown.to_path_buf()))?;
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
    let at = at.map_or(libc::AT_FDCWD, |fd| fd.as_raw_fd());
    // SAFETY: a NUL-terminated path relative to an open descriptor or the cwd.
    let raw = unsafe { libc::openat(at, c.as_ptr(), flags) };
    if raw < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ELOOP) => CaptureDirError::Symlink(shown.to_path_buf()),
            Some(libc::ENOTDIR) => match fs::symlink_metadata(shown) {
                Ok(m) if m.file_type().is_symlink() => {
                    CaptureDirError::Symlink(shown.to_path_buf())
                }
                _ => CaptureDirError::NotDir(shown.to_path_buf()),
            },
            _ => create_err(shown, e),
        });
    }
    // SAFETY: a descriptor just opened and owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

fn fstat(fd: &OwnedFd) -> io::Result<libc::stat> {
    // SAFETY: an all-zero stat is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is writable and `fd` is open.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

fn fchmod(fd: &OwnedFd, mode: libc::mode_t) -> io::Result<()> {
    // SAFETY: a plain call on an open descriptor.
    if unsafe { libc::fchmod(fd.as_raw_fd(), mode) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn c_name(name: &str) -> CString {
    CString::new(name).expect("table and lock names have no NUL")
}

fn create_err(path: &Path, source: io::Error) -> CaptureDirError {
    CaptureDirError::Create {
        path: path.to_path_buf(),
        source,
    }
}

/// A directory holding a `syscalls` table directory (not a symlink to one) is a capture.
/// A directory is a capture if it has a `syscalls` directory. A symlink in its place is
/// named as one: "not a capture" sent the user looking for the wrong fault (helper-81).
fn is_capture(fd: &OwnedFd, root: &Path) -> Result<(), CaptureDirError> {
    let table = Path::new(syscalls::TABLE);
    match open_dir(Some(fd), table, &root.join(table)) {
        Ok(_) => Ok(()),
        Err(symlink @ CaptureDirError::Symlink(_)) => Err(symlink),
        Err(_) => Err(CaptureDirError::NotEmpty(root.to_path_buf())),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn a_default_name_taken_gets_the_next_free_suffix() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("capture-h-20261205T053009Z");
        assert_eq!(unused(base.clone()), base);
        CaptureDir::create_new(&base).unwrap();
        let second = unused(base.clone());
        assert_eq!(second, tmp.path().join("capture-h-20261205T053009Z-2"));
        CaptureDir::create_new(&second).unwrap();
        assert_eq!(
            unused(base.clone()),
            tmp.path().join("capture-h-20261205T053009Z-3")
        );
        // A name chosen that someone takes first is refused, not continued.
        let err = CaptureDir::create_new(&base).unwrap_err().to_string();
        assert!(err.contains("made by someone else"), "{err}");
    }

    #[test]
    fn default_name_has_host_and_utc_time() {
        // 2026-11-23T22:55:00Z
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_795_474_500);
        assert_eq!(
            default_name("web-3", t),
            PathBuf::from("capture-web-3-20261123T225500Z")
        );
    }

    #[test]
    fn a_record_that_loses_the_lock_leaves_the_winners_capture() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cap");
        // Both made it at once: the other record locked it first and began its capture.
        let winner = CaptureDir::create(&root).unwrap();
        fs::write(root.join("syscalls/part-000001.parquet"), "rows").unwrap();
        let err = CaptureDir::prepare_or_undo(root.clone(), true).unwrap_err();
        assert!(matches!(err, CaptureDirError::Busy { .. }), "{err}");
        assert!(root.join("syscalls/part-000001.parquet").is_file());
        drop(winner);
    }

    #[test]
    fn a_refused_capture_leaves_no_parents_it_made() {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("kept")).unwrap();
        // A name longer than the file system takes (255 bytes on ext4 and tmpfs).
        let long = "x".repeat(300);
        let root = tmp.path().join("kept/a/b").join(&long);
        match CaptureDir::create(&root) {
            Err(CaptureDirError::Create { source, .. }) => {
                assert_eq!(source.raw_os_error(), Some(libc::ENAMETOOLONG))
            }
            other => panic!("{:?}", other.err()),
        }
        let left: Vec<_> = fs::read_dir(tmp.path().join("kept"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        // A directory that was there before stays, and one made for a capture that
        // was made stays too.
        CaptureDir::create(&tmp.path().join("kept/c/cap")).unwrap();
        assert!(tmp.path().join("kept/c/cap/syscalls").is_dir());
    }

    #[test]
    fn creates_private_dirs_and_refuses_symlinks_and_foreign_dirs() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("a/b/cap");
        let dir = CaptureDir::create(&root).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(dir.root()), 0o700);
        assert_eq!(mode(&dir.table_dir("syscalls")), 0o700);

        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), &link).unwrap();
        assert!(matches!(
            CaptureDir::create(&link),
            Err(CaptureDirError::Symlink(_))
        ));

        let busy = tmp.path().join("busy");
        fs::create_dir(&busy).unwrap();
        fs::write(busy.join("notes.txt"), "x").unwrap();
        assert!(matches!(
            CaptureDir::create(&busy),
            Err(CaptureDirError::NotEmpty(_))
        ));
        let file = busy.join("notes.txt");
        assert!(matches!(
            CaptureDir::create(&file),
            Err(CaptureDirError::NotDir(_))
        ));
    }

    /// What another user could plant, simulated by handing directories to `nobody`
    /// (which needs root, as the recorder does).
    #[test]
    fn refuses_every_path_another_user_could_redirect() {
        assert_eq!(
            euid(),
            0,
            "this test plays another user, so it runs as root"
        );
        let tmp = tempfile::tempdir().unwrap();
        let nobody = 65534;
        let chown = |p: &Path| std::os::unix::fs::chown(p, Some(nobody), Some(nobody)).unwrap();
        let elsewhere = tmp.path().join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();

        // An empty directory another user made in advance.
        let theirs = tmp.path().join("theirs");
        fs::create_dir(&theirs).unwrap();
        chown(&theirs);
        let err = CaptureDir::create(&theirs).unwrap_err().to_string();
        assert!(err.contains("belongs to another user (uid 65534)"), "{err}");

        // Their directory, with a table directory that is a symlink.
        fs::create_dir(theirs.join("x")).unwrap();
        let planted = theirs.join("x/cap");
        fs::create_dir(&planted).unwrap();
        std::os::unix::fs::symlink(&elsewhere, planted.join("syscalls")).unwrap();
        let err = CaptureDir::create(&planted).unwrap_err().to_string();
        assert!(err.contains("is not safe to write under"), "{err}");
        // Even in a directory of ours, a planted table symlink is never followed.
        let ours = tmp.path().join("ours");
        fs::create_dir(&ours).unwrap();
        std::os::unix::fs::symlink(&elsewhere, ours.join("syscalls")).unwrap();
        assert!(CaptureDir::create(&ours).is_err());
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);

        // A capture of ours whose table directory others could write, a symlink of theirs
        // in it named as a part: refused, and left as it was found.
        let opened = tmp.path().join("opened");
        CaptureDir::create(&opened).unwrap();
        let table = opened.join("syscalls");
        fs::set_permissions(&table, fs::Permissions::from_mode(0o777)).unwrap();
        let part = table.join("part-000009.parquet");
        std::os::unix::fs::symlink(&elsewhere, &part).unwrap();
        std::os::unix::fs::lchown(&part, Some(nobody), Some(nobody)).unwrap();
        let err = CaptureDir::create(&opened).unwrap_err().to_string();
        assert!(
            err.contains("syscalls is writable by other users: what it holds may be theirs"),
            "{err}"
        );

        assert_eq!(
            fs::metadata(&table).unwrap().permissions().mode() & 0o777,
            0o777
        );
        fs::set_permissions(&table, fs::Permissions::from_mode(0o700)).unwrap();
        fs::remove_file(&part).unwrap();
        // The lock too: another user could have put a pid of theirs in it.
        let lock = opened.join(LOCK_FILE);
        fs::set_permissions(&lock, fs::Permissions::from_mode(0o666)).unwrap();
        let err = CaptureDir::create(&opened).unwrap_err().to_string();
        assert!(
            err.contains(".record.lock is writable by other users"),
            "{err}"
        );

        // `-o link/`: the trailing slash does not make the symlink followed.
        let link = tmp.path().join("link");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        let with_slash = PathBuf::from(format!("{}/", link.display()));
        assert!(matches!(
            CaptureDir::create(&with_slash),
            Err(CaptureDirError::Symlink(_))
        ));
        assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);

        // A parent others can write (and not sticky): refused; sticky: fine.
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let err = CaptureDir::create(&open.join("cap"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("other users can write it"), "{err}");
        fs::set_permissions(&open, fs::Permissions::from_mode(0o1777)).unwrap();
        CaptureDir::create(&open.join("cap")).unwrap();
    }

    #[test]
    fn a_path_that_ends_in_dotdot_after_a_missing_directory_is_refused_by_that_name() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("f"), "").unwrap();
        let err = CaptureDir::create(&tmp.path().join("missing/.."))
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            format!(
                "output {0}/missing/..: {0}/missing is not safe to write under: it does not \
                 exist, and the path goes on with .. after it",
                tmp.path().display()
            )
        );
        assert!(!tmp.path().join("missing").exists());
        // One that exists leads where it says, and is judged there.
        fs::create_dir(tmp.path().join("d")).unwrap();
        let err = CaptureDir::create(&tmp.path().join("d/.."))
            .unwrap_err()
            .to_string();
        assert!(
            err.ends_with("is not empty and is not a tracepost capture"),
            "{err}"
        );
    }

    #[test]
    fn a_capture_whose_table_directory_is_a_symlink_is_refused_by_that_name() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cap");
        fs::create_dir(&root).unwrap();
        fs::set_permissions(&root, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(tmp.path(), root.join(syscalls::TABLE)).unwrap();
        let err = CaptureDir::create(&root).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "output {} is a symlink; give the real directory",
                root.join(syscalls::TABLE).display()
            )
        );
    }

    #[test]
    fn a_refused_capture_is_left_as_it_was_found() {
        assert_eq!(
            euid(),
            0,
            "this test plays another user, so it runs as root"
        );
        let tmp = tempfile::tempdir().unwrap();
        let nobody = 65534;
        let mode = |p: &Path| fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777;
        let entries = |p: &Path| {
            let mut names: Vec<_> = fs::read_dir(p)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            names
        };
        // A capture whose table directory another user owns.
        let cap = tmp.path().join("cap");
        fs::create_dir(&cap).unwrap();
        fs::set_permissions(&cap, fs::Permissions::from_mode(0o755)).unwrap();
        fs::create_dir(cap.join("syscalls")).unwrap();
        std::os::unix::fs::chown(cap.join("syscalls"), Some(nobody), Some(nobody)).unwrap();
        let before = entries(&cap);
        let err = CaptureDir::create(&cap).unwrap_err().to_string();
        assert!(err.contains("belongs to another user (uid 65534)"), "{err}");
        assert_eq!(mode(&cap), 0o755, "not made private");
        assert_eq!(entries(&cap), before, "no lock file left");
        // A lock file that is a symlink another user planted.
        let planted = tmp.path().join("planted");
        fs::create_dir(&planted).unwrap();
        fs::create_dir(planted.join("syscalls")).unwrap();
        fs::set_permissions(&planted, fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", planted.join(LOCK_FILE)).unwrap();
        let err = CaptureDir::create(&planted).unwrap_err().to_string();
        assert!(err.contains("is not a file record made"), "{err}");
        assert_eq!(mode(&planted), 0o755);
        // A lock file that is a hard link to a file elsewhere: its contents are kept.
        let linked = tmp.path().join("linked");
        fs::create_dir(&linked).unwrap();
        fs::set_permissions(&linked, fs::Permissions::from_mode(0o700)).unwrap();
        let precious = tmp.path().join("precious");
        fs::write(&precious, "keep").unwrap();
        fs::hard_link(&precious, linked.join(LOCK_FILE)).unwrap();
        let err = CaptureDir::create(&linked).unwrap_err().to_string();
        assert!(err.contains("is not a file record made"), "{err}");
        assert_eq!(fs::read_to_string(&precious).unwrap(), "keep");
        // A capture others can write: refused as found.
        let open = tmp.path().join("open");
        fs::create_dir(&open).unwrap();
        fs::create_dir(open.join("syscalls")).unwrap();
        fs::set_permissions(&open, fs::Permissions::from_mode(0o777)).unwrap();
        let err = CaptureDir::create(&open).unwrap_err().to_string();
        assert!(
            err.contains("is a directory other users can write"),
            "{err}"
        );
        assert_eq!(mode(&open), 0o777);
        // Empty, and sticky as /dev/shm is: refused too, and left open to its users.
        let shm = tmp.path().join("shm");
        fs::create_dir(&shm).unwrap();
        fs::set_permissions(&shm, fs::Permissions::from_mode(0o1777)).unwrap();
        let err = CaptureDir::create(&shm).unwrap_err().to_string();
        assert!(
            err.contains("is a directory other users can write"),
            "{err}"
        );
        assert_eq!(mode(&shm), 0o1777);
        assert!(entries(&shm).is_empty());
        // Ours, private already: continued.
        fs::set_permissions(&open, fs::Permissions::from_mode(0o700)).unwrap();
        CaptureDir::create(&open).unwrap();
    }

    #[test]
    fn one_recorder_per_directory_until_it_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cap");
        let first = CaptureDir::create(&root).unwrap();
        let second = CaptureDir::create(&root).unwrap_err().to_string();
        assert_eq!(
            second,
            format!(
                "output {} is being recorded by another record (pid {}); give another -o",
                root.display(),
                std::process::id()
            )
        );
        drop(first);
        CaptureDir::create(&root).unwrap();
    }

    #[test]
    fn an_existing_capture_is_continued() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("cap");
        let dir = CaptureDir::create(&root).unwrap();
        fs::write(dir.table_dir("syscalls").join("part-000001.parquet"), "x").unwrap();
        drop(dir);
        let again = CaptureDir::create(&root).unwrap();
        assert!(
            again
                .table_dir("syscalls")
                .join("part-000001.parquet")
                .exists()
        );
    }
}
