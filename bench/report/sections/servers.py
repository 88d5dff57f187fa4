"""Servers and designs: each HTTP server at its best, and which designs each build measured.

The servers' table appears in a run of several servers; the designs' table names every topology
with whose design it is (ftscale's own or a stock deployment's).
"""

from __future__ import annotations

from collections.abc import Sequence

from ftscale.bench.report import fmt, labels
from ftscale.bench.report.document import Block, Bullets, Heading, Paragraph, Table
from ftscale.bench.report.findings import BuildBest, Verdict
from ftscale.bench.report.model import RunModel
from ftscale.bench.report.sections.common import CI, unit_of
from ftscale.vocab import TOPOLOGIES, TOPOLOGY_HELP, Topology

OWN = "ftscale's own"


def _nodelay(value: bool | None) -> str:
    return fmt.DASH if value is None else fmt.yes_no(value)


def servers_table(model: RunModel, found: Sequence[Verdict]) -> list[Block]:
    """A run of several servers: each server at its best, the best in one process and the best on a
    GIL build, per workload, against the same reference as the table above."""
    if not any(v.servers for v in found):
        return []
    unit = unit_of(model.series)
    rows = []
    for v in found:
        entries: list[tuple[str, BuildBest]] = [
            (s.server, BuildBest(s.choice.build, s.choice, s.relative)) for s in v.servers
        ]
        for what, extra in (("best in one process", v.one_process), ("best on a GIL build", v.gil_best)):
            if extra is not None:
                entries.append((what, extra))
        for what, b in entries:
            p = b.choice.point
            rows.append(
                (
                    v.workload,
                    what,
                    f"{b.build} {b.choice.series.key.design} @{p.threads}",
                    fmt.estimate(p.throughput),
                    "reference" if p is v.reference.point else fmt.ratio(b.relative),
                    fmt.mib(p.memory_bytes),
                    _nodelay(getattr(p.cell, "tcp_nodelay", None)),
                    labels.flag_names(p.flags),
                )
            )
    header = ("Workload", "Server", "Best build design @threads", f"Peak {unit} {CI}", f"÷ GIL best {CI}")
    return [
        Heading(3, "Each server at its best"),
        Table((*header, "Memory", "TCP_NODELAY", "Flags"), tuple(rows), "lllrrrll"),
        Paragraph(
            "Each server's best unflagged point over every build and design (where all are flagged, its "
            "fastest, with its flags); then the best design that "
            "serves from one process (one event loop, or event loops in threads: no worker processes, no "
            "process pool) and the best any GIL build reached. ÷ GIL best: against the same reference as "
            "above (the GIL twin's best design, whatever its server). TCP_NODELAY: whether the server's "
            "accepted connections had it, as the service read it from its own sockets (—: not read)."
        ),
    ]


def _whose(topology: Topology) -> str:
    """Whose design a topology is, as reports label it."""
    info = TOPOLOGIES[topology]
    if info.stock:
        return "a stock deployment, "
    return "" if info.units == "one" else f"{OWN}, "


def designs_section(model: RunModel, found: Sequence[Verdict]) -> list[Block]:
    if model.meta.kind != "http":
        return []
    designs: dict[str, set[str]] = {}
    for v in found:
        for build, names in v.designs.items():
            designs.setdefault(build, set()).update(names)
    if not designs:
        return []
    every = sorted(set().union(*designs.values()))
    rows = tuple(
        (b, ", ".join(sorted(d)), ", ".join(x for x in every if x not in d) or fmt.DASH)
        for b, d in sorted(designs.items())
    )
    topologies = sorted({t for names in designs.values() for d in names for t in d.split("·")[-1:]})
    known = [Topology(t) for t in topologies if t in {str(x) for x in Topology}]
    whose = [f"{t}: {_whose(t)}{TOPOLOGY_HELP[t]}" for t in known]
    blocks: list[Block] = [
        Heading(3, "What was measured"),
        Table(("Build", "Designs measured", "Not measured"), rows, "lll"),
    ]
    if whose:
        blocks += [Paragraph("Topologies:"), Bullets(tuple(whose))]
    return blocks
