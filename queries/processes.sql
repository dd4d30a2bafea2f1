-- name: processes
-- description: Process lifecycle: who started whom, when, and how each one ended.
-- parameters: limit (default 100)
SELECT pid,
       ppid,
       comm,
       cmdline,
       start_ts,
       exit_ts,
       exit_code,
       exit_signal,
       (arrow_cast(exit_ts, 'Int64') - arrow_cast(start_ts, 'Int64')) * 1000 AS lifetime_ns
FROM processes
ORDER BY start_ts NULLS FIRST, pid
LIMIT ${limit}
