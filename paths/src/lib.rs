//! Where root may write: the directories on the way to an output, checked so that no
//! other user can redirect it.
//!
//! `record -o` and `analyze -o` both run as root beside other users' files, and both write
//! what a capture holds. A directory on the way that another user owns or can write, or a
//! symlink of theirs, lets them swap the rest of the path after it was checked and choose
//! where root writes. Each binary then opens what it writes relative to a descriptor of
//! the checked directory, never by a path that could change in between.
use std::{
    fs, io,
    path::{Path, PathBuf},
};

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    /// A directory or symlink on the way that another user could use to redirect the path.
    #[error("{} is not safe to write under: {why}", dir.display())]
    Unsafe { dir: PathBuf, why: String },
    /// A directory on the way could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err(path: &Path, source: io::Error) -> PathError {
    PathError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The user this process acts as, whose directories and links are safe.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// Every directory a path passes through on its way to `parent`, as written and as each
/// symlink leads on (so every ancestor of the resolved path too), must be safe from other
/// users, and every symlink on the way must be root's or ours. Checking the resolved path
/// alone missed both: `-o /tmp/theirs/cap`, with `/tmp/theirs` their symlink, led wherever
/// they pointed it, and a symlink of ours under a directory others can write could be
/// swapped, with its directory, mid-capture. Gives the deepest directory that exists, and
/// the names still to make below it.
pub fn check_path(parent: &Path) -> Result<(PathBuf, Vec<PathBuf>), PathError> {
    use std::{collections::VecDeque, os::unix::fs::MetadataExt as _, path::Component};
    let refuse = |dir: &Path, why: String| PathError::Unsafe {
        dir: dir.to_path_buf(),
        why,
    };
    let safe = |dir: &Path| -> Result<(), PathError> {
        let st = fs::metadata(dir).map_err(|source| io_err(dir, source))?;
        if st.uid() != 0 && st.uid() != euid() {
            return Err(refuse(
                dir,
                format!("it belongs to another user (uid {})", st.uid()),
            ));
        }
        if st.mode() & 0o022 != 0 && st.mode() & libc::S_ISVTX == 0 {
            return Err(refuse(dir, "other users can write it".into()));
        }
        Ok(())
    };
    let mut at = if parent.is_absolute() {
        PathBuf::from("/")
    } else {
        std::env::current_dir().map_err(|source| io_err(parent, source))?
    };
    for dir in at.ancestors() {
        safe(dir)?;
    }
    let mut left: VecDeque<PathBuf> = parent
        .components()
        .map(|c| PathBuf::from(c.as_os_str()))
        .collect();
    let mut links = 0;
    while let Some(part) = left.pop_front() {
        match Path::new(&part).components().next() {
            Some(Component::RootDir) => {
                at = PathBuf::from("/");
                continue;
            }
            Some(Component::CurDir) | None => continue,
            Some(Component::ParentDir) => {
                at.pop();
                continue;
            }
            _ => {}
        }
        let next = at.join(&part);
        let Ok(meta) = fs::symlink_metadata(&next) else {
            // Missing: the rest is made by us, below `at`. A `..` or a link cannot be
            // judged in what does not exist yet, so the rest must be plain names.
            let mut missing = vec![part];
            missing.extend(left);
            if let Some(odd) = missing
                .iter()
                .find(|c| !matches!(Path::new(c).components().next(), Some(Component::Normal(_))))
            {
                return Err(refuse(
                    &next,
                    format!(
                        "it does not exist, and the path goes on with {} after it",
                        odd.display()
                    ),
                ));
            }
            return Ok((at, missing));
        };
        if !meta.file_type().is_symlink() {
            safe(&next)?;
            at = next;
            continue;
        }
        // /proc's links (`/proc/PID/root`, `cwd`, `fd/N`) lead into the process's own view
        // of the files, another mount namespace's for a container: their text names a
        // path of that view, and checking it as one of ours checked the wrong directories
        // while the kernel wrote into theirs (helper-76).
        if on_proc(&at) {
            return Err(refuse(
                &next,
                "it is a link of /proc, which leads into another process's view of the \
                 files: name the directory itself"
                    .into(),
            ));
        }
        // The directory it sits in was checked as the walk passed it.
        if meta.uid() != 0 && meta.uid() != euid() {
            return Err(refuse(
                &next,
                format!(
                    "it is a symlink that belongs to another user (uid {})",
                    meta.uid()
                ),
            ));
        }
        links += 1;
        if links > 40 {
            return Err(io_err(&next, io::Error::from_raw_os_error(libc::ELOOP)));
        }
        let target = fs::read_link(&next).map_err(|source| io_err(&next, source))?;
        for c in target.components().rev() {
            left.push_front(PathBuf::from(c.as_os_str()));
        }
    }
    Ok((at, Vec::new()))
}

/// Whether `dir` is on a proc file system, whose links the kernel resolves itself.
fn on_proc(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt as _;
    let Ok(c_path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return false;
    };
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a statfs buffer of the right size.
    let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut st) };
    rc == 0 && st.f_type == libc::PROC_SUPER_MAGIC
}
