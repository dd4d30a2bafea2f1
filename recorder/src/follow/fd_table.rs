//! What each fd refers to, followed through the capture: a /proc snapshot at attach, then
//! every call that creates, copies or closes fds, and the process events that copy or
//! share fd tables.
//!
//! Calls are observed in the order they returned in (the drain merges the CPUs), so an
//! fd's meaning is what it was when the call using it returned. Anything not known for
//! certain is forgotten rather than guessed: an unknown fd reads as NULL, never as a
//! confident wrong answer.
use std::{cell::Cell, collections::HashSet, fs, sync::Arc};

use slab::Slab;

/// Looked up several times per call, so SipHash showed in the writer's profile (about 3%
/// on nginx). Still seeded per process: a traced program picks its own fd numbers, and
/// must not be able to make every lookup collide.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

use tracepost_common::{
    FLAG_FD_STATE_LOST, FLAG_NOT_RUN, PROCESS_EXIT, PROCESS_NEW, PROCESS_THREAD_APART,
};

use crate::{
    follow::fd_effect::{
        AT_FDCWD, Access, CLONE_FILES, CLONE_FS, FdEffect, Gone, O_CLOEXEC, proven_closed,
    },
    follow::held_names::HeldNames,
    follow::place::{Place, ProcName, proc_name},
    follow::process_event::ProcessUpdate,
    kernel::call::Call,
};

#[derive(Clone, Debug)]
struct Entry {
    path: Arc<str>,
    /// How many of `path`'s last components are known not to be symlinks ([`Place`]).
    real: u16,
    /// `None` when the flags are not known: the entry is then dropped at execve.
    cloexec: Option<bool>,
    access: Access,
    /// When the call that set it returned (0 for what /proc showed): a fork whose clone
    /// began before then may or may not have it in the child's copy.
    since: u64,
    /// When the call that gave it `path` returned. A call that entered before then (a read
    /// blocked while another thread closed its fd and opened another file on the number)
    /// used what the number meant at its entry, which the table no longer holds.
    named: u64,
}

/// A process's working directory, and when the call that gave it returned (0 for what
/// /proc showed). A relative name in a call that entered before then was looked up from
/// the cwd before, which the table no longer holds: a sibling thread's chdir named the
/// file after the new directory (helper-96).
#[derive(Clone, Debug)]
struct Cwd {
    place: Place,
    named: u64,
}

/// A process's fds, shared with the children forked from it until one side changes them.
/// The kernel copies the table at a fork, but the recorder need not copy its own: a
/// process of 19,000 fds that forked 400 sleeping children took 562 MB of `record`'s
/// memory, 1.35 MB a child (helper-65). Each change goes through a method here, which
/// copies a shared map only when it would really change.
#[derive(Clone, Debug, Default)]
struct Fds(Arc<Map>);

/// Entries a copy may bring the copies held to, at most: about 70 bytes each, so some
/// 18 MiB. Children that each change a big inherited table would otherwise each hold a
/// copy of it (helper-67: 564 MB for 400 children of 19,000 fds), and under `-a` any
/// user's program can do that. A shell's or a server's children copy tables of tens of
/// fds, thousands of times below this.
const MAX_COPIED_ENTRIES: usize = 1 << 18;

thread_local! {
    /// Entries in the copies made by [`Fds::edit`] and still held. Per thread because the
    /// writer thread alone owns the tables; counted as the copies are made and dropped.
    static COPIED: Cell<usize> = const { Cell::new(0) };
    /// Tables whose inherited names were let go rather than copied past
    /// [`MAX_COPIED_ENTRIES`].
    static LET_GO: Cell<u64> = const { Cell::new(0) };
}

/// The number of fd tables, on this thread, whose inherited names were let go rather than
/// copied: their fds read as unknown (`fd_path` NULL) until calls name them again.
pub fn tables_let_go() -> u64 {
    LET_GO.with(Cell::get)
}

/// A map, and the entries it was charged to [`COPIED`] for when it was copied.
#[derive(Debug, Default)]
struct Map {
    fds: HashMap<i32, Entry>,
    charged: usize,
}

impl Clone for Map {
    fn clone(&self) -> Self {
        let charged = self.fds.len();
        COPIED.with(|c| c.set(c.get() + charged));
        Map {
            fds: self.fds.clone(),
            charged,
        }
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        if self.charged > 0 {
            // `try_with`: a table may outlive the thread-local at the thread's end.
            let _ = COPIED.try_with(|c| c.set(c.get().saturating_sub(self.charged)));
        }
    }
}

impl std::ops::Deref for Fds {
    type Target = HashMap<i32, Entry>;

    fn deref(&self) -> &Self::Target {
        &self.0.fds
    }
}

impl Fds {
    /// The map to change, made this table's own first. A copy that would pass
    /// [`MAX_COPIED_ENTRIES`] is not made: the table starts empty instead, so its fds
    /// read as unknown, never as a name that may have changed, and [`tables_let_go`]
    /// counts it.
    fn edit(&mut self) -> &mut HashMap<i32, Entry> {
        if self.shared() && !self.0.fds.is_empty() {
            let held = COPIED.with(Cell::get);
            if held.saturating_add(self.0.fds.len()) > MAX_COPIED_ENTRIES {
                self.0 = Arc::default();
                LET_GO.with(|n| n.set(n.get() + 1));
            }
        }
        &mut Arc::make_mut(&mut self.0).fds
    }

    fn insert(&mut self, fd: i32, entry: Entry) {
        self.edit().insert(fd, entry);
    }

    /// Whether a change must first look whether it changes anything: only a shared map,
    /// which a change copies. A map of this table's own is changed with one lookup, as
    /// every close and dup2 on the hot path is.
    fn shared(&mut self) -> bool {
        Arc::get_mut(&mut self.0).is_none()
    }

    fn remove(&mut self, fd: &i32) {
        if !self.shared() || self.0.fds.contains_key(fd) {
            self.edit().remove(fd);
        }
    }

    fn get_mut(&mut self, fd: &i32) -> Option<&mut Entry> {
        if self.shared() && !self.0.fds.contains_key(fd) {
            return None;
        }
        self.edit().get_mut(fd)
    }

    fn clear(&mut self) {
        if !self.0.fds.is_empty() {
            self.0 = Arc::default();
        }
    }

    fn retain(&mut self, keep: impl Fn(&i32, &Entry) -> bool) {
        if !self.shared() || self.0.fds.iter().any(|(fd, e)| !keep(fd, e)) {
            self.edit().retain(|fd, e| keep(fd, e));
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Table {
    fds: Fds,
    /// Processes sharing this table (CLONE_FILES).
    users: usize,
    /// A thread of the process took a table of its own (`unshare(CLONE_FILES)`): its
    /// threads' fds no longer mean one thing, and calls are keyed by process, so none is
    /// named until an exec leaves one thread.
    split: bool,
    /// The process holds an io_uring, whose operations open and close fds without
    /// syscalls: none is named until an exec leaves it no ring fd.
    ring: bool,
    /// Children copied from this table lately, and when they were made, in that order: a
    /// change to it by a call that entered before then, seen only after the child, may be
    /// in their copy.
    forks: Vec<(u32, u64)>,
}

impl Table {
    /// What a process that stops sharing this table (fork without `CLONE_FILES`,
    /// `unshare`) starts its own with: the fds, and the ring among them.
    fn copied(&self) -> (Fds, bool) {
        (self.fds.clone(), self.ring)
    }

    fn take(&mut self, (fds, ring): (Fds, bool)) {
        self.fds = fds;
        self.ring = ring;
    }

    /// Notes a child copied from this table at `at`, in time order.
    fn forked(&mut self, child: u32, at: u64) {
        self.forget_forks_before(at);
        let i = self.forks.partition_point(|&(_, t)| t <= at);
        self.forks.insert(i, (child, at));
    }

    /// Forgets the children made long enough before `now` that no call of theirs can
    /// still be late.
    fn forget_forks_before(&mut self, now: u64) {
        let old = self
            .forks
            .partition_point(|&(_, at)| at.saturating_add(LATE_AFTER_FORK_NS) <= now);
        self.forks.drain(..old);
    }

    /// The children made at or after `entered`: a call that entered then may have changed
    /// what they copied.
    fn forked_since(&self, entered: u64) -> impl Iterator<Item = u32> + '_ {
        let from = self.forks.partition_point(|&(_, at)| at < entered);
        self.forks[from..].iter().map(|&(child, _)| child)
    }
}

/// How long after a fork a call that returned before it can still be seen: records reach
/// the writer within a drain of each CPU's area, some tens of milliseconds.
const LATE_AFTER_FORK_NS: u64 = 1_000_000_000;

/// The fds a call's effect changes, for the children copied from its table while it ran.
enum Touched {
    None,
    Fds([i32; 2], usize),
    All,
}

impl Touched {
    fn of(effect: &FdEffect<'_>) -> Self {
        let one = |fd: i32| Touched::Fds([fd, fd], 1);
        match *effect {
            FdEffect::Open { fd, .. }
            | FdEffect::New { fd, .. }
            | FdEffect::Rename { fd, .. }
            | FdEffect::SetCloexec { fd, .. }
            | FdEffect::Close { fd } => one(fd),
            FdEffect::Copy { to, .. } => one(to),
            FdEffect::Pair {
                fds: Some((r, w)), ..
            } => Touched::Fds([r, w], 2),
            FdEffect::Chdir { .. } | FdEffect::Fchdir { .. } | FdEffect::NameGone { .. } => {
                Touched::None
            }
            _ => Touched::All,
        }
    }
}

/// One process's fds and working directory, as read from /proc.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub pid: u32,
    /// Each fd, what it names, and its open flags from `fdinfo` (`None` where /proc did not
    /// say): whether it closes at exec, and what it was opened for.
    pub fds: Vec<(i32, String, Option<u64>)>,
    pub cwd: Option<String>,
    /// It holds an io_uring: one of its fds, or a mapping (a ring registered with the
    /// kernel, `IORING_REGISTER_RING_FDS`, works with its fd closed).
    pub ring: bool,
    /// Whether a thread of it has an fd table (first) or a working directory (second) of
    /// its own, or shares it with a process not traced, from before the recorder attached:
    /// then its fds, or its relative names, name nothing, as after a split the recorder
    /// saw. Filled, with `shared_with`, by [`crate::follow::sharing::snapshots`].
    pub apart: (bool, bool),
    /// The process given before it that shares its fd table (first) or working directory
    /// (second), from before the recorder attached.
    pub shared_with: (Option<u32>, Option<u32>),
}

/// How `fd_path` names a FIFO (a named pipe): its path after `fifo:`. A read of it waits
/// for a writer, as a pipe's does, and the queries tell a file from a peer by its name
/// (`is_waiting`, `file-io`'s paths): a FIFO named as a file had its blocked reads counted
/// as work.
pub fn fifo_name(path: &str) -> Arc<str> {
    format!("{FIFO_PREFIX}{path}").into()
}

const FIFO_PREFIX: &str = "fifo:";

/// The name a rename or unlink is compared with: a FIFO's path without its `fifo:`. With
/// it, a FIFO renamed, unlinked or moved with its directory kept its old name (helper-98).
fn tracked(path: &str) -> &str {
    path.strip_prefix(FIFO_PREFIX).unwrap_or(path)
}

/// Whether the file behind `link` (`/proc/PID/fd/N`) is a FIFO, asked without reaching
/// the file system's server: `AT_STATX_DONT_SYNC` answers from the inode the kernel holds.
/// A plain stat of a file on a stuck FUSE or NFS mount waited without end, and held
/// `record` at its start past `-d` and SIGINT (helper-98).
fn is_fifo(link: &std::path::Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(name) = std::ffi::CString::new(link.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: all zeros is a valid `statx`, which the call fills.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: a NUL-terminated name and a buffer of the right type, both live for the call.
    let done = unsafe {
        libc::statx(
            libc::AT_FDCWD,
            name.as_ptr(),
            libc::AT_STATX_DONT_SYNC,
            libc::STATX_TYPE,
            &mut stx,
        )
    };
    done == 0 && u32::from(stx.stx_mode) & libc::S_IFMT == libc::S_IFIFO
}

/// Reads `/proc/PID/fd` and `/proc/PID/cwd`. A process that is gone yields what was read.
/// What it shares with other processes, /proc does not say ([`crate::follow::sharing`]).
pub fn snapshot(pid: u32) -> Snapshot {
    let mut fds = Vec::new();
    if let Ok(entries) = fs::read_dir(format!("/proc/{pid}/fd")) {
        for entry in entries.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<i32>().ok())
            else {
                continue;
            };
            let Ok(target) = fs::read_link(entry.path()) else {
                continue;
            };
            let flags = fs::read_to_string(format!("/proc/{pid}/fdinfo/{fd}"))
                .ok()
                .and_then(|info| {
                    info.lines()
                        .find_map(|l| l.strip_prefix("flags:"))
                        .and_then(|f| u64::from_str_radix(f.trim(), 8).ok())
                });
            // Not UTF-8: a lossy stand-in could be another file's name.
            let Some(target) = target.to_str() else {
                continue;
            };
            // Asked of the inode, not by opening it: a FIFO's open would wait for its other
            // end.
            let fifo = target.starts_with('/') && is_fifo(&entry.path());
            fds.push((
                fd,
                match fifo {
                    true => format!("{FIFO_PREFIX}{target}"),
                    false => target.to_string(),
                },
                flags,
            ));
        }
    }
    let cwd = fs::read_link(format!("/proc/{pid}/cwd"))
        .ok()
        .and_then(|p| p.to_str().map(str::to_string));
    // The maps only where the fds show no ring, line by line: a big process's maps run
    // to megabytes.
    let ring = fds.iter().any(|(_, path, _)| path == IO_URING)
        || fs::File::open(format!("/proc/{pid}/maps")).is_ok_and(|f| {
            use std::io::BufRead;
            std::io::BufReader::new(f)
                .lines()
                .map_while(Result::ok)
                .any(|l| l.ends_with(IO_URING))
        });
    Snapshot {
        pid,
        fds,
        cwd,
        ring,
        apart: (false, false),
        shared_with: (None, None),
    }
}

