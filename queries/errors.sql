-- name: errors
-- description: Failed calls by syscall, errno and process, with an example path or address.
-- A process is one capture's: pids of different hosts are different processes.
-- parameters: limit (default 50)
SELECT capture,
       syscall,
       errno,
       pid,
       max(comm) AS comm,
       count(*) AS calls,
       min(coalesce(path, addr, fd_path)) AS example,
       min(ts) AS first,
       max(ts) AS last
FROM syscalls
WHERE errno IS NOT NULL
GROUP BY capture, syscall, errno, pid
ORDER BY calls DESC, syscall, errno, capture, pid
LIMIT ${limit}
