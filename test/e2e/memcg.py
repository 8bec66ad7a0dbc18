#!/usr/bin/env python3
"""Runs a command inside a child of this process's own memory cgroup (cgroup v1's
memory controller, or cgroup v2 with memory enabled) with a hard limit, and checks
what the limit charged: the peak against a bound, the limit hits (v1 failcnt, v2
memory.events max), and a floor the peak must reach (so the model really was charged).
The cgroup is removed at the end, whatever happens. lit.cfg.py imports it to tell
whether a memory cgroup can be made here (the `memcg` feature).

  memcg.py --limit BYTES --peak-at-most BYTES --peak-at-least BYTES \\
           [--drop-cache FILE]... -- CMD [ARGS...]
"""
import argparse
import os
import subprocess
import sys


def _lines():
    try:
        return open("/proc/self/cgroup").read().splitlines()
    except OSError:
        return []


def directory():
    """This process's memory cgroup directory, and whether it is v1."""
    for line in _lines():
        num, ctrls, path = line.split(":", 2)
        if "memory" in ctrls.split(",") and os.path.isdir("/sys/fs/cgroup/memory"):
            return "/sys/fs/cgroup/memory" + path.rstrip("/"), True
    for line in _lines():
        num, ctrls, path = line.split(":", 2)
        d = "/sys/fs/cgroup" + path.rstrip("/")
        try:
            if num == "0" and "memory" in open(os.path.join(d, "cgroup.controllers")).read().split():
                return d, False
        except OSError:
            pass
    return None, False


def can_create():
    d, _ = directory()
    if not d:
        return False
    probe = os.path.join(d, "stc-lit-probe-%d" % os.getpid())
    try:
        os.mkdir(probe)
        os.rmdir(probe)
        return True
    except OSError:
        return False


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--limit", type=int, required=True)
    p.add_argument("--peak-at-most", type=int, required=True)
    p.add_argument("--peak-at-least", type=int, required=True)
    p.add_argument("--drop-cache", action="append", default=[])
    p.add_argument("cmd", nargs=argparse.REMAINDER)
    a = p.parse_args()
    cmd = a.cmd[1:] if a.cmd[:1] == ["--"] else a.cmd
    parent, v1 = directory()
    if not parent:
        print("memcg: no memory cgroup to make a child of")
        return 1
    cg = os.path.join(parent, "stc-test-%d" % os.getpid())
    os.mkdir(cg)
    try:
        if v1:
            open(os.path.join(cg, "memory.limit_in_bytes"), "w").write(str(a.limit))
            try:
                open(os.path.join(cg, "memory.swappiness"), "w").write("0")
            except OSError:
                pass
        else:
            open(os.path.join(cg, "memory.max"), "w").write(str(a.limit))
        # The model's pages out of the page cache (this file only), so that the
        # run's reads are charged as a cold start's.
        for f in a.drop_cache:
            fd = os.open(f, os.O_RDONLY)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            os.close(fd)
        procs = os.path.join(cg, "tasks" if v1 else "cgroup.procs")

        def enter():
            open(procs, "w").write(str(os.getpid()))

        rc = subprocess.call(cmd, preexec_fn=enter)
        if v1:
            peak = int(open(os.path.join(cg, "memory.max_usage_in_bytes")).read())
            hits = int(open(os.path.join(cg, "memory.failcnt")).read())
        else:
            peak = int(open(os.path.join(cg, "memory.peak")).read())
            hits = [int(l.split()[1]) for l in open(os.path.join(cg, "memory.events"))
                    if l.startswith("max ")][0]
    finally:
        os.rmdir(cg)
    mib = lambda b: "%.1f MiB" % (b / 1048576)
    print(f"memcg: peak {mib(peak)} (at most {mib(a.peak_at_most)}, at least "
          f"{mib(a.peak_at_least)}), limit {mib(a.limit)}, {hits} limit hits, exit {rc}")
    ok = rc == 0 and hits == 0 and a.peak_at_least <= peak <= a.peak_at_most
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
