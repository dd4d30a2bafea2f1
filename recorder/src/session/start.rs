//! Starting a capture: everything that can be refused is refused before anything is
//! written; then the programs are loaded, the writers started and the targets attached.
use std::{
    fs,
    sync::{Arc, Mutex},
    time::SystemTime,
};

use anyhow::{Context as _, Result, bail};
use tracepost_schema::{aggregates, capture, processes, syscalls};

use super::{
    Mode,
    drain::{CHUNK, Drain},
};
use crate::{
    cli::Args,
    files::batch::BatchBuilder,
    files::capture_dir::{self, CaptureDir},
    files::capture_table::CaptureInfo,
    files::parquet_file,
    files::pipeline::{Chunk, Message, Pipeline, Writers},
    files::progress::Counters,
    files::small_table::SmallTableWriter,
    files::writer::{Rotation, TableWriter},
    follow::cgroup_watch::CgroupWatch,
    follow::launch::Gated,
    follow::processes::{ProcessRow, ProcessTable},
    follow::scope::Scope,
    follow::sharing::{self, Sharers},
    follow::target,
    kernel::aggregates::{AggregateRow, Sampler},
    kernel::bpf::{self, LoadOptions, Probes},
    kernel::btf,
    kernel::clock::{self, WallClock},
    kernel::intern::Interner,
    kernel::kernel_stacks::{self, KernelStacks},
    kernel::kernel_support,
    kernel::syscall_table,
    kernel::tracefs,
    session::signals::{self, StopFlag},
    upload::{Shipped, Uploader},
    user_stacks::{UserStacks, chains::Chains},
};

const MAX_THREADS: u32 = 65536;
const MAX_FILE_ROWS: u64 = 16 * 1024 * 1024;

/// A running capture: what the loop reads from, where it sends, and its running tallies.
pub(super) struct Capture {
    pub dir: CaptureDir,
    pub info: CaptureInfo,
    pub probes: Probes,
    /// Reads the kernel's records, merged across CPUs.
    pub drain: Drain,
    pub pipeline: Pipeline,
    pub counters: Arc<Counters>,
    pub stop: StopFlag,
    pub mode: Mode,
    /// Records read and not yet handed to the writer.
    pub chunk: Chunk,
    /// The paths records carried, shared while they recur.
    pub paths: Interner,
    /// Calls read that become rows.
    pub events: u64,
    pub sampler: Sampler,
    /// Aggregate rows waiting for room in the writer's queue.
    pub unsent_rows: Vec<AggregateRow>,
    /// With `--upload`: ships closed files, and is waited for once the capture ends.
    pub uploader: Option<Uploader>,
    /// With `--cgroup`: the path, looked at for a cgroup made anew there.
    pub cgroup_watch: Option<CgroupWatch>,
    /// With `--max-size`: the calls deleted that the capture row says so far.
    pub deleted_noted: u64,
}

