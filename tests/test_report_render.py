"""Reports rendered from the checked-in synthetic runs (tests/data/report-*), compared with expected tables.

The fixtures follow known laws (see tests/data/make_report_fixtures.py), so the rows asserted here are
worked out by hand; the full expected reports in tests/data/expected/ catch any other change.
Set FTSCALE_UPDATE_EXPECTED=1 to rewrite those after an intended change, and review the diff.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

pytest.importorskip("scipy")
pytest.importorskip("matplotlib")

from ftscale.bench.report import fmt
from ftscale.bench.report.findings import ft_overheads, verdicts
from ftscale.bench.report.model import build_model
from ftscale.bench.results import RunDir, load_run

from ftscale.cli import main as ftscale_main
from ftscale.vocab import Flag

DATA = Path(__file__).parent / "data"
EXPECTED = DATA / "expected"
ASCII = str.maketrans({fmt.TIMES: "x", fmt.SIGMA: "sigma"})


@pytest.fixture
def runs(tmp_path: Path) -> dict[str, Path]:
    """Copies of the fixture runs: rendering writes into a run directory."""
    copies = {}
    for kind in ("micro", "http"):
        copies[kind] = tmp_path / f"report-{kind}"
        shutil.copytree(DATA / f"report-{kind}", copies[kind])
    return copies


def section(markdown: str, heading: str) -> str:
    """The text under ``heading`` (a whole heading line) up to the next heading of its level or above."""
    start = markdown.index(f"\n{heading}\n") + len(heading) + 2
    level = len(heading) - len(heading.lstrip("#"))
    match = re.search(rf"\n#{{1,{level}}} ", markdown[start:])
    return markdown[start : start + match.start()] if match else markdown[start:]


def rows(text: str) -> list[list[str]]:
    """The body rows of the first Markdown table in ``text``, as lists of stripped cells."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    return [[c.strip() for c in line.strip("|").split(" | ")] for line in lines[2:]]


def render(path: Path) -> str:
    assert ftscale_main(["report", str(path)]) == 0
    return (path / "report.md").read_text()


def render_ascii(path: Path) -> str:
    """As :func:`render`, with the multiplication sign as "x" and sigma spelled out (ruff-friendly)."""
    return render(path).translate(ASCII)


def check_expected(name: str, text: str) -> None:
    expected = EXPECTED / name
    if os.environ.get("FTSCALE_UPDATE_EXPECTED"):
        expected.parent.mkdir(exist_ok=True)
        expected.write_text(text)
    assert text == expected.read_text(), f"{name} changed: diff it against {expected}"


def test_micro_report_matches_expected(runs: dict[str, Path]) -> None:
    check_expected("report-micro.md", render(runs["micro"]))


def test_http_report_matches_expected(runs: dict[str, Path]) -> None:
    check_expected("report-http.md", render(runs["http"]))


def test_micro_verdict_rows(runs: dict[str, Path]) -> None:
    md = render_ascii(runs["micro"])
    assert md.index("## Verdict") < md.index("## Scaling by workload") < md.index("## Charts")
    assert md.index("## Charts") < md.index("## Failed cells") < md.index("## Metadata")
    table = rows(section(md, "## Verdict"))
    assert [r[:2] for r in table] == [
        ["pure-python", "loop"],
        ["pure-python", "loop (weak scaling)"],
        ["c-releases-gil", "crc"],
        ["contention", "dictstorm"],
    ]
    # Amdahl s = 0.1 peaks at 16 threads: 16000 / 2.5 = 6400, its repetitions spread by 10%
    assert table[0][2:] == [
        "3.14t · strong @16",
        "6400 [5760, 7040] 75%",
        "6.40x [5.70, 7.11]",
        "CV>5%",
        "3.14 · strong @1",
        "1250 [1238, 1262] 75%",
        "1.00x [1.00, 1.00]",
        "",
        "5.12x [4.56, 5.69]",
    ]
    # linear 2200N on the GIL build beats 2000N free-threaded: the runner-up is the free-threaded build
    assert table[2][2] == "3.14 · strong @16" and table[2][6] == "3.14t · strong @16"
    assert table[2][-1] == "1.10x [1.08, 1.12]"
    # USL peak of 500N/(1 + 0.05(N-1) + 0.02N(N-1)) among 1..16 is at 8; the GIL side has one sample
    assert table[3][2:4] == ["3.14t · strong @8", "1619 [1603, 1636] 75%"]
    assert table[3][7] == "600 [n/a]" and table[3][-1] == "2.70x [n/a]"


