#!/usr/bin/env python3
"""Python's multiprocessing.Queue, 1 producer -> 1 consumer process, N ints:
the peer of bench_queue's BM_Queue_1to1_ints, measured the same way (time
from the first put until the consumer has got them all).

    python3 bench/python_queue.py              # 5 runs of 200k ints, median msg/s
    python3 bench/python_queue.py --seconds N  # one run of N ints; prints seconds
                                               # only (what bench_queue reads)
"""
import multiprocessing as mp
import statistics
import sys
import time


def consumer(q, n, done):
    for _ in range(n):
        q.get()
    done.set()


def one_run(n):
    ctx = mp.get_context("fork")
    q = ctx.Queue()
    done = ctx.Event()
    p = ctx.Process(target=consumer, args=(q, n, done))
    p.start()
    t0 = time.perf_counter()
    for i in range(n):
        q.put(i)
    done.wait()
    dt = time.perf_counter() - t0
    p.join()
    return dt


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--seconds":
        print(f"{one_run(int(sys.argv[2])):.6f}")
        return
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    runs = [one_run(n) for _ in range(5)]
    med = statistics.median(runs)
    print(f"multiprocessing.Queue 1->1, {n} ints: median {med:.3f} s = {n / med:,.0f} msg/s "
          f"(runs: {', '.join(f'{n / r:,.0f}' for r in runs)})")


if __name__ == "__main__":
    main()
