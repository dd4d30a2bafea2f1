//! What each syscall's arguments mean, as far as the recorder needs it: which argument is a
//! path, a socket address or an fd, which calls move bytes, and strace's classes for `-e`.
//!
//! Numbers come from the `syscalls` crate; the meanings are the kernel's ABI, which no crate
//! tabulates.
use std::collections::BTreeSet;

use syscalls::Sysno;
use tracepost_common::{
    COMPAT_BASE, CONTEXT_CLOEXEC_IOCTL, EXTRA_FD_PAIR, EXTRA_NONE, EXTRA_PATH, EXTRA_PATH_PAIR,
    EXTRA_SOCKADDR_IN, EXTRA_SOCKADDR_OUT, MAX_SYSCALL_NR, SyscallInfo,
};

use crate::kernel::{call::Call, decode::Extra, names::ia32_twins};

use Sysno::*;

/// Syscalls whose argument N is a pathname, read at entry. For rename and link the source;
/// for symlink the link being created.
const PATH_ARGS: &[(Sysno, u8)] = &[
    (open, 0),
    (openat, 1),
    (openat2, 1),
    (creat, 0),
    (stat, 0),
    (lstat, 0),
    (newfstatat, 1),
    (statx, 1),
    (statfs, 0),
    (access, 0),
    (faccessat, 1),
    (faccessat2, 1),
    (mkdir, 0),
    (mkdirat, 1),
    (mknod, 0),
    (mknodat, 1),
    (rmdir, 0),
    (unlink, 0),
    (unlinkat, 1),
    (rename, 0),
    (renameat, 1),
    (renameat2, 1),
    (link, 0),
    (linkat, 1),
    (symlink, 1),
    (symlinkat, 2),
    (readlink, 0),
    (readlinkat, 1),
    (chdir, 0),
    (chroot, 0),
    (chmod, 0),
    (fchmodat, 1),
    (chown, 0),
    (lchown, 0),
    (fchownat, 1),
    (truncate, 0),
    (utime, 0),
    (utimes, 0),
    (utimensat, 1),
    (futimesat, 1),
    (execve, 0),
    (execveat, 1),
    (getxattr, 0),
    (lgetxattr, 0),
    (setxattr, 0),
    (lsetxattr, 0),
    (listxattr, 0),
    (llistxattr, 0),
    (removexattr, 0),
    (lremovexattr, 0),
    (inotify_add_watch, 1),
    (fanotify_mark, 4),
    (name_to_handle_at, 1),
    (mount, 1),
    (umount2, 0),
    (swapon, 0),
    (swapoff, 0),
    (acct, 0),
    (uselib, 0),
    (pivot_root, 0),
    (quotactl, 1),
    (open_tree, 1),
    (move_mount, 1),
    (fspick, 1),
    (mount_setattr, 1),
    // Linux 6.6 and later; strace 6.1 does not know them, later ones put them in `%file`.
    (fchmodat2, 1),
    (setxattrat, 1),
    (getxattrat, 1),
    (listxattrat, 1),
    (removexattrat, 1),
    (open_tree_attr, 1),
    (file_getattr, 1),
    (file_setattr, 1),
];

/// The renames' targets (argument N), read at exit into the second half of the context
/// buffer: a file open under that name loses it, and the fd table must know which name
/// that was. Their sources are in [`PATH_ARGS`], and have half the buffer.
const PATH_PAIR_TARGETS: &[(Sysno, u8)] = &[(rename, 1), (renameat, 3), (renameat2, 3)];

/// strace's `%file` is the calls that take a file name, `getcwd`, which gives one, and
/// `fsconfig`, whose value may be one (its path is not read: its arguments say whether).
const FILE_CLASS_EXTRA: &[Sysno] = &[getcwd, fsconfig];

/// Socket addresses passed in (argument N, length in N + 1), read at entry.
const SOCKADDR_IN_ARGS: &[(Sysno, u8)] = &[(connect, 1), (bind, 1), (sendto, 4)];
/// Socket addresses returned (argument N, pointer to the length in N + 1), read at exit.
const SOCKADDR_OUT_ARGS: &[(Sysno, u8)] = &[(accept, 1), (accept4, 1)];
/// Two fds returned through argument N.
const FD_PAIR_ARGS: &[(Sysno, u8)] = &[(pipe, 0), (pipe2, 0), (socketpair, 3)];

