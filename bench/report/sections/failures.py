"""Cells that did not measure: the failed ones (with their stderr) and the skipped ones."""

from __future__ import annotations

from ftscale.bench.report import fmt
from ftscale.bench.report.document import Block, Code, Heading, Paragraph, Table
from ftscale.bench.report.model import RunModel, server_of


def skipped_section(model: RunModel) -> list[Block]:
    """Designs a server could not run on a build: nothing was started for them."""
    if not model.skipped:
        return []
    groups: dict[tuple[str, str, str, str], int] = {}
    for c in model.skipped:
        design = "·".join(x for x in (c.mode, c.topology) if x)
        key = (c.build, server_of(c) or fmt.DASH, design, c.skip_reason or fmt.DASH)
        groups[key] = groups.get(key, 0) + 1
    rows = tuple((*key[:3], str(n), key[3]) for key, n in sorted(groups.items()))
    return [
        Heading(2, "Skipped cells"),
        Paragraph(
            f"{fmt.count(len(model.skipped), 'cell')} could not run on their build and were not started "
            "(not failures):"
        ),
        Table(("Build", "Server", "Design", "Cells", "Why"), rows, "lllrl"),
    ]


def failed_section(model: RunModel) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Failed cells")]
    if not model.failed:
        return [*blocks, Paragraph("None.")]
    rows = tuple(
        (
            c.build,
            c.workload,
            c.mode or "",
            c.topology or "",
            c.scaling or "",
            str(c.threads),
            c.error or ("no samples" if c.status == "ok" else ""),
        )
        for c in model.failed
    )
    blocks.append(
        Table(("Build", "Workload", "Mode", "Topology", "Scaling", "Threads", "Error"), rows, "lllllrl")
    )
    for c in model.failed:
        if c.stderr_tail:
            blocks += [Paragraph(f"stderr of {c.cell_id} (tail):"), Code(c.stderr_tail)]
    return blocks
