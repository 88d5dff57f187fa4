"""Streamed loads: the event clock, both generators against a real streaming server, merging."""

from __future__ import annotations

import contextlib
import itertools
import shutil
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from serving import Served, start, stop_cleanly

from ftscale import workloads
from ftscale.bench import histogram
from ftscale.bench.http import loadgen
from ftscale.bench.http.loadgen import LoadSpec, StreamClock
from ftscale.bench.http.loadgen.processes import merge
from ftscale.bench.http.real import SubprocessGenerator
from ftscale.schema import LoadResult

DELAY_S = workloads.get("stream_tokens").stream.delay_s  # type: ignore[union-attr]
SIZE = 4


def test_the_clock_times_the_first_byte_and_counts_events_split_across_reads() -> None:
    clock = StreamClock(since=10.0)
    clock.data(b"data: 1\n", 10.5)  # the first byte, half an event
    assert (clock.first_byte_s, clock.events) == (0.5, 0)
    clock.data(b"\ndata: 2\n\nda", 10.7)  # the separator split between reads; a second event
    assert clock.events == 2 and clock.gaps_s == [0.0]  # two events in one read: no gap between
    clock.data(b"ta: 3\n", 10.9)
    clock.data(b"\n", 11.2)  # a lone newline completes the separator
    assert clock.events == 3 and clock.gaps_s == pytest.approx([0.0, 0.5])
    clock.data(b"\n\n\ndata: 4\n\n", 11.3)  # a blank line of its own, then an event
    assert clock.events == 5 and clock.gaps_s == pytest.approx([0.0, 0.5, 0.1, 0.0])
    clock.data(b"", 12.0)  # an empty read changes nothing
    assert clock.events == 5 and clock.first_byte_s == 0.5


def test_the_clock_does_not_pair_a_newline_twice() -> None:
    clock = StreamClock(since=0.0)
    clock.data(b"a\n\n", 1.0)
    clock.data(b"\nb\n\n", 2.0)  # the leading newline follows a complete separator: not a new one
    assert clock.events == 2


@given(
    text=st.text(alphabet="a\n", max_size=40),
    cuts=st.lists(st.integers(min_value=0, max_value=40), max_size=6),
)
def test_the_clock_counts_as_the_whole_body_would_however_it_is_read(text: str, cuts: list[int]) -> None:
    body = text.encode()
    clock = StreamClock(since=0.0)
    edges = [0, *sorted(min(c, len(body)) for c in cuts), len(body)]
    for lo, hi in itertools.pairwise(edges):
        clock.data(body[lo:hi], 1.0)
    assert clock.events == body.count(b"\n\n")


def _part(chunks: int, first_ms: list[float], gaps_ms: list[float], timed: bool = True) -> LoadResult:
    figures = loadgen.stream_figures(chunks, 2.0, [f / 1000 for f in first_ms], [g / 1000 for g in gaps_ms])
    if not timed:
        figures = {"chunks": chunks, "chunks_per_s": chunks / 2.0}
    return LoadResult(
        generator="python",
        requests=len(first_ms),
        duration_s=2.0,
        throughput_rps=len(first_ms) / 2.0,
        latency_ms={"p50": 1.0, "p90": 1.0, "p99": 1.0, "p99.9": 1.0},
        latency_histogram=histogram.from_latencies_s([0.001] * len(first_ms)),
        **figures,
    )


def test_generator_processes_merge_their_streams() -> None:
    merged = merge([_part(10, [20.0] * 9, [10.0] * 9), _part(30, [40.0], [50.0] * 3)], None)
    assert merged.chunks == 40 and merged.chunks_per_s == pytest.approx(20.0)
    assert merged.ttfb_histogram is not None and histogram.count(merged.ttfb_histogram) == 10
    assert merged.ttfb_ms is not None and merged.ttfb_ms["p50"] == pytest.approx(20.0, rel=0.01)
    assert merged.ttfb_ms["p99"] == pytest.approx(40.0, rel=0.01)
    assert merged.gap_p99_ms == pytest.approx(50.0, rel=0.01)
    untimed = merge([_part(10, [20.0], [], timed=False), _part(5, [20.0], [], timed=False)], None)
    assert untimed.chunks == 15 and untimed.ttfb_ms is None and untimed.gap_p99_ms is None
    plain = merge([_part(1, [1.0], []).model_copy(update={"chunks": None})] * 2, None)
    assert plain.chunks is None and plain.chunks_per_s is None


