#!/usr/bin/env python3
"""Kills part of a running MpiPool job from outside and checks how it ends.

    faults.py sigint    MPIRUN PROGRAM    Ctrl-C: SIGINT to mpirun
    faults.py kill-rank MPIRUN PROGRAM    SIGKILL to worker rank 1

Starts `MPIRUN --oversubscribe -np 4 PROGRAM DIR MARKER` (PROGRAM is
tests/mpi/faults.cpp), waits until rank 0's map of slow tasks runs on every
local worker, delivers the fault, then checks that
  - mpirun ends within END_LIMIT seconds, with a nonzero status;
  - rank 0 did not see its map end (the job was torn down around it);
  - no process of the job is left (none with MARKER in /proc/<pid>/cmdline:
    ranks, their spawners and local workers all carry rank's argv) within
    GONE_LIMIT seconds of mpirun's end.
Exit 0 when all hold. On failure it SIGKILLs the job's remaining processes.
"""
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
import shutil

READY_LIMIT = 60.0  # start-up of 4 Debug ranks and 6 local workers on a loaded machine
END_LIMIT = 15.0    # Open MPI ends the job in a second or two; room for a noisy machine
GONE_LIMIT = 10.0
NP = 4
LOCAL_PROCESSES = 2  # as in faults.cpp


def marked_pids(marker):
    """Pids of the processes whose argv holds marker (zombies have none)."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            with open(f"/proc/{name}/cmdline", "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue  # gone meanwhile
        if marker.encode() in args:
            found.append(int(name))
    return found


def describe(pids):
    out = []
    for p in pids:
        try:
            with open(f"/proc/{p}/stat") as f:
                stat = f.read()
            comm = stat[stat.index("(") + 1:stat.rindex(")")]
            ppid = stat[stat.rindex(")") + 2:].split()[1]
            out.append(f"{p} ({comm}, parent {ppid})")
        except OSError:
            out.append(f"{p} (gone)")
    return ", ".join(out)


def default_signals():
    """In mpirun's process before exec: a terminal's Ctrl-C must reach it even
    if this test was started with SIGINT ignored (a background job)."""
    for s in (signal.SIGINT, signal.SIGQUIT, signal.SIGTERM, signal.SIGHUP, signal.SIGPIPE, signal.SIGCHLD):
        signal.signal(s, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("sigint", "kill-rank"):
        print(__doc__, file=sys.stderr)
        return 2
    fault, mpirun, program = sys.argv[1:]
    marker = "mp-fault-test-" + uuid.uuid4().hex
    workdir = tempfile.mkdtemp(prefix="mp-fault-")
    failures = []
    job = subprocess.Popen([mpirun, "--oversubscribe", "-np", str(NP), program, workdir, marker],
                           preexec_fn=default_signals)
    try:
        # 1. Wait until the map runs on every local worker.
        ready = os.path.join(workdir, "ready")
        deadline = time.monotonic() + READY_LIMIT
        while not os.path.exists(ready):
            if job.poll() is not None:
                failures.append(f"mpirun ended with status {job.returncode} before the map ran")
                return 1
            if time.monotonic() > deadline:
                failures.append(f"the map did not run on every local worker within {READY_LIMIT:.0f} s")
                return 1
            time.sleep(0.05)
        with open(ready) as f:
            rank0, *worker_ranks = (int(x) for x in f.read().split())
        before = marked_pids(marker)
        # mpirun, the ranks, and per worker rank its spawner and local workers:
        # the scan must see at least these, or "no process left" would prove nothing.
        expected = 1 + NP + (NP - 1) * (1 + LOCAL_PROCESSES)
        if len(worker_ranks) != NP - 1 or not {rank0, *worker_ranks} <= set(before) or len(before) < expected:
            failures.append(f"the job's processes were not all found by the marker: rank 0 {rank0}, "
                            f"worker ranks {worker_ranks}, marked {describe(before)} (expected at least {expected})")
            return 1
        print(f"faults.py: job running: {len(before)} processes (rank 0: {rank0}, worker ranks: {worker_ranks})",
              flush=True)

        # 2. The fault.
        if fault == "sigint":
            os.kill(job.pid, signal.SIGINT)
            what = "SIGINT to mpirun"
        else:
            os.kill(worker_ranks[0], signal.SIGKILL)
            what = f"SIGKILL to rank 1 (pid {worker_ranks[0]})"
        sent = time.monotonic()

        # 3. mpirun ends, nonzero.
        try:
            status = job.wait(timeout=END_LIMIT)
        except subprocess.TimeoutExpired:
            failures.append(f"mpirun still runs {END_LIMIT:.0f} s after {what}")
            return 1
        ended = time.monotonic() - sent
        if status == 0:
            failures.append(f"mpirun exited with status 0 after {what}")
        outcome = os.path.join(workdir, "outcome")
        if os.path.exists(outcome):
            with open(outcome) as f:
                failures.append(f"rank 0's map ended instead of the job being ended: {f.read().strip()}")

        # 4. Nothing of the job is left.
        deadline = time.monotonic() + GONE_LIMIT
        while True:
            left = marked_pids(marker)
            if not left:
                break
            if time.monotonic() > deadline:
                failures.append(f"{GONE_LIMIT:.0f} s after mpirun ended, processes of the job are left: {describe(left)}")
                break
            time.sleep(0.05)
        gone = time.monotonic() - sent
        print(f"faults.py: {what}: mpirun ended after {ended:.2f} s with status {status}; "
              + (f"processes of the job left {gone:.2f} s after the signal" if left
                 else f"no process of the job left {gone:.2f} s after the signal"), flush=True)
        return 1 if failures else 0
    finally:
        for message in failures:
            print(f"faults.py ({fault}): FAILED: {message}", file=sys.stderr, flush=True)
        if job.poll() is None:
            job.kill()
            job.wait()
        for p in marked_pids(marker):  # only this job's processes carry the marker
            try:
                os.kill(p, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
