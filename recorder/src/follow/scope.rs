//! `--comm` and `--cgroup`: which threads are recorded. The kernel asks when a thread gets
//! its slot and at execve; this module asks the same of threads that exist at attach.
use std::{
    fs, io,
    os::unix::fs::MetadataExt,
    path::{Path, PathBuf},
};

/// `statfs` magic of cgroup v2.
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

#[derive(Debug, thiserror::Error)]
pub enum ScopeError {
    #[error("--cgroup {}: cannot read it", path.display())]
    Cgroup {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("--cgroup {}: not a cgroup v2 directory (see `grep cgroup2 /proc/mounts` for where cgroup v2 is mounted)", .0.display())]
    NotCgroup2(PathBuf),
    #[error("--comm {0:?}: empty")]
    EmptyComm(String),
}

/// A cgroup v2 directory, as the kernel identifies it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cgroup {
    /// The cgroup id: the directory's inode number.
    pub id: u64,
    /// Depth below the root cgroup (which is 0).
    pub level: u32,
    /// Path below the root, as /proc/PID/cgroup shows it (`/system.slice/x.service`).
    pub relative: String,
    /// The directory, links resolved: where a cgroup made anew is looked for.
    pub path: PathBuf,
}

fn is_cgroup2(path: &Path) -> Result<bool, io::Error> {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated path and a valid statfs buffer.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_type == CGROUP2_SUPER_MAGIC)
}

impl Cgroup {
    pub fn open(path: &Path) -> Result<Self, ScopeError> {
        let err = |source| ScopeError::Cgroup {
            path: path.to_path_buf(),
            source,
        };
        let path = path.canonicalize().map_err(err)?;
        let meta = fs::metadata(&path).map_err(err)?;
        if !meta.is_dir() || !is_cgroup2(&path).map_err(err)? {
            return Err(ScopeError::NotCgroup2(path));
        }
        // Climb to the root of the cgroup2 mount: its components below it are the level.
        let mut root = path.clone();
        let mut below = Vec::new();
        while let Some(parent) = root.parent() {
            if !is_cgroup2(parent).unwrap_or(false) {
                break;
            }
            below.push(
                root.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            );
            root = parent.to_path_buf();
        }
        below.reverse();
        Ok(Self {
            id: meta.ino(),
            level: below.len() as u32,
            relative: format!("/{}", below.join("/")),
            path,
        })
    }

    /// Whether a /proc cgroup path is this cgroup or below it.
    pub fn contains(&self, cgroup_path: &str) -> bool {
        self.relative == "/"
            || cgroup_path == self.relative
            || cgroup_path
                .strip_prefix(&self.relative)
                .is_some_and(|rest| rest.starts_with('/'))
    }
}

#[derive(Clone, Debug, Default)]
pub struct Scope {
    pub comms: Vec<Vec<u8>>,
    pub cgroup: Option<Cgroup>,
}

impl Scope {
    pub fn new(comms: &[String], cgroup: Option<&Path>) -> Result<Self, ScopeError> {
        for c in comms {
            if c.is_empty() {
                return Err(ScopeError::EmptyComm(c.clone()));
            }
        }
        // The kernel keeps 15 bytes of a name; so must the comparison.
        let comms = comms
            .iter()
            .map(|c| tracepost_schema::comm_bytes(c).to_vec())
            .collect();
        Ok(Self {
            comms,
            cgroup: cgroup.map(Cgroup::open).transpose()?,
        })
    }

    /// Whether thread `tid` of `pid`, as it is now, is left out.
    pub fn ignores(&self, pid: i32, tid: u32) -> bool {
        if !self.comms.is_empty() {
            let mut comm = fs::read(format!("/proc/{pid}/task/{tid}/comm")).unwrap_or_default();
            if comm.last() == Some(&b'\n') {
                comm.pop();
            }
            if !self.comms.contains(&comm) {
                return true;
            }
        }
        if let Some(cgroup) = &self.cgroup {
            let path = crate::follow::process_event::cgroup(pid as u32).unwrap_or_default();
            if !cgroup.contains(&path) {
                return true;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_cut_like_the_kernels_and_cgroups_contain_their_children() {
        let s = Scope::new(&["a-very-long-program-name".into()], None).unwrap();
        assert_eq!(s.comms, vec![b"a-very-long-pro".to_vec()]);
        let cg = Cgroup {
            id: 1,
            level: 1,
            relative: "/system.slice".into(),
            path: "/sys/fs/cgroup/system.slice".into(),
        };
        assert!(cg.contains("/system.slice"));
        assert!(cg.contains("/system.slice/nginx.service"));
        assert!(!cg.contains("/system.slice2"));
        assert!(!cg.contains("/user.slice"));
    }

    #[test]
    fn the_root_cgroup_is_level_zero_and_a_file_is_refused() {
        let mounts = fs::read_to_string("/proc/self/mounts").unwrap();
        let Some(root) = mounts.lines().find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
        }) else {
            return;
        };
        let cg = Cgroup::open(&root).unwrap();
        assert_eq!((cg.level, cg.relative.as_str()), (0, "/"));
        assert!(Cgroup::open(&root.join("cgroup.procs")).is_err());
        assert!(Cgroup::open(Path::new("/proc")).is_err());
    }
}
