//! One capture, from start to stop.
use std::{
    fs, mem,
    os::fd::OwnedFd,
    sync::atomic::Ordering,
    thread,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result, bail};
use aya::maps::{MapData, RingBuf};
use bytesize::ByteSize;
use tracepost_common::{
    DetailedEvent, FLAG_CONTEXT_ONLY, LOST_PROCESS_EVENTS, LOST_RING_FULL, LOST_THREAD_TABLE_FULL,
    ProcessEvent, SyscallEvent,
};
use tracepost_schema::{TABLES, aggregates, capture, processes, syscalls};

use crate::{call::Call, decode};

use crate::{
    aggregates::{AggregateRow, Sampler},
    batch::BatchBuilder,
    bpf::{self, LoadOptions, Lost, Probes},
    capture_dir::{self, CaptureDir},
    capture_table::{CaptureInfo, Ending, StoppedEarly},
    cli::Args,
    clock::{self, WallClock},
    fd_table, kernel_support,
    launch::{ExitStatus, Gated, Running},
    pipeline::{Message, Pipeline, Record, Writers},
    process_event::ProcessUpdate,
    processes::{ProcessRow, ProcessTable},
    progress::{Counters, Progress},
    scope::Scope,
    signals::{self, StopFlag},
    small_table::SmallTableWriter,
    syscall_table, target, tracefs,
    writer::{Rotation, TableWriter, WrittenStats},
};

/// How long the capture loop sleeps when the ring is empty. Events are submitted without
/// waking the reader (a wakeup per event costs more than the event), so this also bounds
/// how stale the ring gets.
const POLL: Duration = Duration::from_millis(10);
/// Records per chunk handed to the writer thread.
const CHUNK: usize = 8 * 1024;
/// Records per drain pass.
const MAX_DRAIN: usize = 8 * CHUNK;
const MAX_THREADS: u32 = 65536;
/// Groups (pid, syscall, errno, latency bucket, reason) of unsent calls. Groups of exited
/// processes are pruned each interval; calls beyond this are still counted, ungrouped.
const MAX_AGGREGATES: u32 = 32768;
/// How often the kernel's aggregates are sampled: the resolution at which a query can tell
/// which seconds of a capture are incomplete.
const AGGREGATE_INTERVAL: Duration = Duration::from_secs(1);
const MAX_FILE_ROWS: u64 = 16 * 1024 * 1024;

/// What a capture produced.
#[derive(Debug)]
pub struct Outcome {
    /// The command's status in command mode, else 0.
    pub exit_code: u8,
    pub written: WrittenStats,
    pub lost: u64,
}

enum Mode {
    Command(Running),
    Pids(Vec<OwnedFd>),
    All,
}

