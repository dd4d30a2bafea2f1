-- name: most-time-waiting
-- description: Calls that waited for an event (a child, a ready fd, a timer, a lock, a peer): where the threads were idle, apart from the work.
-- finding: Most time waiting
-- parameters: limit (default 5)
SELECT syscall,
       count(*) AS calls,
       sum(duration_ns) AS total_ns,
       fmt_duration(sum(duration_ns)) AS total
FROM syscalls
WHERE is_waiting(syscall, arg1, fd_path, duration_ns)
GROUP BY syscall
ORDER BY total_ns DESC NULLS LAST, syscall
LIMIT ${limit}
