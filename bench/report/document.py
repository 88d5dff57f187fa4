"""A report as a list of format-neutral blocks, written out as Markdown and as HTML.

The section builders decide what a report says once; :mod:`bench.report.markdown` and
:mod:`bench.report.html` only decide how it looks, so both files always say the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Heading:
    level: int  # 1 is the title
    text: str


@dataclass(frozen=True)
class Paragraph:
    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    align: str = ""  # one "l" or "r" per column; missing columns are left-aligned

    def alignment(self, column: int) -> str:
        return self.align[column] if column < len(self.align) else "l"


@dataclass(frozen=True)
class Figure:
    name: str  # file name under charts/, e.g. "loop-throughput.png"
    caption: str
    png: bytes
    legend_entries: int = 0  # how many entries the chart's legend has (tests keep it small)


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Links:
    """A list of links to files beside the report: (text, path relative to the report)."""

    items: tuple[tuple[str, str], ...]


Block = Heading | Paragraph | Bullets | Table | Figure | Code | Links


@dataclass(frozen=True)
class Document:
    title: str
    blocks: tuple[Block, ...]

    def figures(self) -> list[Figure]:
        return [b for b in self.blocks if isinstance(b, Figure)]
