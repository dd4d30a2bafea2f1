//! `--pid`, `--comm`, `--since` and `--until`: filters applied to the tables themselves, so
//! that canned queries and user SQL alike see only the narrowed data.
use datafusion::{
    logical_expr::{Expr, col, lit},
    scalar::ScalarValue,
};
use tracepost_schema::{aggregates, processes, syscalls, ts_value};

use crate::cli::NarrowArgs;

#[derive(Debug, thiserror::Error)]
pub enum NarrowError {
    #[error(
        "--{flag} {value}: not a time (use RFC 3339 with a zone, like 2026-11-24T02:10:00Z or 2026-11-24T03:10:00+01:00, or +30s after the capture began)"
    )]
    BadTime { flag: &'static str, value: String },
    #[error(
        "--{flag} {value}: outside the times a capture holds (1677-09-21T00:12:44Z to 2262-04-11T23:47:16Z)"
    )]
    OutOfRange { flag: &'static str, value: String },
    /// An empty window answers every question with nothing, which reads as "no calls".
    #[error("--since {since} is not before --until {until}: the window holds no time")]
    EmptyWindow { since: String, until: String },
}

/// The narrowing, resolved to absolute times.
#[derive(Clone, Debug, Default)]
pub struct Narrow {
    pub pids: Vec<i32>,
    pub comms: Vec<String>,
    /// UTC nanoseconds.
    pub since: Option<i64>,
    pub until: Option<i64>,
    /// Pids whose process or threads carry one of `comms`, for tables without names.
    pub comm_pids: Vec<i32>,
}

/// A time as nanoseconds since the epoch. Anything a nanosecond count cannot hold is
/// refused rather than wrapped, which would narrow to the wrong rows in silence.
fn parse_time(flag: &'static str, value: &str, start_ns: Option<i64>) -> Result<i64, NarrowError> {
    let bad = || NarrowError::BadTime {
        flag,
        value: value.to_string(),
    };
    let out_of_range = || NarrowError::OutOfRange {
        flag,
        value: value.to_string(),
    };
    // Spaces around it, as a shell's quotes keep them, on both sides alike: a trailing one
    // was taken and a leading one refused (helper-97).
    let value = value.trim();
    if let Some(rel) = value.strip_prefix('+') {
        let d = humantime::parse_duration(rel).map_err(|_| bad())?;
        let start = start_ns.ok_or_else(bad)?;
        return i64::try_from(d.as_nanos())
            .ok()
            .and_then(|d| start.checked_add(d))
            .ok_or_else(out_of_range);
    }
    // RFC 3339 with its zone, `Z` or an offset: a time without one would be read in a
    // zone the user did not choose.
    let t = chrono::DateTime::parse_from_rfc3339(value).map_err(|_| bad())?;
    t.timestamp_nanos_opt().ok_or_else(out_of_range)
}

