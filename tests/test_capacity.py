"""The capacity at a latency target, rule by rule: in-window throughput, Poisson arrivals, the p99's
upper bound, the interval without monotonicity, censoring, and the generator's own checks.

Each test states a rule and fails when the rule is inverted or applied to the other side.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import statistics
import threading
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest

from ftscale.bench import histogram
from ftscale.bench.http import arrivals, capacity, gencheck, loadgen
from ftscale.bench.http.cells import AppRequests, CellSpec, Settings
from ftscale.bench.http.judge import flags_for
from ftscale.bench.http.loadgen import LoadSpec, processes
from ftscale.bench.http.session import Window, repetition
from ftscale.schema import HttpRepetition, LoadResult, SloSearch, SloStep
from ftscale.vocab import FLAGS, Flag
from tests import synthetic

PLAN = CellSpec("3.14t", "nbody", "pure-python", 100, "threadpool", "single", 2, 4)

# --- in-window accounting ------------------------------------------------------------------------------


class SlowServer:
    """An HTTP/1.1 server on 127.0.0.1 that answers one request at a time, each after ``delay_s``:
    it serves at most 1 / delay_s requests per second, however many connections send."""

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.port = 0
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        lock = asyncio.Lock()

        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                while (await reader.readuntil(b"\r\n\r\n")) is not None:  # GET: no body
                    async with lock:
                        await asyncio.sleep(self.delay_s)
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                    await writer.drain()
            except (asyncio.IncompleteReadError, ConnectionError):
                writer.close()

        server = loop.run_until_complete(asyncio.start_server(handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        loop.run_forever()
        server.close()
        loop.run_until_complete(server.wait_closed())
        loop.close()

    def __enter__(self) -> SlowServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)


def _open_load(delay_s: float, rate: float = 40.0) -> LoadResult:
    with SlowServer(delay_s) as server:
        spec = LoadSpec(
            "127.0.0.1", server.port, "/x", method="GET", connections=8, duration_s=1.0, rate=rate,
            arrivals="uniform",
        )  # fmt: skip
        return loadgen.run_python(spec)


def _as_repetition(load: LoadResult, rate: float) -> HttpRepetition:
    return repetition(load, None, Window(None, None, 0.0), None, None, rate)


def test_a_server_that_cannot_keep_up_is_not_served_although_it_answers_every_request() -> None:
    """40 req/s offered to a server that answers 20 a second: its backlog is answered after the
    window (latency samples), but only what it finished inside the window is throughput, so the
    rate is judged not served."""
    load = _open_load(delay_s=0.05)
    assert load.due_requests == 40 and load.requests == 40  # all answered, most after the window
    assert load.window_requests is not None and load.window_requests <= 22
    assert load.throughput_rps == load.window_requests / 1.0 < 0.6 * 40
    step = capacity.judge(40.0, 10_000.0, [_as_repetition(load, 40.0)], min_samples=1)
    assert "not-served" in step.failures and not step.met  # (40 samples are too few for a p99 bound)
    assert step.achieved_rps < 0.6 * step.offered_rps


def test_a_server_that_keeps_up_is_served() -> None:
    load = _open_load(delay_s=0.0)
    assert load.due_requests == 40 and load.window_requests is not None
    assert load.window_requests >= capacity.SERVED_SHARE * 40
    step = capacity.judge(40.0, 10_000.0, [_as_repetition(load, 40.0)], min_samples=1)
    assert "not-served" not in step.failures and step.achieved_rps >= capacity.SERVED_SHARE * 40
    assert "errors" not in step.failures and step.error_kinds == {}


def test_a_step_with_failed_requests_fails_and_says_which() -> None:
    counts = synthetic.latency_histogram(1000, 5.0)
    reps = [
        synthetic.http_repetition(
            500.0, errors=errors, due_requests=500, window_requests=500, latency_histogram=counts
        )
        for errors in ({"503": 2}, {"503": 1, "unsent": 1})
    ]
    step = capacity.judge(500.0, 50.0, reps)
    assert step.failures == ["errors"] and step.errors == 4 and step.error_kinds == {"503": 3, "unsent": 1}


@pytest.mark.parametrize(("completed", "served"), [(97, True), (96, False)])
def test_served_is_judged_against_the_requests_due_from_exactly_97_percent(
    completed: int, served: bool
) -> None:
    counts = synthetic.latency_histogram(100, 5.0)
    rep = synthetic.http_repetition(
        completed, due_requests=100, window_requests=completed, latency_histogram=counts
    )
    step = capacity.judge(100.0, 50.0, [rep], min_samples=1)
    assert ("not-served" not in step.failures) is served


def test_an_open_loop_server_admits_every_request_its_generator_can_have_in_flight() -> None:
    """Poisson bursts queue in front of the service; the admission limit that suits the closed loop
    (pool + 4 x pool: 5 at one thread) would refuse them as 503s and fail the rate for errors."""
    for kind in ({"slo": True}, {"offered_share": 0.5}):
        open_loop = CellSpec("3.14t", "nbody", "pure-python", 100, "inline", "loops", 1, 4, **kind)
        assert open_loop.server_args == ("--queue-limit", str(4 * Settings().open_connections_factor))
    app = CellSpec("3.14t", "app", "app", 0, "threadpool", "single", 1, 8, slo=True, app=AppRequests("m"))
    assert app.server_args == ()  # a user's app is served without ftscale's admission limit


# --- arrivals ------------------------------------------------------------------------------------------


def _gaps(offsets: list[float]) -> list[float]:
    return [b - a for a, b in itertools.pairwise(offsets)]


def _dispersion(offsets: list[float], duration_s: float, bin_s: float) -> float:
    """Variance over mean of the counts in bins of ``bin_s``: 1 for a Poisson process, 0 for a clock."""
    counts = [0] * round(duration_s / bin_s)
    for t in offsets:
        counts[int(t / bin_s)] += 1
    return statistics.pvariance(counts) / statistics.mean(counts)


def test_poisson_arrivals_have_the_mean_rate_and_the_dispersion_of_a_poisson_process() -> None:
    """10,000 draws at 200 req/s: the mean gap is 1/rate, the gaps' coefficient of variation is 1
    (exponential) and the counts per 0.1 s vary as much as their mean; evenly spaced arrivals have
    the same rate and no dispersion at all."""
    offsets = list(arrivals.due_offsets("poisson", 200.0, 50.0, seed=7))
    assert abs(len(offsets) - 10_000) <= 4 * 100  # Poisson count: sd = sqrt(10,000)
    gaps = _gaps(offsets)
    assert statistics.mean(gaps) == pytest.approx(1 / 200, rel=0.03)
    assert statistics.pstdev(gaps) / statistics.mean(gaps) == pytest.approx(1.0, abs=0.05)
    assert _dispersion(offsets, 50.0, 0.1) == pytest.approx(1.0, abs=0.2)
    even = list(arrivals.due_offsets("uniform", 200.0, 50.0, seed=7))
    assert len(even) == 10_000 and statistics.pstdev(_gaps(even)) < 1e-9
    assert _dispersion(even, 50.0, 0.1) < 0.05
    assert all(0 <= t < 50.0 for t in offsets) and offsets == sorted(offsets)


def test_arrivals_are_reproducible_from_their_seed_and_differ_between_seeds() -> None:
    first = list(arrivals.due_offsets("poisson", 50.0, 5.0, seed=11))
    assert first == list(arrivals.due_offsets("poisson", 50.0, 5.0, seed=11))
    assert first != list(arrivals.due_offsets("poisson", 50.0, 5.0, seed=12))
    # seeds derive from the run's seed by a fixed hash: the same on every machine and version
    assert arrivals.derive_seed(1, "cell", 0) == arrivals.derive_seed(1, "cell", 0)
    assert arrivals.derive_seed(1, "cell", 0) != arrivals.derive_seed(1, "cell", 1)
    assert arrivals.run_seed("20261126T032656Z-http-vm") == 2434972745


def test_each_generator_process_draws_its_own_schedule_from_the_loads_seed() -> None:
    spec = LoadSpec("h", 1, "/w", connections=8, rate=100.0, seed=42)
    parts = processes.process_specs(spec, 2)
    assert [p.rate for p in parts] == [50.0, 50.0] and [p.connections for p in parts] == [4, 4]
    assert [p.seed for p in parts] == [arrivals.derive_seed(42, "process", i) for i in range(2)]
    assert parts[0].seed != parts[1].seed and {p.phase for p in parts} == {0.0}
    even = processes.process_specs(LoadSpec("h", 1, "/w", connections=8, rate=100.0, arrivals="uniform"), 2)
    assert [p.phase for p in even] == [0.0, 0.5]  # interleaved, not sending together
    assert "--seed" in processes.worker_command(parts[1])
    assert str(parts[1].seed) in processes.worker_command(parts[1])


def test_each_load_of_a_cell_gets_its_own_recorded_seed() -> None:
    from tests.test_sweep import FakeGenerator, FakeLauncher, _measure

    half = CellSpec("3.14t", "nbody", "pure-python", 100, "threadpool", "single", 2, 4, offered_share=0.5)
    gen = FakeGenerator(rps=120.0)
    cells = {c.cell_id: c for c in _measure(FakeLauncher(), gen, PLAN, half, seed=5)}
    seeds = [r.load.arrival_seed for r in cells[half.key].repetitions]
    assert seeds == [arrivals.derive_seed(5, half.key, n) for n in range(3)]


# --- the p99's upper confidence bound ------------------------------------------------------------------


def _exact_rank(n: int, q: Fraction, level: Fraction) -> tuple[int, Fraction] | None:
    """By brute force with exact fractions: the smallest u with P(Bin(n, q) <= u - 1) >= level."""
    cdf = Fraction(0)
    for u in range(1, n + 1):
        cdf += math.comb(n, u - 1) * q ** (u - 1) * (1 - q) ** (n - u + 1)
        if cdf >= level:
            return u, cdf
    return None


@pytest.mark.parametrize("n", [298, 299, 300, 420, 1000, 1500])
def test_the_upper_bound_rank_is_the_exact_binomial_one(n: int) -> None:
    found = capacity.quantile_upper_rank(n, 0.99, 0.95)
    exact = _exact_rank(n, Fraction(99, 100), Fraction(95, 100))
    if exact is None:
        assert found is None
        return
    assert found is not None and found[0] == exact[0]
    assert found[1] == pytest.approx(float(exact[1]), abs=1e-9) and found[1] >= 0.95


def test_the_upper_bound_needs_299_samples_for_a_p99_at_95_percent() -> None:
    assert capacity.quantile_upper_rank(298, 0.99) is None
    assert capacity.quantile_upper_rank(299, 0.99) == (299, pytest.approx(1 - 0.99**299))


def test_the_upper_bound_against_scipy_for_many_samples() -> None:
    scipy_stats = pytest.importorskip("scipy.stats")
    n = 20_000
    found = capacity.quantile_upper_rank(n, 0.99)
    assert found is not None
    rank, coverage = found
    assert scipy_stats.binom.cdf(rank - 1, n, 0.99) == pytest.approx(coverage, abs=1e-9)
    assert scipy_stats.binom.cdf(rank - 2, n, 0.99) < 0.95 <= coverage


def test_the_upper_bound_is_the_top_of_the_bucket_holding_that_order_statistic() -> None:
    # 1,000 samples: the bound is the 996th (exact rank); the p99 itself the 990th
    rank, _ = capacity.quantile_upper_rank(1000, 0.99) or (0, 0.0)
    assert rank == 996
    top = {ms: histogram.bounds_of(histogram.index_of(ms * 1000))[1] / 1000 for ms in (10, 80)}
    # 995 at 10 ms and 5 at 80 ms: the 996th is at 80 ms; 996 and 4: it is at 10 ms
    for common, bound_ms in ((995, top[80]), (996, top[10])):
        counts = histogram.from_value_counts([(10_000, common), (80_000, 1000 - common)])
        assert histogram.percentile_ms(counts, 99) == pytest.approx(10.0, rel=0.01)  # the point p99
        bound = capacity.upper_bound_ms(counts)
        assert bound is not None and bound[0] == bound_ms


@pytest.mark.parametrize(
    ("p99", "target", "met"),
    [
        (49.0, 50.0, True),
        (50.5, 50.0, False),
        # the point p99 (its bucket's middle, 50.05 ms) is under 50.1 ms; its bound (the top, 50.18) is not
        (50.0, 50.1, False),
    ],
)
def test_a_step_passes_only_when_the_p99_bound_is_at_or_under_the_target(
    p99: float, target: float, met: bool
) -> None:
    counts = synthetic.latency_histogram(1000, p99)
    rep = synthetic.http_repetition(1000.0, due_requests=1000, window_requests=1000, latency_histogram=counts)
    step = capacity.judge(1000.0, target, [rep])
    assert step.met is met and step.p99_upper_ms is not None and (step.p99_upper_ms <= target) is met
    assert step.p99_ms is not None and step.p99_ms < step.p99_upper_ms
    assert step.coverage is not None and step.coverage >= 0.95


def test_a_step_with_fewer_samples_than_its_minimum_does_not_pass() -> None:
    rep = synthetic.http_repetition(
        500.0, due_requests=500, window_requests=500, latency_histogram=synthetic.latency_histogram(500, 5.0)
    )  # fmt: skip
    assert capacity.judge(500.0, 50.0, [rep], min_samples=1000).failures == ["too-few-samples"]
    assert capacity.judge(500.0, 50.0, [rep], min_samples=500).met


# --- the search and its interval ------------------------------------------------------------------------


def _step(rate: float, met: bool) -> SloStep:
    return SloStep(offered_rps=rate, achieved_rps=rate, p99_ms=1.0, errors=0, met=met)


def test_the_capacity_is_the_highest_pass_below_the_lowest_failure_whatever_lies_above() -> None:
    """Not monotone: 50 passes, 70 fails, 85 and 100 pass. The capacity is [50, 70): a pass above
    a failure never raises it."""
    steps = [_step(100, True), _step(70, False), _step(50, True), _step(85, True)]
    assert capacity.interval(steps) == (50, 70)
    assert capacity.interval([_step(50, True), _step(100, True)]) == (100, None)  # censored
    assert capacity.interval([_step(50, False), _step(25, False)]) == (None, 25)  # none passed
    assert capacity.interval([_step(50, True), _step(50, False)]) == (None, 50)  # a failure counts first


class Curve:
    """A fake server whose p99 at each offered rate is ``p99(rate)``: one load per call, with enough
    samples and every request due answered inside the window; remembers each load's rate and window."""

    def __init__(self, p99: Callable[[float], float]) -> None:
        self.p99, self.calls = p99, []

    def __call__(self, rate: float, seconds: float) -> HttpRepetition:
        self.calls.append((rate, seconds))
        n = round(rate * seconds)
        return synthetic.http_repetition(
            rate, duration_s=seconds, requests=n, due_requests=n, window_requests=n, offered_rps=rate,
            latency_histogram=synthetic.latency_histogram(n, self.p99(rate)),
        )  # fmt: skip

    def rates(self) -> list[float]:
        return list(dict.fromkeys(rate for rate, _ in self.calls))


