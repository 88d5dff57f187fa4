"""The report model's invariants over generated series (Hypothesis): what a reader may rely on.

A series here is a handful of thread counts, each with a few repetitions; the model turns them
into points with throughput, S(N), efficiency and Karp-Flatt, and fits Amdahl and the USL. Scaling
every sample by a constant must scale the throughput and leave everything relative alone;
reordering repetitions or cells must change nothing; a perfectly linear series has efficiency 1
and Karp-Flatt 0; every interval contains its point estimate.
"""

from __future__ import annotations

import dataclasses
import math
import random

import pytest

pytest.importorskip("scipy")
pytest.importorskip("hypothesis")

from hypothesis import given, settings
from hypothesis import strategies as st

from ftscale.bench.report.model import Series, build_model
from ftscale.bench.report.stats import Estimate
from ftscale.vocab import Flag
from tests import synthetic

THREADS = st.lists(st.sampled_from([2, 3, 4, 8, 16]), max_size=4, unique=True).map(lambda t: sorted([1, *t]))
REPETITIONS = st.lists(st.floats(1.0, 1e6), min_size=1, max_size=6)


@st.composite
def series_samples(draw: st.DrawFn) -> dict[int, list[float]]:
    """Thread count -> repetitions, always with a 1-thread point."""
    return {n: draw(REPETITIONS) for n in draw(THREADS)}


def one_series(samples: dict[int, list[float]], shuffle: bool = False) -> Series:
    cells = [synthetic.micro_cell(n, reps) for n, reps in samples.items()]
    (series,) = build_model(synthetic.run(cells[::-1] if shuffle else cells)).series
    return series


def scaled(samples: dict[int, list[float]], factor: float) -> dict[int, list[float]]:
    return {n: [x * factor for x in reps] for n, reps in samples.items()}


def estimate(e: Estimate) -> tuple[float, float, float]:
    return (e.value, e.low, e.high)


def same(a: object, b: object) -> bool:
    """Equal field by field (dataclasses, tuples), NaN equal to NaN: no tolerance."""
    if dataclasses.is_dataclass(a) and dataclasses.is_dataclass(b):
        return type(a) is type(b) and same(dataclasses.astuple(a), dataclasses.astuple(b))  # type: ignore[arg-type]
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


# each example builds a model (bootstraps and two fits): fewer than the profile's default of 100
PROPERTY = settings(max_examples=max(10, settings.default.max_examples * 2 // 5))


@PROPERTY
@given(series_samples())
def test_every_interval_contains_its_point_estimate(samples: dict[int, list[float]]) -> None:
    series = one_series(samples)
    assert [p.threads for p in series.points] == sorted(samples)
    for point in series.points:
        for e in (point.throughput, point.speedup, point.efficiency):
            assert not e.has_interval or e.contains(e.value)
        assert point.efficiency.value == pytest.approx(point.speedup.value / point.threads)
        if point.threads > 1:
            s = point.speedup.value
            assert point.karp_flatt == pytest.approx((1 / s - 1 / point.threads) / (1 - 1 / point.threads))
    assert series.points[0].speedup.value == 1.0 and series.points[0].speedup.coverage == 1.0


@PROPERTY
@given(series_samples(), st.floats(1e-3, 1e3))
def test_scaling_a_series_scales_its_throughput_but_not_its_speedup(
    samples: dict[int, list[float]], factor: float
) -> None:
    series, bigger = one_series(samples), one_series(scaled(samples, factor))
    for p, q in zip(series.points, bigger.points, strict=True):
        assert estimate(q.throughput) == pytest.approx(
            tuple(x * factor for x in estimate(p.throughput)), rel=1e-9, nan_ok=True
        )
        assert estimate(q.speedup) == pytest.approx(estimate(p.speedup), rel=1e-9, nan_ok=True)
        assert estimate(q.efficiency) == pytest.approx(estimate(p.efficiency), rel=1e-9, nan_ok=True)
        assert q.karp_flatt == pytest.approx(p.karp_flatt, rel=1e-9, abs=1e-12, nan_ok=True)
        assert q.cv == pytest.approx(p.cv, rel=1e-6, abs=1e-12, nan_ok=True)
    assert [n for n, _ in bigger.ideal] == [n for n, _ in series.ideal]
    assert [x for _, x in bigger.ideal] == pytest.approx([x * factor for _, x in series.ideal], rel=1e-9)


@PROPERTY
@given(series_samples(), st.integers(-20, 20))
def test_fits_do_not_depend_on_the_unit(samples: dict[int, list[float]], exponent: int) -> None:
    # a power of two scales without rounding, so the fits must agree to the last bit
    factor = 2.0**exponent
    series, other = one_series(samples), one_series(scaled(samples, factor))
    assert same(
        (series.amdahl.status, series.amdahl.serial_fraction, series.amdahl.r_squared),
        (other.amdahl.status, other.amdahl.serial_fraction, other.amdahl.r_squared),
    )
    assert same(
        (series.usl.status, series.usl.sigma, series.usl.kappa, series.usl.peak_threads),
        (other.usl.status, other.usl.sigma, other.usl.kappa, other.usl.peak_threads),
    )
    assert same((series.amdahl.lam * factor, series.usl.lam * factor), (other.amdahl.lam, other.usl.lam))


@PROPERTY
@given(series_samples(), st.randoms(use_true_random=False))
def test_reordering_repetitions_or_cells_changes_nothing(
    samples: dict[int, list[float]], rng: random.Random
) -> None:
    shuffled = {n: rng.sample(reps, len(reps)) for n, reps in samples.items()}
    a, b = one_series(samples), one_series(shuffled, shuffle=True)
    for p, q in zip(a.points, b.points, strict=True):
        assert same(
            (p.throughput, p.speedup, p.efficiency, p.karp_flatt),
            (q.throughput, q.speedup, q.efficiency, q.karp_flatt),
        )
        assert p.flags == q.flags
        assert p.cv == pytest.approx(q.cv, rel=1e-12, nan_ok=True)
    assert same((a.amdahl, a.usl, a.ideal), (b.amdahl, b.usl, b.ideal))


@PROPERTY
@given(st.lists(st.floats(100.0, 1e5), min_size=3, max_size=5), THREADS.filter(lambda t: len(t) > 1))
def test_a_perfectly_linear_series_has_efficiency_one_and_no_serial_fraction(
    base: list[float], threads: list[int]
) -> None:
    series = one_series({n: [x * n for x in base] for n in threads})
    for point in series.points:
        assert point.speedup.value == pytest.approx(point.threads)
        assert point.efficiency.value == pytest.approx(1.0)
        # 1 lies in the interval, up to rounding at either end (x * n / n need not give x back exactly)
        assert point.efficiency.low <= 1.0 + 1e-9 and point.efficiency.high >= 1.0 - 1e-9
        if point.threads > 1:
            assert point.karp_flatt == pytest.approx(0.0, abs=1e-9)
    if series.amdahl.status == "ok":
        assert series.amdahl.serial_fraction == pytest.approx(0.0, abs=1e-6)
    one = series.points[0].throughput.value
    assert series.ideal == tuple((float(n), one * n) for n in threads)


def test_high_variation_is_flagged_above_five_percent_only() -> None:
    # sample standard deviations 4, 5 and 6 around a mean of 100
    series = one_series({1: [100.0, 104.0, 96.0], 2: [200.0, 210.0, 190.0], 4: [400.0, 424.0, 376.0]})
    assert [p.cv for p in series.points] == pytest.approx([0.04, 0.05, 0.06])
    assert [Flag.HIGH_CV in p.flags for p in series.points] == [False, False, True]
