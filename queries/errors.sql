-- name: errors
-- description: Failed calls by syscall, errno and process, with an example path or address.
-- parameters: limit (default 50)
SELECT syscall,
       errno,
       pid,
       max(comm) AS comm,
       count(*) AS calls,
       min(coalesce(path, addr, fd_path)) AS example,
       min(ts) AS first,
       max(ts) AS last
FROM syscalls
WHERE errno IS NOT NULL
GROUP BY syscall, errno, pid
ORDER BY calls DESC, syscall, errno, pid
LIMIT ${limit}
