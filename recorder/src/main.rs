//! `record`: the binary that goes onto a production host. Parsing and error reporting live
//! here; the work lives in the library.
use std::process::ExitCode;

use clap::Parser as _;
use tracepost_recorder::{cli::Args, follow::launch::LaunchError, session};

fn main() -> ExitCode {
    // `record` reading a binary for the unwinder, in a process of its own.
    if let Some(code) = tracepost_recorder::user_stacks::reader::serve_if_asked() {
        return ExitCode::from(code);
    }
    // With glibc's sliding mmap threshold, large short-lived buffers freed on another thread
    // than the one that made them end up retained in per-thread arenas (about 100 MB at
    // 1.3M events/s). A fixed threshold bounds that. At 4 MiB, Arrow's column buffers and
    // the record chunks (which are recycled) come from the heap and are reused; at 256 KiB
    // each one was mapped and faulted in afresh, a fifth of the writer's time.
    // SAFETY: mallopt only changes allocator tuning; called before any other thread exists.
    unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20) };
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(e) if !e.use_stderr() => e.exit(),
        Err(e) => {
            tracepost_recorder::say!("{}", tracepost_recorder::cli::one_line(&e));
            return ExitCode::from(2);
        }
    };
    // Past clap, nothing reads the arguments' memory again: what other users see of the
    // command line no longer holds the store's password or signature.
    #[cfg(feature = "upload")]
    if args.upload.is_some() {
        tracepost_recorder::argv_secrets::hide();
    }
    match session::run(args) {
        Ok(outcome) => ExitCode::from(outcome.exit_code),
        Err(err) => {
            tracepost_recorder::say!(
                "error: {}",
                tracepost_recorder::visible(&format!("{err:#}"))
            );
            // A command that cannot be started exits as a shell (and env, nice, timeout)
            // would: 127 when it is not there, 126 when it is but cannot be run.
            let code = err
                .chain()
                .find_map(|e| e.downcast_ref::<LaunchError>())
                .map_or(1, |e| match e {
                    LaunchError::NotFound(_) => 127,
                    LaunchError::NotExecutable(_) => 126,
                    _ => 1,
                });
            ExitCode::from(code)
        }
    }
}
