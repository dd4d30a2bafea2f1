-- name: error-bursts
-- description: The seconds with the most failed calls, and an example of each.
-- finding: Error bursts
-- parameters: limit (default 5)
SELECT date_trunc('second', ts) AS second,
       count(*) AS errors,
       min(concat(syscall, ' ', errno, ' ', coalesce(path, addr, fd_path, ''))) AS example
FROM syscalls
WHERE errno IS NOT NULL
GROUP BY 1
ORDER BY errors DESC, second
LIMIT ${limit}
