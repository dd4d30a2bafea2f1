//! A timeline of the captures in Chrome's JSON trace event format, which ui.perfetto.dev
//! and Chrome's trace viewer open: one slice per recorded call on its thread, named by the
//! syscall, and the intervals whose calls were lost marked on a track of their own. With
//! `record --sched`, a flow arrow runs from the thread that woke a call to the call, at
//! the moment it woke it, and each slice's arguments carry the call's split.
//!
//! Rows stream from the query to the file, so memory stays flat however large the
//! capture; the viewers' JSON importers are what limit the size (see the README).
use std::{
    collections::BTreeMap,
    io::{BufWriter, Write},
    path::Path,
};

use anyhow::{Context as _, Result};
use datafusion::{
    arrow::{
        array::{Array, AsArray, RecordBatch},
        datatypes::{Int32Type, Int64Type},
    },
    prelude::SessionContext,
};
use futures::StreamExt as _;
use serde_json::{Map, Value, json};

use crate::{capture::Capture, redact, tables::sql_error};

/// Each capture's pids and tids move into a range of their own, so two hosts' pid 1234 are
/// two processes. Linux pids stay below 2^22.
const PID_RANGE: i64 = 10_000_000;
/// The track of a capture's lost calls, at the top of its range.
const LOST_TRACK: i64 = PID_RANGE - 1;

/// Where the trace's time starts: the earliest call or lost interval exported, in
/// nanoseconds since the epoch. Times in the file count from it, so that captures of
/// several hosts line up and the JSON's microseconds keep nanosecond precision.
const ORIGIN: &str = "SELECT min(t) FROM (SELECT min(ts_ns) AS t FROM syscalls UNION ALL \
     SELECT CAST(min(interval_start) AS BIGINT) * 1000 FROM aggregates WHERE reason = 'ring_full')";

/// The calls, with every column a slice's arguments show.
fn calls_sql(origin: i64) -> String {
    format!(
        "SELECT capture, pid, tid, comm, syscall, ts_ns - {origin} AS t, \
         duration_ns, ret, errno, fd, fd_path, path, addr, bytes, \
         blocked_ns, runq_ns, oncpu_ns, waker_pid, waker_tid, waker_kind, kernel_stack, user_stack, \
         woken_ts_ns - {origin} AS woken_t FROM syscalls"
    )
}

/// The intervals whose calls the ring buffer had no room for, per capture.
fn lost_sql(origin: i64) -> String {
    format!(
        "SELECT capture, CAST(interval_start AS BIGINT) * 1000 - {origin} AS t, \
         (CAST(interval_end AS BIGINT) - CAST(interval_start AS BIGINT)) * 1000 AS d, \
         sum(calls) AS calls FROM aggregates WHERE reason = 'ring_full' GROUP BY 1, 2, 3"
    )
}

/// What was written, for the summary line.
pub struct Written {
    pub slices: u64,
    pub lost_intervals: u64,
    /// Wakeup arrows (`record --sched`).
    pub wakeups: u64,
}

