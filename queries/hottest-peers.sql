-- name: hottest-peers
-- description: Network peers by time spent in calls on sockets connected to them.
-- finding: Hottest peers
-- Time waiting for a peer to speak (`is_waiting`: accept, blocked reads, polls) is left
-- out, as in the other findings: it is the peer's silence, not work. So is a socket only
-- bound to an address of every interface (0.0.0.0, ::), a listener's or an unconnected
-- sender's own address, which names no peer.
-- parameters: limit (default 5)
SELECT fd_path AS peer,
       count(*) AS calls,
       fmt_bytes(sum(bytes)) AS bytes,
       sum(duration_ns) AS total_ns,
       fmt_duration(sum(duration_ns)) AS total
FROM syscalls
WHERE fd_path LIKE '%:%'
  AND fd_path NOT LIKE '/%'
  AND fd_path NOT LIKE 'socket:%'
  AND fd_path NOT LIKE 'pipe:%'
  AND fd_path NOT LIKE 'anon_inode:%'
  AND fd_path NOT LIKE '0.0.0.0:%'
  AND fd_path NOT LIKE '[::]:%'
  AND NOT is_waiting(syscall, arg1, fd_path, duration_ns)
GROUP BY 1
ORDER BY total_ns DESC NULLS LAST, 1
LIMIT ${limit}
