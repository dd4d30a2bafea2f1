//! Loading and attaching the kernel programs, and the maps user space talks to.
use std::{fs, io, os::fd::AsFd};

use crate::kernel::{
    aggregates,
    btf::{self, kernel_btf, release_freed_heap},
    stage::{self, Stage},
    traced::{self, TracedMarks},
};
use aya::{
    Btf, Ebpf, EbpfLoader,
    maps::{Array, HashMap, MapData, PerCpuArray, PerCpuHashMap, RingBuf, StackTraceMap},
    programs::{BtfTracePoint, RawTracePoint, TracePoint},
};
use tracepost_common::{
    AggregateKey, AggregateValue, CGROUP_NOW_GEN, CGROUP_NOW_ID, COMM_LEN, LOST_COUNTERS,
    SLOT_IGNORED, SyscallInfo, ThreadSlot,
};

/// The kernel's loss counters, summed over CPUs, indexed by `tracepost_common::LOST_*` and
/// `UNKEYED_*`.
pub type Lost = [u64; LOST_COUNTERS as usize];

/// The kernel's running totals of calls not sent as detail.
pub type Aggregates = PerCpuHashMap<MapData, AggregateKey, AggregateValue>;

/// The object built from `ebpf/tracepost-ebpf` by this crate's build script.
static OBJECT: &[u8] = aya::include_bytes_aligned!(concat!(env!("OUT_DIR"), "/tracepost"));

/// `BPF_NOEXIST`: insert only if the key is absent.
const BPF_NOEXIST: u64 = 1;

/// Frames a stack map's value holds (`KSTACKS`): the kernel refuses the map where
/// `kernel.perf_event_max_stack` is lower.
const STACK_FRAMES: u32 = tracepost_common::STACK_DEPTH as u32;

fn max_stack_depth() -> Option<u32> {
    std::fs::read_to_string("/proc/sys/kernel/perf_event_max_stack")
        .ok()?
        .trim()
        .parse()
        .ok()
}

const CAP_SYS_ADMIN: u32 = 21;
const CAP_PERFMON: u32 = 38;
const CAP_BPF: u32 = 39;

