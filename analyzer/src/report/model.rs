//! What a report says, computed once: the capture's facts, the top findings, the charts'
//! data and every other canned query. The Markdown and HTML renderers take this model
//! and decide only how it looks, so the two formats can never disagree on a number.
use std::sync::Arc;

use anyhow::Result;
use datafusion::{
    arrow::{
        array::{Array, RecordBatch},
        compute::concat_batches,
        datatypes::Schema,
        util::display::{ArrayFormatter, FormatOptions},
    },
    prelude::SessionContext,
};

use super::chart_data::{self, Figure};
use crate::{capture::Capture, queries, redact, run_sql};

/// Rows of a section shown in a report; the rest is a query away.
const SECTION_ROWS: usize = 30;

pub struct Report {
    pub title: String,
    /// Where, when, what and how complete: a row per fact, a column per capture.
    pub facts: Table,
    pub findings: Vec<Table>,
    /// Filled for the formats that draw them.
    pub charts: Vec<Figure>,
    pub details: Vec<Table>,
}

/// One table of results, as the text each cell shows.
pub struct Table {
    pub title: String,
    /// A sentence saying what it shows.
    pub note: String,
    /// The canned query that gives all of it: `analyze query CAPTURE NAME`.
    pub query: Option<String>,
    pub columns: Vec<Column>,
    pub rows: Vec<Vec<String>>,
    /// Rows the query gave, of which `rows` holds the first [`SECTION_ROWS`].
    pub total_rows: usize,
}

pub struct Column {
    pub name: String,
    /// Right-aligned, and never masked: a number holds no secret.
    pub numeric: bool,
}

/// What the user asked of the report.
pub struct Options {
    /// Mask secrets in every cell and name: a report is written to be shared.
    pub redact: bool,
    /// The narrowing flags, when the tables hold only some of the calls.
    pub narrowed: Option<String>,
}

/// The report; with `charts`, the charts' data too, for the formats that draw them.
pub async fn build(
    ctx: &SessionContext,
    captures: &[Capture],
    o: &Options,
    charts: bool,
) -> Result<Report> {
    let mut names: Vec<String> = captures.iter().map(Capture::name).collect();
    if o.redact {
        for n in &mut names {
            *n = redact::capture_name(n).into_owned();
        }
    }
    let mut facts = facts(ctx, captures, o.narrowed.is_some()).await?;
    if let Some(n) = &o.narrowed {
        let mut row = vec!["narrowed_to".to_string()];
        row.extend((1..facts.columns.len()).map(|_| {
            format!(
                "{n} (first_call, last_call, calls_shown, findings, charts and details; \
                 the other facts cover the whole capture)"
            )
        }));
        facts.rows.push(row);
        facts.total_rows += 1;
    }
    let counted = counted_calls(ctx).await?;
    let mut findings = Vec::new();
    let mut details = Vec::new();
    for q in queries::all() {
        // A table the captures cannot fill is left out, not shown empty; one that some of
        // them cannot fill names those.
        let mut lacking_note = String::new();
        if let Some(needs) = q.needs {
            let lacking = crate::needs::lacking(ctx, captures, needs).await?;
            if lacking.len() == captures.len() {
                continue;
            }
            for name in lacking {
                let name = match o.redact {
                    true => redact::capture_name(&name).into_owned(),
                    false => name,
                };
                lacking_note.push_str(&format!(
                    " Capture {} is not in it: {}.",
                    super::code_span::code_span(&crate::output::visible(&name)),
                    crate::needs::missing(needs)
                ));
            }
        }
        let sql = q.render(&[])?;
        let (schema, batches) = run_sql(ctx, &sql).await?;
        let (title, into) = match &q.finding {
            Some(title) => (title.clone(), &mut findings),
            None => (q.name.clone(), &mut details),
        };
        // A `--min-duration` capture's "worst latency" is of the slow calls it kept: the
        // section says so where the facts' `counted_by_request` is far from it.
        let mut note = q.description.clone();
        if counted > 0 {
            match crate::counted_in(&sql) {
                crate::Counted::LeftOut => note.push_str(&format!(
                    " Of the recorded calls only: {counted} calls the kernel counted without \
                     recording them are not in it."
                )),
                crate::Counted::NotInPercentiles => note.push_str(&format!(
                    " Its percentiles are of the recorded calls only: {counted} calls the \
                     kernel counted without recording them are in its counts alone."
                )),
                crate::Counted::Included => {}
            }
        }
        note.push_str(&lacking_note);
        into.push(Table::from_batches(
            title,
            note,
            Some(q.name.clone()),
            &schema,
            &batches,
        )?);
    }
    if o.redact {
        for t in std::iter::once(&mut facts)
            .chain(&mut findings)
            .chain(&mut details)
        {
            t.redact();
        }
    }
    let charts = if charts {
        chart_data::all(ctx, counted).await?
    } else {
        Vec::new()
    };
    Ok(Report {
        title: format!("Incident report: {}", names.join(", ")),
        facts,
        findings,
        charts,
        details,
    })
}

