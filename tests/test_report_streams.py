"""The report of the two workload classes from deployments: a synchronous data layer and streams.

The synthetic run (tests/data/make_report_fixtures.py) has ``pages`` (blocking-io: 3.14 workers
300·N req/s, 3.14t threadpool Amdahl λ = 380, s = 0.02) and ``tokens`` (streaming, 32 chunks a
stream: 3.14 workers 1500·N chunks/s, 3.14t threadpool Amdahl λ = 1400, s = 0.1; p99 first byte
12 + 2N and 14 + 3N ms, p99 gap 11 + N and 12 + 2N ms); the rows below follow from those laws.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("scipy")
pytest.importorskip("matplotlib")

from ftscale.bench.report import compare
from ftscale.bench.report.model import build_model
from ftscale.bench.results import load_run
from tests.test_report_render import DATA, read_ascii, render_ascii, rows, section

STREAMS = "## Streams: chunks per second, time to first byte, gaps between chunks"


@pytest.fixture
def http(tmp_path: Path) -> Path:
    run = tmp_path / "report-http"
    shutil.copytree(DATA / "report-http", run)
    return run


@pytest.fixture(scope="module")
def rendered_http(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The HTTP fixture run rendered once, for the tests that only read its report."""
    run = tmp_path_factory.mktemp("streams") / "report-http"
    shutil.copytree(DATA / "report-http", run)
    render_ascii(run)
    return run


def test_each_new_class_has_its_verdict_sentence(rendered_http: Path) -> None:
    answer = section(read_ascii(rendered_http), "## The answer")
    # pages at 8: 3.14t 380 x 8 / 1.14 = 2667 against 3.14's 2400 (workers: PSS 0.6 x 640 MiB)
    assert (
        "Synchronous data layer — pages: 3.14t threadpool·single at 8 threads wins: 2667 req/s, 1.11x 3.14 "
        "inline·workers at 8 threads (2400 req/s; 3.14t ÷ 3.14 1.11x [1.09, 1.13] 90%, exploration medians, "
        "not confirmed in paired rounds); server memory (PSS) 3.14t 90.0 MiB, 3.14 384 MiB." in answer
    )
    # tokens at 8: 3.14 12000 chunks/s against 3.14t 11200 / 1.7 = 6588; gaps 28 against 19 ms
    assert (
        "Streaming responses — tokens: 3.14 inline·workers at 8 threads wins: 12000 chunks/s, 1.82x "
        "3.14t threadpool·single at 8 threads (6588 chunks/s; 3.14t ÷ 3.14 0.55x [0.54, 0.56] 90%, "
        "exploration medians, not confirmed in paired rounds); p99 gap "
        "between chunks 28.0 ms (3.14t) against 19.0 ms (3.14), p99 time to first byte 38.0 ms against "
        "28.0 ms; server memory (PSS) 3.14t 42.0 MiB, 3.14 288 MiB." in answer
    )
    # the order of the classes: pure Python, then the data layer, then streams
    assert answer.index("Pure Python") < answer.index("Synchronous data layer") < answer.index("Streaming")


def test_the_streams_section_has_the_figures_of_every_stream(rendered_http: Path) -> None:
    md = read_ascii(rendered_http)
    assert md.index("## Open loop") < md.index(STREAMS) < md.index("## How to read this report")
    part = section(md, STREAMS)
    assert "](charts/tokens-32-streams.png)" in part and "pages" not in part
    assert "Some loads were applied by" not in part  # the built-in client times every stream
    table = rows(section(part, "### tokens (size 32)"))
    assert len(table) == 8
    # every stream of the three repetitions (10 s at about 206 streams/s each), 31 gaps per stream
    assert table[7] == [
        "3.14t · threadpool · single",
        "8",
        "6588 [6522, 6654] 75%",
        "206",
        "12.0",
        "38.0 (6,176)",
        "28.0 (191,456)",
        "",
    ]
    assert table[0][4:7] == ["12.0", "14.0 (1,406)", "12.0 (43,586)"]  # 3.14 at 1 thread: 12 + 2, 11 + 1
    assert "Streaming workloads: throughput is chunks per second" in section(md, "## How to read this report")
    assert (rendered_http / "charts" / "tokens-32-streams.png").read_bytes().startswith(b"\x89PNG")


def test_streams_that_wrk_counted_have_no_timing_and_say_why(http: Path) -> None:
    for path in (http / "cells").glob("*tokens*.json"):
        cell = json.loads(path.read_text())
        for rep in cell["repetitions"]:
            rep["load"].update(
                ttfb_ms=None, ttfb_histogram=None, gap_histogram=None, gap_p99_ms=None, generator="wrk"
            )
        path.write_text(json.dumps(cell))
    point = next(p for s in build_model(load_run(http)).series for p in s.points if p.stream is not None)
    assert point.stream is not None and point.stream.generators == ("wrk",)
    assert point.stream.ttfb_samples == 0 and point.stream.gap_samples == 0 and point.stream.chunks > 0
    md = render_ascii(http)
    part = section(md, STREAMS)
    assert "Some loads were applied by wrk" in part and "streams.png" not in part  # nothing timed: no chart
    assert rows(section(part, "### tokens (size 32)"))[0][4:7] == ["—", "—", "—"]
    assert "p99 gap between chunks" not in section(md, "## The answer")  # the verdict does not invent them


def test_a_report_without_streams_has_no_streams_section(http: Path) -> None:
    for path in (http / "cells").glob("*tokens*.json"):
        path.unlink()
    md = render_ascii(http)
    assert "## Streams" not in md and "Streaming workloads:" not in md
    assert "| Unit |" not in md  # every workload in req/s: the table's header says it once


def test_a_streams_share_of_its_in_process_ceiling_counts_streams_not_chunks(
    http: Path, tmp_path: Path
) -> None:
    micro = tmp_path / "report-micro"
    shutil.copytree(DATA / "report-micro", micro)
    base = json.loads((micro / "cells" / "3.14t__loop__-__-__strong__t001.json").read_text())
    cell = {**base, "workload": "tokens", "workload_class": "streaming", "size": 32}
    cell |= {"cell_id": "3.14t__tokens__-__-__strong__t001", "samples": [100.0, 100.0, 100.0]}
    cell["repetitions"] = [{**r, "process": i} for i, r in enumerate(base["repetitions"])]
    (micro / "cells" / "3.14t__tokens__-__-__strong__t001.json").write_text(json.dumps(cell))
    found = compare.ceilings(build_model(load_run(micro)), build_model(load_run(http)))
    (row,) = [r for r in found.rows if r.workload == "tokens"]
    # 6588 chunks/s over HTTP is 6588 / 32 = 206 streams/s; in process, 100 whole streams a second
    assert row.http.point.throughput.value == pytest.approx(6588, rel=1e-3)
    assert row.share.value == pytest.approx(6588 / 32 / 100, rel=1e-3)
