-- name: network
-- description: Connects by address: attempts, failures by errno, and the slowest.
-- parameters: limit (default 20)
SELECT addr,
       count(*) AS connects,
       count(errno) AS failures,
       min(errno) AS an_errno,
       max(duration_ns) AS max_ns,
       sum(duration_ns) AS total_ns
FROM syscalls
WHERE syscall = 'connect' AND addr IS NOT NULL
GROUP BY addr
ORDER BY failures DESC, connects DESC, addr
LIMIT ${limit}