pub fn run(args: Args) -> Result<Outcome> {
    // Everything that can be refused is refused before anything is written.
    bpf::check_privileges()?;
    let gated = match args.command.is_empty() {
        true => None,
        false => Some(Gated::spawn(&args.command)?),
    };
    let pidfds = args
        .pid
        .iter()
        .map(|&pid| target::pidfd(pid))
        .collect::<Result<Vec<_>, _>>()?;
    let scope = Scope::new(&args.comm, args.cgroup.as_deref())?;
    let tracefs = tracefs::root()?;
    let options: &[&str] = match args.cgroup {
        Some(_) => &["--cgroup"],
        None => &[],
    };
    kernel_support::check(&tracefs, &bpf::kernel_release(), options)?;
    let [newtask_pid_offset, newtask_flags_offset] =
        tracefs::field_offsets(&tracefs, "task", "task_newtask", ["pid", "clone_flags"])?;
    let [rename_pid_offset, rename_newcomm_offset] =
        tracefs::field_offsets(&tracefs, "task", "task_rename", ["pid", "newcomm"])?;
    let exit_has_group_dead =
        tracefs::has_field(&tracefs, "sched", "sched_process_exit", "group_dead")?;
    let host = capture_dir::hostname();
    let root = args
        .output
        .clone()
        .unwrap_or_else(|| capture_dir::default_name(&host, SystemTime::now()));
    let dir = CaptureDir::create(&root)?;
    let min_duration_ns = args
        .min_duration
        .map(|d| d.as_nanos().min(u64::MAX as u128) as u64);

    let (mut probes, mut ring) = Probes::load(LoadOptions {
        trace_all: args.all,
        self_tgid: std::process::id(),
        newtask_pid_offset,
        newtask_flags_offset,
        rename_pid_offset,
        rename_newcomm_offset,
        exit_has_group_dead,
        ring_bytes: bpf::ring_bytes(args.buffer_size.as_u64())?,
        max_threads: MAX_THREADS,
        max_aggregates: MAX_AGGREGATES,
        min_duration_ns: min_duration_ns.unwrap_or(0),
        failed_only: args.failed,
        comms: scope.comms.clone(),
        cgroup: scope.cgroup.as_ref().map(|c| (c.id, c.level)),
        syscalls: syscall_table::kernel_table(args.syscalls.as_ref()),
    })?;
    let info = CaptureInfo::new(host, describe_target(&args), min_duration_ns);
    let capture_dir = dir.table_dir(capture::TABLE);
    info.write(&capture_dir)?;
    let counters = Counters::new();
    let stop = StopFlag::default();
    let forward_to = signals::install(stop.clone()).context("cannot install signal handlers")?;
    let clock = WallClock::sample();
    let writer = TableWriter::new(
        &dir.table_dir(syscalls::TABLE),
        BatchBuilder::new(clock),
        Rotation {
            max_age: args.rotate,
            max_rows: MAX_FILE_ROWS,
            max_total_bytes: args.max_size.map(|s| s.as_u64()),
        },
        counters.clone(),
    )?;
    let aggregates_writer = SmallTableWriter::new(
        &dir.table_dir(aggregates::TABLE),
        aggregates::TABLE,
        aggregates::schema(),
        args.rotate,
    )?;
    let processes_writer = SmallTableWriter::new(
        &dir.table_dir(processes::TABLE),
        processes::TABLE,
        processes::schema(),
        args.rotate,
    )?;
    let pipeline = Pipeline::start(Writers {
        syscalls: writer,
        aggregates: aggregates_writer,
        processes: processes_writer,
        builder: BatchBuilder::new(clock),
        processes_table: ProcessTable::new(clock),
    })
    .context("cannot start the writer thread")?;

    let (mode, attached) = if let Some(gated) = gated {
        let pid = gated.pid() as u32;
        probes.add_thread(pid, false)?;
        let running = gated.release()?;
        forward_to.store(running.pid(), Ordering::Relaxed);
        (Mode::Command(running), vec![pid])
    } else if args.all {
        let me = std::process::id();
        let all: Vec<u32> = fs::read_dir("/proc")
            .map(|d| {
                d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                    .filter(|&p| p != me)
                    .collect()
            })
            .unwrap_or_default();
        (Mode::All, all)
    } else {
        for &pid in &args.pid {
            target::attach_process(&mut probes, pid, &scope)?;
        }
        let pids = args.pid.iter().map(|&p| p as u32).collect();
        (Mode::Pids(pidfds), pids)
    };
    // Tracing began before the snapshots are taken, so every change they miss is also seen
    // as a call, and replaying those calls on top of a snapshot converges on the truth. The
    // loop has not drained the ring yet, so the snapshots reach the writer before any call.
    if pipeline.send(attach_snapshot(&attached)).is_err() {
        bail!("the writer stopped unexpectedly");
    }

    // A deadline past what the clock can represent is no deadline.
    let deadline = args.duration.and_then(|d| Instant::now().checked_add(d));
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut status = None;
    let mut wait_error = None;
    let mut writer_gone = false;
    // When the writer was found gone: calls from then on are not recorded.
    let mut writer_failed_at: Option<i64> = None;
    let mut progress = Progress::new(args.quiet);
    let mut events = 0u64;
    let mut sampler = Sampler::new(clock::monotonic_ns());
    let mut next_sample = Instant::now() + AGGREGATE_INTERVAL;
    let mut unsent_rows: Vec<AggregateRow> = Vec::new();
    loop {
        let drained = match drain(&mut ring, &pipeline, &mut chunk) {
            Ok((records, calls)) => {
                events += calls;
                records
            }
            Err(_) => {
                writer_gone = true;
                writer_failed_at.get_or_insert_with(clock::realtime_ns);
                break;
            }
        };
        progress.tick(events, &counters, || losses(&probes.lost()));
        if Instant::now() >= next_sample {
            next_sample += AGGREGATE_INTERVAL;
            let lost = probes.lost();
            unsent_rows.extend(sampler.sample(&mut probes.aggregates, lost, clock::monotonic_ns()));
            // Rows wait for room rather than stall the ring; they are few.
            if !unsent_rows.is_empty() {
                match pipeline.try_send(Message::Aggregates(mem::take(&mut unsent_rows))) {
                    Ok(None) => {}
                    Ok(Some(Message::Aggregates(rows))) => unsent_rows = rows,
                    Ok(Some(_)) => unreachable!("sent aggregates"),
                    Err(_) => {
                        writer_gone = true;
                        writer_failed_at.get_or_insert_with(clock::realtime_ns);
                        break;
                    }
                }
            }
        }
        let timed_out = deadline.is_some_and(|d| Instant::now() >= d);
        let done = match &mode {
            Mode::Command(running) => match running.try_wait() {
                Ok(s) => {
                    status = s;
                    status.is_some() || timed_out
                }
                // Stop, but keep what was captured: the error is reported after the files
                // are closed.
                Err(e) => {
                    wait_error = Some(e);
                    true
                }
            },
            Mode::Pids(fds) => stop.is_set() || timed_out || fds.iter().all(target::has_exited),
            Mode::All => stop.is_set() || timed_out,
        };
        if done {
            break;
        }
        if drained == 0 {
            thread::sleep(POLL);
        }
    }

    progress.finish();
    // Detach first, so no new record enters the ring. A program already running on another
    // CPU may still submit, and the reader stops at a record reserved but not yet submitted,
    // so drain until the ring stays empty.
    let mut detached = probes.detach();
    if !writer_gone {
        let mut empty_passes = 0;
        while empty_passes < 2 {
            match drain(&mut ring, &pipeline, &mut chunk) {
                Ok((0, _)) => empty_passes += 1,
                Ok((_, calls)) => {
                    events += calls;
                    empty_passes = 0;
                }
                Err(_) => {
                    writer_gone = true;
                    writer_failed_at.get_or_insert_with(clock::realtime_ns);
                    break;
                }
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
    // Read after the last drain: a program still running at detach counts its losses late.
    let lost = detached.lost();
    unsent_rows.extend(sampler.sample(&mut detached.aggregates, lost, clock::monotonic_ns()));
    // A partial chunk the writer had no room for during the drain.
    if !writer_gone
        && !chunk.is_empty()
        && pipeline
            .send(Message::Records(mem::take(&mut chunk)))
            .is_err()
    {
        writer_gone = true;
        writer_failed_at.get_or_insert_with(clock::realtime_ns);
    }
    if !writer_gone
        && !unsent_rows.is_empty()
        && pipeline
            .send(Message::Aggregates(mem::take(&mut unsent_rows)))
            .is_err()
    {
        writer_gone = true;
        writer_failed_at.get_or_insert_with(clock::realtime_ns);
    }
    let (written, failure) = match pipeline.finish() {
        Ok(w) if !writer_gone => (w, None),
        Ok(w) => (w, Some(anyhow::anyhow!("the writer stopped unexpectedly"))),
        Err(e) => (WrittenStats::default(), Some(anyhow::Error::new(e))),
    };
    if let Some(err) = failure {
        let err = err.context(format!("capture {} is incomplete", dir.root().display()));
        let stopped_ns = writer_failed_at.unwrap_or_else(clock::realtime_ns);
        return stopped_early(&dir, &info, err, stopped_ns, mode, status);
    }
    if let Some(e) = wait_error {
        return Err(anyhow::Error::new(e).context("cannot wait for the command"));
    }
    let [ring_full, table_full] = losses(&lost);
    let lost_total = ring_full + table_full;
    info.write_ending(
        &capture_dir,
        Ending {
            ended_ns: clock::realtime_ns(),
            events: Some(events),
            lost_events: Some(lost_total),
            stopped_early: None,
        },
    )?;

    let exit_code = match (&mode, status) {
        (Mode::Command(_), Some(s)) => s.shell_code(),
        // The duration ended the capture; the command goes on, and we report how it ends.
        (Mode::Command(running), None) => running
            .wait()
            .context("cannot wait for the command")?
            .shell_code(),
        _ => 0,
    };
    if !args.quiet {
        report(&dir, &written, losses(&lost), status);
        let process_events = lost[LOST_PROCESS_EVENTS as usize];
        if process_events > 0 {
            eprintln!(
                "warning: {process_events} process events were lost because the ring buffer \
                 was full; the processes table misses what they said"
            );
        }
    }
    Ok(Outcome {
        exit_code,
        written,
        lost: lost_total,
    })
}

/// A fatal error while recording (a full disk, a write error, a writer thread that died):
/// recording has stopped and every closed file is readable. The capture row says why and
/// from when calls are missing. In command mode the contract still holds: `record` waits
/// for the command and exits with its status, saying on stderr what happened; otherwise
/// the error is returned.
fn stopped_early(
    dir: &CaptureDir,
    info: &CaptureInfo,
    err: anyhow::Error,
    stopped_ns: i64,
    mode: Mode,
    status: Option<ExitStatus>,
) -> Result<Outcome> {
    // Calls are missing from just after the last one a closed file holds (files are
    // written whole, so the open file's calls are lost), or from the start.
    let from_ns = crate::parquet_file::max_i64(&dir.table_dir(syscalls::TABLE), syscalls::TS_NS)
        .map_or(info.started_ns, |last| last + 1)
        .min(stopped_ns);
    // Half-written files can never be read (they have no footer); removing them frees the
    // room a full disk needs for the capture row.
    for table in TABLES {
        if let Ok(entries) = fs::read_dir(dir.table_dir(table)) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().ends_with(".inprogress") {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }
    // Every table keeps a file, even if none was closed before the failure.
    for table in TABLES {
        if table != capture::TABLE {
            let schema = tracepost_schema::schema_of(table).expect("TABLES have schemas");
            let _ = crate::parquet_file::ensure_one(&dir.table_dir(table), table, schema);
        }
    }
    let ending = Ending {
        ended_ns: clock::realtime_ns(),
        events: None,
        lost_events: None,
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
    let Mode::Command(running) = mode else {
        return Err(err.context(format!("recording stopped; {row_note}")));
    };
    let code = match status {
        Some(s) => s.shell_code(),
        None => running
            .wait()
            .context("cannot wait for the command")?
            .shell_code(),
    };
    let time = |ns: i64| {
        humantime::format_rfc3339_millis(
            std::time::UNIX_EPOCH + Duration::from_nanos(ns.max(0) as u64),
        )
    };
    eprintln!(
        "error: {err:#}; recording stopped at {}, calls from {} on are missing ({row_note}), \
         and the command ran on to its end: exit status {code}",
        time(stopped_ns),
        time(from_ns)
    );
    Ok(Outcome {
        exit_code: code,
        written: WrittenStats::default(),
        lost: 0,
    })
}

/// Copies records out of the ring into chunks for the writer. Returns how many, and how
/// many of them will be rows. A pass is
/// bounded so that, however fast records arrive, the loop still checks its stop conditions.
fn drain(
    ring: &mut RingBuf<MapData>,
    pipeline: &Pipeline,
    chunk: &mut Vec<Record>,
) -> Result<(usize, u64), crate::pipeline::WriterGone> {
    let mut n = 0;
    let mut calls = 0;
    while n < MAX_DRAIN {
        let Some(item) = ring.next() else { break };
        n += 1;
        // Records are told apart by size. The ring only guarantees 8-byte alignment, hence
        // the unaligned reads; each read is of exactly the size checked.
        let record = match item.len() {
            len if len == size_of::<SyscallEvent>() => {
                // SAFETY: a whole SyscallEvent, as the length says.
                let e = unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<SyscallEvent>()) };
                Record::Call(Call::from(e))
            }
            len if len == size_of::<DetailedEvent>() => {
                // SAFETY: a whole DetailedEvent, as the length says.
                let d = unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<DetailedEvent>()) };
                Record::Call(Call {
                    event: d.event,
                    extra: decode::extra(&d).map(Box::new),
                    fd_path: None,
                })
            }
            len if len == size_of::<ProcessEvent>() => {
                // SAFETY: a whole ProcessEvent, as the length says.
                let p = unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<ProcessEvent>()) };
                drop(item);
                // Now, while the process most likely still exists.
                Record::Process(Box::new(ProcessUpdate::read(p)))
            }
            _ => continue,
        };
        if let Record::Call(c) = &record
            && c.event.flags & FLAG_CONTEXT_ONLY == 0
        {
            calls += 1;
        }
        chunk.push(record);
        if chunk.len() == CHUNK {
            let full = mem::replace(chunk, pipeline.empty_chunk(CHUNK));
            pipeline.send(Message::Records(full))?;
        }
    }
    if !chunk.is_empty() {
        let part = mem::replace(chunk, pipeline.empty_chunk(CHUNK));
        pipeline.send(Message::Records(part))?;
    }
    Ok((n, calls))
}

