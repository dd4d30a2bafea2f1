//! What a call means for the fd table, read from its number, arguments, return value and
//! extra data: which fd it created, copied, renamed or closed, and with what name. Applying
//! that to the table is [`crate::follow::fd_table`]'s job.
use std::sync::Arc;

use syscalls::Sysno;
use tracepost_common::{COMPAT_BASE, FIOCLEX, FIONCLEX, FLAG_OPENED_FIFO};

use crate::{
    kernel::call::Call,
    kernel::decode::{Extra, Target},
    kernel::names,
    kernel::syscall_table::takes_names,
};

pub(crate) const AT_FDCWD: i32 = -100;
pub(crate) const O_CLOEXEC: u64 = 0o2_000_000;
const O_NOFOLLOW: u64 = 0o400_000;
/// `__O_TMPFILE`: `O_TMPFILE` is this and `O_DIRECTORY`.
const O_TMPFILE_BIT: u64 = 0o20_000_000;
const O_PATH: u64 = 0o10_000_000;
const O_ACCMODE: u64 = 3;
const SOCK_CLOEXEC: u64 = O_CLOEXEC;
const F_DUPFD: u64 = 0;
const F_SETFD: u64 = 2;
const F_DUPFD_CLOEXEC: u64 = 1030;
const FD_CLOEXEC: u64 = 1;
const CLOSE_RANGE_UNSHARE: u64 = 2;
pub(crate) const CLONE_FS: u64 = 0x200;
pub(crate) const CLONE_FILES: u64 = 0x400;
const CLONE_NEWNS: u64 = 0x2_0000;
const CLOSE_RANGE_CLOEXEC: u64 = 4;
const EBADF: i64 = -9;
const EINPROGRESS: i64 = -115;

/// What an fd may be used for, where the call that made it says: a read's EBADF on an fd
/// opened write-only says nothing about whether it is open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Access {
    /// Not known (a snapshot from /proc, an fd of an anonymous kind, openat2).
    #[default]
    Unknown,
    Read,
    Write,
    ReadWrite,
    /// `O_PATH`, or the access mode 3: no read or write, and most calls give EBADF.
    Neither,
}

impl Access {
    /// From an open's flags, or /proc's `fdinfo` ones.
    pub(crate) fn of_flags(flags: u64) -> Self {
        if flags & O_PATH != 0 {
            return Self::Neither;
        }
        match flags & O_ACCMODE {
            0 => Self::Read,
            1 => Self::Write,
            2 => Self::ReadWrite,
            _ => Self::Neither,
        }
    }
}

/// What use of an fd a call's EBADF shows the fd was not open for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Used {
    /// Reading: a write-only or `O_PATH` fd gives EBADF too.
    Read,
    /// Writing: a read-only or `O_PATH` fd gives EBADF too.
    Write,
    /// Anything but `O_PATH` allows it (lseek, fsync, flock, fchmod...).
    Open,
    /// `fstat`, which an `O_PATH` fd allows too: EBADF only where nothing is open.
    Any,
}

impl Used {
    /// Whether an fd of `access` that gave EBADF for this use cannot have been open.
    pub(crate) fn proves_closed(self, access: Access) -> bool {
        use Access as A;
        match (self, access) {
            (_, A::Unknown) | (Used::Any, _) => true,
            (Used::Read, a) => matches!(a, A::Read | A::ReadWrite),
            (Used::Write, a) => matches!(a, A::Write | A::ReadWrite),
            (Used::Open, a) => a != A::Neither,
        }
    }
}

