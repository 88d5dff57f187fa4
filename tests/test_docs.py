"""The README is a front page and every relative link in it and in docs/ resolves.

A link resolves when its file (or folder) exists inside the repository and, where it names an
``#anchor``, the Markdown file it points to has a heading GitHub gives that anchor: the heading's
text lowercased, punctuation dropped, spaces made hyphens, ``-1``, ``-2`` … added to repeats.
Links in fenced code and in code spans are text, not links. Web addresses are not checked here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
DOCS = REPO / "docs"
README_MAX_LINES = 150  # a front page: the question, quick start, commands, the answer, links

FENCED = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[^\n]*$", re.M | re.S)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.S)
# [text](target) or ![alt](target), the text holding at most one level of brackets
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*<?([^()\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+(.+?)(?:[ \t]+#+)?[ \t]*$", re.M)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def prose(markdown: str) -> str:
    """The Markdown with its fenced blocks and code spans blanked out."""
    return CODE_SPAN.sub("code", FENCED.sub("", markdown))


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading (before any ``-N`` for a repeat)."""
    text = re.sub(r"!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\([^)]*\)", r"\1", heading)  # a link: its text
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = re.sub(r"\\(.)", r"\1", text).lower()  # backslash escapes
    kept = "".join(c for c in text if c.isalnum() or c in " -_")
    return kept.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    """Every heading anchor of a Markdown text, repeats numbered as GitHub numbers them."""
    seen: dict[str, int] = {}
    found: set[str] = set()
    for match in HEADING.finditer(FENCED.sub("", markdown)):
        base = slug(match.group(1))
        count = seen.get(base, 0)
        seen[base] = count + 1
        found.add(base if count == 0 else f"{base}-{count}")
    return found


def links(markdown: str) -> list[str]:
    """The targets of the relative links and images of a Markdown text, in order."""
    return [t for t in LINK.findall(prose(markdown)) if not SCHEME.match(t) and not t.startswith("//")]


def broken_links(page: Path, root: Path = REPO) -> list[str]:
    """Each relative link of ``page`` that does not resolve, with the reason."""
    broken: list[str] = []
    for target in links(page.read_text(encoding="utf-8")):
        path_part, _, anchor = target.partition("#")
        resolved = (page.parent / path_part).resolve() if path_part else page.resolve()
        if not resolved.is_relative_to(root.resolve()):
            broken.append(f"{target}: outside the repository")
        elif not resolved.exists():
            broken.append(f"{target}: no such file")
        elif anchor and resolved.suffix != ".md":
            broken.append(f"{target}: an anchor into a file that is not Markdown")
        elif anchor and anchor not in anchors(resolved.read_text(encoding="utf-8")):
            broken.append(f"{target}: no heading with that anchor in {resolved.name}")
    return broken


PAGES = [README, *sorted(DOCS.glob("*.md"))]


def test_readme_is_a_front_page() -> None:
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail to docs/"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_every_relative_link_resolves(page: Path) -> None:
    assert links(page.read_text(encoding="utf-8")), f"{page.name}: no relative link found"
    assert broken_links(page) == []


def test_the_readme_links_every_docs_page() -> None:
    linked = {(README.parent / t.partition("#")[0]).resolve() for t in links(README.read_text("utf-8"))}
    pages = sorted(DOCS.glob("*.md"))
    assert pages, "docs/ has no pages"
    assert [p.name for p in pages if p.resolve() not in linked] == []


def test_ci_runs_the_readme_test_command() -> None:
    """The quick start's two commands: the quick run and the tests, the latter as CI runs it."""
    fenced = re.findall(r"^```sh\n(.*?)^```", README.read_text(encoding="utf-8"), re.M | re.S)
    assert fenced, "README.md has no sh block"
    commands = fenced[0].splitlines()
    setup = "python3 -m venv .venv && .venv/bin/python -m pip install -q nox && "
    assert commands == [f"{setup}.venv/bin/nox -s bench", f"{setup}.venv/bin/nox -s tests"]
    assert commands[1] in (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def test_the_readme_keeps_the_generated_results_section() -> None:
    """``ftscale report --readme`` replaces what lies between its markers (else it appends)."""
    render = pytest.importorskip("ftscale.bench.report.render")  # the report extra: host session
    text = README.read_text(encoding="utf-8")
    assert text.count(render.README_START) == 1
    assert text.count(render.README_END) == 1
    assert text.index(render.README_START) < text.index(render.README_END)


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Why it stops scaling: `--profile`", "why-it-stops-scaling---profile"),
        ("The load generator's own limits", "the-load-generators-own-limits"),
        ("N worker processes (`workers`)", "n-worker-processes-workers"),
        ("sha256\\_hash (C releasing the GIL, size 10240)", "sha256_hash-c-releasing-the-gil-size-10240"),
        ("See [the docs](docs/x.md) — twice", "see-the-docs--twice"),
    ],
)
def test_anchors_are_made_as_github_makes_them(heading: str, anchor: str) -> None:
    assert slug(heading) == anchor


def test_a_repeated_heading_gets_a_number() -> None:
    assert anchors("## Design\n\ntext\n\n## Design\n\n## Design\n") == {"design", "design-1", "design-2"}


def test_broken_links_are_found(tmp_path: Path) -> None:
    """The check itself: each kind of broken link is reported, and the good ones are not."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other\n\n## A section: here\n", encoding="utf-8")
    (tmp_path / "data.txt").write_text("x\n", encoding="utf-8")
    page = tmp_path / "docs" / "page.md"
    page.write_text(
        "# Page\n\n"
        "[good](other.md#a-section-here) [good](#page) [good](../data.txt) ![good](other.md) "
        "[web](https://example.org/missing.md)\n"
        "[bad](missing.md) [bad](other.md#no-such-section) [bad](#nowhere) [bad](../data.txt#x) "
        "[bad](../../outside.md)\n\n"
        "`[code](missing-in-code.md)`\n\n```sh\n[fenced](missing-in-fence.md)\n```\n",
        encoding="utf-8",
    )
    assert broken_links(page, root=tmp_path) == [
        "missing.md: no such file",
        "other.md#no-such-section: no heading with that anchor in other.md",
        "#nowhere: no heading with that anchor in page.md",
        "../data.txt#x: an anchor into a file that is not Markdown",
        "../../outside.md: outside the repository",
    ]
