//! Rendering query results: an aligned table for terminals, and CSV, JSON and Markdown for
//! scripts and incident tickets.
use std::io::Write;

use anyhow::{Context as _, Result};
use arrow::{
    array::RecordBatch,
    datatypes::{Schema, SchemaRef},
    util::display::{ArrayFormatter, FormatOptions},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned table for terminals.
    Table,
    /// CSV with a header row.
    Csv,
    /// A JSON array of objects, one per row; NULLs are written as null.
    Json,
    /// A GitHub/Jira-friendly Markdown table.
    Markdown,
}

/// Rows an aligned table shows. A table is for reading on a terminal, and it is laid out
/// only once every row is in: about 11 KB of memory a row on the 38 columns of
/// `SELECT * FROM syscalls`, so 200,000 rows took 2.2 GB and a whole capture would take
/// the machine. The rows past this are counted and said to be left out.
pub const TABLE_ROWS: usize = 1000;

/// Results written as they come, batch by batch, in one format: CSV, JSON and Markdown
/// hold nothing back, so an export of a whole capture needs no more memory than a batch.
pub struct Sink<W: Write> {
    format: State<W>,
}

enum State<W: Write> {
    Table {
        out: W,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        shown: usize,
        hidden: usize,
    },
    Csv {
        writer: Box<arrow::csv::Writer<W>>,
        schema: SchemaRef,
        wrote: bool,
    },
    Json {
        writer: arrow::json::Writer<W, arrow::json::writer::JsonArray>,
        /// Each column's name, made unique, where a name repeats.
        unique: Option<Vec<String>>,
    },
    Markdown(W),
}

impl<W: Write> Sink<W> {
    pub fn new(mut out: W, format: Format, schema: SchemaRef) -> Result<Self> {
        let format = match format {
            Format::Table => State::Table {
                out,
                schema,
                batches: Vec::new(),
                shown: 0,
                hidden: 0,
            },
            Format::Csv => State::Csv {
                writer: Box::new(
                    arrow::csv::WriterBuilder::new()
                        .with_header(true)
                        .build(out),
                ),
                schema,
                wrote: false,
            },
            Format::Json => State::Json {
                writer: arrow::json::WriterBuilder::new()
                    .with_explicit_nulls(true)
                    .with_encoder_factory(crate::json_floats::NonFiniteAsText::factory())
                    .build::<_, arrow::json::writer::JsonArray>(out),
                unique: unique_names(&schema),
            },
            Format::Markdown => {
                markdown_header(&mut out, &schema).context("cannot write output")?;
                State::Markdown(out)
            }
        };
        Ok(Self { format })
    }

    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        let batch = &fixed_timestamps(batch)?;
        match &mut self.format {
            State::Table {
                batches,
                shown,
                hidden,
                ..
            } => {
                let take = batch.num_rows().min(TABLE_ROWS - *shown);
                if take > 0 {
                    batches.push(batch.slice(0, take));
                    *shown += take;
                }
                *hidden += batch.num_rows() - take;
            }
            State::Csv { writer, wrote, .. } => {
                writer.write(&flat(batch)?).context("cannot write output")?;
                *wrote = true;
            }
            State::Json { writer, unique } => {
                let batch = match unique {
                    Some(names) => &renamed(batch, names)?,
                    None => batch,
                };
                writer.write(batch).context("cannot write output")?
            }
            State::Markdown(out) => markdown_rows(out, batch).context("cannot write output")?,
        }
        Ok(())
    }

    /// Ends the output, and gives back where it went.
    pub fn finish(self) -> Result<W> {
        match self.format {
            State::Table {
                mut out,
                schema,
                batches,
                hidden,
                ..
            } => {
                let batches = without_controls(&schema, &batches)?;
                let table =
                    arrow::util::pretty::pretty_format_batches_with_schema(schema, &batches)?;
                writeln!(out, "{table}").context("cannot write output")?;
                // On stderr: the table's destination holds the table alone.
                if hidden > 0 {
                    let rows = if hidden == 1 { "row" } else { "rows" };
                    crate::say!(
                        "warning: {hidden} more {rows} not shown: a table shows the first \
                         {TABLE_ROWS}; --format csv, json or markdown writes every row"
                    );
                }
                Ok(out)
            }
            State::Csv {
                mut writer,
                schema,
                wrote,
            } => {
                if !wrote {
                    writer
                        .write(&flat(&RecordBatch::new_empty(schema))?)
                        .context("cannot write output")?;
                }
                Ok((*writer).into_inner())
            }
            State::Json { mut writer, .. } => {
                writer.finish().context("cannot write output")?;
                let mut out = writer.into_inner();
                writeln!(out).context("cannot write output")?;
                Ok(out)
            }
            State::Markdown(out) => Ok(out),
        }
    }
}

