"""The report of one run, as a :class:`~ftscale.bench.report.document.Document`.

The first screen answers the question: what the machine allowed, one paragraph per workload
class (which build and design wins, by how much, at what memory, with its caveats), one picture
(each build at its best design against the best GIL design, with memory beside it), and a compact
verdict table. The evidence follows: what was measured, open-loop capacity, streams (time to
first byte, gaps between chunks), how to read the report, small-multiple charts and tables per
workload, the free-threading overhead, failed cells, metadata. Every number is a field of the
model or a finding, formatted by :mod:`.fmt`; nothing is computed here.

Each section is a module of :mod:`.sections` (or :mod:`.headline`, :mod:`.ceiling_report`,
:mod:`.profiles`); this module puts them in order.
"""

from __future__ import annotations

from ftscale.bench.report import ceiling_report, headline, profiles, words
from ftscale.bench.report.document import Block, Bullets, Document, Heading, Paragraph
from ftscale.bench.report.findings import verdicts
from ftscale.bench.report.model import RunModel
from ftscale.bench.report.overhead import ft_overheads
from ftscale.bench.report.sections import (
    answer,
    failures,
    intro,
    metadata,
    open_loop,
    reading,
    scaling,
    servers,
    streams,
)

# What other modules imported from here before the sections had modules of their own.
from ftscale.bench.report.sections.common import CI, choice_label, slug
from ftscale.bench.report.sections.intro import app_run, gil_on_blocks
from ftscale.bench.report.sections.metadata import metadata_blocks

__all__ = ["CI", "app_run", "build", "choice_label", "gil_on_blocks", "metadata_blocks", "slug"]


def build(model: RunModel) -> Document:
    """The whole report of one run."""
    title = f"ftscale {'app' if app_run(model.meta) else model.meta.kind} report: {model.meta.run_id}"
    found = verdicts(model)
    blocks: list[Block] = [
        Heading(1, title),
        *gil_on_blocks(model.meta),
        *headline.first_screen(model, found),  # --preset headline: the answer before anything else
        Paragraph(intro.summary(model)),
        Paragraph(words.setup_sentence(model)),
    ]
    fresh = words.fresh_servers_sentence(model)
    if fresh:
        blocks.append(Paragraph(fresh))
    if model.meta.notes:
        blocks.append(Bullets(tuple(f"Note: {n}" for n in model.meta.notes)))
    blocks += answer.answer_section(model, found)
    blocks += answer.verdict_table(model, found)
    blocks += answer.confirmation_section(model, found)
    blocks += servers.servers_table(model, found)
    blocks += servers.designs_section(model, found)
    blocks += ceiling_report.section(model, with_shares=not headline.headline_run(model))
    blocks += open_loop.open_loop_section(model)
    blocks += streams.streaming_section(model)
    blocks += reading.reading_section(model)
    blocks += scaling.scaling_section(model, ft_overheads(model))
    blocks += profiles.section(model)  # --profile: where the CPU time went
    blocks += failures.failed_section(model)
    blocks += failures.skipped_section(model)
    blocks += metadata.metadata_blocks(model.meta)
    return Document(title, tuple(blocks))
