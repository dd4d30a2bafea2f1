//! Nested values reshaped for JSON, which `--format json` writes and `--format csv` uses for
//! a nested cell. A JSON object's keys are text and each is held once, and arrow's writer
//! knows neither: a map keyed by numbers (`map([1,2], ['a','b'])`) failed the whole output
//! with "Only UTF8 keys supported", and a struct whose fields share a name wrote
//! `{"a":1,"a":2}`, of which every parser keeps one value. Map keys become their text, as
//! JSON would write them, and a repeated field name takes the next free `_N` suffix, as a
//! repeated column name does. A map whose keys repeat within one value (two secrets masked
//! alike, `--password=***`) has the repeats renamed the same way.
use std::{collections::HashSet, sync::Arc};

use datafusion::arrow::{
    array::{
        Array, ArrayRef, AsArray, FixedSizeListArray, GenericListArray, MapArray, OffsetSizeTrait,
        RecordBatch, StringArray, StructArray,
    },
    compute::{can_cast_types, cast},
    datatypes::{DataType, Field, FieldRef, Fields, Schema},
    error::ArrowError,
};

/// Whether `dt` holds a map, or a struct with a repeated field name, at any depth: only
/// those columns are rebuilt. Every map is, since whether its keys repeat is known only
/// from its values.
pub fn needs_reshape(dt: &DataType) -> bool {
    match dt {
        DataType::Map(..) => true,
        DataType::Struct(fields) => {
            let mut seen = HashSet::new();
            fields
                .iter()
                .any(|f| !seen.insert(f.name()) || needs_reshape(f.data_type()))
        }
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            needs_reshape(f.data_type())
        }
        _ => false,
    }
}

/// The struct fields renamed at any depth of `dt`, as `a as a_2`, for the warning.
pub fn renamed_fields(dt: &DataType) -> Vec<String> {
    let mut said = Vec::new();
    collect_renames(dt, &mut said);
    said
}

fn collect_renames(dt: &DataType, said: &mut Vec<String>) {
    match dt {
        DataType::Struct(fields) => {
            // This struct's own names first, then its fields' own.
            let names = unique(fields.iter().map(|f| f.name().as_str()));
            for (f, name) in fields.iter().zip(&names) {
                if f.name() != name {
                    said.push(format!("{} as {name}", f.name()));
                }
            }
            for f in fields {
                collect_renames(f.data_type(), said);
            }
        }
        DataType::Map(entries, _) => collect_renames(entries.data_type(), said),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            collect_renames(f.data_type(), said)
        }
        _ => {}
    }
}

/// `array` with map keys as text and struct field names unique, at any depth.
pub fn reshape(array: &ArrayRef) -> Result<ArrayRef, ArrowError> {
    if !needs_reshape(array.data_type()) {
        return Ok(array.clone());
    }
    Ok(match array.data_type() {
        DataType::Map(entries, ordered) => {
            let map = array.as_map();
            let keys = unique_keys(&key_text(map.keys())?, map.value_offsets());
            let values = reshape(map.values())?;
            let DataType::Struct(kv) = entries.data_type() else {
                unreachable!("a map's entries are a struct")
            };
            let fields = Fields::from(vec![
                kv[0]
                    .as_ref()
                    .clone()
                    .with_data_type(keys.data_type().clone()),
                kv[1]
                    .as_ref()
                    .clone()
                    .with_data_type(values.data_type().clone()),
            ]);
            let entries_array = StructArray::try_new(fields.clone(), vec![keys, values], None)?;
            Arc::new(MapArray::try_new(
                Arc::new(
                    entries
                        .as_ref()
                        .clone()
                        .with_data_type(DataType::Struct(fields)),
                ),
                map.offsets().clone(),
                entries_array,
                map.nulls().cloned(),
                *ordered,
            )?)
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let names = unique(fields.iter().map(|f| f.name().as_str()));
            let columns = s
                .columns()
                .iter()
                .map(reshape)
                .collect::<Result<Vec<_>, _>>()?;
            let fields: Fields = fields
                .iter()
                .zip(&names)
                .zip(&columns)
                .map(|((f, name), c)| {
                    f.as_ref()
                        .clone()
                        .with_name(name)
                        .with_data_type(c.data_type().clone())
                })
                .collect();
            Arc::new(StructArray::try_new(fields, columns, s.nulls().cloned())?)
        }
        DataType::List(f) => reshape_list(f, array.as_list::<i32>())?,
        DataType::LargeList(f) => reshape_list(f, array.as_list::<i64>())?,
        DataType::FixedSizeList(f, size) => {
            let l = array.as_fixed_size_list();
            let values = reshape(l.values())?;
            Arc::new(FixedSizeListArray::try_new(
                retyped(f, &values),
                *size,
                values,
                l.nulls().cloned(),
            )?)
        }
        _ => array.clone(),
    })
}

