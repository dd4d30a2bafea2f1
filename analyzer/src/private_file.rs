//! The one file `analyze` writes (`-o`): private, and never where another user can
//! redirect it.
//!
//! `analyze` often runs as root next to the capture, and its output holds the capture's
//! data. A symlink or a hard link planted under the output's name would make root
//! overwrite a file of the planter's choosing, and a directory another user can write lets
//! them swap the file. So the file is opened relative to a descriptor of its directory,
//! without following a symlink, and checked through its own descriptor before a byte is
//! truncated or written: nothing is decided on a path that could change in between.
use std::{
    ffi::CString,
    fs::File,
    io,
    os::{
        fd::{FromRawFd as _, OwnedFd},
        unix::ffi::OsStrExt as _,
    },
    path::{Path, PathBuf},
};

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("output {}: give a file name", .0.display())]
    NoName(PathBuf),
    /// What is written to a file is masked, what is printed is not: `-` for stdout would
    /// blur the two.
    #[error("output -: give a file name (`-` is not taken for stdout)")]
    Dash,
    #[error("output {}: cannot open its directory", path.display())]
    Dir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "output {}: its directory is writable by other users and not sticky, so they could swap the file; write elsewhere",
        .0.display()
    )]
    DirWritable(PathBuf),
    #[error(
        "output {}: its directory belongs to another user (uid {uid}); write elsewhere",
        path.display()
    )]
    DirOwned { path: PathBuf, uid: u32 },
    #[error("output {}: {} is not safe to write under: {why}; write elsewhere", path.display(), dir.display())]
    UnsafeDir {
        path: PathBuf,
        dir: PathBuf,
        why: String,
    },
    #[error("output {}: it is a symlink; give the real path", .0.display())]
    Symlink(PathBuf),
    #[error("output {}: not a regular file", .0.display())]
    NotFile(PathBuf),
    #[error("output {}: it belongs to another user (uid {uid})", path.display())]
    Owned { path: PathBuf, uid: u32 },
    #[error("output {}: it has other hard links, so writing it would change them too", .0.display())]
    Linked(PathBuf),
    #[error("cannot create {}", path.display())]
    Create {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn fstat(fd: &OwnedFd) -> io::Result<libc::stat> {
    use std::os::fd::AsRawFd as _;
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `st` is a valid, writable stat buffer and `fd` an open descriptor.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st)
}

fn c_path(p: &Path) -> io::Result<CString> {
    CString::new(p.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "a NUL byte in the path"))
}

/// Opens `path` for writing as a private (0600) file, creating it if needed, and empties
/// it only once it is known to be this user's own regular file with no other links.
pub fn create(path: &Path) -> Result<File, OutputError> {
    open_checked(path, libc::O_CREAT).map(|(_, file)| File::from(file.expect("O_CREAT makes it")))
}

/// The file `path` is, once complete: the answer is written to a private file beside it
/// and renamed over it only when whole, so a query that fails midway leaves `path` as it
/// was, and no file holds half an answer.
pub struct Pending {
    dir: OwnedFd,
    temp: CString,
    name: CString,
    path: PathBuf,
    file: File,
    done: bool,
}

impl Pending {
    /// `path` is checked as [`create`] checks it, and left untouched until [`Pending::commit`].
    pub fn new(path: &Path) -> Result<Self, OutputError> {
        use std::os::fd::AsRawFd as _;
        let (dir, _) = open_checked(path, 0)?;
        let create_err = |source| OutputError::Create {
            path: path.to_path_buf(),
            source,
        };
        let name = path.file_name().expect("open_checked needs a name");
        sweep_stale(&dir);
        // A short name of its own, not the target's (a 250-byte name plus a suffix was too
        // long), tried afresh if another user planted it first in a sticky directory.
        let flags =
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        let mut opened = None;
        for attempt in 0..16u32 {
            let temp = CString::new(format!(".analyze-{}-{attempt}.part", std::process::id()))
                .expect("no NUL");
            // SAFETY: a NUL-terminated name relative to an open directory descriptor.
            let raw = unsafe { libc::openat(dir.as_raw_fd(), temp.as_ptr(), flags, 0o600) };
            if raw >= 0 {
                opened = Some((raw, temp));
                break;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::AlreadyExists {
                return Err(create_err(e));
            }
        }
        let Some((raw, temp)) = opened else {
            return Err(create_err(io::Error::from(io::ErrorKind::AlreadyExists)));
        };
        // SAFETY: `raw` is a descriptor just opened and owned by nothing else.
        let file = File::from(unsafe { OwnedFd::from_raw_fd(raw) });
        Ok(Self {
            dir,
            temp,
            name: c_path(Path::new(name)).map_err(create_err)?,
            path: path.to_path_buf(),
            file,
            done: false,
        })
    }

    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }

