"""Markdown writer: GitHub-flavoured tables, charts linked as ``charts/<name>.png`` beside the file."""

from __future__ import annotations

import re
from urllib.parse import quote

from ftscale.bench.report.document import Block, Bullets, Document, Figure, Heading, Links, Paragraph, Table

CHARTS_DIR = "charts"

# Brackets stay as they are: without a link target after them they are plain text.
_SPECIAL = re.compile(r"([\\`*_<|])")


def escape(text: str) -> str:
    """Text shown as is: the characters that would start emphasis, code, HTML or a cell are escaped."""
    return _SPECIAL.sub(r"\\\1", text)


def _cell(text: str) -> str:
    return escape(text).replace("\n", " ") or " "


def _table(table: Table) -> str:
    rule = {"l": ":--", "r": "--:"}
    lines = [
        "| " + " | ".join(_cell(h) for h in table.header) + " |",
        "|" + "|".join(rule[table.alignment(i)] for i in range(len(table.header))) + "|",
    ]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in table.rows]
    return "\n".join(lines)


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text.rstrip()}\n{fence}"


def _block(block: Block) -> str:
    if isinstance(block, Heading):
        return f"{'#' * block.level} {escape(block.text)}"
    if isinstance(block, Paragraph):
        return escape(block.text)
    if isinstance(block, Bullets):
        return "\n".join(f"- {escape(item)}" for item in block.items)
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        return f"![{escape(block.caption)}]({CHARTS_DIR}/{block.name})"
    if isinstance(block, Links):
        return "\n".join(f"- [{escape(text)}]({quote(target)})" for text, target in block.items)
    return _fence(block.text)


def render(document: Document) -> str:
    return "\n\n".join(_block(b) for b in document.blocks) + "\n"