/// A map's keys as text: as they are, cast, or (a struct or a list, which no cast makes
/// text) their own JSON text.
fn key_text(keys: &ArrayRef) -> Result<StringArray, ArrowError> {
    let text = if can_cast_types(keys.data_type(), &DataType::Utf8) {
        cast(keys, &DataType::Utf8)?
    } else {
        Arc::new(StringArray::from(json_text(keys)?)) as ArrayRef
    };
    Ok(text.as_string::<i32>().clone())
}

/// `keys` with a key that repeats within one map's entries (`offsets`) given the first free
/// `_N`, as a repeated field name is.
fn unique_keys(keys: &StringArray, offsets: &[i32]) -> ArrayRef {
    let mut out: Option<Vec<String>> = None;
    for w in offsets.windows(2) {
        let (start, end) = (w[0] as usize, w[1] as usize);
        let mut seen = HashSet::new();
        if (start..end).all(|i| seen.insert(keys.value(i))) {
            continue;
        }
        let out =
            out.get_or_insert_with(|| keys.iter().map(|k| k.unwrap_or("").to_string()).collect());
        let names = unique((start..end).map(|i| keys.value(i)));
        for (i, name) in (start..end).zip(names) {
            out[i] = name;
        }
    }
    match out {
        Some(keys) => Arc::new(StringArray::from(keys)),
        None => Arc::new(keys.clone()),
    }
}

/// Each cell of `column` as JSON text, `None` for a NULL cell: arrow's own text, as
/// `--format json` writes it, with map keys as text and names unique ([`reshape`]). A CSV's
/// nested cell and a table's are this text: parsed back into values, a DECIMAL(38) became
/// a float (`1.2345678901234568e+28`) and a struct's fields were sorted by name, and
/// arrow's display showed `[NULL]`, `[]` and `['']` alike.
pub fn json_text(column: &ArrayRef) -> Result<Vec<Option<String>>, ArrowError> {
    let column = reshape(column)?;
    let one = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new(
            "v",
            column.data_type().clone(),
            true,
        )])),
        vec![column.clone()],
    )?;
    let mut writer = datafusion::arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .with_encoder_factory(crate::json_floats::NonFiniteAsText::factory())
        .build::<_, datafusion::arrow::json::writer::LineDelimited>(Vec::new());
    writer.write(&one)?;
    writer.finish()?;
    let text = String::from_utf8(writer.into_inner())
        .map_err(|e| ArrowError::JsonError(format!("arrow wrote JSON that is not UTF-8: {e}")))?;
    // One line a row, `{"v":CELL}`: a string within CELL holds no raw newline.
    let cells: Vec<Option<String>> = text
        .lines()
        .zip(0..)
        .map(|(line, row)| {
            let cell = line
                .strip_prefix("{\"v\":")
                .and_then(|l| l.strip_suffix('}'))
                .ok_or_else(|| {
                    ArrowError::JsonError("arrow's JSON line is not one object of one key".into())
                })?;
            Ok(column.is_valid(row).then(|| cell.to_string()))
        })
        .collect::<Result<_, ArrowError>>()?;
    if cells.len() != column.len() {
        return Err(ArrowError::JsonError(format!(
            "arrow wrote {} JSON lines for {} rows",
            cells.len(),
            column.len()
        )));
    }
    Ok(cells)
}

/// A list, or a large one, with its values reshaped.
fn reshape_list<O: OffsetSizeTrait>(
    f: &FieldRef,
    l: &GenericListArray<O>,
) -> Result<ArrayRef, ArrowError> {
    let values = reshape(l.values())?;
    Ok(Arc::new(GenericListArray::<O>::try_new(
        retyped(f, &values),
        l.offsets().clone(),
        values,
        l.nulls().cloned(),
    )?))
}

fn retyped(f: &FieldRef, values: &ArrayRef) -> FieldRef {
    Arc::new(
        f.as_ref()
            .clone()
            .with_data_type(values.data_type().clone()),
    )
}

