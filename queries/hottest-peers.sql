-- name: hottest-peers
-- description: Network peers by time spent in calls on sockets connected to them.
-- finding: Hottest peers
-- Time waiting for a peer to speak (`is_waiting`: accept, blocked reads, polls) is left
-- out, as in the other findings: it is the peer's silence, not work. So is a socket still
-- named by the address it was bound to (a listener, an unconnected UDP server: the same
-- process and fd as the bind, from the bind until that fd is connected, closed or made
-- anew), or by an address of every interface (0.0.0.0, ::): it names no peer. A socket
-- of the same process connected to that address is a peer's, on that fd number too.
-- parameters: limit (default 5)
WITH marks AS (
  -- What last gave a process's fd number its meaning, in time. A bind names the socket by
  -- its own address (a unix path as the fd table names it, `unix:/run/x.sock`), until the
  -- next of these on that number, itself included: a connect, a close, or a call that made
  -- the number anew. A bind's own `fd_path` is that name, as the recorder gave it to the
  -- socket (a unix path as `unix:PATH`, a relative one too), so it is not derived again here.
  SELECT capture, pid, fd, ts,
         syscall = 'bind' AND errno IS NULL AS bound,
         fd_path AS name
  FROM syscalls
  WHERE syscall IN ('bind', 'connect', 'close') AND fd IS NOT NULL
  UNION ALL
  SELECT capture, pid, CAST(ret AS INT) AS fd, ts, false AS bound, CAST(NULL AS VARCHAR) AS name
  FROM syscalls
  WHERE ret >= 0
    AND (syscall IN ('socket', 'accept', 'accept4', 'dup', 'dup2', 'dup3')
         OR (syscall = 'fcntl' AND arg1 IN (0, 1030)))
), bound AS (
  SELECT capture, pid, fd, name, ts AS since, until
  FROM (SELECT *, lead(ts) OVER (PARTITION BY capture, pid, fd ORDER BY ts) AS until
        FROM marks)
  WHERE bound AND name IS NOT NULL
)
SELECT s.fd_path AS peer,
       count(*) AS calls,
       fmt_bytes(sum(s.bytes)) AS bytes,
       sum(s.duration_ns) AS total_ns,
       fmt_duration(sum(s.duration_ns)) AS total
FROM syscalls s
LEFT ANTI JOIN bound b
  ON s.capture = b.capture AND s.pid = b.pid AND s.fd = b.fd AND s.fd_path = b.name
     AND s.ts >= b.since AND (b.until IS NULL OR s.ts <= b.until)
WHERE s.fd_path LIKE '%:%'
  AND s.fd_path NOT LIKE '/%'
  AND s.fd_path NOT LIKE 'socket:%'
  AND s.fd_path NOT LIKE 'pipe:%'
  AND s.fd_path NOT LIKE 'fifo:%'
  AND s.fd_path NOT LIKE 'anon_inode:%'
  AND s.fd_path NOT LIKE '0.0.0.0:%'
  AND s.fd_path NOT LIKE '[::]:%'
  AND NOT is_waiting(s.syscall, s.arg1, s.fd_path, s.duration_ns)
GROUP BY 1
ORDER BY total_ns DESC NULLS LAST, 1
LIMIT ${limit}
