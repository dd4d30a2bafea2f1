//! The recorder: kernel record, then batch, then file. Each stage is a folder:
//!
//! - [`kernel`]: talking to the kernel. It checks that the kernel has what the programs
//!   need, loads and attaches them, and says what their records and numbers mean.
//! - [`follow`]: following processes and fds. Which threads are traced, the command started
//!   gated so that its first traced call is its execve, the processes table, and what each
//!   fd refers to.
//! - [`files`]: building and writing files. Records go from the staging areas through
//!   [`files::reorder`] and [`files::batch`] into [`files::writer`]'s Parquet files, in a
//!   capture directory that no other user can redirect.
//! - [`session`]: runs one capture from start to stop.
//! - [`prefetch`]: asking for memory before the capture loop and the writer read it.
//! - [`priority`]: the capture loop and the writer run ahead of the traced processes.
//! - [`upload`]: ships each closed file to object storage (`--upload`).
/// `eprintln!`, except that a stderr that cannot be written (closed, full, a pipe whose
/// reader left) is ignored: a message lost must not turn a finished capture into a panic
/// and the command's exit status into 101.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($arg)*);
    }};
}

/// Control characters as escapes (`\x0a`): an error is one line even when the path it
/// names holds a newline, and an escape sequence in a name cannot rewrite the terminal.
pub fn visible(s: &str) -> String {
    s.chars()
        .map(|c| match c.is_control() {
            true => format!("\\x{:02x}", c as u32),
            false => c.to_string(),
        })
        .collect()
}

/// The process's arguments as given, where they were kept before `--upload`'s secrets
/// were masked in the process's own memory ([`argv_secrets`]); else read from it.
pub static ARGS: std::sync::OnceLock<Vec<std::ffi::OsString>> = std::sync::OnceLock::new();

/// The arguments as given: see [`ARGS`].
pub fn args_as_given() -> Vec<std::ffi::OsString> {
    ARGS.get()
        .cloned()
        .unwrap_or_else(|| std::env::args_os().collect())
}

#[cfg(feature = "upload")]
pub mod argv_secrets;
pub mod cli;
pub mod files;
pub mod follow;
pub mod kernel;
pub mod prefetch;
pub mod priority;
pub mod session;
pub mod shell_words;
pub mod upload;
pub mod user_stacks;