def test_a_non_monotone_curve_gives_the_documented_answer() -> None:
    """p99 20 ms up to 55 % of the cap, 80 ms from there to 75 %, 20 ms again above: the search goes up
    the grid, stops at its first failure (70 %), bisects twice and answers [55, 60); it never tries
    85 or 100 %, and never answers "≥ 100"."""
    curve = Curve(lambda rate: 80.0 if 55 < rate <= 75 else 20.0)
    found, reps = capacity.search(curve, 100.0, 50.0, duration_s=1.0)
    assert curve.rates() == [50.0, 70.0, 60.0, 55.0]
    assert (found.capacity_rps, found.failing_rps, found.censored) == (55.0, 60.0, False)
    assert len(reps) == capacity.MIN_LOADS and {r.offered_rps for r in reps} == {55.0}


def test_a_design_that_passes_at_its_closed_loop_median_is_censored() -> None:
    curve = Curve(lambda rate: 20.0)
    found, _ = capacity.search(curve, 100.0, 50.0, duration_s=1.0)
    assert curve.rates() == [50.0, 70.0, 85.0, 100.0]
    assert (found.capacity_rps, found.failing_rps, found.censored) == (100.0, None, True)


def test_a_first_rate_that_fails_sends_the_search_lower() -> None:
    curve = Curve(lambda rate: 20.0 if rate <= 30 else 90.0)
    found, _ = capacity.search(curve, 100.0, 50.0, duration_s=1.0)
    assert curve.rates() == [50.0, 25.0, 37.5, 31.25]
    assert (found.capacity_rps, found.failing_rps) == (25.0, 31.25)
    nothing = Curve(lambda rate: 90.0)
    found, reps = capacity.search(nothing, 100.0, 50.0, duration_s=1.0)
    assert (found.capacity_rps, found.failing_rps) == (None, 12.5)
    assert {r.offered_rps for r in reps} == {12.5}  # the cell keeps the lowest rate's loads


