//! The canned queries of `queries/`, compiled into the binary. Each file's header comment
//! gives its name, a description and its parameters; `${name}` in the SQL is replaced by a
//! parameter's value.
use std::{collections::BTreeMap, fs, path::Path};

/// Every file of `queries/`. A test checks that none is missing.
const FILES: &[(&str, &str)] = &[
    (
        "latency-by-syscall.sql",
        include_str!("../../queries/latency-by-syscall.sql"),
    ),
    (
        "latency-by-process.sql",
        include_str!("../../queries/latency-by-process.sql"),
    ),
    (
        "slowest-calls.sql",
        include_str!("../../queries/slowest-calls.sql"),
    ),
    ("errors.sql", include_str!("../../queries/errors.sql")),
    ("file-io.sql", include_str!("../../queries/file-io.sql")),
    ("network.sql", include_str!("../../queries/network.sql")),
    ("timeline.sql", include_str!("../../queries/timeline.sql")),
    ("processes.sql", include_str!("../../queries/processes.sql")),
    (
        "lost-events.sql",
        include_str!("../../queries/lost-events.sql"),
    ),
    ("waiting.sql", include_str!("../../queries/waiting.sql")),
    // The report's top findings, in the order it shows them.
    (
        "worst-latency.sql",
        include_str!("../../queries/worst-latency.sql"),
    ),
    (
        "most-time-working.sql",
        include_str!("../../queries/most-time-working.sql"),
    ),
    (
        "most-time-waiting.sql",
        include_str!("../../queries/most-time-waiting.sql"),
    ),
    (
        "error-bursts.sql",
        include_str!("../../queries/error-bursts.sql"),
    ),
    (
        "hottest-files.sql",
        include_str!("../../queries/hottest-files.sql"),
    ),
    (
        "hottest-peers.sql",
        include_str!("../../queries/hottest-peers.sql"),
    ),
    ("off-cpu.sql", include_str!("../../queries/off-cpu.sql")),
    ("why-slow.sql", include_str!("../../queries/why-slow.sql")),
];

/// What a query needs of a capture beyond a plain recording (`-- needs: sched`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Needs {
    /// `record --sched`: the columns that split each call's time.
    Sched,
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("no canned query named `{0}` (see `analyze list`)")]
    Unknown(String),
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("bad --param `{0}`: use NAME=VALUE")]
    BadParam(String),
    #[error("query `{query}` has no parameter `{param}` (its parameters: {known})")]
    UnknownParam {
        query: String,
        param: String,
        known: String,
    },
    /// "query `sql` has no parameter" named a query that the user never called `sql`.
    #[error(
        "parameter `{0}`: SQL given inline has no parameters (they are for canned queries and \
         .sql files that declare them)"
    )]
    InlineParam(String),
    #[error("parameter `{param}` must be a whole number, not `{value}`")]
    NotANumber { param: String, value: String },
    /// SQL's counts are signed 64-bit: a larger one fails deep in the plan.
    #[error("parameter `{param}` is {value}: at most {max}", max = i64::MAX)]
    TooLarge { param: String, value: String },
    /// Given twice: which one was meant is not for us to guess.
    #[error("parameter `{0}` is given twice")]
    Twice(String),
}

/// A query with its documentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Canned {
    pub name: String,
    pub description: String,
    /// Parameter names and default values.
    pub params: BTreeMap<String, String>,
    /// The heading under which the report shows it among its top findings, for the queries
    /// that are findings (`-- finding: TITLE`); the report shows the others as details.
    pub finding: Option<String>,
    pub needs: Option<Needs>,
    pub sql: String,
}

impl Canned {
    fn parse(text: &str) -> Self {
        let header = |key: &str| {
            text.lines()
                .filter_map(|l| l.strip_prefix("--"))
                .find_map(|l| l.trim().strip_prefix(key).map(|v| v.trim().to_string()))
                .unwrap_or_default()
        };
        let mut params = BTreeMap::new();
        // `limit (default 20), other (default x)`, or `none ...`.
        for part in header("parameters:").split(',') {
            if let Some((name, rest)) = part.trim().split_once(" (default ") {
                params.insert(
                    name.trim().to_string(),
                    rest.trim_end_matches(')').trim().to_string(),
                );
            }
        }
        let finding = Some(header("finding:")).filter(|t| !t.is_empty());
        let needs = match header("needs:").as_str() {
            "sched" => Some(Needs::Sched),
            _ => None,
        };
        Self {
            name: header("name:"),
            description: header("description:"),
            params,
            finding,
            needs,
            sql: text.to_string(),
        }
    }

    /// The SQL with parameters filled in: the defaults, overridden by `NAME=VALUE`s.
    /// Values are whole numbers only, so that a parameter can never change what the SQL
    /// does (every parameter is a count: `NaN`, `-1` or `1e1` would only fail in the plan).
    pub fn render(&self, overrides: &[String]) -> Result<String, QueryError> {
        let mut values = self.params.clone();
        let mut given = std::collections::BTreeSet::new();
        for o in overrides {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| QueryError::BadParam(o.clone()))?;
            if !given.insert(k) {
                return Err(QueryError::Twice(k.to_string()));
            }
            if !values.contains_key(k) && self.name == INLINE {
                return Err(QueryError::InlineParam(k.to_string()));
            }
            if !values.contains_key(k) {
                return Err(QueryError::UnknownParam {
                    query: self.name.clone(),
                    param: k.to_string(),
                    known: match self.params.is_empty() {
                        true => "none".to_string(),
                        false => self.params.keys().cloned().collect::<Vec<_>>().join(", "),
                    },
                });
            }
            if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
                return Err(QueryError::NotANumber {
                    param: k.to_string(),
                    value: v.to_string(),
                });
            }
            if v.parse::<i64>().is_err() {
                return Err(QueryError::TooLarge {
                    param: k.to_string(),
                    value: v.to_string(),
                });
            }
            values.insert(k.to_string(), v.to_string());
        }
        let mut sql = self.sql.clone();
        for (k, v) in values {
            sql = sql.replace(&format!("${{{k}}}"), &v);
        }
        Ok(sql)
    }
}

