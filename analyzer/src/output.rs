//! Rendering query results: an aligned table for terminals, and CSV, JSON and Markdown for
//! scripts and incident tickets.
use std::io::Write;

use anyhow::{Context as _, Result};
use arrow::{
    array::RecordBatch,
    datatypes::{Schema, SchemaRef},
    util::display::{ArrayFormatter, FormatOptions},
};

use crate::json_shape;

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

/// Characters a table's cell shows. Laying out a cell of megabytes (an `array_agg` of every
/// path, `repeat`) took the table minutes, and a terminal shows a screen of it at best.
pub const TABLE_CELL: usize = 2000;

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
        writer: Box<crate::csv_out::CsvWriter<W>>,
        schema: SchemaRef,
        wrote: bool,
    },
    Json {
        writer: arrow::json::Writer<W, arrow::json::writer::JsonArray>,
        /// Each column's name, made unique, where a name repeats.
        unique: Option<Vec<String>>,
    },
    /// The header waits for the first batch, as CSV's does: one refused (a time past any
    /// date) left a header on stdout before the error (helper-93).
    Markdown {
        out: W,
        schema: SchemaRef,
        wrote: bool,
    },
}

impl<W: Write> Sink<W> {
    pub fn new(out: W, format: Format, schema: SchemaRef) -> Result<Self> {
        // A table, CSV and Markdown have nothing to lay a row out on; JSON writes `{}`.
        anyhow::ensure!(
            !schema.fields().is_empty() || format == Format::Json,
            "the answer has no columns, which --format {} cannot show: name a column in \
             SELECT, or use --format json",
            format_name(format)
        );
        if matches!(format, Format::Json | Format::Csv) {
            warn_struct_renames(format, &schema);
        }
        let format = match format {
            Format::Table => State::Table {
                out,
                schema,
                batches: Vec::new(),
                shown: 0,
                hidden: 0,
            },
            Format::Csv => State::Csv {
                writer: Box::new(crate::csv_out::CsvWriter::new(out)),
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
            Format::Markdown => State::Markdown {
                out,
                schema,
                wrote: false,
            },
        };
        Ok(Self { format })
    }

    pub fn push(&mut self, batch: &RecordBatch) -> Result<()> {
        crate::timestamp_range::check(batch)?;
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
                let batch = &json_ready(batch)?;
                let batch = match unique {
                    Some(names) => &renamed(batch, names)?,
                    None => batch,
                };
                writer.write(batch).context("cannot write output")?
            }
            State::Markdown { out, schema, wrote } => {
                if !*wrote {
                    markdown_header(out, schema).context("cannot write output")?;
                    *wrote = true;
                }
                markdown_rows(out, batch).context("cannot write output")?
            }
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
                let (schema, batches, cut) = table_text(&schema, &batches)?;
                let table =
                    arrow::util::pretty::pretty_format_batches_with_schema(schema, &batches)?;
                writeln!(out, "{table}").context("cannot write output")?;
                if cut > 0 {
                    let cells = if cut == 1 { "cell" } else { "cells" };
                    crate::say!(
                        "warning: {cut} {cells} longer than {TABLE_CELL} characters cut \
                         short (…): --format csv, json or markdown writes them whole"
                    );
                }
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
                writer.into_inner().context("cannot write output")
            }
            State::Json { mut writer, .. } => {
                writer.finish().context("cannot write output")?;
                let mut out = writer.into_inner();
                writeln!(out).context("cannot write output")?;
                Ok(out)
            }
            State::Markdown {
                mut out,
                schema,
                wrote,
            } => {
                if !wrote {
                    markdown_header(&mut out, &schema).context("cannot write output")?;
                }
                Ok(out)
            }
        }
    }
}

/// Each column's name, a repeated one made unique (`comm`, `comm_2`) and said once on
/// stderr; `None` where no name repeats. Table, CSV and Markdown place columns by position,
/// but a JSON object keyed twice by one name keeps one value in every parser: `SELECT
/// s.comm, p.comm` lost a column without a word.
fn unique_names(schema: &Schema) -> Option<Vec<String>> {
    let names = json_shape::unique(schema.fields().iter().map(|f| f.name().as_str()));
    let said: Vec<String> = schema
        .fields()
        .iter()
        .zip(&names)
        .filter(|(f, name)| f.name() != *name)
        .map(|(f, name)| format!("{} as {name}", f.name()))
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

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Table => "table",
        Format::Csv => "csv",
        Format::Json => "json",
        Format::Markdown => "markdown",
    }
}

/// Says once which struct fields JSON (or a CSV's nested cell) writes under another name:
/// a JSON object holds each name once.
fn warn_struct_renames(format: Format, schema: &Schema) {
    let said: Vec<String> = schema
        .fields()
        .iter()
        .flat_map(|f| json_shape::renamed_fields(f.data_type()))
        .collect();
    if !said.is_empty() {
        let format = format_name(format);
        crate::say!(
            "warning: --format {format}: a struct's field name repeats, and a JSON object \
             holds each name once: written {}",
            said.join(", ")
        );
    }
}