def test_each_step_rests_on_five_loads_and_a_thousand_requests() -> None:
    curve = Curve(lambda rate: 20.0)
    found, _ = capacity.search(curve, 100.0, 50.0, duration_s=1.0)
    for s in found.steps:
        assert s.loads == 5 and s.samples is not None and s.samples >= 1000
    # 50 req/s: 1,000 requests over 5 loads is 4 s each; 100 req/s: 50 targets (2.5 s) is longer
    assert dict(curve.calls) == {50.0: 4.0, 70.0: 2.9, 85.0: 2.5, 100.0: 2.5}


def test_a_step_short_of_samples_gets_more_loads() -> None:
    """Five loads that brought 750 requests (the arrivals fell short): two more reach 1,000."""
    counts = iter([150] * 10)

    def measure(rate: float, seconds: float) -> HttpRepetition:
        n = next(counts)
        return synthetic.http_repetition(
            rate, due_requests=n, window_requests=n, latency_histogram=synthetic.latency_histogram(n, 5.0)
        )

    found, reps = capacity.step(measure, 100.0, 50.0, 2.0, 5, 1000)
    assert len(reps) == 7 and found.samples == 1050 and found.met


def test_the_dry_run_estimate_follows_the_searchs_own_path() -> None:
    """The estimate of a search that passes up to 92.5 % of its cap is what that search loads."""
    curve = Curve(lambda rate: 20.0 if rate <= 0.93 * 80 else 90.0)
    capacity.search(curve, 80.0, 50.0, duration_s=1.5)
    assert [round(r / 80.0, 4) for r in curve.rates()] == list(capacity.UPWARD)
    spent = sum(0.5 + seconds + capacity.LOAD_OVERHEAD_S for _, seconds in curve.calls)
    assert capacity.search_seconds(80.0, 50.0, 1.5, 0.5) == pytest.approx(spent)


