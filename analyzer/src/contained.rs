//! Panics of third-party decoders on damaged input, caught and turned into a refusal.
//!
//! Arrow's IPC schema decoder panics on some bit flips in a file's embedded schema, where
//! it should return an error. A damaged file must be named and refused (or skipped with
//! `--skip-bad-files`), not end the command with a panic report, so the call is contained
//! and the default hook's report is held back for it.
use std::{
    cell::Cell,
    panic::{self, AssertUnwindSafe},
};

thread_local! {
    /// Whether a panic on this thread is being contained, and must not be reported.
    static CONTAINING: Cell<bool> = const { Cell::new(false) };
}

/// Installs the hook that reports panics as before, except those being contained.
pub fn install_hook() {
    let report = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if !CONTAINING.with(Cell::get) {
            report(info)
        }
    }));
}

/// `f()`, or `None` if it panicked.
pub fn contained<T>(f: impl FnOnce() -> T) -> Option<T> {
    let was = CONTAINING.with(|c| c.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    CONTAINING.with(|c| c.set(was));
    result.ok()
}