/// `batch` with every nested column JSON can hold as it is: map keys as text, struct
/// field names unique (`json_shape`).
fn json_ready(batch: &RecordBatch) -> Result<RecordBatch> {
    if !batch
        .schema()
        .fields()
        .iter()
        .any(|f| json_shape::needs_reshape(f.data_type()))
    {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .map(json_shape::reshape)
        .collect::<Result<Vec<_>, _>>()?;
    let fields: Vec<arrow::datatypes::Field> = batch
        .schema()
        .fields()
        .iter()
        .zip(&columns)
        .map(|(f, c)| f.as_ref().clone().with_data_type(c.data_type().clone()))
        .collect();
    Ok(RecordBatch::try_new(
        std::sync::Arc::new(Schema::new(fields)),
        columns,
    )?)
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
/// column. The report's tables show them the same way.
pub(crate) fn fixed_timestamps(batch: &RecordBatch) -> Result<RecordBatch> {
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
        let text: arrow::array::StringArray = json_shape::json_text(column)?.into_iter().collect();
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

/// Control characters as visible escapes (`\x1b`), and the marks that reorder text
/// (`\u{202e}`): a traced program chooses its paths and names, and an escape sequence in one
/// must not retitle or clear the reader's terminal, nor a right-to-left override show
/// `/tmp/\u{202e}fdp.exe` as `/tmp/exe.pdf`.
pub fn visible(s: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| c.is_control() || reorders(c);
    if !s.chars().any(hidden) {
        return std::borrow::Cow::Borrowed(s);
    }
    std::borrow::Cow::Owned(
        s.chars()
            .map(|c| {
                if c.is_control() {
                    format!("\\x{:02x}", c as u32)
                } else if reorders(c) {
                    format!("\\u{{{:04x}}}", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect(),
    )
}

/// Unicode's explicit embeddings, overrides and isolates, which reorder what follows them.
fn reorders(c: char) -> bool {
    use unicode_bidi::BidiClass::*;
    !c.is_ascii()
        && matches!(
            unicode_bidi::bidi_class(c),
            LRE | RLE | LRO | RLO | PDF | LRI | RLI | FSI | PDI
        )
}

/// A cell as a table or Markdown shows it: a nested value as its JSON text (`["a, b"]`,
/// `[null]`, `[""]`), which arrow's display shows as `[a, b]`, `[]` and `[]`; anything
/// else as arrow displays it.
fn cell_texts(
    column: &arrow::array::ArrayRef,
    options: &FormatOptions,
) -> Result<Vec<Option<String>>> {
    use arrow::array::Array as _;
    if column.data_type().is_nested() {
        return Ok(json_shape::json_text(column)?);
    }
    let f = ArrayFormatter::try_new(column.as_ref(), options)?;
    Ok((0..column.len())
        .map(|r| column.is_valid(r).then(|| f.value(r).to_string()))
        .collect())
}

/// The table's cells as text, each cut at [`TABLE_CELL`] characters, with control
/// characters made visible at every depth and in the column names: a path inside
/// `array_agg(path)`, or a dictionary's value, reached the terminal raw and could retitle
/// or clear it. Returns the schema, the batches and how many cells were cut.
fn table_text(
    schema: &Schema,
    batches: &[RecordBatch],
) -> Result<(SchemaRef, Vec<RecordBatch>, usize)> {
    use arrow::{
        array::StringArray,
        datatypes::{DataType, Field},
    };
    // As arrow's table shows them, a value it cannot display included.
    let options = FormatOptions::default().with_display_error(true);
    let text_schema: SchemaRef = std::sync::Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(visible(f.name()), DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ));
    let mut cut = 0;
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let columns = b
            .columns()
            .iter()
            .map(|c| -> Result<arrow::array::ArrayRef> {
                let text: StringArray = cell_texts(c, &options)?
                    .into_iter()
                    .map(|cell| {
                        cell.map(|cell| {
                            let cell = visible(&cell);
                            match cell.char_indices().nth(TABLE_CELL) {
                                Some((at, _)) => {
                                    cut += 1;
                                    format!("{}\u{2026}", &cell[..at])
                                }
                                None => cell.into_owned(),
                            }
                        })
                    })
                    .collect();
                Ok(std::sync::Arc::new(text))
            })
            .collect::<Result<Vec<_>>>()?;
        out.push(RecordBatch::try_new(text_schema.clone(), columns)?);
    }
    Ok((text_schema, out, cut))
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
    let options = FormatOptions::default();
    let texts = batch
        .columns()
        .iter()
        .map(|c| cell_texts(c, &options))
        .collect::<Result<Vec<_>>>()?;
    for row in 0..batch.num_rows() {
        let cells: Vec<String> = texts
            .iter()
            .map(|t| t[row].as_deref().map(markdown_cell).unwrap_or_default())
            .collect();
        writeln!(out, "| {} |", cells.join(" | "))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::{
        array::{Array as _, Int64Array, StringArray},
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

    /// Inside a list, a dictionary's value or a column's name, a control character
    /// reached the terminal raw: `array_agg(path)` is an everyday query.
    #[test]
    fn a_table_shows_no_control_character_at_any_depth() {
        let mut paths = arrow::array::ListBuilder::new(arrow::array::StringBuilder::new());
        paths.values().append_value("/x\u{1b}[2J");
        paths.append(true);
        let paths = paths.finish();
        let names: arrow::array::DictionaryArray<arrow::datatypes::Int32Type> =
            vec!["\u{1b}]0;PWNED\u{7}"].into_iter().collect();
        let schema = Schema::new(vec![
            Field::new("p\u{1b}[31m", paths.data_type().clone(), true),
            Field::new("d", names.data_type().clone(), true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![Arc::new(paths), Arc::new(names)],
        )
        .unwrap();
        let table = render(Format::Table, &schema, &[batch]);
        assert!(
            !table.chars().any(|c| c.is_control() && c != '\n'),
            "{table}"
        );
        // Inside a list the cell is JSON text, whose escape is JSON's own.
        for shown in ["p\\x1b[31m", r#"["/x\u001b[2J"]"#, "\\x1b]0;PWNED\\x07"] {
            assert!(table.contains(shown), "{shown} in {table}");
        }
    }

    /// Arrow's display showed `[NULL]`, `[]` and `['']` alike, and `['a, b']` as `['a','b']`;
    /// a right-to-left override showed a name backwards.
    #[test]
    fn a_table_tells_nested_values_apart_and_shows_reordering_marks() {
        let mut lists = arrow::array::ListBuilder::new(arrow::array::StringBuilder::new());
        lists.values().append_null();
        lists.append(true);
        lists.append(true);
        lists.values().append_value("");
        lists.append(true);
        lists.values().append_value("a, b");
        lists.append(true);
        lists.values().append_value("a");
        lists.values().append_value("b");
        lists.append(true);
        lists.append(false);
        let lists = lists.finish();
        let names = StringArray::from(vec![Some("/tmp/\u{202e}fdp.exe"); 6]);
        let schema = Schema::new(vec![
            Field::new("l", lists.data_type().clone(), true),
            Field::new("n", DataType::Utf8, true),
        ]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![Arc::new(lists), Arc::new(names)],
        )
        .unwrap();
        let table = render(Format::Table, &schema, std::slice::from_ref(&batch));
        let cells: Vec<&str> = table
            .lines()
            .skip(3)
            .filter(|l| l.starts_with('|'))
            .map(|l| l.split('|').nth(1).unwrap().trim())
            .collect();
        assert_eq!(
            cells,
            [
                r#"[null]"#,
                "[]",
                r#"[""]"#,
                r#"["a, b"]"#,
                r#"["a","b"]"#,
                ""
            ]
        );
        assert!(table.contains("/tmp/\\u{202e}fdp.exe"), "{table}");
        assert!(!table.contains('\u{202e}'), "{table}");
        let md = render(Format::Markdown, &schema, &[batch]);
        assert!(md.contains(r#"| \[""\] |"#), "{md}");
        assert!(md.contains(r#"| \[null\] |"#), "{md}");
    }

    /// A cell of megabytes took minutes to lay out; it is cut, and CSV keeps it whole.
    #[test]
    fn a_table_cuts_a_long_cell_and_csv_keeps_it() {
        let long = "x ".repeat(50_000) + "y";
        let schema = Schema::new(vec![Field::new("s", DataType::Utf8, true)]);
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![Arc::new(StringArray::from(vec![Some(long.as_str()), None]))],
        )
        .unwrap();
        let table = render(Format::Table, &schema, std::slice::from_ref(&batch));
        let cell = format!("{}\u{2026}", &long[..TABLE_CELL]);
        assert!(table.contains(&cell), "{table}");
        // Six lines of the cell's width: three borders, the header and the two rows.
        assert!(table.len() < 7 * (TABLE_CELL + 10), "{}", table.len());
        let csv = render(Format::Csv, &schema, &[batch]);
        assert_eq!(csv, format!("s\n{long}\n\"\"\n"));
    }

    /// Parsed back into JSON values, a DECIMAL(38) in a list became a float, and a
    /// struct's fields were sorted by name.
    #[test]
    fn a_nested_cell_in_csv_is_arrows_own_json_text() {
        let decimals = arrow::array::Decimal128Array::from(vec![
            12_345_678_901_234_567_890_123_456_789_123_i128,
        ])
        .with_precision_and_scale(38, 3)
        .unwrap();
        let z: arrow::array::ArrayRef = Arc::new(Int64Array::from(vec![1]));
        let d: arrow::array::ArrayRef = Arc::new(decimals);
        let s = arrow::array::StructArray::from(vec![
            (Arc::new(Field::new("z", DataType::Int64, true)), z),
            (Arc::new(Field::new("d", d.data_type().clone(), true)), d),
        ]);
        let schema = Schema::new(vec![Field::new("s", s.data_type().clone(), true)]);
        let batch = RecordBatch::try_new(Arc::new(schema.clone()), vec![Arc::new(s)]).unwrap();
        assert_eq!(
            render(Format::Csv, &schema, &[batch]),
            "s\n\"{\"\"z\"\":1,\"\"d\"\":12345678901234567890123456789.123}\"\n"
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
