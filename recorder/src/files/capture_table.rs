//! The `capture` table: one row per recorder run, saying where, when, what was targeted and
//! how complete the result is.
//!
//! The row is written when recording starts, with `ended`, `events` and `lost_events` NULL,
//! and replaced (an atomic rename) when it stops. A recorder that was killed leaves the
//! first version, so the capture itself says that it ended abnormally.
use std::{ffi::OsString, fs, path::PathBuf, sync::Arc};

use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use tracepost_schema::{capture, ts_value};

use crate::{
    files::parquet_file::{self, PartFile, WriterError},
    kernel::bpf,
    kernel::clock,
};

/// Facts fixed when recording starts.
#[derive(Clone, Debug)]
pub struct CaptureInfo {
    pub id: String,
    pub host: String,
    pub kernel: String,
    pub boot_id: String,
    pub started_ns: i64,
    pub command_line: String,
    pub target: String,
    pub min_duration_ns: Option<u64>,
}

/// How a capture ended.
#[derive(Clone, Debug)]
pub struct Ending {
    pub ended_ns: i64,
    /// NULL when recording stopped early: what was recorded is then not known for sure.
    pub events: Option<u64>,
    pub lost_events: Option<u64>,
    pub stopped_early: Option<StoppedEarly>,
    /// With `--max-size`: the calls deleted with the oldest files.
    pub deleted_events: Option<u64>,
    pub lost_process_events: Option<u64>,
}

/// Recording stopped before its target ended.
#[derive(Clone, Debug)]
pub struct StoppedEarly {
    pub reason: String,
    /// From when calls are missing.
    pub from_ns: i64,
}

fn proc_value(path: &str) -> String {
    fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

impl CaptureInfo {
    pub fn new(host: String, target: String, min_duration_ns: Option<u64>) -> Self {
        Self {
            // A fresh random UUID from the kernel: unique across hosts and reboots.
            id: proc_value("/proc/sys/kernel/random/uuid"),
            host,
            kernel: bpf::kernel_release(),
            boot_id: proc_value("/proc/sys/kernel/random/boot_id"),
            started_ns: clock::realtime_ns(),
            command_line: command_line(crate::args_as_given().into_iter()),
            target,
            min_duration_ns,
        }
    }

    /// When the capture began, where that is not when the row was made: `record`'s is when
    /// its programs began to count, on the clock its other tables are written by, so that
    /// the first `aggregates` interval begins exactly there.
    pub fn started_at(mut self, started_ns: i64) -> Self {
        self.started_ns = started_ns;
        self
    }

    /// Writes the row of a capture that has just started.
    pub fn write(&self, dir: &std::path::Path) -> Result<(), WriterError> {
        self.write_row(dir, None, None)
    }

    /// Takes back the row of a run whose start failed after it was written.
    pub fn remove(&self, dir: &std::path::Path) {
        let (tmp, path) = self.row_paths(dir);
        let _ = std::fs::remove_file(path);
        let _ = std::fs::remove_file(tmp);
    }

    /// Where the row is written first, and its name once whole.
    fn row_paths(&self, dir: &std::path::Path) -> (PathBuf, PathBuf) {
        (
            dir.join(format!(".{}.inprogress", self.id)),
            dir.join(format!("{}.parquet", self.id)),
        )
    }

    /// Replaces the row of a capture still recording with one that says how many calls
    /// `--max-size` deleted so far: a recorder killed, as a flight recorder usually ends,
    /// left a row that said nothing of them, and `analyze` reported only its last
    /// interval missing where most of the run was gone (helper-88).
    pub fn write_deleted(&self, dir: &std::path::Path, deleted: u64) -> Result<(), WriterError> {
        self.write_row(dir, None, Some(deleted))
    }

    /// Replaces the row with that of a capture that ended.
    pub fn write_ending(&self, dir: &std::path::Path, ending: Ending) -> Result<(), WriterError> {
        self.write_row(dir, Some(ending), None)
    }

    fn write_row(
        &self,
        dir: &std::path::Path,
        ending: Option<Ending>,
        deleted_so_far: Option<u64>,
    ) -> Result<(), WriterError> {
        let starting = ending.is_none();
        let batch = self.batch(ending, deleted_so_far)?;
        let (tmp, path) = self.row_paths(dir);
        let props = parquet_file::summed_properties(capture::TABLE);
        // The inode the start kept for this row: freed here, and taken at once below.
        let _ = std::fs::remove_file(&tmp);
        let written = PartFile::create_named(tmp.clone(), path, capture::schema(), props).and_then(
            |mut file| {
                file.write(&batch)?;
                file.finish()
            },
        );
        // A half-written row is no row: the one before stays, and nothing unfinished.
        if written.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        if starting && written.is_ok() {
            keep_an_inode(&tmp);
        }
        written.map(|_| ())
    }

    fn batch(
        &self,
        ending: Option<Ending>,
        deleted_so_far: Option<u64>,
    ) -> Result<RecordBatch, arrow_schema::ArrowError> {
        let text = |s: &str| Arc::new(StringArray::from(vec![s])) as ArrayRef;
        let ts = |ns: Option<i64>| {
            Arc::new(TimestampMicrosecondArray::from(vec![ns.map(ts_value)]).with_timezone("UTC"))
                as ArrayRef
        };
        let int =
            |n: Option<u64>| Arc::new(Int64Array::from(vec![n.map(|n| n as i64)])) as ArrayRef;
        let stopped = ending.as_ref().and_then(|e| e.stopped_early.as_ref());
        RecordBatch::try_new(
            capture::schema(),
            vec![
                text(&self.id),
                text(&self.host),
                text(&self.kernel),
                text(&self.boot_id),
                ts(Some(self.started_ns)),
                ts(ending.as_ref().map(|e| e.ended_ns)),
                text(&self.command_line),
                text(&self.target),
                int(self.min_duration_ns),
                int(ending.as_ref().and_then(|e| e.events)),
                int(ending.as_ref().and_then(|e| e.lost_events)),
                text(env!("CARGO_PKG_VERSION")),
                Arc::new(StringArray::from(vec![stopped.map(|s| s.reason.as_str())])),
                ts(stopped.map(|s| s.from_ns)),
                int(ending.as_ref().map_or(deleted_so_far, |e| e.deleted_events)),
                int(ending.as_ref().and_then(|e| e.lost_process_events)),
            ],
        )
    }
}

/// Holds an inode for the row written at the end, as an empty file of the name that row
/// is written under: on a file system out of inodes (a runaway that makes small files)
/// the end could not create its row, and the capture read as one whose recorder was
/// killed, where the lock file's bytes kept room only for its blocks. Best effort: there
/// may be none left now. A killed recorder leaves the empty file, hidden, as it leaves
/// any file it was writing.
fn keep_an_inode(tmp: &std::path::Path) {
    if let Some(dir) = tmp.parent() {
        remove_empty_leftovers(dir);
    }
    let _ = parquet_file::create_private(tmp);
}

/// Removes the empty files earlier runs' kills left in `dir` for their rows: they hold
/// nothing, and each kept an inode for good (helper-73). Only this run holds the
/// capture's lock now; a symlink or directory of that name is not a file, and stays.
fn remove_empty_leftovers(dir: &std::path::Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        let empty = e.metadata().is_ok_and(|m| m.is_file() && m.len() == 0);
        if name.starts_with('.') && name.ends_with(".inprogress") && empty {
            let _ = fs::remove_file(e.path());
        }
    }
}

