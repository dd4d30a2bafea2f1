//! The `processes` table: one row per process, kept up to date from process events and from
//! the calls that say more (exit_group's code, execve's path). A row is written once the
//! process has exited, or when the capture stops.
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
};

use arrow_array::{
    ArrayRef, RecordBatch,
    builder::{Int32Builder, Int64Builder, StringBuilder, TimestampMicrosecondBuilder},
};
use arrow_schema::ArrowError;
use syscalls::Sysno;
use tracepost_common::{FLAG_NO_RETURN, PROCESS_EXEC, PROCESS_EXIT, PROCESS_NEW};
use tracepost_schema::{processes, ts_value};

use crate::{
    files::batch::comm_str,
    follow::launch::ExitStatus,
    follow::process_event::{self, ProcessUpdate},
    kernel::call::Call,
    kernel::clock::WallClock,
    kernel::decode::Extra,
};

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProcessRow {
    pub pid: u32,
    pub ppid: Option<u32>,
    pub comm: Option<String>,
    pub exe: Option<String>,
    pub cmdline: Option<String>,
    pub uid: Option<u32>,
    pub cgroup: Option<String>,
    /// Wall-clock nanoseconds.
    pub start_ns: Option<i64>,
    pub exit_ns: Option<i64>,
    pub exit_code: Option<i32>,
    pub exit_signal: Option<i32>,
}

/// Whether `pid` is a process that began no later than `began` (a wall-clock time): one not
/// traced (the `record` that started the command, the shell of a process `-p` took) that is
/// still the parent it was, since a process is reparented only when its parent dies, and a
/// pid taken again belongs to a process that began later. Read from /proc: rare, for
/// `CLONE_PARENT` children only, whose ppid was NULL wherever that parent was not traced
/// (helper-95).
fn alive_since(pid: u32, began: Option<i64>) -> bool {
    let Some(began) = began else {
        return false;
    };
    process_event::stat(pid)
        .filter(|stat| stat.state != 'Z')
        .and_then(|stat| process_event::start_wall_ns(stat.start_ticks))
        // Both may be /proc's starts, to the tick (10 ms) each, and a parent often starts
        // its child within the same tick; each placing of boot on the wall clock differs
        // by some nanoseconds.
        .is_some_and(|start| start <= began + 1_000_000)
}

impl ProcessRow {
    /// A process that exists now, from /proc.
    pub fn from_proc(pid: u32) -> Option<Self> {
        let stat = process_event::stat(pid)?;
        Some(Self {
            pid,
            ppid: Some(stat.ppid),
            comm: Some(stat.comm),
            exe: process_event::exe(pid),
            cmdline: process_event::cmdline(pid),
            uid: process_event::uid(pid),
            cgroup: process_event::cgroup(pid),
            start_ns: process_event::start_wall_ns(stat.start_ticks),
            ..Default::default()
        })
    }
}

pub struct ProcessTable {
    clock: WallClock,
    live: HashMap<u32, ProcessRow>,
    exited: Vec<ProcessRow>,
    /// Processes whose last exec neither /proc nor the kernel named (a kernel whose
    /// `linux_binprm` is not known): their execve's path names the program instead.
    unnamed: HashSet<u32>,
}

impl ProcessTable {
    pub fn new(clock: WallClock) -> Self {
        Self {
            clock,
            live: HashMap::new(),
            exited: Vec::new(),
            unnamed: HashSet::new(),
        }
    }

    pub fn add(&mut self, row: ProcessRow) {
        self.live.insert(row.pid, row);
    }

