-- name: error-bursts
-- description: The seconds with the most failed calls, and an example of each.
-- finding: Error bursts
-- The example is the second's most frequent failure (syscall and errno, most calls first),
-- with the smallest path or address it failed on (a sample, not the earliest). Failures
-- the kernel only counted (shorter than `--min-duration`, or lost as detail) count in the
-- second that holds the middle of their interval (about a second long, it seldom starts on
-- a whole one), and have no path or address.
-- parameters: limit (default 5)
WITH kinds AS (
  SELECT second, syscall, errno, sum(calls) AS calls, min(target) AS target
  FROM (
    SELECT date_trunc('second', ts) AS second,
           syscall,
           errno,
           count(*) AS calls,
           min(coalesce(path, addr, fd_path)) AS target
    FROM syscalls
    WHERE errno IS NOT NULL
    GROUP BY 1, 2, 3
    UNION ALL
    SELECT date_trunc('second', arrow_cast(
               (arrow_cast(interval_start, 'Int64') + arrow_cast(interval_end, 'Int64')) / 2,
               'Timestamp(Microsecond, Some("UTC"))')) AS second,
           syscall,
           errno,
           sum(calls) AS calls,
           CAST(NULL AS VARCHAR) AS target
    FROM aggregates
    WHERE errno IS NOT NULL
    GROUP BY 1, 2, 3
  )
  GROUP BY 1, 2, 3
), ranked AS (
  SELECT second,
         sum(calls) OVER (PARTITION BY second) AS errors,
         concat_ws(' ', syscall, errno, target) AS example,
         row_number() OVER (PARTITION BY second ORDER BY calls DESC, syscall, errno) AS rank
  FROM kinds
)
SELECT second, errors, example
FROM ranked
WHERE rank = 1
ORDER BY errors DESC, second
LIMIT ${limit}
