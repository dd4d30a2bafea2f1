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

/// A chart, and what a reader must know of the calls it holds.
pub struct Figure {
    pub chart: Chart,
    /// Empty when the chart holds every call.
    pub note: String,
}

/// The charts of the captures as narrowed. `counted` is how many calls the kernel counted
/// without recording them: the rates hold them too, spread over the intervals they were
/// counted in, and the latency charts say they do not.
pub async fn all(ctx: &SessionContext, counted: i64) -> Result<Vec<Figure>> {
    let (_, span) = run_sql(ctx, "SELECT min(ts_ns), max(ts_ns) FROM syscalls").await?;
    // The kernel's counts, per interval, in microseconds since 1970: a `--min-duration`
    // capture holds most of its calls here, and one of `--failed` most of its successes.
    let (_, intervals) = run_sql(
        ctx,
        "SELECT arrow_cast(interval_start, 'Int64') AS start_us,
                arrow_cast(interval_end, 'Int64') AS end_us,
                sum(calls) AS calls,
                sum(CASE WHEN errno IS NOT NULL THEN calls END) AS errors
         FROM aggregates GROUP BY 1, 2",
    )
    .await?;
    let counted_spans: Vec<(i64, i64, f64, f64)> = integers(&intervals, 0)?
        .into_iter()
        .zip(integers(&intervals, 1)?)
        .zip(numbers(&intervals, 2)?)
        .zip(numbers(&intervals, 3)?)
        .filter_map(|(((s, e), c), x)| {
            let (s, e) = (s?.saturating_mul(1000), e?.saturating_mul(1000));
            Some((s, e.max(s), c, x))
        })
        .collect();
    // As integers: nanoseconds since 1970 are past what a double holds exactly. The axis
    // spans the recorded calls and the intervals the others were counted in.
    let recorded =
        |i| -> Result<Option<i64>> { Ok(integers(&span, i)?.first().copied().flatten()) };
    let first = recorded(0)?
        .into_iter()
        .chain(counted_spans.iter().map(|c| c.0))
        .min();
    let last = recorded(1)?
        .into_iter()
        .chain(counted_spans.iter().map(|c| c.1))
        .max();
    let (first, last) = match (first, last) {
        (Some(a), Some(b)) if b >= a => (a, b),
        _ => return Ok(Vec::new()),
    };
    let (_, start) = run_sql(
        ctx,
        &format!(
            "SELECT CAST(arrow_cast(CAST({} AS BIGINT), 'Timestamp(Microsecond, Some(\"UTC\"))') \
             AS VARCHAR)",
            first.div_euclid(1000)
        ),
    )
    .await?;
    let start = strings(&start, 0)?.first().cloned().unwrap_or_default();
    // A capture of one call, or of calls within 100 ms, gets a 100 ms axis.
    let span_ns = (last.abs_diff(first)).max(MIN_SPAN_NS);
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
    let recorded_only = match counted {
        0 => String::new(),
        n => format!(
            "Of the recorded calls only: {n} calls the kernel counted without recording them \
             are not in it."
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
    let mut charts = vec![Figure {
        chart: Chart::Heatmap {
            title: "Latency over time (darker: more calls)".into(),
            time: time(),
            cells,
        },
        note: recorded_only.clone(),
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
    // Each interval's count spread evenly over it: the kernel says how many, not when
    // within the interval.
    for &(start, end, c, e) in &counted_spans {
        for (bin, share) in spread(start - first, end - first, bin_ns, bins) {
            calls[bin] += c * share * per_second;
            errors[bin] += e * share * per_second;
        }
    }
    charts.push(Figure {
        chart: Chart::Rates {
            title: "Calls and errors per second".into(),
            time: time(),
            series: vec![("calls".into(), calls), ("errors".into(), errors)],
        },
        note: match counted {
            0 => String::new(),
            n => format!(
                "With the {n} calls the kernel counted without recording them (`record \
                 --min-duration`, `--failed`, or a full ring), each interval's count spread \
                 evenly over it: the kernel counts in intervals of about a second."
            ),
        },
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
        charts.push(Figure {
            chart: Chart::Histogram {
                title: format!("{name} latency, calls that did work"),
                buckets: counts,
            },
            note: recorded_only.clone(),
        });
    }
    Ok(charts)
}

/// The bins that `[start, end)` ns from the axis's start overlaps, each with the share of
/// the interval that falls in it. An interval of no length falls in one bin whole.
fn spread(start: i64, end: i64, bin_ns: u64, bins: usize) -> Vec<(usize, f64)> {
    let (start, end) = (start.max(0) as u64, end.max(0) as u64);
    let last = bins - 1;
    if end <= start {
        return vec![(((start / bin_ns) as usize).min(last), 1.0)];
    }
    let len = (end - start) as f64;
    // Past the last bin (the axis covers every interval, so only by rounding): into the
    // last, as a recorded call there is.
    let bin_of = |t: u64| ((t / bin_ns) as usize).min(last);
    let mut shares = Vec::new();
    for b in bin_of(start)..=bin_of(end - 1) {
        let lo = b as u64 * bin_ns;
        let hi = match b == last {
            true => end.max(lo + bin_ns),
            false => lo + bin_ns,
        };
        let part = end.min(hi).saturating_sub(start.max(lo));
        if part > 0 {
            shares.push((b, part as f64 / len));
        }
    }
    shares
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

#[cfg(test)]
mod tests {
    use super::spread;

    #[test]
    fn a_counted_interval_is_spread_over_the_bins_it_overlaps() {
        // 1 s counted over 100 ms bins starting 50 ms in: halves at the ends.
        let s = spread(50_000_000, 1_050_000_000, 100_000_000, 20);
        assert_eq!(s.len(), 11);
        assert_eq!(s[0], (0, 0.05));
        assert_eq!(s[10], (10, 0.05));
        assert!((s.iter().map(|x| x.1).sum::<f64>() - 1.0).abs() < 1e-9);
        assert_eq!(spread(5, 5, 10, 3), vec![(0, 1.0)]);
        // Past the axis's last bin: into the last, as a recorded call there is.
        assert_eq!(spread(95, 120, 10, 10), vec![(9, 1.0)]);
    }
}
