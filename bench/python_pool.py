#!/usr/bin/env python3
"""Python's multiprocessing.Pool on the same rows as bench/bench_pool.cpp.

    python3 bench/python_pool.py      # MP_BENCH_QUICK=1: 1/100 of the items

Prints one line per row: name, figure, unit (medians of 5 runs where cheap).
"""
import multiprocessing as mp
import os
import random
import statistics
import time


def identity(x):
    return x


def count_row(row):
    return sum(1 for v in row if 4 <= v <= 8)


def median_of(f, runs=5):
    return statistics.median(f() for _ in range(runs))


def apply_async_rate(pool, n=200_000):
    def once():
        t = time.perf_counter()
        rs = [pool.apply_async(identity, (i,)) for i in range(n)]
        for r in rs:
            r.get()
        return n / (time.perf_counter() - t)
    return median_of(once, 3)


def apply_round_trip_us(pool, n=5_000):
    ts = []
    for _ in range(n):
        t = time.perf_counter()
        pool.apply(identity, (1,))
        ts.append((time.perf_counter() - t) * 1e6)
    ts.sort()
    return statistics.median(ts), ts[len(ts) * 99 // 100]


def map_rate(pool, n=10_000_000):
    data = range(n)
    def once():
        t = time.perf_counter()
        pool.map(identity, data, chunksize=10_000)
        return n / (time.perf_counter() - t)
    return median_of(once, 3)


def rowcount_ms(pool):
    random.seed(100)
    data = [[random.randrange(10) for _ in range(5)] for _ in range(200_000)]
    def once():
        t = time.perf_counter()
        pool.map(count_row, data)
        return (time.perf_counter() - t) * 1e3
    return median_of(once)


def create_teardown_ms():
    def once():
        t = time.perf_counter()
        p = mp.Pool(2)
        p.close()
        p.join()
        return (time.perf_counter() - t) * 1e3
    return median_of(once)


def idle_cpu_pct(pool):
    pool.apply(identity, (1,))
    time.sleep(0.2)
    kids = [p.pid for p in pool._pool]
    def ticks():
        total = 0
        for pid in kids + [os.getpid()]:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        return total
    t0 = ticks()
    time.sleep(1.0)
    return (ticks() - t0) * 100.0 / os.sysconf("SC_CLK_TCK")


def main():
    q = 100 if os.environ.get("MP_BENCH_QUICK") == "1" else 1
    mp.set_start_method("fork")
    print(f"load average {os.getloadavg()[0]:.2f}")
    with mp.Pool(2) as pool:
        print(f"python apply_async_throughput   {apply_async_rate(pool, 200_000 // q):12.0f} tasks/s")
        med, p99 = apply_round_trip_us(pool, 5_000 // q)
        print(f"python apply_round_trip          {med:12.1f} us (median), p99 {p99:.1f} us")
        print(f"python map_1e7                   {map_rate(pool, 10_000_000 // q):12.0f} items/s")
        print(f"python rowcount_map              {rowcount_ms(pool):12.1f} ms")
        print(f"python idle_pool_cpu             {idle_cpu_pct(pool):12.1f} % (parent + workers)")
    print(f"python pool_create_teardown      {create_teardown_ms():12.2f} ms")


if __name__ == "__main__":
    main()
