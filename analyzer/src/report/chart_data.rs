//! The numbers behind the report's charts, binned in SQL: the binning is chosen by
//! [`axes`](super::axes) from the capture's length, so a 100 ms capture and a day-long one
//! both get 80 to 200 bins.
use anyhow::Result;
use datafusion::{
    arrow::{
        array::{Array, ArrayRef, AsArray, RecordBatch},
        compute::cast,
        datatypes::{DataType, Float64Type, Int64Type},
    },
    prelude::SessionContext,
};

use super::axes;
use crate::run_sql;

/// Syscalls that get a latency histogram: those whose work took the most time.
const HISTOGRAMS: usize = 4;

/// The shortest time axis drawn: 1 ms bins. Bins of nanoseconds would turn one call into a
/// rate of millions per second.
const MIN_SPAN_NS: u64 = 100_000_000;

/// The time axis shared by the time charts.
pub struct TimeAxis {
    pub span_ns: u64,
    pub bin_ns: u64,
    pub bins: usize,
    /// The first call, in UTC, which `+0` stands for.
    pub start: String,
}

pub enum Chart {
    /// Calls per time bin and log2 latency bucket.
    Heatmap {
        title: String,
        time: TimeAxis,
        /// (bin, bucket, calls)
        cells: Vec<(usize, u32, u64)>,
    },
    /// Per-second rates per time bin, one line per series.
    Rates {
        title: String,
        time: TimeAxis,
        series: Vec<(String, Vec<f64>)>,
    },
    /// Calls per log2 latency bucket.
    Histogram {
        title: String,
        /// (bucket, calls)
        buckets: Vec<(u32, u64)>,
    },
}

/// The bucket a call of `duration_ns` falls in, in SQL: bucket `b` holds `[2^b, 2^(b+1))`.
const BUCKET_SQL: &str =
    "least(CAST(floor(log2(CAST(greatest(duration_ns, 0) AS DOUBLE) + 1)) AS BIGINT), 34)";

pub async fn all(ctx: &SessionContext) -> Result<Vec<Chart>> {
    let (_, span) = run_sql(
        ctx,
        "SELECT min(ts_ns), max(ts_ns), CAST(min(ts) AS VARCHAR) FROM syscalls",
    )
    .await?;
    // As integers: nanoseconds since 1970 are past what a double holds exactly.
    let (first, last, start) = match (
        integers(&span, 0)?.first(),
        integers(&span, 1)?.first(),
        strings(&span, 2)?.first(),
    ) {
        (Some(&Some(a)), Some(&Some(b)), Some(s)) if b >= a => (a, b, s.clone()),
        _ => return Ok(Vec::new()),
    };
    // A capture of one call, or of calls within 100 ms, gets a 100 ms axis.
    let span_ns = ((last - first) as u64).max(MIN_SPAN_NS);
    let bin_ns = axes::bin_ns(span_ns);
    let bins = (span_ns / bin_ns + 1) as usize;
    let time = || TimeAxis {
        span_ns,
        bin_ns,
        bins,
        start: format!(
            "{} UTC",
            start
                .trim_end_matches('Z')
                .trim_end_matches("+00:00")
                .replace('T', " ")
        ),
    };
    let bin_sql = format!("(ts_ns - {first}) / {bin_ns}");

    let (_, heat) = run_sql(
        ctx,
        &format!(
            "SELECT {bin_sql} AS bin, {BUCKET_SQL} AS bucket, count(*) AS calls
             FROM syscalls WHERE duration_ns IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2"
        ),
    )
    .await?;
    let cells = numbers(&heat, 0)?
        .into_iter()
        .zip(numbers(&heat, 1)?)
        .zip(numbers(&heat, 2)?)
        .map(|((bin, bucket), calls)| ((bin as usize).min(bins - 1), bucket as u32, calls as u64))
        .collect();
    let mut charts = vec![Chart::Heatmap {
        title: "Latency over time (darker: more calls)".into(),
        time: time(),
        cells,
    }];

    let (_, rates) = run_sql(
        ctx,
        &format!(
            "SELECT {bin_sql} AS bin, count(*) AS calls, count(errno) AS errors
             FROM syscalls GROUP BY 1"
        ),
    )
    .await?;
    let per_second = 1e9 / bin_ns as f64;
    let mut calls = vec![0.0; bins];
    let mut errors = vec![0.0; bins];
    for ((bin, c), e) in numbers(&rates, 0)?
        .into_iter()
        .zip(numbers(&rates, 1)?)
        .zip(numbers(&rates, 2)?)
    {
        let bin = (bin as usize).min(bins - 1);
        calls[bin] += c * per_second;
        errors[bin] += e * per_second;
    }
    charts.push(Chart::Rates {
        title: "Calls and errors per second".into(),
        time: time(),
        series: vec![("calls".into(), calls), ("errors".into(), errors)],
    });

    // Of the calls that did work: a server's epoll_wait or a shell's wait4 would otherwise
    // take the histograms, as they took "Most time" (see `waiting`).
    let (_, hist) = run_sql(
        ctx,
        &format!(
            "WITH work AS (SELECT syscall, duration_ns FROM syscalls
                           WHERE duration_ns IS NOT NULL
                             AND NOT is_waiting(syscall, arg1, fd_path, duration_ns)),
                  top AS (SELECT syscall, sum(duration_ns) AS total FROM work
                          GROUP BY syscall
                          ORDER BY total DESC NULLS LAST, syscall LIMIT {HISTOGRAMS})
             SELECT w.syscall, {BUCKET_SQL} AS bucket, count(*) AS calls,
                    max(top.total) AS total
             FROM work w JOIN top ON w.syscall = top.syscall
             GROUP BY 1, 2 ORDER BY total DESC NULLS LAST, 1, 2"
        ),
    )
    .await?;
    let names = strings(&hist, 0)?;
    let buckets = numbers(&hist, 1)?;
    let calls = numbers(&hist, 2)?;
    let mut i = 0;
    while i < names.len() {
        let name = &names[i];
        let mut counts = Vec::new();
        while i < names.len() && names[i] == *name {
            counts.push((buckets[i] as u32, calls[i] as u64));
            i += 1;
        }
        charts.push(Chart::Histogram {
            title: format!("{name} latency, calls that did work"),
            buckets: counts,
        });
    }
    Ok(charts)
}

/// A column as numbers (NULL as 0), whatever its numeric type.
fn numbers(batches: &[RecordBatch], i: usize) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for b in batches {
        let col: ArrayRef = cast(b.column(i), &DataType::Float64)?;
        let col = col.as_primitive::<Float64Type>();
        out.extend((0..col.len()).map(|r| if col.is_valid(r) { col.value(r) } else { 0.0 }));
    }
    Ok(out)
}

fn integers(batches: &[RecordBatch], i: usize) -> Result<Vec<Option<i64>>> {
    let mut out = Vec::new();
    for b in batches {
        let col: ArrayRef = cast(b.column(i), &DataType::Int64)?;
        let col = col.as_primitive::<Int64Type>();
        out.extend((0..col.len()).map(|r| col.is_valid(r).then(|| col.value(r))));
    }
    Ok(out)
}

fn strings(batches: &[RecordBatch], i: usize) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for b in batches {
        let col: ArrayRef = cast(b.column(i), &DataType::Utf8)?;
        let col = col.as_string::<i32>();
        out.extend((0..col.len()).map(|r| col.value(r).to_string()));
    }
    Ok(out)
}