/// Writes the trace to `path` (a private file), masking secrets unless `redact` is false.
pub async fn write(
    ctx: &SessionContext,
    captures: &[Capture],
    path: &Path,
    redact: bool,
) -> Result<Written> {
    // Named by its format, as a report is: a trace of JSON was written to `t.csv` without
    // a word (helper-97). (`-` has a line of its own, from the file's writer.)
    let json = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if !json && path.as_os_str() != "-" {
        anyhow::bail!(
            "export --perfetto {}: give a file ending in .json (the trace is JSON)",
            path.display()
        );
    }
    let index: BTreeMap<String, i64> = captures
        .iter()
        .enumerate()
        .map(|(i, c)| (c.name(), i as i64))
        .collect();
    let several = captures.len() > 1;
    // Written beside `path` and renamed over it once whole: an export that fails or is
    // interrupted leaves an existing file as it was.
    let mut pending = crate::private_file::Pending::new(path)?;
    let mut out = BufWriter::new(pending.file());
    let io = |e: std::io::Error| {
        anyhow::Error::new(e).context(format!("cannot write {}", path.display()))
    };
    let origin_ns = origin(ctx).await?;
    let origin_text = origin_ns.map(|ns| {
        chrono::DateTime::from_timestamp_nanos(ns)
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    });
    let origin_ns = origin_ns.unwrap_or(0);
    write!(
        out,
        "{{\"displayTimeUnit\":\"ns\",\"metadata\":{{\"source\":\"tracepost\",\"origin\":{}}},\"traceEvents\":[",
        json!(origin_text)
    )
    .map_err(io)?;
    let mut first = true;
    let mut event = |out: &mut BufWriter<_>, value: Value| -> Result<()> {
        if !first {
            out.write_all(b",\n").map_err(io)?;
        }
        first = false;
        serde_json::to_writer(&mut *out, &value).context("cannot encode an event")?;
        Ok(())
    };
    // (capture, pid) -> name, (capture, tid) -> (pid, name): the metadata events.
    let mut processes: BTreeMap<(i64, i64), String> = BTreeMap::new();
    let mut threads: BTreeMap<(i64, i64), (i64, String)> = BTreeMap::new();
    let mut slices = 0u64;
    let mut wakeups = 0u64;
    let mut stream = ctx
        .sql(&calls_sql(origin_ns))
        .await
        .map_err(sql_error)?
        .execute_stream()
        .await
        .map_err(sql_error)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(sql_error)?;
        // Which capture each row is from, read before masking can change its name.
        let capture = batch
            .column_by_name("capture")
            .expect("selected above")
            .clone();
        let capture = capture.as_ref();
        let batch = masked(batch, redact)?;
        let col = |name: &str| batch.column_by_name(name).expect("selected above");
        let (comm, syscall) = (col("comm"), col("syscall"));
        let pid = col("pid").as_primitive::<Int32Type>();
        let tid = col("tid").as_primitive::<Int32Type>();
        let t = col("t").as_primitive::<Int64Type>();
        let duration = col("duration_ns").as_primitive::<Int64Type>();
        let waker_pid = col("waker_pid").as_primitive::<Int32Type>();
        let waker_tid = col("waker_tid").as_primitive::<Int32Type>();
        let woken = col("woken_t").as_primitive::<Int64Type>();
        let waker_kind = col("waker_kind");
        for row in 0..batch.num_rows() {
            let c = text(capture, row)
                .and_then(|n| index.get(n))
                .copied()
                .unwrap_or(0);
            let (p, th) = (
                c * PID_RANGE + i64::from(pid.value(row)),
                c * PID_RANGE + i64::from(tid.value(row)),
            );
            let name = text(comm, row).unwrap_or_default();
            if pid.value(row) == tid.value(row) || !processes.contains_key(&(c, p)) {
                processes.insert((c, p), name.to_string());
            }
            threads.insert((c, th), (p, name.to_string()));
            let mut e = Map::new();
            e.insert("name".into(), json!(text(syscall, row).unwrap_or("?")));
            e.insert("cat".into(), json!("syscall"));
            e.insert("pid".into(), json!(p));
            e.insert("tid".into(), json!(th));
            e.insert("ts".into(), json!(micros(t.value(row))));
            if duration.is_valid(row) {
                e.insert("ph".into(), json!("X"));
                e.insert("dur".into(), json!(micros(duration.value(row))));
            } else {
                // It never returned (exit, a capture that stopped first): an instant.
                e.insert("ph".into(), json!("i"));
                e.insert("s".into(), json!("t"));
            }
            e.insert("args".into(), Value::Object(arguments(&batch, row)));
            event(&mut out, Value::Object(e))?;
            slices += 1;
            // The arrow leaves the waker's slice that encloses the moment (its syscall,
            // where it is recorded) and lands in this call's slice.
            // Only a thread's: a softirq's thread may be one it merely interrupted.
            let by_thread = text(waker_kind, row) == Some("thread");
            if by_thread
                && waker_tid.is_valid(row)
                && waker_pid.is_valid(row)
                && woken.is_valid(row)
            {
                wakeups += 1;
                let at = micros(woken.value(row));
                let (wp, wt) = (
                    c * PID_RANGE + i64::from(waker_pid.value(row)),
                    c * PID_RANGE + i64::from(waker_tid.value(row)),
                );
                event(
                    &mut out,
                    json!({"name": "wakeup", "cat": "wakeup", "ph": "s", "id": wakeups,
                           "pid": wp, "tid": wt, "ts": at}),
                )?;
                event(
                    &mut out,
                    json!({"name": "wakeup", "cat": "wakeup", "ph": "f", "bp": "e",
                           "id": wakeups, "pid": p, "tid": th, "ts": at}),
                )?;
            }
        }
    }
    let lost = ctx
        .sql(&lost_sql(origin_ns))
        .await
        .map_err(sql_error)?
        .collect()
        .await
        .map_err(sql_error)?;
    let mut lost_intervals = 0u64;
    let mut with_loss = std::collections::BTreeSet::new();
    for batch in &lost {
        let capture = batch.column(0);
        let (t, d) = (
            batch.column(1).as_primitive::<Int64Type>(),
            batch.column(2).as_primitive::<Int64Type>(),
        );
        let calls = batch.column(3).as_primitive::<Int64Type>();
        for row in 0..batch.num_rows() {
            let c = text(capture, row)
                .and_then(|n| index.get(n))
                .copied()
                .unwrap_or(0);
            let track = c * PID_RANGE + LOST_TRACK;
            with_loss.insert(c);
            event(
                &mut out,
                json!({"name": format!("{} calls lost", calls.value(row)), "cat": "lost",
                       "ph": "X", "pid": track, "tid": track,
                       "ts": micros(t.value(row)), "dur": micros(d.value(row)),
                       "args": {"calls": calls.value(row), "reason": "ring buffer full"}}),
            )?;
            lost_intervals += 1;
        }
    }
    for c in captures {
        let i = index[&c.name()];
        let suffix = if several {
            let name = c.name();
            let name = if redact {
                redact::capture_name(&name).into_owned()
            } else {
                name
            };
            format!(" @ {name}")
        } else {
            String::new()
        };
        for ((_, p), name) in processes.range((i, i64::MIN)..=(i, i64::MAX)) {
            event(
                &mut out,
                json!({"ph": "M", "name": "process_name", "pid": p,
                       "args": {"name": format!("{name} {}{suffix}", p - i * PID_RANGE)}}),
            )?;
        }
        for ((_, th), (p, name)) in threads.range((i, i64::MIN)..=(i, i64::MAX)) {
            event(
                &mut out,
                json!({"ph": "M", "name": "thread_name", "pid": p, "tid": th,
                       "args": {"name": format!("{name} {}", th - i * PID_RANGE)}}),
            )?;
        }
        if with_loss.contains(&i) {
            let track = i * PID_RANGE + LOST_TRACK;
            event(
                &mut out,
                json!({"ph": "M", "name": "process_name", "pid": track,
                       "args": {"name": format!("calls lost{suffix}")}}),
            )?;
        }
    }
    out.write_all(b"]}\n").map_err(io)?;
    out.flush().map_err(io)?;
    drop(out);
    pending.commit()?;
    Ok(Written {
        slices,
        lost_intervals,
        wakeups,
    })
}

