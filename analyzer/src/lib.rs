//! The analyzer: table, then query, then report.
//!
//! - [`capture`] finds and checks the capture directories.
//! - [`tables`] registers their tables with DataFusion, with [`narrow`]'s filters,
//!   [`frames`]' names from debug files and [`udfs`]'s functions.
//! - [`queries`] holds the canned SQL; [`summary`] and [`diff`] build theirs.
//! - [`output`] renders results for terminals and tickets; [`report`] writes the incident
//!   report.
pub mod capture;
pub mod cli;
pub mod cluster;
pub mod diff;
pub mod files;
pub mod frames;
pub use tracepost_store::location;
pub mod narrow;
pub mod needs;
pub mod output;
pub mod partitions;
pub mod percentiles;
pub mod planner;
pub mod private_file;
pub mod queries;
pub mod redact;
pub mod report;
pub mod spinner;
pub mod sql_guard;
pub mod summary;
pub mod tables;
pub mod trace_export;
pub mod udfs;
pub mod waiting;
pub mod waker;

use std::{
    fs::File,
    io::{BufWriter, Write},
    path::{Path, PathBuf},
};

use anyhow::{Context as _, Result};
use datafusion::{arrow::array::RecordBatch, arrow::datatypes::Schema, prelude::SessionContext};

use crate::{
    capture::Capture,
    cli::{Cli, Command, NarrowArgs, OutputArgs, ReadArgs},
    location::Location,
};

pub async fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::List => {
            let mut out = std::io::stdout().lock();
            for q in queries::all() {
                let params = if q.params.is_empty() {
                    String::new()
                } else {
                    let p: Vec<String> = q.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                    format!(" [{}]", p.join(" "))
                };
                writeln!(out, "{:<20} {}{params}", q.name, q.description)
                    .context("cannot write to stdout")?;
            }
            Ok(())
        }
        Command::Query(q) => {
            let (paths, query) = q.split()?;
            let canned = queries::resolve(query)?;
            let sql = canned.render(&q.params)?;
            sql_guard::check(&sql)?;
            let Opened { ctx, .. } = open(&paths, &q.narrow, &q.read).await?;
            needs::check(&ctx, &canned.name, canned.needs).await?;
            let (schema, batches) = run_sql(&ctx, &sql).await?;
            emit(&q.out, &schema, &batches)
        }
        Command::Summary(s) => {
            let Opened { ctx, .. } = open(&s.captures, &s.narrow, &s.read).await?;
            let (schema, batches) =
                run_sql(&ctx, &summary::sql(s.by, s.captures.len() > 1)).await?;
            emit(&s.out, &schema, &batches)
        }
        Command::Report(r) => {
            let Opened { ctx, captures, .. } = open(&r.captures, &r.narrow, &r.read).await?;
            let options = report::model::Options {
                redact: !r.no_redact,
                narrowed: r.narrow.describe(),
            };
            report::write(&ctx, &captures, &r.output, options).await
        }
        Command::Export(x) => {
            let Opened { ctx, captures, .. } = open(&x.captures, &x.narrow, &x.read).await?;
            // The trace streams while the capture is read: it must not be one of its files.
            refuse_inside(&x.perfetto, &captures)?;
            let written = trace_export::write(&ctx, &captures, &x.perfetto, !x.no_redact).await?;
            eprintln!(
                "export: {} calls as slices, {} intervals of lost calls, {} wakeup arrows: {}",
                written.slices,
                written.lost_intervals,
                written.wakeups,
                x.perfetto.display()
            );
            Ok(())
        }
        Command::Scheduler(s) => {
            cluster::log_to_stderr();
            cluster::scheduler::run(s.bind).await
        }
        Command::Executor(e) => {
            cluster::log_to_stderr();
            let tasks = e.tasks.map_or_else(
                || std::thread::available_parallelism().map_or(1, |n| n.get()),
                |n| n.get(),
            );
            cluster::executor::run(cluster::executor::Options {
                scheduler: e.scheduler,
                bind: e.bind,
                flight_port: e.port,
                grpc_port: e.grpc_port,
                work_dir: e.work_dir,
                tasks,
            })
            .await
        }
        Command::Diff(d) => {
            if d.baseline == d.incident {
                anyhow::bail!("diff: the baseline and the incident are the same capture");
            }
            let both = open(
                &[d.baseline.clone(), d.incident.clone()],
                &d.narrow,
                &d.read,
            )
            .await?;
            let windows: Vec<_> = both
                .captures
                .iter()
                .zip(&both.narrows)
                .map(|(c, n)| (c.name(), n.since, n.until))
                .collect();
            let (schema, batches) = diff::run(
                &both.ctx,
                &both.captures[0].name(),
                &both.captures[1].name(),
                d.limit,
                &windows,
            )
            .await?;
            emit(&d.out, &schema, &batches)
        }
    }
}

