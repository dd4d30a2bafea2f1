//! Finishing: the capture row, the exit status, and the summary on stderr; or, when the
//! writer failed, a capture row that says from when calls are missing.
use std::time::Duration;

use anyhow::{Context as _, Result};
use bytesize::ByteSize;
use tracepost_common::{LOST_PROCESS_EVENTS, LOST_STACKS, LOST_USER_STACKS};
use tracepost_schema::{TABLES, capture, syscalls};

use super::{
    Mode, Outcome,
    capture_loop::{Ended, losses},
    stop::Stopped,
};
use crate::{
    cli::Args,
    files::capture_dir::CaptureDir,
    files::capture_table::{CaptureInfo, Ending, StoppedEarly},
    files::writer::WrittenStats,
    follow::launch::ExitStatus,
    kernel::clock,
    upload::Uploader,
};

pub(super) fn finish(args: &Args, s: Stopped, ended: Ended) -> Result<Outcome> {
    let written = match s.written {
        Ok(written) => written,
        Err(err) => {
            let err = err.context(format!("capture {} is incomplete", s.dir.root().display()));
            let stopped_ns = s.gone_at_ns.unwrap_or_else(clock::realtime_ns);
            let missing = (stopped_ns, s.unwritten_from_ns);
            let deleted = deleted_here(args, s.deleted);
            return stopped_early(&s.dir, &s.info, err, missing, deleted, s.mode, ended.status);
        }
    };
    if let Some(e) = ended.wait_error {
        return Err(anyhow::Error::new(e).context("cannot wait for the command"));
    }
    let [ring_full, table_full] = losses(&s.lost);
    let lost_total = ring_full + table_full;
    s.dir.release_room();
    s.info.write_ending(
        &s.dir.table_dir(capture::TABLE),
        Ending {
            ended_ns: clock::realtime_ns(),
            events: Some(s.events),
            lost_events: Some(lost_total),
            stopped_early: None,
            deleted_events: deleted_here(args, (written.dropped_files, written.dropped_rows))
                .map(|(_, rows)| rows),
            lost_process_events: Some(s.lost[LOST_PROCESS_EVENTS as usize]),
        },
    )?;

    let exit_code = match (&s.mode, ended.status) {
        (Mode::Command(_), Some(status)) => status.shell_code(),
        // The duration ended the capture; the command goes on, and we report how it ends.
        (Mode::Command(running), None) => running
            .wait()
            .context("cannot wait for the command")?
            .shell_code(),
        _ => 0,
    };
    if !args.quiet {
        let uploaded = args.upload.is_some();
        report(&s.dir, &written, losses(&s.lost), ended.status, uploaded);
    }
    // Losses, so printed even with -q: the live warnings count only "so far".
    report_losses(losses(&s.lost));
    if written.room_files > 0 {
        crate::say!(
            "warning: the file system of {} filled up: --max-size deleted {} of the oldest \
             files early to make room, and kept recording",
            s.dir.root().display(),
            written.room_files
        );
    }
    if written.fd_tables_let_go > 0 {
        crate::say!(
            "warning: {} processes' fd tables were too big to copy within the fd tracker's \
             memory bound: the fds they held before their first change have no fd_path",
            written.fd_tables_let_go
        );
    }
    let process_events = s.lost[LOST_PROCESS_EVENTS as usize];
    if process_events > 0 {
        crate::say!(
            "warning: {process_events} process events (fork, exec, exit) were lost because \
             the buffer was full; the processes table misses what they said, and the capture \
             row counts them (lost_process_events)"
        );
    }
    let stacks = s.lost[LOST_STACKS as usize];
    if stacks > 0 {
        crate::say!(
            "warning: --stacks: kernel stacks not stored: {stacks} (the stack map was full, \
             another stack held a stack's slot, or the walk failed); calls that waited \
             longest there have no kernel_stack"
        );
    }
    let user_stacks = s.lost[LOST_USER_STACKS as usize];
    if user_stacks > 0 {
        crate::say!(
            "warning: --stacks: user stacks not sent: {user_stacks} (their ring was full); \
             those calls have no user_stack"
        );
    }
    if s.late_user_stacks > 0 {
        crate::say!(
            "warning: --stacks: user stacks not unwound in time: {} (the unwinder fell \
             behind); those calls have no user_stack",
            s.late_user_stacks
        );
    }
    // Last, so that it is what the user reads: the command never ran.
    let exit_code = match &s.mode {
        Mode::Command(running) => match running.exec_error() {
            Some((why, code)) => {
                crate::say!("error: {}", crate::visible(&why.to_string()));
                code
            }
            None => exit_code,
        },
        _ => exit_code,
    };
    Ok(Outcome {
        exit_code,
        written,
        lost: lost_total,
    })
}