/// The command line as a shell would need it, so it can be pasted to repeat the capture.
/// The password of an `--upload` URL is masked: the capture is shipped, to that store too.
fn command_line(args: impl Iterator<Item = OsString>) -> String {
    #[cfg_attr(not(feature = "upload"), allow(unused_mut))]
    let mut args: Vec<String> = args.map(|a| a.to_string_lossy().into_owned()).collect();
    #[cfg(feature = "upload")]
    {
        let mut next_is_url = false;
        for arg in args.iter_mut().skip(1) {
            if arg == "--" {
                break;
            }
            if next_is_url {
                *arg = tracepost_store::location::url_without_secrets(arg);
            } else if let Some(url) = arg.strip_prefix("--upload=") {
                *arg = format!(
                    "--upload={}",
                    tracepost_store::location::url_without_secrets(url)
                );
            }
            next_is_url = arg == "--upload";
        }
    }
    crate::shell_words::join(args.iter().map(String::as_str))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_are_quoted_for_a_shell() {
        let args = ["record", "-o", "x", "--", "sh", "-c", "echo 'hi' there"];
        assert_eq!(
            command_line(args.iter().map(OsString::from)),
            r"record -o x -- sh -c 'echo '\''hi'\'' there'"
        );
        #[cfg(feature = "upload")]
        assert_eq!(
            command_line(
                [
                    "record",
                    "--upload",
                    "http://a:pw@h/x",
                    "--upload=http://b:pw@h/y",
                    "--",
                    "curl",
                    "--upload",
                    "http://c:pw@h/z",
                ]
                .iter()
                .map(OsString::from)
            ),
            "record --upload 'http://a:***@h/x' --upload='http://b:***@h/y' -- curl --upload http://c:pw@h/z"
        );
    }

    #[test]
    fn the_row_is_replaced_when_the_capture_ends() {
        use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
        let dir = tempfile::tempdir().unwrap();
        let info = CaptureInfo::new("h".into(), "all processes".into(), None);
        let read = || {
            let path = dir.path().join(format!("{}.parquet", info.id));
            let f = fs::File::open(path).unwrap();
            let mut reader = ParquetRecordBatchReaderBuilder::try_new(f)
                .unwrap()
                .build()
                .unwrap();
            reader.next().unwrap().unwrap()
        };
        info.write(dir.path()).unwrap();
        assert_eq!(read().column_by_name("ended").unwrap().null_count(), 1);
        let ending = Ending {
            ended_ns: info.started_ns + 5,
            events: Some(10),
            lost_events: Some(2),
            stopped_early: None,
            deleted_events: Some(7),
            lost_process_events: Some(3),
        };
        info.write_ending(dir.path(), ending).unwrap();
        let batch = read();
        assert_eq!(batch.column_by_name("ended").unwrap().null_count(), 0);
        let lost = batch.column_by_name("lost_events").unwrap();
        let lost = lost.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(lost.value(0), 2);
        let deleted = batch.column_by_name("deleted_events").unwrap();
        let deleted = deleted.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(deleted.value(0), 7);
        let process = batch.column_by_name("lost_process_events").unwrap();
        let process = process.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(process.value(0), 3);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