/// Each column's name, a repeated one made unique (`comm`, `comm_2`) and said once on
/// stderr; `None` where no name repeats. Table, CSV and Markdown place columns by position,
/// but a JSON object keyed twice by one name keeps one value in every parser: `SELECT
/// s.comm, p.comm` lost a column without a word.
fn unique_names(schema: &Schema) -> Option<Vec<String>> {
    let mut taken: std::collections::HashSet<String> =
        schema.fields().iter().map(|f| f.name().clone()).collect();
    let mut seen = std::collections::HashSet::new();
    let mut said = Vec::new();
    let names: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| {
            if seen.insert(f.name().as_str()) {
                return f.name().clone();
            }
            let name = (2..)
                .map(|i| format!("{}_{i}", f.name()))
                .find(|n| !taken.contains(n))
                .expect("a free name");
            taken.insert(name.clone());
            said.push(format!("{} as {name}", f.name()));
            name
        })
        .collect();
    if said.is_empty() {
        return None;
    }
    crate::say!(
        "warning: --format json: a column name repeats, and a JSON object holds each name \
         once: written {} (alias them with AS to choose)",
        said.join(", ")
    );
    Some(names)
}

/// `batch` with its columns named `names`, in order.
fn renamed(batch: &RecordBatch, names: &[String]) -> Result<RecordBatch> {
    let fields: Vec<arrow::datatypes::Field> = batch
        .schema()
        .fields()
        .iter()
        .zip(names)
        .map(|(f, name)| f.as_ref().clone().with_name(name))
        .collect();
    Ok(RecordBatch::try_new(
        std::sync::Arc::new(Schema::new(fields)),
        batch.columns().to_vec(),
    )?)
}

/// A batch whose timestamps are text of one width: every digit of the column's unit, and
/// `Z` for UTC. Arrow's own display drops trailing zeros (`.5Z`, or no fraction at all), so
/// a CSV sorted as text put `06Z` after `06.5Z`, and a spreadsheet saw three formats in one
/// column.
fn fixed_timestamps(batch: &RecordBatch) -> Result<RecordBatch> {
    use arrow::datatypes::{DataType, TimeUnit};
    if !batch
        .columns()
        .iter()
        .any(|c| matches!(c.data_type(), DataType::Timestamp(..)))
    {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        let DataType::Timestamp(unit, tz) = column.data_type() else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
            continue;
        };
        let fraction = match unit {
            TimeUnit::Second => "",
            TimeUnit::Millisecond => "%.3f",
            TimeUnit::Microsecond => "%.6f",
            TimeUnit::Nanosecond => "%.9f",
        };
        let zone = match tz.as_deref() {
            Some("UTC" | "+00:00" | "Z") => "Z",
            Some(_) => "%:z",
            None => "",
        };
        let format = format!("%Y-%m-%dT%H:%M:%S{fraction}{zone}");
        let options = arrow::compute::CastOptions {
            safe: true,
            format_options: FormatOptions::default()
                .with_timestamp_format(Some(&format))
                .with_timestamp_tz_format(Some(&format)),
        };
        columns.push(arrow::compute::cast_with_options(
            column,
            &DataType::Utf8,
            &options,
        )?);
        fields.push(field.as_ref().clone().with_data_type(DataType::Utf8));
    }
    Ok(RecordBatch::try_new(
        std::sync::Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// A batch whose list, struct and map cells are JSON text (`["a,b",null]`,
/// `{"p50":7}`): CSV has no nested values, and arrow's writer refuses them only after the
/// header is out. JSON keeps what the table's display loses: a comma inside an element,
/// and a NULL element.
fn flat(batch: &RecordBatch) -> Result<RecordBatch> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| f.data_type().is_nested())
    {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(batch.num_columns());
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
        if !field.data_type().is_nested() {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
            continue;
        }
        let text: arrow::array::StringArray = json_cells(field, column)?.into_iter().collect();
        fields.push(arrow::datatypes::Field::new(
            field.name(),
            arrow::datatypes::DataType::Utf8,
            true,
        ));
        columns.push(std::sync::Arc::new(text));
    }
    Ok(RecordBatch::try_new(
        std::sync::Arc::new(Schema::new(fields)),
        columns,
    )?)
}

