//! Which of the processes attached to share an fd table or a working directory, with each
//! other or with a process not traced, from before the recorder attached: no call it sees
//! says so, and kcmp(2) is the only way to ask. What /proc shows of each process's fds is
//! [`fd_table::snapshot`]'s; this adds what the sharing means for naming them.
use crate::follow::{
    fd_table::{self, Snapshot},
    target::ids,
};

type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;

/// Who may share the fd tables and working directories of the processes attached to.
#[derive(Clone, Copy)]
pub enum Sharers {
    /// Only processes that are traced: a command's descendants, or every process.
    Traced,
    /// Any process: `-p` follows the pids given and what they start, not what started
    /// before, so a parent or child made with `CLONE_FILES` or `CLONE_FS` is not followed.
    MayBeUntraced,
}

/// The snapshots of `pids` as tracing starts, with what each shares and with whom.
pub fn snapshots(pids: &[u32], sharers: Sharers) -> Vec<Snapshot> {
    let (files_with, fs_with) = shared_among(pids);
    let outside = match sharers {
        Sharers::MayBeUntraced => shared_outside(pids),
        Sharers::Traced => Default::default(),
    };
    let snapshot = |pid: u32| {
        let mut snap = fd_table::snapshot(pid);
        snap.apart = threads_apart(pid);
        snap.shared_with = (files_with.get(&pid).copied(), fs_with.get(&pid).copied());
        if let Some(&(files, fs)) = outside.get(&pid) {
            snap.apart.0 |= files;
            snap.apart.1 |= fs;
        }
        snap
    };
    let mut snapshots: Vec<_> = pids.iter().map(|&p| snapshot(p)).collect();
    // A target that shares a table with a thread of a target apart is unnamed too.
    let apart: Vec<(u32, (bool, bool))> = snapshots
        .iter()
        .filter(|s| s.apart != (false, false))
        .map(|s| (s.pid, s.apart))
        .collect();
    for (pid, (files, fs)) in apart {
        for snap in snapshots.iter_mut().filter(|s| s.pid != pid) {
            let (shares_files, shares_fs) = shares_a_thread_of(pid, snap.pid);
            snap.apart.0 |= files && shares_files;
            snap.apart.1 |= fs && shares_fs;
        }
    }
    snapshots
}

/// Whether any thread of `pid` has another fd table (first) or working directory (second)
/// than its first thread, as kcmp(2) tells. An `unshare` or a clone apart made before the
/// recorder attached is no call it sees: such a thread's fds were named after the first
/// thread's files (helper-80). Where kcmp cannot tell, they are taken as shared.
fn threads_apart(pid: u32) -> (bool, bool) {
    let mut apart = (false, false);
    for tid in threads(pid).filter(|&tid| tid != pid) {
        apart.0 |= kcmp(pid, tid, KCMP_FILES).is_some_and(|r| r > 0);
        apart.1 |= kcmp(pid, tid, KCMP_FS).is_some_and(|r| r > 0);
    }
    apart
}

/// For each of `targets`, whether a thread of a process not among them shares its fd
/// table (first) or working directory (second), as kcmp(2) tells. Made with `CLONE_FILES`
/// or `CLONE_FS` before `record -p` attached, such a process changes them with calls no
/// one records: a parent's `dup2` left every later write of its child named after the old
/// file (helper-81). Every other thread of the host is looked up among the targets, which
/// are sorted by kcmp's order: two kcmp calls per thread and kind for one target, log2 of
/// their number for many (helper-82 found 22 ms per target beside 10K threads when each
/// target asked every thread). Where kcmp cannot tell, they are taken as not shared.
fn shared_outside(targets: &[u32]) -> HashMap<u32, (bool, bool)> {
    let mut shared: HashMap<u32, (bool, bool)> =
        targets.iter().map(|&pid| (pid, (false, false))).collect();
    let Ok(procs) = ids("/proc") else {
        return shared;
    };
    let by_kind = [KCMP_FILES, KCMP_FS].map(|kind| {
        let mut order: Vec<usize> = (0..targets.len()).collect();
        merge_sort(&mut order, |a, b| {
            kcmp(targets[a], targets[b], kind) == Some(KCMP_LESS)
        });
        (kind, order)
    });
    let others = procs.filter(|p| !targets.contains(p));
    for other in others {
        for tid in threads(other) {
            for (which, (kind, order)) in by_kind.iter().enumerate() {
                for pid in sharing(tid, targets, order, *kind) {
                    let entry = shared.entry(pid).or_default();
                    match which {
                        0 => entry.0 = true,
                        _ => entry.1 = true,
                    }
                }
            }
        }
    }
    shared
}

