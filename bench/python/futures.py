#!/usr/bin/env python3
"""concurrent.futures.ProcessPoolExecutor (fork, 2 workers) on the suite's workloads.

    python3 bench/python/futures.py   # MP_BENCH_QUICK=1 for a smoke run
"""
import concurrent.futures as cf
import multiprocessing as mp
import time

from common import RUNS, count_row, emit, fresh_pool_seconds, identity, median_seconds, rows, size

PEER = "py_futures"


def executor():
    return cf.ProcessPoolExecutor(2, mp_context=mp.get_context("fork"))


def main():
    with executor() as ex:
        ex.submit(identity, 1).result()
        ts = []
        for _ in range(size(5_000)):
            t = time.perf_counter()
            ex.submit(identity, 1).result()
            ts.append((time.perf_counter() - t) * 1e6)
        ts.sort()
        emit("apply_rt_median", PEER, ts[len(ts) // 2], "us")
        emit("apply_rt_p99", PEER, ts[len(ts) * 99 // 100], "us")
    n = size(20_000)
    fresh = []
    for _ in range(RUNS):
        with executor() as ex:
            t = time.perf_counter()
            fs = [ex.submit(identity, i) for i in range(n)]
            for f in fs:
                f.result()
            fresh.append(n / (time.perf_counter() - t))
    emit("apply_async_fresh", PEER, sorted(fresh)[len(fresh) // 2], "tasks/s")
    data = list(range(size(1_000_000)))

    cs = max(1, len(data) // 8)
    emit("map_1e7", PEER, len(data) / fresh_pool_seconds(executor, lambda ex: sum(ex.map(identity, data, chunksize=cs))),
         "items/s")

    def start():
        with executor() as ex:
            ex.submit(identity, 1).result()
    emit("pool_start", PEER, median_seconds(start) * 1e3, "ms")
    r = rows(size(200_000))

    cs = max(1, len(r) // 8)
    emit("rowcount_vector_200k", PEER, fresh_pool_seconds(executor, lambda ex: list(ex.map(count_row, r, chunksize=cs)))
         * 1e3, "ms")


if __name__ == "__main__":
    main()