/// Each cell of `column` as JSON text, `None` for a NULL cell.
fn json_cells(
    field: &arrow::datatypes::FieldRef,
    column: &arrow::array::ArrayRef,
) -> Result<Vec<Option<String>>> {
    let one = RecordBatch::try_new(
        std::sync::Arc::new(Schema::new(vec![field.as_ref().clone().with_name("v")])),
        vec![column.clone()],
    )?;
    let mut writer = arrow::json::WriterBuilder::new()
        .with_explicit_nulls(true)
        .with_encoder_factory(crate::json_floats::NonFiniteAsText::factory())
        .build::<_, arrow::json::writer::JsonArray>(Vec::new());
    writer.write(&one)?;
    writer.finish()?;
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&writer.into_inner())?;
    Ok(rows
        .into_iter()
        .map(|row| match row.get("v") {
            None | Some(serde_json::Value::Null) => None,
            Some(v) => Some(v.to_string()),
        })
        .collect())
}

/// Control characters as visible escapes (`\x1b`): a traced program chooses its paths and
/// names, and an escape sequence in one must not retitle or clear the reader's terminal.
pub fn visible(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.chars().any(char::is_control) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() {
                    format!("\\x{:02x}", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// The batches with control characters in every text column made visible.
fn without_controls(schema: &Schema, batches: &[RecordBatch]) -> Result<Vec<RecordBatch>> {
    use arrow::array::{Array as _, AsArray as _, StringArray};
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let columns = b
            .columns()
            .iter()
            .map(|c| -> Result<arrow::array::ArrayRef> {
                if !matches!(
                    c.data_type(),
                    arrow::datatypes::DataType::Utf8
                        | arrow::datatypes::DataType::LargeUtf8
                        | arrow::datatypes::DataType::Utf8View
                ) {
                    return Ok(c.clone());
                }
                let utf8 = arrow::compute::cast(c, &arrow::datatypes::DataType::Utf8)?;
                let s = utf8.as_string::<i32>();
                if s.iter().flatten().all(|v| !v.chars().any(char::is_control)) {
                    return Ok(utf8);
                }
                let v: StringArray = s.iter().map(|v| v.map(visible)).collect();
                Ok(std::sync::Arc::new(v))
            })
            .collect::<Result<Vec<_>>>()?;
        let fields: Vec<arrow::datatypes::Field> = schema
            .fields()
            .iter()
            .zip(&columns)
            .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
            .collect();
        out.push(RecordBatch::try_new(
            std::sync::Arc::new(Schema::new(fields)),
            columns,
        )?);
    }
    Ok(out)
}

/// A cell of a Markdown table. Markdown renders inline HTML and links: a path like
/// `<img onerror=...>` or `[x](javascript:...)` must read as text in the ticket, and
/// `/tmp/*x*` or `_y_` as written, not in italics.
pub fn markdown_cell(s: &str) -> String {
    let text = visible(s);
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    for (i, &c) in chars.iter().enumerate() {
        match c {
            // The mask of a secret too (`\*\*\*`, shown as `***`): two masks in one cell
            // made bold-italic text of what lay between them.
            // The backslash too: `\[` would otherwise escape the escape, and make a link.
            '\\' | '[' | ']' | '|' | '*' | '`' | '~' => {
                out.push('\\');
                out.push(c);
            }
            // Within a word (`total_ns`) an underscore emphasizes nothing, and stays bare.
            '_' if !(i > 0
                && chars[i - 1].is_alphanumeric()
                && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric())) =>
            {
                out.push_str("\\_");
            }
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // No control character is left: `visible` wrote a newline as `\x0a`.
            c => out.push(c),
        }
    }
    out
}

fn markdown_header(out: &mut dyn Write, schema: &Schema) -> Result<()> {
    let names: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| markdown_cell(f.name()))
        .collect();
    writeln!(out, "| {} |", names.join(" | "))?;
    writeln!(out, "|{}", names.iter().map(|_| "---|").collect::<String>())?;
    Ok(())
}

