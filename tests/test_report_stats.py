"""The report statistics against analytic cases: curves built from a law give the law back."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("scipy")
np = pytest.importorskip("numpy")

from ftscale.bench.report import stats  # noqa: E402

THREADS = np.array([1, 2, 4, 8, 16, 32], dtype=float)


@pytest.mark.parametrize("serial", [0.0, 0.02, 0.1, 0.5])
def test_perfect_amdahl_curve_gives_back_its_serial_fraction(serial: float) -> None:
    fit = stats.fit_amdahl(THREADS, stats.amdahl(THREADS, 1234.0, serial))
    assert fit.status == "ok"
    assert fit.serial_fraction == pytest.approx(serial, abs=1e-6)
    assert fit.lam == pytest.approx(1234.0, rel=1e-5)
    assert fit.r_squared == pytest.approx(1.0, abs=1e-9)


@pytest.mark.parametrize(("sigma", "kappa"), [(0.05, 0.02), (0.1, 0.001), (0.0, 0.005), (0.3, 0.0)])
def test_perfect_usl_curve_gives_back_sigma_and_kappa(sigma: float, kappa: float) -> None:
    fit = stats.fit_usl(THREADS, stats.usl(THREADS, 500.0, sigma, kappa))
    assert fit.status == "ok"
    assert fit.sigma == pytest.approx(sigma, abs=1e-6)
    assert fit.kappa == pytest.approx(kappa, abs=1e-7)
    assert fit.r_squared == pytest.approx(1.0, abs=1e-9)
    expected_peak = math.sqrt((1 - sigma) / kappa) if kappa > 0 else math.inf
    assert fit.peak_threads == pytest.approx(expected_peak, rel=1e-4)


def test_linear_scaling_has_speedup_n_efficiency_one_and_no_serial_fraction() -> None:
    spread = (0.99, 1.0, 1.01)
    base = [1000.0 * f for f in spread]
    for n in (2, 4, 8, 16):
        speedup = stats.ratio_of_medians([1000.0 * n * f for f in spread], base)
        assert speedup.value == pytest.approx(n)
        assert speedup.scaled(1 / n).value == pytest.approx(1.0)
        assert stats.karp_flatt(speedup.value, n) == pytest.approx(0.0, abs=1e-12)
    throughput = 1000.0 * THREADS
    amdahl, usl = stats.fit_amdahl(THREADS, throughput), stats.fit_usl(THREADS, throughput)
    assert (amdahl.serial_fraction, usl.sigma, usl.kappa) == (0.0, 0.0, 0.0)
    assert math.isinf(usl.peak_threads)


def test_karp_flatt_of_an_amdahl_speedup_is_its_serial_fraction() -> None:
    for n in (2, 4, 16):
        speedup = n / (1 + 0.1 * (n - 1))
        assert stats.karp_flatt(speedup, n) == pytest.approx(0.1)
    assert math.isnan(stats.karp_flatt(1.0, 1))


@pytest.mark.parametrize(
    "samples",
    [[3.0, 1.0, 2.0], [5.0, 5.0], [1.0, 2.0, 3.0, 4.0, 100.0], list(np.linspace(10, 30, 21)), [7.0] * 8],
)
def test_median_ci_contains_the_median(samples: list[float]) -> None:
    e = stats.median_ci(samples)
    assert e.value == pytest.approx(float(np.median(samples)))
    assert e.contains(e.value)


def test_median_ci_is_the_exact_order_statistic_interval() -> None:
    # n = 3: only [min, max], which covers the median with 1 - 2 * 0.5**3 = 75%
    e = stats.median_ci([30.0, 10.0, 20.0])
    assert (e.low, e.high, e.coverage) == (10.0, 30.0, 0.75)
    # n = 20: [x(6), x(15)] is the narrowest with coverage >= 95% (0.9586)
    e = stats.median_ci([float(i) for i in range(1, 21)])
    assert (e.low, e.high) == (6.0, 15.0)
    assert e.coverage == pytest.approx(1 - 2 * 0.020694732666015625)
    # one sample: a median, no interval
    e = stats.median_ci([42.0])
    assert e.value == 42.0 and not e.has_interval


def test_bootstrap_ratio_with_three_samples_is_analytic() -> None:
    # each bound of the resampled ratio has more than 2.5% of the mass: the interval is exact
    e = stats.ratio_of_medians([99.0, 100.0, 101.0], [198.0, 200.0, 202.0])
    assert e.value == 0.5
    assert e.low == pytest.approx(0.5 * 0.99 / 1.01)
    assert e.high == pytest.approx(0.5 * 1.01 / 0.99)


def test_ratio_is_deterministic_and_honest_about_small_samples() -> None:
    a, b = [10.0, 11.0, 12.0, 13.0, 9.0], [5.0, 5.5, 6.0, 4.5, 5.2]
    assert stats.ratio_of_medians(a, b) == stats.ratio_of_medians(a, b)
    two = stats.ratio_of_medians([10.0, 11.0], b)  # the widest interval, labelled with what it covers
    assert two.has_interval and two.coverage == stats.ratio_coverage(2, 5, 1, 1) < 0.95
    assert (two.low, two.high) == (10.0 / 6.0, 11.0 / 4.5)
    assert not stats.ratio_of_medians([10.0], b).has_interval
    assert math.isnan(stats.ratio_of_medians([], b).value)


def _simulated_coverage(n: int, m: int, trials: int = 4000) -> tuple[float, float, float, float]:
    """(stated, simulated) coverage of the median and the ratio intervals under log-normal noise."""
    rng = np.random.default_rng(7)
    median_hits = ratio_hits = 0
    median_stated = ratio_stated = math.nan
    for _ in range(trials):
        a = 200.0 * np.exp(rng.normal(0.0, 0.05, n))  # true median 200
        b = 100.0 * np.exp(rng.normal(0.0, 0.05, m))  # true median 100: the true ratio is 2
        median, ratio = stats.median_ci(a), stats.ratio_of_medians(a, b)
        median_stated, ratio_stated = median.coverage, ratio.coverage
        median_hits += median.low <= 200.0 <= median.high
        ratio_hits += ratio.low <= 2.0 <= ratio.high
    return median_stated, median_hits / trials, ratio_stated, ratio_hits / trials


@pytest.mark.parametrize(("n", "m"), [(3, 3), (5, 5), (3, 5), (7, 4), (12, 12)])
def test_stated_coverage_is_what_simulation_finds(n: int, m: int) -> None:
    """Every interval is labelled with its real coverage: within 3 points of a simulation."""
    median_stated, median_found, ratio_stated, ratio_found = _simulated_coverage(n, m)
    assert abs(median_stated - median_found) <= 0.03, (median_stated, median_found)
    assert abs(ratio_stated - ratio_found) <= 0.03, (ratio_stated, ratio_found)


def test_ratio_coverage_counts_orderings_by_hand() -> None:
    # 3 against 3, widest interval: it misses only when all of one sample's noises lie below all of
    # the other's, 2 of the C(6, 3) = 20 equally likely orderings
    assert stats.ratio_coverage(3, 3, 1, 1) == pytest.approx(18 / 20)
    # 2 against 2: misses in 2 of C(4, 2) = 6 orderings
    assert stats.ratio_coverage(2, 2, 1, 1) == pytest.approx(4 / 6)


def test_fits_say_too_few_points() -> None:
    assert stats.fit_amdahl([1, 2], [1.0, 2.0]).status == "too-few-points"
    assert stats.fit_usl([1, 2, 4], [1.0, 2.0, 4.0]).status == "too-few-points"
    assert stats.fit_amdahl([1, 2, 4], [1.0, 2.0, 4.0]).status == "ok"


def test_flat_throughput_has_no_r_squared() -> None:
    fit = stats.fit_amdahl(THREADS, [500.0] * len(THREADS))
    assert fit.serial_fraction == pytest.approx(1.0, abs=1e-5)
    assert math.isnan(fit.r_squared)


def test_coefficient_of_variation() -> None:
    assert stats.coefficient_of_variation([0.9, 1.0, 1.1]) == pytest.approx(0.1)
    assert math.isnan(stats.coefficient_of_variation([1.0]))


def test_slowdown_maps_the_interval() -> None:
    e = stats.slowdown(stats.Estimate(0.8, 0.5, 1.0, 0.95))
    assert (e.value, e.low, e.high) == pytest.approx((0.25, 0.0, 1.0))
