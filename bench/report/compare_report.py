"""The comparison report of several runs, as a :class:`~ftscale.bench.report.document.Document`.

It opens with a summary sentence per pair of runs and a chart of the ratios; runs are named
once, in a table, and by a short label (A, B, …) everywhere else.
"""

from __future__ import annotations

from ftscale.bench.report import charts, fmt, labels
from ftscale.bench.report.compare import (
    CeilingComparison,
    Comparison,
    RunComparison,
    geometric_mean,
    improvements,
    regressions,
)
from ftscale.bench.report.document import Block, Document, Figure, Heading, Paragraph, Table
from ftscale.bench.report.model import RunModel
from ftscale.bench.report.sections.common import CI, choice_label, slug
from ftscale.bench.report.sections.metadata import metadata_blocks


def letter(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else f"R{index + 1}"


def _labels(models: tuple[RunModel, ...]) -> dict[str, str]:
    return {m.meta.run_id: letter(i) for i, m in enumerate(models)}


def summary_sentence(c: RunComparison, names: dict[str, str]) -> str:
    a, b = names[c.base.meta.run_id], names[c.other.meta.run_id]
    if not c.matches:
        return f"{b} against {a}: no cell in common."
    faster, slower = improvements(c), regressions(c, 0.0)
    ties = len(c.matches) - len(faster) - len(slower)
    return (
        f"{b} against {a}: over {len(c.matches)} matched cells, {b} runs at "
        f"{fmt.fixed(geometric_mean(c.matches))}{fmt.TIMES} {a}'s throughput (geometric mean of the ratios); "
        f"{len(faster)} cells faster and {len(slower)} slower beyond their intervals, {ties} with no "
        "significant difference."
    )


def _runs_table(models: tuple[RunModel, ...]) -> Table:
    names = _labels(models)
    rows = tuple(
        (
            names[m.meta.run_id],
            m.meta.run_id,
            m.meta.kind,
            m.meta.host.hostname,
            m.meta.host.cpu_model,
            str(m.meta.host.logical_cores),
            fmt.cpu_list(m.meta.host.affinity),
            ", ".join(f"{b.build} ({b.version})" for _, b in sorted(m.meta.builds.items())) or fmt.DASH,
            (m.meta.git.commit or fmt.DASH)[:12],
            "; ".join(m.meta.notes),
        )
        for m in models
    )
    header = ("", "Run", "Kind", "Host", "CPU model", "Cores", "Affinity", "Builds", "Commit", "Notes")
    return Table(header, rows, "lllllrllll")


def _run_comparison(c: RunComparison, names: dict[str, str]) -> list[Block]:
    base, other = names[c.base.meta.run_id], names[c.other.meta.run_id]
    blocks: list[Block] = [
        Heading(2, f"{other} against {base}"),
        Paragraph(
            f"{len(c.matches)} cells in common (same build, workload, size, mode, topology, scaling, load "
            f"and threads); {c.only_base} only in {base}, {c.only_other} only in {other}. Ratio = median of "
            f"{other} ÷ median of {base}, with its exact interval (real coverage shown when below 95 %)."
        ),
    ]
    workloads = list(dict.fromkeys((m.key.workload, m.key.workload_class, m.key.size) for m in c.matches))
    for workload, wclass, size in workloads:
        rows = tuple(
            (
                labels.series_label(m.key),
                str(m.threads),
                fmt.estimate(m.base.throughput),
                fmt.estimate(m.other.throughput),
                fmt.ratio(m.ratio),
                labels.flag_names(m.base.flags),
                labels.flag_names(m.other.flags),
            )
            for m in c.matches
            if (m.key.workload, m.key.size) == (workload, size)
        )
        unit = next(m.key.unit for m in c.matches if m.key.workload == workload)
        header = (
            "Series",
            "Threads",
            f"{base} {unit} {CI}",
            f"{other} {unit} {CI}",
            f"Ratio {CI}",
            f"Flags in {base}",
            f"Flags in {other}",
        )
        heading = f"{workload} ({wclass}{labels.sized(wclass, size)})"
        blocks += [Heading(3, heading), Table(header, rows, "lrrrrll")]
    return blocks


def _ratio_chart(c: RunComparison, names: dict[str, str], index: int) -> list[Block]:
    if not c.matches:
        return []
    base, other = names[c.base.meta.run_id], names[c.other.meta.run_id]
    labels_ = [f"{labels.series_label(m.key)} @{m.threads} · {m.key.workload}" for m in c.matches]
    chart = charts.ratios(
        labels_, [m.ratio for m in c.matches], f"{other} ÷ {base}, per matched cell", "ratio"
    )
    return [
        Figure(f"ratios-{index}-{other}-{base}.png", f"{other} ÷ {base}: green faster, red slower", chart.png)
    ]


def _ceiling(c: CeilingComparison, index: int, names: dict[str, str]) -> list[Block]:
    micro, http = names[c.micro.meta.run_id], names[c.http.meta.run_id]
    where = (
        "Both runs are from the same host."
        if c.same_host
        else "The runs are from different hosts: the share mixes the two machines."
    )
    own = c.micro is c.http  # an HTTP run against its own in-process pass
    blocks: list[Block] = [
        Heading(
            2,
            f"In process against HTTP: {http}, its own in-process pass"
            if own
            else f"Micro against HTTP: {http} against {micro}",
        ),
        Paragraph(
            "In-process peak: the highest median throughput of the micro sweep (strong scaling when "
            "measured), or of the HTTP run's own in-process pass, for the workload, size and build; HTTP "
            "best: the highest median over every mode and "
            f"topology of the HTTP run. Share = HTTP best ÷ in-process peak (a streamed workload's HTTP best "
            "is in chunks/s and one call in process computes a whole stream: its share is streams/s ÷ "
            f"calls/s). {where}"
        ),
    ]
    if not c.rows:
        return [*blocks, Paragraph("No workload, size and build measured by both runs.")]
    rows = tuple(
        (
            r.workload_class,
            r.workload,
            str(r.size),
            r.build,
            choice_label(r.micro),
            fmt.estimate(r.micro.point.throughput),
            choice_label(r.http),
            fmt.estimate(r.http.point.throughput),
            fmt.ratio(r.share),
        )
        for r in c.rows
    )
    header = (
        "Class",
        "Workload",
        "Size",
        "Build",
        "In-process peak",
        f"calls/s {CI}",
        "HTTP best",
        f"req/s (streams: chunks/s) {CI}",
        f"Share {CI}",
    )
    name = f"ceiling-{index}-{slug(micro)}-{slug(http)}.png"
    chart = charts.ratios(
        [f"{r.workload} · {r.build}" for r in c.rows],
        [r.share for r in c.rows],
        "How much of the in-process ceiling the service reaches",
        "HTTP peak / in-process peak",
    )
    return [
        *blocks,
        Table(header, rows, "llrllrlrr"),
        Figure(name, "Share of the in-process ceiling reached over HTTP", chart.png),
    ]


def build(comparison: Comparison) -> Document:
    names = _labels(comparison.models)
    title = "ftscale comparison: " + " vs ".join(names.values())
    blocks: list[Block] = [Heading(1, title)]
    sentences = [summary_sentence(c, names) for c in comparison.runs]
    blocks += [Paragraph(s) for s in sentences]
    for i, c in enumerate(comparison.runs, start=1):
        blocks += _ratio_chart(c, names, i)
    blocks += [
        Paragraph(
            "Each run is compared cell by cell with the first run of its kind given; a micro run and an "
            "HTTP run are compared by how much of the in-process ceiling the service reaches. Every number "
            "is read or derived from the runs' result files."
        ),
        Heading(2, "Runs"),
        _runs_table(comparison.models),
    ]
    for c in comparison.runs:
        blocks += _run_comparison(c, names)
    for i, ceiling in enumerate(comparison.ceilings, start=1):
        blocks += _ceiling(ceiling, i, names)
    if not comparison.runs and not comparison.ceilings:
        blocks.append(
            Paragraph("Nothing to compare: give two runs of the same kind, or a micro and an HTTP run.")
        )
    for model in comparison.models:
        blocks.append(Heading(2, f"Run {names[model.meta.run_id]}"))
        blocks += metadata_blocks(model.meta, level=3)
    return Document(title, tuple(blocks))