pub(super) fn start(args: &Args) -> Result<Capture> {
    let stop = StopFlag::default();
    let forward_to = signals::install(stop.clone()).context("cannot install signal handlers")?;
    bpf::check_privileges()?;
    if args.stacks {
        let readable = kernel_stacks::symbols_readable()
            .context("--stacks: cannot read /proc/kallsyms to name kernel stacks")?;
        if !readable {
            bail!(
                "--stacks: /proc/kallsyms shows every address as 0 here (kernel.kptr_restrict \
                 is 2, or record lacks CAP_SYSLOG), so no kernel stack could be named; set \
                 kernel.kptr_restrict to 1 or 0, or record without --stacks"
            );
        }
    }
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
    let mut options = Vec::new();
    if args.cgroup.is_some() {
        options.push(kernel_support::CaptureOption::Cgroup);
    }
    if args.sched() {
        options.push(kernel_support::CaptureOption::Sched);
    }
    kernel_support::check(&tracefs, &bpf::kernel_release(), &options)?;
    let [newtask_pid_offset, newtask_flags_offset] =
        tracefs::field_offsets(&tracefs, "task", "task_newtask", ["pid", "clone_flags"])?;
    let [rename_pid_offset, rename_newcomm_offset] =
        tracefs::field_offsets(&tracefs, "task", "task_rename", ["pid", "newcomm"])?;
    let exit_has_group_dead =
        tracefs::has_field(&tracefs, "sched", "sched_process_exit", "group_dead")?;
    let host = capture_dir::hostname();
    // A name the user gives is continued if it is a capture; one record chose never is.
    let (root, chosen) = match &args.output {
        Some(output) => (output.clone(), false),
        None => (
            capture_dir::unused(capture_dir::default_name(&host, SystemTime::now())),
            true,
        ),
    };
    // A capture is read by path and by URL, and neither DataFusion nor an object store
    // names a file whose path is not UTF-8 or holds a control character (a tab, a
    // newline): refused now, not found unreadable later. The whole path counts, so a
    // relative name under such a directory is refused too.
    let absolute = match std::env::current_dir() {
        Ok(cwd) => cwd.join(&root),
        Err(e) if root.is_relative() => bail!(
            "output {}: relative to the current directory, which cannot be found ({e}: \
             removed?); give -o an absolute path",
            root.display()
        ),
        Err(_) => root.clone(),
    };
    // And as links lead: analyze reads a capture by its real path.
    let real = absolute
        .parent()
        .and_then(|p| fs::canonicalize(p).ok())
        .unwrap_or_default();
    let unreadable =
        |p: &std::path::Path| p.to_str().is_none_or(|p| p.chars().any(char::is_control));
    if unreadable(&absolute) || unreadable(&real) {
        bail!(
            "output {}: the path is not UTF-8 or holds a control character, and analyze \
             could not read a capture there; choose another name",
            absolute.display()
        );
    }
    // Before the directory exists, so that a URL it refuses leaves nothing behind; and
    // before any file is closed, so that `--max-size` never deletes one it has not seen.
    let uploader = match &args.upload {
        Some(url) => Some(Uploader::start(url, &root, args.upload_wait, args.quiet)?),
        None => None,
    };
    let dir = match chosen {
        true => CaptureDir::create_new(&root)?,
        false => CaptureDir::create(&root)?,
    };
    if !chosen {
        warn_other_columns(&dir, args.sched());
    }
    let min_duration_ns = args
        .min_duration
        .map(|d| d.as_nanos().min(u64::MAX as u128) as u64);

    let counters = Counters::new();
    let shipped = uploader.as_ref().map(Uploader::shipped);
    // Before the programs are loaded: the first `aggregates` interval holds every call they
    // counted, and one that began at the end of start-up began after the command's first
    // calls, so that `--since`/`--until` read them as outside a window they were in
    // (helper-97). The capture began then too, by the same clock: a first interval that
    // began before the capture's start was counted in windows before it (helper-98).
    let counting_from = clock::monotonic_ns();
    let clock = WallClock::sample();
    // Until the capture row is written, a failure takes back what this run made: a
    // directory of empty tables reads as a recorder killed as it started.
    let made = (|| -> Result<_> {
        let (mut probes, stage) = Probes::load(LoadOptions {
            trace_all: args.all,
            self_tgid: std::process::id(),
            newtask_pid_offset,
            newtask_flags_offset,
            rename_pid_offset,
            rename_newcomm_offset,
            exit_has_group_dead,
            offsets: btf::struct_offsets(),
            buffer_bytes: args.buffer_size.as_u64(),
            max_threads: MAX_THREADS,
            min_duration_ns: min_duration_ns.unwrap_or(0),
            failed_only: args.failed,
            comms: scope.comms.clone(),
            cgroup: scope.cgroup.as_ref().map(|c| (c.id, c.level)),
            syscalls: syscall_table::kernel_table(args.syscalls.as_ref()),
            sched: args.sched(),
            stacks: args.stacks,
            stack_min_ns: u64::try_from(args.stack_min.as_nanos()).unwrap_or(u64::MAX),
        })?;
        let info = CaptureInfo::new(host, describe_target(args, &scope), min_duration_ns)
            .started_at(clock.to_wall_ns(counting_from));
        let stacks = probes
            .take_stacks()
            .map(|map| KernelStacks::new(map, args.stack_min));
        let user_stacks = probes
            .take_user_stacks()
            .map(UserStacks::new)
            .transpose()
            .context("cannot start the thread that unwinds user stacks")?;
        let chains = user_stacks.as_ref().map(UserStacks::chains);
        let pipeline = start_writers(args, &dir, &counters, shipped, stacks, chains, clock)?;
        Ok((probes, stage, info, user_stacks, pipeline))
    })();
    let (mut probes, stage, info, user_stacks, pipeline) = match made {
        Ok(made) => made,
        Err(e) => {
            dir.abandon();
            return Err(e);
        }
    };
    // Tracing began before the snapshots are taken, so every change they miss is also seen
    // as a call, and replaying those calls on top of a snapshot converges on the truth. The
    // loop has not drained the staging areas yet, so the snapshots reach the writer before
    // any call.
    let send_snapshot = |pids: &[u32], sharers: Sharers| {
        if pipeline.send(attach_snapshot(pids, sharers)).is_err() {
            bail!("the writer stopped unexpectedly");
        }
        Ok(())
    };
    // The row after every other table has its first file: a directory with a capture row
    // always has a `syscalls` table that every reader opens, however early `record` is
    // killed. Until tracing has begun, a failure takes back the run whole, its capture row
    // too: a `-p` target that exited while it was attached left a run that read as a
    // recorder killed as it started (helper-88).
    let attached = info
        .write(&dir.table_dir(capture::TABLE))
        .map_err(anyhow::Error::from)
        .and_then(|()| {
            attach(
                args,
                &scope,
                gated,
                &mut probes,
                &forward_to,
                pidfds,
                send_snapshot,
            )
        });
    let mode = match attached {
        Ok(mode) => mode,
        Err(e) => {
            let _ = pipeline.finish();
            info.remove(&dir.table_dir(capture::TABLE));
            dir.abandon();
            return Err(e);
        }
    };
    Ok(Capture {
        dir,
        info,
        probes,
        drain: Drain::new(stage, user_stacks),
        pipeline,
        counters,
        stop,
        mode,
        chunk: Chunk::with_capacity(CHUNK),
        paths: Interner::default(),
        events: 0,
        sampler: Sampler::new(counting_from),
        unsent_rows: Vec::new(),
        uploader,
        cgroup_watch: scope.cgroup.as_ref().map(CgroupWatch::new),
        deleted_noted: 0,
    })
}

