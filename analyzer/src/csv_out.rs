//! CSV as RFC 4180 writes it, with the one distinction arrow's writer drops: an empty
//! string is `""` and NULL an empty cell, as DuckDB's and PostgreSQL's own writers keep
//! them. Arrow wrote both as an empty cell, so `path = ''` (glibc's `fstat` is
//! `newfstatat(fd, "", AT_EMPTY_PATH)`) read back as NULL in every reader.
use std::io::{self, Write};

use arrow::{
    array::{Array, RecordBatch},
    datatypes::Schema,
    error::ArrowError,
    util::display::{ArrayFormatter, FormatOptions},
};

/// A CSV writer of flat batches (nested cells already made text).
pub struct CsvWriter<W: Write> {
    out: W,
    header: bool,
    cell: String,
    /// A batch's lines, written to `out` at once: stdout flushes at every line break.
    lines: Vec<u8>,
}

impl<W: Write> CsvWriter<W> {
    pub fn new(out: W) -> Self {
        Self {
            out,
            header: false,
            cell: String::new(),
            lines: Vec::new(),
        }
    }

    /// Writes the header, once, before the first rows.
    pub fn header(&mut self, schema: &Schema) -> io::Result<()> {
        if self.header {
            return Ok(());
        }
        self.header = true;
        let names: Vec<Option<&str>> = schema
            .fields()
            .iter()
            .map(|f| Some(f.name().as_str()))
            .collect();
        write_row(&mut self.lines, &names)
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), ArrowError> {
        self.header(&batch.schema())?;
        // Arrow's own choices for each type's text (RFC 3339 times, hex bytes), NULL as
        // nothing: what arrow's CSV writer wrote before.
        let options = FormatOptions::default().with_null("");
        let formatters = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        // Logical nulls: a column of the untyped NULL type has no null buffer, and every
        // value of it read as valid, an empty string (helper-67).
        let nulls: Vec<_> = batch.columns().iter().map(|c| c.logical_nulls()).collect();
        let mut cells: Vec<String> = vec![String::new(); batch.num_columns()];
        let mut valid = vec![false; batch.num_columns()];
        for row in 0..batch.num_rows() {
            for (i, f) in formatters.iter().enumerate() {
                valid[i] = nulls[i].as_ref().is_none_or(|n| n.is_valid(row));
                cells[i].clear();
                if valid[i] {
                    self.cell.clear();
                    f.value(row)
                        .write(&mut self.cell)
                        .map_err(|e| ArrowError::CsvError(e.to_string()))?;
                    cells[i].push_str(&self.cell);
                }
            }
            let row: Vec<Option<&str>> = cells
                .iter()
                .zip(&valid)
                .map(|(c, v)| v.then_some(c.as_str()))
                .collect();
            write_row(&mut self.lines, &row)?;
        }
        self.out.write_all(&self.lines)?;
        self.lines.clear();
        Ok(())
    }

    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.write_all(&self.lines)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// One line: NULL (`None`) as an empty cell, an empty string as `""`, and a cell holding
/// a comma, a quote or a line break quoted, its quotes doubled. A row of one NULL cell is
/// `""` too: an empty line is no row to DuckDB or pandas, and the row must not vanish.
fn write_row(out: &mut impl Write, cells: &[Option<&str>]) -> io::Result<()> {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        match cell {
            None if cells.len() == 1 => out.write_all(b"\"\"")?,
            None => {}
            Some(text) if needs_quotes(text) => {
                out.write_all(b"\"")?;
                out.write_all(text.replace('"', "\"\"").as_bytes())?;
                out.write_all(b"\"")?;
            }
            Some(text) => out.write_all(text.as_bytes())?,
        }
    }
    out.write_all(b"\n")
}

fn needs_quotes(text: &str) -> bool {
    text.is_empty() || text.contains([',', '"', '\n', '\r'])
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::{
        array::{Int64Array, StringArray},
        datatypes::{DataType, Field},
    };

    use super::*;

    fn csv(batch: &RecordBatch) -> String {
        let mut w = CsvWriter::new(Vec::new());
        w.write(batch).unwrap();
        String::from_utf8(w.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn an_empty_string_is_quoted_and_null_is_nothing() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("path", DataType::Utf8, true),
            Field::new("n, m", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(StringArray::from(vec![
                    Some(""),
                    None,
                    Some("a \"b\",c"),
                    Some("x\ny"),
                ])),
                Arc::new(Int64Array::from(vec![Some(1), None, Some(-3), None])),
            ],
        )
        .unwrap();
        assert_eq!(
            csv(&batch),
            "path,\"n, m\"\n\"\",1\n,\n\"a \"\"b\"\",c\",-3\n\"x\ny\",\n"
        );
    }

    #[test]
    fn an_untyped_null_is_nothing() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Null, true),
            Field::new("b", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(arrow::array::NullArray::new(1)),
                Arc::new(Int64Array::from(vec![Some(1)])),
            ],
        )
        .unwrap();
        assert_eq!(csv(&batch), "a,b\n,1\n");
    }

    #[test]
    fn a_lone_null_cell_keeps_its_row() {
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8, true)]));
        let batch = RecordBatch::try_new(
            schema,
            vec![Arc::new(StringArray::from(vec![None, Some("a")]))],
        )
        .unwrap();
        assert_eq!(csv(&batch), "s\n\"\"\na\n");
    }
}