/// Nanoseconds as the format's microseconds, to the nanosecond.
fn micros(ns: i64) -> f64 {
    ns as f64 / 1000.0
}

/// The slice's arguments: what the call returned and touched, NULLs left out.
fn arguments(batch: &RecordBatch, row: usize) -> Map<String, Value> {
    let mut args = Map::new();
    for name in [
        "ret",
        "errno",
        "fd",
        "fd_path",
        "path",
        "addr",
        "bytes",
        "blocked_ns",
        "runq_ns",
        "oncpu_ns",
        "waker_tid",
        "waker_kind",
        "kernel_stack",
        "user_stack",
    ] {
        let column = batch.column_by_name(name).expect("selected above");
        if column.is_null(row) {
            continue;
        }
        let value = if let Some(a) = column.as_primitive_opt::<Int64Type>() {
            json!(a.value(row))
        } else if let Some(a) = column.as_primitive_opt::<Int32Type>() {
            json!(a.value(row))
        } else if let Some(t) = text(column, row) {
            json!(t)
        } else {
            continue;
        };
        args.insert(name.into(), value);
    }
    args
}

fn masked(batch: RecordBatch, redact: bool) -> Result<RecordBatch> {
    if !redact {
        return Ok(batch);
    }
    let (_, mut batches) = redact::batches(&batch.schema(), &[batch])?;
    Ok(batches.pop().expect("one batch in, one out"))
}

/// The trace's origin, in nanoseconds since the epoch; None when nothing is exported.
async fn origin(ctx: &SessionContext) -> Result<Option<i64>> {
    let batches = ctx
        .sql(ORIGIN)
        .await
        .map_err(sql_error)?
        .collect()
        .await
        .map_err(sql_error)?;
    Ok(batches.iter().find(|b| b.num_rows() > 0).and_then(|b| {
        let a = b.column(0).as_primitive::<Int64Type>();
        a.is_valid(0).then(|| a.value(0))
    }))
}

/// A text cell, whichever of Arrow's string types the plan chose; None when NULL.
fn text(array: &dyn Array, row: usize) -> Option<&str> {
    if array.is_null(row) {
        return None;
    }
    if let Some(a) = array.as_string_opt::<i32>() {
        Some(a.value(row))
    } else if let Some(a) = array.as_string_view_opt() {
        Some(a.value(row))
    } else {
        array.as_string_opt::<i64>().map(|a| a.value(row))
    }
}
