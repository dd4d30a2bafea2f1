//! Registers a capture's tables with DataFusion: every table over every capture, with a
//! `capture` column naming the capture each row came from, narrowed before any SQL runs.
use std::sync::Arc;

use crate::{
    capture::Capture,
    cli::{NarrowArgs, ReadArgs},
    cluster,
    constant_keys::ConstantKeys,
    files::TableFile,
    location::Location,
    narrow::Narrow,
    partitions, planner, udfs, unmatched,
};
use anyhow::{Context as _, Result};
use datafusion::{
    arrow::{
        array::{Array, Int64Array},
        datatypes::{DataType, Field, Schema, SchemaRef},
    },
    catalog::TableProvider,
    datasource::{
        file_format::parquet::ParquetFormat,
        listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl},
    },
    error::DataFusionError,
    execution::SessionStateBuilder,
    logical_expr::{Expr, cast, col, lit},
    prelude::{DataFrame, SessionConfig, SessionContext},
    scalar::ScalarValue,
};
use tracepost_schema::{
    FILE_EXTENSION, OLDEST_SCHEMA_VERSION, SCHEMA_VERSION, TABLES, aggregates, capture, processes,
    schema_of, schema_of_version, syscalls,
};

/// The column every table gains, naming the capture a row came from.
pub const CAPTURE_COLUMN: &str = "capture";

/// The column the `capture` table gains: how many files `--skip-bad-files` left out of
/// that capture, so that anything stating completeness can say so.
pub const SKIPPED_FILES_COLUMN: &str = "skipped_files";

