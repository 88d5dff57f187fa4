"""The statistics against independent references, and the invariants they must keep (Hypothesis).

Nothing here builds its expectation with the function under test: the scalability laws are written
out below (and a few values by hand), medians come from :mod:`statistics`, the median's interval
from a brute-force order-statistic search with exact binomial sums, and the bootstrap interval of a
ratio from the exact bootstrap distribution, enumerated. Then the invariants a reader relies on:
an interval contains its point estimate, scaling a series scales its throughput and nothing else,
a perfectly linear series has efficiency 1 and Karp-Flatt 0, and reordering changes nothing.
"""

from __future__ import annotations

import itertools
import math
import statistics
from collections.abc import Sequence
from fractions import Fraction

import pytest

pytest.importorskip("scipy")
np = pytest.importorskip("numpy")
pytest.importorskip("hypothesis")

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ftscale.bench import intervals  # noqa: E402
from ftscale.bench.report import stats  # noqa: E402

# --- the laws, written out independently of bench/report/stats.py ------------------------------


def amdahl_law(n: float, lam: float, s: float) -> float:
    """Throughput under Amdahl's law: N workers, a fraction s of each call serialised."""
    return lam * n / (1 + s * (n - 1))


def usl_law(n: float, lam: float, sigma: float, kappa: float) -> float:
    """Gunther's Universal Scalability Law: contention sigma, coherency kappa."""
    return lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def test_the_model_functions_give_values_worked_out_by_hand() -> None:
    n = [1.0, 2.0, 4.0, 8.0]
    # lam = 100, s = 0.25: 100 * N / (1 + 0.25 (N - 1))
    assert stats.amdahl(np.array(n), 100.0, 0.25).tolist() == pytest.approx(
        [100.0, 200 / 1.25, 400 / 1.75, 800 / 2.75]
    )
    # lam = 100, sigma = 0.1, kappa = 0.01: 100 * N / (1 + 0.1 (N - 1) + 0.01 N (N - 1))
    assert stats.usl(np.array(n), 100.0, 0.1, 0.01).tolist() == pytest.approx(
        [100.0, 200 / 1.12, 400 / 1.42, 800 / 2.26]
    )
    assert stats.usl_peak(0.1, 0.01) == pytest.approx(math.sqrt(90))
    assert stats.usl_peak(0.2, 0.0) == math.inf


def test_fits_give_back_the_parameters_of_curves_written_by_hand() -> None:
    threads = [1, 2, 4, 8, 16]
    amdahl = stats.fit_amdahl(threads, [100.0, 200 / 1.25, 400 / 1.75, 800 / 2.75, 1600 / 4.75])
    assert (amdahl.lam, amdahl.serial_fraction) == pytest.approx((100.0, 0.25), rel=1e-6)
    assert amdahl.r_squared == pytest.approx(1.0)
    usl = stats.fit_usl(threads, [100.0, 200 / 1.12, 400 / 1.42, 800 / 2.26, 1600 / 4.9])
    assert (usl.lam, usl.sigma, usl.kappa) == pytest.approx((100.0, 0.1, 0.01), rel=1e-6)
    assert usl.peak_threads == pytest.approx(math.sqrt(90), rel=1e-6)
    assert usl.r_squared == pytest.approx(1.0)


THREAD_SETS = st.lists(st.sampled_from([1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 64]), min_size=3, unique=True)
RATE = st.floats(1e-2, 1e7)


@given(THREAD_SETS, RATE, st.floats(0.0, 0.99))
def test_fit_amdahl_recovers_any_amdahl_curve(threads: list[int], lam: float, s: float) -> None:
    fit = stats.fit_amdahl(threads, [amdahl_law(n, lam, s) for n in threads])
    assert fit.status == "ok" and fit.points == len(threads)
    assert fit.serial_fraction == pytest.approx(s, abs=2e-4)
    assert fit.lam == pytest.approx(lam, rel=1e-3)
    assert fit.r_squared == pytest.approx(1.0, abs=1e-6)


@given(THREAD_SETS, RATE)
def test_a_flat_curve_is_all_serial_and_has_no_r_squared(threads: list[int], lam: float) -> None:
    # s = 1 computed in floating point: equal up to rounding, so R² (which divides by the spread) is undefined
    fit = stats.fit_amdahl(threads, [amdahl_law(n, lam, 1.0) for n in threads])
    assert fit.serial_fraction == pytest.approx(1.0, abs=1e-4) and fit.lam == pytest.approx(lam, rel=1e-4)
    assert math.isnan(fit.r_squared)