#[derive(Debug, thiserror::Error)]
pub enum BpfError {
    #[error(
        "record needs root, or the capabilities CAP_BPF and CAP_PERFMON, to load its eBPF programs"
    )]
    Privileges,
    #[error("cannot load the eBPF object (kernel {kernel})")]
    Load {
        kernel: String,
        #[source]
        source: Box<aya::EbpfError>,
    },
    #[error("cannot load or attach eBPF program `{program}` (kernel {kernel})")]
    Program {
        program: &'static str,
        kernel: String,
        #[source]
        source: Box<aya::programs::ProgramError>,
    },
    #[error(
        "kernel.perf_event_max_stack is {max}, and record's stack map needs {STACK_FRAMES} frames \
         (with or without --stacks): raise it, for example `sysctl kernel.perf_event_max_stack=127`"
    )]
    StackDepth { max: u32 },
    #[error("eBPF map `{0}` is missing from the object")]
    MissingMap(&'static str),
    #[error("eBPF map `{name}` has an unexpected type")]
    Map {
        name: &'static str,
        #[source]
        source: Box<aya::maps::MapError>,
    },
    #[error("cannot map the staging areas (eBPF maps `STAGE_HEADS` and `STAGE`)")]
    MapStage(#[source] io::Error),
    #[error("cannot open the thread marks (eBPF map `TRACED`)")]
    MapTraced(#[source] io::Error),
    #[error("cannot tell how many CPUs this host has")]
    Cpus(#[source] io::Error),
    #[error("--buffer-size is too large for this host's CPUs")]
    BufferSize(#[source] io::Error),
    #[error("cannot mark thread {tid} as traced (eBPF map `TRACED`)")]
    MarkThread {
        tid: u32,
        #[source]
        source: io::Error,
    },
    #[error("cannot add thread {tid} to the traced set")]
    AddThread {
        tid: u32,
        #[source]
        source: Box<aya::maps::MapError>,
    },
}

/// `--stacks`: slots for distinct kernel stacks. A stack whose slot (by its hash) holds
/// another is refused rather than written over, which would give calls that already have
/// its id the wrong stack; refusals are counted (`LOST_STACKS`). With 4096 slots, 153
/// distinct stacks on a busy host lost 336 of 41,324 (review of ac2ebe0); the chance of a
/// clash falls with the slots. About 9 MiB of kernel memory (64 frames a slot), taken
/// only with `--stacks`.
const MAX_STACKS: u32 = 16384;

/// `--stacks`: bytes of the ring that carries user stack samples (8 KiB each) to the
/// recorder: 256 samples in flight, against a capture thread that empties it every pass
/// (10 ms). A full ring drops a sample, counted (`LOST_USER_STACKS`), never a call.
const USER_STACK_RING: u32 = 2 << 20;

/// [`USER_STACK_RING`], or `TRACEPOST_TEST_USER_STACK_RING` for the test that checks lost
/// samples are counted: one page holds no sample, so every one is lost.
fn user_stack_ring() -> u32 {
    test_override("TRACEPOST_TEST_USER_STACK_RING", USER_STACK_RING, |n| {
        n.is_power_of_two() && n >= 4096
    })
}

/// [`MAX_STACKS`], or `TRACEPOST_TEST_MAX_STACKS` for the test that checks refused stacks
/// are counted: with one slot, the second distinct stack is refused.
fn max_stacks() -> u32 {
    test_override("TRACEPOST_TEST_MAX_STACKS", MAX_STACKS, |n| n > 0)
}

/// A size a test sets through the environment variable `name`, where `valid` accepts it.
fn test_override(name: &str, default: u32, valid: impl Fn(u32) -> bool) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| valid(*n))
        .unwrap_or(default)
}

/// Settings patched into the object before it is loaded, and map contents set before the
/// programs attach.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub trace_all: bool,
    pub self_tgid: u32,
    /// Where `pid` and `clone_flags` sit in this kernel's `task_newtask` record.
    pub newtask_pid_offset: u32,
    pub newtask_flags_offset: u32,
    /// Where `pid` and `newcomm` sit in this kernel's `task_rename` record.
    pub rename_pid_offset: u32,
    pub rename_newcomm_offset: u32,
    /// Whether this kernel's `sched_process_exit` passes `group_dead` (Linux 6.16 and
    /// later); before, the program that reads it would be refused.
    pub exit_has_group_dead: bool,
    /// Where the programs read kernel structures ([`btf::StructOffsets`]); zeros when
    /// unknown, and what needs them is read another way or not at all.
    pub offsets: btf::StructOffsets,
    /// `--buffer-size`: bytes of staging areas, split between the CPUs.
    pub buffer_bytes: u64,
    pub max_threads: u32,
    /// `--min-duration`: shorter calls are only counted.
    pub min_duration_ns: u64,
    /// `--failed`: successful calls are only counted.
    pub failed_only: bool,
    /// `--comm`: names, cut to the kernel's 15 bytes.
    pub comms: Vec<Vec<u8>>,
    /// `--cgroup`: the cgroup's id and depth.
    pub cgroup: Option<(u64, u32)>,
    /// Per syscall number: traced, and what context to read.
    pub syscalls: Vec<SyscallInfo>,
    /// `--sched`: attach the scheduler's hooks and split each call's time.
    pub sched: bool,
    /// `--stacks`: with `sched`, keep the kernel stack where each call blocked longest,
    /// and send the user stack of each call of at least `stack_min_ns`.
    pub stacks: bool,
    pub stack_min_ns: u64,
}

/// The loaded, attached programs. Dropping it detaches them.
pub struct Probes {
    ebpf: Ebpf,
    threads: HashMap<MapData, u32, ThreadSlot>,
    /// Set before a slot is added here; never cleared here (see `remove_thread`).
    marks: TracedMarks,
    lost: PerCpuArray<MapData, u64>,
    pub aggregates: Aggregates,
    /// `--stacks`: the stacks the programs stored, until the writer takes them.
    stacks: Option<StackTraceMap<MapData>>,
    /// `--stacks`: the user stack samples, until the capture thread takes them.
    user_stacks: Option<RingBuf<MapData>>,
    /// `--cgroup`: the directory's id once it was made anew (`CGROUP_NOW_*`).
    cgroup_now: Array<MapData, u64>,
}

/// Fails early, with one sentence, instead of with an EPERM from deep inside the loader.
pub fn check_privileges() -> Result<(), BpfError> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let cap_eff = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let has = |cap: u32| cap_eff & (1 << cap) != 0;
    if has(CAP_SYS_ADMIN) || (has(CAP_BPF) && has(CAP_PERFMON)) {
        Ok(())
    } else {
        Err(BpfError::Privileges)
    }
}

