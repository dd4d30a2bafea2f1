-- name: hottest-peers
-- description: Network peers by time spent in calls on sockets connected to them.
-- finding: Hottest peers
-- Time waiting for a peer to speak (`is_waiting`: accept, blocked reads, polls) is left
-- out, as in the other findings: it is the peer's silence, not work. So is a socket still
-- named by the address it was bound to (a listener, an unconnected UDP server: the same
-- process and fd as the bind), or by an address of every interface (0.0.0.0, ::): it names
-- no peer. A socket of the same process connected to that address is a peer's.
-- parameters: limit (default 5)
WITH bound AS (
  SELECT DISTINCT capture, pid, fd, addr
  FROM syscalls
  WHERE syscall = 'bind' AND addr IS NOT NULL
)
SELECT s.fd_path AS peer,
       count(*) AS calls,
       fmt_bytes(sum(s.bytes)) AS bytes,
       sum(s.duration_ns) AS total_ns,
       fmt_duration(sum(s.duration_ns)) AS total
FROM syscalls s
LEFT ANTI JOIN bound b
  ON s.capture = b.capture AND s.pid = b.pid AND s.fd = b.fd AND s.fd_path = b.addr
WHERE s.fd_path LIKE '%:%'
  AND s.fd_path NOT LIKE '/%'
  AND s.fd_path NOT LIKE 'socket:%'
  AND s.fd_path NOT LIKE 'pipe:%'
  AND s.fd_path NOT LIKE 'anon_inode:%'
  AND s.fd_path NOT LIKE '0.0.0.0:%'
  AND s.fd_path NOT LIKE '[::]:%'
  AND NOT is_waiting(s.syscall, s.arg1, s.fd_path, s.duration_ns)
GROUP BY 1
ORDER BY total_ns DESC NULLS LAST, 1
LIMIT ${limit}