@given(
    st.lists(st.sampled_from([1, 2, 4, 8, 16, 32, 64]), min_size=4, unique=True),
    RATE,
    st.floats(0.0, 0.5),
    st.floats(0.0, 0.02),
)
def test_fit_usl_recovers_any_usl_curve(threads: list[int], lam: float, sigma: float, kappa: float) -> None:
    fit = stats.fit_usl(threads, [usl_law(n, lam, sigma, kappa) for n in threads])
    assert fit.status == "ok" and fit.points == len(threads)
    assert fit.sigma == pytest.approx(sigma, abs=2e-4)
    assert fit.kappa == pytest.approx(kappa, abs=2e-5)
    assert fit.lam == pytest.approx(lam, rel=1e-3)


@given(st.floats(0.0, 0.99), st.floats(1e-5, 0.5))
def test_the_usl_peak_is_the_maximum_of_the_curve(sigma: float, kappa: float) -> None:
    peak = stats.usl_peak(sigma, kappa)
    assert peak == pytest.approx(math.sqrt((1 - sigma) / kappa))
    top = usl_law(peak, 1.0, sigma, kappa)
    for step in (0.9, 0.99, 1.01, 1.1):
        assert usl_law(peak * step, 1.0, sigma, kappa) <= top * (1 + 1e-12)


@given(st.integers(2, 1024), st.floats(0.0, 1.0))
def test_karp_flatt_of_an_amdahl_speedup_is_its_serial_fraction(threads: int, s: float) -> None:
    speedup = amdahl_law(threads, 1.0, s) / amdahl_law(1, 1.0, s)
    assert stats.karp_flatt(speedup, threads) == pytest.approx(s, abs=1e-9)


@given(st.integers(2, 1024))
def test_karp_flatt_is_zero_for_linear_and_one_for_no_speedup(threads: int) -> None:
    assert stats.karp_flatt(float(threads), threads) == pytest.approx(0.0, abs=1e-12)
    assert stats.karp_flatt(1.0, threads) == pytest.approx(1.0)
    assert math.isnan(stats.karp_flatt(0.0, threads)) and math.isnan(stats.karp_flatt(math.nan, threads))
    assert math.isnan(stats.karp_flatt(2.0, 1))


# --- medians and their intervals against brute force -------------------------------------------

SAMPLE = st.floats(1.0, 1e6)
SAMPLES = st.lists(SAMPLE, min_size=1, max_size=40)


