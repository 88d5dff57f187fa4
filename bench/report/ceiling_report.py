"""The share of the in-process ceiling in words and tables, for every HTTP report.

One table per run: each design (every build's, closed loop) at each thread count the sweep served,
its throughput over the same workload's in-process throughput on its build at those threads and
CPUs (:mod:`.ceiling` computes it). Below it, the ceilings themselves, and what a share can and
cannot say. Every number comes from the model; nothing is computed here but the layout.
"""

from __future__ import annotations

from collections.abc import Sequence

from ftscale.bench.report import fmt, labels
from ftscale.bench.report.ceiling import Share, shares
from ftscale.bench.report.document import Block, Heading, Paragraph, Table
from ftscale.bench.report.model import RunModel, Series

EXPLAINED = (
    "Share of the in-process ceiling: the design's median throughput over the same workload's "
    "median in process (pyperf, strong scaling, a team of threads released together) on the same "
    "build, at the same size and thread count, pinned to the same server CPUs, measured in this run "
    "while nothing else ran. Below 1, the rest went to serving: HTTP parsing, the event loop, "
    "hand-offs to a pool or to worker processes. The ceiling is a thread team's, so a GIL build's "
    "worker processes or process pool can exceed it. A simulated I/O wait is not run in process: "
    "for a workload that waits, the ceiling is its compute's. Each in-process cell is one pyperf "
    "process (one independent sample), so shares carry no interval."
)


def share_text(share: Share) -> str:
    return fmt.fixed(share.share.value)


def shares_table(found: Sequence[Share]) -> Table:
    """One row per design (the free-threaded build's first), one column per workload and thread
    count: the share there (— where the design was not served at that count)."""
    order = list(dict.fromkeys(s.key.workload for s in found))
    columns = sorted({(s.key.workload, s.threads) for s in found}, key=lambda c: (order.index(c[0]), c[1]))
    at: dict[str, dict[tuple[str, int], Share]] = {}
    for share in sorted(found, key=lambda s: (-int(s.key.build.endswith("t")), s.key.build)):
        at.setdefault(labels.series_label(share.key), {})[(share.key.workload, share.threads)] = share
    rows = tuple(
        (design, *(share_text(mine[c]) if c in mine else fmt.DASH for c in columns))
        for design, mine in at.items()
    )
    header = ("Design", *(f"{w} @{n}" for w, n in columns))
    return Table(header, rows, "l" + "r" * len(columns))


def ceilings_table(ceilings: Sequence[Series]) -> Table:
    """The ceilings themselves: calls per second in process, per build and thread count."""
    counts = sorted({p.threads for s in ceilings for p in s.points})
    rows = []
    for s in ceilings:
        at = {p.threads: p for p in s.points}
        rows.append(
            (
                s.key.workload,
                s.key.build,
                *(fmt.num(at[n].throughput.value) if n in at else fmt.DASH for n in counts),
            )
        )
    header = ("Workload", "Build", *(f"@{n}" for n in counts))
    return Table(header, tuple(rows), "ll" + "r" * len(counts))


def section(model: RunModel, level: int = 2, with_shares: bool = True) -> list[Block]:
    """The shares (unless a first screen gave them), the ceilings and how to read them; nothing for
    a run without an in-process pass."""
    if model.meta.kind != "http" or not model.ceilings:
        return []
    found = shares(model)
    blocks: list[Block] = [Heading(level, "Share of the in-process ceiling")]
    if found and with_shares:
        blocks.append(shares_table(found))
    elif not found:
        blocks.append(Paragraph("No design was served at a thread count measured in process."))
    blocks += [
        Paragraph(EXPLAINED),
        Heading(level + 1, "The ceilings: calls per second in process, by threads"),
        ceilings_table(model.ceilings),
    ]
    return blocks