/// Begins tracing what `args` names, and sends the writer what the targets hold.
fn attach(
    args: &Args,
    scope: &Scope,
    gated: Option<Gated>,
    probes: &mut Probes,
    forward_to: &signals::Forward,
    pidfds: Vec<std::os::fd::OwnedFd>,
    send_snapshot: impl Fn(&[u32], Sharers) -> Result<()>,
) -> Result<Mode> {
    let mode = if let Some(gated) = gated {
        let pid = gated.pid() as u32;
        probes.add_thread(pid, false)?;
        // Before the command is let go: read while it execs, /proc/PID/fd can be refused
        // or half read, and in about one run of ten the command's inherited stdout had
        // no name.
        send_snapshot(&[pid], Sharers::Traced)?;
        let running = gated.release()?;
        forward_to.set(signals::Command::of(running.pid()));
        Mode::Command(running)
    } else if args.all {
        let me = std::process::id();
        let all: Vec<u32> = target::ids("/proc")
            .map(|ids| ids.filter(|&p| p != me).collect())
            .unwrap_or_default();
        send_snapshot(&all, Sharers::Traced)?;
        Mode::All
    } else {
        for &pid in &args.pid {
            target::attach_process(probes, pid, scope)?;
        }
        let pids: Vec<u32> = args.pid.iter().map(|&p| p as u32).collect();
        send_snapshot(&pids, Sharers::MayBeUntraced)?;
        Mode::Pids(pidfds)
    };
    Ok(mode)
}