/// The calls the kernel counted without recording them (`--min-duration`, `--failed`, a
/// full ring), over every capture and the narrowing.
async fn counted_calls(ctx: &SessionContext) -> Result<i64> {
    let (_, batches) = run_sql(
        ctx,
        "SELECT CAST(coalesce(sum(calls), 0) AS BIGINT) AS calls FROM aggregates",
    )
    .await?;
    Ok(batches
        .first()
        .and_then(|b| crate::sql_values::int64(b, 0, 0))
        .unwrap_or(0))
}

impl Table {
    fn from_batches(
        title: String,
        note: String,
        query: Option<String>,
        schema: &Schema,
        batches: &[RecordBatch],
    ) -> Result<Self> {
        let columns = schema
            .fields()
            .iter()
            .map(|f| Column {
                name: f.name().clone(),
                numeric: f.data_type().is_numeric(),
            })
            .collect();
        let total_rows = batches.iter().map(RecordBatch::num_rows).sum();
        let options = FormatOptions::default().with_null("");
        let mut rows = Vec::new();
        'batches: for b in batches {
            let b = &crate::output::fixed_timestamps(b)?;
            let formatters = b
                .columns()
                .iter()
                .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
                .collect::<Result<Vec<_>, _>>()?;
            for r in 0..b.num_rows() {
                if rows.len() == SECTION_ROWS {
                    break 'batches;
                }
                rows.push(formatters.iter().map(|f| f.value(r).to_string()).collect());
            }
        }
        Ok(Self {
            title,
            note,
            query,
            columns,
            rows,
            total_rows,
        })
    }

    fn redact(&mut self) {
        for row in &mut self.rows {
            for (cell, column) in row.iter_mut().zip(&self.columns) {
                if !column.numeric {
                    *cell = redact::text(cell).into_owned();
                }
            }
        }
        // The facts' rows are named by their first cell, which holds no secret; a column
        // may be named by a capture, which can.
        for c in &mut self.columns {
            c.name = redact::capture_name(&c.name).into_owned();
        }
    }

    /// Rows left out of the report.
    pub fn more(&self) -> Option<usize> {
        (self.total_rows > self.rows.len()).then_some(self.total_rows)
    }
}