fn markdown_rows(out: &mut dyn Write, batch: &RecordBatch) -> Result<()> {
    let options = FormatOptions::default().with_null("");
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    for row in 0..batch.num_rows() {
        let cells: Vec<String> = formatters
            .iter()
            .map(|f| markdown_cell(&f.value(row).to_string()))
            .collect();
        writeln!(out, "| {} |", cells.join(" | "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::{
        array::{Int64Array, StringArray},
        datatypes::{DataType, Field},
    };

    use super::*;

    fn sample() -> (Schema, Vec<RecordBatch>) {
        let schema = Schema::new(vec![
            Field::new("syscall", DataType::Utf8, true),
            Field::new("calls", DataType::Int64, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![
                Arc::new(StringArray::from(vec![Some("read|x"), None])),
                Arc::new(Int64Array::from(vec![Some(3), Some(4)])),
            ],
        )
        .unwrap();
        (schema, vec![batch])
    }

    fn render(format: Format, schema: &Schema, batches: &[RecordBatch]) -> String {
        let mut sink = Sink::new(Vec::new(), format, Arc::new(schema.clone())).unwrap();
        for batch in batches {
            sink.push(batch).unwrap();
        }
        String::from_utf8(sink.finish().unwrap()).unwrap()
    }

    /// `array_agg(cmdline)` or `latency_percentiles(...)` as CSV: arrow's writer refused
    /// them after the header was out.
    #[test]
    fn csv_writes_nested_cells_as_text() {
        use arrow::array::Array as _;
        let list = arrow::array::ListArray::from_iter_primitive::<arrow::datatypes::Int64Type, _, _>(
            vec![Some(vec![Some(1), Some(2)]), None],
        );
        let p50 = Arc::new(Int64Array::from(vec![Some(7), None])) as arrow::array::ArrayRef;
        let q = arrow::array::StructArray::from(vec![(
            Arc::new(Field::new("p50", DataType::Int64, true)),
            p50,
        )]);
        let schema = Schema::new(vec![
            Field::new("l", list.data_type().clone(), true),
            Field::new("q", q.data_type().clone(), true),
        ]);
        let batch =
            RecordBatch::try_new(Arc::new(schema.clone()), vec![Arc::new(list), Arc::new(q)])
                .unwrap();
        assert_eq!(
            render(Format::Csv, &schema, &[batch]),
            "l,q\n\"[1,2]\",\"{\"\"p50\"\":7}\"\n,\"{\"\"p50\"\":null}\"\n"
        );
        // A comma inside an element and a NULL element read back apart.
        let mut strings = arrow::array::ListBuilder::new(arrow::array::StringBuilder::new());
        strings.values().append_value("a,b");
        strings.values().append_null();
        strings.append(true);
        let strings = strings.finish();
        let one = Schema::new(vec![Field::new("s", strings.data_type().clone(), true)]);
        let batch = RecordBatch::try_new(Arc::new(one.clone()), vec![Arc::new(strings)]).unwrap();
        assert_eq!(
            render(Format::Csv, &one, &[batch]),
            "s\n\"[\"\"a,b\"\",null]\"\n"
        );
        assert_eq!(render(Format::Csv, &schema, &[]), "l,q\n");
    }

    #[test]
    fn every_format_renders_rows_and_nulls() {
        let (schema, batches) = sample();
        assert_eq!(
            render(Format::Csv, &schema, &batches),
            "syscall,calls\nread|x,3\n,4\n"
        );
        assert_eq!(
            render(Format::Json, &schema, &batches),
            "[{\"syscall\":\"read|x\",\"calls\":3},{\"syscall\":null,\"calls\":4}]\n"
        );
        assert_eq!(
            render(Format::Markdown, &schema, &batches),
            "| syscall | calls |\n|---|---|\n| read\\|x | 3 |\n|  | 4 |\n"
        );
        let table = render(Format::Table, &schema, &batches);
        assert!(table.contains("| read|x  | 3     |"), "{table}");
    }

    #[test]
    fn what_a_traced_program_named_cannot_drive_a_terminal_or_a_ticket() {
        let schema = Schema::new(vec![Field::new("path", DataType::Utf8, true)]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![Arc::new(StringArray::from(vec![Some(
                "/x/\u{1b}]0;PWNED\u{7}<img src=x>[a](javascript:b)",
            )]))],
        )
        .unwrap();
        let table = render(Format::Table, &schema, std::slice::from_ref(&batch));
        assert!(
            !table.contains('\u{1b}') && table.contains("\\x1b]0;PWNED\\x07"),
            "{table}"
        );
        let md = render(Format::Markdown, &schema, &[batch]);
        assert!(
            md.contains("/x/\\\\x1b\\]0;PWNED\\\\x07&lt;img src=x&gt;\\[a\\](javascript:b)"),
            "{md}"
        );
        // A backslash of the program's own cannot cancel the escaping and make a link.
        assert_eq!(
            markdown_cell("x\\[click](https://e/)"),
            "x\\\\\\[click\\](https://e/)"
        );
        // Emphasis and code marks read as written, masks included; a word's own
        // underscores stay bare.
        assert_eq!(
            markdown_cell("/w/*star*_under_ `c` ~s~ total_ns --password=*** --token ***"),
            "/w/\\*star\\*\\_under\\_ \\`c\\` \\~s\\~ total_ns \
             --password=\\*\\*\\* --token \\*\\*\\*"
        );
    }

    #[test]
    fn empty_results_keep_their_header() {
        let (schema, _) = sample();
        assert_eq!(render(Format::Csv, &schema, &[]), "syscall,calls\n");
        assert_eq!(render(Format::Json, &schema, &[]), "[]\n");
        assert_eq!(
            render(Format::Markdown, &schema, &[]),
            "| syscall | calls |\n|---|---|\n"
        );
    }

    #[test]
    fn timestamps_keep_every_digit_of_their_unit() {
        use arrow::array::{Array as _, TimestampMicrosecondArray, TimestampNanosecondArray};
        let us = TimestampMicrosecondArray::from(vec![
            Some(1_733_000_000_500_000),
            Some(1_733_000_000_000_000),
            None,
        ])
        .with_timezone("UTC");
        let ns =
            TimestampNanosecondArray::from(vec![Some(1_733_000_000_000_000_001), Some(0), None]);
        let schema = Schema::new(vec![
            arrow::datatypes::Field::new("us", us.data_type().clone(), true),
            arrow::datatypes::Field::new("ns", ns.data_type().clone(), true),
        ]);
        let batch = RecordBatch::try_new(
            std::sync::Arc::new(schema.clone()),
            vec![std::sync::Arc::new(us), std::sync::Arc::new(ns)],
        )
        .unwrap();
        let csv = render(Format::Csv, &schema, std::slice::from_ref(&batch));
        assert_eq!(
            csv,
            "us,ns\n2024-11-30T20:53:20.500000Z,2024-11-30T20:53:20.000000001\n\
             2024-11-30T20:53:20.000000Z,1970-01-01T00:00:00.000000000\n,\n"
        );
        let json = render(Format::Json, &schema, &[batch]);
        assert!(
            json.contains(r#""us":"2024-11-30T20:53:20.000000Z""#),
            "{json}"
        );
        assert!(json.contains(r#""us":null"#), "{json}");
    }
}