/// What `--max-size` deleted that the capture is missing, as (files, rows): none without
/// it, and none with `--upload`, which deletes only what the store holds, so the store's
/// copy is whole.
fn deleted_here(args: &Args, deleted: (u64, u64)) -> Option<(u64, u64)> {
    args.max_size.map(|_| match args.upload {
        Some(_) => (0, 0),
        None => deleted,
    })
}

/// A fatal error while recording (a full disk, a write error, a writer thread that died):
/// recording has stopped and every closed file is readable. The capture row says why and
/// from when calls are missing. In command mode the contract still holds: `record` waits
/// for the command and exits with its status, saying on stderr what happened; otherwise
/// the error is returned. `missing`: when recording stopped, and the earliest entry among
/// the calls the writer held but never wrote, if it said.
fn stopped_early(
    dir: &CaptureDir,
    info: &CaptureInfo,
    err: anyhow::Error,
    (stopped_ns, unwritten_from_ns): (i64, Option<i64>),
    deleted: Option<(u64, u64)>,
    mode: Mode,
    status: Option<ExitStatus>,
) -> Result<Outcome> {
    // Calls are missing from just after the last one a closed file holds (files are
    // written whole, so the open file's calls are lost), or from the start; and from the
    // earliest call the writer held for a later file, which can be older (a call that
    // blocked longer than the reorder lag waits for the file after its neighbours').
    let from_ns =
        crate::files::parquet_file::max_i64(&dir.table_dir(syscalls::TABLE), syscalls::TS_NS)
            .map_or(info.started_ns, |last| last + 1)
            .min(stopped_ns)
            .min(unwritten_from_ns.unwrap_or(i64::MAX))
            .max(info.started_ns);
    // Half-written files can never be read (they have no footer); removing them, and the
    // room the lock file held, frees what a full disk needs for the capture row.
    dir.release_room();
    for table in TABLES {
        crate::files::parquet_file::remove_unfinished(&dir.table_dir(table));
    }
    // Every table keeps a file, even if none was closed before the failure.
    for table in TABLES {
        if table != capture::TABLE {
            let schema = tracepost_schema::schema_of(table).expect("TABLES have schemas");
            let _ = crate::files::parquet_file::ensure_one(&dir.table_dir(table), table, schema);
        }
    }
    let ending = Ending {
        // The moment the line below gives: one stop time, wherever the engineer reads it.
        ended_ns: stopped_ns,
        events: None,
        lost_events: None,
        // Counted as each file went, so known whatever failed after: a disk another
        // writer kept full had older files deleted to make room, and then stopped.
        deleted_events: deleted.map(|(_, rows)| rows),
        lost_process_events: None,
        stopped_early: Some(StoppedEarly {
            reason: format!("{err:#}"),
            from_ns,
        }),
    };
    let row = info.write_ending(&dir.table_dir(capture::TABLE), ending);
    let row_note = match &row {
        Ok(()) => "the capture row says so".to_string(),
        Err(e) => format!("and the capture row could not say so ({e})"),
    };
    let time = |ns: i64| {
        humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64),
        )
    };
    // The same line in every mode; command mode adds how the command ended.
    let mut line = format!(
        "{err:#}; recording stopped at {}, calls from {} on are missing ({row_note})",
        time(stopped_ns),
        time(from_ns)
    );
    if let Some((files @ 1.., rows)) = deleted {
        line.push_str(&format!(
            "; before that, --max-size deleted the {files} oldest file(s), {rows} syscalls"
        ));
    }
    let Mode::Command(running) = mode else {
        return Err(anyhow::anyhow!(line));
    };
    let code = match status {
        Some(s) => s.shell_code(),
        None => running
            .wait()
            .context("cannot wait for the command")?
            .shell_code(),
    };
    crate::say!("error: {line}, and the command ran on to its end: exit status {code}");
    Ok(Outcome {
        exit_code: code,
        written: WrittenStats::default(),
        lost: 0,
    })
}

