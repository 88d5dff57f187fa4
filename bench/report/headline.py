"""The first screen of a ``--preset headline`` run: the many-core answer at a glance.

Four things, in this order, before anything else in the report: how each build scales in process
(its speedup over 1 thread at 1, 2, 4 … up to the server CPUs, from the run's in-process pass),
the HTTP verdict of each workload (the confirmed candidates, the winner with its interval, and
memory), each design's share of the in-process ceiling at each thread count served, and one
picture of the first and the last. The evidence (every design, the rounds, the tables) follows in
the usual report. Every number is a field of the model or a finding; nothing is computed here.
"""

from __future__ import annotations

from collections.abc import Sequence

from ftscale.bench.report import ceiling_report, charts, fmt, labels, words
from ftscale.bench.report.ceiling import shares
from ftscale.bench.report.document import Block, Bullets, Figure, Heading, Paragraph, Table
from ftscale.bench.report.findings import Verdict
from ftscale.bench.report.model import RunModel, Series

PRESET = "headline"


def headline_run(model: RunModel) -> bool:
    return model.meta.kind == "http" and model.meta.config.get("preset") == PRESET


def speedup_table(ceilings: Sequence[Series]) -> Table:
    """Workload, build, the speedup over 1 thread at each count, and calls per second at the most."""
    counts = sorted({p.threads for s in ceilings for p in s.points})
    rows = []
    for s in ceilings:
        at = {p.threads: p for p in s.points}
        top = at[max(at)]
        rows.append(
            (
                s.key.workload,
                s.key.build,
                *(f"{fmt.fixed(at[n].speedup.value)}{fmt.TIMES}" if n in at else fmt.DASH for n in counts),
                f"{fmt.num(top.throughput.value)} @{top.threads}",
            )
        )
    header = ("Workload", "Build", *(f"@{n}" for n in counts), "calls/s")
    return Table(header, tuple(rows), "ll" + "r" * (len(counts) + 1))


def http_lines(found: Sequence[Verdict]) -> list[str]:
    """Each workload's comparison: the candidates, the winner with its interval, and memory."""
    lines = []
    for v in found:
        for c in v.comparisons:
            sentence = words.comparison_sentence(c, True)
            lines.append(f"{v.workload} ({labels.class_name(v.workload_class)}): {sentence}")
    return lines


def first_screen(model: RunModel, found: Sequence[Verdict]) -> list[Block]:
    """The headline's answer (nothing for another run)."""
    if not headline_run(model) or not model.ceilings:
        return []
    cpus = words.server_cpus(model)
    builds = " and ".join(sorted(model.meta.builds, reverse=True))
    blocks: list[Block] = [
        Heading(2, f"The headline: {builds} on {fmt.count(cpus or 0, 'server CPU')}"),
        Paragraph(
            "In process (pyperf, pinned to the server CPUs): speedup over 1 thread, and calls per second "
            "at the most threads."
        ),
        speedup_table(model.ceilings),
        Paragraph("Over HTTP, each build's candidate confirmed in paired rounds on fresh servers:"),
        Bullets(tuple(http_lines(found)) or ("No comparison could be made (see below).",)),
    ]
    found_shares = shares(model)
    if found_shares:
        blocks += [
            Paragraph(
                "Share of the in-process ceiling: each design's throughput over its build's in process, "
                "at the same threads and CPUs (1 = serving costs nothing; details below):"
            ),
            ceiling_report.shares_table(found_shares),
        ]
    dots: dict[str, list[tuple[str, int, float]]] = {}
    for share in found_shares:
        dots.setdefault(share.key.workload, []).append((share.key.build, share.threads, share.share.value))
    chart = charts.in_process(model.ceilings, dots)
    blocks.append(
        Figure(
            "headline.png",
            "Left of each pair: each build's speedup in process (the ideal dashed); right: each design's "
            "share of its build's in-process ceiling at each thread count (1 dashed)",
            chart.png,
            chart.legend_entries,
        )
    )
    return blocks