/// One call's effect on its process's fds or working directory. `cloexec` is `None` where
/// the call's flags are not known (the entry is then dropped at execve).
#[derive(Debug, PartialEq)]
pub(crate) enum FdEffect<'a> {
    /// `fd` now refers to `path`, relative to `dirfd`; `None` if the path was not read.
    Open {
        fd: i32,
        dirfd: i32,
        path: Option<&'a Arc<str>>,
        cloexec: Option<bool>,
        access: Access,
        /// `O_NOFOLLOW`: the last component, opened, is not a symlink.
        nofollow: bool,
        /// openat2, whose `RESOLVE_*` flags (in a struct not read) can change what any
        /// path with a symlink, a `..` or a leading `/` names.
        resolve_unknown: bool,
        /// The kernel said the file is a FIFO ([`FLAG_OPENED_FIFO`]).
        fifo: bool,
    },
    /// `fd` is new, named `name` where the name is certain.
    New {
        fd: i32,
        name: Option<Arc<str>>,
        cloexec: Option<bool>,
    },
    /// The socket `fd` now has the address `addr`; `None` if it could not be read.
    Rename {
        fd: i32,
        addr: Option<Arc<str>>,
    },
    /// A pipe or socket pair; `fds` is `None` if they could not be read.
    Pair {
        fds: Option<(i32, i32)>,
        name: &'static str,
        cloexec: bool,
        /// Each end's: a pipe reads at one and writes at the other.
        access: (Access, Access),
    },
    Copy {
        from: i32,
        to: i32,
        cloexec: bool,
    },
    SetCloexec {
        fd: i32,
        cloexec: bool,
    },
    Close {
        fd: i32,
    },
    CloseRange {
        first: u32,
        last: u32,
        unshare: bool,
        cloexec_only: bool,
    },
    /// A successful execve: fds marked close-on-exec, or not known not to be, are gone.
    Exec,
    Chdir {
        path: Option<&'a Arc<str>>,
    },
    Fchdir {
        fd: i32,
    },
    /// unshare: the calling thread took its own fd table (`files`) or working directory
    /// and root (`fs`; `CLONE_NEWNS` implies it).
    Unshare {
        files: bool,
        fs: bool,
    },
    /// The process's root moved (chroot): absolute paths are now below it.
    Chroot {
        path: Option<&'a Arc<str>>,
    },
    /// setns into another mount namespace moves the cwd and the root to its root
    /// (`surely`), or may have: `fd` is a namespace of a kind not given, which only its name
    /// can say. A relative name after `nsenter -m` was joined to the old cwd (helper-81).
    EnterMounts {
        fd: i32,
        surely: bool,
    },
    /// The process set up an io_uring: its operations open, close and rename without a
    /// syscall, so what its fds refer to can no longer be followed.
    Ring {
        fd: i32,
    },
    /// `fd` is a copy of another process's fd (`pidfd_getfd`): which, only /proc can say,
    /// and it may be a ring.
    Taken {
        fd: i32,
    },
    /// `name` (relative to `dirfd`) no longer names what it did: it was renamed or
    /// removed. Nor does a rename's `target`: a file open under that name lost it to the
    /// one renamed (or, with `RENAME_EXCHANGE`, the two swapped). Whatever was known by
    /// either, or by a name below it, is not.
    NameGone {
        dirfd: i32,
        name: Gone<'a>,
        target: Option<(i32, Gone<'a>)>,
    },
}

