//! A directory or file's path as the fd table keeps it, and how a relative path joins it.
//!
//! A program that walks a tree the way `find` and fts do opens each directory relative to
//! the last (`openat(fd, "sub", O_NOFOLLOW)`) and climbs with `openat(fd, "..")`. Joined
//! as strings, each climb added `/..`: paths thousands of bytes long, and the same
//! directory under many names. `X/c/..` is the directory `X` names only when `c` is not a
//! symlink (the kernel's `..` is the physical parent), so a place counts how many of its
//! last components are known not to be symlinks, and `..` removes a component only then.
use std::sync::Arc;

/// A path, and how many of its last components are known not to be symlinks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Place {
    pub path: Arc<str>,
    pub real: u16,
}

impl Place {
    /// A name that is not known to be free of symlinks: a path as a program gave it.
    pub fn given(path: Arc<str>) -> Self {
        Self { path, real: 0 }
    }

    /// A path the kernel resolved (`/proc/PID/fd/N`, `/proc/PID/cwd`): no component is a
    /// symlink.
    pub fn resolved(path: Arc<str>) -> Self {
        let real = if path.starts_with('/') {
            path.split('/')
                .filter(|c| !c.is_empty())
                .count()
                .min(u16::MAX as usize) as u16
        } else {
            0
        };
        Self { path, real }
    }

    /// Where `rel` leads from this directory. `nofollow`: the call opened the last
    /// component without following a symlink (`O_NOFOLLOW`), so it is not one if the call
    /// succeeded. `.` is dropped, `..` removes a component known not to be a symlink and is
    /// kept otherwise; a path without either joins as before, in one allocation.
    pub fn join(&self, rel: &str, nofollow: bool) -> Place {
        if rel.is_empty() {
            return self.clone();
        }
        // Every component but the last is followed; so is the last before a trailing '/'.
        // O_NOFOLLOW on a last `.` or `..` says nothing of the name before it: `lnk/.`
        // follows `lnk`.
        let last = rel.rsplit('/').next().unwrap_or("");
        let last_real = nofollow && !matches!(last, "" | "." | "..");
        let plain = !rel
            .split('/')
            .any(|c| c == "." || c == ".." || c.is_empty());
        if plain {
            let path = if self.path.ends_with('/') {
                format!("{}{rel}", self.path)
            } else {
                format!("{}/{rel}", self.path)
            };
            let single = !rel.contains('/');
            let real = match (last_real, single) {
                (true, true) => self.real.saturating_add(1),
                (true, false) => 1,
                (false, _) => 0,
            };
            return Place {
                path: path.into(),
                real,
            };
        }
        let mut path = self.path.trim_end_matches('/').to_string();
        let mut real = self.real;
        let parts: Vec<&str> = rel
            .split('/')
            .filter(|c| !c.is_empty() && *c != ".")
            .collect();
        for (i, part) in parts.iter().enumerate() {
            let is_last = i + 1 == parts.len();
            if *part == ".." {
                match path.rfind('/') {
                    Some(cut) if real > 0 => {
                        path.truncate(cut);
                        real -= 1;
                    }
                    // The root's parent is the root.
                    None if path.is_empty() => {}
                    _ => {
                        path.push_str("/..");
                        real = 0;
                    }
                }
            } else {
                path.push('/');
                path.push_str(part);
                real = if is_last && last_real {
                    real.saturating_add(1)
                } else {
                    0
                };
            }
        }
        if path.is_empty() {
            path.push('/');
        }
        Place {
            path: path.into(),
            real,
        }
    }
}

/// What a name under `/proc/self`, `/proc/PID` or `/dev/fd` means for the process `pid`
/// that used it: such names resolve in whoever reads them, so kept as given they would
/// name the reader's files (the recorder's, or the analyst's) later.
#[derive(Debug, PartialEq, Eq)]
pub enum ProcName {
    /// Not such a name.
    Plain,
    /// The process's own fd `N` (`/proc/self/fd/N`, `/dev/fd/N`, `/dev/stdin`...): the
    /// file that fd names.
    Fd(i32),
    /// The process's working directory (`/proc/self/cwd`).
    Cwd,
    /// A path below the directory fd `N` (`/proc/self/fd/N/x`, `/dev/fd/N/x`).
    BelowFd(i32, String),
    /// A path below the working directory (`/proc/self/cwd/x`).
    BelowCwd(String),
    /// A file of the process's own `/proc` directory (`/proc/self/status`), named by pid.
    Own(String),
    /// Through one of its magic links (`fd/N/...`, `cwd/...`, `root`, `exe`, `map_files`), or
    /// another thread's or process's: not known from the name.
    Unknown,
}

