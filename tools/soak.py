"""A bounded soak of the service: mixed good and bad requests plus idle sockets, on loopback.

    python -m tools.soak [--duration 600] [--design threadpool/single ...] [-- SERVE ARGS]
    nox -s soak -- --duration 600                                  (on 3.14t)

For each design (``--design MODE/TOPOLOGY``, repeatable; by default ``threadpool/single`` and
``inline/loops``, the free-threaded build's designs, each with ``--threads 2``; or one run with
the ``ftscale serve`` arguments given after ``--``) it starts ``ftscale serve`` on a free
127.0.0.1 port and, for ``--duration`` seconds, keeps ``--idle`` sockets open that never send a
byte (reopening those the server closes), while ``--clients`` threads send, in turn: good work
requests, ``/health``, ``/info``, a short stream read to its end, a NaN body, JSON nested a
thousand deep, a lone surrogate, an unknown workload, a size out of range, an oversized body, a
head over the size limit, a request framed by both Content-Length and Transfer-Encoding,
malformed HTTP, a request whose client leaves at once, a head sent a byte at a time, and now and
then one call at a workload's largest size. It samples the process tree's RSS every
``--sample-every`` seconds throughout. Then it closes the idle sockets, times ``/health``,
stops the service with SIGTERM, and checks that nothing is left.

The figures go to ``results/soak/<time>-soak-<mode>-<topology>.json``
(:class:`ftscale.schema.SoakResult`), with the RSS samples and their trend after ``--warmup``
seconds (:mod:`ftscale.server.rss_trend`: MB and % per minute, over the rest of the soak and over its
last half). The exit status is 0 when every soak passed: no unexpected status, ``/health``
under 50 ms, RSS at the end within 20 % of its value at the end of the warm-up, no steady rise
(above 1 % a minute in both the whole and the last half after the warm-up), exit status 0 and
no leftover process.

It sends nothing but to 127.0.0.1, and stops by itself. A client of the service: it reads
``/info`` and the process table, nothing inside the service.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import psutil

from ftscale.schema import Info, SoakResult
from ftscale.server import rss_trend
from ftscale.server.sockets import free_port
from tools.service import HOST, Sampler, http_get, process_tree, service_process, tree_rss
from tools.soak_clients import EXPECTED, LARGE, Soak

DEFAULT_DESIGNS = ["threadpool/single", "inline/loops"]
DEFAULT_THREADS = 2
DEFAULT_SAMPLE_EVERY_S = 5.0
MAX_WARMUP_S = 120.0  # or a fifth of the soak, if shorter
HEALTH_LIMIT_MS = 50.0
RSS_LIMIT_PCT = 20.0
STOP_TIMEOUT_S = 30


def default_warmup_s(duration_s: float) -> float:
    return min(MAX_WARMUP_S, duration_s / 5)


def run(
    duration_s: float,
    clients: int,
    idle: int,
    serve_args: Sequence[str],
    *,
    warmup_s: float | None = None,
    sample_every_s: float = DEFAULT_SAMPLE_EVERY_S,
    design: str | None = None,
) -> SoakResult:
    """One soak of ``ftscale serve SERVE_ARGS``; ``warmup_s`` (from the service's start) is left
    out of the memory trend (default: :func:`default_warmup_s`)."""
    warmup_s = default_warmup_s(duration_s) if warmup_s is None else warmup_s
    port = free_port(HOST)
    started = datetime.datetime.now(datetime.UTC)
    load_before = list(os.getloadavg())
    with service_process(serve_args, port) as proc, Sampler(proc.pid, sample_every_s) as sampler:
        large_size = Info.model_validate_json(http_get(port, "/info")[1]).max_sizes[LARGE]  # type: ignore[index]
        warm = Soak(
            port=port, clients=clients, idle=idle, deadline=time.monotonic() + 3, large_size=large_size
        )  # first calls import and allocate
        threads = [threading.Thread(target=warm.client, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        processes_start = len(process_tree(proc.pid))
        rss_start = tree_rss(proc.pid)

        soak = Soak(
            port=port,
            clients=clients,
            idle=idle,
            deadline=time.monotonic() + duration_s,
            large_size=large_size,
        )
        stop_idle = threading.Event()
        idler = threading.Thread(target=soak.idle_sockets, args=(stop_idle,))
        idler.start()
        threads = [threading.Thread(target=soak.client, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sampler.stop()  # the trend is of the load: not of the quiet after it, nor of the stop
        stop_idle.set()
        idler.join()
        time.sleep(2)  # the closed sockets reach the server

        health_ms = []
        for _ in range(20):
            begun = time.perf_counter()
            status, _ = http_get(port, "/health")
            health_ms.append((time.perf_counter() - begun) * 1000 if status == 200 else float("inf"))
        status, body = http_get(port, "/info")
        info_after = Info.model_validate_json(body) if status == 200 else None
        tree = process_tree(proc.pid)
        rss_end = tree_rss(proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            exit_status: int | None = proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            exit_status = None
        _, alive = psutil.wait_procs(tree[1:], timeout=STOP_TIMEOUT_S)

    kinds = {kind: dict(sorted(counts.items())) for kind, counts in sorted(soak.kinds.items())}
    unexpected = sum(
        n
        for kind, counts in kinds.items()
        for status, n in counts.items()
        if kind != "gone" and (not status.isdigit() or int(status) not in EXPECTED[kind])
    )
    # RSS at the end of the warm-up, where the soak's memory is judged from (the first calls import
    # and allocate; pools, caches and the allocator's arenas fill for a minute or two).
    rss_start = next((rss for t, rss in sampler.samples if t >= warmup_s), rss_start)
    change = (rss_end - rss_start) / rss_start * 100
    health = {"p50": statistics.median(health_ms), "max": max(health_ms)}
    memory = rss_trend.trend(sampler.samples, warmup_s)
    passed = (
        unexpected == 0
        and health["max"] < HEALTH_LIMIT_MS
        and abs(change) <= RSS_LIMIT_PCT
        and not (memory is not None and memory.steady_rise)
        and exit_status == 0
        and not alive
    )
    return SoakResult(
        started=started.isoformat(timespec="seconds"),
        duration_s=duration_s,
        command=["ftscale", "serve", *serve_args],
        python=sys.version.split()[0] + ("t" if "free-threading" in sys.version else ""),
        gil_enabled=info_after.gil_enabled if info_after else None,
        cpus=len(os.sched_getaffinity(0)),
        load_average_before=load_before,
        load_average_after=list(os.getloadavg()),
        clients=clients,
        idle_sockets=idle,
        kinds=kinds,
        expected=EXPECTED,
        unexpected=unexpected,
        requests=sum(n for counts in kinds.values() for n in counts.values()),
        rss_start_bytes=rss_start,
        rss_end_bytes=rss_end,
        rss_change_pct=round(change, 2),
        health_after_ms={k: round(v, 3) for k, v in health.items()},
        processes_start=processes_start,
        processes_end=len(tree),
        exit_status=exit_status,
        leftover_processes=len(alive),
        info_after=info_after,
        passed=passed,
        design=design,
        rss_samples=sampler.samples,
        memory=memory,
    )


def design_args(design: str, threads: int) -> list[str]:
    """``ftscale serve`` arguments for ``MODE/TOPOLOGY`` at ``threads``."""
    mode, sep, topology = design.partition("/")
    if not sep or not mode or not topology:
        raise SystemExit(f"error: --design {design}: want MODE/TOPOLOGY, e.g. threadpool/single")
    return ["--mode", mode, "--topology", topology, "--threads", str(threads)]


def summary(result: SoakResult, path: Path) -> str:
    memory = result.memory
    trend = (
        "too short for a memory trend"
        if memory is None
        else f"RSS after {memory.warmup_s:g} s: {memory.slope_mb_per_min:+.2f} MB/min "
        f"({memory.slope_pct_per_min:+.2f} %/min; last half {memory.last_half_slope_pct_per_min:+.2f} %/min)"
        + (", a steady rise" if memory.steady_rise else "")
    )
    return (
        f"{'passed' if result.passed else 'FAILED'} {result.design or ' '.join(result.command[2:])}: "
        f"{result.requests} requests, {result.unexpected} unexpected; "
        f"/health p50 {result.health_after_ms['p50']:.1f} ms, max {result.health_after_ms['max']:.1f} ms; "
        f"{trend}; exit {result.exit_status}; {result.leftover_processes} left over -> {path}"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.soak", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of mixed traffic, per design")
    parser.add_argument("--clients", type=int, default=4, help="client threads sending requests")
    parser.add_argument("--idle", type=int, default=300, help="idle sockets held open meanwhile")
    parser.add_argument(
        "--design",
        action="append",
        default=None,
        metavar="MODE/TOPOLOGY",
        help=f"a design to soak, repeatable (default: {', '.join(DEFAULT_DESIGNS)})",
    )
    parser.add_argument("--threads", type=int, default=DEFAULT_THREADS, help="each design's --threads")
    parser.add_argument(
        "--warmup",
        type=float,
        default=None,
        help="seconds left out of the memory trend "
        f"(default: a fifth of --duration, at most {MAX_WARMUP_S:g})",
    )
    parser.add_argument(
        "--sample-every", type=float, default=DEFAULT_SAMPLE_EVERY_S, help="seconds between RSS samples"
    )
    parser.add_argument("--out", type=Path, default=Path("results/soak"), help="folder for the JSON files")
    parser.add_argument("serve", nargs="*", help="ftscale serve arguments for one run instead of the designs")
    args = parser.parse_args(argv)
    runs: list[tuple[str | None, list[str]]]
    if args.serve:
        runs = [(None, list(args.serve))]
    else:
        runs = [(d, design_args(d, args.threads)) for d in args.design or DEFAULT_DESIGNS]
    args.out.mkdir(parents=True, exist_ok=True)
    passed = True
    for design, serve_args in runs:
        result = run(
            args.duration,
            args.clients,
            args.idle,
            serve_args,
            warmup_s=args.warmup,
            sample_every_s=args.sample_every,
            design=design,
        )
        stamp = result.started.replace(":", "").replace("-", "").replace("+0000", "Z")
        name = "soak" if design is None else "soak-" + design.replace("/", "-")
        path = args.out / f"{stamp}-{name}.json"
        path.write_text(json.dumps(result.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
        print(summary(result, path), flush=True)
        passed = passed and result.passed
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