/// What the targets hold when tracing starts: their fds and their processes-table rows.
fn attach_snapshot(pids: &[u32]) -> Message {
    Message::Attached {
        fds: pids.iter().map(|&p| fd_table::snapshot(p)).collect(),
        processes: pids
            .iter()
            .filter_map(|&p| ProcessRow::from_proc(p))
            .collect(),
    }
}

/// `[ring full, thread table full]`: what was lost, by cause.
fn losses(lost: &Lost) -> [u64; 2] {
    [
        lost[LOST_RING_FULL as usize],
        lost[LOST_THREAD_TABLE_FULL as usize],
    ]
}

/// The `capture` table's `target`: what was asked for, in words.
fn describe_target(args: &Args) -> String {
    if args.all {
        "all processes".to_string()
    } else if !args.pid.is_empty() {
        let pids: Vec<String> = args.pid.iter().map(|p| p.to_string()).collect();
        format!("pids {}", pids.join(", "))
    } else {
        let words: Vec<String> = args
            .command
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        format!("command {}", words.join(" "))
    }
}

fn report(dir: &CaptureDir, written: &WrittenStats, lost: [u64; 2], status: Option<ExitStatus>) {
    let per_event = match written.rows {
        0 => 0.0,
        rows => written.bytes as f64 / rows as f64,
    };
    eprintln!(
        "record: {} syscalls in {} file(s), {} ({per_event:.1} bytes/syscall), {} lost: {}",
        written.rows,
        written.files,
        ByteSize(written.bytes),
        lost.iter().sum::<u64>(),
        dir.root().display(),
    );
    if written.dropped_files > 0 {
        eprintln!(
            "record: --max-size deleted the {} oldest file(s), {} syscalls, to keep the newest",
            written.dropped_files, written.dropped_rows
        );
    }
    if lost[0] > 0 {
        eprintln!(
            "warning: {} syscalls were lost because the ring buffer was full",
            lost[0]
        );
    }
    if lost[1] > 0 {
        eprintln!(
            "warning: {} syscalls were lost because the thread table was full",
            lost[1]
        );
    }
    if let Some(ExitStatus::Signal(sig)) = status {
        eprintln!("record: the command was killed by signal {sig}");
    }
}
