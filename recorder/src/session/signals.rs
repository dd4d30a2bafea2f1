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
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicI32, Ordering},
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
}

impl StopFlag {
    pub fn is_set(&self) -> bool {
        self.requested.load(Ordering::Relaxed)
    }

    pub fn set(&self) {
        self.requested.store(true, Ordering::Relaxed);
    }
}

/// Installs the handlers. `forward_to` is the command's pid, 0 when there is none; it can
/// be set after the command starts.
pub fn install(stop: StopFlag) -> io::Result<Arc<AtomicI32>> {
    let forward_to = Arc::new(AtomicI32::new(0));
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
                stop.set();
                let pid = target.load(Ordering::Relaxed);
                // A hangup is passed on whoever sent it: when `record` leads the session
                // (`ssh -t host record -- cmd`) the terminal's hangup reaches it alone, and
                // before, its death made the kernel pass it on to the command.
                if pid > 0 && (sent || origin.signal == SIGHUP) {
                    // SAFETY: plain kill(2) of our own child.
                    unsafe { libc::kill(pid, origin.signal) };
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
