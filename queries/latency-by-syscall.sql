-- name: latency-by-syscall
-- description: Calls, errors and latency per syscall (recorded calls), most total time first.
-- parameters: limit (default 20)
WITH per AS (
  SELECT syscall,
         count(*) AS calls,
         count(errno) AS errors,
         sum(duration_ns) AS total_ns,
         CAST(avg(duration_ns) AS BIGINT) AS avg_ns,
         latency_percentiles(duration_ns) AS q,
         max(duration_ns) AS max_ns
  FROM syscalls
  GROUP BY syscall
)
SELECT syscall, calls, errors, total_ns, avg_ns,
       get_field(q, 'p50') AS p50_ns,
       get_field(q, 'p99') AS p99_ns,
       max_ns
FROM per
ORDER BY total_ns DESC NULLS LAST, syscall
LIMIT ${limit}