/// Syscalls whose first argument is an open file descriptor.
const FD_ARG0: &[Sysno] = &[
    read,
    write,
    pread64,
    pwrite64,
    readv,
    writev,
    preadv,
    pwritev,
    preadv2,
    pwritev2,
    close,
    fstat,
    fstatfs,
    lseek,
    ioctl,
    fcntl,
    flock,
    fsync,
    fdatasync,
    sync_file_range,
    ftruncate,
    fallocate,
    fadvise64,
    fchmod,
    fchown,
    fchdir,
    getdents,
    getdents64,
    fgetxattr,
    fsetxattr,
    flistxattr,
    fremovexattr,
    dup,
    dup2,
    dup3,
    connect,
    accept,
    accept4,
    bind,
    listen,
    shutdown,
    getsockname,
    getpeername,
    getsockopt,
    setsockopt,
    sendto,
    recvfrom,
    sendmsg,
    recvmsg,
    sendmmsg,
    recvmmsg,
    readahead,
    syncfs,
    inotify_rm_watch,
    epoll_wait,
    epoll_pwait,
    epoll_pwait2,
    epoll_ctl,
    splice,
    tee,
    vmsplice,
    copy_file_range,
    timerfd_settime,
    timerfd_gettime,
    signalfd4,
];

/// Syscalls whose return value, when not an error, is a count of bytes moved.
const BYTES_RETURNED: &[Sysno] = &[
    read,
    write,
    pread64,
    pwrite64,
    readv,
    writev,
    preadv,
    pwritev,
    preadv2,
    pwritev2,
    sendto,
    recvfrom,
    sendmsg,
    recvmsg,
    sendfile,
    copy_file_range,
    splice,
    tee,
    vmsplice,
];

/// The calls that take a name away from whatever was opened by it.
const NAME_TAKERS: &[Sysno] = &[rename, renameat, renameat2, unlink, unlinkat, rmdir];

/// Calls user space needs whatever the filters: those that create, copy or close fds,
/// change the working directory or root, or rename or remove a name an fd may have been
/// opened by (to say what an fd refers to), and exits (exit codes).
const CONTEXT_CALLS: &[Sysno] = &[
    exit,
    exit_group,
    open,
    openat,
    openat2,
    creat,
    socket,
    connect,
    bind,
    accept,
    accept4,
    pipe,
    pipe2,
    socketpair,
    dup,
    dup2,
    dup3,
    fcntl,
    close,
    close_range,
    execve,
    execveat,
    chdir,
    fchdir,
    chroot,
    // A thread that takes its own fds or cwd.
    unshare,
    // Another mount namespace: its root becomes the cwd and root.
    setns,
    // A ring whose operations open and close fds without syscalls.
    io_uring_setup,
    // A name renamed or removed no longer names the fds opened by it.
    rename,
    renameat,
    renameat2,
    unlink,
    unlinkat,
    rmdir,
    epoll_create,
    epoll_create1,
    eventfd,
    eventfd2,
    timerfd_create,
    signalfd,
    signalfd4,
    inotify_init,
    inotify_init1,
    fanotify_init,
    memfd_create,
    memfd_secret,
    pidfd_open,
    pidfd_getfd,
    userfaultfd,
    perf_event_open,
    io_uring_setup,
    open_by_handle_at,
    open_tree,
    fsopen,
    fsmount,
    fspick,
    bpf,
    landlock_create_ruleset,
    mq_open,
];

