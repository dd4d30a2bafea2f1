//! `analyze report`: the incident report. It opens with the capture's facts and how
//! complete it is, then the top findings, then every canned query. Markdown pastes into
//! GitHub or Jira as tables; HTML is one self-contained file with charts.
use std::{fmt::Write as _, io::Write as _, path::Path, sync::Arc};

use anyhow::{Context as _, Result, bail};
use datafusion::{
    arrow::{
        array::{Array, ArrayRef, RecordBatch, StringArray},
        compute::{cast, concat_batches},
        datatypes::{DataType, Field, Schema},
        util::display::{ArrayFormatter, FormatOptions},
    },
    prelude::SessionContext,
};

use crate::{
    capture::Capture,
    charts::{self, escape},
    output, queries, run_sql,
};

/// Rows of a canned section shown in a report; the rest is a query away.
const SECTION_ROWS: usize = 30;
/// Columns of the latency heatmap and of the per-second chart.
const MAX_COLUMNS: usize = 240;
/// Log2 latency buckets shown: 1 ns to about 17 s.
const BUCKETS: usize = 35;

/// One table of results with a title and a sentence saying what it shows.
struct Section {
    title: String,
    note: String,
    schema: Schema,
    batches: Vec<RecordBatch>,
}

enum Kind {
    Markdown,
    Html,
}

pub async fn write(
    ctx: &SessionContext,
    captures: &[Capture],
    path: &Path,
    redact: bool,
) -> Result<()> {
    let kind = match path.extension().and_then(|e| e.to_str()) {
        Some("md" | "markdown") => Kind::Markdown,
        Some("html" | "htm") => Kind::Html,
        _ => bail!(
            "report {}: give a file ending in .md or .html",
            path.display()
        ),
    };
    let facts = facts(ctx, captures).await?;
    let findings = findings(ctx).await?;
    let mut canned = Vec::new();
    for q in queries::all() {
        let (schema, batches) = run_sql(ctx, &q.render(&[])?).await?;
        canned.push(Section {
            title: q.name.clone(),
            note: q.description.clone(),
            schema,
            batches,
        });
    }
    let mut names: Vec<String> = captures.iter().map(Capture::name).collect();
    let (mut facts, mut findings) = (facts, findings);
    if redact {
        // A report is written to be pasted into a ticket: every cell, and the names.
        for s in std::iter::once(&mut facts)
            .chain(findings.iter_mut())
            .chain(canned.iter_mut())
        {
            let (schema, batches) = crate::redact::batches(&s.schema, &s.batches)?;
            s.schema = schema;
            s.batches = batches;
        }
        for n in &mut names {
            *n = crate::redact::text(n).into_owned();
        }
    }
    let text = match kind {
        Kind::Markdown => markdown(&names, &facts, &findings, &canned)?,
        Kind::Html => {
            let charts = charts_html(ctx).await?;
            html(&names, &facts, &findings, &canned, &charts)?
        }
    };
    let mut f = crate::create(path)?;
    f.write_all(text.as_bytes())
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(())
}