/// The running kernel's release, for error messages and the capture table.
pub fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unknown".into())
}

impl Probes {
    /// Loads and attaches everything, and returns the staging areas to read records from.
    pub fn load(opts: LoadOptions) -> Result<(Self, Stage), BpfError> {
        check_privileges()?;
        let kernel = kernel_release();
        // Every possible CPU gets an area, since one brought online later writes to its own.
        let cpus = aya::util::nr_cpus()
            .map_err(|(_, e)| BpfError::Cpus(e))
            .and_then(|n| u32::try_from(n).map_err(|e| BpfError::Cpus(io::Error::other(e))))?;
        // Offline CPUs get the least: sharing by possible CPUs gave each of a VM's two
        // online CPUs 1/32 of the buffer where it lists 64.
        let online = aya::util::online_cpus().map_err(|(_, e)| BpfError::Cpus(e))?;
        let chunks =
            stage::layout(opts.buffer_bytes, cpus, &online).map_err(BpfError::BufferSize)?;
        let total_chunks: u32 = chunks.iter().sum();
        let trace_all = u32::from(opts.trace_all);
        let failed_only = u32::from(opts.failed_only);
        let filter_comm = u32::from(!opts.comms.is_empty());
        let (cgroup_id, cgroup_level) = opts.cgroup.unwrap_or((0, 0));
        let sched = u32::from(opts.sched);
        // Preallocated: without --sched it would be kernel memory for nothing.
        let sched_slots = if opts.sched { opts.max_threads } else { 1 };
        let stacks = u32::from(opts.sched && opts.stacks);
        // Preallocated too, a kilobyte each: distinct stacks where traced calls block.
        let stack_slots = if stacks != 0 { max_stacks() } else { 1 };
        let user_stack_ring = if stacks != 0 { user_stack_ring() } else { 4096 };
        let traced_elements = traced::elements();
        let aggregates_groups = aggregates::table_groups(
            opts.trace_all || opts.failed_only || opts.min_duration_ns > 0,
            cpus,
        );
        let file_offsets_known = u32::from(opts.offsets.file_mode.is_some());
        let file_mode = opts.offsets.file_mode.unwrap_or_default();
        let mut ebpf = EbpfLoader::new()
            .override_global("TRACE_ALL", &trace_all, true)
            .override_global("SELF_TGID", &opts.self_tgid, true)
            .override_global("NEWTASK_PID_OFFSET", &opts.newtask_pid_offset, true)
            .override_global("NEWTASK_FLAGS_OFFSET", &opts.newtask_flags_offset, true)
            .override_global("RENAME_PID_OFFSET", &opts.rename_pid_offset, true)
            .override_global("RENAME_NEWCOMM_OFFSET", &opts.rename_newcomm_offset, true)
            .override_global("TASK_EXIT_CODE_OFFSET", &opts.offsets.task_exit_code, true)
            .override_global("BINPRM_P_OFFSET", &opts.offsets.binprm[0], true)
            .override_global("BINPRM_ARGC_OFFSET", &opts.offsets.binprm[1], true)
            .override_global("BINPRM_FILENAME_OFFSET", &opts.offsets.binprm[2], true)
            .override_global("BINPRM_INTERP_OFFSET", &opts.offsets.binprm[3], true)
            .override_global("FILE_OFFSETS_KNOWN", &file_offsets_known, true)
            .override_global("TASK_FILES_OFFSET", &file_mode[0], true)
            .override_global("FILES_FDT_OFFSET", &file_mode[1], true)
            .override_global("FDT_MAX_FDS_OFFSET", &file_mode[2], true)
            .override_global("FDT_FD_OFFSET", &file_mode[3], true)
            .override_global("FILE_INODE_OFFSET", &file_mode[4], true)
            .override_global("INODE_MODE_OFFSET", &file_mode[5], true)
            .override_global("MIN_DURATION_NS", &opts.min_duration_ns, true)
            .override_global("FAILED_ONLY", &failed_only, true)
            .override_global("FILTER_COMM", &filter_comm, true)
            .override_global("FILTER_CGROUP_ID", &cgroup_id, true)
            .override_global("FILTER_CGROUP_LEVEL", &cgroup_level, true)
            .override_global("SCHED", &sched, true)
            .override_global("STACKS", &stacks, true)
            .override_global("STACK_MIN_NS", &opts.stack_min_ns, true)
            .map_max_entries("SCHED_SLOTS", sched_slots)
            .map_max_entries("KSTACKS", stack_slots)
            .map_max_entries("USER_STACKS", user_stack_ring)
            .map_max_entries("STAGE", total_chunks)
            .map_max_entries("STAGE_HEADS", cpus)
            .map_max_entries("THREADS", opts.max_threads)
            .map_max_entries("TRACED", traced_elements)
            .map_max_entries("AGGREGATES", aggregates_groups)
            .load(OBJECT)
            .map_err(|source| match (&source, max_stack_depth()) {
                // The stack map's value is 64 frames, which the kernel refuses past this
                // setting: say which setting, not only EINVAL.
                (
                    aya::EbpfError::MapError(aya::maps::MapError::CreateError { name, .. }),
                    Some(max),
                ) if name == "KSTACKS" && max < STACK_FRAMES => BpfError::StackDepth { max },
                _ => BpfError::Load {
                    kernel: kernel.clone(),
                    source: Box::new(source),
                },
            })?;

        let take = |ebpf: &mut Ebpf, name: &'static str| {
            ebpf.take_map(name).ok_or(BpfError::MissingMap(name))
        };
        let map_err = |name: &'static str| {
            move |source| BpfError::Map {
                name,
                source: Box::new(source),
            }
        };
        // The arrays user space maps.
        let fd = |name: &'static str| match ebpf.map(name) {
            Some(aya::maps::Map::Array(data)) => Ok(data.fd().as_fd()),
            Some(_) => Err(BpfError::Map {
                name,
                source: Box::new(aya::maps::MapError::InvalidMapType { map_type: 0 }),
            }),
            None => Err(BpfError::MissingMap(name)),
        };
        let stage =
            Stage::map(fd("STAGE_HEADS")?, fd("STAGE")?, chunks).map_err(BpfError::MapStage)?;
        let marks = TracedMarks::new(
            fd("TRACED")?
                .try_clone_to_owned()
                .map_err(BpfError::MapTraced)?,
            traced_elements,
        );
        let threads = HashMap::try_from(take(&mut ebpf, "THREADS")?).map_err(map_err("THREADS"))?;
        let lost = PerCpuArray::try_from(take(&mut ebpf, "LOST")?).map_err(map_err("LOST"))?;
        let aggregates = PerCpuHashMap::try_from(take(&mut ebpf, "AGGREGATES")?)
            .map_err(map_err("AGGREGATES"))?;
        let (stacks, user_stacks) = match stacks {
            0 => (None, None),
            _ => (
                Some(
                    StackTraceMap::try_from(take(&mut ebpf, "KSTACKS")?)
                        .map_err(map_err("KSTACKS"))?,
                ),
                Some(
                    RingBuf::try_from(take(&mut ebpf, "USER_STACKS")?)
                        .map_err(map_err("USER_STACKS"))?,
                ),
            ),
        };

        let mut table: Array<MapData, SyscallInfo> =
            Array::try_from(take(&mut ebpf, "SYSCALLS")?).map_err(map_err("SYSCALLS"))?;
        for (nr, info) in opts.syscalls.iter().enumerate() {
            table
                .set(nr as u32, *info, 0)
                .map_err(map_err("SYSCALLS"))?;
        }
        let cgroup_now =
            Array::try_from(take(&mut ebpf, "CGROUP_NOW")?).map_err(map_err("CGROUP_NOW"))?;
        let mut comms: HashMap<MapData, [u8; COMM_LEN], u8> =
            HashMap::try_from(take(&mut ebpf, "COMMS")?).map_err(map_err("COMMS"))?;
        for name in &opts.comms {
            let mut key = [0u8; COMM_LEN];
            let bytes = name.as_slice();
            let n = bytes.len().min(COMM_LEN - 1);
            key[..n].copy_from_slice(&bytes[..n]);
            comms.insert(key, 1, 0).map_err(map_err("COMMS"))?;
        }

        // Slot bookkeeping first, so that no thread gets a slot it would never lose.
        let exit_program = if opts.exit_has_group_dead {
            "sched_process_exit"
        } else {
            "sched_process_exit_leader"
        };
        // All four verified before any is attached: the verifier takes about 90 ms over
        // `sched_process_exec` here, and with `-a` every fork in that time was seen and
        // its exec missed, leaving the child named as its parent.
        raw_program(&mut ebpf, exit_program, &kernel)?
            .load()
            .map_err(program_err(exit_program, &kernel))?;
        for name in ["task_newtask", "task_rename"] {
            tracepoint_program(&mut ebpf, name, &kernel)?
                .load()
                .map_err(program_err(name, &kernel))?;
        }
        raw_program(&mut ebpf, "sched_process_exec", &kernel)?
            .load()
            .map_err(program_err("sched_process_exec", &kernel))?;
        // Forks last: a child seen made has its exec and exit seen too (`detach_while`
        // takes forks away first, for the same reason).
        raw_program(&mut ebpf, exit_program, &kernel)?
            .attach("sched_process_exit")
            .map_err(program_err(exit_program, &kernel))?;
        raw_program(&mut ebpf, "sched_process_exec", &kernel)?
            .attach("sched_process_exec")
            .map_err(program_err("sched_process_exec", &kernel))?;
        // Before any slot caches a name that a rename could make stale.
        tracepoint_program(&mut ebpf, "task_rename", &kernel)?
            .attach("task", "task_rename")
            .map_err(program_err("task_rename", &kernel))?;
        tracepoint_program(&mut ebpf, "task_newtask", &kernel)?
            .attach("task", "task_newtask")
            .map_err(program_err("task_newtask", &kernel))?;
        // `--cgroup`: a process moved into the cgroup is recorded from then on.
        if opts.cgroup.is_some() {
            let program = tracepoint_program(&mut ebpf, "cgroup_attach_task", &kernel)?;
            program
                .load()
                .map_err(program_err("cgroup_attach_task", &kernel))?;
            program
                .attach("cgroup", "cgroup_attach_task")
                .map_err(program_err("cgroup_attach_task", &kernel))?;
        }
        if opts.sched {
            attach_sched(&mut ebpf, &kernel)?;
        }
        // Read now, after the loader has freed its own copy: two at once were 4 MiB more
        // peak memory. Trimmed after: about 2 MiB less peak on the getppid loop.
        let btf = kernel_btf();
        // Exit before enter: an enter without its exit program would fill slots for nothing.
        attach_syscall_hook(&mut ebpf, "sys_exit", "sys_exit_raw", btf.as_ref(), &kernel)?;
        attach_syscall_hook(
            &mut ebpf,
            "sys_enter",
            "sys_enter_raw",
            btf.as_ref(),
            &kernel,
        )?;
        drop(btf);
        release_freed_heap();

        Ok((
            Self {
                ebpf,
                threads,
                marks,
                lost,
                aggregates,
                stacks,
                user_stacks,
                cgroup_now,
            },
            stage,
        ))
    }

    /// `--cgroup`: the directory now has the id `id` (`CGROUP_GONE` while it has none), the
    /// `generation`th change. The id is stored before the generation, so a thread that sees
    /// the new generation decides against the new id.
    pub fn set_cgroup(&mut self, id: u64, generation: u64) -> Result<(), BpfError> {
        let err = |source| BpfError::Map {
            name: "CGROUP_NOW",
            source: Box::new(source),
        };
        self.cgroup_now.set(CGROUP_NOW_ID, id, 0).map_err(err)?;
        self.cgroup_now
            .set(CGROUP_NOW_GEN, generation, 0)
            .map_err(err)
    }

    /// `--stacks`: the map of stacks, for the writer to read.
    pub fn take_stacks(&mut self) -> Option<StackTraceMap<MapData>> {
        self.stacks.take()
    }

    /// `--stacks`: the ring of user stack samples, for the capture thread to read.
    pub fn take_user_stacks(&mut self) -> Option<RingBuf<MapData>> {
        self.user_stacks.take()
    }

    /// Traces `tid` from its next syscall on (or only follows it, when `ignored` by
    /// `--comm` or `--cgroup`). A call it is blocked in now is not recorded. A thread the
    /// fork tracepoint already added keeps its slot (and its call in flight).
    pub fn add_thread(&mut self, tid: u32, ignored: bool) -> Result<(), BpfError> {
        let mut slot = ThreadSlot::IDLE;
        if ignored {
            slot.flags = SLOT_IGNORED;
        }
        self.marks
            .mark(tid)
            .map_err(|e| BpfError::MarkThread { tid, source: e })?;
        match self.threads.insert(tid, slot, BPF_NOEXIST) {
            Err(aya::maps::MapError::SyscallError(e))
                if e.io_error.raw_os_error() == Some(libc::EEXIST) =>
            {
                Ok(())
            }
            other => other.map_err(|source| BpfError::AddThread {
                tid,
                source: Box::new(source),
            }),
        }
    }

    /// Stops tracing `tid`: for a thread that died before its slot was added, whose exit
    /// hook therefore never removed it.
    pub fn remove_thread(&mut self, tid: u32) {
        // Its mark stays: the id may belong to a new thread by now, whose mark this must
        // not clear. A mark left set costs a lookup, never a call.
        let _ = self.threads.remove(&tid);
    }

    /// Detaches the programs. After this no new program run starts, so a last drain sees
    /// everything; the counters stay readable for after that drain. Detaching takes the
    /// kernel 100-200 ms here (each link's close waits for programs in flight), in which
    /// the programs keep sending: `meanwhile` runs over and over until it is done, so that
    /// the staging areas are drained then too. With `-a` at 1.2M calls/s, the areas
    /// filled in that window in about one run of eight, and its calls were counted lost
    /// (BENCHMARKS.md).
    pub fn detach_while(self, mut meanwhile: impl FnMut()) -> Detached {
        let Self {
            mut ebpf,
            lost,
            aggregates,
            ..
        } = self;
        // Forks first: dropped in the map's order, the exec program could go before them,
        // and a child forked in those 100-200 ms read as its parent's program (a test saw
        // 62 such rows at the end of a `-a` capture of a shell loop).
        if let Some(p) = ebpf.program_mut("task_newtask")
            && let Ok(p) = <&mut TracePoint>::try_from(p)
        {
            let _ = p.unload();
        }
        std::thread::scope(|s| {
            match std::thread::Builder::new()
                .name("detach".into())
                .spawn_scoped(s, move || drop(ebpf))
            {
                Ok(detaching) => {
                    while !detaching.is_finished() {
                        meanwhile();
                    }
                    let _ = detaching.join();
                }
                // No thread to spare: detached here, and drained after, as it always was.
                Err(e) => drop(e),
            }
        });
        Detached { lost, aggregates }
    }

    /// Calls the kernel could not record so far.
    pub fn lost(&self) -> Lost {
        lost_counts(&self.lost)
    }
}