    /// Puts the complete file in place of `path`.
    pub fn commit(mut self) -> Result<(), OutputError> {
        use std::os::fd::AsRawFd as _;
        // SAFETY: two NUL-terminated names relative to one open directory descriptor.
        let rc = unsafe {
            libc::renameat(
                self.dir.as_raw_fd(),
                self.temp.as_ptr(),
                self.dir.as_raw_fd(),
                self.name.as_ptr(),
            )
        };
        if rc != 0 {
            return Err(OutputError::Create {
                path: self.path.clone(),
                source: io::Error::last_os_error(),
            });
        }
        self.done = true;
        Ok(())
    }
}

/// The partial answer of an `analyze` that is gone: it was killed (`kill -9`, the OOM
/// killer) before it could remove its own. Left, such files add up (one was 147 MB), and
/// nothing else removes them. Only our own user's regular files, named as `Pending` names
/// them, whose process is no longer running: another user's, and one whose pid now names
/// a running process, are left as they are.
fn sweep_stale(dir: &OwnedFd) {
    use std::os::fd::AsRawFd as _;
    let Ok(entries) = std::fs::read_dir(format!("/proc/self/fd/{}", dir.as_raw_fd())) else {
        return;
    };
    // SAFETY: geteuid cannot fail.
    let me = unsafe { libc::geteuid() };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = stale_part_pid(&name.to_string_lossy()) else {
            continue;
        };
        // SAFETY: signal 0 sends nothing; it only asks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        let Ok(c_name) = CString::new(name.as_bytes()) else {
            continue;
        };
        let mut st = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: a NUL-terminated name relative to an open directory descriptor; `st` is
        // written when the call succeeds.
        let stat = unsafe {
            libc::fstatat(
                dir.as_raw_fd(),
                c_name.as_ptr(),
                st.as_mut_ptr(),
                libc::AT_SYMLINK_NOFOLLOW,
            )
        };
        if !gone || stat != 0 {
            continue;
        }
        // SAFETY: fstatat returned 0, so it filled `st`.
        let st = unsafe { st.assume_init() };
        if st.st_uid == me && st.st_mode & libc::S_IFMT == libc::S_IFREG {
            // SAFETY: as above.
            unsafe { libc::unlinkat(dir.as_raw_fd(), c_name.as_ptr(), 0) };
        }
    }
}

/// The pid in a partial answer's name, `.analyze-PID-N.part`.
fn stale_part_pid(name: &str) -> Option<i32> {
    let rest = name.strip_prefix(".analyze-")?.strip_suffix(".part")?;
    let (pid, attempt) = rest.split_once('-')?;
    attempt.parse::<u32>().ok()?;
    pid.parse::<i32>().ok().filter(|&pid| pid > 0)
}

impl Drop for Pending {
    /// Not committed: the partial answer goes, and `path` stays as it was.
    fn drop(&mut self) {
        use std::os::fd::AsRawFd as _;
        if !self.done {
            // SAFETY: a NUL-terminated name relative to an open directory descriptor.
            unsafe { libc::unlinkat(self.dir.as_raw_fd(), self.temp.as_ptr(), 0) };
        }
    }
}

