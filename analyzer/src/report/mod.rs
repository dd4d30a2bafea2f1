//! `analyze report`: the incident report. It opens with the capture's facts and how
//! complete it is, then the top findings, then every other canned query. Markdown pastes
//! into GitHub or Jira as tables; HTML is one self-contained file with charts.
//!
//! The report flows one way: [`model`] runs the queries once (the findings are canned
//! queries of `queries/` marked `-- finding:`), [`chart_data`] bins the charts' numbers on
//! [`axes`]' round steps, and [`markdown`] or [`html`] (with [`svg`]) only lay them out.
use std::{io::Write as _, path::Path};

use anyhow::{Context as _, Result, bail};
use datafusion::prelude::SessionContext;

use crate::capture::Capture;

pub mod axes;
pub mod chart_data;
pub mod code_span;
pub mod html;
pub mod markdown;
pub mod model;
pub mod svg;

enum Kind {
    Markdown,
    Html,
}

pub async fn write(
    ctx: &SessionContext,
    captures: &[Capture],
    path: &Path,
    options: model::Options,
) -> Result<()> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    let kind = match extension.as_deref() {
        Some("md" | "markdown") => Kind::Markdown,
        Some("html" | "htm") => Kind::Html,
        _ => bail!(
            "report {}: give a file ending in .md or .html",
            path.display()
        ),
    };
    let charts = matches!(kind, Kind::Html);
    let report = model::build(ctx, captures, &options, charts).await?;
    let text = match kind {
        Kind::Markdown => markdown::render(&report),
        Kind::Html => html::render(&report)?,
    };
    // As every `-o`: written beside the file, renamed over it once whole.
    let mut pending = crate::private_file::Pending::new(path)?;
    pending
        .file()
        .write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(pending.commit()?)
}
