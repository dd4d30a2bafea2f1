-- name: errors
-- description: Failed calls by syscall, errno and process, with an example path or address.
-- A process is one capture's: pids of different hosts are different processes.
-- `calls` counts every failed call, and `counted` how many of them the kernel only counted
-- (in `aggregates`: shorter than `--min-duration`, or lost as detail to a full ring). Those
-- have no example, and their first and last are the bounds of the intervals they were
-- counted in. Without them a `--min-duration` capture read as one without failures.
-- parameters: limit (default 50)
WITH recorded AS (
  SELECT capture,
         syscall,
         errno,
         pid,
         max(comm) AS comm,
         count(*) AS calls,
         CAST(0 AS BIGINT) AS counted,
         min(coalesce(path, addr, fd_path)) AS example,
         min(ts) AS first,
         max(ts) AS last
  FROM syscalls
  WHERE errno IS NOT NULL
  GROUP BY capture, syscall, errno, pid
), counted AS (
  -- Grouped apart and added after: the recorded rows' grouping stays as fast as it was.
  SELECT a.capture,
         a.syscall,
         a.errno,
         a.pid,
         max(p.comm) AS comm,
         sum(a.calls) AS calls,
         sum(a.calls) AS counted,
         CAST(NULL AS VARCHAR) AS example,
         min(a.interval_start) AS first,
         max(a.interval_end) AS last
  FROM aggregates a
  -- One name per process: a pid with two rows (reused, or exec'd) must not count twice.
  LEFT JOIN (SELECT capture, pid, max(comm) AS comm FROM processes GROUP BY capture, pid) p
    ON p.capture = a.capture AND p.pid = a.pid
  WHERE a.errno IS NOT NULL
  GROUP BY a.capture, a.syscall, a.errno, a.pid
)
SELECT capture,
       syscall,
       errno,
       pid,
       max(comm) AS comm,
       sum(calls) AS calls,
       sum(counted) AS counted,
       min(example) AS example,
       min(first) AS first,
       max(last) AS last
FROM (SELECT * FROM recorded UNION ALL SELECT * FROM counted)
GROUP BY capture, syscall, errno, pid
ORDER BY calls DESC, syscall, errno, capture, pid
LIMIT ${limit}
