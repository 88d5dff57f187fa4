"""In-memory runs for tests of the report model: cells with chosen samples, no files.

Built from the real schema models, so a renamed field breaks the tests that use them. These are
synthetic inputs, never measurements.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from ftscale import schema, workloads
from ftscale.bench import histogram
from ftscale.bench.results import Run

STAMP = "2026-11-01T10:00:00+00:00"


def build(name: str) -> schema.Build:
    """A build record: ``3.14t`` is free-threaded (GIL off), ``3.14`` is not; both are version 3.14.1."""
    ft = name.endswith("t")
    return schema.Build(
        build=name,
        version=f"{name.removesuffix('t')}.1",
        executable=f"/opt/python/{name}/bin/python{name}",
        py_gil_disabled=ft,
        gil_enabled=not ft,
        config_args="--disable-gil" if ft else "",
    )


def micro_cell(
    threads: int,
    samples: Sequence[float],
    build: str = "3.14t",
    workload: str = "nbody",
    scaling: str = "strong",
    gil_enabled: bool | None = None,
    workload_class: str = "pure-python",
    size: int = 100,
    flags: Sequence[str] = (),
) -> schema.MicroCell:
    return schema.MicroCell(
        run_id="synthetic",
        cell_id=f"{build}__{workload}-{size}__{scaling}__t{threads:03d}",
        build=build,
        workload=workload,
        workload_class=workload_class,
        size=size,
        threads=threads,
        scaling=scaling,  # type: ignore[arg-type]
        status="ok",
        unit="calls/s",
        samples=list(samples),
        flags=list(flags),
        gil_enabled=gil_enabled,
        started=STAMP,
        finished=STAMP,
    )


def run(
    cells: Iterable[schema.MicroCell | schema.HttpCell],
    builds: Iterable[str] = ("3.14", "3.14t"),
    kind: str = "micro",
    config: dict[str, Any] | None = None,
) -> Run:
    """A run of ``kind`` (micro unless said) holding ``cells``, with build records for ``builds``."""
    meta = schema.RunMeta(
        run_id="synthetic",
        kind=kind,  # type: ignore[arg-type]
        config=dict(config or {}),
        created=STAMP,
        host=schema.Host(
            hostname="synthetic",
            platform="Linux",
            machine="x86_64",
            cpu_model="Synthetic CPU",
            logical_cores=32,
            affinity=list(range(32)),
        ),
        git=schema.Git(commit=None, dirty=None),
        builds={name: build(name) for name in builds},
    )
    return Run(path=Path("synthetic"), meta=meta, cells=tuple(cells))


def http_repetition(rps: float, **measured: Any) -> schema.HttpRepetition:
    """One repetition at ``rps``; ``measured`` overrides any other field (latency, memory, errors ...)."""
    fields: dict[str, Any] = dict(
        throughput_rps=rps,
        requests=int(rps),
        duration_s=1.0,
        latency_ms={"p50": 1.0, "p90": 2.0, "p99": 3.0, "p99.9": 4.0},
        errors={},
        server_cpu_pct=100.0,
        rss_bytes=50_000_000,
        pss_bytes=40_000_000,
        server_processes=1,
        health_latency_ms=schema.HealthProbe(p50=0.5, p99=1.0, samples=10),
        generator_cpu_pct=20.0,
        generator_busy_pct=10.0,
        generator_busy_max_pct=10.0,
        ceiling_rps=10_000.0,
    )
    given = {**fields, **measured}
    load = {key: given.pop(key) for key in schema.FLAT_LOAD_FIELDS if key in given}
    load.setdefault("generator", "wrk")
    return schema.HttpRepetition(load=schema.LoadResult(**load), **given)


def latency_histogram(n: int, p99_ms: float, common_ms: float = 1.0) -> dict[int, int]:
    """``n`` latencies: 98 % at ``common_ms``, 2 % at ``p99_ms`` (so the p99 and its upper bound lie
    in ``p99_ms``'s bucket)."""
    tail = max(1, round(0.02 * n))
    return histogram.from_value_counts([(round(common_ms * 1000), n - tail), (round(p99_ms * 1000), tail)])


def http_cell(
    threads: int,
    repetitions: Sequence[schema.HttpRepetition],
    build: str = "3.14t",
    workload: str = "nbody",
    mode: str = "threadpool",
    topology: str = "single",
    flags: Sequence[str] = (),
    stage: str = "explore",
) -> schema.HttpCell:
    """An HTTP cell; a confirmation cell (``stage="confirm"``) numbers its repetitions as rounds."""
    if stage == "confirm":
        repetitions = [r.model_copy(update={"round": i}) for i, r in enumerate(repetitions)]
    return schema.HttpCell(
        run_id="synthetic",
        cell_id=f"{build}__{workload}__{mode}__{topology}__t{threads:03d}"
        + ("-confirm" if stage == "confirm" else ""),
        stage=stage,  # type: ignore[arg-type]
        build=build,
        workload=workload,
        workload_class="pure-python",
        size=100,
        threads=threads,
        mode=mode,
        topology=topology,
        status="ok",
        unit="req/s",
        samples=[r.load.throughput_rps for r in repetitions],
        repetitions=list(repetitions),
        flags=list(flags),
        started=STAMP,
        finished=STAMP,
    )


def workload(name: str, compute: Callable[[int], int], max_size: int = 1) -> workloads.Workload:
    """A workload for a test's own registry entry: sizes 1 to ``max_size``, described by its name."""
    return workloads.Workload(
        name=name,
        compute=compute,
        workload_class=workloads.WorkloadClass.CONTENTION,
        size_meaning="n",
        default_size=1,
        min_size=1,
        max_size=max_size,
        smoke_size=1,
        description=name,
    )