/// The counters of detached programs, final once the staging areas are drained.
pub struct Detached {
    lost: PerCpuArray<MapData, u64>,
    pub aggregates: Aggregates,
}

impl Detached {
    pub fn lost(&self) -> Lost {
        lost_counts(&self.lost)
    }
}

fn lost_counts(lost: &PerCpuArray<MapData, u64>) -> Lost {
    let mut out = [0u64; LOST_COUNTERS as usize];
    for (i, slot) in out.iter_mut().enumerate() {
        if let Ok(values) = lost.get(&(i as u32), 0) {
            *slot = values.iter().sum();
        }
    }
    out
}

/// The scheduler's hooks, before the syscall hooks: every switch and wakeup of a call
/// whose entry is seen is then seen too. The interrupt hooks come first, so that the
/// first wakeups are already told apart, and each exit before its entry: an interrupt
/// that ran between an entry hook and its exit hook being attached would be counted in
/// and never out, and its CPU would call every later wakeup an interrupt's (a test saw a
/// pipe write classed as a softirq that way). An exit without its entry counts nothing.
fn attach_sched(ebpf: &mut Ebpf, kernel: &str) -> Result<(), BpfError> {
    for name in [
        "irq_handler_exit",
        "irq_handler_entry",
        "softirq_exit",
        "softirq_entry",
        "hrtimer_expire_exit",
        "hrtimer_expire_entry",
        "timer_expire_exit",
        "timer_expire_entry",
        "sched_waking",
        "sched_wakeup",
    ] {
        attach_raw(ebpf, name, kernel)?;
    }
    // Last: it changes the states the others act on.
    attach_raw(ebpf, "sched_switch", kernel)
}

