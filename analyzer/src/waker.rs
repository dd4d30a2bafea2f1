//! What woke a call, as one readable cell: `pipe-writer (8873) in write`, with `, softirq`
//! when a softirq on that thread's back did it, or `timer` / `irq` when no thread did.
//! Written once for `slowest-calls`, `off-cpu`, `why-slow` and anyone's SQL, through the
//! SQL function `woken_by(waker_comm, waker_tid, waker_syscall, waker_kind)`.
use std::sync::Arc;

use datafusion::{
    arrow::{
        array::{Array, ArrayRef, AsArray, StringArray},
        compute::cast,
        datatypes::{DataType, Int64Type},
    },
    error::Result,
    logical_expr::{ColumnarValue, ScalarUDF, Volatility, create_udf},
};

/// The cell for one call; `None` when nothing woke it (`waker_kind` NULL).
pub fn woken_by(
    comm: Option<&str>,
    tid: Option<i64>,
    syscall: Option<&str>,
    kind: Option<&str>,
) -> Option<String> {
    let Some(tid) = tid else {
        return kind.map(str::to_string);
    };
    let mut text = format!("{} ({tid})", comm.unwrap_or(""));
    if let Some(s) = syscall {
        text.push_str(" in ");
        text.push_str(s);
    }
    if kind == Some("softirq") {
        text.push_str(", softirq");
    }
    Some(text)
}

/// `woken_by(waker_comm, waker_tid, waker_syscall, waker_kind)` for SQL.
pub fn udf() -> ScalarUDF {
    let fun = Arc::new(|args: &[ColumnarValue]| -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(args)?;
        let text = |a: &ArrayRef| cast(a, &DataType::Utf8);
        let (comm, syscall, kind) = (text(&arrays[0])?, text(&arrays[2])?, text(&arrays[3])?);
        let (comm, syscall, kind) = (
            comm.as_string::<i32>(),
            syscall.as_string::<i32>(),
            kind.as_string::<i32>(),
        );
        let tid = cast(&arrays[1], &DataType::Int64)?;
        let tid = tid.as_primitive::<Int64Type>();
        fn at(a: &StringArray, i: usize) -> Option<&str> {
            a.is_valid(i).then(|| a.value(i))
        }
        let out: StringArray = (0..tid.len())
            .map(|i| {
                woken_by(
                    at(comm, i),
                    tid.is_valid(i).then(|| tid.value(i)),
                    at(syscall, i),
                    at(kind, i),
                )
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out) as ArrayRef))
    });
    create_udf(
        "woken_by",
        vec![
            DataType::Utf8,
            DataType::Int64,
            DataType::Utf8,
            DataType::Utf8,
        ],
        DataType::Utf8,
        Volatility::Immutable,
        fun,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_thread_a_softirq_on_its_back_or_no_thread() {
        let w = |c, t, s, k| woken_by(c, t, s, k);
        assert_eq!(
            w(
                Some("pipe-writer"),
                Some(8873),
                Some("write"),
                Some("thread")
            )
            .as_deref(),
            Some("pipe-writer (8873) in write")
        );
        assert_eq!(
            w(Some("curl"), Some(7), None, Some("softirq")).as_deref(),
            Some("curl (7), softirq")
        );
        assert_eq!(w(None, None, None, Some("timer")).as_deref(), Some("timer"));
        assert_eq!(w(None, None, None, None), None);
    }
}