/// strace's `%network`.
const NETWORK: &[Sysno] = &[
    socket,
    socketpair,
    bind,
    listen,
    connect,
    accept,
    accept4,
    getsockname,
    getpeername,
    getsockopt,
    setsockopt,
    sendto,
    recvfrom,
    sendmsg,
    recvmsg,
    sendmmsg,
    recvmmsg,
    shutdown,
];
/// strace's `%process`.
const PROCESS: &[Sysno] = &[
    fork,
    vfork,
    clone,
    clone3,
    execve,
    execveat,
    exit,
    exit_group,
    wait4,
    waitid,
    kill,
    tkill,
    tgkill,
    rt_sigqueueinfo,
    rt_tgsigqueueinfo,
    pidfd_open,
    pidfd_send_signal,
    unshare,
    setns,
];
/// strace's `%memory`.
const MEMORY: &[Sysno] = &[
    brk,
    mmap,
    munmap,
    mremap,
    mprotect,
    madvise,
    mlock,
    mlock2,
    munlock,
    mlockall,
    munlockall,
    msync,
    mincore,
    remap_file_pages,
    mbind,
    set_mempolicy,
    get_mempolicy,
    migrate_pages,
    move_pages,
    pkey_mprotect,
    process_madvise,
    memfd_create,
];
/// strace's `%signal`.
const SIGNAL: &[Sysno] = &[
    kill,
    tkill,
    tgkill,
    pause,
    rt_sigaction,
    rt_sigprocmask,
    rt_sigpending,
    rt_sigsuspend,
    rt_sigtimedwait,
    rt_sigqueueinfo,
    rt_tgsigqueueinfo,
    rt_sigreturn,
    sigaltstack,
    signalfd,
    signalfd4,
    pidfd_send_signal,
];
/// strace's `%ipc`.
const IPC: &[Sysno] = &[
    shmget, shmat, shmdt, shmctl, semget, semop, semtimedop, semctl, msgget, msgsnd, msgrcv, msgctl,
];

#[derive(Debug, thiserror::Error)]
pub enum SyscallListError {
    #[error(
        "-e: unknown syscall or class `{0}` (classes: %file %network %process %memory %signal %ipc)"
    )]
    Unknown(String),
    #[error("-e: the list is empty")]
    Empty,
    /// `read,,write`: a name lost in editing, most likely, rather than nothing meant.
    #[error("-e {0}: an empty item between commas")]
    EmptyItem(String),
}

/// The syscalls a `-e` list names: `openat,read,%network`.
pub fn parse_list(list: &str) -> Result<BTreeSet<u32>, SyscallListError> {
    let mut out = BTreeSet::new();
    let items: Vec<&str> = list.split(',').map(str::trim).collect();
    if items.len() > 1 && items.iter().any(|s| s.is_empty()) {
        return Err(SyscallListError::EmptyItem(list.to_string()));
    }
    for item in items.into_iter().filter(|s| !s.is_empty()) {
        let class: Option<Vec<Sysno>> = match item {
            "%file" => Some(
                PATH_ARGS
                    .iter()
                    .map(|(s, _)| *s)
                    .chain(FILE_CLASS_EXTRA.iter().copied())
                    .collect(),
            ),
            "%network" | "%net" => Some(NETWORK.to_vec()),
            "%process" => Some(PROCESS.to_vec()),
            "%memory" => Some(MEMORY.to_vec()),
            "%signal" => Some(SIGNAL.to_vec()),
            "%ipc" => Some(IPC.to_vec()),
            _ => None,
        };
        match class {
            Some(members) => out.extend(members.iter().map(|s| s.id() as u32)),
            None => {
                let sysno: Sysno = item
                    .parse()
                    .map_err(|_| SyscallListError::Unknown(item.to_string()))?;
                out.insert(sysno.id() as u32);
            }
        }
    }
    if out.is_empty() {
        return Err(SyscallListError::Empty);
    }
    Ok(out)
}

/// Whether `sysno` takes a name away from whatever was opened by it.
pub fn takes_names(sysno: Sysno) -> bool {
    NAME_TAKERS.contains(&sysno)
}

/// Whether the kernel sends `sysno` whatever the filters, for the fd table's sake. Not
/// ioctl, of which the kernel sends only `FIOCLEX` and `FIONCLEX` so
/// ([`CONTEXT_CLOEXEC_IOCTL`]).
pub fn is_context_call(sysno: Sysno) -> bool {
    CONTEXT_CALLS.contains(&sysno)
}

