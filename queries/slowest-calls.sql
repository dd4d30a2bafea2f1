-- name: slowest-calls
-- description: The slowest individual calls, with what they touched.
-- parameters: limit (default 20)
SELECT ts,
       pid,
       tid,
       comm,
       syscall,
       duration_ns,
       fmt_duration(duration_ns) AS duration,
       errno,
       coalesce(path, addr, fd_path) AS target
FROM syscalls
WHERE duration_ns IS NOT NULL
ORDER BY duration_ns DESC, ts, tid
LIMIT ${limit}
