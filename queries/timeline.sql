-- name: timeline
-- description: Per second: calls, errors, p99 latency, and calls lost as detail.
-- The kernel counts lost calls in intervals of about a second that need not start on a
-- whole second; each interval's count is shown in the second it began, not split (that
-- would invent when within it the calls came).
-- parameters: none
WITH recorded AS (
  SELECT date_trunc('second', ts) AS second,
         count(*) AS calls,
         count(errno) AS errors,
         CAST(percentile_cont(duration_ns, 0.99) AS BIGINT) AS p99_ns
  FROM syscalls
  GROUP BY 1
), lost AS (
  SELECT date_trunc('second', interval_start) AS second, sum(calls) AS lost
  FROM aggregates
  WHERE reason IN ('ring_full', 'thread_table_full')
  GROUP BY 1
)
SELECT coalesce(r.second, l.second) AS second,
       coalesce(r.calls, 0) AS calls,
       coalesce(r.errors, 0) AS errors,
       r.p99_ns,
       coalesce(l.lost, 0) AS lost
FROM recorded r FULL OUTER JOIN lost l ON r.second = l.second
ORDER BY second
