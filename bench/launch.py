"""Run one command and report its wall time and peak RSS: `python -S launch.py OUT.json CMD...`.

Why a launcher: Linux charges a child's peak RSS (ru_maxrss) with the memory of the process
it was forked (or vforked) from, so measuring from the harness itself, which may hold tens of
MB, would report that for every run. This small process forks, execs the command and waits
with os.wait4: the baseline it adds is its own few MB, below any Python program's.
Wall time is measured here too, around fork/exec/wait, so the launcher's start-up is not in it.
"""
import json
import os
import sys
import time


def main():
    out, argv = sys.argv[1], sys.argv[2:]
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:  # child
        try:
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    _pid, status, usage = os.wait4(pid, 0)
    wall = time.perf_counter() - start
    if os.WIFSIGNALED(status):
        code = -os.WTERMSIG(status)
    else:
        code = os.WEXITSTATUS(status)
    with open(out, "w") as f:
        json.dump({"wall": wall, "returncode": code, "maxrss_kb": usage.ru_maxrss,
                   "user": usage.ru_utime, "sys": usage.ru_stime}, f)


main()
