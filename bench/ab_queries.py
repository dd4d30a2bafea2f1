"""Two `analyze` binaries side by side on the same captures, round by round, with the
answers compared: for A/B of a change to how queries are planned.

    python3 bench/ab_queries.py ROUNDS OLD_ANALYZE NEW_ANALYZE CAPTURE...

Each round runs every question once with each binary (a whole process, start-up included),
alternating. Prints each binary's median seconds, the ratio, and whether the two printed
the same CSV. The questions are the canned queries that group by `capture` or a process,
and three GROUP BYs of the kind a fleet postmortem writes.
"""
import statistics
import subprocess
import sys
import time

QUESTIONS = [
    ("query", "latency-by-process"),
    ("query", "waiting"),
    ("query", "errors"),
    ("query", "latency-by-syscall"),
    ("summary", None),
    ("query", "SELECT capture, syscall, count(*), sum(duration_ns) FROM syscalls "
              "GROUP BY capture, syscall ORDER BY 1, 2"),
    ("query", "SELECT capture, pid, count(*) FROM syscalls GROUP BY capture, pid ORDER BY 1, 2"),
    ("query", "SELECT capture, count(*) FROM syscalls GROUP BY capture ORDER BY 1"),
]

rounds, old, new, captures = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
print(f"{len(captures)} captures, {rounds} rounds, median seconds")
print("| question | old | new | new / old | same answer |")
print("|---|---|---|---|---|")
for command, what in QUESTIONS:
    times = {old: [], new: []}
    out = {}
    for _ in range(rounds):
        for binary in (old, new):
            argv = [binary, command, *captures] + ([what] if what else []) + ["--format", "csv"]
            t = time.perf_counter()
            p = subprocess.run(argv, capture_output=True, check=True)
            times[binary].append(time.perf_counter() - t)
            out[binary] = p.stdout
    a, b = statistics.median(times[old]), statistics.median(times[new])
    label = what if what and len(what) < 30 else (what[:60] + "…" if what else command)
    print(f"| {label} | {a:.3f} | {b:.3f} | {b / a:.2f} | {out[old] == out[new]} |")
    sys.stdout.flush()
