-- name: latency-by-process
-- description: Calls, errors and time in syscalls per process, most total time first.
-- A process is named by its main thread's last name (after its execve), as `ps` names it,
-- and is one capture's: pids of different hosts are different processes.
-- parameters: limit (default 20)
SELECT capture,
       pid,
       last_value(comm ORDER BY tid = pid, ts_ns) AS comm,
       count(*) AS calls,
       count(errno) AS errors,
       sum(duration_ns) AS total_ns,
       CAST(percentile_cont(duration_ns, 0.99) AS BIGINT) AS p99_ns,
       max(duration_ns) AS max_ns
FROM syscalls
GROUP BY capture, pid
ORDER BY total_ns DESC NULLS LAST, capture, pid
LIMIT ${limit}