/// A session with every table registered, narrowed as asked, and each capture's narrowing
/// resolved to absolute times (`+30s` counts from each capture's own start).
pub async fn context(
    captures: &[Capture],
    narrow: &NarrowArgs,
    read: &ReadArgs,
) -> Result<(SessionContext, Vec<Narrow>)> {
    let cluster = read.cluster.as_deref();
    let name_frames = crate::frames::udf(&read.debug_dirs)?;
    let ctx = session(cluster)?;
    for c in captures {
        if let Location::Remote(r) = c.location() {
            ctx.register_object_store(&r.base, r.store.clone());
        }
    }
    let relative = narrow.since.as_deref().is_some_and(|s| s.starts_with('+'))
        || narrow.until.as_deref().is_some_and(|s| s.starts_with('+'));
    let paths = captures
        .iter()
        .map(|c| {
            partitions::of(&c.name())
                .with_context(|| format!("capture {}", crate::output::visible(&c.name())))
        })
        .collect::<Result<Vec<_>>>()?;
    let keys = partition_keys(&paths);
    // Per table: the frames of the captures that have it, and an empty stand-in from one
    // that lacks it, for when none has it.
    let mut unions: Vec<(&str, Vec<DataFrame>, Option<DataFrame>)> =
        TABLES.iter().map(|t| (*t, Vec::new(), None)).collect();
    let mut narrows = Vec::new();
    let mut found = Vec::new();
    // Whether any capture has a process that `--pid` and `--comm` both keep.
    let mut both = false;
    for (c, values) in captures.iter().zip(&paths) {
        let mut frames = Vec::new();
        for table in TABLES {
            let absent = c.files(table).is_empty();
            let unknown_row = table == capture::TABLE && absent && !c.skipped().is_empty();
            let frame = if unknown_row {
                if cluster.is_some() {
                    // Measured: a union of three or more captures with this row never
                    // finished on a Ballista 55 cluster.
                    anyhow::bail!(
                        "capture {}: its capture table was skipped, and the row that stands \
                         for it cannot run on a cluster; run without --cluster",
                        c.name()
                    );
                }
                // Its `capture` files were skipped: a row of NULLs still carries the
                // capture's name and what was skipped, so the loss is not silent.
                unknown_capture_row(&ctx)?
            } else {
                table_frame(&ctx, c, table, cluster.is_none()).with_context(|| {
                    format!(
                        "capture {}: cannot read table {table}",
                        crate::output::visible(&c.name())
                    )
                })?
            };
            let mut df = frame
                .with_column(CAPTURE_COLUMN, lit(c.name()))
                .map_err(sql_error)?;
            if table == capture::TABLE {
                df = df
                    .with_column(SKIPPED_FILES_COLUMN, lit(c.skipped().len() as i64))
                    .map_err(sql_error)?;
            }
            // A table's own column of that name keeps its meaning: `capture.host` is
            // the host name the recorder saw, whatever the directory says.
            let schema = schema_of(table).expect("TABLES have schemas");
            for key in keys.iter().filter(|k| schema.field_with_name(k).is_err()) {
                let value = values
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone());
                df = df
                    .with_column(key, lit(ScalarValue::Utf8(value)))
                    .map_err(sql_error)?;
            }
            // A table the capture lacks adds no rows: it joins the union only if no
            // capture has the table (an empty scan in a union of three or more never
            // finished on a Ballista 55 cluster).
            let absent = absent && !unknown_row;
            frames.push((table, df, absent));
        }
        let frame = |name: &str| {
            frames
                .iter()
                .find(|(t, _, _)| *t == name)
                .map(|(_, df, _)| df.clone())
                .expect("every table has a frame")
        };
        let start_ns = if relative {
            let start = earliest_start(frame(capture::TABLE)).await?;
            if start.is_none() {
                anyhow::bail!(
                    "capture {}: --since/--until +DUR count from when the capture began, and \
                     it has no capture row to say when; give an absolute time",
                    c.name()
                );
            }
            start
        } else {
            None
        };
        let mut n = Narrow::new(narrow, start_ns)?;
        // Bounds of one kind that leave no time were refused; a relative one against an
        // absolute one counts from each capture's start, so the window can be empty in one
        // capture only. An empty answer is then said to be one.
        if let (Some(since), Some(until)) = (n.since, n.until)
            && since >= until
        {
            crate::say!(
                "warning: capture {}: --since {} is not before --until {} in it: its window \
                 holds no time, and it answers nothing",
                c.name(),
                narrow.since.as_deref().unwrap_or_default(),
                narrow.until.as_deref().unwrap_or_default()
            );
        }
        if !n.pids.is_empty() || !n.comms.is_empty() {
            found.push(unmatched::find(frame, &n.pids, &n.comms).await?);
        }
        if !n.comms.is_empty() {
            n.comm_pids =
                pids_named(frame(processes::TABLE), frame(syscalls::TABLE), &n.comms).await?;
            let (renamed, counted) = counted_under_two_names(
                frame(processes::TABLE),
                frame(syscalls::TABLE),
                frame(aggregates::TABLE),
                &n.comms,
                &n.comm_pids,
            )
            .await?;
            both |= n.comm_pids.iter().any(|p| n.pids.contains(p));
            if renamed > 0 {
                crate::say!(
                    "warning: capture {}: --comm {}: {renamed} process(es) of that name also \
                     ran under another (an exec or a rename), and the {counted} calls the \
                     kernel only counted for them carry no name: they are all kept",
                    c.name(),
                    n.comms.join(", ")
                );
            }
        }
        for ((table, df, absent), (_, present, stand_in)) in frames.into_iter().zip(&mut unions) {
            let df = match n.filter(table) {
                Some(filter) => df.filter(filter).map_err(sql_error)?,
                None => df,
            };
            let df = match &name_frames {
                Some(f) if table == syscalls::TABLE => df
                    .with_column(
                        syscalls::USER_STACK,
                        f.call(vec![col(syscalls::USER_STACK)]),
                    )
                    .map_err(sql_error)?,
                _ => df,
            };
            match absent {
                true => _ = stand_in.get_or_insert(df),
                false => present.push(df),
            }
        }
        narrows.push(n);
    }
    if let Some(n) = narrows.first()
        && !found.is_empty()
    {
        let names: Vec<String> = captures
            .iter()
            .map(|c| crate::output::visible(&c.name()).into_owned())
            .collect();
        unmatched::warn(&found, &n.pids, &n.comms, &narrow.comm, &names);
        if !n.pids.is_empty() && !n.comms.is_empty() && !both {
            unmatched::warn_apart(&found, &n.pids, &narrow.comm, &names);
        }
    }
    for (table, present, stand_in) in unions {
        let mut frames = present.into_iter();
        let first = frames.next().or(stand_in).expect("at least one capture");
        let df = frames
            .try_fold(first, |u, df| u.union(df))
            .map_err(sql_error)?;
        ctx.register_table(table, df.into_view())
            .with_context(|| format!("cannot register table {table}"))?;
    }
    Ok((ctx, narrows))
}

/// Every `key=value` key of the captures' paths, in order of first appearance: a column
/// of every table, NULL for captures without it.
fn partition_keys(paths: &[Vec<(String, String)>]) -> Vec<String> {
    let mut keys: Vec<String> = Vec::new();
    for (key, _) in paths.iter().flatten() {
        if !keys.contains(key) {
            keys.push(key.clone());
        }
    }
    keys
}

