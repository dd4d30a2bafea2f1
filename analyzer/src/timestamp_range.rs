//! Whether every date and time in a result can be written as one. A timestamp of
//! `i64::MAX` seconds lies past any year a date can show: at the top level arrow's cast
//! failed with a message that named no column, and inside a list or struct arrow's writers
//! put the text `ERROR: Cast error: ...` in the cell, in every format, and exited 0.
use datafusion::arrow::{
    array::{Array, ArrayRef, AsArray as _, OffsetSizeTrait, RecordBatch},
    compute::{cast, max, min},
    datatypes::{DataType, Int64Type, TimeUnit},
    temporal_conversions::{
        date32_to_datetime, date64_to_datetime, timestamp_ms_to_datetime, timestamp_s_to_datetime,
        timestamp_us_to_datetime,
    },
};

/// A value no date can show, found in a result.
#[derive(Debug, thiserror::Error)]
#[error(
    "column {column} holds {value} {unit} from 1970-01-01, a time past any date that can be \
     written: cast it to BIGINT to see the number"
)]
pub struct Undatable {
    pub column: String,
    pub value: i64,
    pub unit: &'static str,
}

/// Fails on the first column of `batch` that holds, at any depth, a date or timestamp no
/// date can show.
pub fn check(batch: &RecordBatch) -> Result<(), Undatable> {
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if let Some((value, unit)) = first_undatable(column) {
            return Err(Undatable {
                column: field.name().clone(),
                value,
                unit,
            });
        }
    }
    Ok(())
}

/// The smallest or largest value of `array`, at any depth, that no date can show, with its
/// unit. Nanoseconds in an `i64` always fit, and are not looked at.
fn first_undatable(array: &ArrayRef) -> Option<(i64, &'static str)> {
    let in_range: fn(i64) -> bool = match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => |v| timestamp_s_to_datetime(v).is_some(),
        DataType::Timestamp(TimeUnit::Millisecond, _) => |v| timestamp_ms_to_datetime(v).is_some(),
        DataType::Timestamp(TimeUnit::Microsecond, _) => |v| timestamp_us_to_datetime(v).is_some(),
        DataType::Date64 => |v| date64_to_datetime(v).is_some(),
        DataType::Date32 => |v| date32_to_datetime(v as i32).is_some(),
        DataType::List(_) => {
            let l = array.as_list::<i32>();
            return first_undatable(&inner(l.values(), l.value_offsets()));
        }
        DataType::LargeList(_) => {
            let l = array.as_list::<i64>();
            return first_undatable(&inner(l.values(), l.value_offsets()));
        }
        DataType::FixedSizeList(_, n) => {
            let l = array.as_fixed_size_list();
            let n = *n as usize;
            return first_undatable(&l.values().slice(l.offset() * n, l.len() * n));
        }
        DataType::Map(..) => {
            let m = array.as_map();
            let entries: ArrayRef = std::sync::Arc::new(m.entries().clone());
            return first_undatable(&inner(&entries, m.value_offsets()));
        }
        DataType::Struct(_) => {
            return array.as_struct().columns().iter().find_map(first_undatable);
        }
        DataType::Dictionary(..) => return first_undatable(array.as_any_dictionary().values()),
        _ => return None,
    };
    let unit = match array.data_type() {
        DataType::Timestamp(TimeUnit::Second, _) => "seconds",
        DataType::Timestamp(TimeUnit::Millisecond, _) | DataType::Date64 => "milliseconds",
        DataType::Timestamp(..) => "microseconds",
        _ => "days",
    };
    let numbers = cast(array, &DataType::Int64).ok()?;
    let numbers = numbers.as_primitive::<Int64Type>();
    [min(numbers), max(numbers)]
        .into_iter()
        .flatten()
        .find(|v| !in_range(*v))
        .map(|v| (v, unit))
}

/// The values a list's `offsets` reach: a sliced list's child holds values it does not.
fn inner<O: OffsetSizeTrait>(values: &ArrayRef, offsets: &[O]) -> ArrayRef {
    let (a, b) = (offsets[0].as_usize(), offsets[offsets.len() - 1].as_usize());
    values.slice(a, b - a)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::{
        array::{ListArray, TimestampSecondArray},
        datatypes::{Field, Schema},
    };

    use super::*;

    fn batch(column: ArrayRef) -> RecordBatch {
        let schema = Schema::new(vec![Field::new("t", column.data_type().clone(), true)]);
        RecordBatch::try_new(Arc::new(schema), vec![column]).unwrap()
    }

    #[test]
    fn a_time_past_any_date_is_named_with_its_column_at_any_depth() {
        let plain: ArrayRef = Arc::new(TimestampSecondArray::from(vec![Some(0), Some(i64::MAX)]));
        let err = check(&batch(plain.clone())).unwrap_err();
        assert_eq!((err.column.as_str(), err.value), ("t", i64::MAX));
        let list: ArrayRef = Arc::new(ListArray::new(
            Arc::new(Field::new("item", plain.data_type().clone(), true)),
            datafusion::arrow::buffer::OffsetBuffer::from_lengths([1, 1]),
            plain,
            None,
        ));
        assert_eq!(check(&batch(list.clone())).unwrap_err().value, i64::MAX);
        // The first row alone reaches only 0.
        assert!(check(&batch(list.slice(0, 1))).is_ok());
    }

    #[test]
    fn every_nanosecond_and_every_ordinary_time_passes() {
        let ns: ArrayRef = Arc::new(datafusion::arrow::array::TimestampNanosecondArray::from(
            vec![i64::MIN, i64::MAX],
        ));
        assert!(check(&batch(ns)).is_ok());
        let s: ArrayRef = Arc::new(TimestampSecondArray::from(vec![None, Some(1_764_000_000)]));
        assert!(check(&batch(s)).is_ok());
    }
}
