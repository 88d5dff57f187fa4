"""The intervals the verdicts rest on: the choice of order statistics, paired rounds, the words.

Checked against enumeration (every pair of order statistics for n, m <= 10; every sign pattern
of the signed-rank statistic) and against seeded simulations of the noise seen on the
development machine: in the committed runs the whole-round drift and the rest of the noise have
about the same spread (log sd 0.15 and 0.13 in the --full run, 0.07 and 0.07 in the quick run).
"""

from __future__ import annotations

import itertools
import math
import random

import pytest

from ftscale.bench import intervals as iv

SIZES = range(2, 11)


def admissible(n: int, m: int, level: float = iv.CONFIDENCE) -> list[tuple[int, int, float]]:
    pairs = itertools.product(range(1, (n + 1) // 2 + 1), range(1, (m + 1) // 2 + 1))
    return [(k1, k2, c) for k1, k2 in pairs if (c := iv.ratio_coverage(n, m, k1, k2)) >= level]


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("m", SIZES)
def test_the_ratio_interval_is_the_narrowest_reaching_the_level_against_enumeration(n: int, m: int) -> None:
    k1, k2, coverage = iv.ratio_ranks(n, m)
    reaching = admissible(n, m)
    if not reaching:  # too few samples: the widest, with the coverage it really has
        assert (k1, k2) == (1, 1) and coverage == iv.ratio_coverage(n, m, 1, 1) < iv.CONFIDENCE
        return
    assert coverage == iv.ratio_coverage(n, m, k1, k2) >= iv.CONFIDENCE
    narrowest = min(iv.expected_ratio_width(n, m, a, b) for a, b, _ in reaching)
    assert iv.expected_ratio_width(n, m, k1, k2) == pytest.approx(narrowest, rel=1e-9)
    symmetric = [
        a for a, b, _ in reaching if a == b and iv.expected_ratio_width(n, m, a, b) <= narrowest + 1e-9
    ]
    if n == m and symmetric:  # symmetric where that is as narrow
        assert k1 == k2


def test_ten_against_ten_takes_3_and_3_not_the_lopsided_1_and_5() -> None:
    assert iv.ratio_ranks(10, 10)[:2] == (3, 3)
    assert iv.ratio_coverage(10, 10, 1, 5) >= iv.CONFIDENCE  # admissible too, but wider
    rng = random.Random(7)
    wider = 0
    for _ in range(400):
        a = sorted(math.exp(rng.gauss(0, 0.1)) for _ in range(10))
        b = sorted(math.exp(rng.gauss(0, 0.1)) for _ in range(10))
        chosen = math.log(a[7] / b[2]) - math.log(a[2] / b[7])
        lopsided = math.log(a[9] / b[4]) - math.log(a[0] / b[5])
        wider += lopsided > chosen
    assert wider > 300  # (1, 5) is the wider one in most samples


@pytest.mark.parametrize("n", range(1, 11))
def test_signed_rank_counts_match_every_sign_pattern(n: int) -> None:
    counts = [0] * (n * (n + 1) // 2 + 1)
    for signs in itertools.product((0, 1), repeat=n):
        counts[sum(rank for rank, plus in zip(range(1, n + 1), signs, strict=True) if plus)] += 1
    assert tuple(counts) == iv.signed_rank_counts(n)


def test_walsh_interval_needs_six_rounds_for_95_and_covers_as_stated() -> None:
    assert iv.walsh_rank(5) is None and iv.walsh_rank(6) == 1
    assert iv.walsh_coverage(10, iv.walsh_rank(10) or 0) >= 0.95
    rng = random.Random(11)
    trials, covered = 3000, 0
    for _ in range(trials):
        ratio = iv.paired_ratio([math.exp(rng.gauss(0, 0.2)) for _ in range(10)], [1.0] * 10).ratio
        covered += ratio.low <= 1.0 <= ratio.high
    assert abs(covered / trials - ratio.coverage) < 0.02


def drifting_rounds(
    rng: random.Random, true: float, rounds: int, cv: float = 0.15
) -> tuple[list[float], list[float]]:
    """Two designs measured once per round; half the log variance moves the whole round."""
    share = cv / math.sqrt(2)
    a, b = [], []
    for _ in range(rounds):
        drift = rng.gauss(0, share)
        a.append(100 * true * math.exp(drift + rng.gauss(0, share)))
        b.append(100 * math.exp(drift + rng.gauss(0, share)))
    return a, b


def test_paired_rounds_detect_a_true_085_at_10_rounds_and_15_percent_cv() -> None:
    rng = random.Random(23)
    trials = 1000
    found = sum(
        iv.decide(iv.paired_ratio(*drifting_rounds(rng, 0.85, 10)).ratio) == "lower" for _ in range(trials)
    )
    assert found / trials >= 0.80


def test_pairing_is_what_finds_it_the_same_rounds_unpaired_mostly_do_not() -> None:
    rng = random.Random(29)
    paired = unpaired = 0
    for _ in range(400):
        a, b = drifting_rounds(rng, 0.85, 10)
        paired += iv.decide(iv.paired_ratio(a, b).ratio) == "lower"
        unpaired += iv.decide(iv.ratio_of_medians(a, b)) == "lower"
    assert paired > unpaired + 80


def test_equal_designs_in_paired_rounds_are_called_different_in_at_most_5_percent() -> None:
    rng = random.Random(31)
    trials = 2000
    wrong = sum(
        iv.decide(iv.paired_ratio(*drifting_rounds(rng, 1.0, 10)).ratio) in ("higher", "lower")
        for _ in range(trials)
    )
    assert wrong / trials <= 0.05


def test_a_paired_ratio_leaves_out_rounds_where_a_side_failed() -> None:
    p = iv.paired_ratio([2.0, math.nan, 2.2, 0.0], [1.0, 1.0, 1.1, 1.0])
    assert p.rounds == 2 and p.ratio.value == pytest.approx(2.0)
    with pytest.raises(ValueError):
        iv.paired_ratio([1.0], [1.0, 2.0])


def test_the_paired_estimate_follows_the_numerator_not_the_round_drift() -> None:
    drift = [1.0, 0.7, 1.3, 0.9, 1.1, 0.8, 1.2, 1.0, 0.95, 1.05]
    p = iv.paired_ratio([1.2 * d for d in drift], drift)
    assert p.ratio.value == pytest.approx(1.2) and p.ratio.low == pytest.approx(1.2)
    swapped = iv.paired_ratio(drift, [1.2 * d for d in drift])
    assert swapped.ratio.value == pytest.approx(1 / 1.2)


# --- the words a ratio may carry ----------------------------------------------------------------


def est(low: float, high: float) -> iv.Estimate:
    return iv.Estimate(math.sqrt(low * high), low, high, 0.95)


@pytest.mark.parametrize(
    ("low", "high", "expected"),
    [
        (1.01, 1.2, "higher"),  # the interval excludes 1 above
        (0.8, 0.99, "lower"),  # ... below
        (0.97, 1.03, "equivalent"),  # inside 1/1.05 .. 1.05, and contains 1
        (0.9, 1.03, "inconclusive"),  # contains 1 but reaches beyond the margin
        (0.97, 1.06, "inconclusive"),
        (1.0, 1.0, "equivalent"),
    ],
)
def test_decide_says_only_what_the_interval_allows(low: float, high: float, expected: str) -> None:
    assert iv.decide(est(low, high)) == expected


def test_the_margin_is_a_setting_and_symmetric_on_a_log_scale() -> None:
    assert iv.decide(est(0.9, 1.1), margin=0.12) == "equivalent"
    assert iv.decide(est(0.9, 1.1), margin=0.05) == "inconclusive"
    low, high = iv.equivalence_bounds(0.05)
    assert low * high == pytest.approx(1.0)
    assert iv.decide(est(low, high)) == "equivalent"
    assert iv.decide(est(low * 0.999, high)) == "inconclusive"


def test_no_interval_decides_nothing() -> None:
    assert iv.decide(iv.Estimate(1.5)) == "undetermined"
    assert iv.decide(None) == "undetermined"


def test_rounds_needed_grows_with_the_spread_and_shrinks_with_the_gap() -> None:
    rng = random.Random(3)
    noisy = iv.paired_ratio(*drifting_rounds(rng, 0.93, 10, cv=0.3))
    calm = iv.paired_ratio([0.93 * (1 + 0.01 * math.sin(i)) for i in range(10)], [1.0] * 10)
    need_noisy, need_calm = iv.rounds_needed(noisy), iv.rounds_needed(calm)
    assert need_noisy is not None and need_noisy > 10
    assert need_calm is None or need_calm <= need_noisy
    assert iv.rounds_needed(iv.paired_ratio([1.0], [1.0])) is None
