-- name: why-slow
-- description: The slowest calls, each with where its time went, what woke it and the code that made it: calls inside work of at least 1 ms first, then the rest, idle waits among them (needs record --sched; the stacks need record --stacks).
-- finding: Why slow: the worst calls
-- needs: sched
-- The report's section for its worst calls. blocked, runq and oncpu split each call's
-- duration: off the CPU and not runnable (asleep, waiting for I/O, a lock or another
-- thread), runnable but waiting for a CPU, and on a CPU. woken_by is the thread that woke
-- it last (`comm (tid) in syscall`), or `timer` or `irq`. blocked_in is the kernel stack
-- where it blocked longest and called_from the user-space chain that made the call, both
-- outermost frame first (record --stacks, for calls of at least --stack-min; with
-- `analyze --debug-dir`, frames the host could not name are named from debug files).
-- idle_wait is the `is_waiting` rule of the `waiting` query (epoll_wait, accept, sleeps, a
-- blocked read of a pipe or socket...). Calls inside work that took at least 1 ms (the
-- default --stack-min) come first, so that a server's idle epoll_wait does not hide the
-- slow read of a disk; then every other call, slowest first.
-- parameters: limit (default 10)
-- target is the path, else the address, else the fd's file (an fstat's empty path names its
-- file by the fd). Only the rows kept are formatted.
SELECT capture,
       ts,
       pid,
       tid,
       comm,
       syscall,
       duration_ns,
       fmt_duration(duration_ns) AS duration,
       errno,
       coalesce(nullif(path, ''), addr, fd_path) AS target,
       fmt_duration(blocked_ns) AS blocked,
       fmt_duration(runq_ns) AS runq,
       fmt_duration(oncpu_ns) AS oncpu,
       woken_by(waker_comm, waker_tid, waker_syscall, waker_kind) AS woken_by,
       kernel_stack AS blocked_in,
       user_stack AS called_from,
       idle_wait
FROM (SELECT *
      FROM (SELECT *, is_waiting(syscall, arg1, fd_path, duration_ns) AS idle_wait
            FROM syscalls
            WHERE duration_ns IS NOT NULL AND oncpu_ns IS NOT NULL)
      ORDER BY CASE WHEN NOT idle_wait AND duration_ns >= 1000000 THEN 0 ELSE 1 END,
               duration_ns DESC, ts, tid
      LIMIT ${limit})
ORDER BY CASE WHEN NOT idle_wait AND duration_ns >= 1000000 THEN 0 ELSE 1 END,
         duration_ns DESC, ts, tid
