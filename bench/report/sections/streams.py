"""Streams: chunks per second, time to first byte and gaps between chunks of streamed workloads."""

from __future__ import annotations

from collections.abc import Sequence

from ftscale.bench.report import charts, fmt, labels
from ftscale.bench.report.document import Block, Heading, Paragraph, Table
from ftscale.bench.report.model import RunModel, Series
from ftscale.bench.report.sections.common import CI, figure, latency, slug
from ftscale.vocab import GENERATORS, Generator

STREAMS_TEXT = (
    "Each stream is one request of the closed loop, so a cell holds as many concurrent streams as it "
    "has connections (16 per thread by default). The built-in generator times each stream's first byte "
    "of body (its first chunk: the response head is sent at once), counts its chunks and times the gap "
    "between consecutive chunks. Every chunk follows an upstream delay that the service awaits, so no "
    "gap is shorter than that delay: what a gap adds to it is the chunk's queueing and compute. "
    "Percentiles are of every stream (or gap) of the repetitions merged, their number in brackets. The "
    "verdict compares chunks per second at the same number of concurrent streams, and names each "
    "side's p99 gap and p99 time to first byte."
)


def _streams_table(series: Sequence[Series]) -> Table:
    rows = []
    for s in series:
        for p in s.points:
            if p.stream is None:
                continue
            rows.append(
                (
                    labels.series_label(s.key),
                    str(p.threads),
                    fmt.estimate(p.throughput),
                    fmt.num(p.stream.streams_per_s),
                    fmt.num(p.stream.ttfb_ms["p50"]),
                    latency(p.stream.ttfb_ms["p99"], p.stream.ttfb_samples),
                    latency(p.stream.gap_p99_ms, p.stream.gap_samples),
                    labels.flag_names(p.flags),
                )
            )
    header = (
        "Series",
        "Threads",
        f"chunks/s {CI}",
        "streams/s",
        "First byte p50 ms",
        "First byte p99 ms (streams)",
        "Gap p99 ms (gaps)",
        "Flags",
    )
    return Table(header, tuple(rows), "lrrrrrrl")


def streaming_section(model: RunModel) -> list[Block]:
    """Time to first byte, chunks per second and gaps between chunks of each streamed workload."""
    streamed = [
        s for s in model.series if s.key.load == "closed" and any(p.stream is not None for p in s.points)
    ]
    if not streamed:
        return []
    blocks: list[Block] = [
        Heading(2, "Streams: chunks per second, time to first byte, gaps between chunks"),
        Paragraph(STREAMS_TEXT),
    ]
    generators = {g for s in streamed for p in s.points if p.stream for g in p.stream.generators}
    known = [Generator(g) for g in generators if g in GENERATORS]
    blind = sorted(g for g in known if not GENERATORS[g].streams)  # counted chunks, timed nothing
    if blind:
        blocks.append(
            Paragraph(
                f"Some loads were applied by {' and '.join(blind)}, which sees whole responses only: it "
                "counted their chunks but could not time the first byte or the gaps "
                f"({fmt.DASH} where nothing was timed)."
            )
        )
    for workload, _wclass, size in model.workloads():
        mine = [s for s in streamed if (s.key.workload, s.key.size) == (workload, size)]
        if not mine:
            continue
        stem = slug(f"{workload}-{size}")
        blocks.append(Heading(3, f"{workload} (size {size})"))
        blocks += figure(
            f"{stem}-streams.png",
            f"{workload}: gaps between chunks and time to first byte",
            charts.streams(mine, workload),
        )
        blocks.append(_streams_table(mine))
    return blocks