/// The kernel's per-number table: `traced` from the `-e` list (all when `None`), and the
/// context each syscall carries.
pub fn kernel_table(only: Option<&BTreeSet<u32>>) -> Vec<SyscallInfo> {
    let mut table = vec![
        SyscallInfo {
            traced: 1,
            extra: EXTRA_NONE,
            arg: 0,
            context: 0,
        };
        MAX_SYSCALL_NR as usize
    ];
    if let Some(only) = only {
        for (nr, info) in table.iter_mut().enumerate() {
            info.traced = u8::from(only.contains(&(nr as u32)));
        }
    }
    for s in CONTEXT_CALLS {
        table[s.id() as usize].context = 1;
    }
    table[ioctl.id() as usize].context = CONTEXT_CLOEXEC_IOCTL;
    let kinds = [
        (PATH_ARGS, EXTRA_PATH),
        (SOCKADDR_IN_ARGS, EXTRA_SOCKADDR_IN),
        (SOCKADDR_OUT_ARGS, EXTRA_SOCKADDR_OUT),
        (FD_PAIR_ARGS, EXTRA_FD_PAIR),
    ];
    for (list, kind) in kinds {
        for &(sysno, arg) in list {
            let info = &mut table[sysno.id() as usize];
            info.extra = kind;
            info.arg = arg;
        }
    }
    for &(sysno, target) in PATH_PAIR_TARGETS {
        let info = &mut table[sysno.id() as usize];
        info.extra = EXTRA_PATH_PAIR;
        info.arg |= target << 4;
    }
    // A 32-bit task's call is what the x86_64 call of its name is: kept by `-e`, and
    // carrying a path, an address or a pair of fds at the same argument. The fd table
    // follows x86_64's calls only, but a name a 32-bit call takes away is taken from
    // every process: those calls are its context too.
    for (nr, twin) in ia32_twins() {
        let x86_64 = table[twin.id() as usize];
        let info = &mut table[nr as usize];
        info.traced = x86_64.traced;
        info.extra = x86_64.extra;
        info.arg = x86_64.arg;
        info.context = u8::from(takes_names(twin));
    }
    table
}

/// Per-number facts user space needs for every row, looked up by index.
pub struct ArgTable {
    fd_arg0: Vec<bool>,
    bytes: Vec<bool>,
    /// For calls that act on their directory fd (argument 0) when given `AT_EMPTY_PATH`:
    /// the argument that holds their flags.
    empty_path_flags: Vec<Option<u8>>,
}

/// Calls that take `AT_EMPTY_PATH`, with the argument holding their flags: given it and an
/// empty (or, since Linux 6.11, NULL) path, they act on the fd in argument 0.
const EMPTY_PATH_FLAGS: &[(Sysno, u8)] = &[
    (newfstatat, 3),
    (statx, 2),
    (fchownat, 4),
    (linkat, 4),
    (execveat, 4),
    (name_to_handle_at, 4),
    (open_tree, 2),
];

/// `AT_EMPTY_PATH` from `<fcntl.h>`.
const AT_EMPTY_PATH: u64 = 0x1000;

impl ArgTable {
    pub fn new() -> Self {
        let mut fd_arg0 = vec![false; MAX_SYSCALL_NR as usize];
        let mut bytes = vec![false; MAX_SYSCALL_NR as usize];
        for s in FD_ARG0 {
            fd_arg0[s.id() as usize] = true;
        }
        for s in BYTES_RETURNED {
            bytes[s.id() as usize] = true;
        }
        let mut empty_path_flags = vec![None; MAX_SYSCALL_NR as usize];
        for &(s, arg) in EMPTY_PATH_FLAGS {
            empty_path_flags[s.id() as usize] = Some(arg);
        }
        // A 32-bit task's read or write returns the bytes moved too, and takes its fd
        // where x86_64's does; its execveat takes AT_EMPTY_PATH where x86_64's does. Its
        // fds are not followed (`followed_fd`).
        for (nr, twin) in ia32_twins() {
            bytes[nr as usize] = bytes[twin.id() as usize];
            fd_arg0[nr as usize] = fd_arg0[twin.id() as usize];
            empty_path_flags[nr as usize] = empty_path_flags[twin.id() as usize];
        }
        Self {
            fd_arg0,
            bytes,
            empty_path_flags,
        }
    }