/// Where, when, what, and how complete. Starts from the captures named on the command
/// line, so that a capture whose `capture` file was skipped still has its row, saying so.
/// With `narrowed`, the first and last call are those the narrowing keeps, and a
/// `calls_shown` fact counts them: a window that misses the incident must not read as a
/// capture with no calls.
async fn facts(ctx: &SessionContext, captures: &[Capture], narrowed: bool) -> Result<Table> {
    let shown = match narrowed {
        true => "coalesce(w.calls, 0) AS calls_shown,",
        false => "",
    };
    let given = captures
        .iter()
        .map(|c| {
            format!(
                "({}, CAST({} AS BIGINT))",
                crate::sql_values::string_literal(&c.name()),
                c.skipped().len()
            )
        })
        .collect::<Vec<_>>()
        .join(", ");
    // A directory recorded into again holds several runs, a column each: their calls are
    // told apart by time (runs never overlap: one record per directory at a time). Only
    // where there are such runs, so that the usual capture's facts cost one plain scan.
    let (_, several) = run_sql(
        ctx,
        "SELECT capture FROM capture WHERE capture_id IS NOT NULL \
         GROUP BY capture HAVING count(*) > 1",
    )
    .await?;
    let mut several_runs: Vec<String> = Vec::new();
    for b in &several {
        several_runs.extend(crate::sql_values::texts(b, 0)?.into_iter().flatten());
    }
    const COUNTED: &str = "reason IN ('below_min_duration', 'not_failed')";
    let (one_run, runs) = match several_runs.is_empty() {
        true => ("TRUE".to_string(), None),
        false => {
            let list = several_runs
                .iter()
                .map(|c| crate::sql_values::string_literal(c))
                .collect::<Vec<_>>()
                .join(", ");
            (format!("capture NOT IN ({list})"), Some(list))
        }
    };
    let mut w = format!(
        "SELECT capture, CAST(NULL AS VARCHAR) AS capture_id, min(ts) AS first_call,
                max(ts) AS last_call, count(*) AS calls
         FROM syscalls WHERE {one_run} GROUP BY capture"
    );
    let mut k = format!(
        "SELECT capture, CAST(NULL AS VARCHAR) AS capture_id, sum(calls) AS counted
         FROM aggregates WHERE {COUNTED} AND {one_run} GROUP BY capture"
    );
    let mut on_run = "";
    if let Some(list) = runs {
        // A row's run: the last that started before it.
        let in_run = |t: &str| {
            format!("{t} >= r.started AND (r.next_started IS NULL OR {t} < r.next_started)")
        };
        w += &format!(
            " UNION ALL
             SELECT s.capture, r.capture_id, min(s.ts), max(s.ts), count(*)
             FROM syscalls s JOIN runs r ON s.capture = r.capture AND {}
             WHERE s.capture IN ({list})
             GROUP BY s.capture, r.capture_id",
            in_run("s.ts")
        );
        k += &format!(
            " UNION ALL
             SELECT a.capture, r.capture_id, sum(a.calls)
             FROM aggregates a JOIN runs r ON a.capture = r.capture AND {}
             WHERE a.{COUNTED} AND a.capture IN ({list})
             GROUP BY a.capture, r.capture_id",
            in_run("a.interval_start")
        );
        on_run = "runs AS (SELECT capture, capture_id, started,
                                  lead(started) OVER (PARTITION BY capture ORDER BY started)
                                    AS next_started
                           FROM capture WHERE capture_id IS NOT NULL),";
    }
    let (schema, batches) = run_sql(
        ctx,
        &format!(
            "WITH given(capture, skipped_files) AS (VALUES {given}),
             {on_run}
             w AS ({w}),
             k AS ({k})
         SELECT g.capture, c.host, c.kernel, c.started, c.ended, c.target,
                w.first_call, w.last_call, {shown} c.events, c.lost_events,
                coalesce(k.counted, 0) AS counted_by_request,
                CASE WHEN g.skipped_files > 0
                       THEN concat('unknown: ', CAST(g.skipped_files AS VARCHAR),
                                   ' bad file(s) skipped')
                     WHEN c.capture_id IS NULL THEN 'unknown: no capture row'
                     WHEN c.stopped_early IS NOT NULL
                       THEN concat('incomplete from ', CAST(c.incomplete_from AS VARCHAR),
                                   ': ', c.stopped_early)
                     WHEN c.events IS NULL THEN 'unknown: the recorder did not finish'
                     WHEN c.events + c.lost_events + coalesce(k.counted, 0) = 0
                       THEN 'no calls in scope'
                     WHEN c.events + c.lost_events = 0 THEN '100.0%'
                     ELSE concat(CAST(round(100.0 * c.events / (c.events + c.lost_events), 3)
                                 AS VARCHAR), '%')
                END AS complete,
                c.deleted_events AS deleted_by_max_size,
                c.lost_process_events,
                g.skipped_files,
                c.min_duration_ns, c.command_line
         FROM given g LEFT JOIN capture c ON g.capture = c.capture
              LEFT JOIN w ON g.capture = w.capture
                AND (w.capture_id IS NULL OR w.capture_id = c.capture_id)
              LEFT JOIN k ON g.capture = k.capture
                AND (k.capture_id IS NULL OR k.capture_id = c.capture_id)
         ORDER BY c.started NULLS FIRST, g.capture"
        ),
    )
    .await?;
    key_value(&schema, &batches)
}

