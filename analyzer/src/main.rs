//! `analyze`: SQL over tracepost captures. Parsing and error reporting live here; the work
//! lives in the library.
use std::process::ExitCode;

use clap::Parser as _;
use tracepost_analyzer::{cli::Cli, run};

fn main() -> ExitCode {
    // `analyze ... | head` should stop quietly, as other Unix tools do, not report a write
    // error. SAFETY: called before any thread exists; SIG_DFL is always a valid action.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("error: cannot start the query runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
