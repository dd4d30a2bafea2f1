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
    /// Capture directories, then the SQL as the last argument. Options may come anywhere.
    #[arg(required = true, num_args = 1.., value_name = "CAPTURE... SQL")]
    pub args: Vec<String>,

    /// Output format.
    #[arg(short, long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
}

impl QueryArgs {
    /// The capture directories and the SQL.
    pub fn split(&self) -> anyhow::Result<(Vec<PathBuf>, &str)> {
        let (sql, captures) = match self.args.split_last() {
            Some((sql, captures)) if !captures.is_empty() => (sql, captures),
            _ => anyhow::bail!("give one or more capture directories, then the SQL"),
        };
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
        // Options may sit between the captures and the SQL.
        let cli =
            Cli::try_parse_from(["analyze", "query", "a", "-f", "markdown", "SELECT 2"]).unwrap();
        let Command::Query(q) = cli.command;
        assert_eq!(q.split().unwrap(), (vec![PathBuf::from("a")], "SELECT 2"));
        assert_eq!(q.format, Format::Markdown);
        let cli = Cli::try_parse_from(["analyze", "query", "only-sql"]).unwrap();
        let Command::Query(q) = cli.command;
        assert!(q.split().is_err());
    }
}
