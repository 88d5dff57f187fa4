"""The HTTP bench with streamed workloads: plans, cells and a real run of both new workloads."""

from __future__ import annotations

import argparse
from typing import Any

import pytest

from ftscale.bench import histogram, results
from ftscale.bench.http import cell as sweep
from ftscale.bench.http.cells import CellSpec, Group
from ftscale.bench.http.loadgen import LoadSpec, stream_figures, wrk_path
from ftscale.bench.http.matrix import Matrix, connections_for
from ftscale.bench.http.plan import HttpPlan, plan_job
from ftscale.schema import HealthProbe, LoadResult
from tests.test_http_bench import _bench
from tests.test_sweep import CEILINGS, FAST, FakeGenerator, FakeLauncher


class StreamingGenerator(FakeGenerator):
    """The fake generator, with 8 chunks per stream and the built-in generator's stream figures."""

    def load(self, spec: LoadSpec, probe_health: bool) -> tuple[LoadResult, HealthProbe | None]:
        result, probe = super().load(spec, probe_health)
        if spec.stream:
            figures: dict[str, Any] = stream_figures(
                8 * result.requests, spec.duration_s, [0.012] * result.requests, [0.011] * 7 * result.requests
            )
            result = result.model_copy(update={**figures, "generator": "python"})
        return result, probe


def _matrix(connections: int | None = None) -> Matrix:
    return Matrix(
        builds=["3.14t"],
        workloads=["stream_tokens", "orm_orders"],
        free_threaded_designs=[("threadpool", "single")],
        gil_designs=[],
        threads=[1, 4],
        sizes={},
        connections=connections,
    )


def test_streamed_workloads_are_planned_as_streams_with_room_for_every_stream() -> None:
    stream = _matrix().cell("3.14t", "stream_tokens", ("threadpool", "single"), 4)
    assert stream.stream and stream.path == "/stream/stream_tokens" and stream.unit == "chunks/s"
    assert stream.connections == 64  # 16 per thread
    # two streams per connection; streams may take every place (not only half)
    assert stream.server_args == ("--queue-limit", "128", "--max-streams", "128")
    orm = _matrix().cell("3.14t", "orm_orders", ("threadpool", "single"), 4)
    assert not orm.stream and orm.path == "/work/orm_orders" and orm.unit == "req/s"
    assert orm.server_args == ("--queue-limit", "8") and orm.connections == 8  # room for every request
    assert connections_for(1, 0.0, streamed=True) == 16
    assert _matrix(connections=5).cell("3.14t", "stream_tokens", ("inline", "loops"), 2).connections == 5


def test_a_streaming_cell_counts_chunks_per_second_and_keeps_the_stream_figures() -> None:
    plan = CellSpec("3.14t", "stream_tokens", "streaming", 8, "threadpool", "single", 2, 32, stream=True)
    launcher, gen = FakeLauncher(), StreamingGenerator(rps=50.0)
    (cell,) = sweep.measure_group(Group("stream_tokens", 2, (plan,)), "r", launcher, gen, FAST, CEILINGS)
    assert cell.status == "ok" and cell.unit == "chunks/s"
    assert all(spec.stream and spec.path == "/stream/stream_tokens" for spec in gen.loads)
    assert cell.samples == [8 * 50.0] * 3  # chunks per second, not streams per second
    rep = cell.repetitions[0]
    assert rep.load.throughput_rps == 50.0 and rep.load.chunks == 8 * 50 and rep.load.generator == "python"
    assert rep.load.ttfb_histogram is not None and histogram.count(rep.load.ttfb_histogram) == 50
    assert rep.load.ttfb_ms is not None and rep.load.ttfb_ms["p50"] == pytest.approx(12.0, rel=0.01)
    assert rep.load.gap_p99_ms == pytest.approx(11.0, rel=0.01)


def test_a_streaming_cell_whose_generator_counted_nothing_has_zero_throughput() -> None:
    plan = CellSpec("3.14t", "stream_tokens", "streaming", 8, "threadpool", "single", 2, 32, stream=True)
    (cell,) = sweep.measure_group(
        Group("stream_tokens", 2, (plan,)), "r", FakeLauncher(), FakeGenerator(), FAST, CEILINGS
    )
    assert cell.samples == [0.0] * 3  # no chunks seen: never the request rate in the chunk unit


def test_wrk_is_used_for_streams_only_when_named(tmp_path: Any) -> None:
    from ftscale.bench.http.options import build_parser

    def job(*args: str) -> HttpPlan:
        parsed: argparse.Namespace = build_parser().parse_args(
            ["--results-dir", str(tmp_path), "--allow-shared-cpus", *args]
        )
        return plan_job(parsed, [])

    assert job("--generator", "python").stream_generator == "python"
    assert job().stream_generator == "python"  # auto: wrk for closed loops where installed, not streams
    if wrk_path():
        assert job("--generator", "wrk").stream_generator == "wrk"


@pytest.mark.e2e
@pytest.mark.slow
def test_a_bench_run_of_the_orm_and_the_stream(tmp_path: Any) -> None:
    proc = _bench(
        tmp_path, "--run-id", "s", "--workloads", "orm_orders,stream_tokens", "--threads", "1",
        "--size", "stream_tokens=4", "--size", "orm_orders=20", timeout=240,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    run = results.load_run(tmp_path / "s")
    assert run.meta.generator is not None and "first byte" in run.meta.generator["streams"]
    cells = {c.workload: c for c in run.cells}
    orm, stream = cells["orm_orders"], cells["stream_tokens"]
    assert orm.status == "ok" and orm.unit == "req/s" and orm.samples[0] > 0
    assert orm.repetitions[0].load.chunks is None
    assert stream.status == "ok", stream.error
    assert stream.unit == "chunks/s" and stream.workload_class == "streaming"
    rep = stream.repetitions[0]
    assert rep.load.generator == "python" and rep.load.chunks == 4 * rep.load.requests > 0
    assert stream.samples[0] == rep.load.chunks_per_s
    ttfb = rep.load.ttfb_ms
    assert ttfb is not None and (ttfb["p50"] or 0) >= 9.0  # after the 10 ms upstream delay
    assert rep.load.gap_p99_ms is not None and rep.load.gap_p99_ms >= 9.0
    assert stream.info_before is not None and stream.info_before.queue_limit == 32  # room for 16 streams x 2
