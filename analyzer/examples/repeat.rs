//! Runs one `analyze` command several times in one process and prints each run's seconds on
//! stderr: the analyzer timed the way `bench/duckdb_times.py` times DuckDB (a warm
//! process, the capture opened and the query planned and run each time), so that the two
//! are compared like for like. `bench/analyzer_vs_duckdb.py --in-process` drives it.
//!
//!     cargo build --release --example repeat
//!     target/release/examples/repeat 5 query CAPTURE errors --format csv >/dev/null
use std::time::Instant;

use clap::Parser as _;
use tracepost_analyzer::{cli::Cli, run};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args
        .next()
        .and_then(|r| r.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("usage: repeat ROUNDS ANALYZE-ARGS..."))?;
    let argv: Vec<String> = std::iter::once("analyze".to_string()).chain(args).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(64 << 20)
        .build()?;
    for _ in 0..rounds {
        let cli = Cli::try_parse_from(&argv)?;
        let t = Instant::now();
        runtime.block_on(run(cli))?;
        eprintln!("{:.6}", t.elapsed().as_secs_f64());
    }
    Ok(())
}
