"""The micro bench's console summary, from a run directory's files only.

Per workload and build: the speedup S(N) = median throughput at the largest N over the median
at 1 thread, the efficiency S(N)/N, for each scaling mode; and for a free-threaded build, its
1-thread time relative to its GIL twin of the same version. Plain ratios of medians: the
confidence intervals, fits and charts are the report's (``bench.report``).
"""

from __future__ import annotations

import re
import statistics
from dataclasses import dataclass

from ftscale.bench.results import Run
from ftscale.schema import RunMeta

SCALING_ORDER = ("strong", "weak")


@dataclass(frozen=True)
class Scaling:
    mode: str
    threads: int  # the largest thread count measured
    speedup: float  # median throughput at `threads` / median at 1 thread

    @property
    def efficiency(self) -> float:
        return self.speedup / self.threads


@dataclass(frozen=True)
class Row:
    workload: str
    build: str
    scaling: tuple[Scaling, ...]
    twin: str | None = None  # the GIL build this free-threaded one is compared with
    overhead: float | None = None  # its 1-thread time / the twin's, minus 1 (0.2 = 20% slower)


def _minor(version: str) -> str | None:
    match = re.match(r"(\d+)\.(\d+)", version)
    return f"{match[1]}.{match[2]}" if match else None


def gil_twin(meta: RunMeta, build: str) -> str | None:
    """The GIL build of the same major.minor as free-threaded ``build``, if the run has one."""
    record = meta.builds.get(build)
    if record is None or not record.py_gil_disabled:
        return None
    minor = _minor(record.version)
    twins = [n for n, b in meta.builds.items() if not b.py_gil_disabled and _minor(b.version) == minor]
    return twins[0] if twins else None


def summarise(run: Run) -> list[Row]:
    medians: dict[tuple[str, str, str], dict[int, float]] = {}
    for cell in run.ok_cells():
        if cell.samples and cell.scaling:
            key = (cell.workload, cell.build, cell.scaling)
            medians.setdefault(key, {})[cell.threads] = statistics.median(cell.samples)

    def one_thread(workload: str, build: str) -> float | None:
        for mode in SCALING_ORDER:
            value = medians.get((workload, build, mode), {}).get(1)
            if value:
                return value
        return None

    order = [str(w) for w in run.meta.config.get("workloads", [])]
    workload_names = sorted(
        {k[0] for k in medians}, key=lambda w: (order.index(w) if w in order else len(order), w)
    )
    builds = [b for b in run.meta.builds if any(k[1] == b for k in medians)]
    builds += sorted({k[1] for k in medians} - set(builds))
    rows = []
    for workload in workload_names:
        for build in builds:
            points = []
            for mode in SCALING_ORDER:
                by_threads = medians.get((workload, build, mode), {})
                top = max(by_threads, default=0)
                if 1 in by_threads and top > 1:
                    points.append(Scaling(mode, top, by_threads[top] / by_threads[1]))
            if not points and not any(k[:2] == (workload, build) for k in medians):
                continue
            twin = gil_twin(run.meta, build)
            overhead = None
            ft, gil = one_thread(workload, build), one_thread(workload, twin) if twin else None
            if ft and gil:
                overhead = gil / ft - 1.0  # throughputs: time ratio is their inverse
            rows.append(Row(workload, build, tuple(points), twin, overhead))
    return rows


def format_summary(rows: list[Row]) -> list[str]:
    if not rows:
        return ["summary: no successful cells"]
    header = (
        f"{'workload':<18} {'build':<7} {'strong S(N)  eff':<18} {'weak S(N)  eff':<18} 1-thread vs GIL twin"
    )
    lines = ["", header, "-" * len(header)]
    for row in rows:
        cols = []
        for mode in SCALING_ORDER:
            point = next((p for p in row.scaling if p.mode == mode), None)
            cols.append(f"S({point.threads})={point.speedup:.2f} {point.efficiency:4.0%}" if point else "-")
        twin = f"{row.overhead:+.0%} time vs {row.twin}" if row.overhead is not None else ""
        lines.append(f"{row.workload:<18} {row.build:<7} {cols[0]:<18} {cols[1]:<18} {twin}".rstrip())
    lines.append(
        "S(N): median calls/s at N threads / at 1 thread; eff = S(N)/N; full statistics: bench.report"
    )
    return lines