/// A capture continued with `--sched` after a plain run, or the other way round, holds
/// `syscalls` files of two column sets. `analyze` reads them all, but other readers need
/// telling: DuckDB refuses such a glob without `union_by_name`, and pandas kept the first
/// file's columns and dropped the rest without a word (helper-88).
fn warn_other_columns(dir: &CaptureDir, sched: bool) {
    let Some(columns) = parquet_file::newest_columns(&dir.table_dir(syscalls::TABLE)) else {
        return;
    };
    let ours = syscalls::file_schema(sched).fields().len();
    if columns == ours {
        return;
    }
    let (then, now) = match sched {
        true => ("without", "with"),
        false => ("with", "without"),
    };
    crate::say!(
        "warning: output {}: its last run was recorded {then} --sched and this one is \
         {now} it, so its syscalls files have two sets of columns: analyze reads them \
         all, DuckDB needs read_parquet(..., union_by_name = true), and pandas or pyarrow \
         a schema that holds both",
        crate::visible(&dir.root().display().to_string())
    );
}

/// The writer thread, with a writer per table.
fn start_writers(
    args: &Args,
    dir: &CaptureDir,
    counters: &Arc<Counters>,
    shipped: Option<Shipped>,
    stacks: Option<KernelStacks>,
    chains: Option<Arc<Mutex<Chains>>>,
    clock: WallClock,
) -> Result<Pipeline> {
    let mut writer = TableWriter::new(
        &dir.table_dir(syscalls::TABLE),
        BatchBuilder::new(clock)
            .with_stacks(stacks)
            .with_user_stacks(chains, args.stack_min),
        Rotation {
            max_age: args.rotate,
            max_rows: MAX_FILE_ROWS,
            max_total_bytes: args.max_size.map(|s| s.as_u64()),
        },
        counters.clone(),
    )?
    .with_sched(args.sched());
    if let Some(shipped) = shipped {
        writer = writer.keep_until_shipped(shipped);
    }
    writer.write_empty_first()?;
    let small = |table: &'static str, schema| {
        SmallTableWriter::new(&dir.table_dir(table), table, schema, args.rotate)
    };
    let aggregates_writer = small(aggregates::TABLE, aggregates::schema())?;
    let processes_writer = small(processes::TABLE, processes::schema())?;
    Pipeline::start(Writers {
        syscalls: writer,
        aggregates: aggregates_writer,
        processes: processes_writer,
        builder: BatchBuilder::new(clock),
        processes_table: ProcessTable::new(clock),
    })
    .context("cannot start the writer thread")
}

/// What the targets hold when tracing starts: their fds and their processes-table rows.
fn attach_snapshot(pids: &[u32], sharers: Sharers) -> Message {
    Message::Attached {
        fds: sharing::snapshots(pids, sharers),
        processes: pids
            .iter()
            .filter_map(|&p| ProcessRow::from_proc(p))
            .collect(),
    }
}

/// The `capture` table's `target`: what was asked for, in words, with what narrows it
/// (`all processes, in cgroup /sys/fs/cgroup/x`): a capture of one service read as one of
/// the whole host.
fn describe_target(args: &Args, scope: &Scope) -> String {
    let mut target = whom(args);
    // The directory itself: a relative `--cgroup` named a path only the recorder's own
    // working directory made sense of (helper-88).
    if let Some(cgroup) = &scope.cgroup {
        target.push_str(&format!(", in cgroup {}", cgroup.path.display()));
    }
    if !args.comm.is_empty() {
        target.push_str(&format!(", named {}", args.comm.join(" or ")));
    }
    target
}

/// The processes asked for, before `--cgroup` and `--comm` narrow them.
fn whom(args: &Args) -> String {
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
        format!(
            "command {}",
            crate::shell_words::join(words.iter().map(String::as_str))
        )
    }
}
