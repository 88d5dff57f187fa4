"""The profile section of a run report (``--profile``): where the CPU time went, what limits scaling.

For each workload and design (a series: build, mode, topology, scaling) with profiled cells:
one stacked bar per thread count, each bucket's capacity time per unit of work relative to the
fewest-thread total (so ideal scaling keeps the bars level, and a bar at 1.3 lost 30 % of the
efficiency, split by bucket); the bucket that grows most named as what limits scaling; a table
of shares and links to each cell's collapsed stacks for flame-graph tools. :func:`verdict_sentences`
gives the verdict one sentence per workload. The numbers come from
:mod:`ftscale.bench.profile.growth`; nothing is computed here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ftscale.bench.profile.growth import (
    MIN_GROWTH,
    OFF_CPU,
    ORDER,
    Breakdown,
    Limit,
    breakdown,
    largest,
    limiting,
)
from ftscale.bench.report import charts, fmt, labels
from ftscale.bench.report.document import Block, Bullets, Figure, Heading, Links, Paragraph, Table
from ftscale.bench.report.model import RunModel, Series
from ftscale.vocab import BUCKET_HELP, Bucket, Mode

TITLE = "What limits scaling: CPU profiles"
DETAILED = frozenset({Bucket.PYTHON, Bucket.HTTP})  # named by function; the others by call site
HINT_SHARE = 0.05  # an on-CPU gc or lock-wait share that explains threads sleeping beside it


def profiled(series: Series) -> list[Breakdown]:
    """The breakdowns of a series' profiled cells, by thread count."""
    found = (breakdown(p.cell.profile, p.threads) for p in series.points)
    return [b for b in found if b is not None]


def _series_with_profiles(model: RunModel, workload: str, size: int) -> list[tuple[Series, list[Breakdown]]]:
    out = []
    for s in model.series_of(workload, size):
        found = profiled(s)
        if found:
            out.append((s, found))
    return out


def has_profiles(model: RunModel) -> bool:
    return any(profiled(s) for s in model.series)


def _work_unit(found: Sequence[Breakdown]) -> str:
    units = {b.profile.work_unit for b in found if b.per_work}
    return units.pop() if len(units) == 1 else "unit of work"


def _where(limit_bucket: str, b: Breakdown) -> str:
    """The call site or function that most of a bucket's samples share, in the given profile."""
    if limit_bucket in DETAILED:
        entries = b.profile.functions
        return entries[0].name if entries else ""
    prefix = f"{limit_bucket}: "
    site = next((e.name for e in b.profile.callers if e.name.startswith(prefix)), "")
    return site.removeprefix(prefix)


def _design(series: Series) -> str:
    return labels.series_label(series.key)


def limit_text(series: Series, found: Sequence[Breakdown]) -> str:
    """One clause about one design: its limiting bucket, or why none is named."""
    name = _design(series)
    ordered = sorted(found, key=lambda b: b.threads)
    limit = limiting(ordered)
    if len(ordered) < 2:
        top = largest(ordered[0])
        share = fmt.pct(ordered[0].relative(ordered[0]).get(top, 0.0), 0)
        return f"{name} was profiled at {ordered[0].threads} thread(s) only (largest: {top}, {share})"
    if limit is None:
        top = largest(ordered[-1])
        return (
            f"on {name} no bucket's cost per {_work_unit(ordered)} grows by 5% or more from "
            f"{ordered[0].threads} to {ordered[-1].threads} threads (largest: {top})"
        )
    return f"on {name}, {_limit_clause(limit, series)}"


def shares_one_gil(series: Series) -> bool:
    """Whether a design's working threads run in one process (so, on a GIL build, under one GIL).

    Worker processes (a topology that is not :attr:`~ftscale.vocab.TopologyInfo.one_process`) and a
    ``process`` pool compute in processes of their own: each has its own GIL, so their threads never
    wait for each other's. A micro series (no topology) runs its threads in one worker process."""
    key = series.key
    return key.one_process if key.topology is not None else key.mode != Mode.PROCESS