    /// `place_of` resolves a name a process gave from its cwd
    /// ([`crate::follow::fd_table::FdTracker::place_of`]).
    pub fn on_update(
        &mut self,
        u: &ProcessUpdate,
        place_of: impl Fn(u32, &str) -> Option<Arc<str>>,
    ) {
        let ev = &u.event;
        let ts = self.clock.to_wall_ns(ev.ts_ns);
        match ev.kind {
            PROCESS_NEW => {
                // A child starts as a copy of its parent: same program, user and cgroup
                // (unless its clone chose another).
                let parent = self.live.get(&ev.pid).cloned().unwrap_or_default();
                // CLONE_PARENT makes it its caller's sibling: getppid() is the caller's
                // parent, NULL where that is not known.
                // (An orphaned caller's parent is gone: its own is init or a subreaper,
                // which no event names.)
                let ppid = match ev.clone_flags & CLONE_PARENT {
                    0 => Some(ev.pid),
                    _ => parent
                        .ppid
                        .filter(|p| self.live.contains_key(p) || alive_since(*p, parent.start_ns)),
                };
                let row = ProcessRow {
                    pid: ev.child_tid,
                    ppid,
                    comm: Some(comm_str(&ev.comm).into_owned()),
                    exe: parent.exe,
                    cmdline: parent.cmdline,
                    uid: Some(ev.uid),
                    cgroup: match ev.clone_flags & process_event::CLONE_INTO_CGROUP {
                        0 => u.cgroup.clone().or(parent.cgroup),
                        _ => u.cgroup.clone(),
                    },
                    start_ns: Some(ts),
                    ..Default::default()
                };
                self.live.insert(row.pid, row);
            }
            PROCESS_EXEC => {
                let row = self.live.entry(ev.pid).or_insert_with(|| ProcessRow {
                    pid: ev.pid,
                    ..Default::default()
                });
                row.comm = Some(comm_str(&ev.comm).into_owned());
                row.uid = Some(ev.uid);
                // What /proc said now, or nothing: the old program's are wrong after exec,
                // except for an exec of /proc/self/exe, which runs the old program again.
                let program = &ev.program[..(ev.program_len as usize).min(ev.program.len())];
                let again = program == b"/proc/self/exe"
                    || program == format!("/proc/{}/exe", ev.pid).as_bytes();
                if u.exe.is_some() || !again {
                    row.exe = u.exe.clone();
                }
                // Gone before /proc was read: the file the kernel ran, named as the process
                // named it, a relative name (`./prog`, `#!sh`) from the cwd its calls
                // followed, an absolute one below its root (after chroot, the host's file
                // of that name is another).
                if row.exe.is_none() && !program.is_empty() {
                    row.exe = std::str::from_utf8(program)
                        .ok()
                        .and_then(|name| place_of(ev.pid, name))
                        .and_then(|path| process_event::resolved_here(&path));
                }
                // A kernel that names no program (its `linux_binprm` not known): the
                // execve's path names it (`observe_call`). One that names a program this
                // could not resolve leaves NULL, never the script's path.
                if u.exe.is_none() && program.is_empty() {
                    self.unnamed.insert(ev.pid);
                } else {
                    self.unnamed.remove(&ev.pid);
                }
                row.cmdline = u.cmdline.clone();
                if u.cgroup.is_some() {
                    row.cgroup = u.cgroup.clone();
                }
            }
            PROCESS_EXIT => {
                self.unnamed.remove(&ev.pid);
                let mut row = self.live.remove(&ev.pid).unwrap_or(ProcessRow {
                    pid: ev.pid,
                    comm: Some(comm_str(&ev.comm).into_owned()),
                    ..Default::default()
                });
                row.exit_ns = Some(ts);
                if let Some(status) = u.wait_status {
                    // The wait(2) status: a code in bits 8-15, or a signal in bits 0-6.
                    match status & 0x7f {
                        0 => row.exit_code = Some((status >> 8) & 0xff),
                        sig => {
                            row.exit_signal = Some(sig);
                            row.exit_code = None;
                        }
                    }
                }
                self.exited.push(row);
            }
            _ => {}
        }
    }

    /// Learns from calls what the events cannot say.
    pub fn observe_call(&mut self, call: &Call) {
        let e = &call.event;
        if e.flags & FLAG_NO_RETURN != 0 && e.nr == Sysno::exit_group.id() as u32 {
            if let Some(row) = self.live.get_mut(&e.pid) {
                row.exit_code = Some((e.args[0] & 0xff) as i32);
            }
        } else if (e.nr == Sysno::execve.id() as u32 || e.nr == Sysno::execveat.id() as u32)
            && e.ret == 0
            && let (Some(row), Some(Extra::Path { path, .. })) =
                (self.live.get_mut(&e.pid), call.extra())
            // Neither /proc nor the kernel could tell: the file it asked for, resolved as
            // /proc would have.
            && self.unnamed.remove(&e.pid)
            && row.exe.is_none()
            && crate::follow::process_event::resolvable_here(path)
        {
            row.exe = process_event::resolved_here(path);
        }
    }

    /// A process whose status `record` learned by reaping it (the command it ran): taken
    /// where the row has none, its exit event lost. A row that has one keeps it: the
    /// kernel's word on an exit comes from the exit itself.
    pub fn reaped(&mut self, pid: u32, status: ExitStatus) {
        if let Some(row) = self.live.get_mut(&pid)
            && row.exit_code.is_none()
            && row.exit_signal.is_none()
        {
            match status {
                ExitStatus::Code(code) => row.exit_code = Some(code),
                ExitStatus::Signal(signal) => row.exit_signal = Some(signal),
            }
        }
    }

    pub fn take_exited(&mut self) -> Vec<ProcessRow> {
        std::mem::take(&mut self.exited)
    }

    /// Everything, exited or not: the capture is stopping.
    pub fn take_all(&mut self) -> Vec<ProcessRow> {
        let mut rows = self.take_exited();
        let mut live: Vec<ProcessRow> = self.live.drain().map(|(_, r)| r).collect();
        live.sort_by_key(|r| r.pid);
        rows.extend(live);
        rows
    }
}

