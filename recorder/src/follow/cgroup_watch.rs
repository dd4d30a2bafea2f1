//! `--cgroup` follows its path, not only the directory it named at the start: a service
//! restarted by systemd gets a new cgroup at the same path (the old one is removed with its
//! last process), and until record saw that, every call of the restarted service was left
//! out without a word (helper-88).
use std::{
    os::unix::fs::MetadataExt as _,
    path::PathBuf,
    time::{Duration, Instant},
};

use tracepost_common::CGROUP_GONE;

use crate::follow::scope::Cgroup;

/// How often the path is looked at. A service restarted within it has its first calls
/// missing: a thread's scope is decided from its first call on.
pub const EVERY: Duration = Duration::from_millis(100);

/// The directory at the path, as last seen.
pub struct CgroupWatch {
    path: PathBuf,
    id: u64,
    generation: u64,
    next: Instant,
}

/// What became of the directory: [`CgroupWatch::id`] and [`CgroupWatch::generation`] say
/// what the kernel is to be told.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// A new cgroup at the path.
    MadeAnew,
    /// No cgroup at the path any more: the id is `CGROUP_GONE`.
    Gone,
}

impl CgroupWatch {
    pub fn new(cgroup: &Cgroup) -> Self {
        Self {
            path: cgroup.path.clone(),
            id: cgroup.id,
            generation: 0,
            next: Instant::now() + EVERY,
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// The id of the cgroup at the path as last seen, `CGROUP_GONE` if none.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// How many times the id changed.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Looks at the path if it is time: a directory whose inode (the cgroup's id) is not
    /// the one seen last is a new cgroup.
    pub fn poll(&mut self, now: Instant) -> Option<Change> {
        if now < self.next {
            return None;
        }
        self.next = now + EVERY;
        let id = match std::fs::metadata(&self.path) {
            Ok(meta) if meta.is_dir() => meta.ino(),
            _ => CGROUP_GONE,
        };
        if id == self.id {
            return None;
        }
        self.id = id;
        self.generation += 1;
        Some(match id {
            CGROUP_GONE => Change::Gone,
            _ => Change::MadeAnew,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_removed_then_made_anew_is_two_changes() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("svc");
        std::fs::create_dir(&path).unwrap();
        let cgroup = Cgroup {
            id: std::fs::metadata(&path).unwrap().ino(),
            level: 1,
            relative: "/svc".into(),
            path: path.clone(),
        };
        let mut watch = CgroupWatch::new(&cgroup);
        let later = || Instant::now() + EVERY * 2;
        assert_eq!(watch.poll(later()), None);
        std::fs::remove_dir(&path).unwrap();
        assert_eq!(watch.poll(Instant::now()), None, "not yet time");
        assert_eq!(watch.poll(later() + EVERY), Some(Change::Gone));
        assert_eq!((watch.id(), watch.generation()), (CGROUP_GONE, 1));
        // A file in its place is no cgroup either, and no change.
        std::fs::write(&path, b"").unwrap();
        assert_eq!(watch.poll(later() + EVERY * 3), None);
        std::fs::remove_file(&path).unwrap();
        std::fs::create_dir(&path).unwrap();
        let id = std::fs::metadata(&path).unwrap().ino();
        assert_eq!(watch.poll(later() + EVERY * 5), Some(Change::MadeAnew));
        assert_eq!((watch.id(), watch.generation()), (id, 2));
    }
}
