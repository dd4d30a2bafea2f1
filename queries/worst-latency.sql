-- name: worst-latency
-- description: Syscalls that did work (not waiting, see `is_waiting`) with the highest 99th-percentile latency (at least 5 calls).
-- finding: Worst latency (p99)
-- The report's first finding. Calls that wait for an event (epoll_wait, wait4, sleeps) are
-- left out: their latency is how long nothing happened, which crowds out the work.
-- parameters: limit (default 5)
SELECT syscall,
       count(*) AS calls,
       CAST(percentile_cont(duration_ns, 0.99) AS BIGINT) AS p99_ns,
       fmt_duration(CAST(percentile_cont(duration_ns, 0.99) AS BIGINT)) AS p99,
       fmt_duration(max(duration_ns)) AS max
FROM syscalls
WHERE duration_ns IS NOT NULL
  AND NOT is_waiting(syscall, arg1, fd_path, duration_ns)
GROUP BY syscall
HAVING count(*) >= 5
ORDER BY p99_ns DESC, syscall
LIMIT ${limit}
