-- name: slowest-calls
-- description: The slowest individual calls, with what they touched; with record --sched, where each one's time went and what woke it.
-- blocked, runq and oncpu split the duration: off the CPU and not runnable (asleep, waiting
-- for I/O or another thread), runnable but waiting for a CPU, and on a CPU. woken_by is the
-- thread that woke the call last (`comm (tid) in syscall`, with `, softirq` when a softirq on
-- that thread's back did it), or `timer` or `irq` when no thread did. All four are NULL in captures recorded without --sched.
-- blocked_in is the kernel stack where the call blocked longest, and called_from the
-- user-space chain that made the call, both outermost frame first (record --stacks, for
-- calls of at least --stack-min; NULL otherwise).
-- parameters: limit (default 20)
-- target is the path, else the address, else the fd's file: an fstat's empty path
-- (`AT_EMPTY_PATH`) names its file by the fd. The slowest rows are found first and only
-- they are formatted: formatting every row before the sort cost 4-5 times the time.
SELECT ts,
       capture,
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
       user_stack AS called_from
FROM (SELECT *
      FROM syscalls
      WHERE duration_ns IS NOT NULL
      ORDER BY duration_ns DESC, ts, capture, tid
      LIMIT ${limit})
ORDER BY duration_ns DESC, ts, capture, tid
