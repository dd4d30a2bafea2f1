-- name: most-time-working
-- description: Syscalls that did work and took the most time in total; `time_pct` is their share of all time in calls that did work.
-- finding: Most time working
-- parameters: limit (default 5)
WITH work AS (SELECT * FROM syscalls
              WHERE NOT is_waiting(syscall, arg1, fd_path, duration_ns))
SELECT syscall,
       count(*) AS calls,
       sum(duration_ns) AS total_ns,
       fmt_duration(sum(duration_ns)) AS total,
       -- The total of all groups by a window, not a scalar subquery: a Ballista cluster
       -- cannot plan a scalar subquery.
       round(100.0 * sum(duration_ns) / sum(sum(duration_ns)) OVER (), 1) AS time_pct
FROM work
GROUP BY syscall
ORDER BY total_ns DESC NULLS LAST, syscall
LIMIT ${limit}