const CLONE_PARENT: u64 = 0x8000;

pub fn batch(rows: &[ProcessRow]) -> Result<RecordBatch, ArrowError> {
    let n = rows.len();
    let mut pid = Int32Builder::with_capacity(n);
    let mut ppid = Int32Builder::with_capacity(n);
    let mut comm = StringBuilder::new();
    let mut exe = StringBuilder::new();
    let mut cmdline = StringBuilder::new();
    let mut uid = Int64Builder::with_capacity(n);
    let mut cgroup = StringBuilder::new();
    let mut container = StringBuilder::new();
    let mut start = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut exit = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut code = Int32Builder::with_capacity(n);
    let mut signal = Int32Builder::with_capacity(n);
    for r in rows {
        pid.append_value(r.pid as i32);
        ppid.append_option(r.ppid.map(|p| p as i32));
        comm.append_option(r.comm.as_deref());
        exe.append_option(r.exe.as_deref());
        cmdline.append_option(r.cmdline.as_deref());
        uid.append_option(r.uid.map(i64::from));
        cgroup.append_option(r.cgroup.as_deref());
        container.append_option(r.cgroup.as_deref().and_then(process_event::container_id));
        start.append_option(r.start_ns.map(ts_value));
        exit.append_option(r.exit_ns.map(ts_value));
        code.append_option(r.exit_code);
        signal.append_option(r.exit_signal);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(pid.finish()),
        Arc::new(ppid.finish()),
        Arc::new(comm.finish()),
        Arc::new(exe.finish()),
        Arc::new(cmdline.finish()),
        Arc::new(uid.finish()),
        Arc::new(cgroup.finish()),
        Arc::new(container.finish()),
        Arc::new(start.finish()),
        Arc::new(exit.finish()),
        Arc::new(code.finish()),
        Arc::new(signal.finish()),
    ];
    RecordBatch::try_new(processes::schema(), columns)
}

#[cfg(test)]
mod tests {
    use tracepost_common::ProcessEvent;

    use super::*;

    fn update(kind: u32, pid: u32, child: u32) -> ProcessUpdate {
        ProcessUpdate {
            event: ProcessEvent {
                kind,
                pid,
                tid: pid,
                child_tid: child,
                comm: *b"sh\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
                ts_ns: 100,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn lineage_exec_and_exit_make_one_row() {
        let mut t = ProcessTable::new(WallClock::with_offset(1000));
        t.add(ProcessRow {
            pid: 10,
            exe: Some("/bin/sh".into()),
            ..Default::default()
        });
        t.on_update(&update(PROCESS_NEW, 10, 11), |_, _| None);
        let mut exec = update(PROCESS_EXEC, 11, 0);
        exec.event.comm = *b"cat\0\0\0\0\0\0\0\0\0\0\0\0\0";
        t.on_update(&exec, |_, _| None);
        let mut exit = update(PROCESS_EXIT, 11, 0);
        exit.wait_status = Some(9); // SIGKILL
        t.on_update(&exit, |_, _| None);
        let rows = t.take_exited();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.pid, r.ppid), (11, Some(10)));
        assert_eq!(r.comm.as_deref(), Some("cat"));
        assert_eq!(r.exe, None, "not the parent's program after exec");
        assert_eq!((r.exit_code, r.exit_signal), (None, Some(9)));
        assert_eq!((r.start_ns, r.exit_ns), (Some(1100), Some(1100)));
        let rest = t.take_all();
        assert_eq!(rest.iter().map(|r| r.pid).collect::<Vec<_>>(), vec![10]);
        assert_eq!(batch(&rest).unwrap().num_rows(), 1);
    }

    /// The command record ran and reaped: its status fills a row whose exit event was
    /// lost, and never replaces one the kernel gave.
    #[test]
    fn a_reaped_command_gives_its_status_to_a_row_that_has_none() {
        let mut t = ProcessTable::new(WallClock::with_offset(1000));
        t.add(ProcessRow {
            pid: 20,
            ..Default::default()
        });
        t.on_update(&update(PROCESS_NEW, 20, 21), |_, _| None);
        let mut exit = update(PROCESS_EXIT, 21, 0);
        exit.wait_status = Some(3 << 8);
        t.on_update(&exit, |_, _| None);
        t.reaped(21, ExitStatus::Code(7));
        t.reaped(20, ExitStatus::Signal(15));
        let rows = t.take_all();
        let of = |pid| rows.iter().find(|r| r.pid == pid).unwrap();
        assert_eq!((of(21).exit_code, of(21).exit_signal), (Some(3), None));
        assert_eq!((of(20).exit_code, of(20).exit_signal), (None, Some(15)));
    }
}
