//! SIGINT, SIGTERM and SIGHUP, and the other signals whose default is to end a process
//! (SIGQUIT from Ctrl-\\, SIGUSR1, SIGUSR2, SIGALRM): stop the capture cleanly instead of
//! dying with an open file, the command left running untraced.
//! SIGHUP is how a foreground `record` learns that the on-call engineer's SSH session
//! dropped; by default it killed the recorder as `kill -9` would, losing everything since
//! the last rotation and the processes table.
//!
//! In command mode a signal the terminal sent (Ctrl-C) already reached the command, which is
//! in the same process group; a signal someone sent to the recorder alone (`kill`) is passed
//! on to the command, as the command is what they meant to stop. Either way the capture goes
//! on until the command exits, so its last calls are recorded.
use std::{
    io,
    os::fd::{AsRawFd as _, OwnedFd},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    thread,
};

use signal_hook::{
    consts::{SIGALRM, SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2},
    iterator::{SignalsInfo, exfiltrator::WithOrigin},
    low_level::siginfo::Cause,
};

/// Set when a stop was requested; shared with the capture loop.
#[derive(Clone, Default)]
pub struct StopFlag {
    requested: Arc<AtomicBool>,
    /// Signals received: one that comes while `record` waits for its last uploads stops
    /// that wait.
    signals: Arc<AtomicU64>,
}

impl StopFlag {
    pub fn is_set(&self) -> bool {
        self.requested.load(Ordering::Relaxed)
    }

    pub fn set(&self) {
        self.requested.store(true, Ordering::Relaxed);
    }

    /// How many stopping signals have come so far.
    pub fn signals(&self) -> u64 {
        self.signals.load(Ordering::Relaxed)
    }

    fn signalled(&self) {
        self.signals.fetch_add(1, Ordering::Relaxed);
        self.set();
    }
}

/// The command that signals are passed on to.
pub struct Command {
    /// A pidfd names this process and no other: a signal that comes after the command was
    /// reaped (the Ctrl-C that stops the wait for the last uploads) must not reach a
    /// process that took its pid since, as `kill(pid)` would.
    pidfd: Option<OwnedFd>,
    pid: libc::pid_t,
}

impl Command {
    /// Takes a pidfd of `pid`, which must be a child not yet waited for.
    pub fn of(pid: libc::pid_t) -> Self {
        let pidfd = crate::follow::target::open_pidfd(pid).ok();
        Self { pidfd, pid }
    }

    fn signal(&self, sig: i32) {
        match &self.pidfd {
            // SAFETY: pidfd_send_signal on our own pidfd; a reaped process gives ESRCH.
            Some(fd) => unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    sig,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                );
            },
            // Without pidfds (a seccomp filter that refuses them): the pid, as before.
            // SAFETY: plain kill(2) of our own child.
            None => unsafe {
                libc::kill(self.pid, sig);
            },
        }
    }
}

/// Where signals are passed on: the command, once it runs. One sent before is kept and
/// passed on as the command starts: `timeout 0.1 record -- cmd` stopped the recorder
/// before its handlers were in place, leaving an empty capture (helper-70).
#[derive(Default)]
pub struct Forward(Mutex<(Option<Command>, Option<i32>)>);

impl Forward {
    /// The command runs: a signal that came before goes to it now.
    pub fn set(&self, command: Command) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(sig) = state.1.take() {
            command.signal(sig);
        }
        state.0 = Some(command);
    }

    fn pass_on(&self, sig: i32) {
        let mut state = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match &state.0 {
            Some(command) => command.signal(sig),
            None => state.1 = Some(sig),
        }
    }
}

/// Installs the handlers, first of all: until then a signal ends `record` as it would
/// any process. The command to pass signals on to is set once it starts.
pub fn install(stop: StopFlag) -> io::Result<Arc<Forward>> {
    let forward_to = Arc::new(Forward::default());
    let target = forward_to.clone();
    let mut signals = SignalsInfo::<WithOrigin>::new([
        SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGALRM,
    ])?;
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for origin in signals.forever() {
                let sent = matches!(origin.cause, Cause::Sent(_));
                if origin.signal == SIGHUP {
                    quiet_a_hung_up_terminal();
                }
                stop.signalled();
                // A hangup is passed on whoever sent it: when `record` leads the session
                // (`ssh -t host record -- cmd`) the terminal's hangup reaches it alone, and
                // before, its death made the kernel pass it on to the command.
                if sent || origin.signal == SIGHUP {
                    target.pass_on(origin.signal);
                }
            }
        })?;
    Ok(forward_to)
}

/// After the terminal hung up, writing to it fails, which would make the recorder's last
/// messages panic (exit 101); nobody is left to read them, so they go to /dev/null. The
/// hangup is known by the terminal itself, not by who sent the signal: an interactive
/// shell passes the kernel's hangup on as its own `kill`. A terminal still there (a `kill
/// -HUP` by hand) answers as one, and a stderr that is a file (under `nohup`, or
/// redirected) is not a terminal at all; both keep the messages.
fn quiet_a_hung_up_terminal() {
    // SAFETY: isatty, open and dup2 on plain descriptors; a failure changes nothing.
    unsafe {
        if libc::isatty(2) == 1 || *libc::__errno_location() != libc::EIO {
            return;
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
        if null >= 0 {
            libc::dup2(null, 2);
            libc::close(null);
        }
    }
}