/// The checks of [`create`]: the directory's, through its descriptor, then the file's, if
/// `path` exists or `create` (`O_CREAT` or 0) makes it. Gives the directory and the file,
/// truncated and made private.
fn open_checked(
    path: &Path,
    create: libc::c_int,
) -> Result<(OwnedFd, Option<OwnedFd>), OutputError> {
    use std::os::fd::AsRawFd as _;
    // `-` is stdout to most tools; here it made a file named `-` in silence (helper-69).
    if path.as_os_str() == "-" {
        return Err(OutputError::Dash);
    }
    // `new/` names a directory: Rust's file_name would take it for the file `new`.
    if path.as_os_str().as_bytes().ends_with(b"/") {
        return Err(OutputError::NoName(path.to_path_buf()));
    }
    let name = path
        .file_name()
        .ok_or_else(|| OutputError::NoName(path.to_path_buf()))?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let dir_err = |source| OutputError::Dir {
        path: path.to_path_buf(),
        source,
    };
    // Every directory on the way, and every symlink, too: one of another user's would
    // let them point the rest of the path wherever they like after this check.
    match tracepost_paths::check_path(dir) {
        Ok((_, missing)) if missing.is_empty() => {}
        Ok(_) => return Err(dir_err(io::Error::from_raw_os_error(libc::ENOENT))),
        Err(tracepost_paths::PathError::Unsafe { dir, why }) => {
            return Err(OutputError::UnsafeDir {
                path: path.to_path_buf(),
                dir,
                why,
            });
        }
        Err(tracepost_paths::PathError::Io { source, .. }) => return Err(dir_err(source)),
    }
    let c_dir = c_path(dir).map_err(dir_err)?;
    // SAFETY: a NUL-terminated path; the descriptor is owned below.
    let raw = unsafe {
        libc::open(
            c_dir.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    };
    if raw < 0 {
        return Err(dir_err(io::Error::last_os_error()));
    }
    // SAFETY: `raw` is a descriptor just opened and owned by nothing else.
    let dir_fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let st = fstat(&dir_fd).map_err(dir_err)?;
    let me = tracepost_paths::euid();
    if st.st_uid != me && st.st_uid != 0 {
        return Err(OutputError::DirOwned {
            path: path.to_path_buf(),
            uid: st.st_uid,
        });
    }
    // A sticky directory (/tmp) is safe: others cannot rename or remove what is ours, and
    // what they plant under our name is refused below.
    if st.st_mode & 0o022 != 0 && st.st_mode & libc::S_ISVTX == 0 {
        return Err(OutputError::DirWritable(path.to_path_buf()));
    }

    let create_err = |source| OutputError::Create {
        path: path.to_path_buf(),
        source,
    };
    let c_name = c_path(Path::new(name)).map_err(create_err)?;
    // O_NONBLOCK: a planted FIFO must not hang us before we can refuse it.
    let flags = libc::O_WRONLY
        | create
        | libc::O_NOFOLLOW
        | libc::O_CLOEXEC
        | libc::O_NONBLOCK
        | libc::O_NOCTTY;
    // SAFETY: a NUL-terminated name relative to an open directory descriptor.
    let raw = unsafe { libc::openat(dir_fd.as_raw_fd(), c_name.as_ptr(), flags, 0o600) };
    if raw < 0 {
        let e = io::Error::last_os_error();
        if create == 0 && e.raw_os_error() == Some(libc::ENOENT) {
            return Ok((dir_fd, None));
        }
        return Err(match e.raw_os_error() {
            Some(libc::ELOOP) => OutputError::Symlink(path.to_path_buf()),
            Some(libc::ENXIO | libc::EISDIR) => OutputError::NotFile(path.to_path_buf()),
            _ => create_err(e),
        });
    }
    // SAFETY: `raw` is a descriptor just opened and owned by nothing else.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let st = fstat(&fd).map_err(create_err)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFREG {
        return Err(OutputError::NotFile(path.to_path_buf()));
    }
    if st.st_uid != me {
        return Err(OutputError::Owned {
            path: path.to_path_buf(),
            uid: st.st_uid,
        });
    }
    if st.st_nlink > 1 {
        return Err(OutputError::Linked(path.to_path_buf()));
    }
    // SAFETY: plain descriptor calls on `fd`, which is open.
    unsafe {
        let fl = libc::fcntl(fd.as_raw_fd(), libc::F_GETFL);
        if fl < 0 || libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, fl & !libc::O_NONBLOCK) != 0 {
            return Err(create_err(io::Error::last_os_error()));
        }
        // An existing file of ours keeps the mode it had: make it private again. Only a
        // file about to be written is emptied; one checked for `Pending` stays as it is.
        if create != 0
            && (libc::fchmod(fd.as_raw_fd(), 0o600) != 0 || libc::ftruncate(fd.as_raw_fd(), 0) != 0)
        {
            return Err(create_err(io::Error::last_os_error()));
        }
    }
    Ok((dir_fd, Some(fd)))
}