# --- the generator's own checks -------------------------------------------------------------------------


def _flags(target: float | None = None, **rep: Any) -> list[str]:
    return flags_for(PLAN, [synthetic.http_repetition(100.0, **rep)] * 3, None, target)


@pytest.mark.parametrize(
    ("lag", "target", "flagged"),
    [(2.5, 50.0, False), (2.51, 50.0, True), (0.16, None, True), (0.15, None, False)],
)
def test_a_late_generator_is_flagged_above_5_percent_of_the_target(
    lag: float, target: float | None, flagged: bool
) -> None:
    """Over 5 % of the p99 target; without a target, of the point's own p99 (3 ms here)."""
    assert (str(Flag.SEND_LAG) in _flags(target, send_lag_p99_ms=lag)) is flagged


def test_a_lagging_step_that_bounds_the_capacity_flags_the_cell_and_one_below_it_does_not() -> None:
    """The step at the capacity and the lowest failing one bound it: a lagging generator at either
    qualifies the capacity (the failure may be the generator's); at a lower step it does not."""

    def cell_flags(lagging: float) -> list[str]:
        steps = [
            _step(rate, met).model_copy(update={"flags": [str(Flag.SEND_LAG)] if rate == lagging else []})
            for rate, met in ((50, True), (70, True), (85, False))
        ]
        return capacity.with_search_flags([], SloSearch(target_p99_ms=50.0, steps=steps, capacity_rps=70.0))

    assert cell_flags(85) == [str(Flag.SEND_LAG)]
    assert cell_flags(70) == [str(Flag.SEND_LAG)]
    assert cell_flags(50) == []


