-- name: hottest-files
-- description: Files by time spent in calls on them.
-- finding: Hottest files
-- parameters: limit (default 5)
SELECT fd_path AS file,
       count(*) AS calls,
       fmt_bytes(sum(bytes)) AS bytes,
       sum(duration_ns) AS total_ns,
       fmt_duration(sum(duration_ns)) AS total
FROM syscalls
WHERE fd_path LIKE '/%'
GROUP BY 1
ORDER BY total_ns DESC NULLS LAST, 1
LIMIT ${limit}
