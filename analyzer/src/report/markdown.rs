//! The report as Markdown, which GitHub and Jira render as tables when pasted.
use std::fmt::Write as _;

use super::model::{Report, Table};
use crate::output::markdown_cell;

pub fn render(r: &Report) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# {}\n", markdown_cell(&r.title));
    section(&mut md, "##", &r.facts);
    let _ = writeln!(md, "## Top findings\n");
    for t in &r.findings {
        section(&mut md, "###", t);
    }
    let _ = writeln!(md, "## Details\n");
    for t in &r.details {
        section(&mut md, "###", t);
    }
    md
}

fn section(md: &mut String, level: &str, t: &Table) {
    let _ = writeln!(md, "{level} {}\n", t.title);
    match &t.query {
        Some(q) => {
            let _ = writeln!(md, "{} (`analyze query CAPTURE {q}`)\n", t.note);
        }
        None => {
            let _ = writeln!(md, "{}\n", t.note);
        }
    }
    if t.rows.is_empty() {
        md.push_str("_Nothing._\n\n");
        return;
    }
    let names: Vec<String> = t.columns.iter().map(|c| markdown_cell(&c.name)).collect();
    let _ = writeln!(md, "| {} |", names.join(" | "));
    let _ = writeln!(
        md,
        "|{}",
        t.columns
            .iter()
            .map(|c| if c.numeric { "---:|" } else { "---|" })
            .collect::<String>()
    );
    for row in &t.rows {
        let cells: Vec<String> = row.iter().map(|c| markdown_cell(c)).collect();
        let _ = writeln!(md, "| {} |", cells.join(" | "));
    }
    if let Some(total) = t.more() {
        let _ = writeln!(md, "\n_First {} of {total} rows._", t.rows.len());
    }
    md.push('\n');
}
