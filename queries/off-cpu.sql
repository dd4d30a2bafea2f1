-- name: off-cpu
-- description: Where threads waited inside their calls, and who woke them: time blocked and time waiting for a CPU, per thread, syscall, waker and (with record --stacks) kernel and user stack (needs record --sched).
-- finding: Why slow: time off the CPU, and who woke it
-- needs: sched
-- blocked is time off the CPU and not runnable (asleep, waiting for I/O, a lock or another
-- thread); runq is time runnable but waiting for a CPU, which is CPU starvation. woken_by
-- is the thread that ended each blocked stretch (`comm (tid) in syscall`, with `, softirq`
-- when a softirq on that thread's back did it), `timer` when a sleep or timeout ended it,
-- `irq` when a device did. A call counts under the waker of its last wakeup. idle_wait is
-- the `is_waiting` rule of the `waiting` query (epoll_wait, accept, sleeps, futex waits...):
-- a thread idle for want of work, not one slowed down. Those rows come after the others,
-- so the top rows are waits inside work: a read of a slow disk, a CPU the thread could
-- not get. blocked_in is the kernel stack where the calls blocked longest and called_from
-- the user-space chain that made them (record --stacks, for calls of at least --stack-min),
-- so that waits in different places, or reached from different code, are told apart; NULL
-- without it.
-- parameters: limit (default 20)
WITH waits AS (
    SELECT capture,
           pid,
           tid,
           comm,
           ts_ns,
           syscall,
           blocked_ns,
           runq_ns,
           is_waiting(syscall, arg1, fd_path, duration_ns) AS idle_wait,
           woken_by(waker_comm, waker_tid, waker_syscall, waker_kind) AS woken_by,
           kernel_stack AS blocked_in,
           user_stack AS called_from
    FROM syscalls
    WHERE blocked_ns > 0 OR runq_ns > 0
)
SELECT capture,
       pid,
       tid,
       last_value(comm ORDER BY ts_ns) AS comm,
       syscall,
       woken_by,
       blocked_in,
       called_from,
       idle_wait,
       count(*) AS calls,
       sum(blocked_ns + runq_ns) AS off_cpu_ns,
       sum(blocked_ns) AS blocked_ns,
       fmt_duration(sum(blocked_ns)) AS blocked,
       sum(runq_ns) AS runq_ns,
       fmt_duration(sum(runq_ns)) AS runq,
       fmt_duration(max(blocked_ns + runq_ns)) AS longest
FROM waits
GROUP BY capture, pid, tid, syscall, woken_by, blocked_in, called_from, idle_wait
ORDER BY idle_wait, off_cpu_ns DESC, capture, pid, tid, syscall, woken_by, blocked_in, called_from
LIMIT ${limit}
