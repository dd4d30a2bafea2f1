//! Starting COMMAND so that its first traced syscall is its execve.
//!
//! The child is forked, then waits on a pipe until the recorder has added it to the traced
//! set, then calls execve directly. Everything the child did before (closing the pipe, the
//! read) is untraced, and the only thing it does after is the execve, so the capture holds
//! the command and none of the recorder.
use std::{
    ffi::{CString, OsStr, OsString},
    io,
    os::unix::ffi::OsStrExt,
    path::{Path, PathBuf},
};

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("command not found: {0}")]
    NotFound(String),
    #[error("{}: not an executable file", .0.display())]
    NotExecutable(PathBuf),
    #[error("command argument contains a NUL byte: {0:?}")]
    Nul(OsString),
    #[error("cannot start the command: {0}")]
    Os(#[from] io::Error),
}

/// A forked child waiting at the gate.
#[derive(Debug)]
pub struct Gated {
    pid: libc::pid_t,
    gate: libc::c_int,
}

/// How the command ended, as a shell would report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExitStatus {
    Code(i32),
    Signal(i32),
}

impl ExitStatus {
    /// The status `record` itself exits with: the code, or 128 + signal as shells do.
    pub fn shell_code(self) -> u8 {
        match self {
            ExitStatus::Code(c) => c as u8,
            ExitStatus::Signal(s) => (128 + s) as u8,
        }
    }
}

/// PATH lookup done in the recorder, so the child makes exactly one execve.
pub fn resolve(program: &OsStr) -> Result<PathBuf, LaunchError> {
    let is_exec = |p: &Path| {
        let c = CString::new(p.as_os_str().as_bytes()).ok();
        // SAFETY: valid NUL-terminated path.
        p.is_file() && c.is_some_and(|c| unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0)
    };
    if program.as_bytes().contains(&b'/') {
        let p = PathBuf::from(program);
        if !p.exists() {
            return Err(LaunchError::NotFound(p.display().to_string()));
        }
        return if is_exec(&p) {
            Ok(p)
        } else {
            Err(LaunchError::NotExecutable(p))
        };
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_exec(candidate))
        .ok_or_else(|| LaunchError::NotFound(program.to_string_lossy().into_owned()))
}

fn cstring(s: &OsStr) -> Result<CString, LaunchError> {
    CString::new(s.as_bytes()).map_err(|_| LaunchError::Nul(s.to_owned()))
}

impl Gated {
    /// Forks a child that will exec `command` once [`Gated::release`] is called.
    pub fn spawn(command: &[OsString]) -> Result<Self, LaunchError> {
        let (program, _) = command
            .split_first()
            .ok_or_else(|| LaunchError::NotFound(String::new()))?;
        let path = cstring(resolve(program)?.as_os_str())?;
        let argv: Vec<CString> = command
            .iter()
            .map(|a| cstring(a))
            .collect::<Result<_, _>>()?;
        let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|a| a.as_ptr()).collect();
        argv_ptrs.push(std::ptr::null());

        let mut fds = [0; 2];
        // SAFETY: valid array of two fds.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error().into());
        }
        let [read_end, write_end] = fds;
        // SAFETY: the child only calls async-signal-safe functions (close, read, execv,
        // _exit) on memory prepared before the fork.
        match unsafe { libc::fork() } {
            -1 => {
                let err = io::Error::last_os_error();
                unsafe {
                    libc::close(read_end);
                    libc::close(write_end);
                }
                Err(err.into())
            }
            0 => unsafe {
                // Rust ignores SIGPIPE and an ignored signal survives exec; the command must
                // start with the default, as it would from a shell.
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::close(write_end);
                let mut byte = 0u8;
                loop {
                    let n = libc::read(read_end, (&raw mut byte).cast(), 1);
                    if n == 1 {
                        break;
                    }
                    if n == 0 || *libc::__errno_location() != libc::EINTR {
                        // The recorder went away before tracing started: run nothing.
                        libc::_exit(127);
                    }
                }
                libc::execv(path.as_ptr(), argv_ptrs.as_ptr());
                libc::_exit(127)
            },
            pid => {
                unsafe { libc::close(read_end) };
                Ok(Self {
                    pid,
                    gate: write_end,
                })
            }
        }
    }

    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Lets the child exec. Call once it is traced.
    pub fn release(self) -> Result<Running, LaunchError> {
        let byte = 1u8;
        // SAFETY: writing one byte from a valid buffer to our own pipe.
        let n = unsafe { libc::write(self.gate, (&raw const byte).cast(), 1) };
        let err = io::Error::last_os_error();
        unsafe { libc::close(self.gate) };
        let pid = self.pid;
        std::mem::forget(self);
        if n != 1 {
            return Err(err.into());
        }
        Ok(Running { pid })
    }
}

impl Drop for Gated {
    /// Never released: the child sees EOF and exits without running the command.
    fn drop(&mut self) {
        unsafe { libc::close(self.gate) };
        let _ = wait(self.pid, true);
    }
}

/// The command, running.
#[derive(Debug)]
pub struct Running {
    pid: libc::pid_t,
}

impl Running {
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// The exit status if the command has ended.
    pub fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        wait(self.pid, false)
    }

    pub fn wait(&self) -> io::Result<ExitStatus> {
        wait(self.pid, true).map(|s| s.expect("blocking wait returns a status"))
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: plain kill(2) of our own child.
        unsafe { libc::kill(self.pid, sig) };
    }
}

fn wait(pid: libc::pid_t, block: bool) -> io::Result<Option<ExitStatus>> {
    let mut status = 0;
    loop {
        let flags = if block { 0 } else { libc::WNOHANG };
        // SAFETY: valid status pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, flags) };
        if rc == 0 {
            return Ok(None);
        }
        if rc < 0 {
            let err = io::Error::last_os_error();
            if err.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(err);
        }
        if libc::WIFEXITED(status) {
            return Ok(Some(ExitStatus::Code(libc::WEXITSTATUS(status))));
        }
        if libc::WIFSIGNALED(status) {
            return Ok(Some(ExitStatus::Signal(libc::WTERMSIG(status))));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_on_path_and_rejects_the_missing() {
        assert!(resolve(OsStr::new("sh")).unwrap().is_absolute());
        assert!(matches!(
            resolve(OsStr::new("no-such-command-xyz")),
            Err(LaunchError::NotFound(_))
        ));
        let tmp = tempfile::tempdir().unwrap();
        let plain = tmp.path().join("plain");
        std::fs::write(&plain, "not a program").unwrap();
        assert!(matches!(
            resolve(plain.as_os_str()),
            Err(LaunchError::NotExecutable(_))
        ));
        assert!(matches!(
            resolve(tmp.path().join("missing").as_os_str()),
            Err(LaunchError::NotFound(_))
        ));
    }

    #[test]
    fn runs_only_after_release_and_reports_the_exit_status() {
        let cmd: Vec<OsString> = ["sh", "-c", "exit 7"].iter().map(OsString::from).collect();
        let gated = Gated::spawn(&cmd).unwrap();
        let running = gated.release().unwrap();
        assert_eq!(running.wait().unwrap(), ExitStatus::Code(7));
        let cmd: Vec<OsString> = ["sh", "-c", "kill -TERM $$"]
            .iter()
            .map(OsString::from)
            .collect();
        let running = Gated::spawn(&cmd).unwrap().release().unwrap();
        let status = running.wait().unwrap();
        assert_eq!(status, ExitStatus::Signal(libc::SIGTERM));
        assert_eq!(status.shell_code(), 143);
    }
}
