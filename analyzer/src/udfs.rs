//! SQL functions that make captures pleasant to query: `errno_name(ret)`,
//! `fmt_duration(ns)`, `fmt_bytes(n)`, and the aggregate `latency_percentiles(ns)`; and
//! `sum`, which refuses where DataFusion's wraps.
use std::{sync::Arc, time::Duration};

use datafusion::{
    arrow::{
        array::{ArrayRef, StringArray},
        datatypes::DataType,
    },
    common::cast::as_int64_array,
    error::Result,
    logical_expr::{ColumnarValue, Volatility, create_udf},
    prelude::SessionContext,
};
use syscalls::Errno;

/// `ENOENT` for a call that returned -2; NULL for any value that is not a failure. A
/// positive value is a success (an fd, a byte count), never an errno: naming 3 `ESRCH`
/// made `GROUP BY errno_name(ret)` count successful opens as failures.
fn errno_name(ret: i64) -> Option<String> {
    let code = match ret {
        -4095..=-1 => -ret,
        _ => return None,
    };
    Some(match Errno::new(code as i32).name() {
        Some(name) => name.to_string(),
        None => format!("E{code}"),
    })
}

/// `1.5ms`, `2s 300ms`: at most two units, for tables people read.
fn fmt_duration(ns: i64) -> String {
    if ns < 0 {
        // i64::MIN has no positive counterpart; its magnitude still fits a u64.
        return format!("-{}", fmt_magnitude(ns.unsigned_abs()));
    }
    fmt_magnitude(ns as u64)
}

fn fmt_magnitude(ns: u64) -> String {
    if ns < 1_000 {
        return format!("{ns}ns");
    }
    // The unit is chosen after rounding to one decimal: 999,950 ns is `1.0ms`, not
    // `1000.0us`.
    if ns < 999_950 {
        return format!("{:.1}us", ns as f64 / 1e3);
    }
    if ns < 999_950_000 {
        return format!("{:.1}ms", ns as f64 / 1e6);
    }
    // To the nearest millisecond, then humantime's units (`2s 300ms`, `1h 2m 3s`), first
    // two kept.
    let d = Duration::from_millis(ns.saturating_add(500_000) / 1_000_000);
    let text = humantime::format_duration(d).to_string();
    text.split(' ').take(2).collect::<Vec<_>>().join(" ")
}

fn fmt_bytes(n: i64) -> String {
    if n < 0 {
        return format!("-{}", bytes_magnitude(n.unsigned_abs()));
    }
    bytes_magnitude(n as u64)
}

/// bytesize's text, with the unit chosen after rounding to its one decimal, as
/// `fmt_duration` does: bytesize picks the unit first, so 1,048,575 bytes read
/// `1024.0 KiB`, a number no unit of its own shows.
fn bytes_magnitude(n: u64) -> String {
    let text = bytesize::ByteSize(n).to_string();
    match text.split_once(' ') {
        Some(("1024.0", _)) => {
            // The next unit up: the smallest power of 1024 above n.
            let unit = (1..=6)
                .map(|k| 1024u64.pow(k))
                .find(|&u| u > n)
                .unwrap_or(1 << 60);
            bytesize::ByteSize(unit).to_string()
        }
        _ => text,
    }
}

fn string_udf(name: &str, f: fn(i64) -> Option<String>) -> datafusion::logical_expr::ScalarUDF {
    let fun = Arc::new(move |args: &[ColumnarValue]| -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let input = as_int64_array(&arrays[0])?;
        let out: StringArray = input.iter().map(|v| v.and_then(f)).collect();
        Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
    });
    create_udf(
        name,
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        fun,
    )
}

pub fn register(ctx: &SessionContext) {
    ctx.register_udf(string_udf("errno_name", errno_name));
    ctx.register_udf(string_udf("fmt_duration", |ns| Some(fmt_duration(ns))));
    ctx.register_udf(string_udf("fmt_bytes", |n| Some(fmt_bytes(n))));
    ctx.register_udaf(crate::percentiles::udaf());
    // In place of DataFusion's `sum`, which wraps past 2^63.
    ctx.register_udaf(crate::checked_sum::udaf());
    ctx.register_udf(crate::waiting::udf());
    ctx.register_udf(crate::waker::udf());
}

/// For tests and reports: the functions as plain Rust.
pub fn format_duration(ns: i64) -> String {
    fmt_duration(ns)
}

pub fn format_bytes(n: i64) -> String {
    fmt_bytes(n)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::Array;

    use super::*;

    #[test]
    fn names_and_human_units() {
        assert_eq!(errno_name(-2).as_deref(), Some("ENOENT"));
        assert_eq!(errno_name(-13).as_deref(), Some("EACCES"));
        assert_eq!(errno_name(3), None, "an fd, not ESRCH");
        assert_eq!(errno_name(832), None, "a byte count");
        assert_eq!(errno_name(0), None);
        assert_eq!(errno_name(4096), None);
        assert_eq!(fmt_duration(640), "640ns");
        assert_eq!(fmt_duration(1_500_000), "1.5ms");
        assert_eq!(fmt_duration(999_949), "999.9us");
        assert_eq!(fmt_duration(999_950), "1.0ms");
        assert_eq!(fmt_duration(999_949_999), "999.9ms");
        assert_eq!(fmt_duration(999_999_999), "1s");
        assert_eq!(fmt_duration(2_300_000_000), "2s 300ms");
        assert_eq!(fmt_duration(3_723_000_000_000), "1h 2m");
        assert_eq!(fmt_bytes(1536), "1.5 KiB");
        assert_eq!(fmt_bytes(1023), "1023 B");
        assert_eq!(fmt_bytes(1_048_524), "1023.9 KiB");
        assert_eq!(fmt_bytes(1_048_575), "1.0 MiB");
        assert_eq!(fmt_bytes(-1_048_575), "-1.0 MiB");
        assert_eq!(fmt_bytes((1 << 30) - 1), "1.0 GiB");
        assert_eq!(fmt_bytes(i64::MAX), "8.0 EiB");
    }

    #[tokio::test]
    async fn they_work_in_sql() {
        let ctx = SessionContext::new();
        register(&ctx);
        let batches = ctx
            .sql("SELECT errno_name(-9) AS e, fmt_duration(1200) AS d, fmt_bytes(NULL) AS b")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let col = |i: usize| {
            batches[0]
                .column(i)
                .as_any()
                .downcast_ref::<StringArray>()
                .unwrap()
                .clone()
        };
        assert_eq!(col(0).value(0), "EBADF");
        assert_eq!(col(1).value(0), "1.2us");
        assert!(col(2).is_null(0));
    }
}
