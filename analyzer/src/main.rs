//! `analyze`: SQL over tracepost captures. Parsing and error reporting live here; the work
//! lives in the library.
use std::process::ExitCode;

use clap::Parser as _;
use tracepost_analyzer::{cli::Cli, run};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        // Help and version; and with no command at all, the help, not its first line.
        Err(e)
            if !e.use_stderr()
                || e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand =>
        {
            e.exit()
        }
        Err(e) => {
            tracepost_analyzer::say!("{}", tracepost_analyzer::cli::one_line(&e));
            return ExitCode::from(2);
        }
    };
    tracepost_analyzer::contained::install_hook();
    // `analyze ... | head` should stop quietly, as other Unix tools do, not report a write
    // error. Not so a scheduler or an executor: a peer that hangs up must not kill them.
    // SAFETY: called before any thread exists; SIG_DFL is always a valid action.
    if !cli.command.serves() {
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    // Planning recurses over the query's expressions on the thread that blocks on the
    // runtime, and user SQL can be deep: a large stack (address space, touched only as
    // used) turns what would be a stack overflow into the depth limit's error line.
    let main = std::thread::Builder::new()
        .name("analyze".into())
        .stack_size(STACK_BYTES)
        .spawn(move || -> anyhow::Result<()> {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .thread_stack_size(STACK_BYTES)
                .build()
                .map_err(|e| anyhow::anyhow!("cannot start the query runtime: {e}"))?;
            runtime.block_on(run(cli))
        });
    let result = match main.map(|t| t.join()) {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(anyhow::anyhow!("internal error (a panic, reported above)")),
        Err(e) => Err(anyhow::anyhow!("cannot start the analyzer's thread: {e}")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracepost_analyzer::say!(
                "error: {}",
                tracepost_analyzer::output::visible(&format!("{err:#}"))
            );
            ExitCode::FAILURE
        }
    }
}

/// Stack for the planning thread and the query workers.
const STACK_BYTES: usize = 64 << 20;