/// A session whose operators that can spill or refuse (sorts, joins, aggregations) share
/// half of the machine's memory: a query that would need more ends in an error line
/// instead of taking the machine down with it. With a cluster, it plans here and runs there.
fn session(cluster: Option<&str>) -> Result<SessionContext> {
    let total = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        })
        .map_or(8 << 30, |kb| kb * 1024);
    let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
        .with_memory_limit(total / 2, 1.0)
        .build_arc()
        .map_err(sql_error)?;
    let Some(scheduler) = cluster else {
        let ctx =
            SessionContext::new_with_config_rt(planner::configure(SessionConfig::new()), runtime);
        ctx.add_optimizer_rule(Arc::new(ConstantKeys));
        udfs::register(&ctx);
        return Ok(ctx);
    };
    let state = SessionStateBuilder::new()
        .with_default_features()
        .with_config(cluster::client::config())
        .with_runtime_env(runtime)
        .build();
    let state = cluster::client::upgrade(state, scheduler).map_err(sql_error)?;
    // Without `ConstantKeys`: Ballista 55's scheduler could not read back the plans it
    // makes of `diff` ("No field named processes.comm").
    Ok(SessionContext::new_with_state(state))
}

/// The pids of the processes, or of threads, with one of these names: `aggregates` has no
/// names, so `--comm` keeps its rows through these.
async fn pids_named(
    processes: DataFrame,
    syscalls: DataFrame,
    comms: &[String],
) -> Result<Vec<i32>> {
    let names: Vec<Expr> = comms.iter().map(|c| lit(c.as_str())).collect();
    let mut pids = pids_where(processes, syscalls, |_, comm| {
        comm.in_list(names.clone(), false)
    })
    .await?;
    pids.sort_unstable();
    Ok(pids)
}

/// Of the processes `--comm` keeps (`pids`), those that also had a name not asked for,
/// and the calls `aggregates` counted for them: those calls cannot be split by name, so
/// the answer keeps them all, and says so. How many processes, and how many calls.
/// Its own pass over the names: one pass grouping every row by pid and name was slower
/// (`--comm` on 20M calls 0.26 s against 0.20 s).
async fn counted_under_two_names(
    processes: DataFrame,
    syscalls: DataFrame,
    aggregates: DataFrame,
    comms: &[String],
    pids: &[i32],
) -> Result<(usize, i64)> {
    if pids.is_empty() {
        return Ok((0, 0));
    }
    let names: Vec<Expr> = comms.iter().map(|c| lit(c.as_str())).collect();
    let kept: Vec<Expr> = pids.iter().map(|p| lit(*p)).collect();
    let renamed = pids_where(processes, syscalls, |pid, comm| {
        pid.in_list(kept.clone(), false)
            .and(comm.in_list(names.clone(), true))
    })
    .await?;
    if renamed.is_empty() {
        return Ok((0, 0));
    }
    let batches = aggregates
        .filter(col(aggregates::PID).in_list(renamed.iter().map(|p| lit(*p)).collect(), false))
        .and_then(|d| {
            d.aggregate(
                vec![],
                vec![datafusion::functions_aggregate::expr_fn::sum(col(
                    aggregates::CALLS,
                ))],
            )
        })
        .map_err(sql_error)?
        .collect()
        .await
        .map_err(sql_error)?;
    let counted = batches
        .iter()
        .filter_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>())
        .flat_map(|a| a.iter().flatten())
        .sum::<i64>();
    Ok(if counted > 0 {
        (renamed.len(), counted)
    } else {
        (0, 0)
    })
}

/// The distinct pids of the `processes` and `syscalls` rows that `keep` (given their pid
/// and name columns) keeps.
async fn pids_where(
    processes: DataFrame,
    syscalls: DataFrame,
    keep: impl Fn(Expr, Expr) -> Expr,
) -> Result<Vec<i32>> {
    let pick = |df: DataFrame, pid: &str, comm: &str| -> Result<DataFrame> {
        df.filter(keep(col(pid), col(comm)))
            .and_then(|d| d.select(vec![col(pid).alias("pid")]))
            .map_err(sql_error)
    };
    let batches = pick(processes, processes::PID, processes::COMM)?
        .union(pick(syscalls, syscalls::PID, syscalls::COMM)?)
        .map_err(sql_error)?
        .distinct()
        .map_err(sql_error)?
        .collect()
        .await
        .map_err(sql_error)?;
    Ok(batches
        .iter()
        .filter_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int32Array>()
        })
        .flat_map(|a| a.iter().flatten())
        .collect())
}

