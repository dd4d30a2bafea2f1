//! Command-line interface of `analyze`.
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

use crate::output::Format;

/// Answer questions about tracepost captures with SQL.
#[derive(Debug, Parser)]
#[command(name = "analyze", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run SQL over one or more captures. Tables: `syscalls`.
    #[command(
        after_help = "Example:\n  analyze query inc-42 \"SELECT syscall, count(*) AS calls, \
        avg(duration_ns) FROM syscalls GROUP BY 1 ORDER BY 3 DESC\""
    )]
    Query(QueryArgs),
}

#[derive(Debug, clap::Args)]
pub struct QueryArgs {
    /// Capture directories, then the SQL as the last argument.
    #[arg(required = true, num_args = 2.., value_names = ["CAPTURE", "SQL"])]
    pub args: Vec<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

impl QueryArgs {
    /// The capture directories and the SQL.
    pub fn split(&self) -> anyhow::Result<(Vec<PathBuf>, &str)> {
        let (sql, captures) = self
            .args
            .split_last()
            .ok_or_else(|| anyhow::anyhow!("missing SQL"))?;
        if sql.trim().is_empty() {
            anyhow::bail!("the SQL (last argument) is empty");
        }
        Ok((
            captures
                .iter()
                .map(|c| Path::new(c).to_path_buf())
                .collect(),
            sql,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_argument_is_the_sql() {
        let cli =
            Cli::try_parse_from(["analyze", "query", "a", "b", "SELECT 1", "--format", "csv"])
                .unwrap();
        let Command::Query(q) = cli.command;
        let (captures, sql) = q.split().unwrap();
        assert_eq!(captures, vec![PathBuf::from("a"), PathBuf::from("b")]);
        assert_eq!(sql, "SELECT 1");
        assert_eq!(q.format, Format::Csv);
        assert!(Cli::try_parse_from(["analyze", "query", "only-sql"]).is_err());
    }
}
