#!/usr/bin/env python3
"""multiprocessing.Pool (fork, 2 workers) on the suite's workloads.

    python3 bench/python/pool.py      # MP_BENCH_QUICK=1 for a smoke run

Where Python would take minutes at mp's sizes the row uses fewer items and
reports the same rate (items/s, tasks/s); the sizes are in the code below.
"""
import math
import multiprocessing as mp
import pickle
import time

from common import (RUNS, add, count_row, echo, emit, fresh_pool_seconds, identity, median_seconds, rows, size,
                    uss_mib)

PEER = "py_pool"


def apply_rows():
    with mp.Pool(2) as pool:
        ts = []
        for _ in range(size(5_000)):
            t = time.perf_counter()
            pool.apply(identity, (1,))
            ts.append((time.perf_counter() - t) * 1e6)
        ts.sort()
        emit("apply_rt_median", PEER, ts[len(ts) // 2], "us")
        emit("apply_rt_p99", PEER, ts[len(ts) * 99 // 100], "us")
    n = size(50_000)
    fresh, warm = [], []
    for _ in range(RUNS):
        with mp.Pool(2) as pool:
            for out in (fresh, warm):
                t = time.perf_counter()
                rs = [pool.apply_async(identity, (i,)) for i in range(n)]
                for r in rs:
                    r.get()
                out.append(n / (time.perf_counter() - t))
    emit("apply_async_fresh", PEER, sorted(fresh)[len(fresh) // 2], "tasks/s")
    emit("apply_async_warm", PEER, sorted(warm)[len(warm) // 2], "tasks/s")


def map_rows():
    n = size(1_000_000)
    data = list(range(n))
    emit("map_1e7", PEER, n / fresh_pool_seconds(lambda: mp.Pool(2), lambda p: p.map(identity, data)), "items/s")
    with mp.Pool(2) as pool:
        for e in range(6):
            cs = 10 ** e
            k = size(100_000 if cs <= 10 else 1_000_000)
            d = data[:k] if k <= n else list(range(k))
            emit(f"map_cs_{cs}", PEER, k / median_seconds(lambda: pool.map(identity, d, cs)), "items/s")
        pairs = [(i, 1) for i in range(n)]
        cs = math.ceil(n / 8)  # what mp and Pool.map pick by default: ceil(n / (4 * 2))
        emit("starmap", PEER, n / median_seconds(lambda: pool.starmap(add, pairs)), "items/s")
        emit("imap", PEER, n / median_seconds(lambda: sum(pool.imap(identity, data, cs))), "items/s")
        emit("imap_unordered", PEER, n / median_seconds(lambda: sum(pool.imap_unordered(identity, data, cs))),
             "items/s")


def queue_rate(p, c, n):
    q = mp.Queue()
    procs = [mp.Process(target=_consume, args=(q, n // c)) for _ in range(c)]
    procs += [mp.Process(target=_produce, args=(q, n // p)) for _ in range(p)]
    t = time.perf_counter()
    for x in procs:
        x.start()
    for x in procs:
        x.join()
    return n / (time.perf_counter() - t)


def _produce(q, k):
    for i in range(k):
        q.put(i)


def _consume(q, k):
    for _ in range(k):
        q.get()


def queue_rows():
    n = size(100_000)
    for p, name in ((1, "queue_1to1"), (4, "queue_4to4")):
        emit(name, PEER, sorted(queue_rate(p, p, n) for _ in range(RUNS))[RUNS // 2], "msgs/s")


def payload_rows():
    with mp.Pool(2) as pool:
        for kib in (1, 64, 1024, 16 * 1024, 64 * 1024):
            b = bytes(kib * 1024)
            if size(2) == 1 and kib > 1024:
                break
            reps = 200 if kib <= 64 else 3
            t = median_seconds(lambda: [pool.apply(echo, (b,)) for _ in range(reps)]) / reps
            emit(f"payload_{kib}KiB", PEER, 2 * len(b) / t / 1e6, "MB/s")


def start_and_codec_rows():
    def start():
        with mp.Pool(2) as pool:
            pool.apply(identity, (1,))
    emit("pool_start", PEER, median_seconds(start) * 1e3, "ms")
    v5, strs = [1, 2, 3, 4, 5], [f"item-{i}" for i in range(1000)]
    reps, reps2 = size(100_000), size(1_000)
    emit("codec_vec5", "pickle", median_seconds(lambda: [pickle.loads(pickle.dumps(v5)) for _ in range(reps)])
         / reps * 1e9, "ns")
    emit("codec_str1000", "pickle", median_seconds(lambda: [pickle.loads(pickle.dumps(strs)) for _ in range(reps2)])
         / reps2 * 1e6, "us")


def rowcount_and_memory_rows():
    data = rows(size(200_000))
    emit("rowcount_vector_200k", PEER, fresh_pool_seconds(lambda: mp.Pool(2), lambda p: p.map(count_row, data)) * 1e3,
         "ms")
    emit("rowcount_vector_200k", "py_serial", median_seconds(lambda: [count_row(r) for r in data]) * 1e3, "ms")
    with mp.Pool(8) as pool:
        pool.map(identity, range(64), 1)
        time.sleep(0.2)
        emit("mem_idle8_worker_uss_max", PEER, max(uss_mib(p.pid) for p in pool._pool), "MiB")


def main():
    mp.set_start_method("fork")
    apply_rows()
    map_rows()
    queue_rows()
    payload_rows()
    start_and_codec_rows()
    rowcount_and_memory_rows()


if __name__ == "__main__":
    main()
