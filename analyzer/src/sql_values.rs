//! Values passed into the SQL the analyzer writes for itself, and read back out of its
//! answers: a capture's name as a string literal, a count from a result's cell, and a
//! column's values as text.
use datafusion::arrow::{
    array::{Array as _, AsArray as _, RecordBatch},
    compute::cast,
    datatypes::{DataType, Int64Type},
    error::ArrowError,
};

/// `s` as an SQL string literal: a capture's name may hold a quote.
pub fn string_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The BIGINT in `column` at `row` of `batch`; `None` for NULL, a missing row or a column
/// of another type.
pub fn int64(batch: &RecordBatch, column: usize, row: usize) -> Option<i64> {
    let values = batch
        .columns()
        .get(column)?
        .as_primitive_opt::<Int64Type>()?;
    (row < values.len() && values.is_valid(row)).then(|| values.value(row))
}

/// The values of `column` of `batch` as text, NULL as `None`: a capture's name comes back
/// as whichever string type the plan chose.
pub fn texts(batch: &RecordBatch, column: usize) -> Result<Vec<Option<String>>, ArrowError> {
    let Some(values) = batch.columns().get(column) else {
        return Ok(Vec::new());
    };
    let values = cast(values, &DataType::Utf8)?;
    let values = values.as_string::<i32>();
    Ok((0..values.len())
        .map(|i| values.is_valid(i).then(|| values.value(i).to_string()))
        .collect())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Int32Array, Int64Array};

    use super::*;

    #[test]
    fn a_quote_stays_inside_the_literal() {
        assert_eq!(string_literal("inc-42"), "'inc-42'");
        assert_eq!(string_literal("it's"), "'it''s'");
    }

    #[test]
    fn only_a_bigint_that_is_there_is_read() {
        let batch = RecordBatch::try_from_iter([
            ("n", Arc::new(Int64Array::from(vec![Some(7), None])) as _),
            ("m", Arc::new(Int32Array::from(vec![1, 2])) as _),
        ])
        .unwrap();
        assert_eq!(int64(&batch, 0, 0), Some(7));
        assert_eq!(int64(&batch, 0, 1), None);
        assert_eq!(int64(&batch, 0, 2), None);
        assert_eq!(int64(&batch, 1, 0), None);
        assert_eq!(int64(&batch, 2, 0), None);
        assert_eq!(
            texts(&batch, 1).unwrap(),
            [Some("1".into()), Some("2".into())]
        );
        assert_eq!(texts(&batch, 0).unwrap(), [Some("7".into()), None]);
    }
}