/// Where, when, what, and how complete. Starts from the captures named on the command
/// line, so that a capture whose `capture` file was skipped still has its row, saying so.
async fn facts(ctx: &SessionContext, captures: &[Capture]) -> Result<Section> {
    let given = captures
        .iter()
        .map(|c| {
            format!(
                "({}, CAST({} AS BIGINT))",
                sql_string(&c.name()),
                c.skipped().len()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    let (schema, batches) = run_sql(
        ctx,
        &format!(
            "WITH given(capture, skipped_files) AS (VALUES {given}),
             w AS (SELECT capture, min(ts) AS first_call, max(ts) AS last_call
                    FROM syscalls GROUP BY capture)
         SELECT g.capture, c.host, c.kernel, c.started, c.ended, c.target,
                w.first_call, w.last_call, c.events, c.lost_events,
                CASE WHEN g.skipped_files > 0
                       THEN concat('unknown: ', CAST(g.skipped_files AS VARCHAR),
                                   ' bad file(s) skipped')
                     WHEN c.capture_id IS NULL THEN 'unknown: no capture row'
                     WHEN c.stopped_early IS NOT NULL
                       THEN concat('incomplete from ', CAST(c.incomplete_from AS VARCHAR),
                                   ': ', c.stopped_early)
                     WHEN c.events IS NULL THEN 'unknown: the recorder did not finish'
                     ELSE concat(CAST(round(100.0 * c.events / nullif(c.events + c.lost_events, 0), 3) AS VARCHAR), '%')
                END AS complete,
                g.skipped_files,
                c.min_duration_ns, c.command_line
         FROM given g LEFT JOIN capture c ON g.capture = c.capture
              LEFT JOIN w ON g.capture = w.capture
         ORDER BY c.started NULLS FIRST, g.capture"
        ),
    )
    .await?;
    let (schema, batches) = key_value(&schema, &batches)?;
    Ok(Section {
        title: "Capture".into(),
        note: "Where and when it was recorded, and how complete it is: `complete` is the \
               share of calls in scope recorded one by one; the rest are counted in \
               `aggregates`. It is unknown when bad files were skipped (`skipped_files`)."
            .into(),
        schema,
        batches,
    })
}

/// The facts turned on their side: a row per fact and a column per capture. As one row
/// per capture they ran far off a 1280-pixel page; as a list they fit it, and a phone.
/// Columns are numbered, not named by capture, so that a name is a cell that masking sees.
fn key_value(schema: &Schema, batches: &[RecordBatch]) -> Result<(Schema, Vec<RecordBatch>)> {
    let all = concat_batches(&Arc::new(schema.clone()), batches)?;
    let options = FormatOptions::default();
    let formatters = all
        .columns()
        .iter()
        .map(|a| ArrayFormatter::try_new(a.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    let mut fields = vec![Field::new("fact", DataType::Utf8, false)];
    let mut arrays: Vec<ArrayRef> = vec![Arc::new(StringArray::from_iter_values(
        schema.fields().iter().map(|f| f.name().clone()),
    ))];
    for row in 0..all.num_rows() {
        let name = if all.num_rows() == 1 {
            "value".to_string()
        } else {
            format!("capture {}", row + 1)
        };
        let values: StringArray = all
            .columns()
            .iter()
            .zip(&formatters)
            .map(|(a, f)| a.is_valid(row).then(|| f.value(row).to_string()))
            .collect();
        fields.push(Field::new(name, DataType::Utf8, true));
        arrays.push(Arc::new(values));
    }
    let schema = Schema::new(fields);
    let batch = RecordBatch::try_new(Arc::new(schema.clone()), arrays)?;
    Ok((schema, vec![batch]))
}

fn sql_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

async fn findings(ctx: &SessionContext) -> Result<Vec<Section>> {
    let specs = [
        (
            "Worst latency (p99)",
            "Syscalls that did work (not waiting, see `is_waiting`) with the highest \
             99th-percentile latency (at least 5 calls).",
            "SELECT syscall, count(*) AS calls,
                    CAST(percentile_cont(duration_ns, 0.99) AS BIGINT) AS p99_ns,
                    fmt_duration(CAST(percentile_cont(duration_ns, 0.99) AS BIGINT)) AS p99,
                    fmt_duration(max(duration_ns)) AS max
             FROM syscalls
             WHERE duration_ns IS NOT NULL AND NOT is_waiting(syscall, arg1, fd_path, duration_ns)
             GROUP BY syscall HAVING count(*) >= 5 ORDER BY p99_ns DESC, syscall LIMIT 5",
        ),
        (
            "Most time working",
            "Syscalls that did work and took the most time in total; `time_pct` is their \
             share of all time in calls that did work.",
            "WITH work AS (SELECT * FROM syscalls
                           WHERE NOT is_waiting(syscall, arg1, fd_path, duration_ns))
             SELECT syscall, count(*) AS calls, sum(duration_ns) AS total_ns,
                    fmt_duration(sum(duration_ns)) AS total,
                    round(100.0 * sum(duration_ns) / (SELECT sum(duration_ns) FROM work), 1) AS time_pct
             FROM work GROUP BY syscall ORDER BY total_ns DESC NULLS LAST, syscall LIMIT 5",
        ),
        (
            "Most time waiting",
            "Calls that waited for an event (a child, a ready fd, a timer, a lock, a peer): \
             where the threads were idle, apart from the work.",
            "SELECT syscall, count(*) AS calls, sum(duration_ns) AS total_ns,
                    fmt_duration(sum(duration_ns)) AS total
             FROM syscalls WHERE is_waiting(syscall, arg1, fd_path, duration_ns)
             GROUP BY syscall ORDER BY total_ns DESC NULLS LAST, syscall LIMIT 5",
        ),
        (
            "Error bursts",
            "The seconds with the most failed calls, and an example of each.",
            "SELECT date_trunc('second', ts) AS second, count(*) AS errors,
                    min(concat(syscall, ' ', errno, ' ', coalesce(path, addr, fd_path, ''))) AS example
             FROM syscalls WHERE errno IS NOT NULL
             GROUP BY 1 ORDER BY errors DESC, second LIMIT 5",
        ),
        (
            "Hottest files",
            "Files by time spent in calls on them.",
            "SELECT fd_path AS file, count(*) AS calls, fmt_bytes(sum(bytes)) AS bytes,
                    sum(duration_ns) AS total_ns, fmt_duration(sum(duration_ns)) AS total
             FROM syscalls WHERE fd_path LIKE '/%'
             GROUP BY 1 ORDER BY total_ns DESC NULLS LAST, 1 LIMIT 5",
        ),
        (
            "Hottest peers",
            "Network peers by time spent in calls on sockets connected to them.",
            "SELECT fd_path AS peer, count(*) AS calls, fmt_bytes(sum(bytes)) AS bytes,
                    sum(duration_ns) AS total_ns, fmt_duration(sum(duration_ns)) AS total
             FROM syscalls
             WHERE fd_path LIKE '%:%' AND fd_path NOT LIKE 'socket:%'
               AND fd_path NOT LIKE 'pipe:%' AND fd_path NOT LIKE 'anon_inode:%'
             GROUP BY 1 ORDER BY total_ns DESC NULLS LAST, 1 LIMIT 5",
        ),
    ];
    let mut out = Vec::new();
    for (title, note, sql) in specs {
        let (schema, batches) = run_sql(ctx, sql).await?;
        out.push(Section {
            title: title.into(),
            note: note.into(),
            schema,
            batches,
        });
    }
    Ok(out)
}

fn rows(section: &Section) -> usize {
    section.batches.iter().map(|b| b.num_rows()).sum()
}

/// The first `n` rows.
fn head(batches: &[RecordBatch], n: usize) -> Vec<RecordBatch> {
    let mut left = n;
    let mut out = Vec::new();
    for b in batches {
        if left == 0 {
            break;
        }
        let take = b.num_rows().min(left);
        out.push(b.slice(0, take));
        left -= take;
    }
    out
}

fn markdown_table(s: &Section, limit: usize) -> Result<String> {
    if rows(s) == 0 {
        return Ok("_Nothing._\n".into());
    }
    let mut buf = Vec::new();
    output::write(
        &mut buf,
        output::Format::Markdown,
        &s.schema,
        &head(&s.batches, limit),
    )?;
    let mut text = String::from_utf8(buf)?;
    if rows(s) > limit {
        let _ = writeln!(text, "\n_First {limit} of {} rows._", rows(s));
    }
    Ok(text)
}

fn markdown(
    captures: &[String],
    facts: &Section,
    findings: &[Section],
    canned: &[Section],
) -> Result<String> {
    let mut md = String::new();
    let _ = writeln!(md, "# Incident report: {}\n", captures.join(", "));
    let _ = writeln!(md, "## {}\n\n{}\n", facts.title, facts.note);
    md += &markdown_table(facts, 20)?;
    let _ = writeln!(md, "\n## Top findings\n");
    for s in findings {
        let _ = writeln!(md, "### {}\n\n{}\n", s.title, s.note);
        md += &markdown_table(s, SECTION_ROWS)?;
        md.push('\n');
    }
    let _ = writeln!(md, "## Details\n");
    for s in canned {
        let _ = writeln!(
            md,
            "### {}\n\n{} (`analyze query CAPTURE {}`)\n",
            s.title, s.note, s.title
        );
        md += &markdown_table(s, SECTION_ROWS)?;
        md.push('\n');
    }
    Ok(md)
}

fn html_table(s: &Section, limit: usize) -> Result<String> {
    if rows(s) == 0 {
        return Ok("<p class=\"none\">Nothing.</p>\n".into());
    }
    let mut t = String::from("<table><thead><tr>");
    for f in s.schema.fields() {
        let _ = write!(t, "<th>{}</th>", escape(f.name()));
    }
    t += "</tr></thead><tbody>\n";
    let options = FormatOptions::default().with_null("");
    for b in head(&s.batches, limit) {
        let formatters = b
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..b.num_rows() {
            t += "<tr>";
            for (f, col) in formatters.iter().zip(b.columns()) {
                let numeric = col.data_type().is_numeric();
                let _ = write!(
                    t,
                    "<td{}>{}</td>",
                    if numeric { " class=\"n\"" } else { "" },
                    escape(&f.value(row).to_string())
                );
            }
            t += "</tr>\n";
        }
    }
    t += "</tbody></table>\n";
    if rows(s) > limit {
        let _ = writeln!(
            t,
            "<p class=\"none\">First {limit} of {} rows.</p>",
            rows(s)
        );
    }
    Ok(t)
}

fn html(
    captures: &[String],
    facts: &Section,
    findings: &[Section],
    canned: &[Section],
    charts: &str,
) -> Result<String> {
    let title = format!("Incident report: {}", captures.join(", "));
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{t}</title>\n<style>\
         body{{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}}\
         h1{{font-size:22px}}h2{{margin-top:28px;border-bottom:1px solid #ddd}}h3{{font-size:15px}}\
         table{{border-collapse:collapse;margin:8px 0;font-size:12px}}\
         th,td{{border:1px solid #ddd;padding:3px 6px;text-align:left;vertical-align:top}}\
         th{{background:#f3f3f3}}td.n{{text-align:right;font-variant-numeric:tabular-nums}}\
         .note,.none{{color:#666}}figure{{margin:12px 0}}figcaption{{font-weight:600}}\
         </style></head><body>\n<h1>{t}</h1>\n",
        t = escape(&title)
    );
    let _ = writeln!(
        h,
        "<h2>{}</h2><p class=\"note\">{}</p>",
        escape(&facts.title),
        escape(&facts.note)
    );
    h += &html_table(facts, 20)?;
    h += "<h2>Charts</h2>\n";
    h += charts;
    h += "<h2>Top findings</h2>\n";
    for s in findings {
        let _ = writeln!(
            h,
            "<h3>{}</h3><p class=\"note\">{}</p>",
            escape(&s.title),
            escape(&s.note)
        );
        h += &html_table(s, SECTION_ROWS)?;
    }
    h += "<h2>Details</h2>\n";
    for s in canned {
        let _ = writeln!(
            h,
            "<h3>{}</h3><p class=\"note\">{} (<code>analyze query CAPTURE {}</code>)</p>",
            escape(&s.title),
            escape(&s.note),
            escape(&s.title)
        );
        h += &html_table(s, SECTION_ROWS)?;
    }
    h += "</body></html>\n";
    Ok(h)
}

/// A column as numbers (NULL as 0), whatever its numeric type.
fn numbers(batches: &[RecordBatch], i: usize) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for b in batches {
        let col: ArrayRef = cast(b.column(i), &DataType::Float64)?;
        let col = col
            .as_any()
            .downcast_ref::<datafusion::arrow::array::Float64Array>()
            .expect("cast to Float64");
        out.extend((0..col.len()).map(|r| if col.is_valid(r) { col.value(r) } else { 0.0 }));
    }
    Ok(out)
}

fn strings(batches: &[RecordBatch], i: usize) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for b in batches {
        let col: ArrayRef = cast(b.column(i), &DataType::Utf8)?;
        let col = col
            .as_any()
            .downcast_ref::<StringArray>()
            .expect("cast to Utf8");
        out.extend((0..col.len()).map(|r| col.value(r).to_string()));
    }
    Ok(out)
}

/// Charts: latency heatmap over time, calls and errors per second, and a latency
/// histogram for each of the syscalls that took the most time.
async fn charts_html(ctx: &SessionContext) -> Result<String> {
    let (_, span) = run_sql(
        ctx,
        "SELECT min(ts_ns) / 1000000000, max(ts_ns) / 1000000000 FROM syscalls",
    )
    .await?;
    let (first, last) = match (numbers(&span, 0)?.first(), numbers(&span, 1)?.first()) {
        (Some(&a), Some(&b)) if b >= a => (a as i64, b as i64),
        _ => return Ok("<p class=\"none\">No calls.</p>\n".into()),
    };
    let seconds = (last - first + 1) as usize;
    let per_col = seconds.div_ceil(MAX_COLUMNS).max(1);
    let columns = seconds.div_ceil(per_col);
    let unit = if per_col == 1 {
        "seconds since the first call".to_string()
    } else {
        format!("time, {per_col} s per column")
    };
    let col_of = |sec: f64| ((sec as i64 - first).max(0) as usize / per_col).min(columns - 1);

    let (_, heat) = run_sql(
        ctx,
        "SELECT ts_ns / 1000000000 AS sec,
                CAST(floor(log2(CAST(greatest(duration_ns, 0) AS DOUBLE) + 1)) AS BIGINT) AS bucket,
                count(*) AS calls
         FROM syscalls WHERE duration_ns IS NOT NULL GROUP BY 1, 2",
    )
    .await?;
    let mut grid = vec![vec![0u64; BUCKETS]; columns];
    let (secs, buckets, calls) = (numbers(&heat, 0)?, numbers(&heat, 1)?, numbers(&heat, 2)?);
    for ((s, b), c) in secs.iter().zip(&buckets).zip(&calls) {
        let b = (*b as usize).min(BUCKETS - 1);
        grid[col_of(*s)][b] += *c as u64;
    }
    let mut out = charts::heatmap("Latency over time", &unit, &grid, BUCKETS);

    let (_, per_sec) = run_sql(
        ctx,
        "SELECT ts_ns / 1000000000 AS sec, count(*) AS calls, count(errno) AS errors
         FROM syscalls GROUP BY 1",
    )
    .await?;
    let mut calls_s = vec![0.0; columns];
    let mut errors_s = vec![0.0; columns];
    let (secs, calls, errors) = (
        numbers(&per_sec, 0)?,
        numbers(&per_sec, 1)?,
        numbers(&per_sec, 2)?,
    );
    for ((s, c), e) in secs.iter().zip(&calls).zip(&errors) {
        calls_s[col_of(*s)] += c / per_col as f64;
        errors_s[col_of(*s)] += e / per_col as f64;
    }
    out += &charts::lines(
        "Calls and errors per second",
        &unit,
        &[
            ("calls", "#2c7fb8", calls_s),
            ("errors", "#c0392b", errors_s),
        ],
    );

    let (_, hist) = run_sql(
        ctx,
        "WITH top AS (SELECT syscall FROM syscalls GROUP BY syscall
                      ORDER BY sum(duration_ns) DESC NULLS LAST, syscall LIMIT 4)
         SELECT s.syscall, CAST(floor(log2(CAST(greatest(s.duration_ns, 0) AS DOUBLE) + 1)) AS BIGINT) AS bucket,
                count(*) AS calls
         FROM syscalls s JOIN top ON s.syscall = top.syscall
         WHERE s.duration_ns IS NOT NULL
         GROUP BY 1, 2 ORDER BY 1, 2",
    )
    .await?;
    let (names, buckets, calls) = (strings(&hist, 0)?, numbers(&hist, 1)?, numbers(&hist, 2)?);
    let mut order: Vec<String> = Vec::new();
    for n in &names {
        if !order.contains(n) {
            order.push(n.clone());
        }
    }
    for name in order {
        let mut counts = vec![0u64; BUCKETS];
        for ((n, b), c) in names.iter().zip(&buckets).zip(&calls) {
            if *n == name {
                counts[(*b as usize).min(BUCKETS - 1)] += *c as u64;
            }
        }
        out += &charts::histogram(&format!("{name} latency"), &counts);
    }
    Ok(out)
}