/// The facts turned on their side: a row per fact and a column per capture. As one row
/// per capture they ran far off a 1280-pixel page; as a list they fit it, and a phone.
/// Columns are numbered, not named by capture, so that a name is a cell that masking sees.
fn key_value(schema: &Schema, batches: &[RecordBatch]) -> Result<Table> {
    let all =
        crate::output::fixed_timestamps(&concat_batches(&Arc::new(schema.clone()), batches)?)?;
    let options = FormatOptions::default();
    let formatters = all
        .columns()
        .iter()
        .map(|a| ArrayFormatter::try_new(a.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()?;
    let mut columns = vec![Column {
        name: "fact".into(),
        numeric: false,
    }];
    for capture in 0..all.num_rows() {
        columns.push(Column {
            name: if all.num_rows() == 1 {
                "value".to_string()
            } else {
                format!("capture {}", capture + 1)
            },
            numeric: false,
        });
    }
    let rows: Vec<Vec<String>> = schema
        .fields()
        .iter()
        .zip(all.columns().iter().zip(&formatters))
        .map(|(field, (array, f))| {
            std::iter::once(field.name().clone())
                .chain((0..all.num_rows()).map(|r| {
                    if array.is_valid(r) {
                        f.value(r).to_string()
                    } else {
                        String::new()
                    }
                }))
                .collect()
        })
        .collect();
    Ok(Table {
        title: "Capture".into(),
        note: "Where and when it was recorded, and how complete it is: `complete` is the \
               share of the calls to be recorded one by one that were, over the whole \
               capture; the rest were lost as detail and only counted, in `aggregates`. \
               `counted_by_request` are the calls `--min-duration` or `--failed` left to be \
               counted, not recorded, in what the report covers; they are exact, and not \
               missing from `complete`. It is unknown when bad files were skipped \
               (`skipped_files`). \
               `deleted_by_max_size` counts recorded calls deleted with the oldest files by \
               `record --max-size`: the report covers the newest. `lost_process_events` \
               are forks, execs and exits the buffer had no room for: the processes shown \
               lack some rows, exits or exit codes."
            .into(),
        query: None,
        columns,
        total_rows: rows.len(),
        rows,
    })
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::{
        array::{Int64Array, TimestampMicrosecondArray},
        datatypes::{DataType, Field, TimeUnit},
    };

    use super::*;

    /// The facts' times showed as arrow displays them, trailing zeros dropped: `ended`
    /// read `12:00:00.5Z` beside a `started` of six digits, and a run ending on a whole
    /// second had no fraction at all.
    #[test]
    fn the_facts_give_every_time_all_of_its_digits() {
        let schema = Schema::new(vec![
            Field::new(
                "ended",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("events", DataType::Int64, true),
        ]);
        let ended =
            TimestampMicrosecondArray::from(vec![1_780_000_000_500_000, 1_780_000_001_000_000])
                .with_timezone("UTC");
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![Arc::new(ended), Arc::new(Int64Array::from(vec![7, 8]))],
        )
        .unwrap();
        let table = key_value(&schema, &[batch]).unwrap();
        assert_eq!(
            table.rows[0],
            [
                "ended",
                "2026-05-28T20:26:40.500000Z",
                "2026-05-28T20:26:41.000000Z"
            ]
        );
        assert_eq!(table.rows[1], ["events", "7", "8"]);
    }
}
