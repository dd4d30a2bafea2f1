-- name: timeline
-- description: Per second: calls, errors, p99 latency, and calls lost as detail.
-- `calls` and `errors` are every call and every failure, as `summary` counts them: those
-- recorded one by one, and those the kernel only counted, by request (shorter than
-- `--min-duration`, or successes left out by `--failed`) or because their detail was lost
-- (`lost`, of the calls). `p99_ns` is over the calls recorded one by one. The kernel counts
-- in intervals of about a second that need not start on a whole second; each interval's
-- counts are shown in the second that holds its middle, not split
-- (that would invent when within it the calls came).
-- parameters: none
WITH recorded AS (
  SELECT date_trunc('second', ts) AS second,
         count(*) AS calls,
         count(errno) AS errors,
         CAST(percentile_cont(duration_ns, 0.99) AS BIGINT) AS p99_ns
  FROM syscalls
  GROUP BY 1
), counted AS (
  SELECT date_trunc('second', arrow_cast(
             (arrow_cast(interval_start, 'Int64') + arrow_cast(interval_end, 'Int64')) / 2,
             'Timestamp(Microsecond, Some("UTC"))')) AS second,
         sum(calls) AS calls,
         sum(CASE WHEN errno IS NOT NULL THEN calls END) AS errors,
         sum(CASE WHEN reason IN ('ring_full', 'thread_table_full') THEN calls END) AS lost
  FROM aggregates
  GROUP BY 1
)
SELECT coalesce(r.second, c.second) AS second,
       coalesce(r.calls, 0) + coalesce(c.calls, 0) AS calls,
       coalesce(r.errors, 0) + coalesce(c.errors, 0) AS errors,
       r.p99_ns,
       coalesce(c.lost, 0) AS lost
FROM recorded r FULL OUTER JOIN counted c ON r.second = c.second
ORDER BY second