/// Whether an fd named `name` is a mount namespace (`Some(true)`) or another kind
/// (`Some(false)`), as /proc names them (`mnt:[4026531841]`) or as they were opened from
/// /proc (`/proc/PID/ns/mnt`, `/proc/self/task/TID/ns/net`). A name elsewhere says
/// nothing: `/run/netns/x` is a bind mount of one, and so may be any `.../ns/net`
/// (helper-82 bound a mount namespace there).
fn mount_namespace(name: &str) -> Option<bool> {
    const KINDS: [&str; 8] = ["mnt", "net", "uts", "ipc", "pid", "user", "cgroup", "time"];
    let kind = match name.strip_suffix(']') {
        Some(inode) => inode.split_once(":[")?.0,
        None => {
            let parts: Vec<&str> = name.strip_prefix("/proc/")?.split('/').collect();
            let process = |p: &str| {
                matches!(p, "self" | "thread-self")
                    || (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            };
            let thread = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
            match parts[..] {
                [p, "ns", kind] if process(p) => kind,
                [p, "task", t, "ns", kind] if process(p) && thread(t) => kind,
                _ => return None,
            }
        }
    };
    let kind = kind.strip_suffix("_for_children").unwrap_or(kind);
    KINDS.contains(&kind).then_some(kind == "mnt")
}

/// Where a process's table is in [`FdTracker::tables`].
type Slot = usize;

#[derive(Default)]
pub struct FdTracker {
    /// Which table a process uses.
    owner: HashMap<u32, Slot>,
    /// The tables, by slot. A slab rather than a map: a call's fd is then found with two
    /// lookups, not three.
    tables: Slab<Table>,
    /// The process whose table was found last, and its slot: calls come in runs of one
    /// process (a CPU's run at a time), so most lookups of `owner` are skipped. Cleared
    /// whenever `owner` changes.
    last: Cell<Option<(u32, Slot)>>,
    cwd: HashMap<u32, Cwd>,
    /// Processes a thread of which took a working directory of its own
    /// (`unshare(CLONE_FS)`): their cwd is unknown until an exec leaves one thread and a
    /// chdir names it.
    split_cwd: HashSet<u32>,
    /// Processes made with `CLONE_FS` and their makers: one's chdir moves the other's cwd,
    /// and an exec does not part them. Their cwd is unknown until they exit.
    shared_fs: HashSet<u32>,
    /// Processes that called chroot: the new root, or `None` where it is not known. Their
    /// absolute paths are below it.
    roots: HashMap<u32, Option<Place>>,
    /// Every name an fd or cwd holds, and the names above them: a rename or unlink of
    /// any other name leaves the table as it is, without a scan.
    held: HeldNames,
    /// When the call being applied returned.
    now: u64,
    /// When it entered: a `dup2` or `close` changes the table there, then may block in the
    /// old file's flush (FUSE, NFS) for as long as the file system takes.
    entered: u64,
}

/// `path` with `.` and `..` taken off by their spelling: a copy only where it has any.
fn lexical(path: &str) -> std::borrow::Cow<'_, str> {
    if !path.starts_with('/') || !path.split('/').any(|c| c == "." || c == "..") {
        return std::borrow::Cow::Borrowed(path);
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    std::borrow::Cow::Owned(format!("/{}", parts.join("/")))
}

/// Notes `name` as held, and its lexical spelling too where that differs: `forget_name`
/// compares a name with `..` in it by that.
fn hold_spellings(held: &mut HeldNames, name: &str) {
    held.hold(name);
    if name.contains("/.")
        && let std::borrow::Cow::Owned(plain) = lexical(name)
    {
        held.hold(&plain);
    }
}

/// What /proc shows for an io_uring's fd.
const IO_URING: &str = "anon_inode:[io_uring]";

/// Whether an absolute path has a spelling that names what a shorter one does: `//`, a
/// `.` component, or a trailing `/`.
fn untidy(path: &str) -> bool {
    path.contains("//")
        || path.contains("/./")
        || path.ends_with("/.")
        || (path.len() > 1 && path.ends_with('/'))
}

/// Whether `pid` has one thread now; false where /proc cannot say.
fn single_threaded(pid: u32) -> bool {
    fs::read_dir(format!("/proc/{pid}/task")).is_ok_and(|d| d.count() == 1)
}

impl FdTracker {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn apply_snapshot(&mut self, snap: &Snapshot) {
        let table = self.table_mut(snap.pid);
        table.fds.clear();
        // A ring set up before recording began.
        table.ring = snap.ring;
        let mut names = Vec::with_capacity(snap.fds.len() + 1);
        for (fd, path, flags) in &snap.fds {
            table.fds.insert(*fd, {
                let Place { path, real } = Place::resolved(path.as_str().into());
                names.push(path.clone());
                Entry {
                    path,
                    real,
                    cloexec: flags.map(|f| f & O_CLOEXEC != 0),
                    // An inherited stdin opened read-only: a write's EBADF keeps its name.
                    access: flags.map_or(Access::Unknown, Access::of_flags),
                    since: 0,
                    named: 0,
                }
            });
        }
        match &snap.cwd {
            Some(cwd) => {
                let place = Place::resolved(cwd.as_str().into());
                names.push(place.path.clone());
                self.cwd.insert(snap.pid, Cwd { place, named: 0 });
            }
            None => {
                self.cwd.remove(&snap.pid);
            }
        }
        for name in &names {
            self.hold(name);
        }
        let (files_with, fs_with) = snap.shared_with;
        let first_other = |first: Option<u32>| first.filter(|&p| p != snap.pid);
        if let Some(slot) = first_other(files_with).and_then(|first| self.slot(first)) {
            self.release(snap.pid);
            self.own(snap.pid, slot);
        }
        // As after a clone with `CLONE_FS`: either's chdir moves both.
        if let Some(first) = first_other(fs_with) {
            for pid in [first, snap.pid] {
                self.cwd.remove(&pid);
                self.shared_fs.insert(pid);
            }
        }
        // After the sharing: a thread with a table of its own leaves the table it left
        // unnamed for every process that shares it. Split before, the process kept a
        // table of its own, and its main thread's dup2 was lost to the others (helper-83).
        let (files, fs) = snap.apart;
        if files || fs {
            self.split(snap.pid, files, fs);
        }
    }

    /// Notes a name that an fd or cwd now holds: every way a name enters the table passes
    /// here, or a rename of it would leave the old name standing.
    fn hold(&mut self, name: &str) {
        hold_spellings(&mut self.held, tracked(name));
        if self.held.full() {
            self.held.clear();
            let fds = self.tables.iter().flat_map(|(_, t)| t.fds.values());
            let names = fds
                .map(|e| &e.path)
                .chain(self.cwd.values().map(|c| &c.place.path));
            for name in names {
                hold_spellings(&mut self.held, tracked(name));
            }
            self.held.rebuilt();
        }
    }

    /// The slot of `pid`'s table, if it has one. Every call with an fd asks, mostly for the
    /// process asked for just before, so that answer is kept.
    #[inline]
    fn slot(&self, pid: u32) -> Option<Slot> {
        if let Some((last, slot)) = self.last.get()
            && last == pid
        {
            return Some(slot);
        }
        let slot = *self.owner.get(&pid)?;
        self.last.set(Some((pid, slot)));
        Some(slot)
    }

    /// Makes `pid` use the table in `slot`. The one place `owner` gains a process, so that
    /// the kept answer of `slot` can never outlive what it says.
    fn own(&mut self, pid: u32, slot: Slot) {
        self.last.set(None);
        self.owner.insert(pid, slot);
        self.tables[slot].users += 1;
    }

    /// The table of `pid`, created empty (nothing known) if it has none.
    fn table_mut(&mut self, pid: u32) -> &mut Table {
        let slot = match self.slot(pid) {
            Some(slot) => slot,
            None => {
                let slot = self.tables.insert(Table::default());
                self.own(pid, slot);
                slot
            }
        };
        &mut self.tables[slot]
    }

    /// What `fd` meant at `at` (the entry of the call being applied), where the table
    /// still holds it: an entry named since (another thread's open, dup2 or close returned
    /// while the call ran) says nothing of what the call used.
    fn fd_at(&self, pid: u32, fd: i32, at: u64) -> Option<&Entry> {
        self.get(pid, fd).filter(|entry| entry.named <= at)
    }

    /// The cwd at `at`, as [`Self::fd_at`] for an fd.
    fn cwd_at(&self, pid: u32, at: u64) -> Option<&Place> {
        self.cwd
            .get(&pid)
            .filter(|cwd| cwd.named <= at)
            .map(|cwd| &cwd.place)
    }

    /// A call's chdir, fchdir or setns gave `pid` this cwd.
    fn set_cwd(&mut self, pid: u32, place: Place) {
        let named = self.now;
        self.cwd.insert(pid, Cwd { place, named });
    }

    fn get(&self, pid: u32, fd: i32) -> Option<&Entry> {
        let table = &self.tables[self.slot(pid)?];
        match table.split || table.ring {
            true => None,
            false => table.fds.get(&fd),
        }
    }

    fn release(&mut self, pid: u32) {
        self.last.set(None);
        if let Some(slot) = self.owner.remove(&pid) {
            let table = &mut self.tables[slot];
            table.users -= 1;
            if table.users == 0 {
                self.tables.remove(slot);
            }
        }
    }

    /// Gives `pid` a private copy of the table it shares (execve, CLOSE_RANGE_UNSHARE).
    fn unshare(&mut self, pid: u32) {
        let Some(slot) = self.slot(pid) else {
            return;
        };
        let table = &self.tables[slot];
        if table.users > 1 {
            let copy = table.copied();
            self.release(pid);
            self.table_mut(pid).take(copy);
        }
    }

    /// A call on `pid`'s table that entered before a child was copied from it, seen only
    /// after the child: the child's copy may hold its change or not (a `dup2` that blocked
    /// in a flush changed the table before the clone and returned after it), so the fds it
    /// touched are not named in the child.
    fn late_for_children(&mut self, pid: u32, touched: &Touched) {
        let Some(slot) = self.slot(pid) else { return };
        if self.tables[slot].forks.is_empty() || matches!(touched, Touched::None) {
            return;
        }
        let table = &mut self.tables[slot];
        table.forget_forks_before(self.now);
        let children: Vec<u32> = table.forked_since(self.entered).collect();
        for child in children {
            let Some(c) = self.slot(child) else { continue };
            if c == slot {
                continue;
            }
            let fds = &mut self.tables[c].fds;
            match touched {
                Touched::Fds(list, n) => list[..*n].iter().for_each(|fd| fds.remove(fd)),
                _ => fds.clear(),
            }
        }
    }

    fn insert(
        &mut self,
        pid: u32,
        fd: i32,
        place: Option<Place>,
        cloexec: Option<bool>,
        access: Access,
    ) {
        if self.table_mut(pid).split {
            return;
        }
        match place {
            Some(Place { path, real }) => {
                self.hold(&path);
                let entry = Entry {
                    path,
                    real,
                    cloexec,
                    access,
                    since: self.now,
                    named: self.now,
                };
                self.table_mut(pid).fds.insert(fd, entry);
            }
            // A new fd whose meaning is unknown: whatever the number meant before is gone.
            None => {
                self.table_mut(pid).fds.remove(&fd);
            }
        }
    }

    /// Where a path argument points: absolute as given (below the root after a chroot),
    /// relative to the cwd or to a directory fd when those are known. `nofollow`: the call
    /// did not follow a symlink in the last component ([`Place::join`]).
    fn resolve(&self, pid: u32, dirfd: i32, path: &Arc<str>, nofollow: bool) -> Option<Place> {
        self.resolve_at(pid, dirfd, path, nofollow, self.entered)
    }

    /// [`Self::resolve`] with the cwd and fds as they were at `at`.
    fn resolve_at(
        &self,
        pid: u32,
        dirfd: i32,
        path: &Arc<str>,
        nofollow: bool,
        at: u64,
    ) -> Option<Place> {
        // Not UTF-8: the text is a lossy stand-in that another file's name can equal.
        if path.contains(char::REPLACEMENT_CHARACTER) {
            return None;
        }
        let place = if path.starts_with('/') {
            match self.roots.get(&pid) {
                // One spelling per name (`//a/./b/` is `/a/b`): names are compared as text,
                // by a rename or unlink and by `/proc/self/...`.
                None if untidy(path) => {
                    Place::given("/".into()).join(path.trim_start_matches('/'), nofollow)
                }
                // The decoded path itself: no copy, and the columns key it by address.
                None => Place {
                    path: path.clone(),
                    real: u16::from(nofollow && !path.ends_with('/') && !path.contains("/.")),
                },
                // `..` at the root stays there, which no string join can say; and whether
                // the new root has a /proc or /dev, and whose, is not known.
                Some(Some(root))
                    if !path.split('/').any(|c| c == "..")
                        && !["proc", "dev"].contains(
                            &path
                                .split('/')
                                .find(|c| !c.is_empty() && *c != ".")
                                .unwrap_or(""),
                        ) =>
                {
                    root.join(path.trim_start_matches('/'), nofollow)
                }
                Some(_) => return None,
            }
        } else {
            let base = if dirfd == AT_FDCWD {
                self.cwd_at(pid, at)?.clone()
            } else {
                let dir = self.fd_at(pid, dirfd, at)?;
                if !dir.path.starts_with('/') {
                    return None;
                }
                Place {
                    path: dir.path.clone(),
                    real: dir.real,
                }
            };
            base.join(path, nofollow)
        };
        self.in_process(pid, place, at)
    }

    /// What a name a process gave meant to it, as an absolute path: a relative one from
    /// its cwd, an absolute one below its root, as the kernel resolves an exec's program
    /// (`./prog`, a `#!sh` line's interpreter). None where those are not known.
    pub fn place_of(&self, pid: u32, name: &str) -> Option<Arc<str>> {
        // As the table stands: an exec's program is named once the exec is over.
        let place = self.resolve_at(pid, AT_FDCWD, &Arc::from(name), false, u64::MAX)?;
        place.path.starts_with('/').then_some(place.path)
    }

    /// A place as the process that named it means it: `/proc/self/...` and `/dev/fd/N`
    /// resolve in whoever reads them, so they are turned into what they name, or unknown.
    fn in_process(&self, pid: u32, place: Place, at: u64) -> Option<Place> {
        if !place.path.starts_with("/proc/") && !place.path.starts_with("/dev/") {
            return Some(place);
        }
        match proc_name(pid, &place.path) {
            ProcName::Plain => Some(place),
            ProcName::Fd(fd) => self.fd_at(pid, fd, at).map(|e| Place {
                path: e.path.clone(),
                real: e.real,
            }),
            ProcName::Cwd => self.cwd_at(pid, at).cloned(),
            // The magic link is followed, so nothing after it is known not to be a symlink.
            ProcName::BelowFd(fd, rest) => self
                .fd_at(pid, fd, at)
                .filter(|e| e.path.starts_with('/'))
                .map(|e| {
                    Place {
                        path: e.path.clone(),
                        real: e.real,
                    }
                    .join(&rest, false)
                }),
            ProcName::BelowCwd(rest) => self.cwd_at(pid, at).map(|c| c.join(&rest, false)),
            ProcName::Own(path) => Some(Place::given(path.into())),
            ProcName::Unknown => None,
        }
    }

    /// A name that no longer names what it did, forgotten as far as the call says which:
    /// a name whose directory is not known by every name that ends like it, one cut short
    /// by every name it begins, and one not read by every name. A name left that another
    /// file now holds would be confidently wrong; a name forgotten is only unknown.
    fn name_gone(&mut self, pid: u32, dirfd: i32, name: Gone<'_>) {
        match name {
            Gone::Whole(path) => match self.resolve(pid, dirfd, path, false) {
                Some(place) => self.forget_name(&place.path),
                // Below a root or a `/proc` link not known: it could be any name.
                None if path.starts_with('/') => self.forget_where(|_| true),
                None => self.forget_ending(path),
            },
            // A cut name's last part is no part: `..` may be the start of `..x`.
            // (The decoder cut it back to whole characters.)
            Gone::Cut(path) if !path.contains("/.") && !path.starts_with('.') => {
                match self.resolve(pid, dirfd, path, false) {
                    Some(place) => {
                        let prefix = place.path;
                        self.forget_where(|p| {
                            p.starts_with(&*prefix)
                                || (p.contains("/..") && lexical(p).starts_with(&*prefix))
                        });
                    }
                    None => self.forget_where(|_| true),
                }
            }
            Gone::Cut(_) | Gone::Unknown => self.forget_where(|_| true),
        }
    }

    /// After `rel`, relative to a directory not known, was renamed or removed: any name
    /// that ends in it, or is below such a name, may have been it.
    fn forget_ending(&mut self, rel: &str) {
        let parts: Vec<&str> = rel.split('/').filter(|c| !c.is_empty()).collect();
        if parts.is_empty()
            || parts.iter().any(|c| *c == "." || *c == "..")
            || rel.contains(char::REPLACEMENT_CHARACTER)
        {
            return self.forget_where(|_| true);
        }
        let tail = format!("/{}", parts.join("/"));
        let below = format!("{tail}/");
        self.forget_where(|p| p.ends_with(&tail) || p.contains(&below));
    }

    /// Forgets every fd's and cwd's name that `stale` picks.
    fn forget_where(&mut self, stale: impl Fn(&str) -> bool) {
        for (_, table) in self.tables.iter_mut() {
            table.fds.retain(|_, e| !stale(tracked(&e.path)));
        }
        self.cwd.retain(|_, c| !stale(&c.place.path));
    }

    /// After `old` was renamed or removed: no fd or cwd of any
    /// process is known by it, or by a name below it, any more.
    fn forget_name(&mut self, old: &str) {
        // Compared as spelled, and with `.` and `..` taken off by their spelling
        // (`d/../d/f` is `d/f`): through a symlink that can take more names than the call
        // did, which only leaves them unknown.
        let old_plain = lexical(old);
        let old_dotted = old_plain != old;
        let stale = |p: &str| {
            let below = |p: &str, old: &str| {
                p.strip_prefix(old)
                    .is_some_and(|r| r.is_empty() || r.starts_with('/'))
            };
            // Names are kept tidy, so only a `..` kept in one of the two makes their
            // spellings differ: that is checked first, as this runs for every fd of every
            // process.
            below(p, old) || ((old_dotted || p.contains("/..")) && below(&lexical(p), &old_plain))
        };
        if !self.held.may_hold(old) && !self.held.may_hold(&old_plain) {
            #[cfg(test)]
            self.forget_where(|p| {
                assert!(
                    !stale(p),
                    "{p} is held, but the filter said no name below {old} was"
                );
                false
            });
            return;
        }
        self.forget_where(stale);
    }

    /// Sets `call.fd_path` from what its fd referred to, then applies the call's effect.
    pub fn observe(&mut self, call: &mut Call, fd: Option<i32>) {
        let pid = call.event.pid;
        self.entered = call.event.enter_ns;
        self.now = call.event.enter_ns.saturating_add(call.event.duration_ns);
        if call.event.flags & FLAG_FD_STATE_LOST != 0 {
            // A call that changed fds was lost: nothing known about this process stands.
            self.table_mut(pid).fds.clear();
            self.cwd.remove(&pid);
        }
        if let Some(fd) = fd {
            call.fd_path = self
                .fd_at(pid, fd, self.entered)
                .map(|entry| entry.path.clone());
        }
        // seccomp answered for the kernel: nothing was opened, closed or proven closed.
        if call.event.flags & FLAG_NOT_RUN != 0 {
            return;
        }
        if let Some((closed, used)) = proven_closed(call) {
            let fds = &mut self.table_mut(pid).fds;
            if fds
                .get(&closed)
                .is_some_and(|entry| used.proves_closed(entry.access))
            {
                fds.remove(&closed);
                if fd == Some(closed) {
                    call.fd_path = None;
                }
            }
        }
        if let Some(effect) = FdEffect::of(call) {
            self.late_for_children(pid, &Touched::of(&effect));
            // A thread that takes its own fds or cwd while others keep the old ones: what
            // the table says is no longer true of every thread. The first thread alone
            // keeps it right (read from /proc only for these calls, which are rare).
            let split = match effect {
                FdEffect::Unshare { files, fs } => Some((files, fs)),
                FdEffect::CloseRange { unshare: true, .. } => Some((true, false)),
                _ => None,
            };
            if let Some((files, fs)) = split
                && (call.event.tid != pid || !single_threaded(pid))
            {
                self.split(pid, files, fs);
                return;
            }
            // connect and bind name their own fd: as the call returned, it is the peer's
            // (or the bound address), not what it was before.
            let renames_own = matches!(effect, FdEffect::Rename { fd: own, .. } if Some(own) == fd);
            self.apply(pid, effect);
            if renames_own && let Some(fd) = fd {
                call.fd_path = self.get(pid, fd).map(|entry| entry.path.clone());
            }
        }
    }

    fn apply(&mut self, pid: u32, effect: FdEffect<'_>) {
        match effect {
            FdEffect::Open {
                fd,
                dirfd,
                path,
                cloexec,
                access,
                nofollow,
                resolve_unknown,
                fifo,
            } => {
                let resolved = path
                    .filter(|p| {
                        !resolve_unknown || !(p.starts_with('/') || p.split('/').any(|c| c == ".."))
                    })
                    .and_then(|p| self.resolve(pid, dirfd, p, nofollow))
                    // A path is named as the FIFO it is; a name reached through
                    // `/proc/self/fd/N` or `/dev/stdin` is already what that fd is called
                    // (`fifo:PATH`, or `pipe` for a pipe, also a FIFO to the kernel).
                    .map(|place| match fifo && place.path.starts_with('/') {
                        true => Place::given(fifo_name(&place.path)),
                        false => place,
                    });
                self.insert(pid, fd, resolved, cloexec, access);
            }
            FdEffect::New { fd, name, cloexec } => {
                self.insert(pid, fd, name.map(Place::given), cloexec, Access::Unknown)
            }
            FdEffect::Rename { fd, addr } => self.rename(pid, fd, addr),
            FdEffect::Pair {
                fds: Some((r, w)),
                name,
                cloexec,
                access: (ra, wa),
            } => {
                self.insert(pid, r, Some(Place::given(name.into())), Some(cloexec), ra);
                self.insert(pid, w, Some(Place::given(name.into())), Some(cloexec), wa);
            }
            // The fds are unknown; nothing known about any number may stand.
            FdEffect::Pair { fds: None, .. } => self.table_mut(pid).fds.clear(),
            FdEffect::Copy { from, to, cloexec } => self.copy(pid, from, to, cloexec),
            FdEffect::SetCloexec { fd, cloexec } => {
                let now = self.now;
                if let Some(entry) = self.table_mut(pid).fds.get_mut(&fd) {
                    entry.cloexec = Some(cloexec);
                    // A child copied meanwhile may have either flag, and keep the fd
                    // past its exec or not.
                    entry.since = now;
                }
            }
            // The kernel frees the number as a close enters. A close seen late (it took
            // longer than the reorder window: a flush to NFS, a lingering socket) may come
            // after another thread's open took the number: that entry is the new file's,
            // and stays (helper-92: its calls were left unnamed).
            FdEffect::Close { fd } => {
                let entered = self.entered;
                let fds = &mut self.table_mut(pid).fds;
                if fds.get(&fd).is_none_or(|entry| entry.named <= entered) {
                    fds.remove(&fd);
                }
            }
            FdEffect::CloseRange {
                first,
                last,
                unshare,
                cloexec_only,
            } => {
                if unshare {
                    self.unshare(pid);
                }
                let entered = self.entered;
                let table = self.table_mut(pid);
                let in_range = |fd: &i32| *fd >= 0 && (first..=last).contains(&(*fd as u32));
                if cloexec_only {
                    for (_, entry) in table.fds.edit().iter_mut().filter(|(fd, _)| in_range(fd)) {
                        entry.cloexec = Some(true);
                    }
                } else {
                    // As for a close: what was named after the call entered stays.
                    table
                        .fds
                        .retain(|fd, entry| !in_range(fd) || entry.named > entered);
                }
            }
            FdEffect::Exec => {
                self.unshare(pid);
                // One thread is left, with its own table: which, a split table cannot say.
                let table = self.table_mut(pid);
                // A ring's fd is close-on-exec unless the program cleared it: one that may
                // be left keeps working in the new program.
                let ring_left = table
                    .fds
                    .values()
                    .any(|e| &*e.path == IO_URING && e.cloexec != Some(true));
                let kept = |e: &Entry| e.cloexec == Some(false);
                let ring_fd = |e: &Entry| &*e.path == IO_URING && e.cloexec != Some(true);
                if table.split || table.ring {
                    table.fds.retain(|_, e| ring_fd(e));
                    table.split = false;
                    table.ring = ring_left;
                }
                table.fds.retain(|_, e| kept(e) || ring_fd(e));
                self.split_cwd.remove(&pid);
            }
            FdEffect::Taken { fd } => {
                let what = fs::read_link(format!("/proc/{pid}/fd/{fd}"));
                if what.is_ok_and(|w| w.as_os_str() != IO_URING) {
                    self.insert(pid, fd, None, None, Access::Unknown);
                } else {
                    // A ring, or gone before /proc was read: it may have been one.
                    self.insert(
                        pid,
                        fd,
                        Some(Place::given(IO_URING.into())),
                        None,
                        Access::Unknown,
                    );
                    self.table_mut(pid).ring = true;
                }
            }
            FdEffect::Ring { fd } => {
                self.insert(
                    pid,
                    fd,
                    Some(Place::given(IO_URING.into())),
                    Some(true),
                    Access::Unknown,
                );
                self.table_mut(pid).ring = true;
            }
            // The first thread's own (the others', a thread's, are handled in `observe`):
            // right for a process of one thread.
            FdEffect::Unshare { files, fs: _ } => {
                if files {
                    self.unshare(pid);
                }
            }
            FdEffect::Chdir { .. } | FdEffect::Fchdir { .. }
                if self.split_cwd.contains(&pid) || self.shared_fs.contains(&pid) => {}
            FdEffect::Chdir { path } => {
                match path.and_then(|p| self.resolve(pid, AT_FDCWD, p, false)) {
                    Some(dir) => {
                        self.hold(&dir.path);
                        self.set_cwd(pid, dir);
                    }
                    None => {
                        self.cwd.remove(&pid);
                    }
                }
            }
            FdEffect::Fchdir { fd } => match self.fd_at(pid, fd, self.entered) {
                Some(dir) if dir.path.starts_with('/') => {
                    let place = Place {
                        path: dir.path.clone(),
                        real: dir.real,
                    };
                    self.set_cwd(pid, place);
                }
                _ => {
                    self.cwd.remove(&pid);
                }
            },
            FdEffect::Chroot { path } => {
                let root = path.and_then(|p| self.resolve(pid, AT_FDCWD, p, false));
                self.roots.insert(pid, root);
            }
            FdEffect::EnterMounts { fd, surely } => {
                let kind = match surely {
                    true => Some(true),
                    false => self
                        .fd_at(pid, fd, self.entered)
                        .and_then(|e| mount_namespace(&e.path)),
                };
                match kind {
                    // Another kind of namespace: neither moves.
                    Some(false) => {}
                    Some(true)
                        if !self.split_cwd.contains(&pid) && !self.shared_fs.contains(&pid) =>
                    {
                        self.roots.remove(&pid);
                        self.set_cwd(pid, Place::resolved("/".into()));
                    }
                    // A thread's own cwd (the process's is not known already), or a kind
                    // not known: the root and the cwd may be the new namespace's or the old.
                    _ => {
                        self.roots.insert(pid, None);
                        self.cwd.remove(&pid);
                    }
                }
            }
            FdEffect::NameGone {
                dirfd,
                name,
                target,
            } => {
                self.name_gone(pid, dirfd, name);
                if let Some((dirfd, target)) = target {
                    self.name_gone(pid, dirfd, target);
                }
            }
        }
    }

    fn rename(&mut self, pid: u32, fd: i32, addr: Option<Arc<str>>) {
        let now = self.now;
        let table = self.table_mut(pid);
        match (table.fds.get_mut(&fd), addr) {
            (Some(entry), Some(addr)) => {
                entry.path = addr.clone();
                entry.real = 0;
                entry.since = now;
                entry.named = now;
                self.hold(&addr);
            }
            // A socket whose address could not be read no longer means what it did.
            (Some(_), None) => {
                table.fds.remove(&fd);
            }
            _ => {}
        }
    }

    fn copy(&mut self, pid: u32, from: i32, to: i32, cloexec: bool) {
        if from == to {
            return;
        }
        // A dup copies what the number meant when the kernel took it, which the table no
        // longer holds if another thread's dup2 onto it returned meanwhile (helper-96).
        let (place, access) = match self.fd_at(pid, from, self.entered) {
            Some(e) => (
                Some(Place {
                    path: e.path.clone(),
                    real: e.real,
                }),
                e.access,
            ),
            None => (None, Access::Unknown),
        };
        self.insert(pid, to, place, Some(cloexec), access);
    }

    /// Threads of `pid` no longer share one fd table (`files`) or one working directory
    /// (`fs`): from now on its fds, or its relative names, name nothing. The table stays
    /// shared with the processes that share it (`CLONE_FILES`): the threads that did not
    /// leave it still change it under them, and a copy of their own went stale (helper-80).
    fn split(&mut self, pid: u32, files: bool, fs: bool) {
        if files {
            let table = self.table_mut(pid);
            table.fds.clear();
            table.split = true;
        }
        if fs {
            self.cwd.remove(&pid);
            self.split_cwd.insert(pid);
        }
    }

    /// A new process copies or shares its parent's table and working directory; an exited
    /// one lets go of them.
    pub fn on_process(&mut self, update: &ProcessUpdate) {
        let ev = &update.event;
        match ev.kind {
            PROCESS_NEW => {
                let child = ev.child_tid;
                self.release(child);
                if let Some(slot) = self.slot(ev.pid) {
                    if ev.clone_flags & CLONE_FILES != 0 {
                        self.own(child, slot);
                    } else {
                        // The ring's fd is copied with the others, and works in the child.
                        let (mut fds, ring) = self.tables[slot].copied();
                        // The kernel copied the table between the clone's entry and now;
                        // what a sibling thread changed in that time may or may not be in
                        // the copy, and is not named.
                        let began = match ev.clone_enter_ns {
                            0 => ev.ts_ns,
                            at => at.min(ev.ts_ns),
                        };
                        fds.retain(|_, e| e.since < began);
                        self.table_mut(child).take((fds, ring));
                        self.tables[slot].forked(child, ev.ts_ns);
                    }
                }
                if ev.clone_flags & CLONE_FS != 0 {
                    self.cwd.remove(&ev.pid);
                    self.shared_fs.insert(ev.pid);
                    self.shared_fs.insert(child);
                } else if let Some(cwd) = self.cwd.get(&ev.pid).cloned() {
                    self.cwd.insert(child, cwd);
                }
                if let Some(root) = self.roots.get(&ev.pid).cloned() {
                    self.roots.insert(child, root);
                }
            }
            PROCESS_THREAD_APART => self.split(
                ev.pid,
                ev.clone_flags & CLONE_FILES == 0,
                ev.clone_flags & CLONE_FS == 0,
            ),
            PROCESS_EXIT => {
                self.release(ev.pid);
                self.cwd.remove(&ev.pid);
                self.split_cwd.remove(&ev.pid);
                self.shared_fs.remove(&ev.pid);
                self.roots.remove(&ev.pid);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use syscalls::Sysno;
    use tracepost_common::ProcessEvent;

    use super::*;
    use crate::{files::reorder::event, kernel::decode::Extra};

    /// A clock for the tests' calls and processes, each made later than the last, as the
    /// tracker sees them on a host.
    fn tick() -> u64 {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NOW: AtomicU64 = AtomicU64::new(1_000);
        NOW.fetch_add(100, Ordering::Relaxed)
    }

    fn call(pid: u32, nr: Sysno, args: [u64; 6], ret: i64, extra: Option<Extra>) -> Call {
        let mut e = event(tick(), pid);
        e.pid = pid;
        e.nr = nr.id() as u32;
        e.args = args;
        e.ret = ret;
        Call::new(e, extra, None)
    }

    fn path(p: &str) -> Option<Extra> {
        Some(Extra::Path {
            path: p.into(),
            truncated: false,
            target: None,
        })
    }

    /// `openat(AT_FDCWD, name)` by `pid`, returning `fd`.
    fn open(t: &mut FdTracker, pid: u32, fd: i64, name: &str) {
        let args = [AT_FDCWD as u64, 0, 0, 0, 0, 0];
        t.observe(&mut call(pid, Sysno::openat, args, fd, path(name)), None);
    }

    fn fd_path(t: &mut FdTracker, pid: u32, fd: i32) -> Option<String> {
        let mut c = call(pid, Sysno::read, [fd as u64, 0, 0, 0, 0, 0], 0, None);
        t.observe(&mut c, Some(fd));
        c.fd_path.map(|p| p.to_string())
    }

    fn new_process(parent: u32, child: u32, flags: u64) -> ProcessUpdate {
        ProcessUpdate {
            event: ProcessEvent {
                ts_ns: tick(),
                clone_flags: flags,
                kind: PROCESS_NEW,
                pid: parent,
                tid: parent,
                child_tid: child,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// The tracker only sees a call under `--failed`, `--min-duration` or `-e` if the kernel
    /// sends it as context, so every call that changes the table must be in the kernel's
    /// list of context calls. Each syscall is tried with a few argument shapes against a
    /// table of known fds and a known cwd.
    #[test]
    fn every_call_that_changes_the_table_is_a_context_call() {
        let known = |t: &mut FdTracker| -> Vec<Option<String>> {
            let mut seen: Vec<_> = (0..12).map(|fd| fd_path(t, 7, fd)).collect();
            // A relative open shows the cwd; an absolute one the root (chroot).
            for (fd, name) in [(20, "probe"), (21, "/abs")] {
                let mut probe = call(
                    7,
                    Sysno::openat,
                    [AT_FDCWD as u64, 0, 0, 0, 0, 0],
                    fd,
                    path(name),
                );
                t.observe(&mut probe, None);
                seen.push(fd_path(t, 7, fd as i32));
            }
            seen
        };
        let fresh = || {
            let mut t = FdTracker::new();
            t.apply_snapshot(&Snapshot {
                pid: 7,
                // fd 10 is what a path argument "p" names: a rename or unlink of it shows.
                fds: (0..10)
                    .map(|fd| (fd, format!("/f{fd}"), Some(0)))
                    .chain([(10, "/srv/p".to_string(), Some(0))])
                    .collect(),
                cwd: Some("/srv".into()),
                ring: false,
                apart: (false, false),
                shared_with: (None, None),
            });
            t
        };
        let before = known(&mut fresh());
        let mut changing = Vec::new();
        for sysno in Sysno::iter() {
            for (args, ret) in [
                ([3, 9, 0, 0, 0, 0], 9),
                ([3, 0, 0, 0, 0, 0], 11),
                ([3, 9, 0, 0, 0, 0], 0),
            ] {
                for extra in [None, path("p")] {
                    let mut t = fresh();
                    t.observe(&mut call(7, sysno, args, ret, extra), Some(3));
                    if known(&mut t) != before {
                        changing.push(sysno);
                    }
                }
            }
        }
        changing.dedup();
        assert!(changing.contains(&Sysno::openat) && changing.contains(&Sysno::close));
        for sysno in changing {
            assert!(
                crate::kernel::syscall_table::is_context_call(sysno),
                "{sysno} changes the fd table but the kernel does not send it as context"
            );
        }
    }

    /// A read blocked on fd 3 while another thread closed it and opened another file on
    /// the number: the kernel read the file it held at entry, and the table no longer says
    /// which. Seen after the close and the open (it returned late), it was named after the
    /// new file, which it never touched (helper-90).
    #[test]
    fn a_call_that_entered_before_its_fd_was_named_anew_has_no_name() {
        let mut t = FdTracker::new();
        open(&mut t, 7, 3, "/srv/old");
        let mut read = call(7, Sysno::read, [3, 0, 0, 0, 0, 0], 1234, None);
        read.event.duration_ns = 10_000;
        t.observe(
            &mut call(7, Sysno::close, [3, 0, 0, 0, 0, 0], 0, None),
            None,
        );
        open(&mut t, 7, 3, "/srv/new");
        t.observe(&mut read, Some(3));
        assert_eq!(read.fd_path, None);
        // What entered after the open is named, and an fd's flags changed under a call
        // leave its name as it was.
        assert_eq!(fd_path(&mut t, 7, 3).as_deref(), Some("/srv/new"));
        let mut write = call(7, Sysno::write, [3, 0, 0, 0, 0, 0], 1, None);
        t.observe(
            &mut call(7, Sysno::fcntl, [3, 2, 1, 0, 0, 0], 0, None),
            None,
        );
        t.observe(&mut write, Some(3));
        assert_eq!(write.fd_path.as_deref(), Some("/srv/new"));
    }

    /// A close that returned late, after another thread's open took the number it freed
    /// as it entered: the new file's entry stays named (helper-92).
    #[test]
    fn a_close_seen_after_the_number_was_taken_again_leaves_the_new_file_named() {
        let mut t = FdTracker::new();
        open(&mut t, 7, 3, "/srv/old");
        let mut close = call(7, Sysno::close, [3, 0, 0, 0, 0, 0], 0, None);
        close.event.duration_ns = 10_000;
        open(&mut t, 7, 3, "/srv/new");
        t.observe(&mut close, None);
        assert_eq!(fd_path(&mut t, 7, 3).as_deref(), Some("/srv/new"));
        let mut range = call(7, Sysno::close_range, [3, 3, 0, 0, 0, 0], 0, None);
        range.event.duration_ns = 10_000;
        open(&mut t, 7, 3, "/srv/newer");
        t.observe(&mut range, None);
        assert_eq!(fd_path(&mut t, 7, 3).as_deref(), Some("/srv/newer"));
        // A close that entered after the name was given removes it.
        t.observe(
            &mut call(7, Sysno::close, [3, 0, 0, 0, 0, 0], 0, None),
            None,
        );
        assert_eq!(fd_path(&mut t, 7, 3), None);
    }

    /// seccomp answered these for the kernel: nothing was opened or closed.
    #[test]
    fn a_call_the_kernel_did_not_run_changes_no_fd() {
        let mut t = FdTracker::new();
        open(&mut t, 7, 3, "/srv/kept");
        let mut close = call(7, Sysno::close, [3, 0, 0, 0, 0, 0], 0, None);
        close.event.flags = FLAG_NOT_RUN;
        t.observe(&mut close, Some(3));
        assert_eq!(close.fd_path.as_deref(), Some("/srv/kept"));
        let args = [AT_FDCWD as u64, 0, 0, 0, 0, 0];
        let mut fake = call(7, Sysno::openat, args, 3, path("/srv/fake"));
        fake.event.flags = FLAG_NOT_RUN;
        t.observe(&mut fake, None);
        assert_eq!(fd_path(&mut t, 7, 3).as_deref(), Some("/srv/kept"));
    }

    #[test]
    fn opens_dups_and_closes_are_followed() {
        let mut t = FdTracker::new();
        t.apply_snapshot(&Snapshot {
            pid: 7,
            fds: vec![(0, "/dev/null".into(), Some(0))],
            cwd: Some("/srv".into()),
            ring: false,
            apart: (false, false),
            shared_with: (None, None),
        });
        assert_eq!(fd_path(&mut t, 7, 0).as_deref(), Some("/dev/null"));
        let mut open = call(
            7,
            Sysno::openat,
            [AT_FDCWD as u64, 0, 0, 0, 0, 0],
            3,
            path("data/x"),
        );
        t.observe(&mut open, None);
        assert_eq!(fd_path(&mut t, 7, 3).as_deref(), Some("/srv/data/x"));
        t.observe(&mut call(7, Sysno::dup2, [3, 9, 0, 0, 0, 0], 9, None), None);
        assert_eq!(fd_path(&mut t, 7, 9).as_deref(), Some("/srv/data/x"));
        let mut close = call(7, Sysno::close, [3, 0, 0, 0, 0, 0], 0, None);
        t.observe(&mut close, Some(3));
        assert_eq!(
            close.fd_path.as_deref(),
            Some("/srv/data/x"),
            "what was closed"
        );
        assert_eq!(fd_path(&mut t, 7, 3), None);
        // An fd the snapshot did not have is unknown, not guessed.
        assert_eq!(fd_path(&mut t, 7, 4), None);
        assert_eq!(fd_path(&mut t, 8, 0), None);
    }

    /// A rename takes two names away: its source's, and its target's, which a file open
    /// under it loses (`mv new.conf app.conf` while app.conf is open). Where a name is
    /// not wholly known, every name it could be is forgotten instead.
    #[test]
    fn a_rename_forgets_its_target_and_an_unknown_name_forgets_what_it_could_be() {
        use crate::kernel::decode::Target;
        let fresh = || {
            let mut t = FdTracker::new();
            t.apply_snapshot(&Snapshot {
                pid: 7,
                fds: vec![
                    (3, "/etc/app.conf".into(), Some(0)),
                    (4, "/etc/app.conf.d/x".into(), Some(0)),
                    (5, "/var/log/app.log".into(), Some(0)),
                    (6, "/srv/app.conf".into(), Some(0)),
                    (7, "/etc/other".into(), Some(0)),
                ],
                cwd: Some("/etc".into()),
                ring: false,
                apart: (false, false),
                shared_with: (None, None),
            });
            t
        };
        let renamed = |from: &str, target: Target| {
            Some(Extra::Path {
                path: from.into(),
                truncated: false,
                target: Some(target),
            })
        };
        let names = |t: &mut FdTracker| -> Vec<Option<String>> {
            (3..8).map(|fd| fd_path(t, 7, fd)).collect()
        };
        let s = |p: &str| Some(p.to_string());
        let cwd = AT_FDCWD as u64;

        // rename("app.conf.new", "app.conf"): fd 3's file is no longer app.conf;
        // app.conf.d and /srv/app.conf are other names.
        let mut t = fresh();
        let target = Target::Whole("app.conf".into());
        let mut c = call(7, Sysno::rename, [0; 6], 0, renamed("app.conf.new", target));
        t.observe(&mut c, None);
        let kept = vec![
            None,
            s("/etc/app.conf.d/x"),
            s("/var/log/app.log"),
            s("/srv/app.conf"),
            s("/etc/other"),
        ];
        assert_eq!(names(&mut t), kept);

        // A failed rename changed nothing.
        let mut t = fresh();
        let target = Target::Unknown;
        let mut c = call(7, Sysno::rename, [0; 6], -2, renamed("a", target));
        t.observe(&mut c, None);
        assert_eq!(names(&mut t).iter().flatten().count(), 5);

        // renameat into a directory fd not known: every name ending in app.conf.
        let mut t = fresh();
        let target = Target::Whole("app.conf".into());
        let args = [cwd, 0, 42, 0, 0, 0];
        let mut c = call(7, Sysno::renameat2, args, 0, renamed("n", target));
        t.observe(&mut c, None);
        assert_eq!(
            names(&mut t),
            vec![
                None,
                s("/etc/app.conf.d/x"),
                s("/var/log/app.log"),
                None,
                s("/etc/other")
            ]
        );

        // A target cut short: every name it begins.
        let mut t = fresh();
        let target = Target::Cut("/etc/app".into());
        let mut c = call(7, Sysno::rename, [0; 6], 0, renamed("/tmp/n", target));
        t.observe(&mut c, None);
        let kept = vec![
            None,
            None,
            s("/var/log/app.log"),
            s("/srv/app.conf"),
            s("/etc/other"),
        ];
        assert_eq!(names(&mut t), kept);

        // A source cut short, or a target not read: no name can be trusted.
        for (from, truncated, target) in [
            ("/etc/app.c", true, Target::Whole("/tmp/x".into())),
            ("/tmp/x", false, Target::Unknown),
        ] {
            let mut t = fresh();
            let extra = Some(Extra::Path {
                path: from.into(),
                truncated,
                target: Some(target),
            });
            t.observe(&mut call(7, Sysno::rename, [0; 6], 0, extra), None);
            if truncated {
                assert_eq!(names(&mut t).iter().flatten().count(), 3, "{from}");
            } else {
                assert_eq!(names(&mut t), vec![None; 5], "{from}");
            }
        }

        // unlink("../etc/app.conf") by a process whose cwd is not known.
        let mut t = fresh();
        t.cwd.clear();
        let mut c = call(7, Sysno::unlink, [0; 6], 0, path("../etc/app.conf"));
        t.observe(&mut c, None);
        assert_eq!(names(&mut t), vec![None; 5]);
    }

    /// A rename or unlink of a name no fd holds skips the scan of every fd
    /// ([`HeldNames`]); these are the ways a held name could be missed by it. Each
    /// `forget_name` that the filter skips also checks, in tests, that the scan would
    /// have forgotten nothing.
    #[test]
    fn names_held_by_copies_and_after_a_rebuild_are_still_forgotten() {
        let unlink = |t: &mut FdTracker, pid: u32, name: &str| {
            let mut c = call(pid, Sysno::unlink, [0; 6], 0, path(name));
            t.observe(&mut c, None);
        };
        let mut t = FdTracker::new();
        open(&mut t, 7, 3, "/srv/keep/a");
        // A child forked before the filter is rebuilt, holding the same name.
        t.on_process(&new_process(7, 8, 0));
        let mut c = call(9, Sysno::chdir, [0; 6], 0, path("/home/w"));
        t.observe(&mut c, None);
        assert!(t.cwd.contains_key(&9));
        // More distinct names than the filter's first limit, each closed again: the
        // rebuild that follows drops them and keeps what is still open.
        for i in 0..40_000 {
            open(&mut t, 7, 4, &format!("/tmp/x/{i}"));
            let mut c = call(7, Sysno::close, [4, 0, 0, 0, 0, 0], 0, None);
            t.observe(&mut c, None);
        }
        assert!(!t.held.may_hold("/tmp/x/5"), "a rebuild drops closed names");
        // Names no fd holds: nothing changes.
        unlink(&mut t, 7, "/tmp/x/5");
        unlink(&mut t, 7, "/srv/keep/b");
        assert_eq!(fd_path(&mut t, 8, 3).as_deref(), Some("/srv/keep/a"));
        // The held one, by the child's copy and the parent's fd alike.
        unlink(&mut t, 8, "/srv/keep/../keep/a");
        assert_eq!(fd_path(&mut t, 7, 3), None);
        assert_eq!(fd_path(&mut t, 8, 3), None);
        // A directory above a cwd set by chdir before the rebuild, removed.
        let mut c = call(9, Sysno::rmdir, [0; 6], 0, path("/home"));
        t.observe(&mut c, None);
        assert!(!t.cwd.contains_key(&9));
    }

    /// Names are compared as text, so each name has one spelling: `//`, `.` and a trailing
    /// `/` are taken out of absolute paths as of relative ones. A name that is not UTF-8
    /// is not kept: its lossy text can be another file's name.
    #[test]
    fn one_spelling_per_name_and_no_lossy_names() {
        use crate::kernel::decode::Target;
        let mut t = FdTracker::new();
        t.apply_snapshot(&Snapshot {
            pid: 7,
            fds: vec![],
            cwd: Some("/srv".into()),
            ring: false,
            apart: (false, false),
            shared_with: (None, None),
        });
        open(&mut t, 7, 3, "//etc//app.conf");
        open(&mut t, 7, 4, "/proc/./self/fd/3");
        open(&mut t, 7, 5, "/var/./lib/");
        open(&mut t, 7, 6, "/data/\u{FFFD}");
        let names = |t: &mut FdTracker| -> Vec<Option<String>> {
            (3..7).map(|fd| fd_path(t, 7, fd)).collect()
        };
        let s = |p: &str| Some(p.to_string());
        assert_eq!(
            names(&mut t),
            vec![s("/etc/app.conf"), s("/etc/app.conf"), s("/var/lib"), None]
        );
        let rename = |t: &mut FdTracker, target: &str| {
            let extra = Some(Extra::Path {
                path: "/tmp/new".into(),
                truncated: false,
                target: Some(Target::Whole(target.into())),
            });
            t.observe(&mut call(7, Sysno::rename, [0; 6], 0, extra), None);
        };
        rename(&mut t, "/etc/app.conf/");
        assert_eq!(names(&mut t), vec![None, None, s("/var/lib"), None]);
        // A name below a root that is not known could be any name.
        rename(&mut t, "/proc/self/root/x");
        assert_eq!(names(&mut t), vec![None; 4]);
    }

    /// `ioctl(fd, FIOCLEX)` is `fcntl(fd, F_SETFD, FD_CLOEXEC)` by another name. Not
    /// followed, an fd it marked was believed kept across the exec that closed it, and a
    /// later fd of that number the table never saw made (one received with SCM_RIGHTS)
    /// was named after the closed file.
    #[test]
    fn ioctl_sets_close_on_exec_as_fcntl_does() {
        let mut t = FdTracker::new();
        t.apply_snapshot(&Snapshot {
            pid: 7,
            fds: vec![
                (3, "/srv/a".to_string(), Some(0)),
                (4, "/srv/b".to_string(), Some(O_CLOEXEC)),
                (5, "/srv/c".to_string(), Some(0)),
            ],
            cwd: Some("/srv".into()),
            ring: false,
            apart: (false, false),
            shared_with: (None, None),
        });
        let ioctl =
            |fd: u64, cmd: u64, ret: i64| call(7, Sysno::ioctl, [fd, cmd, 0, 0, 0, 0], ret, None);
        t.observe(&mut ioctl(3, 0x5451, 0), Some(3)); // FIOCLEX
        t.observe(&mut ioctl(4, 0x5450, 0), Some(4)); // FIONCLEX
        t.observe(&mut ioctl(5, 0x5451, -9), Some(5)); // failed: nothing set
        t.observe(&mut ioctl(5, 0x541B, 0), Some(5)); // FIONREAD: not about the fd's flags
        t.observe(
            &mut call(7, Sysno::execve, [0; 6], 0, path("/bin/true")),
            None,
        );
        assert_eq!(fd_path(&mut t, 7, 3), None, "marked close-on-exec");
        assert_eq!(fd_path(&mut t, 7, 4).as_deref(), Some("/srv/b"));
        assert_eq!(fd_path(&mut t, 7, 5).as_deref(), Some("/srv/c"));
    }

    /// A read's EBADF on an fd opened write-only (or a write's on a read-only one, or most
    /// calls' on an `O_PATH` fd) is the fd's mode, not proof that it is closed: the name
    /// stays. Where the mode is unknown, or the use needs only an open fd, it goes.
    #[test]
    fn ebadf_proves_closed_only_for_a_use_the_fd_was_opened_for() {
        let mut t = FdTracker::new();
        t.apply_snapshot(&Snapshot {
            pid: 7,
            // fd 9's flags /proc did not give; fd 12 is a read-only stdin, as a shell
            // hands one on.
            fds: vec![
                (9, "/srv/snap".to_string(), None),
                (12, "/srv/stdin".to_string(), Some(0)),
            ],
            cwd: Some("/srv".into()),
            ring: false,
            apart: (false, false),
            shared_with: (None, None),
        });
        let open = |flags: u64, p: &str, fd: i64| {
            call(
                7,
                Sysno::openat,
                [AT_FDCWD as u64, 0, flags, 0, 0, 0],
                fd,
                path(p),
            )
        };
        let on = |nr: Sysno, fd: u64, ret: i64| call(7, nr, [fd, 0, 0, 0, 0, 0], ret, None);
        t.observe(&mut open(1, "/srv/w", 3), None); // O_WRONLY
        t.observe(&mut open(0, "/srv/r", 4), None); // O_RDONLY
        t.observe(&mut open(0o10_000_000, "/srv/p", 5), None); // O_PATH
        t.observe(&mut open(2, "/srv/rw", 6), None); // O_RDWR
        t.observe(
            &mut call(7, Sysno::dup, [3, 0, 0, 0, 0, 0], 8, None),
            Some(3),
        );
        let mut pipe = call(7, Sysno::pipe2, [0; 6], 0, Some(Extra::FdPair(10, 11)));
        t.observe(&mut pipe, None);
        for (nr, fd) in [
            (Sysno::pread64, 3),
            (Sysno::read, 8),
            (Sysno::write, 4),
            (Sysno::ftruncate, 4),
            (Sysno::lseek, 5),
            (Sysno::fsync, 5),
            (Sysno::write, 10),
            (Sysno::read, 11),
            (Sysno::write, 12),
        ] {
            let mut c = on(nr, fd, -9);
            t.observe(&mut c, Some(fd as i32));
            assert!(c.fd_path.is_some(), "{nr} on {fd} keeps its name");
        }
        for fd in [3, 4, 5, 8, 10, 11, 12] {
            assert!(fd_path(&mut t, 7, fd).is_some(), "fd {fd}");
        }
        // Proof: a read on a readable fd, fstat on anything, a write on one of unknown mode.
        for (nr, fd) in [
            (Sysno::read, 4),
            (Sysno::fstat, 5),
            (Sysno::pwrite64, 6),
            (Sysno::write, 9),
        ] {
            let mut c = on(nr, fd, -9);
            t.observe(&mut c, Some(fd as i32));
            assert_eq!(c.fd_path, None, "{nr} on {fd}");
            assert_eq!(fd_path(&mut t, 7, fd as i32), None, "fd {fd}");
        }
    }

    /// io_uring's operations open and close fds with no syscall to follow: from the ring's
    /// setup (or a ring /proc shows at attach) until an exec, no fd of the process or of
    /// a child forked with the ring is named.
    #[test]
    fn a_process_with_an_io_uring_has_no_fd_named_until_it_execs() {
        let mut t = FdTracker::new();
        let snapshot = |pid, ring: bool| Snapshot {
            pid,
            fds: [(0, "/dev/null".to_string(), Some(0))]
                .into_iter()
                .chain(ring.then(|| (5, IO_URING.to_string(), Some(O_CLOEXEC))))
                .collect(),
            cwd: Some("/srv".into()),
            ring,
            apart: (false, false),
            shared_with: (None, None),
        };
        t.apply_snapshot(&snapshot(7, false));
        t.apply_snapshot(&snapshot(8, true));
        assert_eq!(fd_path(&mut t, 7, 0).as_deref(), Some("/dev/null"));
        assert_eq!(fd_path(&mut t, 8, 0), None, "a ring at attach");
        t.observe(
            &mut call(7, Sysno::io_uring_setup, [4, 0, 0, 0, 0, 0], 3, None),
            None,
        );
        assert_eq!(fd_path(&mut t, 7, 0), None);
        t.on_process(&new_process(7, 9, 0));
        assert_eq!(fd_path(&mut t, 9, 0), None, "a child forked with the ring");
        t.observe(
            &mut call(7, Sysno::execve, [0; 6], 0, path("/bin/true")),
            None,
        );
        open(&mut t, 7, 3, "f");
        assert_eq!(
            fd_path(&mut t, 7, 3).as_deref(),
            Some("/srv/f"),
            "after exec"
        );
        assert_eq!(fd_path(&mut t, 7, 0), None, "from before the exec");

        // A ring whose fd the program made to outlive the exec keeps working after it.
        t.apply_snapshot(&snapshot(10, false));
        t.observe(
            &mut call(10, Sysno::io_uring_setup, [4, 0, 0, 0, 0, 0], 3, None),
            None,
        );
        let clear = [3, 2, 0, 0, 0, 0]; // fcntl(3, F_SETFD, 0)
        t.observe(&mut call(10, Sysno::fcntl, clear, 0, None), None);
        for _ in 0..2 {
            t.observe(
                &mut call(10, Sysno::execve, [0; 6], 0, path("/bin/x")),
                None,
            );
            open(&mut t, 10, 4, "f");
            assert_eq!(fd_path(&mut t, 10, 4), None, "a ring kept across exec");
        }
    }

    /// After chroot, /proc and /dev are the new root's, if it has them at all; `/dev/fd`
    /// is the reader's own fd directory.
    #[test]
    fn proc_names_below_a_new_root_or_of_the_fd_directory_are_not_named() {
        let mut t = FdTracker::new();
        t.apply_snapshot(&Snapshot {
            pid: 7,
            fds: vec![(3, "/data/f".to_string(), Some(0))],
            cwd: Some("/".into()),
            ring: false,
            apart: (false, false),
            shared_with: (None, None),
        });
        open(&mut t, 7, 4, "/dev/fd/");
        assert_eq!(fd_path(&mut t, 7, 4), None);
        open(&mut t, 7, 4, "/proc/self/fd/3");
        assert_eq!(fd_path(&mut t, 7, 4).as_deref(), Some("/data/f"));
        t.observe(&mut call(7, Sysno::chroot, [0; 6], 0, path("/jail")), None);
        for name in ["/proc/self/fd/3", "//proc/self/status", "/./dev/stdin"] {
            open(&mut t, 7, 5, name);
            assert_eq!(fd_path(&mut t, 7, 5), None, "{name}");
        }
        open(&mut t, 7, 5, "/etc/hosts");
        assert_eq!(fd_path(&mut t, 7, 5).as_deref(), Some("/jail/etc/hosts"));
    }

    /// setns into a mount namespace makes its root the cwd and the root (strace -y names
    /// `etc/hostname` after `nsenter -m` as `/etc/hostname`); into another kind, neither
    /// moves; into a namespace fd of a kind not known, both are unknown.
    #[test]
    fn entering_a_mount_namespace_moves_the_cwd_to_its_root() {
        const CLONE_NEWNS: u64 = 0x2_0000;
        const CLONE_NEWNET: u64 = 0x4000_0000;
        let start = |t: &mut FdTracker| {
            t.apply_snapshot(&Snapshot {
                pid: 7,
                fds: vec![
                    (3, "mnt:[4026531841]".to_string(), Some(0)),
                    (4, "net:[4026531840]".to_string(), Some(0)),
                    (5, "/run/netns/x".to_string(), Some(0)),
                    // A mount namespace can be bound there (helper-82).
                    (6, "/tmp/x/ns/net".to_string(), Some(0)),
                ],
                cwd: Some("/srv".into()),
                ring: false,
                apart: (false, false),
                shared_with: (None, None),
            });
            t.observe(&mut call(7, Sysno::chroot, [0; 6], 0, path("/jail")), None);
        };
        let cases: [([u64; 6], Option<&str>, Option<&str>); 6] = [
            (
                [9, CLONE_NEWNS, 0, 0, 0, 0],
                Some("/etc/hostname"),
                Some("/etc/hostname"),
            ),
            (
                [3, 0, 0, 0, 0, 0],
                Some("/etc/hostname"),
                Some("/etc/hostname"),
            ),
            (
                [4, 0, 0, 0, 0, 0],
                Some("/srv/etc/hostname"),
                Some("/jail/etc/hostname"),
            ),
            (
                [4, CLONE_NEWNET, 0, 0, 0, 0],
                Some("/srv/etc/hostname"),
                Some("/jail/etc/hostname"),
            ),
            ([5, 0, 0, 0, 0, 0], None, None),
            ([6, 0, 0, 0, 0, 0], None, None),
        ];
        for (args, relative, absolute) in cases {
            let mut t = FdTracker::new();
            start(&mut t);
            t.observe(
                &mut call(7, Sysno::setns, args, 0, None),
                Some(args[0] as i32),
            );
            open(&mut t, 7, 6, "etc/hostname");
            assert_eq!(fd_path(&mut t, 7, 6).as_deref(), relative, "{args:?}");
            open(&mut t, 7, 6, "/etc/hostname");
            assert_eq!(fd_path(&mut t, 7, 6).as_deref(), absolute, "{args:?}");
        }
    }

    #[test]
    fn sockets_take_their_peer_and_pipes_their_kind() {
        let mut t = FdTracker::new();
        t.observe(
            &mut call(1, Sysno::socket, [2, 1, 0, 0, 0, 0], 5, None),
            None,
        );
        assert_eq!(fd_path(&mut t, 1, 5).as_deref(), Some("socket:inet"));
        let peer = Some(Extra::Addr("127.0.0.1:80".into()));
        t.observe(
            &mut call(1, Sysno::connect, [5, 0, 16, 0, 0, 0], 0, peer),
            Some(5),
        );
        assert_eq!(fd_path(&mut t, 1, 5).as_deref(), Some("127.0.0.1:80"));
        let pair = Some(Extra::FdPair(6, 7));
        t.observe(
            &mut call(1, Sysno::pipe2, [0, O_CLOEXEC, 0, 0, 0, 0], 0, pair),
            None,
        );
        assert_eq!(fd_path(&mut t, 1, 7).as_deref(), Some("pipe"));
        // At execve the close-on-exec pipe goes; the socket stays.
        t.observe(
            &mut call(1, Sysno::execve, [0; 6], 0, path("/bin/true")),
            None,
        );
        assert_eq!(fd_path(&mut t, 1, 6), None);
        assert_eq!(fd_path(&mut t, 1, 5).as_deref(), Some("127.0.0.1:80"));
    }

    #[test]
    fn fork_copies_and_clone_files_shares() {
        let mut t = FdTracker::new();
        t.observe(
            &mut call(1, Sysno::open, [0, 0, 0, 0, 0, 0], 3, path("/a")),
            None,
        );
        t.on_process(&new_process(1, 2, 0));
        t.on_process(&new_process(1, 3, CLONE_FILES));
        t.observe(
            &mut call(1, Sysno::close, [3, 0, 0, 0, 0, 0], 0, None),
            Some(3),
        );
        assert_eq!(fd_path(&mut t, 2, 3).as_deref(), Some("/a"), "a copy");
        assert_eq!(fd_path(&mut t, 3, 3), None, "shared, so closed too");
    }

    /// Two processes given to `record -p` that share one fd table (`CLONE_FILES`) and one
    /// working directory (`CLONE_FS`) from before it attached: one's dup2 renames the
    /// other's fd, and their relative names are not known (helper-82). A process named
    /// twice shares with nothing.
    #[test]
    fn processes_found_sharing_at_attach_share_one_table() {
        let mut t = FdTracker::new();
        for (pid, with) in [(7, None), (8, Some(7)), (9, Some(9))] {
            t.apply_snapshot(&Snapshot {
                pid,
                fds: vec![(9, "/srv/a".to_string(), Some(0))],
                cwd: Some("/srv".into()),
                ring: false,
                apart: (false, false),
                shared_with: (with, with),
            });
        }
        open(&mut t, 7, 10, "/srv/b");
        t.observe(
            &mut call(7, Sysno::dup2, [10, 9, 0, 0, 0, 0], 9, None),
            Some(10),
        );
        assert_eq!(fd_path(&mut t, 8, 9).as_deref(), Some("/srv/b"));
        assert_eq!(fd_path(&mut t, 9, 9).as_deref(), Some("/srv/a"));
        for pid in [7, 8] {
            open(&mut t, pid, 11, "rel");
            assert_eq!(fd_path(&mut t, pid, 11), None);
        }
        open(&mut t, 9, 11, "rel");
        assert_eq!(fd_path(&mut t, 9, 11).as_deref(), Some("/srv/rel"));
        // One of whose threads had a table of its own leaves the table it shares unnamed:
        // that thread's fds are not in it, and its own dup2 changes the others'.
        t.apply_snapshot(&Snapshot {
            pid: 10,
            fds: vec![(9, "/srv/a".to_string(), Some(0))],
            cwd: Some("/srv".into()),
            ring: false,
            apart: (true, false),
            shared_with: (Some(7), None),
        });
        assert_eq!(fd_path(&mut t, 10, 9), None);
        assert_eq!(fd_path(&mut t, 8, 9), None);
    }

    /// A thread that had a table or a cwd of its own before the recorder attached: the
    /// snapshot names none of the process's fds, nor its relative names.
    #[test]
    fn a_snapshot_of_threads_apart_names_nothing() {
        let mut t = FdTracker::new();
        t.apply_snapshot(&Snapshot {
            pid: 7,
            fds: vec![(3, "/srv/a".to_string(), Some(0))],
            cwd: Some("/srv".into()),
            ring: false,
            apart: (true, true),
            shared_with: (None, None),
        });
        assert_eq!(fd_path(&mut t, 7, 3), None);
        open(&mut t, 7, 4, "rel");
        assert_eq!(fd_path(&mut t, 7, 4), None);
    }

    /// A thread made apart (no `CLONE_FILES`) in a process whose table another process
    /// shares: the table stays shared, and names nothing for either. Unshared from it, the
    /// process that made the thread kept changing its copy, and the other's went stale: a
    /// `dup2` there left the sharer's fd named after the file it replaced (helper-80).
    #[test]
    fn a_thread_made_apart_leaves_every_sharer_of_the_table_unnamed() {
        let mut t = FdTracker::new();
        open(&mut t, 1, 5, "/old");
        t.on_process(&new_process(1, 2, CLONE_FILES));
        // CLONE_THREAD and CLONE_FS, without CLONE_FILES.
        let mut apart = new_process(1, 1, 0x0001_0000 | CLONE_FS);
        apart.event.kind = PROCESS_THREAD_APART;
        apart.event.child_tid = 3;
        t.on_process(&apart);
        t.observe(
            &mut call(1, Sysno::close, [5, 0, 0, 0, 0, 0], 0, None),
            Some(5),
        );
        open(&mut t, 1, 5, "/new");
        assert_eq!(fd_path(&mut t, 1, 5), None);
        assert_eq!(fd_path(&mut t, 2, 5), None, "not /old");
    }

    /// The kernel copies the table between the clone's entry and the new task's event. A
    /// sibling thread's `dup2` that returned in that time, seen before the child or after
    /// it, may or may not be in the child's copy: a red team's program had 43-71 of 200
    /// children named after the other file. Such an fd is not named in the child; one
    /// changed before the clone began, or after the child was made, is as it was.
    /// A sibling thread's change to what a call used (a dup's source, an openat's dirfd,
    /// the cwd of a relative open, the fd behind `/proc/self/fd/N`) returned while the
    /// call ran: the call took what it used as it was, which the table no longer holds,
    /// so what it made is not named. helper-96: a dup, racing a thread that swapped its
    /// source between two files with dup2, was named after the other file.
    #[test]
    fn a_change_returned_while_a_call_ran_leaves_what_it_made_unnamed() {
        let mut t = FdTracker::new();
        let timed = |nr: Sysno, args: [u64; 6], ret: i64, extra: Option<Extra>, enter: u64| {
            let mut c = call(1, nr, args, ret, extra);
            c.event.enter_ns = enter;
            c.event.duration_ns = 30;
            c
        };
        let at = |t: &mut FdTracker, mut c: Call, fd: Option<i32>| t.observe(&mut c, fd);
        open(&mut t, 1, 3, "/a");
        open(&mut t, 1, 4, "/b");
        open(&mut t, 1, 8, "/dir1");
        open(&mut t, 1, 9, "/dir2");
        t.observe(&mut call(1, Sysno::chdir, [0; 6], 0, path("/dir1")), None);
        // Each pair: the sibling's change entered and returned while the call ran, and is
        // seen first, as it returned first.
        let base = tick() + 1_000;
        at(
            &mut t,
            timed(Sysno::dup2, [4, 3, 0, 0, 0, 0], 3, None, base + 10),
            Some(4),
        );
        at(
            &mut t,
            timed(Sysno::dup, [3, 0, 0, 0, 0, 0], 5, None, base),
            Some(3),
        );
        assert_eq!(fd_path(&mut t, 1, 5), None, "dup of 3");

        let base = tick() + 1_000;
        at(
            &mut t,
            timed(Sysno::dup2, [9, 8, 0, 0, 0, 0], 8, None, base + 10),
            Some(9),
        );
        let args = [8, 0, 0, 0, 0, 0];
        at(&mut t, timed(Sysno::openat, args, 6, path("f"), base), None);
        assert_eq!(fd_path(&mut t, 1, 6), None, "openat(8, f)");

        let base = tick() + 1_000;
        at(
            &mut t,
            timed(Sysno::chdir, [0; 6], 0, path("/dir2"), base + 10),
            None,
        );
        let args = [AT_FDCWD as u64, 0, 0, 0, 0, 0];
        at(&mut t, timed(Sysno::openat, args, 7, path("g"), base), None);
        assert_eq!(fd_path(&mut t, 1, 7), None, "openat(AT_FDCWD, g)");

        let base = tick() + 1_000;
        at(
            &mut t,
            timed(Sysno::dup2, [4, 3, 0, 0, 0, 0], 3, None, base + 10),
            Some(4),
        );
        let args = [AT_FDCWD as u64, 0, 0, 0, 0, 0];
        let proc_fd = path("/proc/self/fd/3");
        at(&mut t, timed(Sysno::openat, args, 10, proc_fd, base), None);
        assert_eq!(fd_path(&mut t, 1, 10), None, "/proc/self/fd/3");

        // Changes that returned before the calls entered are theirs to follow.
        let later = tick() + 10_000;
        at(
            &mut t,
            timed(Sysno::dup, [3, 0, 0, 0, 0, 0], 5, None, later),
            Some(3),
        );
        let args = [AT_FDCWD as u64, 0, 0, 0, 0, 0];
        at(
            &mut t,
            timed(Sysno::openat, args, 7, path("g"), later + 100),
            None,
        );
        for (fd, name) in [(5, "/b"), (7, "/dir2/g")] {
            let mut read = timed(
                Sysno::read,
                [fd as u64, 0, 0, 0, 0, 0],
                0,
                None,
                later + 200,
            );
            t.observe(&mut read, Some(fd));
            assert_eq!(read.fd_path.as_deref(), Some(name));
        }
    }

    #[test]
    fn a_change_racing_a_fork_is_not_named_in_the_child() {
        let mut t = FdTracker::new();
        let dup2 = |t: &mut FdTracker, from: u64, to: u64, enter: u64| {
            let mut c = call(1, Sysno::dup2, [from, to, 0, 0, 0, 0], to as i64, None);
            c.event.enter_ns = enter;
            c.event.duration_ns = 10;
            t.observe(&mut c, Some(from as i32));
        };
        open(&mut t, 1, 3, "/a");
        open(&mut t, 1, 4, "/b");
        open(&mut t, 1, 6, "/c");
        let clone_enter = tick();
        // Returned after the clone began, and seen before the child: not named there.
        dup2(&mut t, 4, 5, tick());
        let mut child = new_process(1, 2, 0);
        child.event.clone_enter_ns = clone_enter;
        let forked = child.event.ts_ns;
        t.on_process(&child);
        // Returned before the child was made, seen after it: not named there either.
        dup2(&mut t, 3, 6, forked - 50);
        // Began after the child was made: the parent's alone.
        dup2(&mut t, 4, 3, forked + 10);
        // Entered before the clone, changed the table there, and blocked in the old file's
        // flush until after the child was made (FUSE): not named in the child.
        let mut slow = call(1, Sysno::dup2, [3, 4, 0, 0, 0, 0], 4, None);
        slow.event.enter_ns = clone_enter - 20;
        slow.event.duration_ns = forked + 1 - slow.event.enter_ns;
        t.observe(&mut slow, Some(3));
        assert_eq!(fd_path(&mut t, 2, 5), None, "dup2 in the clone's time");
        assert_eq!(fd_path(&mut t, 2, 6), None, "dup2 seen late");
        assert_eq!(
            fd_path(&mut t, 2, 3).as_deref(),
            Some("/a"),
            "before the clone"
        );
        assert_eq!(fd_path(&mut t, 2, 4), None, "dup2 blocked across the fork");
        // It took fd 3 as it entered, before the dup2 that renamed 3 returned: not "/b",
        // which the table held when it returned.
        assert_eq!(fd_path(&mut t, 1, 4), None);
        assert_eq!(
            fd_path(&mut t, 1, 3).as_deref(),
            Some("/b"),
            "the parent's own"
        );
        assert_eq!(fd_path(&mut t, 1, 5).as_deref(), Some("/b"));
        assert_eq!(fd_path(&mut t, 1, 6).as_deref(), Some("/a"));
    }
}
