//! One capture, from start to stop.
use std::{
    mem,
    os::fd::OwnedFd,
    sync::atomic::Ordering,
    thread,
    time::{Duration, Instant, SystemTime},
};

use anyhow::{Context as _, Result, bail};
use aya::maps::{MapData, RingBuf};
use bytesize::ByteSize;
use tracepost_common::{LOST_RING_FULL, LOST_THREAD_TABLE_FULL, SyscallEvent};
use tracepost_schema::{aggregates, capture, syscalls};

use crate::{
    aggregates::{AggregateRow, Sampler},
    batch::BatchBuilder,
    bpf::{self, LoadOptions, Lost, Probes},
    capture_dir::{self, CaptureDir},
    capture_table::{CaptureInfo, Ending},
    cli::Args,
    clock::{self, WallClock},
    launch::{ExitStatus, Gated, Running},
    pipeline::{Message, Pipeline},
    progress::{Counters, Progress},
    signals::{self, StopFlag},
    small_table::SmallTableWriter,
    target, tracefs,
    writer::{Rotation, TableWriter, WrittenStats},
};

/// How long the capture loop sleeps when the ring is empty. Events are submitted without
/// waking the reader (a wakeup per event costs more than the event), so this also bounds
/// how stale the ring gets.
const POLL: Duration = Duration::from_millis(10);
/// Records per chunk handed to the writer thread.
const CHUNK: usize = 16 * 1024;
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
    let tracefs = tracefs::root()?;
    let fork_child_pid_offset =
        tracefs::field_offset(&tracefs, "sched", "sched_process_fork", "child_pid")?;
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
        fork_child_pid_offset,
        ring_bytes: bpf::ring_bytes(args.buffer_size.as_u64())?,
        max_threads: MAX_THREADS,
        max_aggregates: MAX_AGGREGATES,
        min_duration_ns: min_duration_ns.unwrap_or(0),
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
    let builder = BatchBuilder::new(clock);
    let pipeline = Pipeline::start(writer, aggregates_writer, builder)
        .context("cannot start the writer thread")?;

    let mode = if let Some(gated) = gated {
        probes.add_thread(gated.pid() as u32)?;
        let running = gated.release()?;
        forward_to.store(running.pid(), Ordering::Relaxed);
        Mode::Command(running)
    } else if args.all {
        Mode::All
    } else {
        for &pid in &args.pid {
            target::attach_process(&mut probes, pid)?;
        }
        Mode::Pids(pidfds)
    };

    // A deadline past what the clock can represent is no deadline.
    let deadline = args.duration.and_then(|d| Instant::now().checked_add(d));
    let mut chunk = Vec::with_capacity(CHUNK);
    let mut status = None;
    let mut wait_error = None;
    let mut writer_gone = false;
    let mut progress = Progress::new(args.quiet);
    let mut events = 0u64;
    let mut sampler = Sampler::new(clock::monotonic_ns());
    let mut next_sample = Instant::now() + AGGREGATE_INTERVAL;
    let mut unsent_rows: Vec<AggregateRow> = Vec::new();
    loop {
        let drained = match drain(&mut ring, &pipeline, &mut chunk) {
            Ok(n) => n,
            Err(_) => {
                writer_gone = true;
                break;
            }
        };
        events += drained as u64;
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
                    Ok(Some(Message::Events(_))) => unreachable!("sent aggregates"),
                    Err(_) => {
                        writer_gone = true;
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
                Ok(0) => empty_passes += 1,
                Ok(_) => empty_passes = 0,
                Err(_) => {
                    writer_gone = true;
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
            .send(Message::Events(mem::take(&mut chunk)))
            .is_err()
    {
        writer_gone = true;
    }
    if !writer_gone
        && !unsent_rows.is_empty()
        && pipeline
            .send(Message::Aggregates(mem::take(&mut unsent_rows)))
            .is_err()
    {
        writer_gone = true;
    }
    let written = pipeline
        .finish()
        .with_context(|| format!("capture {} is incomplete", dir.root().display()))?;
    if writer_gone {
        bail!("the writer stopped unexpectedly");
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
            events,
            lost_events: lost_total,
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
    }
    Ok(Outcome {
        exit_code,
        written,
        lost: lost_total,
    })
}

/// Copies records out of the ring into chunks for the writer. Returns how many. A pass is
/// bounded so that, however fast records arrive, the loop still checks its stop conditions.
fn drain(
    ring: &mut RingBuf<MapData>,
    pipeline: &Pipeline,
    chunk: &mut Vec<SyscallEvent>,
) -> Result<usize, crate::pipeline::WriterGone> {
    let mut n = 0;
    while n < MAX_DRAIN {
        let Some(item) = ring.next() else { break };
        if item.len() < size_of::<SyscallEvent>() {
            continue;
        }
        // SAFETY: the kernel wrote a whole SyscallEvent (checked length); the ring only
        // guarantees 8-byte alignment, hence the unaligned read.
        let event = unsafe { std::ptr::read_unaligned(item.as_ptr().cast::<SyscallEvent>()) };
        drop(item);
        chunk.push(event);
        n += 1;
        if chunk.len() == CHUNK {
            pipeline.send(Message::Events(mem::replace(
                chunk,
                Vec::with_capacity(CHUNK),
            )))?;
        }
    }
    if !chunk.is_empty() {
        // Exactly sized: a poll usually finds far fewer records than a chunk holds.
        let exact = chunk.to_vec();
        chunk.clear();
        pipeline.send(Message::Events(exact))?;
    }
    Ok(n)
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
