#!/usr/bin/env python3
"""Gathers the suite's rows into a Markdown table and a gnuplot chart.

    python3 bench/report.py ROWS.tsv OUT.md OUT.png "load before" "load after"

ROWS.tsv holds "measure<TAB>peer<TAB>value<TAB>unit" lines from every program
of the suite (bench/suite/*, bench/python/*). Ratios are "how many times
better mp is": peer/mp for times, mp/peer for rates (above 1: mp wins).
"""
import datetime
import os
import platform
import subprocess
import sys

PEERS = [("mp", "mp"), ("serial", "serial loop"), ("threads", "std::thread pool"), ("mp_threads", "mp::ThreadPool"),
         ("openmp", "OpenMP"),
         ("py_pool", "Python Pool"), ("py_futures", "Python ProcessPoolExecutor"), ("floor", "floor")]
ALIASES = {"pickle": "py_pool"}

# measure, label, True when higher is better
MEASURES = [
    ("apply_rt_median", "apply round trip, median", False),
    ("apply_rt_p99", "apply round trip, p99", False),
    ("apply_async_fresh", "apply_async, fresh pool, first 500k tasks", True),
    ("apply_async_warm", "apply_async, warm pool", True),
    ("map_1e7", "map(identity, 10^7 ints), fresh pool", True),
] + [(f"map_cs_{10 ** e}", f"map, 10^6 ints, chunksize 10^{e}", True) for e in range(6)] + [
    ("starmap", "starmap(add, 10^6 pairs)", True),
    ("imap", "imap(identity, 10^6 ints)", True),
    ("imap_unordered", "imap_unordered(identity, 10^6 ints)", True),
    ("queue_1to1", "Queue<int>, 1 producer -> 1 consumer", True),
    ("queue_4to4", "Queue<int>, 4 producers -> 4 consumers", True),
] + [(f"payload_{k}KiB", f"payload round trip, {k} KiB", True) for k in (1, 64, 1024, 16384, 65536)] + [
    ("pool_start", "pool of 2 started + first apply", False),
    ("first_touch", "first touch of the pool's shared memory", False),
    ("codec_vec5", "codec round trip, vector<int> of 5", False),
    ("codec_str1000", "codec round trip, 1000 short strings", False),
    ("rowcount_array_200k", "row count, 200k array<int,5> rows", False),
    ("rowcount_vector_200k", "row count, 200k vector<int> rows", False),
    ("rowcount_array_20M", "row count, 20M array<int,5> rows", False),
    ("rowcount_vector_20M", "row count, 20M vector<int> rows", False),
    ("cpu_kernel", "CPU-bound map, 4000 x ~50 us", False),
    ("break_even", "break-even work per item (map beats serial)", False),
]