/// Classifies `path` as used by process `pid` ([`ProcName`]).
pub fn proc_name(pid: u32, path: &str) -> ProcName {
    if let Some(n) = path.strip_prefix("/dev/fd/") {
        return match n.split_once('/') {
            Some((n, rest)) => n
                .parse()
                .map(|n| ProcName::BelowFd(n, rest.to_string()))
                .unwrap_or(ProcName::Unknown),
            None => n.parse().map(ProcName::Fd).unwrap_or(ProcName::Unknown),
        };
    }
    match path {
        "/dev/stdin" => return ProcName::Fd(0),
        "/dev/stdout" => return ProcName::Fd(1),
        "/dev/stderr" => return ProcName::Fd(2),
        // /proc/self/fd, which is the reader's own.
        "/dev/fd" => return ProcName::Unknown,
        _ => {}
    }
    let Some(rest) = path.strip_prefix("/proc/") else {
        return ProcName::Plain;
    };
    let (who, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let own = who == "self" || who == pid.to_string();
    if !own {
        // Another process's (or thread-self, or a task's): a number whose process may be
        // gone or reused by the time anyone reads this.
        return if who.parse::<u32>().is_ok() || who == "thread-self" {
            ProcName::Unknown
        } else {
            ProcName::Plain
        };
    }
    let mut parts = tail.split('/').filter(|p| !p.is_empty());
    match (parts.next(), parts.next(), parts.next()) {
        (Some("fd"), Some(n), None) => n.parse().map(ProcName::Fd).unwrap_or(ProcName::Unknown),
        (Some("cwd"), None, None) => ProcName::Cwd,
        (Some("fd"), Some(n), Some(_)) => match n.parse() {
            Ok(n) => ProcName::BelowFd(n, tail.splitn(3, '/').nth(2).unwrap_or("").to_string()),
            Err(_) => ProcName::Unknown,
        },
        (Some("cwd"), Some(_), _) => ProcName::BelowCwd(
            tail.split_once('/')
                .map(|(_, r)| r)
                .unwrap_or("")
                .to_string(),
        ),
        (Some("fd" | "cwd" | "root" | "exe" | "map_files" | "task" | "fdinfo"), _, _) => {
            ProcName::Unknown
        }
        _ if tail.split('/').any(|p| p == "..") => ProcName::Unknown,
        _ => ProcName::Own(
            format!("/proc/{pid}/{tail}")
                .trim_end_matches('/')
                .to_string(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(path: &str, real: u16) -> Place {
        Place {
            path: path.into(),
            real,
        }
    }

    #[test]
    fn a_walk_down_and_up_without_symlinks_names_each_directory_once() {
        // find: /usr, then share and doc opened O_NOFOLLOW, then back up twice.
        let usr = Place::resolved("/usr".into());
        let share = usr.join("share", true);
        let doc = share.join("doc", true);
        assert_eq!(doc, at("/usr/share/doc", 3));
        let up = doc.join("..", true);
        assert_eq!(up, at("/usr/share", 2));
        assert_eq!(up.join("..", false).join("..", false), at("/", 0));
        assert_eq!(at("/", 0).join("..", false), at("/", 0));
        assert_eq!(doc.join("../../lib", true), at("/usr/lib", 2));
        assert_eq!(doc.join("./x/.", false), at("/usr/share/doc/x", 0));
    }

    #[test]
    fn a_parent_is_never_taken_through_what_may_be_a_symlink() {
        // "link" was followed: its parent is the target's, which the string does not say.
        let link = Place::given("/srv/link".into());
        assert_eq!(link.join("..", true), at("/srv/link/..", 0));
        let opened = at("/srv", 1).join("link", false);
        assert_eq!(opened, at("/srv/link", 0));
        assert_eq!(opened.join("../x", true), at("/srv/link/../x", 1));
        // A trailing slash follows the last component, O_NOFOLLOW or not.
        assert_eq!(at("/srv", 1).join("d/", true).real, 0);
        // O_NOFOLLOW on a final `.` leaves the link before it followed.
        assert_eq!(at("/srv", 1).join("lnk/.", true), at("/srv/lnk", 0));
        assert_eq!(at("/srv", 1).join("./lnk/./.", true), at("/srv/lnk", 0));
        assert_eq!(
            at("/srv", 1).join("lnk/.", true).join("..", true),
            at("/srv/lnk/..", 0)
        );
        // Intermediate components are always followed.
        assert_eq!(at("/srv", 1).join("a/b", true), at("/srv/a/b", 1));
        assert_eq!(
            at("/srv", 1).join("a/b/../..", true),
            at("/srv/a/b/../..", 0)
        );
    }

    #[test]
    fn names_that_mean_a_process_are_read_as_its_own() {
        assert_eq!(proc_name(7, "/etc/passwd"), ProcName::Plain);
        assert_eq!(proc_name(7, "/proc/self/fd/3"), ProcName::Fd(3));
        assert_eq!(proc_name(7, "/proc/7/fd/3"), ProcName::Fd(3));
        assert_eq!(proc_name(7, "/dev/fd/4"), ProcName::Fd(4));
        assert_eq!(proc_name(7, "/dev/stderr"), ProcName::Fd(2));
        assert_eq!(proc_name(7, "/proc/self/cwd"), ProcName::Cwd);
        assert_eq!(
            proc_name(7, "/proc/self/status"),
            ProcName::Own("/proc/7/status".into())
        );
        assert_eq!(proc_name(7, "/proc/self"), ProcName::Own("/proc/7".into()));
        assert_eq!(
            proc_name(7, "/proc/self/fd/3/../f0"),
            ProcName::BelowFd(3, "../f0".into())
        );
        assert_eq!(
            proc_name(7, "/dev/fd/3/x"),
            ProcName::BelowFd(3, "x".into())
        );
        assert_eq!(
            proc_name(7, "/proc/self/cwd/f2"),
            ProcName::BelowCwd("f2".into())
        );
        for through in [
            "/proc/self/exe",
            "/proc/self/root/etc/passwd",
            "/proc/8/fd/3",
            "/proc/thread-self/fd/1",
            "/proc/self/../8/status",
        ] {
            assert_eq!(proc_name(7, through), ProcName::Unknown, "{through}");
        }
        assert_eq!(proc_name(7, "/proc/meminfo"), ProcName::Plain);
    }

    #[test]
    fn the_kernels_own_paths_are_real_throughout() {
        assert_eq!(Place::resolved("/a/b/c".into()).real, 3);
        assert_eq!(Place::resolved("/".into()).real, 0);
        assert_eq!(Place::resolved("socket:[1]".into()).real, 0);
        assert_eq!(
            Place::resolved("/a/b".into()).join("../..", false),
            at("/", 0)
        );
    }
}