def test_a_missing_busy_reading_is_unknown_never_ok() -> None:
    unknown = _flags(generator_busy_max_pct=None)
    assert str(Flag.GENERATOR_UNCHECKED) in unknown and str(Flag.GENERATOR_SATURATED) not in unknown
    assert _flags(generator_busy_max_pct=10.0) == []
    saturated = _flags(generator_busy_max_pct=60.0)
    assert str(Flag.GENERATOR_SATURATED) in saturated and str(Flag.GENERATOR_UNCHECKED) not in saturated
    # one process of a load without a reading: the load has none (its busiest may be that one)
    parts = [
        LoadResult(generator="python", requests=1, duration_s=1.0, throughput_rps=1.0, latency_ms={},
                   generator_busy_max_pct=busy)
        for busy in (10.0, None)
    ]  # fmt: skip
    assert processes.merge(parts, None).generator_busy_max_pct is None
    assert FLAGS[Flag.GENERATOR_UNCHECKED].short == "gen-busy?"


def test_ceilings_are_filed_by_request_shape_with_the_old_key_as_a_fallback() -> None:
    nbody = {"path": "/work/nbody", "body": b'{"size": 100}'}
    rag = {"path": "/work/rag_gateway", "body": b'{"size": 100}'}
    ceilings = {gencheck.ceiling_key("open", 8, gencheck.request_shape(nbody)): 5000.0}
    assert gencheck.ceiling_for(ceilings, "open", 8, nbody) == 5000.0
    assert gencheck.ceiling_for(ceilings, "open", 8, rag) is None
    assert gencheck.ceiling_for({"open:8": 7000.0}, "open", 8, rag) == 7000.0  # a run calibrated before
    assert gencheck.request_shape(nbody) == "POST /work/nbody 13B"