/// When the earliest capture began, in nanoseconds since the epoch.
async fn earliest_start(captures: DataFrame) -> Result<Option<i64>> {
    let started = cast(col(capture::STARTED), DataType::Int64).alias(capture::STARTED);
    let batches = captures
        .select(vec![started])
        .map_err(sql_error)?
        .collect()
        .await
        .map_err(sql_error)?;
    let mut earliest: Option<i64> = None;
    for b in batches {
        if let Some(us) = b.column(0).as_any().downcast_ref::<Int64Array>() {
            for i in 0..us.len() {
                if us.is_valid(i) {
                    let ns = us.value(i).saturating_mul(1_000);
                    earliest = Some(earliest.map_or(ns, |e| e.min(ns)));
                }
            }
        }
    }
    Ok(earliest)
}

/// When a capture's kept calls begin and end (UTC ns), before `--pid`, `--comm` or a
/// window narrows it: what a rate's seconds begin at where `--max-size` deleted the oldest
/// files, and end at where the run never ended. Narrowed, they were one process's, and its
/// rates too high. The beginning is the earliest return of a kept call, not the earliest
/// entry: a shell's `wait4` entered at the start and kept for its late return put it
/// where the deleted files began, and the rates of what was kept four times too low.
pub async fn calls_span(
    ctx: &SessionContext,
    c: &Capture,
    views: bool,
) -> Result<(Option<i64>, Option<i64>)> {
    use datafusion::functions::core::expr_fn::coalesce;
    use datafusion::functions_aggregate::expr_fn::{max, min};
    let returned = col(syscalls::TS_NS) + coalesce(vec![col(syscalls::DURATION_NS), lit(0i64)]);
    let batches = table_frame(ctx, c, syscalls::TABLE, views)?
        .aggregate(vec![], vec![min(returned), max(col(syscalls::TS_NS))])
        .map_err(sql_error)?
        .collect()
        .await
        .map_err(sql_error)?;
    Ok((first_int(&batches, 0), first_int(&batches, 1)))
}

/// Column `i` of an aggregate's one row, if it has one and it is not NULL.
fn first_int(batches: &[datafusion::arrow::array::RecordBatch], i: usize) -> Option<i64> {
    let b = batches.iter().find(|b| b.num_rows() > 0)?;
    crate::sql_values::int64(b, i, 0)
}

/// The entry (UTC ns) of a capture's last kept call, before any narrowing.
pub async fn last_entry(ctx: &SessionContext, c: &Capture, views: bool) -> Result<Option<i64>> {
    last_entry_of(table_frame(ctx, c, syscalls::TABLE, views)?).await
}

/// The latest entry (UTC ns) among `calls`, rows of `syscalls`.
async fn last_entry_of(calls: DataFrame) -> Result<Option<i64>> {
    use datafusion::functions_aggregate::expr_fn::max;
    let batches = calls
        .aggregate(vec![], vec![max(col(syscalls::TS_NS))])
        .map_err(sql_error)?
        .collect()
        .await
        .map_err(sql_error)?;
    Ok(first_int(&batches, 0))
}

/// Each recorder run of a capture with a known start: (start, end), UTC ns; the end is
/// None for a run that did not finish (killed, or still recording).
pub async fn runs(
    ctx: &SessionContext,
    c: &Capture,
    views: bool,
) -> Result<Vec<(i64, Option<i64>)>> {
    let ns = |column| (cast(col(column), DataType::Int64) * lit(1_000i64)).alias(column);
    let batches = table_frame(ctx, c, capture::TABLE, views)?
        .filter(col(capture::STARTED).is_not_null())
        .map_err(sql_error)?
        .select(vec![ns(capture::STARTED), ns(capture::ENDED)])
        .map_err(sql_error)?
        .collect()
        .await
        .map_err(sql_error)?;
    let mut runs = Vec::new();
    for b in &batches {
        for row in 0..b.num_rows() {
            if let Some(start) = crate::sql_values::int64(b, 0, row) {
                runs.push((start, crate::sql_values::int64(b, 1, row)));
            }
        }
    }
    Ok(runs)
}

