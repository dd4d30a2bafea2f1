//! Rendering query results: an aligned table for terminals, and CSV, JSON and Markdown for
//! scripts and incident tickets.
use std::io::Write;

use anyhow::{Context as _, Result};
use arrow::{
    array::RecordBatch,
    datatypes::Schema,
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

pub fn write(
    out: &mut dyn Write,
    format: Format,
    schema: &Schema,
    batches: &[RecordBatch],
) -> Result<()> {
    let schema = std::sync::Arc::new(schema.clone());
    match format {
        Format::Table => {
            let batches = without_controls(&schema, batches)?;
            let table = arrow::util::pretty::pretty_format_batches_with_schema(schema, &batches)?;
            writeln!(out, "{table}").context("cannot write output")?;
        }
        Format::Csv => {
            let mut writer = arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(out);
            if batches.is_empty() {
                writer.write(&RecordBatch::new_empty(schema))?;
            }
            for batch in batches {
                writer.write(batch)?;
            }
        }
        Format::Json => {
            let mut writer = arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, arrow::json::writer::JsonArray>(out);
            for batch in batches {
                writer.write(batch)?;
            }
            writer.finish()?;
            writeln!(writer.into_inner()).context("cannot write output")?;
        }
        Format::Markdown => markdown(out, &schema, batches)?,
    }
    Ok(())
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
/// `<img onerror=...>` or `[x](javascript:...)` must read as text in the ticket.
pub fn markdown_cell(s: &str) -> String {
    // The backslash first: `\[` would otherwise escape the escape, and make a link again.
    visible(s)
        .replace('\\', "\\\\")
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('[', "\\[")
        .replace(']', "\\]")
        .replace('|', "\\|")
        .replace('\n', " ")
}

fn markdown(out: &mut dyn Write, schema: &Schema, batches: &[RecordBatch]) -> Result<()> {
    let names: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| markdown_cell(f.name()))
        .collect();
    writeln!(out, "| {} |", names.join(" | "))?;
    writeln!(out, "|{}", names.iter().map(|_| "---|").collect::<String>())?;
    let options = FormatOptions::default().with_null("");
    for batch in batches {
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
        let mut out = Vec::new();
        write(&mut out, format, schema, batches).unwrap();
        String::from_utf8(out).unwrap()
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
}
