"""What one call at each workload's largest size costs: CPU seconds and peak memory.

    python -m ftscale.workloads.budget [--large] [NAME ...]

Each workload runs once at its ``max_size`` (``--large``: its ``large_max_size``) in a fresh
child process of this interpreter, on one thread with BLAS pinned to one thread, and the child
reports the CPU time of the call and its peak RSS. This is how the registry's ``max_size``
values were chosen (at most about :data:`CPU_BUDGET_S` on the development machine); run it on
a quiet machine, since a busy one inflates CPU time too. It prints one JSON line per workload.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections.abc import Sequence

from ftscale.workloads.registry import CPU_BUDGET_S

__all__ = ["CPU_BUDGET_S", "main", "measure_once"]


def measure_once(name: str, size: int) -> dict[str, object]:
    """In this process: one call of ``name`` at ``size``; its CPU seconds and the peak RSS."""
    import resource

    from ftscale import workloads

    workloads.pin_blas_threads()
    workload = workloads.get(name)
    if workload.prepare is not None:  # made once per machine or process, not part of a call
        workload.prepare()
    started = time.thread_time()
    workload.compute(size)
    cpu_s = time.thread_time() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {"workload": name, "size": size, "cpu_s": round(cpu_s, 3), "peak_rss_mib": peak_kib // 1024}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ftscale.workloads.budget", description=__doc__.split("\n")[0]
    )
    parser.add_argument("names", nargs="*", help="workloads (default: all)")
    parser.add_argument("--large", action="store_true", help="measure large_max_size instead of max_size")
    parser.add_argument(
        "--one", nargs=2, metavar=("NAME", "SIZE"), help=argparse.SUPPRESS
    )  # the child's part
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure_once(args.one[0], int(args.one[1]))))
        return 0
    from ftscale import workloads

    for workload in workloads.select(args.names):
        size = workload.size_limit(allow_large=args.large)
        child = [sys.executable, "-m", "ftscale.workloads.budget", "--one", workload.name, str(size)]
        result = json.loads(subprocess.run(child, capture_output=True, text=True, check=True).stdout)
        result["within_budget"] = result["cpu_s"] <= CPU_BUDGET_S
        print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