def test_streams_go_to_the_built_in_generator_unless_wrk_is_named() -> None:
    spec = LoadSpec(host="h", port=1, path="/stream/stream_tokens", stream=True)
    assert SubprocessGenerator("wrk", [0]).name_for(spec) == "python"
    assert SubprocessGenerator("wrk", [0], stream_name="wrk").name_for(spec) == "wrk"
    assert (
        SubprocessGenerator("wrk", [0], stream_name="wrk").name_for(LoadSpec("h", 1, "/w", rate=5))
        == "python"
    )
    assert SubprocessGenerator("wrk", [0]).name_for(LoadSpec("h", 1, "/work/nbody")) == "wrk"


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    with contextlib.ExitStack() as cleanup:
        server = start(cleanup, "--mode", "threadpool", "--threads", "2", "--queue-limit", "32")
        yield server
        stop_cleanly(server)


def _spec(served: Served) -> LoadSpec:
    body = f'{{"size": {SIZE}}}'.encode()
    return LoadSpec(
        "127.0.0.1",
        served.port,
        "/stream/stream_tokens",
        body=body,
        connections=4,
        duration_s=1.0,
        stream=True,
    )


@pytest.mark.slow
def test_the_built_in_generator_times_a_real_stream(served: Served) -> None:
    result = loadgen.run_python(_spec(served))
    assert result.errors == {} and result.requests >= 4
    assert result.chunks == SIZE * result.requests  # every completed stream, every event
    assert result.chunks_per_s == pytest.approx(result.chunks / result.duration_s, rel=1e-3)
    assert result.ttfb_histogram is not None and result.gap_histogram is not None
    assert histogram.count(result.ttfb_histogram) == result.requests
    assert histogram.count(result.gap_histogram) == (SIZE - 1) * result.requests
    assert result.ttfb_ms is not None
    # Each event follows the upstream's delay: no first byte, no gap comes sooner.
    assert (result.ttfb_ms["p50"] or 0) >= DELAY_S * 1000 * 0.9
    assert histogram.percentile_ms(result.gap_histogram, 50) >= DELAY_S * 1000 * 0.9
    assert (result.latency_ms["p50"] or 0) >= SIZE * DELAY_S * 1000 * 0.9


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_wrk_counts_the_events_of_a_real_stream(served: Served) -> None:
    result = loadgen.run_wrk(_spec(served))
    assert result.generator == "wrk" and result.errors == {} and result.requests >= 4
    assert result.chunks == SIZE * result.requests
    assert result.chunks_per_s == pytest.approx(result.chunks / result.duration_s, rel=1e-3)
    assert result.ttfb_ms is None and result.ttfb_histogram is None and result.gap_p99_ms is None
    plain = loadgen.run_wrk(
        LoadSpec("127.0.0.1", served.port, "/work/nbody", body=b'{"size": 1}', duration_s=1.0)
    )
    assert plain.chunks is None  # not a stream: nothing counted


@pytest.mark.slow
def test_the_built_in_generator_spread_over_processes_times_a_real_stream(served: Served) -> None:
    """Through the generator's runner: one ``python -m ftscale.bench.http.loadgen python`` process per
    client CPU, their results merged."""
    generator = SubprocessGenerator("python", [0, 0])
    result, health = generator.load(_spec(served), probe_health=False)
    assert health is None and result.generator == "python" and result.generator_cpus == 2
    assert result.errors == {} and result.requests >= 4
    assert result.chunks == SIZE * result.requests
    assert result.ttfb_histogram is not None and histogram.count(result.ttfb_histogram) == result.requests