#[cfg(test)]
mod tests {
    use std::{io::Write as _, os::unix::fs::PermissionsExt as _};

    use super::*;

    #[test]
    fn creates_private_files_and_refuses_what_could_redirect_them() {
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("out.md");
        std::fs::write(&out, "old contents that are longer").unwrap();
        std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
        let mut f = create(&out).unwrap();
        f.write_all(b"new").unwrap();
        drop(f);
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "new");
        let mode = std::fs::metadata(&out).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let victim = tmp.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let link = tmp.path().join("link.md");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(matches!(create(&link), Err(OutputError::Symlink(_))));
        let hard = tmp.path().join("hard.md");
        std::fs::hard_link(&victim, &hard).unwrap();
        assert!(matches!(create(&hard), Err(OutputError::Linked(_))));
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");

        let open_dir = tmp.path().join("open");
        std::fs::create_dir(&open_dir).unwrap();
        std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        match create(&open_dir.join("x.md")) {
            Err(OutputError::UnsafeDir { dir, why, .. }) => {
                assert_eq!(
                    (dir, why.as_str()),
                    (open_dir.clone(), "other users can write it")
                )
            }
            other => panic!("{:?}", other.err()),
        }
        std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        create(&open_dir.join("x.md")).unwrap();

        assert!(matches!(create(tmp.path()), Err(OutputError::NotFile(_))));
    }

    /// A killed `analyze`'s partial answer goes with the next `-o` into its directory;
    /// a running one's, another user's, and other names stay.
    #[test]
    fn a_gone_runs_partial_answer_is_swept() {
        use std::os::unix::fs::MetadataExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let pid_max: i32 = std::fs::read_to_string("/proc/sys/kernel/pid_max")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // No process can have a pid past pid_max.
        let gone = tmp.path().join(format!(".analyze-{}-0.part", pid_max + 1));
        let running = tmp
            .path()
            .join(format!(".analyze-{}-0.part", std::process::id()));
        let other = tmp.path().join(format!(".analyze-{}-1.part", pid_max + 1));
        let unlike = tmp.path().join(format!(".analyze-{}.part", pid_max + 1));
        for f in [&gone, &running, &other, &unlike] {
            std::fs::write(f, "half").unwrap();
        }
        let mine = std::fs::metadata(&other).unwrap().uid();
        // SAFETY: a NUL-terminated path; chown changes only the file's owner.
        let chowned = mine == 0 && {
            let c = CString::new(other.as_os_str().as_bytes()).unwrap();
            unsafe { libc::chown(c.as_ptr(), 65534, 65534) == 0 }
        };
        let pending = Pending::new(&tmp.path().join("out.md")).unwrap();
        drop(pending);
        assert!(!gone.exists());
        assert!(running.exists());
        assert!(unlike.exists());
        assert_eq!(other.exists(), chowned, "another user's is left");
        assert_eq!(stale_part_pid(".analyze-12-3.part"), Some(12));
        assert_eq!(stale_part_pid(".analyze-12.part"), None);
        assert_eq!(stale_part_pid(".analyze--1-0.part"), None);
    }

    /// A symlink of another user's on the way to the output's directory, even to a
    /// directory of ours: they could point it anywhere once it is checked.
    #[test]
    fn a_path_through_another_users_symlink_or_open_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let ours = tmp.path().join("ours");
        std::fs::create_dir(&ours).unwrap();
        let theirs = tmp.path().join("theirs");
        std::fs::create_dir(&theirs).unwrap();
        let link = theirs.join("reports");
        std::os::unix::fs::symlink(&ours, &link).unwrap();
        let c = c_path(&link).unwrap();
        // SAFETY: a NUL-terminated path.
        assert_eq!(unsafe { libc::lchown(c.as_ptr(), 65534, 65534) }, 0);
        match create(&link.join("out.csv")) {
            Err(OutputError::UnsafeDir { dir, .. }) => assert_eq!(dir, link),
            other => panic!("{:?}", other.err()),
        }
        assert!(!ours.join("out.csv").exists());
        // A directory others can write, above one of ours.
        let open = tmp.path().join("open");
        std::fs::create_dir_all(open.join("sub")).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(matches!(
            create(&open.join("sub/x.csv")),
            Err(OutputError::UnsafeDir { .. })
        ));
        create(&ours.join("out.csv")).unwrap();
    }
}
