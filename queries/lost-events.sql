-- name: lost-events
-- description: Calls not recorded one by one, by interval and reason: which seconds are incomplete.
-- Each capture's intervals apart: its processes are its own.
-- parameters: none
SELECT capture,
       interval_start,
       interval_end,
       reason,
       sum(calls) AS calls,
       count(DISTINCT pid) AS processes
FROM aggregates
GROUP BY capture, interval_start, interval_end, reason
ORDER BY interval_start, capture, reason
