-- name: file-io
-- description: I/O by file: calls, bytes read and written, and time, busiest first.
-- parameters: limit (default 20)
SELECT fd_path AS file,
       count(*) AS calls,
       sum(CASE WHEN syscall IN ('read', 'pread64', 'readv', 'preadv', 'preadv2') THEN bytes END) AS bytes_read,
       sum(CASE WHEN syscall IN ('write', 'pwrite64', 'writev', 'pwritev', 'pwritev2') THEN bytes END) AS bytes_written,
       sum(duration_ns) AS total_ns,
       max(duration_ns) AS max_ns,
       count(errno) AS errors
FROM syscalls
WHERE fd_path LIKE '/%'
GROUP BY fd_path
ORDER BY total_ns DESC NULLS LAST, file
LIMIT ${limit}