    /// The fd a call operates on, if it takes one. mmap's fd is -1 for anonymous memory.
    pub fn fd(&self, nr: u32, args: &[u64; 6]) -> Option<i32> {
        // sendfile(out_fd, in_fd, ...): the file read from is the interesting one.
        if nr == sendfile.id() as u32 {
            return Some(args[1] as i32);
        }
        if nr == mmap.id() as u32 {
            let fd = args[4] as i32;
            return (fd >= 0).then_some(fd);
        }
        let fd = args[0] as i32;
        (self.fd_arg0.get(nr as usize).copied().unwrap_or(false) && fd >= 0).then_some(fd)
    }

    /// The fd a call operates on, its path considered: an `*at` call given `AT_EMPTY_PATH`
    /// and an empty or NULL path operates on its directory fd, and so does `utimensat`
    /// given a NULL path (`futimens`). glibc's `fstat(fd)` is `newfstatat(fd, "",
    /// AT_EMPTY_PATH)`, and such calls had neither `fd` nor `fd_path`, and an empty `path`
    /// that `summary --by file` took for a file named ''. Without the flag an empty path
    /// fails (ENOENT) without touching the fd, and names none. Run twice a call (the fd
    /// table, the `fd` column): the number decides first, and only those few calls have
    /// their path looked at.
    pub fn fd_of(&self, call: &Call) -> Option<i32> {
        let (nr, args) = (call.event.nr, &call.event.args);
        self.fd(nr, args).or_else(|| {
            let acts_on_fd = match self.empty_path_flags.get(nr as usize).copied().flatten() {
                Some(flags) => args[flags as usize] & AT_EMPTY_PATH != 0,
                None => nr == utimensat.id() as u32 && args[1] == 0,
            };
            let no_path = || {
                args[1] == 0
                    || matches!(call.extra(), Some(Extra::Path { path, .. }) if path.is_empty())
            };
            let dirfd = args[0] as i32;
            (acts_on_fd && dirfd >= 0 && no_path()).then_some(dirfd)
        })
    }

    /// The fd whose name the fd table gives the call: `fd_of`, for x86_64's calls only. The
    /// table follows only their opens, dups and closes, so a name it held for a 32-bit
    /// task's fd could be one that task has since closed and reused.
    pub fn followed_fd(&self, call: &Call) -> Option<i32> {
        match call.event.nr >= COMPAT_BASE {
            true => None,
            false => self.fd_of(call),
        }
    }

    /// Bytes moved by a successful call that moves bytes.
    pub fn bytes(&self, nr: u32, ret: i64) -> Option<i64> {
        (self.bytes.get(nr as usize).copied().unwrap_or(false) && ret >= 0).then_some(ret)
    }
}

impl Default for ArgTable {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_at_call_with_an_empty_path_operates_on_its_dirfd() {
        let t = ArgTable::new();
        let path = |p: &str| Extra::Path {
            path: p.into(),
            truncated: false,
            target: None,
        };
        let fd_of = |nr: u32, args: &[u64; 6], extra: Option<&Extra>| {
            let mut event = crate::files::reorder::event(1, 1);
            event.nr = nr;
            event.args = *args;
            t.fd_of(&Call::new(event, extra.cloned(), None))
        };
        let nr = newfstatat.id() as u32;
        let args = [3, 0x7ff0, 0, 0x1000, 0, 0];
        assert_eq!(fd_of(nr, &args, Some(&path(""))), Some(3));
        assert_eq!(fd_of(nr, &args, Some(&path("x"))), None);
        // Without AT_EMPTY_PATH an empty path fails, and touches no fd.
        let no_flag = [3, 0x7ff0, 0, 0, 0, 0];
        assert_eq!(fd_of(nr, &no_flag, Some(&path(""))), None);
        // A NULL path with the flag (Linux 6.11): the fd.
        let null = [3, 0, 0, 0x1000, 0, 0];
        assert_eq!(fd_of(nr, &null, None), Some(3));
        // AT_FDCWD is no fd.
        let cwd = [(-100i64) as u64, 0x7ff0, 0, 0x1000, 0, 0];
        assert_eq!(fd_of(nr, &cwd, Some(&path(""))), None);
        assert_eq!(
            fd_of(
                statx.id() as u32,
                &[3, 0x7ff0, 0x1000, 0, 0, 0],
                Some(&path(""))
            ),
            Some(3)
        );
        // openat has no AT_EMPTY_PATH; symlink's first argument is a string, not a dirfd.
        assert_eq!(fd_of(openat.id() as u32, &args, Some(&path(""))), None);
        assert_eq!(fd_of(symlink.id() as u32, &args, Some(&path(""))), None);
        // futimens is utimensat(fd, NULL, ...).
        assert_eq!(
            fd_of(utimensat.id() as u32, &[3, 0, 0, 0, 0, 0], None),
            Some(3)
        );
        assert_eq!(fd_of(read.id() as u32, &args, None), Some(3));
    }

