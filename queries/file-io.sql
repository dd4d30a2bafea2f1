-- name: file-io
-- description: I/O by file: calls, bytes read and written, and time, busiest first.
-- Totals per file and syscall first, then per file: the read/write split is then decided
-- once per (file, syscall) instead of twice a call (on 100M calls, 3.3 s became 2.2 s).
-- `bytes_read` counts sendfile, copy_file_range and splice too: their `fd` is the one read
-- from (`cp` and a web server's static files move their bytes so). The fd they write to
-- is only in arg0 or arg2, with no `fd_path`, so those bytes are in no `bytes_written`.
-- parameters: limit (default 20)
WITH per_syscall AS (
  SELECT fd_path,
         syscall,
         count(*) AS calls,
         sum(bytes) AS bytes,
         sum(duration_ns) AS total_ns,
         max(duration_ns) AS max_ns,
         count(errno) AS errors
  FROM syscalls
  WHERE fd_path LIKE '/%'
  GROUP BY fd_path, syscall
)
SELECT fd_path AS file,
       sum(calls) AS calls,
       sum(CASE WHEN syscall IN ('read', 'pread64', 'readv', 'preadv', 'preadv2', 'sendfile', 'copy_file_range', 'splice') THEN bytes END) AS bytes_read,
       sum(CASE WHEN syscall IN ('write', 'pwrite64', 'writev', 'pwritev', 'pwritev2') THEN bytes END) AS bytes_written,
       sum(total_ns) AS total_ns,
       max(max_ns) AS max_ns,
       sum(errors) AS errors
FROM per_syscall
GROUP BY fd_path
ORDER BY total_ns DESC NULLS LAST, file
LIMIT ${limit}
