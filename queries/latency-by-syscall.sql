-- name: latency-by-syscall
-- description: Calls, errors and latency per syscall (recorded calls), most total time first.
-- parameters: limit (default 20)
SELECT syscall,
       count(*) AS calls,
       count(errno) AS errors,
       sum(duration_ns) AS total_ns,
       CAST(avg(duration_ns) AS BIGINT) AS avg_ns,
       CAST(percentile_cont(duration_ns, 0.5) AS BIGINT) AS p50_ns,
       CAST(percentile_cont(duration_ns, 0.99) AS BIGINT) AS p99_ns,
       max(duration_ns) AS max_ns
FROM syscalls
GROUP BY syscall
ORDER BY total_ns DESC NULLS LAST
LIMIT ${limit}