/// A name a call took away, as far as the kernel read it.
#[derive(Debug, PartialEq)]
pub(crate) enum Gone<'a> {
    Whole(&'a Arc<str>),
    /// The first bytes of a longer name.
    Cut(&'a Arc<str>),
    /// Not read.
    Unknown,
}

impl<'a> FdEffect<'a> {
    /// The call's effect, or `None` if it has none on fds or the working directory.
    /// Inline: it runs for every call, and most leave at the first match. Left to the
    /// compiler, it went out of line once `observe` grew, and cost the getppid loop 26
    /// instructions a call more (BENCHMARKS.md).
    #[inline]
    pub(crate) fn of(call: &'a Call) -> Option<Self> {
        let e = &call.event;
        let Some(sysno) = Sysno::new(e.nr as usize) else {
            return ia32_name_gone(call);
        };
        let ret = e.ret;
        let ok = names::errno_of(ret).is_none();
        let a = &e.args;
        // Read only by the calls that name one: most calls have no effect, and for them
        // reading these first was most of what this function cost.
        let path = || match call.extra() {
            Some(Extra::Path {
                path,
                truncated: false,
                ..
            }) => Some(path),
            _ => None,
        };
        let gone = || match call.extra() {
            Some(Extra::Path {
                path,
                truncated: false,
                ..
            }) => Gone::Whole(path),
            Some(Extra::Path { path, .. }) => Gone::Cut(path),
            _ => Gone::Unknown,
        };
        let target = || match call.extra() {
            Some(Extra::Path {
                target: Some(Target::Whole(path)),
                ..
            }) => Gone::Whole(path),
            Some(Extra::Path {
                target: Some(Target::Cut(path)),
                ..
            }) => Gone::Cut(path),
            _ => Gone::Unknown,
        };
        // Not UTF-8 (a unix socket's path): the lossy text can be another socket's name.
        let addr = || match call.extra() {
            Some(Extra::Addr(addr)) if !addr.contains(char::REPLACEMENT_CHARACTER) => {
                Some(addr.as_str())
            }
            _ => None,
        };
        let fd = ret as i32;
        let arg_fd = a[0] as i32;
        use Sysno::*;
        Some(match sysno {
            open | openat | openat2 | creat if ok => {
                let (dirfd, flags) = match sysno {
                    open => (AT_FDCWD, Some(a[1])),
                    // O_CREAT | O_WRONLY | O_TRUNC, of which only the mode matters here.
                    creat => (AT_FDCWD, Some(1)),
                    openat => (arg_fd, Some(a[2])),
                    // openat2's flags sit in a struct the kernel side does not read.
                    _ => (arg_fd, None),
                };
                // An O_TMPFILE file has no name; `path` is its directory's.
                if flags.is_some_and(|f| f & O_TMPFILE_BIT != 0) {
                    return Some(FdEffect::New {
                        fd,
                        name: None,
                        cloexec: flags.map(|f| f & O_CLOEXEC != 0),
                    });
                }
                FdEffect::Open {
                    fd,
                    dirfd,
                    path: path(),
                    cloexec: flags.map(|f| f & O_CLOEXEC != 0),
                    access: flags.map_or(Access::Unknown, Access::of_flags),
                    nofollow: flags.is_some_and(|f| f & O_NOFOLLOW != 0),
                    resolve_unknown: sysno == openat2,
                    fifo: call.event.flags & FLAG_OPENED_FIFO != 0,
                }
            }
            socket if ok => {
                let family = match a[0] {
                    1 => "unix".to_string(),
                    2 => "inet".to_string(),
                    10 => "inet6".to_string(),
                    16 => "netlink".to_string(),
                    other => other.to_string(),
                };
                FdEffect::New {
                    fd,
                    name: Some(format!("socket:{family}").into()),
                    cloexec: Some(a[1] & SOCK_CLOEXEC != 0),
                }
            }
            connect if ok || ret == EINPROGRESS => FdEffect::Rename {
                fd: arg_fd,
                addr: addr().map(peer_name),
            },
            bind if ok => FdEffect::Rename {
                fd: arg_fd,
                addr: addr().map(peer_name),
            },
            // Given no buffer for the peer's address (`accept(fd, NULL, NULL)`), or one it
            // could not be read from, the new fd is still surely a socket: unnamed, a long
            // read from it was counted as work, not as waiting for the peer (helper-87).
            accept | accept4 if ok => FdEffect::New {
                fd,
                name: Some(addr().map_or_else(|| ACCEPTED.into(), peer_name)),
                cloexec: Some(sysno == accept4 && a[3] & SOCK_CLOEXEC != 0),
            },
            pipe | pipe2 | socketpair if ok => {
                let (name, cloexec, ends) = match sysno {
                    pipe => ("pipe", false, (Access::Read, Access::Write)),
                    pipe2 => ("pipe", a[1] & O_CLOEXEC != 0, (Access::Read, Access::Write)),
                    _ => (
                        "socket:unix-pair",
                        a[1] & SOCK_CLOEXEC != 0,
                        (Access::ReadWrite, Access::ReadWrite),
                    ),
                };
                let fds = match call.extra() {
                    Some(Extra::FdPair(r, w)) => Some((*r, *w)),
                    _ => None,
                };
                FdEffect::Pair {
                    fds,
                    name,
                    cloexec,
                    access: ends,
                }
            }
            dup | dup2 if ok => FdEffect::Copy {
                from: arg_fd,
                to: fd,
                cloexec: false,
            },
            dup3 if ok => FdEffect::Copy {
                from: arg_fd,
                to: fd,
                cloexec: a[2] & O_CLOEXEC != 0,
            },
            fcntl if ok => match a[1] {
                F_DUPFD | F_DUPFD_CLOEXEC => FdEffect::Copy {
                    from: arg_fd,
                    to: fd,
                    cloexec: a[1] == F_DUPFD_CLOEXEC,
                },
                F_SETFD => FdEffect::SetCloexec {
                    fd: arg_fd,
                    cloexec: a[2] & FD_CLOEXEC != 0,
                },
                _ => return None,
            },
            // The kernel sends these two even where ioctl is not recorded: an fd believed
            // kept across an exec was named after a file the kernel had closed.
            ioctl if ok && matches!(a[1] as u32, FIOCLEX | FIONCLEX) => FdEffect::SetCloexec {
                fd: arg_fd,
                cloexec: a[1] as u32 == FIOCLEX,
            },
            // close releases the fd even when it reports an error, except for a bad fd.
            close if ret != EBADF => FdEffect::Close { fd: arg_fd },
            close_range if ok => FdEffect::CloseRange {
                first: a[0] as u32,
                last: a[1] as u32,
                unshare: a[2] & CLOSE_RANGE_UNSHARE != 0,
                cloexec_only: a[2] & CLOSE_RANGE_CLOEXEC != 0,
            },
            execve | execveat if ok => FdEffect::Exec,
            unshare if ok && a[0] & (CLONE_FILES | CLONE_FS | CLONE_NEWNS) != 0 => {
                FdEffect::Unshare {
                    files: a[0] & CLONE_FILES != 0,
                    fs: a[0] & (CLONE_FS | CLONE_NEWNS) != 0,
                }
            }
            chdir if ok => FdEffect::Chdir { path: path() },
            chroot if ok => FdEffect::Chroot { path: path() },
            // The flags of a pidfd, or the kind of a namespace fd; 0 takes the fd's kind.
            setns if ok && (a[1] & CLONE_NEWNS != 0 || a[1] == 0) => FdEffect::EnterMounts {
                fd: arg_fd,
                surely: a[1] != 0,
            },
            // An fd open on a removed file reads `(deleted)` in /proc, and a new file may
            // take the name: the old name is no longer the fd's.
            unlink | rmdir if ok => FdEffect::NameGone {
                dirfd: AT_FDCWD,
                name: gone(),
                target: None,
            },
            unlinkat if ok => FdEffect::NameGone {
                dirfd: arg_fd,
                name: gone(),
                target: None,
            },
            rename if ok => FdEffect::NameGone {
                dirfd: AT_FDCWD,
                name: gone(),
                target: Some((AT_FDCWD, target())),
            },
            renameat | renameat2 if ok => FdEffect::NameGone {
                dirfd: arg_fd,
                name: gone(),
                target: Some((a[2] as i32, target())),
            },
            fchdir if ok => FdEffect::Fchdir { fd: arg_fd },
            io_uring_setup if ok => FdEffect::Ring { fd },
            pidfd_getfd if ok => FdEffect::Taken { fd },
            _ if ok && creates_anonymous_fd(sysno) => FdEffect::New {
                fd,
                name: anon_name(sysno).map(Into::into),
                cloexec: None,
            },
            _ => return None,
        })
    }
}

/// A 32-bit (ia32) call that takes a name away. Its own fds and cwd are not followed,
/// but names are the host's: a 32-bit `mv new app.conf` takes the name from a 64-bit
/// process's open app.conf. Its directories are not known, so a relative name forgets
/// every name ending like it, and a `/proc` or `/dev` name every name. Out of line: only
/// 32-bit calls come here.
#[cold]
fn ia32_name_gone(call: &Call) -> Option<FdEffect<'_>> {
    let e = &call.event;
    let i386 = syscalls::x86::Sysno::new(e.nr.checked_sub(COMPAT_BASE)? as usize)?;
    // The x86_64 call of its name: the kernel's table sends the same ones as context.
    let twin: Sysno = i386.name().parse().ok()?;
    if !takes_names(twin) || names::errno_of(e.ret).is_some() {
        return None;
    }
    fn own(gone: Gone<'_>) -> Gone<'_> {
        match gone {
            Gone::Whole(p) | Gone::Cut(p) if p.starts_with("/proc") || p.starts_with("/dev") => {
                Gone::Unknown
            }
            other => other,
        }
    }
    let (name, target) = match call.extra() {
        Some(Extra::Path {
            path,
            truncated,
            target,
        }) => (
            own(if *truncated {
                Gone::Cut(path)
            } else {
                Gone::Whole(path)
            }),
            match target {
                Some(Target::Whole(p)) => own(Gone::Whole(p)),
                Some(Target::Cut(p)) => own(Gone::Cut(p)),
                _ => Gone::Unknown,
            },
        ),
        _ => (Gone::Unknown, Gone::Unknown),
    };
    let renames = matches!(twin, Sysno::rename | Sysno::renameat | Sysno::renameat2);
    Some(FdEffect::NameGone {
        dirfd: UNKNOWN_DIR,
        name,
        target: renames.then_some((UNKNOWN_DIR, target)),
    })
}

/// A directory fd no table holds: a relative name below it is placed nowhere.
const UNKNOWN_DIR: i32 = i32::MIN;

/// The fd a call found not open for its use: it failed with EBADF, and it names no other
/// fd that the error could be about. Whether that proves the fd closed depends on what it
/// was opened for ([`Used::proves_closed`]): a `pread` on a write-only fd dropped a
/// correct name. Where it does, whatever the table thought the number meant, it did not.
pub(crate) fn proven_closed(call: &Call) -> Option<(i32, Used)> {
    if call.event.ret != EBADF {
        return None;
    }
    use Sysno::*;
    let used = match Sysno::new(call.event.nr as usize)? {
        read | pread64 | readv | preadv | preadv2 => Used::Read,
        write | pwrite64 | writev | pwritev | pwritev2 | ftruncate => Used::Write,
        lseek | fsync | fdatasync | getdents64 | recvfrom | sendto | recvmsg | sendmsg | flock
        | fchmod | fchown => Used::Open,
        fstat => Used::Any,
        _ => return None,
    };
    Some((call.event.args[0] as i32, used))
}

/// Syscalls that return a new fd this module does not otherwise model.
fn creates_anonymous_fd(s: Sysno) -> bool {
    use Sysno::*;
    matches!(
        s,
        epoll_create
            | epoll_create1
            | eventfd
            | eventfd2
            | timerfd_create
            | signalfd
            | signalfd4
            | inotify_init
            | inotify_init1
            | fanotify_init
            | memfd_create
            | memfd_secret
            | pidfd_open
            | pidfd_getfd
            | userfaultfd
            | perf_event_open
            | io_uring_setup
            | open_by_handle_at
            | open_tree
            | fsopen
            | fsmount
            | fspick
            | bpf
            | landlock_create_ruleset
            | mq_open
    )
}

/// How /proc names the fds those calls create, where that name is certain.
fn anon_name(s: Sysno) -> Option<&'static str> {
    use Sysno::*;
    Some(match s {
        epoll_create | epoll_create1 => "anon_inode:[eventpoll]",
        eventfd | eventfd2 => "anon_inode:[eventfd]",
        timerfd_create => "anon_inode:[timerfd]",
        inotify_init | inotify_init1 => "anon_inode:inotify",
        pidfd_open => "anon_inode:[pidfd]",
        io_uring_setup => "anon_inode:[io_uring]",
        perf_event_open => "anon_inode:[perf_event]",
        _ => return None,
    })
}

/// An accepted socket whose peer's address the call did not return.
pub const ACCEPTED: &str = "socket:accepted";

/// What a socket's fd is called once it has a peer or a name: the address, with a unix
/// socket's path (or `@abstract` name) as `unix:/run/app.sock`. Bare, a socket's path read
/// as a file's: a client idling on `/run/postgresql/.s.PGSQL.5432` topped the hottest
/// files and counted its waits as work (a red-team pass). A path relative to the cwd
/// (`app.sock`) is the kernel's name too (`/proc/net/unix`, `ss -x`); it was left bare, a
/// file's name to every query (helper-96). The decoder writes an IP address and port in a
/// form that parses back as one, and a unix socket's every other address: so whatever does
/// not parse is a unix socket's.
fn peer_name(addr: &str) -> Arc<str> {
    if addr.starts_with("unix:") || addr.parse::<std::net::SocketAddr>().is_ok() {
        addr.into()
    } else {
        format!("unix:{addr}").into()
    }
}
