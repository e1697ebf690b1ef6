"""What the Python peers of the suite share: rows, medians, quick mode, workloads.

Rows are "measure<TAB>peer<TAB>value<TAB>unit", as the C++ programs print them
(bench/suite/harness.hpp); bench/report.py gathers them.
"""
import os
import random
import statistics
import sys
import time

QUICK = os.environ.get("MP_BENCH_QUICK") == "1"
RUNS = 1 if QUICK else 3


def size(n, shrink=100):
    return max(1, n // shrink) if QUICK else n


def emit(measure, peer, value, unit):
    print(f"{measure}\t{peer}\t{value:.6g}\t{unit}", flush=True)


def median_seconds(f, runs=None):
    out = []
    for _ in range(runs or RUNS):
        t = time.perf_counter()
        f()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def fresh_pool_seconds(make, f):
    """Median seconds of f(pool), each run on a pool just made (not timed) that
    has run one task, so that its workers exist."""
    out = []
    for _ in range(RUNS):
        with make() as pool:
            pool.submit(identity, 1).result() if hasattr(pool, "submit") else pool.apply(identity, (1,))
            t = time.perf_counter()
            f(pool)
            out.append(time.perf_counter() - t)
    return statistics.median(out)


def identity(x):
    return x


def add(a, b):
    return a + b


def echo(b):
    return b


def count_row(row):
    return sum(1 for v in row if 4 <= v <= 8)


def rows(n):
    random.seed(100)
    return [[random.randrange(10) for _ in range(5)] for _ in range(n)]


def uss_mib(pid):
    kib = 0
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith(("Private_Clean:", "Private_Dirty:")):
                kib += int(line.split()[1])
    return kib / 1024


if sys.version_info < (3, 8):
    sys.exit("bench/python needs Python 3.8 or later")