def test_micro_scaling_rows_follow_amdahl(runs: dict[str, Path]) -> None:
    md = render_ascii(runs["micro"])
    loop = section(md, "### loop (pure-python, size 1000)")
    table = rows(section(loop, "#### 3.14t · strong"))
    assert [r[0] for r in table] == ["1", "2", "4", "8", "16"]
    # X(4) = 4000/1.3; S(4) = 3.077 with bounds S * 0.99/1.01 and S * 1.01/0.99; Karp-Flatt = s
    assert table[2] == ["4", "3", "3077 [3046, 3108] 75%", "3.08x [3.02, 3.14]", "0.77", "0.100", "1.0%", ""]
    assert table[0][3:6] == ["1.00x [1.00, 1.00]", "1.00", "—"]
    assert all(r[5] == "0.100" for r in table[1:])
    assert table[4][-1] == "CV>5%" and table[4][6] == "10.0%"
    assert "Amdahl: s = 0.100, R² = 1.000. USL: sigma = 0.1000, κ = 0, no peak, R² = 1.000." in loop
    weak = section(loop, "#### 3.14t · weak")
    assert "USL: too few points (3; needs 4)." in weak
    overhead = rows(section(loop, "#### Free-threading overhead at 1 thread"))
    # 1000 / 1250 = 0.8: each call takes 1/0.8 - 1 = 25% longer
    assert overhead == [
        [
            "3.14t · strong",
            "3.14",
            "1000 [990, 1010] 75%",
            "1250 [1238, 1262] 75%",
            "0.80x [0.78, 0.82]",
            "+25.0% [+22.5%, +27.5%]",
        ],
    ]


def test_micro_usl_fit_and_flags(runs: dict[str, Path]) -> None:
    md = render_ascii(runs["micro"])
    dictstorm = section(md, "### dictstorm (contention, size 100)")
    assert "USL: sigma = 0.0500, κ = 0.02, N* = 6.89, R² = 1.000." in dictstorm.replace("\\*", "*")
    assert rows(section(dictstorm, "#### 3.14 · strong"))[0][:4] == [
        "1",
        "1",
        "600 [n/a]",
        "1.00x [1.00, 1.00]",
    ]
    crc_table = rows(section(section(md, "### crc (c-releases-gil, size 1000)"), "#### 3.14t · strong"))
    assert [r[-1] for r in crc_table] == ["", "", "", "GIL-on", ""]
    failed = rows(section(md, "## Failed cells"))
    assert failed == [["3.14t", "crc", "", "", "strong", "32", "worker exited with status -9"]]
    assert "MemoryError" in section(md, "## Failed cells")


def test_http_rows_latency_memory_and_derived_flags(runs: dict[str, Path]) -> None:
    md = render_ascii(runs["http"])
    verdict = rows(section(md, "## Verdict"))
    assert verdict == [
        [
            "pure-python",
            "loop",
            "3.14t · inline · loops @8",
            "7200 [7128, 7272] 75%",
            "8.00x [7.84, 8.16]",
            "115 MiB",
            "",
            "3.14 · inline · workers @8",
            "6800 [6732, 6868] 75%",
            "8.00x [7.84, 8.16]",
            "480 MiB",
            "",
            "1.06x [1.04, 1.08]",
        ],
    ]
    threadpool = rows(section(md, "#### 3.14t · threadpool · single"))
    # Amdahl s = 0.2: X(8) = 6400/2.4; p50 = 64 connections / X; errors only in a repetition's detail
    assert threadpool[3] == [
        "8",
        "3",
        "2667 [2640, 2693] 75%",
        "3.33x [3.27, 3.40]",
        "0.42",
        "0.200",
        "1.0%",
        "24.0",
        "48.0",
        "40.0",
        "760%",
        "70.0 MiB",
        "errors",
    ]
    workers = rows(section(md, "#### 3.14t · inline · workers"))
    assert workers[3][-1] == "gen-saturated" and workers[3][-2] == "560 MiB"
    overhead = rows(section(md, "#### Free-threading overhead at 1 thread"))
    assert [r[0] for r in overhead] == ["3.14t · inline · workers", "3.14t · threadpool · single"]
    assert overhead[1][4:] == ["0.89x [0.87, 0.91]", "+12.5% [+10.3%, +14.8%]"]
    assert "health: server did not become ready within 30 s" in section(md, "## Failed cells")
    for chart in ("loop-1000-scaling.png", "loop-1000-latency.png", "loop-1000-memory.png"):
        assert f"](charts/{chart})" in md
        assert (runs["http"] / "charts" / chart).read_bytes().startswith(b"\x89PNG")


def test_metadata_section(runs: dict[str, Path]) -> None:
    meta = section(render_ascii(runs["http"]), "## Metadata")
    assert "| CPU model | Synthetic CPU @ 3.0GHz |" in meta
    assert "| Affinity | 0-15 (16 CPUs) |" in meta
    assert "| 3.14t | 3.14.0 | yes | off | — | --disable-gil --enable-optimizations --with-lto |" in meta
    assert "| numpy | 2.3.4 | 2.3.4 |" in meta
    assert "| name | wrk |" in meta
    assert "| Git commit | 0123456789abcdef0123456789abcdef01234567 |" in meta


def test_model_flags_come_from_the_files() -> None:
    model = build_model(load_run(DATA / "report-http"))
    flagged = {
        (s.key.build, s.key.mode, p.threads): p.flags for s in model.series for p in s.points if p.flags
    }
    assert flagged[("3.14t", "threadpool", 8)] == (Flag.ERRORS,)
    micro = build_model(load_run(DATA / "report-micro"))
    gil = [(s.key.workload, p.threads) for s in micro.series for p in s.points if Flag.GIL_ENABLED in p.flags]
    assert gil == [("crc", 8)]
    assert [v.best.series.key.build for v in verdicts(micro)] == ["3.14t", "3.14t", "3.14", "3.14t"]
    assert len(ft_overheads(micro)) == 3