    #[test]
    fn lists_take_names_and_classes_and_name_the_unknown() {
        let set = parse_list("openat,%network").unwrap();
        assert!(set.contains(&(openat.id() as u32)));
        assert!(set.contains(&(connect.id() as u32)));
        assert!(!set.contains(&(read.id() as u32)));
        let err = parse_list("openat,opne").unwrap_err();
        assert!(err.to_string().contains("`opne`"), "{err}");
        assert!(parse_list(" , ").is_err());
        assert_eq!(
            parse_list("read,,write").unwrap_err().to_string(),
            "-e read,,write: an empty item between commas"
        );
    }

    #[test]
    fn the_kernel_table_marks_context_and_scope() {
        let only = parse_list("%file").unwrap();
        let table = kernel_table(Some(&only));
        assert_eq!(table[openat.id() as usize].extra, EXTRA_PATH);
        assert_eq!(table[openat.id() as usize].arg, 1);
        assert_eq!(table[openat.id() as usize].traced, 1);
        assert_eq!(table[read.id() as usize].traced, 0);
        // As strace 6.1's %file: getcwd gives a name, and its buffer is not read as a path.
        assert_eq!(table[getcwd.id() as usize].traced, 1);
        assert_eq!(table[getcwd.id() as usize].extra, EXTRA_NONE);
        assert_eq!(table[accept4.id() as usize].extra, EXTRA_SOCKADDR_OUT);
        // renameat(olddirfd, old, newdirfd, new): the source in argument 1, the target in 3.
        assert_eq!(table[renameat.id() as usize].extra, EXTRA_PATH_PAIR);
        assert_eq!(table[renameat.id() as usize].arg, 1 | 3 << 4);
        assert_eq!(table[rename.id() as usize].arg, 1 << 4);
        assert!(kernel_table(None).iter().all(|i| i.traced == 1));
        assert_eq!(table[close.id() as usize].context, 1);
        assert_eq!(table[read.id() as usize].context, 0);
        assert_eq!(table[ioctl.id() as usize].context, CONTEXT_CLOEXEC_IOCTL);
        let ia32_ioctl = COMPAT_BASE as usize + 54;
        assert_eq!(
            table[ia32_ioctl].context, 0,
            "a 32-bit task's fds are not followed"
        );
    }

    #[test]
    fn fds_and_bytes() {
        let t = ArgTable::new();
        let args = [3, 0, 0, 0, 0, 0];
        assert_eq!(t.fd(read.id() as u32, &args), Some(3));
        assert_eq!(t.fd(openat.id() as u32, &args), None);
        assert_eq!(t.fd(mmap.id() as u32, &[0, 0, 0, 0, u64::MAX, 0]), None);
        assert_eq!(t.fd(mmap.id() as u32, &[0, 0, 0, 0, 7, 0]), Some(7));
        assert_eq!(t.bytes(write.id() as u32, 12), Some(12));
        assert_eq!(t.bytes(write.id() as u32, -9), None);
        assert_eq!(t.bytes(close.id() as u32, 0), None);
    }
}
