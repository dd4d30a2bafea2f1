//! The scheduling priority of the recorder's two busy threads: the capture loop, which
//! empties the staging areas, and the writer, which takes what it hands on.
//!
//! At the same priority as the traced processes, a recorder that shares its CPUs with them
//! lost calls in bursts: `record -p` on two getppid loops offering 3M calls/s on this
//! 2-CPU VM lost 29,644 and 70,239 calls over 60 s, and none in two runs with its threads
//! ten steps up (BENCHMARKS.md, "Zero loss for 60 s"). The loops issued as many calls
//! either way: the threads take no more CPU than the calls need, only sooner, before the
//! areas fill. Each thread raises itself, after the traced command is started, so the
//! command keeps the priority `record` was started with.

/// How many nice steps above the priority `record` was started with.
pub const STEPS: i32 = 10;

/// Raises the calling thread by [`STEPS`], to at most -20. Refused without CAP_SYS_NICE
/// (a user recording without root): the thread then runs as it was, with the loss still
/// counted.
pub fn raise_this_thread() {
    // SAFETY: plain system calls on the calling thread (who = 0 names it on Linux).
    unsafe {
        // -1 is a valid priority too, so errno tells a failure apart; a failed read
        // leaves the thread as it is.
        *libc::__errno_location() = 0;
        let now = libc::getpriority(libc::PRIO_PROCESS, 0);
        if now == -1 && *libc::__errno_location() != 0 {
            return;
        }
        libc::setpriority(libc::PRIO_PROCESS, 0, (now - STEPS).max(-20));
    }
}
