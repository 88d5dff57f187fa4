"""Each design's share of the in-process ceiling, as the reports compute and show it: the design's
throughput over its own build's in-process throughput at the same threads, never another build's,
thread count or the inverse; the pass is a ceiling, never a design; compare finds it."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("scipy")  # the report extra (not installed on 3.14t)

from ftscale import schema
from ftscale.bench.report import ceiling as shares
from ftscale.bench.report import ceiling_report
from ftscale.bench.report.compare import compare
from ftscale.bench.report.findings import verdicts
from ftscale.bench.report.model import build_model
from tests import synthetic


def rep(rps: float) -> schema.HttpRepetition:
    return synthetic.http_repetition(rps)


def ceiling_cell(build: str, threads: int, calls: float) -> schema.MicroCell:
    cell = synthetic.micro_cell(threads, [calls], build=build)
    return cell.model_copy(
        update={"stage": "ceiling", "cpus": list(range(threads)), "cell_id": cell.cell_id + "c"}
    )


def http_run() -> Any:
    cells = [
        synthetic.http_cell(1, [rep(90), rep(100), rep(110)], build="3.14t"),
        synthetic.http_cell(2, [rep(170), rep(180), rep(190)], build="3.14t"),
        synthetic.http_cell(
            1, [rep(95), rep(105), rep(115)], build="3.14", mode="inline", topology="workers"
        ),
        synthetic.http_cell(
            2, [rep(200), rep(210), rep(220)], build="3.14", mode="inline", topology="workers"
        ),
        ceiling_cell("3.14t", 1, 125.0),
        ceiling_cell("3.14t", 2, 240.0),
        ceiling_cell("3.14", 1, 140.0),
        ceiling_cell("3.14", 2, 150.0),
    ]
    return synthetic.run(cells, kind="http", config={"server_cpus": [0, 1]})


def test_a_share_is_the_designs_throughput_over_its_own_builds_ceiling_at_the_same_threads() -> None:
    model = build_model(http_run())
    found = {(s.key.build, s.threads): s.share.value for s in shares.shares(model)}
    assert found == {
        ("3.14t", 1): pytest.approx(100 / 125),
        ("3.14t", 2): pytest.approx(180 / 240),  # not its 1-thread ceiling (180/125), not 240/180
        ("3.14", 1): pytest.approx(105 / 140),  # not the twin's (105/125)
        ("3.14", 2): pytest.approx(210 / 150),  # processes beyond the threads' ceiling: above 1
    }


def test_a_point_without_a_ceiling_at_its_thread_count_has_no_share() -> None:
    run = http_run()
    kept = [c for c in run.cells if not (isinstance(c, schema.MicroCell) and c.threads == 2)]
    model = build_model(synthetic.run(kept, kind="http", config={"server_cpus": [0, 1]}))
    assert sorted(s.threads for s in shares.shares(model)) == [1, 1]


def test_a_stream_is_one_call_in_process_so_its_chunks_are_divided_by_its_size() -> None:
    model = build_model(http_run())
    point, ceiling_point = model.series[0].points[0], model.ceilings[0].points[0]
    chunks = shares.share_of(point, ceiling_point, "chunks/s", 100)
    whole = shares.share_of(point, ceiling_point, "req/s", 100)
    assert chunks.value == pytest.approx(whole.value / 100)


def test_the_pass_is_the_ceiling_never_a_design_nor_a_verdict() -> None:
    model = build_model(http_run())
    assert all(s.key.mode is not None for s in model.series)  # HTTP designs only
    assert {(s.key.build, s.key.scaling) for s in model.ceilings} == {("3.14", "strong"), ("3.14t", "strong")}
    (verdict,) = verdicts(model)
    assert all(b.choice.series.key.mode is not None for b in verdict.builds)
    failed = ceiling_cell("3.14", 4, 1.0).model_copy(update={"status": "failed", "samples": [], "error": "x"})
    broken = build_model(synthetic.run([*http_run().cells, failed], kind="http"))
    assert failed.cell_id in {c.cell_id for c in broken.failed}


def test_compare_finds_an_http_runs_own_in_process_pass() -> None:
    model = build_model(http_run())
    (own,) = compare([model]).ceilings
    assert own.micro is own.http and {(r.build, r.workload) for r in own.rows} == {
        ("3.14", "nbody"), ("3.14t", "nbody")
    }  # fmt: skip


def test_the_shares_table_reads_a_dash_where_a_design_was_not_served() -> None:
    model = build_model(http_run())
    served = [s for s in shares.shares(model) if (s.key.build, s.threads) != ("3.14t", 2)]
    table = ceiling_report.shares_table(served)
    assert table.header == ("Design", "nbody @1", "nbody @2")
    # the free-threaded build's designs first; the one not served at 2 threads reads a dash there
    assert table.rows == (
        ("3.14t · threadpool · single", "0.80", "—"),
        ("3.14 · inline · workers", "0.75", "1.40"),
    )
