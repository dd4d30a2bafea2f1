//! What is traced: a command, running processes, or the whole host.
use std::{collections::BTreeSet, fs, io, os::fd::OwnedFd};

use crate::{
    follow::scope::Scope,
    kernel::bpf::{BpfError, Probes},
};

#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("no such process: {0}")]
    NoSuchProcess(i32),
    /// Found at the start, gone by the time its threads were listed: the run is taken
    /// back, and the message says why a pid that existed was refused.
    #[error("process {0} exited while record was attaching to it: nothing was recorded")]
    ExitedWhileAttaching(i32),
    #[error("cannot list the threads of process {pid}")]
    Threads {
        pid: i32,
        #[source]
        source: io::Error,
    },
    #[error("{tid} is a thread of process {pid}, not a process; give -p {pid}")]
    Thread { tid: i32, pid: i32 },
    #[error("{0} is this record itself: it cannot record its own calls")]
    Itself(i32),
    /// `-p 2` was taken, and recorded nothing, which read as an idle process.
    #[error("{pid} is a kernel thread ({name}): it makes no system calls to record")]
    KernelThread { pid: i32, name: String },
    /// `-p` of a process that had exited, its parent not yet waiting for it, ended at once
    /// with an empty capture and exit 0.
    #[error(
        "process {0} has exited (a zombie that its parent has not reaped): it makes no more \
         calls to record"
    )]
    Zombie(i32),
    #[error(transparent)]
    Bpf(#[from] BpfError),
}

/// Refuses a thread id given as a process: its /proc entry exists, but it has no thread
/// list and no pidfd of its own, and both failed with a message that named neither.
fn a_process(pid: i32) -> Result<(), TargetError> {
    // Its own calls would each make more of them: the writer's writes, recorded and written.
    if u32::try_from(pid) == Ok(std::process::id()) {
        return Err(TargetError::Itself(pid));
    }
    let status = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(str::trim)
    };
    let group = field("Tgid:").and_then(|v| v.parse::<i32>().ok());
    // A leader that exited while its other threads run is a zombie too, and traced.
    let zombie =
        field("State:").is_some_and(|s| s.starts_with('Z')) && field("Threads:") == Some("1");
    match group {
        Some(group) if group != pid => Err(TargetError::Thread {
            tid: pid,
            pid: group,
        }),
        _ if zombie => Err(TargetError::Zombie(pid)),
        _ => match kernel_thread(pid) {
            Some(name) => Err(TargetError::KernelThread { pid, name }),
            None => Ok(()),
        },
    }
}

/// The name of a kernel thread (`PF_KTHREAD` in /proc/PID/stat's flags), or None.
fn kernel_thread(pid: i32) -> Option<String> {
    const PF_KTHREAD: u64 = 0x0020_0000;
    crate::follow::process_event::stat(u32::try_from(pid).ok()?)
        .filter(|s| s.flags & PF_KTHREAD != 0)
        .map(|s| s.comm)
}

fn threads_of(pid: i32) -> Result<BTreeSet<u32>, TargetError> {
    a_process(pid)?;
    let threads = ids(format!("/proc/{pid}/task")).map_err(|source| match source.kind() {
        io::ErrorKind::NotFound => TargetError::NoSuchProcess(pid),
        _ => TargetError::Threads { pid, source },
    })?;
    Ok(threads.collect())
}

/// The ids a /proc directory lists: processes in `/proc`, threads in `/proc/PID/task`.
pub fn ids(dir: impl AsRef<std::path::Path>) -> io::Result<impl Iterator<Item = u32>> {
    Ok(fs::read_dir(dir)?.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()))
}

/// Adds every thread of `pid`. A thread created while we list is caught either by the
/// fork tracepoint (if its parent was already traced) or by the next listing, so list until
/// a pass finds nothing new.
pub fn attach_process(probes: &mut Probes, pid: i32, scope: &Scope) -> Result<usize, TargetError> {
    let mut added = BTreeSet::new();
    for _ in 0..8 {
        let threads = threads_of(pid).map_err(|e| match e {
            TargetError::NoSuchProcess(pid) => TargetError::ExitedWhileAttaching(pid),
            e => e,
        })?;
        let fresh: Vec<u32> = threads.difference(&added).copied().collect();
        if fresh.is_empty() {
            break;
        }
        for tid in fresh {
            probes.add_thread(tid, scope.ignores(pid, tid))?;
            // Exited between the listing and the insert: its exit hook has run, so the slot
            // would outlive it and trace whoever reuses the tid.
            if !std::path::Path::new(&format!("/proc/{pid}/task/{tid}")).exists() {
                probes.remove_thread(tid);
            }
            added.insert(tid);
        }
    }
    Ok(added.len())
}

/// A handle that becomes readable when the process exits (pidfd), so the recorder notices
/// the end of an attached process without polling /proc, and never mistakes a reused pid
/// for it.
pub fn pidfd(pid: i32) -> Result<OwnedFd, TargetError> {
    a_process(pid)?;
    open_pidfd(pid).map_err(|err| match err.raw_os_error() {
        Some(libc::ESRCH) => TargetError::NoSuchProcess(pid),
        _ => TargetError::Threads { pid, source: err },
    })
}

/// `pidfd_open(2)` of `pid`, unchecked.
pub fn open_pidfd(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh fd we own.
    Ok(unsafe { std::os::fd::FromRawFd::from_raw_fd(fd as i32) })
}

/// True when the process behind the pidfd has exited.
pub fn has_exited(fd: &OwnedFd) -> bool {
    use std::os::fd::AsRawFd;
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    unsafe { libc::poll(&mut pfd, 1, 0) == 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kernel_thread_is_named_and_a_process_is_not() {
        // kthreadd is pid 2 wherever /proc shows the host's pids.
        assert_eq!(kernel_thread(2).as_deref(), Some("kthreadd"));
        assert_eq!(kernel_thread(std::process::id() as i32), None);
    }
}
