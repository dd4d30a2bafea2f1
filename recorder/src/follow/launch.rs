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
    sync::atomic::{AtomicI32, Ordering},
};

#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    /// The name as given, quoted so that an empty one or one with spaces shows.
    #[error("command not found: {}", crate::shell_words::quote(.0))]
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
    /// Read end of a close-on-exec pipe: EOF once the child's execve succeeded, or once
    /// the child exited after it failed. Without it the only sign was the child's exit
    /// 127, after a summary that read like success.
    exec_result: libc::c_int,
    /// Where the child leaves the errno of an execve that failed.
    exec_errno: ExecErrno,
    program: PathBuf,
}

/// A page shared with the child, for the errno of its failed execve. Memory, not a
/// pipe: the child is traced by then, and a `write` to report it put a call of the
/// recorder's own into the capture (after the execve, before `exit_group`). A store is no
/// syscall. The page is the parent's alone once the child has exec'd or exited.
#[derive(Debug)]
struct ExecErrno(*mut AtomicI32);

impl ExecErrno {
    fn new() -> io::Result<Self> {
        // SAFETY: a fresh anonymous mapping; no existing memory is touched.
        let page = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                std::mem::size_of::<AtomicI32>(),
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if page == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // The mapping is zeroed: 0 is "no failure".
        Ok(Self(page.cast()))
    }

    fn get(&self) -> &AtomicI32 {
        // SAFETY: the mapping lives until drop, is aligned (a page) and zero-initialized,
        // a valid AtomicI32.
        unsafe { &*self.0 }
    }
}

impl Drop for ExecErrno {
    fn drop(&mut self) {
        // SAFETY: unmapping the mapping made in `new`, used by nothing after this.
        unsafe { libc::munmap(self.0.cast(), std::mem::size_of::<AtomicI32>()) };
    }
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
    // A file of that name that cannot be run is "not executable" (126), as bash says, if
    // no later one can.
    let mut not_executable = None;
    for candidate in std::env::split_paths(&path).map(|dir| dir.join(program)) {
        if is_exec(&candidate) {
            return Ok(candidate);
        }
        if not_executable.is_none() && candidate.is_file() {
            not_executable = Some(candidate);
        }
    }
    Err(match not_executable {
        Some(p) => LaunchError::NotExecutable(p),
        None => LaunchError::NotFound(program.to_string_lossy().into_owned()),
    })
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
        let resolved = resolve(program)?;
        let path = cstring(resolved.as_os_str())?;
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
        let exec_errno = match ExecErrno::new() {
            Ok(page) => page,
            Err(err) => {
                unsafe {
                    libc::close(read_end);
                    libc::close(write_end);
                }
                return Err(err.into());
            }
        };
        let mut result_fds = [0; 2];
        // SAFETY: valid array of two fds.
        if unsafe { libc::pipe2(result_fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            let err = io::Error::last_os_error();
            unsafe {
                libc::close(read_end);
                libc::close(write_end);
            }
            return Err(err.into());
        }
        let [result_read, result_write] = result_fds;
        // SAFETY: the child only calls async-signal-safe functions (close, read, execv,
        // _exit) and stores to memory prepared before the fork.
        match unsafe { libc::fork() } {
            -1 => {
                let err = io::Error::last_os_error();
                unsafe {
                    libc::close(read_end);
                    libc::close(write_end);
                    libc::close(result_read);
                    libc::close(result_write);
                }
                Err(err.into())
            }
            0 => unsafe {
                // Rust ignores SIGPIPE and an ignored signal survives exec; the command must
                // start with the default, as it would from a shell.
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::close(write_end);
                libc::close(result_read);
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
                let errno = *libc::__errno_location();
                exec_errno.get().store(errno, Ordering::SeqCst);
                // The status `record` exits with, so that the capture's processes row says
                // the same.
                libc::_exit(exec_failure_status(errno))
            },
            pid => {
                unsafe {
                    libc::close(read_end);
                    libc::close(result_write);
                }
                Ok(Self {
                    pid,
                    gate: write_end,
                    exec_result: result_read,
                    exec_errno,
                    program: resolved,
                })
            }
        }
    }

    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Lets the child exec, and learns whether the execve succeeded. Call once it is
    /// traced. A failed execve is not an error here: the call is in the capture, which is
    /// finished as any other, and [`Running::exec_error`] says why the command never ran.
    pub fn release(mut self) -> Result<Running, LaunchError> {
        let byte = 1u8;
        // SAFETY: writing one byte from a valid buffer to our own pipe.
        let n = unsafe { libc::write(self.gate, (&raw const byte).cast(), 1) };
        let err = io::Error::last_os_error();
        unsafe { libc::close(self.gate) };
        let (pid, exec_result) = (self.pid, self.exec_result);
        let program = std::mem::take(&mut self.program);
        // SAFETY: `self` is forgotten below, so the page is moved out exactly once.
        let exec_errno = unsafe { std::ptr::read(&self.exec_errno) };
        std::mem::forget(self);
        let exec_error = match n {
            1 => read_exec_result(exec_result, &exec_errno),
            _ => None,
        };
        unsafe { libc::close(exec_result) };
        if n != 1 {
            return Err(err.into());
        }
        Ok(Running {
            pid,
            exec_error: exec_error.map(|errno| (program, errno)),
        })
    }
}

