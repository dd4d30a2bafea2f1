"""`analyze` and DuckDB side by side on the timed canned queries, round by round, so that
the machine's neighbours weigh on both alike (`duckdb_times.py` runs DuckDB alone).

    python3 bench/analyzer_vs_duckdb.py ROUNDS CAPTURE... [-- NAME=ANALYZE[:ENV=VALUE] ...]

Each round runs every query once with each `analyze` binary (a whole process, start-up
included) and once in DuckDB (in process, the result materialized inside DuckDB), in that
order. Without `--`, the binary is target/release/analyze. Prints, per capture and query,
each contender's median seconds and the ratio of each `analyze` to DuckDB.

A contender whose binary is the `repeat` example (`cargo build --release --example
repeat`; `inproc=target/release/examples/repeat`) is timed as DuckDB is: the command run
four times in one process, and the median of the last three kept (the capture opened, the
query planned and run, the answer printed; no process start). DuckDB's process is warm
from the queries before it; the first run in a fresh process pays what a warm one does
not (memory touched first, functions registered), so only the warm runs are compared.
"""
import os
import statistics
import subprocess
import sys
import time

import duckdb

from duckdb_times import QUERIES

args = sys.argv[1:]
contenders = []
if "--" in args:
    at = args.index("--")
    for spec in args[at + 1 :]:
        name, _, rest = spec.partition("=")
        binary, _, env = rest.partition(":")
        extra = dict([env.split("=", 1)]) if env else {}
        contenders.append((name, binary, extra))
    args = args[:at]
else:
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    contenders.append(("analyze", os.path.join(root, "target/release/analyze"), {}))
rounds, captures = int(args[0]), args[1:]

con = duckdb.connect()
for cap in captures:
    times = {(name, q): [] for q in QUERIES for name in [c[0] for c in contenders] + ["duckdb"]}
    for _ in range(rounds):
        for q, sql in QUERIES.items():
            for name, binary, extra in contenders:
                argv = [binary, "summary", cap] if q == "summary" else [binary, "query", cap, q]
                if os.path.basename(binary) == "repeat":
                    done = subprocess.run([binary, "4"] + argv[1:] + ["--format", "csv"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                          env={**os.environ, **extra}, check=True, text=True)
                    runs = [float(t) for t in done.stderr.split()[-4:]]
                    times[(name, q)].append(statistics.median(runs[1:]))
                    continue
                t = time.perf_counter()
                subprocess.run(argv + ["--format", "csv"], stdout=subprocess.DEVNULL,
                               env={**os.environ, **extra}, check=True)
                times[(name, q)].append(time.perf_counter() - t)
            t = time.perf_counter()
            con.execute(f"CREATE OR REPLACE TEMP TABLE result AS {sql(cap)}")
            times[("duckdb", q)].append(time.perf_counter() - t)
    print(f"## {cap} ({rounds} rounds, median seconds)")
    names = [c[0] for c in contenders]
    print("| query | " + " | ".join(names) + " | duckdb | " + " | ".join(f"{n} / duckdb" for n in names) + " |")
    print("|---" * (2 * len(names) + 2) + "|")
    for q in QUERIES:
        med = {n: statistics.median(times[(n, q)]) for n in names + ["duckdb"]}
        cells = [f"{med[n]:.3f}" for n in names + ["duckdb"]] + [f"{med[n] / med['duckdb']:.2f}" for n in names]
        print(f"| {q} | " + " | ".join(cells) + " |")
    sys.stdout.flush()