def _off_cpu_why(limit: Limit, series: Series) -> str:
    """Why a cell's threads were off-CPU, from what the profile shows beside it.

    Waiting for the GIL is sleeping (idle), never preemption (cpu-wait), and only threads of one
    process wait for each other's GIL."""
    high = limit.high
    if high.profile.gil and limit.bucket == Bucket.IDLE and shares_one_gil(series):
        both = " and ".join(f"{b} {fmt.signed_pct(limit.growths.get(b, 0.0), 0)}" for b in OFF_CPU)
        return f": on this GIL build its threads waited for the GIL ({both})"
    if limit.bucket == Bucket.CPU_WAIT:
        own = {b: g for b, g in limit.growths.items() if b not in OFF_CPU}
        top = max(own, key=lambda b: own[b], default=None)
        beside = (
            f"; of what the cell itself ran, {top} grows most ({fmt.signed_pct(own[top], 0)})"
            if top is not None and own[top] >= MIN_GROWTH
            else ""
        )
        return (
            ": its threads were runnable but preempted (other processes on its CPUs, or too many threads)"
            + beside
        )
    shares = high.relative(high)
    hints = {
        str(Bucket.GC): "in stop-the-world pauses of the collector",
        str(Bucket.LOCK_WAIT): "parked on a contended lock",
    }
    seen = [b for b in hints if shares.get(b, 0.0) >= HINT_SHARE]
    if seen:
        likely = max(seen, key=lambda b: shares[b])
        return (
            f": its threads slept, likely {hints[likely]} ({likely} is {fmt.pct(shares[likely], 0)} of the "
            f"{high.threads}-thread capacity)"
        )
    return ": its threads slept (on a parked lock, in a stop-the-world pause, or waiting for I/O or work)"


def _limit_clause(limit: Limit, series: Series) -> str:
    if limit.bucket in OFF_CPU:
        why = _off_cpu_why(limit, series)
    else:
        where = _where(limit.bucket, limit.high)
        why = f", mostly {where}" if where else ""
    per = (
        f"per {limit.high.profile.work_unit or 'unit of work'}"
        if limit.high.per_work
        else "share of capacity"
    )
    return (
        f"{limit.bucket} grows most from {limit.low.threads} to {limit.high.threads} threads "
        f"({fmt.signed_pct(limit.growth, 0)} of the {limit.low.threads}-thread cost {per}{why})"
    )


def verdict_blocks(model: RunModel) -> list[Block]:
    """The verdict's sentences on what limits scaling, as one list (nothing without profiles)."""
    sentences = verdict_sentences(model)
    return [Bullets(tuple(sentences.values()))] if sentences else []


def verdict_sentences(model: RunModel) -> dict[str, str]:
    """One sentence per profiled workload (keyed by workload name) for the verdict paragraph."""
    out: dict[str, str] = {}
    for workload, _wclass, size in model.workloads():
        pairs = _series_with_profiles(model, workload, size)
        if pairs:
            clauses = "; ".join(limit_text(s, found) for s, found in pairs)
            out[workload] = f"{workload}, what limits scaling (CPU profiles): {clauses}."
    return out


def _chart(workload: str, pairs: Sequence[tuple[Series, list[Breakdown]]]) -> charts.Chart:
    groups = []
    for series, found in pairs:
        ordered = sorted(found, key=lambda b: b.threads)
        groups.append((_design(series), [(b.threads, b.relative(ordered[0])) for b in ordered]))
    per_work = all(b.per_work for _, found in pairs for b in found)
    ylabel = (
        f"cost per {_work_unit([b for _, f in pairs for b in f])}, ÷ fewest-thread total"
        if per_work
        else "share of capacity"
    )
    return charts.buckets(groups, ORDER, f"{workload}: where the capacity went (profiled repetition)", ylabel)