/// The capture is closed, its row included: the last files go up. Files that could not be
/// uploaded are an error that names them, whatever else happened; in command mode the
/// command's own failure status is kept.
pub(super) fn uploads(
    args: &Args,
    uploader: Uploader,
    outcome: Result<Outcome>,
    cut: impl Fn() -> bool,
) -> Result<Outcome> {
    let in_store = uploader.shipped();
    let shipped = uploader.finish(cut);
    // Files left over --max-size only because their upload lagged a burst can go now.
    let prune = |outcome: &Outcome| {
        let max = args.max_size.map(|size| size.as_u64());
        let pruned = crate::files::writer::prune_shipped(&outcome.written, max, &in_store);
        if pruned > 0 && !args.quiet {
            crate::say!(
                "record: --max-size deleted {pruned} more file(s), uploaded at the end, to \
                 keep within its bound"
            );
        }
    };
    let mut outcome = match (outcome, shipped) {
        (Ok(outcome), Ok(n)) => {
            if !args.quiet {
                crate::say!(
                    "record: {n} file upload(s) to {}",
                    crate::upload::shown(args.upload.as_deref().unwrap_or_default())
                );
            }
            prune(&outcome);
            return Ok(outcome);
        }
        (Err(e), Ok(_)) => return Err(e),
        (Err(e), Err(not_shipped)) => return Err(e.context(not_shipped.to_string())),
        (Ok(outcome), Err(not_shipped)) => {
            prune(&outcome);
            if outcome.exit_code == 0 {
                return Err(not_shipped.into());
            }
            crate::say!("error: {}", crate::visible(&not_shipped.to_string()));
            outcome
        }
    };
    outcome.exit_code = outcome.exit_code.max(1);
    Ok(outcome)
}

/// The run's calls lost, in all: under `-q` the last live warning counted only those lost
/// before it, and the rest went unsaid.
fn report_losses(lost: [u64; 2]) {
    if lost[0] > 0 {
        crate::say!(
            "warning: {} syscalls were lost because the buffer was full (see --buffer-size)",
            lost[0]
        );
    }
    if lost[1] > 0 {
        crate::say!(
            "warning: {} syscalls were lost because the thread table was full",
            lost[1]
        );
    }
}

fn report(
    dir: &CaptureDir,
    written: &WrittenStats,
    lost: [u64; 2],
    status: Option<ExitStatus>,
    uploaded: bool,
) {
    let per_event = match written.rows {
        0 => 0.0,
        rows => written.bytes as f64 / rows as f64,
    };
    crate::say!(
        "record: {} syscalls in {} file(s), {} ({per_event:.1} bytes/syscall), {} lost: {}",
        written.rows,
        written.files,
        ByteSize(written.bytes),
        lost.iter().sum::<u64>(),
        dir.root().display(),
    );
    if written.dropped_files > 0 && uploaded {
        // The capture row counts none deleted, since the store has them all: it is
        // shipped with them. `analyze` of this directory finds it short from the files.
        crate::say!(
            "record: --max-size deleted the {} oldest file(s) here, {} syscalls, once they \
             were uploaded; analyze of this directory warns that it is short",
            written.dropped_files,
            written.dropped_rows
        );
    } else if written.dropped_files > 0 {
        crate::say!(
            "record: --max-size deleted the {} oldest file(s), {} syscalls (of this run or, in a \
             continued capture, earlier ones), to keep the newest; the capture row says so",
            written.dropped_files,
            written.dropped_rows
        );
    }
    if let Some(ExitStatus::Signal(sig)) = status {
        crate::say!("record: the command was killed by signal {sig}");
    }
}