/// The calls a capture's recorders lost and counted in `aggregates` (`ring_full`,
/// `thread_table_full`), before any narrowing: what its capture rows' `lost_events` say
/// the whole capture holds. Narrowed by `--pid` or a window, the count was of that part,
/// and a whole capture read as one missing files.
pub async fn lost_counted(ctx: &SessionContext, c: &Capture, views: bool) -> Result<u64> {
    use datafusion::functions_aggregate::expr_fn::sum;
    let lost =
        col(aggregates::REASON).in_list(vec![lit("ring_full"), lit("thread_table_full")], false);
    let batches = table_frame(ctx, c, aggregates::TABLE, views)?
        .filter(lost)
        .map_err(sql_error)?
        .aggregate(
            vec![],
            vec![cast(sum(col(aggregates::CALLS)), DataType::Int64)],
        )
        .map_err(sql_error)?
        .collect()
        .await
        .map_err(sql_error)?;
    Ok(first_int(&batches, 0).unwrap_or(0).max(0) as u64)
}

/// Where each run of a capture that never ended (killed) and was followed by another run
/// into the same directory stopped recording: its last call's entry (UTC ns) before the
/// next run's start, or its start where it kept no call. Keyed by the run's start (UTC
/// ns). The capture's last call, which `calls_span` gives, is the last run's: taken for an
/// earlier killed run, it counted the gap and the next run's seconds again, and `diff`'s
/// rates came out 3.6 times too low.
pub async fn unfinished_run_ends(
    ctx: &SessionContext,
    c: &Capture,
    views: bool,
) -> Result<Vec<(i64, i64)>> {
    let mut starts = runs(ctx, c, views).await?;
    starts.sort_unstable();
    starts.dedup();
    let mut ends = Vec::new();
    for pair in starts.windows(2) {
        let [(start, None), (next, _)] = pair else {
            continue;
        };
        if next <= start {
            continue;
        }
        let calls = table_frame(ctx, c, syscalls::TABLE, views)?
            .filter(
                col(syscalls::TS_NS)
                    .gt_eq(lit(*start))
                    .and(col(syscalls::TS_NS).lt(lit(*next))),
            )
            .map_err(sql_error)?;
        ends.push((*start, last_entry_of(calls).await?.unwrap_or(*start)));
    }
    Ok(ends)
}

/// One table of one capture, over the files that passed their check, in the current
/// schema whatever version each file was written in. A table the capture lacks (recorded
/// before the table existed) is empty, so that queries naming it still run.
fn table_frame(
    ctx: &SessionContext,
    c: &Capture,
    table: &'static str,
    views: bool,
) -> Result<DataFrame> {
    let schema = schema_of(table).expect("TABLES have schemas");
    let mut union: Option<DataFrame> = None;
    for version in OLDEST_SCHEMA_VERSION..=SCHEMA_VERSION {
        // A file of no rows adds nothing to any answer, and each file a scan opens costs
        // it: a capture's `aggregates` and `processes` are often such files, and opening
        // them was a fifth of `errors` on two million calls. On one machine only
        // (`views`): the table then reads as the stand-in of no rows, `errors`' filter on
        // it folds to nothing and its union to one branch, and a Ballista 55 scheduler could
        // not read that plan back ("No field named max(comm)").
        let files: Vec<&TableFile> = c
            .files(table)
            .iter()
            .filter(|f| f.version == version && (f.rows > 0 || !views))
            .collect();
        if files.is_empty() {
            continue;
        }
        let file_schema = as_read(
            &schema_of_version(table, version).expect("known version"),
            views,
        );
        let df = ctx
            .read_table(listing(&files, file_schema)?)
            .map_err(sql_error)?;
        let df = if version == SCHEMA_VERSION {
            df
        } else {
            df.select(upgrade(table, &schema)).map_err(sql_error)?
        };
        union = Some(match union {
            None => df,
            Some(u) => u.union(df).map_err(sql_error)?,
        });
    }
    match union {
        Some(df) => Ok(df),
        None => no_rows(ctx, &as_read(&schema, views)),
    }
}

/// A table with no rows, on one machine and on a cluster alike: one row of NULLs behind a
/// filter that drops it. Not a MemTable, which a cluster cannot send to its executors, and
/// not `EmptyTable`: measured on a Ballista 55 cluster, a union over an aggregate of an
/// `EmptyTable` (`diff` of two captures that have no `processes` files, as `gen-capture`
/// writes them, or as captures from before a table existed) never finished. The
/// scheduler refused every task's report ("task metrics array size 9 does not equal with
/// the stage metrics array size 8": the executor's copy of the stage had one operator
/// more than the scheduler's), and every later job on that scheduler hung too. With this
/// stand-in the same jobs finish with one machine's rows. The filter is volatile so that
/// the optimizer cannot fold it back into an empty relation.
fn no_rows(ctx: &SessionContext, schema: &Schema) -> Result<DataFrame> {
    null_row(ctx, schema)?
        .filter(datafusion::functions::math::expr_fn::random().lt(lit(0.0)))
        .map_err(sql_error)
}

