//! JSON output's floats that are not numbers. JSON has no NaN or infinity, and arrow's
//! writer puts `null` for them, so a ratio of 0/0 read the same as a missing value in the
//! ticket. They are written as the strings `"NaN"`, `"Infinity"` and `"-Infinity"`, the
//! spellings JavaScript and pandas print; every finite value stays a JSON number.
use std::sync::{Arc, LazyLock};

use datafusion::arrow::{
    array::{Array, ArrowPrimitiveType, AsArray, PrimitiveArray},
    datatypes::{DataType, FieldRef, Float16Type, Float32Type, Float64Type},
    error::ArrowError,
    json::{
        Encoder, EncoderFactory, EncoderOptions,
        writer::{NullableEncoder, make_encoder},
    },
};

/// Arrow's own encoders, for the finite values: the factory's options would come back here.
static PLAIN: LazyLock<EncoderOptions> = LazyLock::new(EncoderOptions::default);

#[derive(Debug)]
pub struct NonFiniteAsText;

impl NonFiniteAsText {
    pub fn factory() -> Arc<dyn EncoderFactory> {
        Arc::new(Self)
    }
}

impl EncoderFactory for NonFiniteAsText {
    fn make_default_encoder<'a>(
        &self,
        field: &'a FieldRef,
        array: &'a dyn Array,
        _options: &'a EncoderOptions,
    ) -> Result<Option<NullableEncoder<'a>>, ArrowError> {
        fn wrap<'a, T: ArrowPrimitiveType>(
            field: &'a FieldRef,
            array: &'a dyn Array,
            finite: fn(T::Native) -> Option<&'static str>,
        ) -> Result<Option<NullableEncoder<'a>>, ArrowError> {
            let values = array.as_primitive::<T>();
            let inner = make_encoder(field, array, &PLAIN)?;
            let nulls = array.nulls().cloned();
            let encoder = Floats {
                values,
                inner,
                text: finite,
            };
            Ok(Some(NullableEncoder::new(Box::new(encoder), nulls)))
        }
        match array.data_type() {
            DataType::Float16 => wrap::<Float16Type>(field, array, |v| text(f64::from(v))),
            DataType::Float32 => wrap::<Float32Type>(field, array, |v| text(f64::from(v))),
            DataType::Float64 => wrap::<Float64Type>(field, array, text),
            _ => Ok(None),
        }
    }
}

/// The text for a value JSON cannot hold as a number; `None` for a finite one.
fn text(v: f64) -> Option<&'static str> {
    match v {
        v if v.is_nan() => Some("\"NaN\""),
        f64::INFINITY => Some("\"Infinity\""),
        f64::NEG_INFINITY => Some("\"-Infinity\""),
        _ => None,
    }
}

struct Floats<'a, T: ArrowPrimitiveType> {
    values: &'a PrimitiveArray<T>,
    inner: NullableEncoder<'a>,
    text: fn(T::Native) -> Option<&'static str>,
}

impl<T: ArrowPrimitiveType> Encoder for Floats<'_, T> {
    fn encode(&mut self, idx: usize, out: &mut Vec<u8>) {
        match (self.text)(self.values.value(idx)) {
            Some(text) => out.extend_from_slice(text.as_bytes()),
            None => self.inner.encode(idx, out),
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::{
        array::{Float32Array, Float64Array, ListArray, RecordBatch},
        datatypes::{Field, Schema},
        json::{WriterBuilder, writer::JsonArray},
    };

    use super::*;

    #[test]
    fn floats_that_are_not_numbers_are_text_and_null_stays_null() {
        let doubles = Float64Array::from(vec![
            Some(1.5),
            Some(f64::NAN),
            Some(f64::INFINITY),
            Some(f64::NEG_INFINITY),
            None,
        ]);
        let singles = Float32Array::from(vec![Some(f32::NAN), None, Some(2.0), None, None]);
        let lists = ListArray::from_iter_primitive::<Float64Type, _, _>(vec![
            Some(vec![Some(f64::NAN), Some(0.25)]),
            None,
            Some(vec![]),
            Some(vec![None]),
            Some(vec![Some(f64::INFINITY)]),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("d", DataType::Float64, true),
                Field::new("s", DataType::Float32, true),
                Field::new("l", lists.data_type().clone(), true),
            ])),
            vec![Arc::new(doubles), Arc::new(singles), Arc::new(lists)],
        )
        .unwrap();
        let mut writer = WriterBuilder::new()
            .with_explicit_nulls(true)
            .with_encoder_factory(NonFiniteAsText::factory())
            .build::<_, JsonArray>(Vec::new());
        writer.write(&batch).unwrap();
        writer.finish().unwrap();
        let json = String::from_utf8(writer.into_inner()).unwrap();
        assert_eq!(
            json,
            r#"[{"d":1.5,"s":"NaN","l":["NaN",0.25]},{"d":"NaN","s":null,"l":null},{"d":"Infinity","s":2.0,"l":[]},{"d":"-Infinity","s":null,"l":[null]},{"d":null,"s":null,"l":["Infinity"]}]"#
        );
    }
}