/// Nanoseconds since the epoch as RFC 3339 in UTC, to the microsecond, as the tables show.
pub fn utc(ns: i64) -> String {
    chrono::DateTime::from_timestamp_nanos(ns).to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

impl Narrow {
    /// `start_ns` is when the earliest capture began, for `+DUR` times.
    pub fn new(args: &NarrowArgs, start_ns: Option<i64>) -> Result<Self, NarrowError> {
        let narrow = Self {
            pids: args.pid.clone(),
            // The kernel keeps 15 bytes of a name, and so do the tables: a longer name
            // given (`pyenv-version-file`) is compared as `ps` shows it.
            comms: args
                .comm
                .iter()
                .map(|c| tracepost_schema::comm_of(c).into_owned())
                .collect(),
            since: args
                .since
                .as_deref()
                .map(|v| parse_time("since", v, start_ns))
                .transpose()?,
            until: args
                .until
                .as_deref()
                .map(|v| parse_time("until", v, start_ns))
                .transpose()?,
            comm_pids: Vec::new(),
        };
        // Only bounds of one kind are compared: `+5m` against a time of day can be a
        // window in one capture and none in another that began later.
        let relative = |v: &Option<String>| v.as_deref().map(|v| v.trim_start().starts_with('+'));
        if let (Some(since), Some(until)) = (narrow.since, narrow.until)
            && relative(&args.since) == relative(&args.until)
            && since >= until
        {
            return Err(NarrowError::EmptyWindow {
                since: args.since.clone().unwrap_or_default(),
                until: args.until.clone().unwrap_or_default(),
            });
        }
        Ok(narrow)
    }

    /// The time window, in UTC, as a user reads it back.
    pub fn describe_window(&self) -> String {
        match (self.since, self.until) {
            (Some(s), Some(u)) => format!("{} to {}", utc(s), utc(u)),
            (Some(s), None) => format!("from {}", utc(s)),
            (None, Some(u)) => format!("before {}", utc(u)),
            (None, None) => "of all time".to_string(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.pids.is_empty()
            && self.comms.is_empty()
            && self.since.is_none()
            && self.until.is_none()
    }

    /// The filter for `table`, or `None` when nothing narrows it.
    pub fn filter(&self, table: &str) -> Option<Expr> {
        // Timestamps are microseconds; the syscalls table's nanosecond `ts_ns` narrows
        // exactly.
        let ts = |ns: i64| {
            if table == syscalls::TABLE {
                lit(ns)
            } else {
                lit(ScalarValue::TimestampMicrosecond(
                    Some(ts_value(ns)),
                    Some("UTC".into()),
                ))
            }
        };
        let mut parts = Vec::new();
        let (pid, comm, start, end) = match table {
            syscalls::TABLE => (
                Some(syscalls::PID),
                Some(syscalls::COMM),
                syscalls::TS_NS,
                syscalls::TS_NS,
            ),
            aggregates::TABLE => (
                Some(aggregates::PID),
                None,
                aggregates::INTERVAL_END,
                aggregates::INTERVAL_START,
            ),
            processes::TABLE => (
                Some(processes::PID),
                Some(processes::COMM),
                processes::EXIT_TS,
                processes::START_TS,
            ),
            _ => return None,
        };
        if let Some(pid) = pid
            && !self.pids.is_empty()
        {
            parts.push(col(pid).in_list(self.pids.iter().map(|p| lit(*p)).collect(), false));
        }
        if !self.comms.is_empty() {
            match comm {
                Some(comm) => parts.push(
                    col(comm).in_list(self.comms.iter().map(|c| lit(c.as_str())).collect(), false),
                ),
                // Aggregates carry no names: their rows of the pids that have the name.
                None if self.comm_pids.is_empty() => {
                    parts.push(col(pid?).is_null().and(col(pid?).is_not_null()))
                }
                None => parts.push(
                    col(pid?).in_list(self.comm_pids.iter().map(|p| lit(*p)).collect(), false),
                ),
            }
        }
        // A row is kept when its time span overlaps [since, until); an open end (a process
        // still running) overlaps everything after its start.
        if let Some(since) = self.since {
            // An interval of the kernel's counts ends where the next begins: one that
            // ends exactly at `since` lies wholly before the window.
            let after = match table {
                aggregates::TABLE => col(start).gt(ts(since)),
                _ => col(start).gt_eq(ts(since)),
            };
            parts.push(col(start).is_null().or(after));
        }
        if let Some(until) = self.until {
            parts.push(col(end).is_null().or(col(end).lt(ts(until))));
        }
        parts.into_iter().reduce(Expr::and)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_absolute_or_after_the_start() {
        let args = NarrowArgs {
            since: Some("+30s".into()),
            until: Some("2026-11-24T02:10:00Z".into()),
            ..Default::default()
        };
        let n = Narrow::new(&args, Some(1_000)).unwrap();
        assert_eq!(n.since, Some(1_000 + 30_000_000_000));
        assert_eq!(n.until, Some(1_795_486_200_000_000_000));
        for spaced in [" +30s", "+30s ", " 2026-11-24T02:10:00Z "] {
            let args = NarrowArgs {
                since: Some(spaced.into()),
                ..Default::default()
            };
            let n = Narrow::new(&args, Some(1_000)).unwrap();
            assert!(n.since.is_some(), "{spaced:?}");
        }
        let bad = NarrowArgs {
            since: Some("yesterday".into()),
            ..Default::default()
        };
        let err = Narrow::new(&bad, None).unwrap_err().to_string();
        assert!(err.starts_with("--since yesterday: not a time"), "{err}");
        // A window that ends before it begins, or as it begins, is refused.
        for (since, until) in [("+5s", "+2s"), ("+2s", "+2s")] {
            let args = NarrowArgs {
                since: Some(since.into()),
                until: Some(until.into()),
                ..Default::default()
            };
            let err = Narrow::new(&args, Some(1_000)).unwrap_err().to_string();
            assert_eq!(
                err,
                format!("--since {since} is not before --until {until}: the window holds no time")
            );
        }
        // A relative start against an absolute end is left to each capture.
        let mixed = NarrowArgs {
            since: Some("+5m".into()),
            until: Some("2026-11-24T02:10:00Z".into()),
            ..Default::default()
        };
        assert!(Narrow::new(&mixed, Some(1_795_486_200_000_000_000)).is_ok());
        // An offset is honoured, and a time with no zone is refused.
        let at = |v: &str| {
            let args = NarrowArgs {
                since: Some(v.into()),
                ..Default::default()
            };
            Narrow::new(&args, None).map(|n| n.since.unwrap())
        };
        assert_eq!(
            at("2026-11-24T03:10:00.5+01:00").unwrap(),
            at("2026-11-24T02:10:00.5Z").unwrap()
        );
        assert_eq!(
            at("2026-11-23T21:10:00-05:00").unwrap(),
            1_795_486_200_000_000_000
        );
        assert!(at("2026-11-24T02:10:00").is_err());
        assert!(Narrow::default().filter(syscalls::TABLE).is_none());
        for (flag, value) in [
            ("since", "2263-01-01T00:00:00Z"),
            ("since", "1600-01-01T00:00:00Z"),
            ("until", "9999-12-31T23:59:59Z"),
            ("until", "+300y"),
        ] {
            let mut args = NarrowArgs::default();
            match flag {
                "since" => args.since = Some(value.into()),
                _ => args.until = Some(value.into()),
            }
            let err = Narrow::new(&args, Some(1_000)).unwrap_err().to_string();
            assert!(
                err.starts_with(&format!("--{flag} {value}: outside the times")),
                "{err}"
            );
        }
    }
}
