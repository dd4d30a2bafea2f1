//! Which tasks are recorded (`--comm`, `--cgroup`, trace-all) and the names they carry.
use crate::prelude::*;

#[inline(always)]
pub(crate) fn comm() -> [u8; COMM_LEN] {
    bpf_get_current_comm().unwrap_or([0; COMM_LEN])
}

/// Whether the current task passes `--comm` and `--cgroup`. Asked when a task gets its
/// slot and again at execve (which changes its name), never per call.
#[inline(always)]
pub(crate) fn in_scope() -> bool {
    if global(&FILTER_COMM) != 0 {
        let name = comm();
        if unsafe { COMMS.get(&name) }.is_none() {
            return false;
        }
    }
    let mut cgroup = global_u64(&FILTER_CGROUP_ID);
    if cgroup != 0 {
        let now = CGROUP_NOW.get(CGROUP_NOW_ID).copied().unwrap_or(0);
        if now != 0 {
            cgroup = now;
        }
        let level = global(&FILTER_CGROUP_LEVEL) as i32;
        if unsafe { generated::bpf_get_current_ancestor_cgroup_id(level) } != cgroup {
            return false;
        }
    }
    true
}

/// Whether `THREADS` may hold `tid`'s slot. False only where it surely does not: the mark is
/// set before a slot is added, and cleared only by the thread itself as it dies, after its
/// slot is gone and before its id can be reused. A mark left set where a slot was removed
/// otherwise (a dead thread the recorder removes, the old id of an exec) costs a lookup,
/// never a call: clearing it there could clear a new thread's mark under the same id.
#[inline(always)]
pub(crate) fn may_have_slot(tid: u32) -> bool {
    match TRACED.get(tid / TIDS_PER_PAGE) {
        Some(page) => page.tids[(tid % TIDS_PER_PAGE) as usize] != 0,
        None => true,
    }
}

/// Marks `tid` as one that may have a slot (`on`), or as one that has none. A thread's byte
/// is written by its parent at fork, by itself at exec and exit, and by the recorder when
/// it adds a running thread. Only the dying thread clears it, after which no one sets it
/// before the id is reused; the others all set it. So a plain store of one byte does.
#[inline(always)]
pub(crate) fn mark_slot(tid: u32, on: bool) {
    if let Some(page) = TRACED.get_ptr_mut(tid / TIDS_PER_PAGE) {
        unsafe { (*page).tids[(tid % TIDS_PER_PAGE) as usize] = on as u8 };
    }
}

/// Whether a thread left out by `--cgroup` is in scope now: asked once after each time the
/// cgroup's directory was made anew, so that a service restarted into a new cgroup at the
/// same path is recorded again (helper-88), and after each move of a process between
/// cgroups, so that one moved in (`echo PID > cgroup.procs`) is recorded from then on,
/// not from its next exec. Its fds changed unseen while it was left out.
#[inline(always)]
pub(crate) fn came_into_scope(slot: &mut ThreadSlot) -> bool {
    if !cgroup_changed(slot) {
        return false;
    }
    let flags = scope_flags_after(true);
    if flags & SLOT_IGNORED != 0 {
        return false;
    }
    slot.flags = (slot.flags & !SLOT_IGNORED) | flags;
    true
}

/// Whether a recorded thread has left `--cgroup` now: asked once after each move, so that
/// a process moved out (`echo PID > /sys/fs/cgroup/other/cgroup.procs`) is left out from its
/// next call, not recorded until its next exec. A call it is in keeps its exit.
#[inline(always)]
pub(crate) fn left_scope(slot: &mut ThreadSlot) -> bool {
    if !cgroup_changed(slot) || in_scope() {
        return false;
    }
    slot.flags |= SLOT_IGNORED;
    true
}

/// Whether `--cgroup`'s directory was made anew, or a process moved between cgroups,
/// since the thread last asked; the thread is taken to have asked now. Always false
/// without `--cgroup`, at the cost of one load a call.
#[inline(always)]
fn cgroup_changed(slot: &mut ThreadSlot) -> bool {
    if global_u64(&FILTER_CGROUP_ID) == 0 {
        return false;
    }
    let generation = scope_generation();
    if generation == slot.scope_gen {
        return false;
    }
    slot.scope_gen = generation;
    true
}

/// How many times `--cgroup`'s directory was made anew plus how many moves between
/// cgroups there were: a thread whose `scope_gen` differs asks again at its next call.
#[inline(always)]
pub(crate) fn scope_generation() -> u32 {
    let made_anew = CGROUP_NOW.get(CGROUP_NOW_GEN).copied().unwrap_or(0);
    let moves = CGROUP_NOW.get(CGROUP_NOW_MOVES).copied().unwrap_or(0);
    made_anew.wrapping_add(moves) as u32
}

#[inline(always)]
pub(crate) fn scope_flags() -> u32 {
    if in_scope() { 0 } else { SLOT_IGNORED }
}

/// The scope a thread is decided anew on (at fork, at exec, after `--cgroup`'s directory
/// was made anew), given whether it was left out until now. One left out changed its fds
/// unseen, and a child has its parent's: coming into scope, its fds are marked lost, so
/// that user space does not take the table it kept for it as known (helper-89).
#[inline(always)]
pub(crate) fn scope_flags_after(was_ignored: bool) -> u32 {
    match scope_flags() {
        0 if was_ignored => SLOT_FD_LOST,
        flags => flags,
    }
}

/// Whether the current task's process lifecycle belongs in the capture.
#[inline(always)]
pub(crate) fn followed(tid: u32, tgid: u32) -> bool {
    if global(&TRACE_ALL) != 0 {
        return tgid != global(&SELF_TGID);
    }
    may_have_slot(tid) && THREADS.get_ptr(&tid).is_some()
}

/// The thread's name: asked of the kernel once for a new slot, then taken from renames.
/// Runs in the thread itself, the only writer of `comm`, `seen_gen` and `flags`.
#[inline(always)]
pub(crate) fn slot_comm(slot: &mut ThreadSlot) -> [u8; COMM_LEN] {
    // Read before the name: the renamer stores the name first, then the generation.
    let generation = unsafe { core::ptr::read_volatile(&slot.rename_gen) };
    if generation != slot.seen_gen {
        slot.comm = unsafe { core::ptr::read_volatile(&slot.renamed_to) };
        slot.seen_gen = generation;
        slot.flags |= SLOT_COMM_KNOWN;
    } else if slot.flags & SLOT_COMM_KNOWN == 0 {
        slot.comm = comm();
        slot.flags |= SLOT_COMM_KNOWN;
    }
    slot.comm
}

/// A process was moved to another cgroup (the tracepoint fires once the move is done): the
/// threads `--cgroup` left out ask again, each at its next call. Moves are rare (a service
/// or container starting, an operator's `echo PID > cgroup.procs`), and which one moved
/// where is not needed: a thread that is still outside stays left out. Two moves at once
/// may count as one; the count still changes.
#[tracepoint(category = "cgroup", name = "cgroup_attach_task")]
pub fn cgroup_attach_task(_ctx: TracePointContext) -> u32 {
    if global_u64(&FILTER_CGROUP_ID) == 0 {
        return 0;
    }
    if let Some(moves) = CGROUP_NOW.get_ptr_mut(CGROUP_NOW_MOVES) {
        unsafe {
            core::ptr::write_volatile(moves, core::ptr::read_volatile(moves).wrapping_add(1))
        };
    }
    0
}
