//! A cgroup's path from the id the kernel put in a process event.
//!
//! The kernel says which cgroup a task was in when it forked or exec'd. Reading
//! /proc/PID/cgroup later instead gives nothing for a process already gone, and a child
//! then took its parent's path from when the parent started, which is wrong once a
//! process moves itself into a cgroup (as `systemd-run`, container runtimes and
//! `echo $$ > cgroup.procs` do). A cgroup v2 id is its directory's inode number, so the
//! mount is walked to name an id not yet seen.
use std::{
    collections::HashMap,
    fs,
    os::unix::fs::MetadataExt as _,
    path::{Path, PathBuf},
};

/// Directories looked at in one walk, at most: a walk runs on the capture thread.
const WALK_LIMIT: usize = 100_000;

pub struct CgroupNames {
    /// Where cgroup v2 is mounted, if it is.
    root: Option<PathBuf>,
    /// Ids seen, with their paths below the root (`/system.slice/x.service`); `None` for an
    /// id no walk found (a cgroup removed since), so that it is walked for only once.
    known: HashMap<u64, Option<String>>,
}

impl CgroupNames {
    pub fn new() -> Self {
        let root = fs::read_to_string("/proc/self/mounts").ok().and_then(|m| {
            m.lines().find_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.get(2) == Some(&"cgroup2")).then(|| PathBuf::from(f[1]))
            })
        });
        Self {
            root,
            known: HashMap::new(),
        }
    }

    /// The path of cgroup `id`, or `None` when it is not (or no longer) there.
    pub fn path(&mut self, id: u64) -> Option<String> {
        if id == 0 {
            return None;
        }
        if let Some(known) = self.known.get(&id) {
            return known.clone();
        }
        if let Some(root) = self.root.clone() {
            self.walk(&root);
        }
        self.known.entry(id).or_insert(None).clone()
    }

    fn walk(&mut self, root: &Path) {
        let mut stack = vec![(root.to_path_buf(), String::new())];
        let mut seen = 0;
        while let Some((dir, relative)) = stack.pop() {
            seen += 1;
            if seen > WALK_LIMIT {
                return;
            }
            let Ok(meta) = fs::metadata(&dir) else {
                continue;
            };
            let name = if relative.is_empty() {
                "/".to_string()
            } else {
                relative.clone()
            };
            self.known.insert(meta.ino(), Some(name));
            let Ok(entries) = fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    let below = format!("{relative}/{}", entry.file_name().to_string_lossy());
                    stack.push((entry.path(), below));
                }
            }
        }
    }
}

impl Default for CgroupNames {
    fn default() -> Self {
        Self::new()
    }
}
