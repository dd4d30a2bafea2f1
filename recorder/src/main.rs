//! `record`: the binary that goes onto a production host. Parsing and error reporting live
//! here; the work lives in the library.
use std::process::ExitCode;

use clap::Parser as _;
use tracepost_recorder::{cli::Args, session};

fn main() -> ExitCode {
    // Record chunks and Arrow buffers are large and short-lived, and freed on another thread
    // than the one that made them. With glibc's sliding mmap threshold they end up retained
    // in per-thread arenas (about 100 MB at 1.3M events/s); a fixed threshold hands them
    // back to the kernel when freed. The recorder runs on hosts short of memory.
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024) };
    let args = Args::parse();
    match session::run(args) {
        Ok(outcome) => ExitCode::from(outcome.exit_code),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