/// `names` with each repeat given the first `_N` (N from 2) that no name of the list takes.
pub fn unique<'a>(names: impl Iterator<Item = &'a str> + Clone) -> Vec<String> {
    let mut taken: HashSet<String> = names.clone().map(str::to_string).collect();
    let mut seen = HashSet::new();
    names
        .map(|name| {
            if seen.insert(name) {
                return name.to_string();
            }
            let free = (2..)
                .map(|i| format!("{name}_{i}"))
                .find(|n| !taken.contains(n))
                .expect("a free name");
            taken.insert(free.clone());
            free
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::{
        array::{Int32Builder, Int64Array, ListArray, MapBuilder, StringBuilder},
        datatypes::Schema,
        json::{WriterBuilder, writer::JsonArray},
        record_batch::RecordBatch,
    };

    use super::*;
    use datafusion::arrow::datatypes::Field;

    fn json(column: ArrayRef) -> String {
        let column = reshape(&column).unwrap();
        let schema = Schema::new(vec![Field::new("v", column.data_type().clone(), true)]);
        let batch = RecordBatch::try_new(Arc::new(schema), vec![column]).unwrap();
        let mut w = WriterBuilder::new()
            .with_explicit_nulls(true)
            .build::<_, JsonArray>(Vec::new());
        w.write(&batch).unwrap();
        w.finish().unwrap();
        String::from_utf8(w.into_inner()).unwrap()
    }

    #[test]
    fn a_map_keyed_by_numbers_is_written_with_its_keys_as_text() {
        let mut b = MapBuilder::new(None, Int32Builder::new(), StringBuilder::new());
        b.keys().append_value(1);
        b.values().append_value("a");
        b.keys().append_value(-2);
        b.values().append_null();
        b.append(true).unwrap();
        b.append(false).unwrap();
        let map: ArrayRef = Arc::new(b.finish());
        assert!(needs_reshape(map.data_type()));
        assert_eq!(json(map), r#"[{"v":{"1":"a","-2":null}},{"v":null}]"#);
    }

    #[test]
    fn a_struct_field_name_that_repeats_takes_a_free_suffix_at_any_depth() {
        let a: ArrayRef = Arc::new(Int64Array::from(vec![1]));
        let b: ArrayRef = Arc::new(Int64Array::from(vec![2]));
        let c: ArrayRef = Arc::new(Int64Array::from(vec![3]));
        let inner = StructArray::from(vec![
            (Arc::new(Field::new("x", DataType::Int64, true)), a.clone()),
            (Arc::new(Field::new("x", DataType::Int64, true)), b),
            (Arc::new(Field::new("x_2", DataType::Int64, true)), c),
        ]);
        let outer: ArrayRef = Arc::new(StructArray::from(vec![
            (
                Arc::new(Field::new("s", inner.data_type().clone(), true)),
                Arc::new(inner) as ArrayRef,
            ),
            (Arc::new(Field::new("s", DataType::Int64, true)), a),
        ]));
        assert_eq!(
            renamed_fields(outer.data_type()),
            vec!["s as s_2", "x as x_3"]
        );
        assert_eq!(
            json(outer),
            r#"[{"v":{"s":{"x":1,"x_3":2,"x_2":3},"s_2":1}}]"#
        );
    }

    /// Two secrets masked alike (`--password=***`) made one key of two; a struct key,
    /// which no cast makes text, failed the whole output.
    #[test]
    fn a_map_key_that_repeats_takes_a_free_suffix_and_a_struct_key_is_its_json() {
        let mut b = MapBuilder::new(None, StringBuilder::new(), Int32Builder::new());
        for (k, v) in [("k", 1), ("k", 2), ("k_2", 3)] {
            b.keys().append_value(k);
            b.values().append_value(v);
        }
        b.append(true).unwrap();
        b.keys().append_value("k");
        b.values().append_value(4);
        b.append(true).unwrap();
        let map: ArrayRef = Arc::new(b.finish());
        assert_eq!(
            json(map),
            r#"[{"v":{"k":1,"k_3":2,"k_2":3}},{"v":{"k":4}}]"#
        );
        let key = StructArray::from(vec![(
            Arc::new(Field::new("a", DataType::Int64, true)),
            Arc::new(Int64Array::from(vec![1])) as ArrayRef,
        )]);
        let entries = StructArray::from(vec![
            (
                Arc::new(Field::new("key", key.data_type().clone(), false)),
                Arc::new(key) as ArrayRef,
            ),
            (
                Arc::new(Field::new("value", DataType::Int64, true)),
                Arc::new(Int64Array::from(vec![2])) as ArrayRef,
            ),
        ]);
        let map: ArrayRef = Arc::new(
            MapArray::try_new(
                Arc::new(Field::new("entries", entries.data_type().clone(), false)),
                datafusion::arrow::buffer::OffsetBuffer::from_lengths([1]),
                entries,
                None,
                false,
            )
            .unwrap(),
        );
        assert_eq!(json(map), r#"[{"v":{"{\"a\":1}":2}}]"#);
    }

    #[test]
    fn what_json_writes_as_it_is_is_left_alone() {
        let list =
            ListArray::from_iter_primitive::<datafusion::arrow::datatypes::Int64Type, _, _>(vec![
                Some(vec![Some(1)]),
            ]);
        assert!(!needs_reshape(list.data_type()));
    }
}