/// One row with every column of `schema` NULL, built from literals so that a cluster can
/// plan it too.
fn null_row(ctx: &SessionContext, schema: &Schema) -> Result<DataFrame> {
    let nulls = schema
        .fields()
        .iter()
        .map(|f| Ok(lit(ScalarValue::try_from(f.data_type())?).alias(f.name())))
        .collect::<Result<Vec<Expr>>>()?;
    ctx.read_empty()
        .and_then(|df| df.select(nulls))
        .map_err(sql_error)
}

/// One `capture` row with every column NULL.
fn unknown_capture_row(ctx: &SessionContext) -> Result<DataFrame> {
    null_row(ctx, &as_read(&capture::schema(), true))
}

/// The columns of a version-1 file in the current schema: microsecond timestamps, and
/// `syscalls.ts_ns` from the nanoseconds that version 1 kept in `ts`.
fn upgrade(table: &str, current: &Schema) -> Vec<Expr> {
    current
        .fields()
        .iter()
        .map(|f| {
            if table == syscalls::TABLE && f.name() == syscalls::TS_NS {
                cast(col(syscalls::TS), DataType::Int64).alias(f.name())
            } else if matches!(f.data_type(), DataType::Timestamp(..)) {
                cast(col(f.name()), f.data_type().clone()).alias(f.name())
            } else {
                col(f.name())
            }
        })
        .collect()
}

/// The contract schema as the tables are read: strings as `Utf8View` where `views`.
/// DataFusion reads views only where it infers a file's schema, and the tables give theirs.
/// Read as plain `Utf8`, every string is copied out of its dictionary and its nulls padded
/// one by one: on 100M events that was half of `errors` and of `file-io` (BENCHMARKS.md,
/// "Strings read as views"). Not on a cluster: there Ballista 55 planned the report's
/// `CASE ... concat(...)` over views as `Utf8` and its executors returned views, so the
/// report failed.
fn as_read(schema: &Schema, views: bool) -> SchemaRef {
    if !views {
        return Arc::new(schema.clone());
    }
    let fields = schema.fields().iter().map(|f| match f.data_type() {
        DataType::Utf8 => Arc::new(f.as_ref().clone().with_data_type(DataType::Utf8View)),
        _ => f.clone(),
    });
    Arc::new(Schema::new_with_metadata(
        fields.collect::<Vec<Arc<Field>>>(),
        schema.metadata().clone(),
    ))
}

/// A table over exactly these files. Each is named by its own URL, never by a pattern, so
/// a capture directory called `inc[7]` or `what?` reads its own files and no others.
fn listing(files: &[&TableFile], schema: SchemaRef) -> Result<Arc<dyn TableProvider>> {
    let urls = files
        .iter()
        .map(|f| {
            // The store's own message repeats the path, newlines and all: one line instead.
            ListingTableUrl::try_new(f.url.clone(), None).map_err(|_| {
                anyhow::anyhow!(
                    "{}: DataFusion cannot read a file at this path (a tab, a newline or \
                     another character object-store paths refuse); rename the capture, or \
                     give it through a symlink with a plain name",
                    crate::output::visible(&f.name)
                )
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
        .with_file_extension(format!(".{FILE_EXTENSION}"));
    // The contract schema, not one inferred from a file: files written before a column was
    // added then read that column as NULL instead of failing.
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    Ok(Arc::new(ListingTable::try_new(config)?))
}

/// DataFusion's errors, reduced to one line for the terminal.
pub fn sql_error(err: DataFusionError) -> anyhow::Error {
    let first = |e: &DataFusionError| e.to_string().lines().next().unwrap_or_default().to_string();
    let line = first(&err);
    // A wrapper ("Optimizer rule 'simplify_expressions' failed") says where, its root
    // cause what: a bad cast or time found while planning.
    let root = first(err.find_root());
    if root.is_empty() || line.contains(&root) {
        anyhow::anyhow!("SQL: {line}")
    } else {
        anyhow::anyhow!("SQL: {line}: {root}")
    }
}