fn attach_raw(ebpf: &mut Ebpf, name: &'static str, kernel: &str) -> Result<(), BpfError> {
    attach_raw_as(ebpf, name, name, kernel)
}

/// The error of program `name`, as `map_err` takes it.
fn program_err<'k>(
    name: &'static str,
    kernel: &'k str,
) -> impl Fn(aya::programs::ProgramError) -> BpfError + 'k {
    move |source| BpfError::Program {
        program: name,
        kernel: kernel.to_string(),
        source: Box::new(source),
    }
}

/// The raw tracepoint program `name`.
fn raw_program<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
    kernel: &str,
) -> Result<&'a mut RawTracePoint, BpfError> {
    let err = program_err(name, kernel);
    ebpf.program_mut(name)
        .ok_or_else(|| err(aya::programs::ProgramError::UnexpectedProgramType))?
        .try_into()
        .map_err(err)
}

/// The tracepoint program `name`.
fn tracepoint_program<'a>(
    ebpf: &'a mut Ebpf,
    name: &'static str,
    kernel: &str,
) -> Result<&'a mut TracePoint, BpfError> {
    let err = program_err(name, kernel);
    ebpf.program_mut(name)
        .ok_or_else(|| err(aya::programs::ProgramError::UnexpectedProgramType))?
        .try_into()
        .map_err(err)
}