/// The targets whose `kind` is `tid`'s, found by binary search in `order` (the targets
/// sorted by kcmp's order), with the run of equal ones around the one found.
fn sharing(tid: u32, targets: &[u32], order: &[usize], kind: i32) -> Vec<u32> {
    let (mut lo, mut hi) = (0, order.len());
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match kcmp(tid, targets[order[mid]], kind) {
            Some(0) => {
                let same = |i: usize| kcmp(targets[order[i]], targets[order[mid]], kind) == Some(0);
                let first = (0..mid)
                    .rev()
                    .take_while(|&i| same(i))
                    .last()
                    .unwrap_or(mid);
                let last = (mid + 1..order.len())
                    .take_while(|&i| same(i))
                    .last()
                    .unwrap_or(mid);
                return (first..=last).map(|i| targets[order[i]]).collect();
            }
            Some(KCMP_LESS) => hi = mid,
            Some(_) => lo = mid + 1,
            None => return Vec::new(),
        }
    }
    Vec::new()
}

const KCMP_FILES: i32 = 2;
const KCMP_FS: i32 = 3;

/// kcmp(2) of two threads' `kind`: 0 for the same one, more for two others; `None` where
/// the kernel cannot say (gone, no CONFIG_KCMP, refused).
fn kcmp(a: u32, b: u32, kind: i32) -> Option<i64> {
    // SAFETY: kcmp takes two ids, a kind and two integers, and only compares.
    let r = unsafe { libc::syscall(libc::SYS_kcmp, a as i32, b as i32, kind, 0, 0) };
    (r >= 0).then_some(r)
}

/// The threads of `pid`, as /proc lists them: none where it is gone.
fn threads(pid: u32) -> impl Iterator<Item = u32> {
    ids(format!("/proc/{pid}/task")).into_iter().flatten()
}

/// Whether a thread of `apart` (a process one of whose threads has a table or cwd of its
/// own) shares `other`'s fd table (first) or working directory (second). That thread's
/// calls are recorded under `apart`'s pid, whose table is unnamed: applied there, its
/// `dup2` was lost to `other`, which kept naming the old file (helper-84: the main thread
/// had unshared, and another thread kept the table shared with two other targets).
fn shares_a_thread_of(apart: u32, other: u32) -> (bool, bool) {
    let mut shared = (false, false);
    for tid in threads(apart) {
        shared.0 |= kcmp(tid, other, KCMP_FILES) == Some(0);
        shared.1 |= kcmp(tid, other, KCMP_FS) == Some(0);
    }
    shared
}

/// For each process of `pids` that shares an fd table (first) or a working directory
/// (second) with one before it in `pids`, the first of those. Made with `CLONE_FILES` or
/// `CLONE_FS` before the recorder attached, each one's `dup2` or `chdir` changes the
/// other's; a table apiece named the other's fds after the old file (helper-82). Found
/// by sorting with kcmp(2)'s order, which compares the kernel's objects without showing
/// them: n log n calls, for `record -a`'s every process.
fn shared_among(pids: &[u32]) -> (HashMap<u32, u32>, HashMap<u32, u32>) {
    let groups = |kind: i32| {
        let mut firsts = HashMap::default();
        let mut sorted: Vec<usize> = (0..pids.len()).collect();
        merge_sort(&mut sorted, |a, b| {
            kcmp(pids[a], pids[b], kind) == Some(KCMP_LESS)
        });
        let mut run = 0;
        for i in 1..=sorted.len() {
            let same =
                i < sorted.len() && kcmp(pids[sorted[run]], pids[sorted[i]], kind) == Some(0);
            if same {
                continue;
            }
            if i - run > 1 {
                let members = &sorted[run..i];
                let first = *members.iter().min().expect("a run of two or more");
                for &m in members.iter().filter(|&&m| pids[m] != pids[first]) {
                    firsts.insert(pids[m], pids[first]);
                }
            }
            run = i;
        }
        firsts
    };
    if pids.len() < 2 {
        return (HashMap::default(), HashMap::default());
    }
    (groups(KCMP_FILES), groups(KCMP_FS))
}

/// What kcmp(2) says when the first object sorts before the second.
const KCMP_LESS: i64 = 1;

/// A stable merge sort that never panics, whatever `less` says: kcmp's answers change as
/// processes exit, and the standard sorts may panic on an order that is not total.
fn merge_sort(items: &mut Vec<usize>, less: impl Fn(usize, usize) -> bool) {
    let mut width = 1;
    let mut from = items.clone();
    while width < from.len() {
        let mut to = Vec::with_capacity(from.len());
        for start in (0..from.len()).step_by(2 * width) {
            let mid = (start + width).min(from.len());
            let end = (start + 2 * width).min(from.len());
            let (mut i, mut j) = (start, mid);
            while i < mid && j < end {
                if less(from[j], from[i]) {
                    to.push(from[j]);
                    j += 1;
                } else {
                    to.push(from[i]);
                    i += 1;
                }
            }
            to.extend_from_slice(&from[i..mid]);
            to.extend_from_slice(&from[j..end]);
        }
        from = to;
        width *= 2;
    }
    *items = from;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_threads_of_a_process_that_shares_both_are_not_apart() {
        // This process's own threads share both.
        assert_eq!(threads_apart(std::process::id()), (false, false));
    }
}