def load(path):
    rows, units = {}, {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 4:
                continue
            m, peer, value, unit = parts
            rows[(m, ALIASES.get(peer, peer))] = float(value)
            units[m] = unit
    return rows, units


def ratio(rows, m, peer, higher):
    mp_v, p_v = rows.get((m, "mp")), rows.get((m, peer))
    if mp_v is None or p_v is None or mp_v == 0 or p_v == 0:
        return None
    return mp_v / p_v if higher else p_v / mp_v


def fmt(v):
    if v is None:
        return "-"
    if v >= 1e6:
        return f"{v / 1e6:.3g} M"
    if v >= 1e4:
        return f"{v / 1e3:.3g} k"
    return f"{v:.3g}"


def machine():
    cpu = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2 ** 30
    gxx = subprocess.run(["g++", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    return f"{platform.system()} {platform.release()}, {os.cpu_count()} x {cpu}, {mem:.0f} GiB; {gxx}; Python {platform.python_version()}"


def table(rows, units):
    head = "| measure | unit | " + " | ".join(n for _, n in PEERS) + " | mp vs Python Pool | mp vs best C++ peer |"
    out = [head, "|" + "---|" * (len(PEERS) + 4)]
    for m, label, higher in MEASURES:
        if not any((m, p) in rows for p, _ in PEERS):
            continue
        cells = [fmt(rows.get((m, p))) for p, _ in PEERS]
        py = ratio(rows, m, "py_pool", higher)
        cpp = [r for r in (ratio(rows, m, p, higher) for p in ("serial", "threads", "openmp")) if r is not None]
        unit = units.get(m, "") + (" (higher is better)" if higher else "")
        out.append(f"| {label} | {unit} | " + " | ".join(cells) +
                   f" | {fmt(py) + 'x' if py else '-'} | {fmt(min(cpp)) + 'x' if cpp else '-'} |")
    return out


def targets(rows):
    """Issue 10's targets: (what, measured, met)."""
    g = rows.get
    out = []

    def add(what, value, met):
        out.append(f"| {what} | {value} | {'yes' if met else 'no'} |")

    def r(m, p, higher):
        return ratio(rows, m, p, higher) or 0.0
    a = g(("apply_async_fresh", "mp"), 0)
    add("apply_async, fresh pool: >= 1 M tasks/s and >= 50x Python", f"{fmt(a)}/s, {r('apply_async_fresh', 'py_pool', True):.0f}x",
        a >= 1e6 and r("apply_async_fresh", "py_pool", True) >= 50)
    fl = g(("map_1e7", "floor"), 0) / max(g(("map_1e7", "mp"), 1), 1)
    add("map of 10^7 ints: >= 40x Python (and distance to the memcpy floor)",
        f"{r('map_1e7', 'py_pool', True):.1f}x; the floor is {fl:.0f}x faster", r("map_1e7", "py_pool", True) >= 40)
    v = r("rowcount_vector_200k", "serial", False)
    add("row count, vector<int> rows: >= 50x Python and <= 3x serial",
        f"{r('rowcount_vector_200k', 'py_pool', False):.1f}x Python; {1 / v if v else 0:.1f}x serial's time",
        r("rowcount_vector_200k", "py_pool", False) >= 50 and v >= 1 / 3)
    ar = r("rowcount_array_200k", "serial", False)
    add("row count, array<int,5> rows: <= 1.5x serial", f"{1 / ar if ar else 0:.1f}x serial's time", ar >= 1 / 1.5)
    c = [r("cpu_kernel", p, False) for p in ("serial", "threads", "openmp")]
    add("CPU-bound: >= 1.8x serial, <= 1.1x std::thread pool and OpenMP",
        f"{c[0]:.2f}x serial; {1 / c[1] if c[1] else 0:.2f}x threads' time; {1 / c[2] if c[2] else 0:.2f}x OpenMP's",
        c[0] >= 1.8 and c[1] >= 1 / 1.1 and c[2] >= 1 / 1.1)
    add("apply round trip: >= 10x Python", f"{r('apply_rt_median', 'py_pool', False):.0f}x",
        r("apply_rt_median", "py_pool", False) >= 10)
    add("pool start + first apply: >= 10x Python", f"{r('pool_start', 'py_pool', False):.1f}x",
        r("pool_start", "py_pool", False) >= 10)
    u = g(("mem_idle8_worker_uss_max", "mp"), 99)
    add("idle pool of 8: < 5 MiB per worker (USS)", f"{u:.2f} MiB", u < 5)
    im = g(("mem_imap_1e8_parent_rss_growth", "mp"), 999)
    add("imap over 10^8 items: parent RSS growth < 64 MiB", f"{im:.1f} MiB", im < 64)
    return ["| target | measured | met |", "|---|---|---|"] + out


def extras(rows, units):
    """Rows outside the main table (scaling, memory, Python's serial loop)."""
    known = {m for m, _, _ in MEASURES}
    out = ["| measure | peer | value | unit |", "|---|---|---|---|"]
    for (m, p), v in sorted(rows.items()):
        if m not in known:
            out.append(f"| {m} | {p} | {fmt(v)} | {units.get(m, '')} |")
    return out


def chart(rows, png):
    """mp's advantage over Python Pool, the std::thread pool and the serial loop, log scale."""
    data = png + ".dat"
    with open(data, "w") as f:
        for m, label, higher in MEASURES:
            vals = [ratio(rows, m, p, higher) for p in ("py_pool", "threads", "serial")]
            if any(vals):
                f.write('"%s" %s\n' % (label.replace("_", " "), " ".join(f"{v:.4g}" if v else "NaN" for v in vals)))
    script = f"""
set terminal pngcairo size 1400,900 font ",10"
set output "{png}"
set title "mp vs peers, pool of 2 (times better; above 1 = mp wins)"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set logscale y
set yrange [0.001:*]
set grid ytics
set xtics rotate by -40 scale 0
set key top right
set arrow from graph 0, first 1 to graph 1, first 1 nohead lw 2 lc rgb "black"
set bmargin 14
set rmargin 12
plot "{data}" using 2:xtic(1) title "vs Python multiprocessing.Pool", '' using 3 title "vs std::thread pool", '' using 4 title "vs serial loop"
"""
    subprocess.run(["gnuplot"], input=script, text=True, check=True)
    os.remove(data)


def main():
    rows_path, md, png, load0, load1 = sys.argv[1:6]
    rows, units = load(rows_path)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# mp benchmark suite: {when}", "", f"Machine: {machine()}.", "",
             f"Load (uptime) before: {load0}", "", f"Load (uptime) after: {load1}", "",
             "Pool of 2; medians of 3 runs; fresh pool unless the row says warm. Ratios: how many times better mp "
             "is (peer time / mp time, or mp rate / peer rate). Python rows use fewer items where mp's sizes would "
             "take minutes (bench/python/*.py) and report the same rate. floor: one memcpy of the payload (rates) "
             "or the first touch of as much fresh shared memory as the pool maps (time). Made by scripts/bench.",
             "", "![mp vs peers](latest.png)", ""]
    lines += table(rows, units) + ["", "## Targets (issue 10)", ""] + targets(rows)
    lines += ["", "## Scaling with workers, memory, other rows", ""] + extras(rows, units)
    with open(md, "w") as f:
        f.write("\n".join(lines) + "\n")
    chart(rows, png)


if __name__ == "__main__":
    main()
