"""Times DuckDB (the pip package) on the same questions `analyze` answers, over the same
files: the independent yardstick for the analyzer's speed.

    python3 bench/duckdb_times.py CAPTURE [ROUNDS]

Prints one line per query: name and median seconds.
"""
import statistics
import sys
import time

import duckdb


def _src(cap):
    return f"read_parquet('{cap}/syscalls/*.parquet')"


_SQL = {
    "summary": """
        SELECT syscall, count(*) AS calls, count(errno) AS errors, sum(duration_ns) AS total_ns,
               CAST(avg(duration_ns) AS BIGINT) AS avg_ns,
               quantile_cont(duration_ns, 0.5) AS p50_ns, quantile_cont(duration_ns, 0.9) AS p90_ns,
               quantile_cont(duration_ns, 0.99) AS p99_ns, max(duration_ns) AS max_ns,
               round(100.0 * sum(duration_ns) / sum(sum(duration_ns)) OVER (), 2) AS time_pct
        FROM {src} GROUP BY syscall ORDER BY total_ns DESC""",
    "latency-by-syscall": """
        SELECT syscall, count(*) AS calls, count(errno) AS errors, sum(duration_ns) AS total_ns,
               CAST(avg(duration_ns) AS BIGINT) AS avg_ns, quantile_cont(duration_ns, 0.5) AS p50_ns,
               quantile_cont(duration_ns, 0.99) AS p99_ns, max(duration_ns) AS max_ns
        FROM {src} GROUP BY syscall ORDER BY total_ns DESC NULLS LAST LIMIT 20""",
    "errors": """
        SELECT syscall, errno, pid, max(comm) AS comm, count(*) AS calls,
               min(coalesce(path, addr, fd_path)) AS example, min(ts) AS first, max(ts) AS last
        FROM {src} WHERE errno IS NOT NULL GROUP BY syscall, errno, pid
        ORDER BY calls DESC LIMIT 50""",
    "file-io": """
        SELECT fd_path AS file, count(*) AS calls,
               sum(CASE WHEN syscall IN ('read','pread64','readv','preadv','preadv2') THEN bytes END) AS bytes_read,
               sum(CASE WHEN syscall IN ('write','pwrite64','writev','pwritev','pwritev2') THEN bytes END) AS bytes_written,
               sum(duration_ns) AS total_ns, max(duration_ns) AS max_ns, count(errno) AS errors
        FROM {src} WHERE fd_path LIKE '/%' GROUP BY fd_path ORDER BY total_ns DESC NULLS LAST LIMIT 20""",
}
# Each query as a function of the capture directory.
QUERIES = {name: (lambda cap, sql=sql: sql.replace("{src}", _src(cap))) for name, sql in _SQL.items()}

if __name__ == "__main__":
    cap, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 3
    con = duckdb.connect()
    for name, sql in QUERIES.items():
        times = []
        for _ in range(rounds):
            t = time.perf_counter()
            # Materialized inside DuckDB: no Python conversion in the timing.
            con.execute(f"CREATE OR REPLACE TEMP TABLE result AS {sql(cap)}")
            times.append(time.perf_counter() - t)
        print(f"{name} {statistics.median(times):.3f}")
