-- name: waiting
-- description: Per process: time in calls that did work apart from time in calls that waited for an event.
-- Waiting is the `is_waiting(syscall, arg1, fd_path, duration_ns)` rule that the report
-- uses too: wait4, epoll_wait, poll, select, sleeps (and the restart_syscall that ends
-- one a stop interrupted), accept, futex waits, and reads of a pipe, FIFO, socket or eventfd
-- that blocked 1 ms or more. A process that is mostly waiting is
-- idle, not slow; the work columns are what it spent doing something.
-- parameters: limit (default 20)
SELECT capture,
       pid,
       last_value(comm ORDER BY tid = pid, ts_ns) AS comm,
       count(*) FILTER (WHERE NOT is_waiting(syscall, arg1, fd_path, duration_ns)) AS work_calls,
       sum(duration_ns) FILTER (WHERE NOT is_waiting(syscall, arg1, fd_path, duration_ns)) AS work_ns,
       count(*) FILTER (WHERE is_waiting(syscall, arg1, fd_path, duration_ns)) AS wait_calls,
       sum(duration_ns) FILTER (WHERE is_waiting(syscall, arg1, fd_path, duration_ns)) AS wait_ns
FROM syscalls
GROUP BY capture, pid
ORDER BY work_ns DESC NULLS LAST, capture, pid
LIMIT ${limit}