/// Loads program `name` and attaches it to raw tracepoint `tracepoint`.
fn attach_raw_as(
    ebpf: &mut Ebpf,
    name: &'static str,
    tracepoint: &str,
    kernel: &str,
) -> Result<(), BpfError> {
    let err = program_err(name, kernel);
    let program = raw_program(ebpf, name, kernel)?;
    program.load().map_err(&err)?;
    program.attach(tracepoint).map_err(&err)?;
    Ok(())
}

/// Attaches the hook of one side of every syscall: the BTF tracepoint program of that name
/// where the kernel has BTF, as it is cheaper per call, else (or if the kernel refuses it)
/// the raw tracepoint program `raw`. Both record the same; a test checks it.
fn attach_syscall_hook(
    ebpf: &mut Ebpf,
    name: &'static str,
    raw: &'static str,
    btf: Option<&Btf>,
    kernel: &str,
) -> Result<(), BpfError> {
    if let Some(btf) = btf {
        let attached = ebpf
            .program_mut(name)
            .ok_or(aya::programs::ProgramError::UnexpectedProgramType)
            .and_then(<&mut BtfTracePoint>::try_from)
            .and_then(|p| {
                p.load(name, btf)?;
                p.attach()
            });
        if attached.is_ok() {
            return Ok(());
        }
    }
    attach_raw_as(ebpf, raw, name, kernel)
}