def test_rendering_twice_gives_identical_files(runs: dict[str, Path]) -> None:
    def snapshot(path: Path) -> dict[str, bytes]:
        return {
            str(p.relative_to(path)): p.read_bytes()
            for p in sorted(path.rglob("*"))
            if p.is_file() and p.parent.name != "cells" and p.name != "run.json"
        }

    render(runs["http"])
    first = snapshot(runs["http"])
    render(runs["http"])
    assert snapshot(runs["http"]) == first
    assert len(first) == 5  # report.md, report.html, three charts


def test_html_is_self_contained(runs: dict[str, Path]) -> None:
    render(runs["http"])
    html = (runs["http"] / "report.html").read_text()
    sources = re.findall(r'(?:src|href)="([^"]*)"', html)
    assert len(sources) == 3
    assert all(s.startswith("data:image/png;base64,") for s in sources)
    assert "<link" not in html and "@import" not in html and "url(" not in html


def test_default_renders_every_run_under_results(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert ftscale_main(["report", "--results", str(runs["micro"].parent)]) == 0
    assert (runs["micro"] / "report.html").is_file() and (runs["http"] / "report.md").is_file()
    assert len(capsys.readouterr().out.splitlines()) == 4


def test_compare_two_runs_of_the_same_kind(runs: dict[str, Path], tmp_path: Path) -> None:
    faster = tmp_path / "faster-http"
    shutil.copytree(runs["http"], faster)
    run_dir = RunDir(faster)
    run_dir.update_meta(run_id="faster-http")
    for cell in load_run(faster).cells:
        run_dir.write_cell(cell.model_copy(update={"samples": [round(s * 1.1, 4) for s in cell.samples]}))
    out = tmp_path / "cmp"
    assert ftscale_main(["compare", str(runs["http"]), str(faster), "--out", str(out)]) == 0
    md = (out / "report.md").read_text().translate(ASCII)
    part = section(md, "## faster-http against synthetic-http")
    assert "20 cells in common" in part
    table = rows(section(part, "### loop (pure-python, size 1000)"))
    assert len(table) == 20
    assert {r[4] for r in table} == {"1.10x [1.08, 1.12]"}


def test_compare_micro_with_http_gives_the_ceiling_share(runs: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    assert ftscale_main(["compare", str(runs["micro"]), str(runs["http"]), "--out", str(out)]) == 0
    md = (out / "report.md").read_text().translate(ASCII)
    part = section(md, "## Micro against HTTP: synthetic-http against synthetic-micro")
    assert "Both runs are from the same host." in part
    table = rows(part)
    # 3.14: 6800 req/s over HTTP against 1250 calls/s in process; 3.14t: 7200 against 6400
    assert [(r[3], r[4], r[6], r[8]) for r in table] == [
        ("3.14", "3.14 · strong @1", "3.14 · inline · workers @8", "5.44x [5.33, 5.55]"),
        ("3.14t", "3.14t · strong @16", "3.14t · inline · loops @8", "1.12x [1.01, 1.26]"),
    ]
    charts = list((out / "charts").glob("ceiling-*.png"))
    assert len(charts) == 1 and f"](charts/{charts[0].name})" in md
    assert "### Machine" in md


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1, err
    return err


def test_missing_directory_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ftscale_main(["report", str(tmp_path / "nope")]) == 2
    assert "not a run directory" in _error_line(capsys)


def test_bad_json_writes_nothing(runs: dict[str, Path], capsys: pytest.CaptureFixture[str]) -> None:
    cell = sorted((runs["http"] / "cells").glob("*.json"))[0]
    cell.write_text("{not json")
    assert ftscale_main(["report", str(runs["micro"]), str(runs["http"])]) == 2
    assert "not valid JSON" in _error_line(capsys)
    assert not (runs["micro"] / "report.md").exists() and not (runs["micro"] / "charts").exists()


def test_wrong_schema_is_one_line_and_exit_2(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    meta_path = runs["micro"] / "run.json"
    meta = json.loads(meta_path.read_text())
    meta["kind"] = "bogus"
    meta_path.write_text(json.dumps(meta))
    assert ftscale_main(["report", str(runs["micro"])]) == 2
    assert "does not match the ftscale result schema" in _error_line(capsys)
    meta["kind"], meta["schema_version"] = "micro", 99
    meta_path.write_text(json.dumps(meta))
    assert ftscale_main(["compare", str(runs["micro"]), str(runs["http"])]) == 2
    assert "schema_version 99" in _error_line(capsys)
    assert not (runs["micro"] / "report.md").exists()


def test_no_runs_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert ftscale_main(["report", "--results", str(tmp_path)]) == 2
    assert "no run directories" in _error_line(capsys)