def _table(pairs: Sequence[tuple[Series, list[Breakdown]]]) -> Table:
    present = [b for b in ORDER if any(b in x.costs and x.costs[b] > 0 for _, found in pairs for x in found)]
    rows = []
    for series, found in pairs:
        for b in sorted(found, key=lambda x: x.threads):
            shares = b.relative(b)
            rows.append(
                (
                    _design(series),
                    str(b.threads),
                    str(b.profile.samples),
                    *(fmt.pct(shares.get(name, 0.0), 0) for name in present),
                    ", ".join(b.profile.flags),
                )
            )
    header = ("Design", "Threads", "Samples", *present, "Notes")
    return Table(header, tuple(rows), "lrr" + "r" * len(present) + "l")


def _links(pairs: Sequence[tuple[Series, list[Breakdown]]]) -> Links:
    items = []
    for series, found in pairs:
        for b in sorted(found, key=lambda x: x.threads):
            if b.profile.folded:
                items.append((f"{_design(series)} @{b.threads}", b.profile.folded))
    return Links(tuple(items))


def _failed(model: RunModel) -> list[str]:
    return [
        f"{c.cell_id}: {c.profile.error}"
        for c in model.run.cells
        if c.profile is not None and c.profile.status == "failed"
    ]


def _figure(name: str, caption: str, chart: charts.Chart) -> Figure:
    return Figure(name, caption, chart.png, chart.legend_entries)


def section(model: RunModel) -> list[Block]:
    """The report's profile section; empty when the run has no profiles."""
    failures = _failed(model)
    if not has_profiles(model) and not failures:
        return []
    blocks: list[Block] = [
        Heading(2, TITLE),
        Paragraph(
            "Each profiled cell ran one extra repetition under Linux perf (cpu-clock sampling with call "
            "graphs of the whole process tree, Python functions through CPython's perf trampoline); it is"
            " never one of the measured repetitions above, whose numbers it does not touch. Every sample "
            "is sorted into one bucket by the symbols on its stack. A waiting thread is not sampled, so "
            "the capacity (the cell's threads, at most its CPUs, over the profiled window) that none of "
            "its threads used is shown as idle (they slept) and cpu-wait (they were runnable but "
            "preempted), told apart by perf's context-switch records. Bars: each bucket's cost per unit "
            "of work, relative to the total at the fewest threads, so ideal scaling keeps a design's bars"
            " level and a bar at 1.3 lost 30% of the efficiency to the buckets that grew. The bucket that"
            " grows most is what limits scaling (named when it grows by 5% of the fewest-thread cost or "
            "more)."
        ),
        Bullets(tuple(f"{b}: {BUCKET_HELP[b]}" for b in Bucket)),
    ]
    for workload, wclass, size in model.workloads():
        pairs = _series_with_profiles(model, workload, size)
        if not pairs:
            continue
        # a file name from the workload's (a user's app: MODULE:ATTR), as the scaling charts make theirs
        stem = re.sub(r"[^A-Za-z0-9.]+", "-", f"{workload}-{size}").strip("-").lower()
        about = labels.sized(wclass, size).removeprefix(", ") or labels.class_name(wclass)  # "size N"
        blocks += [
            Heading(3, f"{workload} ({about})"),
            Paragraph("What limits scaling: " + "; ".join(limit_text(s, found) for s, found in pairs) + "."),
            _figure(
                f"{stem}-profile.png", f"{workload}: profile buckets by thread count", _chart(workload, pairs)
            ),
            _table(pairs),
            Paragraph(
                "Collapsed stacks per cell (flamegraph.pl, speedscope, inferno read them as they are):"
            ),
            _links(pairs),
        ]
    if failures:
        blocks += [Paragraph("Profiles that could not be recorded (the cells themselves are measured):")]
        blocks.append(Bullets(tuple(failures)))
    return blocks
