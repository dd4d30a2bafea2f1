-- name: network
-- description: Connects by address: attempts, failures by errno, non-blocking connects still in progress, and the slowest.
-- parameters: limit (default 20)
-- A non-blocking connect (curl, Go, Node, nginx, Java NIO) returns EINPROGRESS at once and
-- learns its outcome later through getsockopt(SO_ERROR), which a capture does not hold: it
-- is counted in in_progress, not as a failure, whether it then succeeded or was refused.
SELECT addr,
       count(*) AS connects,
       count(CASE WHEN errno <> 'EINPROGRESS' THEN 1 END) AS failures,
       min(CASE WHEN errno <> 'EINPROGRESS' THEN errno END) AS an_errno,
       count(CASE WHEN errno = 'EINPROGRESS' THEN 1 END) AS in_progress,
       max(duration_ns) AS max_ns,
       sum(duration_ns) AS total_ns
FROM syscalls
WHERE syscall = 'connect' AND addr IS NOT NULL
GROUP BY addr
ORDER BY failures DESC, connects DESC, addr
LIMIT ${limit}
