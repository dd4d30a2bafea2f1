//! `record`: the binary that goes onto a production host. Parsing and error reporting live
//! here; the work lives in the library.
use std::process::ExitCode;

use clap::Parser as _;
use tracepost_recorder::{cli::Args, session};

fn main() -> ExitCode {
    let args = Args::parse();
    match session::run(args) {
        Ok(outcome) => ExitCode::from(outcome.exit_code),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
