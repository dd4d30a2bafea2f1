-- name: hottest-peers
-- description: Network peers by time spent in calls on sockets connected to them.
-- finding: Hottest peers
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
GROUP BY 1
ORDER BY total_ns DESC NULLS LAST, 1
LIMIT ${limit}