/// Checks the captures and registers their tables. Each file that `--skip-bad-files`
/// leaves out is named on stderr, with what is wrong with it.
pub async fn open(paths: &[PathBuf], narrow: &NarrowArgs, read: &ReadArgs) -> Result<Opened> {
    if read.cluster.is_some() && !read.debug_dirs.is_empty() {
        anyhow::bail!(
            "--debug-dir names frames from this machine's files, which a cluster's executors \
             do not see; run without --cluster"
        );
    }
    let mut roots: Vec<(String, Location)> = Vec::new();
    for path in paths {
        let root = Location::parse(path)?;
        let identity = root.identity();
        if let Some((_, first)) = roots.iter().find(|(id, _)| *id == identity) {
            anyhow::bail!(
                "capture {} is given twice (as {} too); each capture counts once",
                root.name(),
                first.name()
            );
        }
        roots.push((identity, root));
    }
    let mut captures = Vec::new();
    for (_, root) in roots {
        match Capture::open(root, read.skip_bad_files).await {
            Ok(c) => captures.push(c),
            Err(e @ capture::CaptureError::NothingReadable { .. }) => {
                if let capture::CaptureError::NothingReadable { skipped, .. } = &e {
                    warn_skipped(skipped);
                }
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        }
    }
    for c in &captures {
        warn_skipped(c.skipped());
    }
    if let Some(scheduler) = &read.cluster {
        cluster::client::ready(scheduler, read.cluster_wait).await?;
    }
    let (ctx, narrows) = tables::context(&captures, narrow, read).await?;
    Ok(Opened {
        ctx,
        captures,
        narrows,
    })
}

/// Refuses an output file inside a local capture: written while the capture is read, it
/// could empty one of the files being read, or be taken for part of the capture later.
fn refuse_inside(output: &Path, captures: &[Capture]) -> Result<()> {
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(dir) = dir.canonicalize() else {
        return Ok(()); // Creating the file will say what is wrong with the directory.
    };
    for c in captures {
        if let Location::Local(root) = c.location()
            && let Ok(root) = root.canonicalize()
            && dir.starts_with(&root)
        {
            anyhow::bail!(
                "output {}: inside capture {}; write it elsewhere",
                output.display(),
                c.name()
            );
        }
    }
    Ok(())
}

fn warn_skipped(files: &[capture::BadFile]) {
    for bad in files {
        eprintln!("warning: skipped {bad}");
    }
}

/// The captures, checked, and a session over their tables.
pub struct Opened {
    pub ctx: SessionContext,
    pub captures: Vec<Capture>,
    /// Each capture's narrowing, with times resolved.
    pub narrows: Vec<narrow::Narrow>,
}

/// Runs SQL to completion, with a spinner on a terminal when it takes a while.
pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<(Schema, Vec<RecordBatch>)> {
    let spinner = spinner::Spinner::start();
    // Queries only: no COPY, CREATE, SET or other statement that writes or changes state,
    // since analyze often runs as root.
    let options = datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = ctx
        .sql_with_options(sql, options)
        .await
        .map_err(tables::sql_error)?;
    let schema = df.schema().as_arrow().clone();
    let batches = df.collect().await.map_err(tables::sql_error)?;
    spinner.finish();
    Ok((schema, batches))
}

/// Writes results. Output meant to be shared (Markdown, or a file) has its secrets masked
/// unless `--no-redact`.
fn emit(out: &OutputArgs, schema: &Schema, batches: &[RecordBatch]) -> Result<()> {
    let shared = out.format == output::Format::Markdown || out.output.is_some();
    let masked;
    let (schema, batches) = if shared && !out.no_redact {
        masked = redact::batches(schema, batches)?;
        (&masked.0, masked.1.as_slice())
    } else {
        (schema, batches)
    };
    match &out.output {
        Some(path) => {
            let mut w = BufWriter::new(create(path)?);
            output::write(&mut w, out.format, schema, batches)?;
            w.flush()
                .with_context(|| format!("cannot write {}", path.display()))
        }
        None => {
            let mut w = std::io::stdout().lock();
            output::write(&mut w, out.format, schema, batches)?;
            w.flush().context("cannot write to stdout")
        }
    }
}

/// A file for results: they hold data from a capture, so it is private (0600), and never
/// where another user could redirect it ([`private_file`]).
pub fn create(path: &Path) -> Result<File> {
    Ok(private_file::create(path)?)
}
