"""Self-contained HTML writer: inline CSS, charts embedded as base64 PNG, no external resource.

A small inline script marks ``<body>`` once the page has loaded: ``data-charts-ok`` when every
chart has decoded, ``data-scroll-width`` (wider than the window means a horizontal scroll) and
``data-answer-bottom`` (where the first paragraph of the answer ends, in pixels from the top), so
a headless browser can check how the page reads at a given width.
"""

from __future__ import annotations

import base64
import re
from html import escape
from urllib.parse import quote

from ftscale.bench.report.document import (
    Block,
    Bullets,
    Code,
    Document,
    Figure,
    Heading,
    Links,
    Paragraph,
    Table,
)

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 78em; padding: 0 1em;
       color: #1b1b1b; line-height: 1.45; }
h1 { font-size: 1.6em; margin-bottom: 0.3em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; font-size: 0.85em; max-width: 100%; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.5em; vertical-align: top; overflow-wrap: anywhere; }
th { background: #f2f2f2; }
td.r, th.r { text-align: right; font-variant-numeric: tabular-nums; }
figure { margin: 1em 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; }
pre { background: #f6f6f6; padding: 0.6em; overflow-x: auto; font-size: 0.85em; }
""".strip()

CHECK_SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var decoded = images.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute("data-charts-decoded", decoded + "/" + images.length);
  document.body.setAttribute("data-charts-ok", decoded === images.length ? "yes" : "no");
  document.body.setAttribute("data-scroll-width", document.documentElement.scrollWidth);
  var answer = document.getElementById("the-answer");
  var first = answer ? answer.nextElementSibling : null;
  if (first) {
    var box = first.getBoundingClientRect();
    document.body.setAttribute("data-answer-bottom", Math.round(box.bottom + window.scrollY));
  }
});
""".strip()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def _table(table: Table) -> str:
    def row(cells: tuple[str, ...], tag: str) -> str:
        return (
            "<tr>"
            + "".join(f'<{tag} class="{table.alignment(i)}">{escape(c)}</{tag}>' for i, c in enumerate(cells))
            + "</tr>"
        )

    body = "\n".join(row(r, "td") for r in table.rows)
    return f"<table>\n<thead>{row(table.header, 'th')}</thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def _block(block: Block, ids: dict[str, int]) -> str:
    if isinstance(block, Heading):
        slug = _slug(block.text)
        ids[slug] = ids.get(slug, 0) + 1
        anchor = slug if ids[slug] == 1 else f"{slug}-{ids[slug]}"
        return f'<h{block.level} id="{anchor}">{escape(block.text)}</h{block.level}>'
    if isinstance(block, Paragraph):
        return f"<p>{escape(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>\n" + "\n".join(f"<li>{escape(i)}</li>" for i in block.items) + "\n</ul>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Figure):
        data = base64.b64encode(block.png).decode("ascii")
        return (
            f'<figure><img src="data:image/png;base64,{data}" alt="{escape(block.caption)}">'
            f"<figcaption>{escape(block.caption)}</figcaption></figure>"
        )
    if isinstance(block, Links):
        items = (
            f'<li><a href="{escape(quote(target))}">{escape(text)}</a></li>' for text, target in block.items
        )
        return "<ul>\n" + "\n".join(items) + "\n</ul>"
    assert isinstance(block, Code)
    return f"<pre>{escape(block.text.rstrip())}</pre>"


def render(document: Document) -> str:
    ids: dict[str, int] = {}
    body = "\n".join(_block(b, ids) for b in document.blocks)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(document.title)}</title>\n"
        f"<style>\n{STYLE}\n</style>\n"
        f"<script>\n{CHECK_SCRIPT}\n</script>\n"
        f"</head>\n<body>\n{body}\n</body>\n</html>\n"
    )
