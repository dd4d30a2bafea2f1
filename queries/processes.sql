-- name: processes
-- description: Process lifecycle: who started whom, when, and how each one ended.
-- The capture tells apart processes of different hosts that have the same pid.
-- parameters: limit (default 100)
SELECT capture,
       pid,
       ppid,
       comm,
       cmdline,
       start_ts,
       exit_ts,
       exit_code,
       exit_signal,
       (arrow_cast(exit_ts, 'Int64') - arrow_cast(start_ts, 'Int64')) * 1000 AS lifetime_ns
FROM processes
ORDER BY start_ts NULLS FIRST, capture, pid
LIMIT ${limit}