@pytest.mark.parametrize(("load", "flagged"), [("closed", True), ("open", False)])
def test_an_open_loops_throughput_spread_is_not_server_noise(load: str, flagged: bool) -> None:
    """With Poisson arrivals the requests due in a window vary by chance, so an open-loop cell's
    spread of throughputs does not earn the CV flag; the same spread in a closed loop does."""
    model_module = pytest.importorskip("ftscale.bench.report.model")
    reps = [synthetic.http_repetition(x) for x in (80.0, 100.0, 120.0)]
    cell = synthetic.http_cell(1, reps).model_copy(update={"load": load})
    model = model_module.build_model(synthetic.run([cell]))
    (point,) = [p for s in model.series for p in s.points]
    assert (str(Flag.HIGH_CV) in point.flags) is flagged


def test_open_loop_latency_counts_from_the_due_time_not_the_send() -> None:
    """One connection, requests due every 25 ms, a server that takes 50 ms each: each request is
    sent only when the previous answer is in, so from its send it waits 50 ms, but it was due ever
    earlier: latency from the due time grows with the backlog (no coordinated omission)."""
    with SlowServer(0.05) as server:
        spec = LoadSpec(
            "127.0.0.1", server.port, "/x", method="GET", connections=1, duration_s=1.0, rate=40.0,
            arrivals="uniform",
        )  # fmt: skip
        result = loadgen.run_python(spec)
    p50, p99 = result.latency_ms["p50"], result.latency_ms["p99"]
    assert p50 is not None and p99 is not None
    assert p50 > 200.0 and p99 > 600.0  # from the send it would be 50 ms, every one
    assert result.send_lag_p99_ms is not None