impl Drop for Gated {
    /// Never released: the child sees EOF and exits without running the command.
    fn drop(&mut self) {
        unsafe {
            libc::close(self.gate);
            libc::close(self.exec_result);
        }
        let _ = wait(self.pid, true);
    }
}

/// The errno of the child's execve if it failed. The pipe ends (EOF) when the execve
/// closes it by succeeding, or when the child exits after storing the errno, so the page
/// is read only once the child has written it or never will.
fn read_exec_result(fd: libc::c_int, exec_errno: &ExecErrno) -> Option<i32> {
    let mut byte = 0u8;
    loop {
        // SAFETY: reading into a valid one-byte buffer.
        let n = unsafe { libc::read(fd, (&raw mut byte).cast(), 1) };
        if n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
            continue;
        }
        // Nothing is ever written, so anything but EOF is an error, and then the page
        // says as much as it can.
        break;
    }
    match exec_errno.get().load(Ordering::SeqCst) {
        0 => None,
        errno => Some(errno),
    }
}

/// The command, running.
#[derive(Debug)]
pub struct Running {
    pid: libc::pid_t,
    /// The program and the errno of its execve, when it could not be started.
    exec_error: Option<(PathBuf, i32)>,
}

impl Running {
    pub fn pid(&self) -> libc::pid_t {
        self.pid
    }

    /// Why the command never ran, as a shell says it, and the status a shell gives for it:
    /// 127 when a file is missing, 126 when it is there but cannot be run.
    pub fn exec_error(&self) -> Option<(String, u8)> {
        self.exec_error.as_ref().map(|(program, errno)| {
            let why = match *errno {
                libc::ENOEXEC => "not a program this system runs (no #! line?)".to_string(),
                libc::ENOENT => "it, or the interpreter its #! line names, does not exist".into(),
                e => io::Error::from_raw_os_error(e).to_string(),
            };
            let code = exec_failure_status(*errno) as u8;
            (format!("cannot execute {}: {why}", program.display()), code)
        })
    }

    /// The exit status if the command has ended.
    pub fn try_wait(&self) -> io::Result<Option<ExitStatus>> {
        wait(self.pid, false)
    }

    pub fn wait(&self) -> io::Result<ExitStatus> {
        wait(self.pid, true).map(|s| s.expect("blocking wait returns a status"))
    }
}

/// A shell's status for a command whose execve failed with `errno`: 127 when a file is
/// missing, 126 when it is there but cannot be run. Plain arithmetic: the forked child
/// exits with it.
const fn exec_failure_status(errno: i32) -> i32 {
    if errno == libc::ENOENT { 127 } else { 126 }
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