/// Every canned query, in `analyze list` order.
pub fn all() -> Vec<Canned> {
    FILES.iter().map(|(_, text)| Canned::parse(text)).collect()
}

pub fn by_name(name: &str) -> Option<Canned> {
    all().into_iter().find(|q| q.name == name)
}

/// The name SQL given inline goes by.
const INLINE: &str = "sql";

/// SQL that ends in `.sql` (`... -- see a.sql`), rather than a path: no such file, and its
/// first word starts a statement. It was read as a path, and refused (helper-69).
fn reads_as_sql(query: &str) -> bool {
    const STARTS: [&str; 7] = [
        "select", "with", "explain", "values", "show", "describe", "(",
    ];
    let first = query.trim_start().to_ascii_lowercase();
    !Path::new(query).exists()
        && query.trim().contains(char::is_whitespace)
        && STARTS.iter().any(|s| {
            first.starts_with(s)
                && first[s.len()..]
                    .chars()
                    .next()
                    .is_none_or(|c| *s == "(" || !c.is_alphanumeric())
        })
}

/// A canned name, a path to a .sql file, or SQL itself.
pub fn resolve(query: &str) -> Result<Canned, QueryError> {
    if let Some(q) = by_name(query) {
        return Ok(q);
    }
    if query.ends_with(".sql") && !reads_as_sql(query) {
        let text = fs::read_to_string(Path::new(query)).map_err(|source| QueryError::Read {
            path: query.to_string(),
            source,
        })?;
        let mut q = Canned::parse(&text);
        if q.name.is_empty() {
            q.name = query.to_string();
        }
        return Ok(q);
    }
    // One word that names nothing is a typo, not SQL.
    if !query.trim().contains(char::is_whitespace) {
        return Err(QueryError::Unknown(query.to_string()));
    }
    Ok(Canned {
        name: INLINE.into(),
        description: String::new(),
        params: BTreeMap::new(),
        finding: None,
        needs: None,
        sql: query.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_that_ends_in_dot_sql_is_sql_and_a_path_is_a_path() {
        let q = resolve("select 'a.sql' as x -- .sql").unwrap();
        assert_eq!(q.name, INLINE);
        let q = resolve("WITH t AS (SELECT 1) SELECT * FROM t -- t.sql").unwrap();
        assert_eq!(q.name, INLINE);
        for path in [
            "missing.sql",
            "my queries/missing.sql",
            "selection of x.sql",
        ] {
            assert!(
                matches!(resolve(path), Err(QueryError::Read { .. })),
                "{path}"
            );
        }
    }

    #[test]
    fn every_file_in_queries_is_compiled_in_and_documented() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../queries");
        let mut on_disk: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut compiled: Vec<String> = FILES.iter().map(|(f, _)| f.to_string()).collect();
        compiled.sort();
        assert_eq!(on_disk, compiled);
        for (file, text) in FILES {
            let q = Canned::parse(text);
            assert_eq!(format!("{}.sql", q.name), *file);
            assert!(!q.description.is_empty(), "{file}");
            assert!(!q.sql.contains("${") || !q.params.is_empty(), "{file}");
        }
    }

    #[test]
    fn parameters_default_override_and_refuse_anything_but_numbers() {
        let q = by_name("slowest-calls").unwrap();
        assert!(q.render(&[]).unwrap().contains("LIMIT 20"));
        assert!(q.render(&["limit=5".into()]).unwrap().contains("LIMIT 5"));
        assert!(q.render(&["limit=5; DROP".into()]).is_err());
        for not_a_count in ["NaN", "-1", "1.5", "1e1", ""] {
            let p = format!("limit={not_a_count}");
            assert!(
                matches!(q.render(&[p]), Err(QueryError::NotANumber { .. })),
                "{not_a_count}"
            );
        }
        for too_large in [
            "9223372036854775808",
            "18446744073709551615",
            "99999999999999999999",
        ] {
            let err = q.render(&[format!("limit={too_large}")]).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("parameter `limit` is {too_large}: at most 9223372036854775807")
            );
        }
        assert!(q.render(&["limit=9223372036854775807".into()]).is_ok());
        assert!(q.render(&["rows=5".into()]).is_err());
        let timeline = resolve("timeline").unwrap();
        assert_eq!(
            timeline
                .render(&["limit=3".into()])
                .unwrap_err()
                .to_string(),
            "query `timeline` has no parameter `limit` (its parameters: none)"
        );
        assert_eq!(
            resolve("select 1")
                .unwrap()
                .render(&["limit=3".to_string()])
                .unwrap_err()
                .to_string(),
            "parameter `limit`: SQL given inline has no parameters (they are for canned \
             queries and .sql files that declare them)"
        );
        assert!(matches!(resolve("slowest"), Err(QueryError::Unknown(_))));
        assert_eq!(resolve("SELECT 1").unwrap().sql, "SELECT 1");
    }
}
