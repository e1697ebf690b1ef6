#!/usr/bin/env python3
"""mpi4py.futures on the figures of bench/mpi/bench_mpi.cpp, in its static mode:

    mpirun --oversubscribe -np 4 /usr/bin/python3 -m mpi4py.futures bench/mpi/mpi4py_futures.py

Rank 0 runs this script; ranks 1..3 serve MPIPoolExecutor's tasks.
"""
import os
import statistics
import time

from mpi4py.futures import MPIPoolExecutor


def identity(x):
    return x


def ms_since_process_start():
    with open(f"/proc/{os.getpid()}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    with open("/proc/uptime") as f:
        uptime = float(f.read().split()[0])
    return (uptime - int(fields[19]) / os.sysconf("SC_CLK_TCK")) * 1000


def stat(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def tree_cpu(root, children):
    f = stat(root)
    s = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK") if f else 0.0
    return s + sum(tree_cpu(c, children) for c in children.get(root, []))


def process_children():
    out = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            f = stat(int(d))
            if f:
                out.setdefault(int(f[1]), []).append(int(d))
    return out


def main():
    with MPIPoolExecutor() as ex:
        ex.submit(identity, 0).result()
        print(f"mpi4py.futures start-up: {ms_since_process_start():.0f} ms from process start to the first result")
        for i in range(200):
            ex.submit(identity, i).result()
        rt = []
        for i in range(2000):
            t = time.perf_counter()
            ex.submit(identity, i).result()
            rt.append((time.perf_counter() - t) * 1e6)
        print(f"mpi4py.futures apply round trip: {statistics.median(rt):.1f} us (median of 2000, warm)")
        n = 20_000
        t = time.perf_counter()
        fs = [ex.submit(identity, i) for i in range(n)]
        for f in fs:
            f.result()
        print(f"mpi4py.futures apply_async: {n / (time.perf_counter() - t):.0f} tasks/s ({n} tasks)")
        rates = []
        for _ in range(3):
            t = time.perf_counter()
            out = list(ex.map(identity, [7] * 1_000_000, chunksize=10_000))
            rates.append(len(out) / (time.perf_counter() - t))
        print(f"mpi4py.futures map: {statistics.median(rates) / 1e6:.2f} M items/s (10^6 ints, chunksize 10^4, median of 3)")
        # the ranks are mpirun's children: this process and its siblings
        kids = process_children()
        ranks = sorted(kids.get(os.getppid(), []))
        time.sleep(1)
        before = [tree_cpu(p, kids) for p in ranks]
        t = time.perf_counter()
        time.sleep(5)
        wall = time.perf_counter() - t
        kids = process_children()
        for i, p in enumerate(ranks):
            print(f"mpi4py.futures idle CPU, pid {p}{' (rank 0)' if p == os.getpid() else ''}: "
                  f"{100 * (tree_cpu(p, kids) - before[i]) / wall:.2f} %")


if __name__ == "__main__":
    main()
