-- name: network
-- description: Connects by address: attempts, failures by errno, non-blocking connects still in progress, and the slowest.
-- parameters: limit (default 20)
-- A non-blocking connect (curl, Go, Node, nginx, Java NIO) returns EINPROGRESS at once.
-- Its outcome comes later: through getsockopt(SO_ERROR), which a capture does not hold, or
-- through another connect on the same fd, which returns EALREADY while it is pending, 0
-- once it succeeded and the errno (ECONNREFUSED, ETIMEDOUT) once it failed. So an attempt
-- is a connect with the connects that follow it on that process's fd number while it was
-- pending, until a close or a call that makes the number anew: `connects` counts
-- attempts, not calls, and each attempt is judged by its last connect. One that ended
-- pending is in `in_progress`, whether it then succeeded or was refused; EALREADY and
-- EISCONN are never failures. A connect on another fd of the same socket (a dup, a child
-- after fork) starts an attempt of its own.
WITH marks AS (
  SELECT capture, pid, fd, ts, syscall, addr, errno, duration_ns
  FROM syscalls
  WHERE (syscall = 'connect' AND addr IS NOT NULL) OR (syscall = 'close' AND fd IS NOT NULL)
  UNION ALL
  -- A call that made the fd number anew ends an attempt on it as a close does: under
  -- `-e %network` or `--failed` the close is not in the capture.
  SELECT capture, pid, CAST(ret AS INT) AS fd, ts, 'made anew' AS syscall,
         CAST(NULL AS VARCHAR) AS addr, CAST(NULL AS VARCHAR) AS errno,
         CAST(NULL AS BIGINT) AS duration_ns
  FROM syscalls
  WHERE ret >= 0
    AND (syscall IN ('socket', 'accept', 'accept4', 'dup', 'dup2', 'dup3')
         OR (syscall = 'fcntl' AND arg1 IN (0, 1030)))
), calls AS (
  SELECT *,
         lag(syscall) OVER w AS before,
         lag(errno) OVER w AS before_errno,
         lead(syscall) OVER w AS after,
         lead(errno) OVER w AS after_errno
  FROM marks
  WINDOW w AS (PARTITION BY capture, pid, fd ORDER BY ts)
), connects AS (
  SELECT addr, errno, duration_ns,
         coalesce(errno IN ('EINPROGRESS', 'EALREADY'), false) AS pending,
         -- EINPROGRESS always begins an attempt: one already pending answers EALREADY.
         coalesce(errno IN ('EALREADY', 'EISCONN')
                  OR ((errno IS DISTINCT FROM 'EINPROGRESS') AND (before = 'connect')
                      AND before_errno IN ('EINPROGRESS', 'EALREADY')), false) AS goes_on,
         (after = 'connect') AND (after_errno IS DISTINCT FROM 'EINPROGRESS') AS followed
  FROM calls
  WHERE syscall = 'connect'
), judged AS (
  -- An attempt's last connect: one not followed by a connect that goes on with it.
  SELECT *, pending AND coalesce(followed, false) AS continued
  FROM connects
)
SELECT addr,
       count(*) FILTER (WHERE NOT goes_on) AS connects,
       count(*) FILTER (WHERE NOT continued AND NOT pending AND errno IS NOT NULL AND errno <> 'EISCONN') AS failures,
       min(errno) FILTER (WHERE NOT continued AND NOT pending AND errno <> 'EISCONN') AS an_errno,
       count(*) FILTER (WHERE NOT continued AND pending) AS in_progress,
       max(duration_ns) AS max_ns,
       sum(duration_ns) AS total_ns
FROM judged
GROUP BY addr
ORDER BY failures DESC, connects DESC, addr
LIMIT ${limit}
