-- name: lost-events
-- description: Calls not recorded one by one, by interval and reason: which seconds are incomplete.
-- parameters: none
SELECT interval_start,
       interval_end,
       reason,
       sum(calls) AS calls,
       count(DISTINCT pid) AS processes
FROM aggregates
GROUP BY interval_start, interval_end, reason
ORDER BY interval_start, reason
