"""In-memory runs for tests of the report model: cells with chosen samples, no files.

Built from the real schema models, so a renamed field breaks the tests that use them. These are
synthetic inputs, never measurements.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from ftscale.bench.results import Run

from ftscale import schema

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
        gil_enabled=gil_enabled,
        started=STAMP,
        finished=STAMP,
    )


def run(cells: Iterable[schema.MicroCell], builds: Iterable[str] = ("3.14", "3.14t")) -> Run:
    """A micro run holding ``cells``, with build records for ``builds``."""
    meta = schema.RunMeta(
        run_id="synthetic",
        kind="micro",
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
