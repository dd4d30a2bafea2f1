//! The report as one self-contained HTML page: the template in `analyzer/templates/`
//! lays it out and escapes every cell; the charts are SVG drawn by [`svg`](super::svg).
use anyhow::{Context as _, Result};
use askama::Template;

use super::{model::Report, svg};

#[derive(Template)]
#[template(path = "report.html")]
struct Page<'a> {
    r: &'a Report,
    /// One SVG per chart of the model, in its order, with its note.
    charts: Vec<(String, &'a str)>,
}

pub fn render(r: &Report) -> Result<String> {
    let charts = r
        .charts
        .iter()
        .map(|f| Ok((svg::draw(&f.chart)?, f.note.as_str())))
        .collect::<Result<_>>()?;
    Page { r, charts }
        .render()
        .context("cannot lay out the HTML report")
}

mod filters {
    use askama::{Result, Values, filters::Safe};

    /// A note's text, escaped, with its code spans (CommonMark's, as the Markdown report
    /// reads them) set as code.
    #[askama::filter_fn]
    pub fn code(s: impl ToString, _: &dyn Values) -> Result<Safe<String>> {
        use crate::report::code_span::{Piece, pieces};
        let escape = |t: &str| {
            t.replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
        };
        let mut out = String::new();
        for piece in pieces(&s.to_string()) {
            match piece {
                Piece::Text(t) => out += &escape(t),
                Piece::Code(c) => {
                    out += "<code>";
                    out += &escape(c);
                    out += "</code>";
                }
            }
        }
        Ok(Safe(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{Column, Table};

    fn table(cell: &str) -> Table {
        Table {
            title: "t <b>".into(),
            note: "see `is_waiting` & <i>".into(),
            query: Some("q".into()),
            columns: vec![Column {
                name: "c".into(),
                numeric: false,
            }],
            rows: vec![vec![cell.into()]],
            total_rows: 1,
        }
    }

    #[test]
    fn every_cell_and_note_is_escaped_and_nothing_runs() {
        let r = Report {
            title: "Incident report: <script>".into(),
            facts: table("x"),
            findings: vec![table("<img src=x onerror=alert(1)>")],
            charts: Vec::new(),
            details: vec![table("a\"b")],
        };
        let page = render(&r).unwrap();
        assert!(
            !page.contains("<script") && !page.contains("<img"),
            "{page}"
        );
        assert!(page.contains("&lt;img src=x onerror=alert(1)&gt;") || page.contains("&#60;img"));
        assert!(
            page.contains("see <code>is_waiting</code> &amp; &lt;i&gt;"),
            "{page}"
        );
        assert!(page.contains("Content-Security-Policy"));
    }
}
