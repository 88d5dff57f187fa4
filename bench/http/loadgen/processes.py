"""The built-in generator spread over the client CPUs: one process per CPU, their results merged.

One thread of the built-in client (:mod:`.client`) is what one process can drive, so a load is
split between one process per client CPU (:func:`process_specs`; at most one per connection),
each ``python -m ftscale.bench.http.loadgen python`` pinned to its CPU, with its share of the
connections and, in an open loop, of the rate and a schedule seeded from the load's seed and its
index; their results are merged (:func:`merge`: counts added, histograms merged) — so one
generator thread is not what limits a many-core run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ftscale.bench import histogram
from ftscale.bench.http import arrivals as schedules
from ftscale.bench.http.loadgen.spec import PERCENTILES, LoadSpec, percentiles_ms, spec_argv
from ftscale.schema import LoadResult, parse
from ftscale.vocab import Arrival, Generator


def worker_command(spec: LoadSpec) -> list[str]:
    """The command of one built-in generator process applying ``spec`` (in that process)."""
    return [sys.executable, "-m", "ftscale.bench.http.loadgen", str(Generator.PYTHON), *spec_argv(spec)]


def merge(parts: Sequence[LoadResult], rate: float | None) -> LoadResult:
    """One result of several generator processes that ran side by side."""
    if len(parts) == 1:
        return parts[0]
    counts = histogram.merge(p.latency_histogram or {} for p in parts)
    errors: dict[str, int] = {}
    for part in parts:
        for key, n in part.errors.items():
            errors[key] = errors.get(key, 0) + n
    duration = max(p.duration_s for p in parts)
    requests = sum(p.requests for p in parts)
    busy = [p.generator_busy_max_pct for p in parts if p.generator_busy_max_pct is not None]
    lags = [p.send_lag_p99_ms for p in parts if p.send_lag_p99_ms is not None]

    def total(values: Sequence[int | None]) -> int | None:
        return None if any(v is None for v in values) else sum(v or 0 for v in values)

    return LoadResult(
        **merge_streams(parts),
        generator=parts[0].generator,
        requests=requests,
        duration_s=duration,
        throughput_rps=sum(p.throughput_rps for p in parts),
        latency_ms=percentiles_ms(counts) if counts else {k: None for k in PERCENTILES},
        errors=errors,
        generator_cpu_pct=round(sum(p.generator_cpu_pct for p in parts), 1),
        generator_cpus=len(parts),
        open_loop_rate=rate,
        generator_busy_pct=round(sum(p.generator_busy_pct or 0.0 for p in parts), 1),
        # a busy reading missing from one process is missing: the busiest may be that one
        generator_busy_max_pct=max(busy) if busy and len(busy) == len(parts) else None,
        generator_threads=len(parts),
        latency_histogram=counts,
        send_lag_p99_ms=max(lags) if lags else None,
        arrivals=parts[0].arrivals,
        arrival_seed=parts[0].arrival_seed,
        due_requests=total([p.due_requests for p in parts]),
        window_requests=total([p.window_requests for p in parts]),
    )


def merge_streams(parts: Sequence[LoadResult]) -> dict[str, Any]:
    """The streaming fields of side-by-side results: counts added, histograms merged."""
    if all(p.chunks is None for p in parts):
        return {}
    ttfb = histogram.merge(p.ttfb_histogram or {} for p in parts)
    gaps = histogram.merge(p.gap_histogram or {} for p in parts)
    timed = any(p.ttfb_histogram is not None for p in parts)
    return {
        "chunks": sum(p.chunks or 0 for p in parts),
        "chunks_per_s": sum(p.chunks_per_s or 0.0 for p in parts),
        "ttfb_ms": percentiles_ms(ttfb) if timed else None,
        "ttfb_histogram": ttfb if timed else None,
        "gap_histogram": gaps if timed else None,
        "gap_p99_ms": percentiles_ms(gaps)["p99"] if timed else None,
    }


def process_specs(spec: LoadSpec, cpus: int) -> list[LoadSpec]:
    """``spec`` split between one built-in generator process per client CPU (at most one per
    connection): each its share of the connections and of the rate, its own request sequence and,
    in an open loop, its own schedule, seeded from the load's seed and its index (uniform ones
    offset from each other, so that the processes do not send together)."""
    k = max(1, min(cpus, spec.connections))
    share = replace(
        spec, rate=spec.rate / k if spec.rate else None, connections=max(1, spec.connections // k)
    )
    return [
        replace(
            share,
            sequence=share.sequence * k + index,
            seed=schedules.derive_seed(spec.seed, "process", index) if spec.rate else 0,
            phase=index / k if spec.rate and spec.arrivals == Arrival.UNIFORM else 0.0,
        )
        for index in range(k)
    ]


def run_processes(spec: LoadSpec, cpus: Sequence[int]) -> LoadResult:
    """The built-in generator in one process per client CPU, each pinned to its CPU."""
    procs = []
    for index, mine in enumerate(process_specs(spec, len(cpus))):
        proc = subprocess.Popen(
            worker_command(mine),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        os.sched_setaffinity(proc.pid, {cpus[index % len(cpus)]})
        procs.append(proc)
    parts = []
    for proc in procs:
        out, err = proc.communicate(timeout=spec.duration_s + 120)
        if proc.returncode != 0:
            raise RuntimeError(
                f"the built-in generator failed (exit {proc.returncode}): {err.strip()[-400:]}"
            )
        parts.append(parse(LoadResult, out, "the built-in generator"))
    merged = merge(parts, spec.rate)
    return merged.model_copy(update={"arrival_seed": spec.seed}) if spec.rate else merged
