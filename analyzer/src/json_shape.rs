//! Nested values reshaped for JSON, which `--format json` writes and `--format csv` uses for
//! a nested cell. A JSON object's keys are text and each is held once, and arrow's writer
//! knows neither: a map keyed by numbers (`map([1,2], ['a','b'])`) failed the whole output
//! with "Only UTF8 keys supported", and a struct whose fields share a name wrote
//! `{"a":1,"a":2}`, of which every parser keeps one value. Map keys become their text, as
//! JSON would write them, and a repeated field name takes the next free `_N` suffix, as a
//! repeated column name does.
use std::{collections::HashSet, sync::Arc};

use datafusion::arrow::{
    array::{
        Array, ArrayRef, AsArray, FixedSizeListArray, LargeListArray, ListArray, MapArray,
        StructArray,
    },
    compute::cast,
    datatypes::{DataType, FieldRef, Fields},
    error::ArrowError,
};

/// Whether `dt` holds a map whose keys are not text, or a struct with a repeated field
/// name, at any depth: only those columns are rebuilt.
pub fn needs_reshape(dt: &DataType) -> bool {
    match dt {
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) => {
                !text_keys(kv[0].data_type()) || needs_reshape(kv[1].data_type())
            }
            _ => false,
        },
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
            let keys = match map.keys().data_type() {
                dt if text_keys(dt) => map.keys().clone(),
                _ => cast(map.keys(), &DataType::Utf8)?,
            };
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
        DataType::List(f) => {
            let l = array.as_list::<i32>();
            let values = reshape(l.values())?;
            Arc::new(ListArray::try_new(
                retyped(f, &values),
                l.offsets().clone(),
                values,
                l.nulls().cloned(),
            )?)
        }
        DataType::LargeList(f) => {
            let l = array.as_list::<i64>();
            let values = reshape(l.values())?;
            Arc::new(LargeListArray::try_new(
                retyped(f, &values),
                l.offsets().clone(),
                values,
                l.nulls().cloned(),
            )?)
        }
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

/// Key types arrow's JSON writer takes as they are.
fn text_keys(dt: &DataType) -> bool {
    matches!(dt, DataType::Utf8 | DataType::LargeUtf8)
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
        array::{Int32Builder, Int64Array, MapBuilder, StringBuilder},
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

    #[test]
    fn what_json_writes_as_it_is_is_left_alone() {
        let list =
            ListArray::from_iter_primitive::<datafusion::arrow::datatypes::Int64Type, _, _>(vec![
                Some(vec![Some(1)]),
            ]);
        assert!(!needs_reshape(list.data_type()));
    }
}