def order_statistic_interval(samples: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Brute force: of every [x(k), x(n+1-k)], the narrowest covering the median with >= level.

    Coverage is P(at least k of n samples fall below the median, and at least k above), summed
    exactly; below 6 samples nothing reaches 95% and the whole range (k = 1) is the answer.
    """
    x, n = sorted(samples), len(samples)

    def coverage(k: int) -> Fraction:
        return 1 - 2 * Fraction(sum(math.comb(n, i) for i in range(k)), 2**n)

    good = [k for k in range(1, n // 2 + 1) if coverage(k) >= level]
    k = max(good, default=1)
    return x[k - 1], x[n - k], float(coverage(k))


@given(SAMPLES)
def test_median_ci_is_the_brute_force_order_statistic_interval(samples: list[float]) -> None:
    e = stats.median_ci(samples)
    assert e.value == statistics.median(samples)
    if len(samples) == 1:
        assert not e.has_interval
        return
    low, high, coverage = order_statistic_interval(samples)
    assert (e.low, e.high) == (low, high)
    assert e.coverage == pytest.approx(coverage, rel=1e-12)
    assert e.contains(e.value)
    assert (e.coverage >= 0.95) is (len(samples) >= 6)


@given(SAMPLES.filter(lambda x: len(x) > 1), st.data())
def test_median_ci_ignores_the_order_of_repetitions(samples: list[float], data: st.DataObject) -> None:
    assert stats.median_ci(data.draw(st.permutations(samples))) == stats.median_ci(samples)


@given(SAMPLES, st.floats(1e-3, 1e3))
def test_median_ci_scales_with_its_samples(samples: list[float], factor: float) -> None:
    e, scaled = stats.median_ci(samples), stats.median_ci([x * factor for x in samples])
    assert scaled.value == pytest.approx(e.value * factor)
    if e.has_interval:
        assert (scaled.low, scaled.high) == pytest.approx((e.low * factor, e.high * factor))
        assert scaled.coverage == e.coverage


@given(st.lists(SAMPLE, min_size=2, max_size=30), st.floats(1e-3, 1e3))
def test_coefficient_of_variation_is_stdev_over_mean_and_scale_free(
    samples: list[float], factor: float
) -> None:
    expected = statistics.stdev(samples) / statistics.mean(samples)
    assert stats.coefficient_of_variation(samples) == pytest.approx(expected, rel=1e-9, abs=1e-12)
    scaled = stats.coefficient_of_variation([x * factor for x in samples])
    assert scaled == pytest.approx(expected, rel=1e-6, abs=1e-12)


def brute_force_ratio_coverage(n: int, m: int, k1: int, k2: int) -> float:
    """Coverage of ``[x(k1)/y(m+1-k2), x(n+1-k1)/y(k2)]`` counted over every ordering of n + m noises.

    Independent of the code's lattice-path count: each choice of which of the n + m ranks belong
    to X is one equally likely ordering; the interval covers the true ratio unless the k1-th X
    comes after the (m+1-k2)-th Y, or the k2-th Y after the (n+1-k1)-th X.
    """
    covered = total = 0
    for x_ranks in itertools.combinations(range(n + m), n):
        xs = sorted(x_ranks)
        ys = sorted(set(range(n + m)) - set(x_ranks))
        total += 1
        covered += xs[k1 - 1] < ys[m - k2] and ys[k2 - 1] < xs[n - k1]
    return covered / total


SIZES = st.integers(2, 7)


@settings(max_examples=max(10, settings.default.max_examples // 2))
@given(SIZES, SIZES, st.data())
def test_ratio_coverage_matches_a_brute_force_count(n: int, m: int, data: st.DataObject) -> None:
    k1 = data.draw(st.integers(1, (n + 1) // 2))
    k2 = data.draw(st.integers(1, (m + 1) // 2))
    assert stats.ratio_coverage(n, m, k1, k2) == pytest.approx(brute_force_ratio_coverage(n, m, k1, k2))


REPS = st.lists(st.floats(1.0, 1e4), min_size=2, max_size=7)


@given(REPS, REPS)
def test_ratio_interval_uses_the_chosen_order_statistics_with_their_brute_force_coverage(
    num: list[float], den: list[float]
) -> None:
    e = stats.ratio_of_medians(num, den)
    a, b = sorted(num), sorted(den)
    n, m = len(a), len(b)
    assert e.value == pytest.approx(statistics.median(num) / statistics.median(den))
    k1, k2, _ = intervals.ratio_ranks(n, m)
    assert e.coverage == pytest.approx(brute_force_ratio_coverage(n, m, k1, k2))
    assert e.low == pytest.approx(min(a[k1 - 1] / b[m - k2], e.value))
    assert e.high == pytest.approx(max(a[n - k1] / b[k2 - 1], e.value))


PAIRS = st.lists(SAMPLE, min_size=1, max_size=12)


@given(PAIRS, PAIRS)
def test_a_ratio_interval_contains_its_estimate_and_stays_within_the_samples(
    num: list[float], den: list[float]
) -> None:
    e = stats.ratio_of_medians(num, den)
    assert e.value == pytest.approx(statistics.median(num) / statistics.median(den))
    assert e.has_interval is (min(len(num), len(den)) >= 2)
    if e.has_interval:
        assert e.contains(e.value) and 0 < e.coverage <= 1
        assert min(num) / max(den) * (1 - 1e-12) <= e.low and e.high <= max(num) / min(den) * (1 + 1e-12)


@given(PAIRS, PAIRS, st.data())
def test_a_ratio_ignores_the_order_of_repetitions(
    num: list[float], den: list[float], data: st.DataObject
) -> None:
    shuffled = stats.ratio_of_medians(data.draw(st.permutations(num)), data.draw(st.permutations(den)))
    assert shuffled == stats.ratio_of_medians(num, den)


@given(PAIRS, PAIRS, st.floats(1e-3, 1e3))
def test_a_ratio_scales_with_its_numerator_and_not_with_common_units(
    num: list[float], den: list[float], factor: float
) -> None:
    e = stats.ratio_of_medians(num, den)
    same_units = stats.ratio_of_medians([x * factor for x in num], [x * factor for x in den])
    assert (same_units.value, same_units.low, same_units.high) == pytest.approx(
        (e.value, e.low, e.high), rel=1e-9, nan_ok=True
    )
    faster = stats.ratio_of_medians([x * factor for x in num], den)
    assert (faster.value, faster.low, faster.high) == pytest.approx(
        (e.value * factor, e.low * factor, e.high * factor), rel=1e-9, nan_ok=True
    )


def test_a_ratio_needs_a_positive_denominator_and_samples_on_both_sides() -> None:
    assert math.isnan(stats.ratio_of_medians([1.0, 2.0, 3.0], []).value)
    assert math.isnan(stats.ratio_of_medians([], [1.0, 2.0, 3.0]).value)
    assert math.isnan(stats.ratio_of_medians([1.0, 2.0, 3.0], [0.0, 0.0, 0.0]).value)
    assert stats.ratio_of_medians([2.0, math.nan, 4.0], [1.0, 1.0, math.inf]).value == 3.0


@given(st.floats(0.01, 100.0), st.floats(0.0, 0.5), st.floats(0.0, 0.5))
def test_slowdown_is_the_extra_time_per_call(ratio: float, below: float, above: float) -> None:
    e = stats.slowdown(stats.Estimate(ratio, ratio * (1 - below), ratio * (1 + above), 0.9))
    assert e.value == pytest.approx(1 / ratio - 1)
    # a faster build (higher ratio) spends less extra time: the bounds swap
    assert e.low == pytest.approx(1 / (ratio * (1 + above)) - 1)
    assert e.high == pytest.approx(1 / (ratio * (1 - below)) - 1)
    assert e.coverage == 0.9
    assert e.low <= e.value <= e.high


# --- edges: the cases a property test rarely draws ---------------------------------------------


def test_an_estimate_contains_only_what_its_interval_covers_and_scales_whole() -> None:
    e = stats.Estimate(2.0, 1.0, 3.0, 0.9)
    assert e.contains(1.0) and e.contains(3.0) and not e.contains(3.5) and not e.contains(0.5)
    assert not stats.Estimate(2.0).contains(2.0)
    assert e.scaled(0.5) == stats.Estimate(1.0, 0.5, 1.5, 0.9)
    assert stats.exact(1.0) == stats.Estimate(1.0, 1.0, 1.0, 1.0)


def test_the_median_interval_of_a_hundred_samples_is_the_brute_force_one() -> None:
    samples = [float((7 * i) % 100) for i in range(100)]  # 0 .. 99, shuffled
    e = stats.median_ci(samples)
    low, high, coverage = order_statistic_interval(samples)
    assert (e.low, e.high, e.coverage) == (low, high, pytest.approx(coverage))
    assert (low, high) == (39.0, 60.0)  # x(40) and x(61)
    assert math.isnan(stats.median_ci([]).value) and math.isnan(stats.median([]))


def test_variation_needs_a_positive_mean() -> None:
    assert math.isnan(stats.coefficient_of_variation([0.0, 0.0]))
    assert math.isnan(stats.coefficient_of_variation([-1.0, 1.0]))
    assert math.isnan(stats.coefficient_of_variation([-2.0, -1.0]))


def test_a_peak_needs_finite_parameters() -> None:
    assert math.isnan(stats.usl_peak(math.nan, 0.1)) and math.isnan(stats.usl_peak(0.1, math.nan))
    assert stats.usl_peak(1.5, 0.1) == 0.0  # more contention than work: no concurrency helps


def test_r_squared_by_hand() -> None:
    observed = np.array([1.0, 2.0, 3.0])
    assert stats.r_squared(observed, np.array([1.0, 2.0, 4.0])) == pytest.approx(0.5)  # 1 - 1/2
    assert stats.r_squared(observed, np.array([2.0, 2.0, 2.0])) == pytest.approx(0.0)
    # a spread of one part in 10^9 is a measurement; one in 10^14 is rounding
    assert stats.r_squared(1e6 * (1 + np.array([0.0, 1e-9, -1e-9])), np.full(3, 1e6)) == pytest.approx(0.0)
    assert math.isnan(stats.r_squared(1e6 * (1 + np.array([0.0, 1e-14, -1e-14])), np.full(3, 1e6)))


def test_points_that_cannot_be_fitted_are_left_out() -> None:
    threads = [0, 1, 2, 4, 8, math.nan, 16, 32]
    throughput = [50.0, 100.0, 200.0, 400.0, math.nan, 900.0, 0.0, -5.0]
    # kept: 1, 2, 4 threads (0 threads, a NaN of either kind, zero and negative throughput are not points)
    assert stats.fit_amdahl(threads, throughput).points == 3
    assert stats.fit_usl(threads, throughput) == stats.UslFit("too-few-points", 3)
    assert stats.fit_amdahl([1, 2], [1.0, 2.0]) == stats.AmdahlFit("too-few-points", 2)


def test_fits_stay_within_their_bounds() -> None:
    threads = [1, 2, 4, 8]
    superlinear = stats.fit_amdahl(threads, [100.0, 210.0, 440.0, 920.0])
    assert superlinear.serial_fraction == 0.0  # not negative: no serial fraction below none
    retrograde = stats.fit_amdahl(threads, [100.0, 80.0, 60.0, 40.0])
    # not above 1: Amdahl cannot lose throughput
    assert retrograde.serial_fraction == pytest.approx(1.0) and retrograde.serial_fraction <= 1.0
    usl = stats.fit_usl(threads, [100.0, 210.0, 440.0, 920.0])
    assert (usl.sigma, usl.kappa) == (0.0, 0.0) and usl.peak_threads == math.inf
    falling = stats.fit_usl(threads, [100.0, 60.0, 40.0, 30.0])
    assert 0.0 <= falling.sigma <= 1.0 and falling.kappa >= 0.0


@pytest.mark.parametrize(("s", "snapped"), [(1.3e-5, True), (1.5e-5, False)])
def test_a_serial_fraction_too_small_to_matter_at_the_most_threads_is_zero(s: float, snapped: bool) -> None:
    # at 8 threads the term s (N - 1) is 9.1e-5 or 1.05e-4 of the denominator, against 1e-4
    threads = [1, 2, 4, 8]
    fit = stats.fit_amdahl(threads, [amdahl_law(n, 100.0, s) for n in threads])
    assert fit.serial_fraction == (0.0 if snapped else pytest.approx(s, rel=1e-3))


@pytest.mark.parametrize(
    ("sigma", "kappa", "sigma_snapped", "kappa_snapped"),
    [(1.3e-5, 1.7e-6, True, True), (1.5e-5, 1.9e-6, False, False)],
)
def test_usl_terms_too_small_to_matter_are_zero(
    sigma: float, kappa: float, sigma_snapped: bool, kappa_snapped: bool
) -> None:
    # at 8 threads: sigma (N - 1) against 1e-4, and kappa N (N - 1) = 56 kappa against 1e-4
    threads = [1, 2, 4, 8]
    fit = stats.fit_usl(threads, [usl_law(n, 100.0, sigma, kappa) for n in threads])
    assert fit.sigma == (0.0 if sigma_snapped else pytest.approx(sigma, rel=1e-2))
    assert fit.kappa == (0.0 if kappa_snapped else pytest.approx(kappa, rel=1e-2))


def test_a_fit_that_does_not_converge_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    def diverges(*args: object, **kwargs: object) -> object:
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr(stats.optimize, "curve_fit", diverges)
    threads, throughput = [1, 2, 4, 8], [100.0, 180.0, 300.0, 450.0]
    assert stats.fit_amdahl(threads, throughput) == stats.AmdahlFit("failed", 4)
    assert stats.fit_usl(threads, throughput) == stats.UslFit("failed", 4)


def test_a_narrower_level_gives_a_narrower_interval() -> None:
    num, den = [10.0, 11.0, 12.0, 13.0, 9.0, 10.5], [5.0, 5.5, 6.0, 4.5, 5.2, 5.1]
    wide, narrow = stats.ratio_of_medians(num, den), stats.ratio_of_medians(num, den, level=0.5)
    assert 0.5 <= narrow.coverage < wide.coverage and wide.coverage >= 0.95
    assert wide.low <= narrow.low <= narrow.value <= narrow.high <= wide.high
    assert (narrow.low, narrow.high) != (wide.low, wide.high)


def test_no_extra_time_is_defined_for_a_ratio_of_zero_or_less() -> None:
    e = stats.slowdown(stats.Estimate(0.0, -1.0, 1.0, 0.9))
    assert math.isnan(e.value) and math.isnan(e.high) and e.low == 0.0
