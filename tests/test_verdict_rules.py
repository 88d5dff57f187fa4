"""The rules a reproducible verdict rests on, one test each: what may be chosen, by what, what
judges it, and what a report may then say. Each test fails if its rule is inverted, applied to
the other side, or given the exploration where the confirmation belongs."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

import pytest

pytest.importorskip("scipy")

from ftscale.bench import intervals
from ftscale.bench.http import confirm
from ftscale.bench.http.cells import CellSpec, rounds_order
from ftscale.bench.http.judge import unbalanced
from ftscale.bench.http.matrix import Matrix, default_threads
from ftscale.bench.report import fmt, words
from ftscale.bench.report.findings import verdicts
from ftscale.bench.report.model import build_model
from ftscale.schema import HttpCell
from ftscale.vocab import Flag
from tests import synthetic

HTTP = {"server_cpus": [1, 2], "client_cpus": [0]}


def cell(
    build: str, threads: int, samples: Sequence[float], topology: str = "single", **kw: object
) -> HttpCell:
    reps = [synthetic.http_repetition(x) for x in samples]
    mode = "inline" if topology in ("workers", "loops") else "threadpool"
    return synthetic.http_cell(threads, reps, build=build, mode=mode, topology=topology, **kw)  # type: ignore[arg-type]


def model(cells: Sequence[HttpCell], margin: float | None = None) -> object:
    config = {**HTTP, **({"margin": margin} if margin is not None else {})}
    return build_model(synthetic.run(cells, kind="http", config=config))


# --- exploration chooses ---------------------------------------------------------------------------


def test_the_candidate_is_ranked_by_its_lower_bound_not_its_median() -> None:
    steady = cell("3.14t", 1, [100.0, 101.0, 102.0])
    lucky = cell("3.14t", 1, [60.0, 110.0, 150.0], topology="loops")  # higher median, lower bound 60
    chosen = confirm.candidate([steady, lucky], server_cpus=2)
    assert chosen is not None and chosen[0].cell_id == steady.cell_id
    assert chosen[1].lower_bound == 100.0 and chosen[1].median == 101.0
    (v,) = verdicts(model([steady, lucky, cell("3.14", 1, [90.0, 91.0, 92.0])]))  # type: ignore[arg-type]
    (pair,) = v.comparisons
    assert pair.contender is not None and pair.contender.point.cell.cell_id == steady.cell_id


def test_an_oversubscribed_point_is_never_a_candidate_even_the_fastest() -> None:
    fits = cell("3.14t", 2, [100.0, 101.0, 102.0])
    over = cell("3.14t", 4, [300.0, 301.0, 302.0], flags=[str(Flag.OVERSUBSCRIBED)])
    chosen = confirm.candidate([fits, over], server_cpus=2)
    assert chosen is not None and chosen[0].cell_id == fits.cell_id and chosen[1].ineligible == 1
    # by thread count too, when the flag is missing (a cell of an older run)
    unflagged = cell("3.14t", 4, [300.0, 301.0, 302.0])
    assert confirm.candidate([fits, unflagged], server_cpus=2)[0].cell_id == fits.cell_id  # type: ignore[index]
    (v,) = verdicts(model([fits, over, cell("3.14", 1, [90.0, 91.0, 92.0])]))  # type: ignore[arg-type]
    assert v.comparisons[0].contender is not None and v.comparisons[0].contender.point.threads == 2
    # a build whose only points are oversubscribed has no candidate at all
    assert confirm.candidate([over], server_cpus=2) is None


def test_a_flagged_point_stands_in_only_when_its_build_has_no_eligible_point() -> None:
    saturated = cell("3.14", 1, [200.0, 201.0, 202.0], flags=[str(Flag.GENERATOR_SATURATED)])
    clean = cell("3.14", 2, [100.0, 101.0, 102.0], topology="workers")
    assert confirm.candidate([saturated, clean], 2)[0].cell_id == clean.cell_id  # type: ignore[index]
    alone = confirm.candidate([saturated], 2)
    assert (
        alone is not None and alone[0].cell_id == saturated.cell_id and alone[1].rule == confirm.FALLBACK_RULE
    )


def test_finalists_are_each_free_threaded_build_and_its_gil_twin() -> None:
    ft, gil = cell("3.14t", 1, [100.0, 100.0, 100.0]), cell("3.14", 1, [90.0, 90.0, 90.0])
    plans = {
        c.cell_id: CellSpec(c.build, "nbody", "pure-python", 100, c.mode or "", c.topology or "", 1, 4)
        for c in (ft, gil)
    }
    plans = {k: p for k, p in zip((ft.cell_id, gil.cell_id), plans.values(), strict=True)}
    pairs = confirm.twin_pairs(
        {"3.14": "3.14.1", "3.14t": "3.14.1", "3.13t": "3.13.1"},
        {"3.14": False, "3.14t": True, "3.13t": True},
    )
    assert pairs == [("3.14t", "3.14")]  # 3.13t has no twin here
    chosen, why = confirm.finalists([ft, gil], plans, pairs, 2)
    assert why is None and [p.stage for p, _ in chosen] == ["confirm", "confirm"]
    assert {p.build for p, _ in chosen} == {"3.14t", "3.14"}


def test_nothing_is_confirmed_when_the_generator_limited_every_finalist() -> None:
    flags = [str(Flag.GENERATOR_SATURATED)]
    ft, gil = cell("3.14t", 1, [100.0] * 3, flags=flags), cell("3.14", 1, [90.0] * 3, flags=flags)
    plans = {
        c.cell_id: CellSpec(c.build, "nbody", "pure-python", 100, "threadpool", "single", 1, 4)
        for c in (ft, gil)
    }
    chosen, why = confirm.finalists([ft, gil], plans, [("3.14t", "3.14")], 2)
    assert chosen == [] and why is not None and "load generator" in why
    # one side limited is still confirmed
    ok = cell("3.14", 1, [90.0] * 3)
    plans[ok.cell_id] = plans[gil.cell_id]
    assert confirm.finalists([ft, ok], plans, [("3.14t", "3.14")], 2)[0]


# --- confirmation judges ---------------------------------------------------------------------------


def test_the_verdict_rests_on_the_confirmation_rounds_not_the_exploration() -> None:
    # exploration says 3.14t is far ahead; the paired rounds say 0.8x
    explore = [cell("3.14t", 1, [200.0, 201.0, 202.0]), cell("3.14", 1, [100.0, 101.0, 102.0])]
    drift = [1.0, 0.7, 1.2, 0.9, 1.1, 0.8, 1.3, 1.0, 0.95, 1.05]
    rounds = [
        cell("3.14t", 1, [80.0 * d for d in drift], stage="confirm"),
        cell("3.14", 1, [100.0 * d for d in drift], stage="confirm"),
    ]
    (v,) = verdicts(model([*explore, *rounds]))  # type: ignore[arg-type]
    (pair,) = v.comparisons
    assert pair.confirmed and pair.paired is not None and pair.paired.rounds == 10
    assert pair.outcome == "gil" and pair.ratio is not None and pair.ratio.value == pytest.approx(0.8)
    assert pair.explored_contender is not None and pair.explored_contender.point.throughput.value == 201.0
    # without the rounds the same exploration would have read the other way
    (alone,) = verdicts(model(explore))  # type: ignore[arg-type]
    assert not alone.comparisons[0].confirmed and alone.comparisons[0].outcome == "free-threaded"


def test_rounds_are_paired_by_their_number_not_their_order_in_the_file() -> None:
    ft = cell("3.14t", 1, [100.0, 50.0, 100.0, 50.0, 100.0, 50.0], stage="confirm")
    gil = cell("3.14", 1, [100.0, 50.0, 100.0, 50.0, 100.0, 50.0], stage="confirm")
    shuffled = gil.model_copy(update={"repetitions": gil.repetitions[::-1], "samples": gil.samples[::-1]})
    explore = [cell("3.14t", 1, [100.0] * 3), cell("3.14", 1, [100.0] * 3)]
    (v,) = verdicts(model([*explore, ft, shuffled]))  # type: ignore[arg-type]
    assert v.comparisons[0].ratio is not None and v.comparisons[0].ratio.value == pytest.approx(1.0)
    assert v.comparisons[0].ratio.low == pytest.approx(1.0)


def test_confirmation_order_alternates_each_round() -> None:
    assert [order for _, order in rounds_order(2, 4)] == [[0, 1], [1, 0], [0, 1], [1, 0]]
    assert [order[0] for _, order in rounds_order(3, 3)] == [0, 1, 2]


def test_generator_bound_on_both_sides_is_inconclusive_whatever_the_ratio() -> None:
    flags = [str(Flag.GENERATOR_SATURATED)]
    both = [
        cell("3.14t", 1, [150.0, 151.0, 152.0], flags=flags),
        cell("3.14", 1, [100.0, 101.0, 102.0], flags=flags),
    ]
    (v,) = verdicts(model(both))  # type: ignore[arg-type]
    assert v.comparisons[0].outcome == "generator-bound"
    assert "the load generator was the limit" in words.comparison_sentence(v.comparisons[0], memory=True)
    one = [both[0], cell("3.14", 1, [100.0, 101.0, 102.0])]
    (v,) = verdicts(model(one))  # type: ignore[arg-type]
    assert v.comparisons[0].outcome != "generator-bound"


def test_the_margin_is_the_runs_own() -> None:
    cells = [cell("3.14t", 1, [100.0, 104.0, 108.0]), cell("3.14", 1, [100.0, 100.5, 101.0])]
    (narrow,) = verdicts(model(cells, margin=0.05))  # type: ignore[arg-type]
    (wide,) = verdicts(model(cells, margin=0.2))  # type: ignore[arg-type]
    assert narrow.comparisons[0].outcome == "inconclusive" and wide.comparisons[0].outcome == "equivalent"


def test_an_inconclusive_confirmation_says_how_many_rounds_would_decide() -> None:
    rng = random.Random(5)
    ft = [100.0 * 0.93 * math.exp(rng.gauss(0, 0.15)) for _ in range(10)]
    gil = [100.0 * math.exp(rng.gauss(0, 0.15)) for _ in range(10)]
    rounds = [cell("3.14t", 1, ft, stage="confirm"), cell("3.14", 1, gil, stage="confirm")]
    explore = [cell("3.14t", 1, [93.0] * 3), cell("3.14", 1, [100.0] * 3)]
    (v,) = verdicts(model([*explore, *rounds]))  # type: ignore[arg-type]
    pair = v.comparisons[0]
    assert pair.outcome == "inconclusive" and pair.rounds_needed is not None and pair.rounds_needed > 10
    assert f"--rounds {pair.rounds_needed}" in words.comparison_sentence(pair, memory=False)


# --- what the bench offers -------------------------------------------------------------------------


def test_every_thread_count_of_a_workload_gets_the_same_connections() -> None:
    matrix = Matrix(
        builds=["3.14", "3.14t"],
        workloads=["nbody", "rag_gateway"],
        free_threaded_designs=[("threadpool", "single")],
        gil_designs=[("inline", "workers")],
        threads=[1, 2, 4, 8],
        sizes={},
        connections=None,
    )
    for group in matrix.groups({"3.14": False, "3.14t": True}):
        expected = {"nbody": 16, "rag_gateway": 32}[group.workload]  # for 8 threads: 2N, 4N while waiting
        assert {p.connections for p in group.plans} == {expected}
    # the bench admits all of them on every server (no 503 of its own making)
    plan = matrix.groups({"3.14": False, "3.14t": True})[0].plans[0]
    assert plan.server_args == ("--queue-limit", str(plan.connections))


def test_default_threads_never_exceed_the_server_cpus() -> None:
    assert default_threads(1) == [1]
    assert default_threads(2) == [1, 2]
    assert default_threads(6) == [1, 2, 4, 6]


@pytest.mark.parametrize(
    ("counts", "flagged"),
    [
        ({"a": 10, "b": 10, "c": 10}, False),
        ({"a": 2, "b": 14, "c": 14}, True),  # one took almost none
        ({"a": 20, "b": 5, "c": 5}, True),  # one took far more than its share (20/30 > 1.5/3)
        ({"a": 14, "b": 8, "c": 8}, False),
    ],
)
def test_a_unit_with_far_less_or_far_more_than_its_share_is_unbalanced(
    counts: dict[str, int], flagged: bool
) -> None:
    assert unbalanced(counts, 3) is flagged


# --- words -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("low", "high"), [(1.004, 1.2), (1.0001, 1.3), (0.7, 0.996), (0.8, 0.99999)])
def test_a_bound_that_excludes_one_never_prints_as_one(low: float, high: float) -> None:
    text = fmt.ratio(intervals.Estimate(math.sqrt(low * high), low, high, 0.95))
    bounds = text.split("[")[1].split("]")[0].split(", ")
    assert "1.00" not in bounds and all(b.strip("0") != "1." for b in bounds)
    shown_low, shown_high = float(bounds[0]), float(bounds[1])
    assert (shown_low > 1) == (low > 1) and (shown_high < 1) == (high < 1)
    assert abs(shown_low - low) < 0.01 and abs(shown_high - high) < 0.01


# --- the two stages together, simulated ------------------------------------------------------------


def test_equal_designs_with_a_noisy_one_are_called_a_win_in_at_most_5_percent_of_runs() -> None:
    """Both builds equally fast; 3.14t has a steady and a noisy design. The noisy one often has the
    highest exploration median (choosing by it, and judging on the same samples, calls a winner far
    more often); the two stages keep false wins at the interval's level."""
    rng = random.Random(41)

    def draws(n: int, cv: float, drift: Sequence[float] = ()) -> list[float]:
        return [100.0 * math.exp((drift[i] if drift else 0.0) + rng.gauss(0, cv)) for i in range(n)]

    trials, wins, naive_wins = 2000, 0, 0
    for _ in range(trials):
        steady = cell("3.14t", 1, draws(3, 0.05))
        noisy = cell("3.14t", 1, draws(3, 0.30), topology="loops")
        gil = cell("3.14", 1, draws(3, 0.05), topology="workers")
        chosen = confirm.candidate([steady, noisy], 2)
        assert chosen is not None
        cv = 0.30 if chosen[0].cell_id == noisy.cell_id else 0.05
        drift = [rng.gauss(0, 0.1) for _ in range(10)]
        paired = intervals.paired_ratio(draws(10, cv, drift), draws(10, 0.05, drift))
        wins += intervals.decide(paired.ratio) in ("higher", "lower")
        best = max((steady, noisy), key=lambda c: intervals.median(c.samples))
        naive_wins += (
            intervals.decide(intervals.ratio_of_medians(best.samples, gil.samples)) != "inconclusive"
        )
    # the paired interval's stated coverage (95.1 % at 10 rounds), within 3 binomial sds of sampling
    level = 1 - intervals.walsh_coverage(10, intervals.walsh_rank(10) or 1)
    assert wins / trials <= level + 3 * math.sqrt(level * (1 - level) / trials)
    assert naive_wins > 2 * wins  # what the single stage did


def test_a_repetition_disturbed_again_after_its_redo_flags_the_cell_but_does_not_disqualify() -> None:
    from ftscale.bench.http.judge import flags_for
    from ftscale.schema import Interference
    from ftscale.vocab import flag_info

    busy = Interference(
        window_s=1.0, cpus=[0, 1], busy_cpu_pct=200.0, accounted_cpu_pct=120.0, foreign_cpu_pct=80.0,
        steal_pct=0.0, disturbed=True,
    )  # fmt: skip
    quiet = busy.model_copy(update={"foreign_cpu_pct": 2.0, "disturbed": False})
    p = CellSpec("3.14t", "nbody", "pure-python", 100, "threadpool", "single", 1, 4)
    reps = [synthetic.http_repetition(100.0, interference=quiet) for _ in range(3)]
    assert str(Flag.DISTURBED) not in flags_for(p, reps, None)
    reps[1] = synthetic.http_repetition(100.0, interference=busy)
    assert str(Flag.DISTURBED) in flags_for(p, reps, None)
    info = flag_info(str(Flag.DISTURBED))
    assert info is not None and not info.disqualifies


# --- each rule on both sides, and at its edges ------------------------------------------------------
# A rule applied to the wrong side, or given one side's state for the other's, leaves the tests above
# green when they look at one side only; these are parametrized over both.

BOTH_SIDES = pytest.mark.parametrize("flagged", ["3.14t", "3.14"], ids=["free-threaded-side", "gil-side"])


def twin(build: str) -> str:
    return "3.14" if build == "3.14t" else "3.14t"


def near(x: float) -> list[float]:
    return [x, x + 1.0, x + 2.0]


@BOTH_SIDES
def test_a_side_whose_every_point_is_flagged_qualifies_the_verdict_by_its_own_flag(flagged: str) -> None:
    """Every point of one side flagged, the other side clean -> the comparison stands in that side's
    best flagged point and is qualified by *its* flag, not by the other side's."""
    clean = twin(flagged)
    cells = [
        cell(flagged, 1, near(100.0), flags=[str(Flag.ERRORS)]),
        cell(flagged, 2, near(110.0), flags=[str(Flag.ERRORS)]),
        cell(clean, 1, near(90.0)),
        cell(clean, 2, near(200.0), flags=[str(Flag.NAGLE)]),  # faster, flagged: shown, never chosen
    ]
    (v,) = verdicts(model(cells))  # type: ignore[arg-type]
    (pair,) = v.comparisons
    ft_side = flagged == "3.14t"
    stand_in, chosen = (pair.contender, pair.reference) if ft_side else (pair.reference, pair.contender)
    assert stand_in is not None and stand_in.build == flagged and stand_in.point.threads == 2
    assert chosen is not None and chosen.build == clean and chosen.point.threads == 1
    assert pair.qualified == (str(Flag.ERRORS),)
    faster = pair.reference_flagged if ft_side else pair.contender_flagged
    assert faster is not None and faster.point.threads == 2 and faster.build == clean
    assert "Qualified" in words.comparison_sentence(pair, memory=False)
    # and with both sides clean, nothing qualifies it
    (v,) = verdicts(model([cell(flagged, 1, near(100.0)), cell(clean, 1, near(90.0))]))  # type: ignore[arg-type]
    assert v.comparisons[0].qualified == ()


@BOTH_SIDES
def test_a_flagged_confirmation_round_qualifies_the_verdict_on_either_side(flagged: str) -> None:
    drift = [1.0, 0.7, 1.2, 0.9, 1.1, 0.8, 1.3, 1.0, 0.95, 1.05]
    rounds = {
        b: cell(
            b, 1, [x * d for d in drift], stage="confirm", flags=[str(Flag.ERRORS)] if b == flagged else []
        )
        for b, x in (("3.14t", 120.0), ("3.14", 100.0))
    }
    explore = [cell("3.14t", 1, near(120.0)), cell("3.14", 1, near(100.0))]
    (v,) = verdicts(model([*explore, *rounds.values()]))  # type: ignore[arg-type]
    (pair,) = v.comparisons
    assert pair.confirmed and pair.qualified == (str(Flag.ERRORS),)


@BOTH_SIDES
def test_one_side_limited_by_the_generator_is_judged_not_generator_bound(flagged: str) -> None:
    saturated = [str(Flag.GENERATOR_SATURATED)]
    cells = [cell(flagged, 1, near(150.0), flags=saturated), cell(twin(flagged), 1, near(100.0))]
    (v,) = verdicts(model(cells))  # type: ignore[arg-type]
    assert v.comparisons[0].outcome in ("free-threaded", "gil")
    assert v.comparisons[0].qualified == (str(Flag.GENERATOR_SATURATED),)
    # the bench confirms it (it stops only when every finalist was limited)
    plans = {
        c.cell_id: CellSpec(c.build, "nbody", "pure-python", 100, "threadpool", "single", 1, 4) for c in cells
    }
    chosen, why = confirm.finalists(cells, plans, [("3.14t", "3.14")], 2)
    assert why is None and len(chosen) == 2


@pytest.mark.parametrize("flag", [Flag.SHARED_CPUS, Flag.HIGH_CV])
def test_a_flag_that_does_not_disqualify_leaves_the_point_eligible_and_unqualified(flag: Flag) -> None:
    noted = cell("3.14t", 2, near(150.0), flags=[str(flag)])
    plain = cell("3.14t", 1, near(100.0))
    chosen = confirm.candidate([noted, plain], server_cpus=2)
    assert chosen is not None and chosen[0].cell_id == noted.cell_id and chosen[1].rule == confirm.RULE
    (v,) = verdicts(model([noted, plain, cell("3.14", 1, near(90.0))]))  # type: ignore[arg-type]
    (pair,) = v.comparisons
    assert pair.contender is not None and pair.contender.point.threads == 2
    assert pair.qualified == () and v.best_flagged is None


def test_without_an_eligible_point_the_stand_in_is_the_flagged_point_never_an_oversubscribed_one() -> None:
    """An oversubscribed point does not disqualify by its flag, so standing it in would let it win
    unqualified; the flagged point that fits stands in, qualified by its flag."""
    flagged = cell("3.14t", 2, near(100.0), flags=[str(Flag.ERRORS)])
    over = cell("3.14t", 4, near(300.0), flags=[str(Flag.OVERSUBSCRIBED)])
    (v,) = verdicts(model([flagged, over, cell("3.14", 1, near(90.0))]))  # type: ignore[arg-type]
    (pair,) = v.comparisons
    assert pair.contender is not None and pair.contender.point.threads == 2
    assert pair.qualified == (str(Flag.ERRORS),)
    chosen = confirm.candidate([flagged, over], server_cpus=2)
    assert chosen is not None and chosen[0].cell_id == flagged.cell_id
    assert chosen[1].rule == confirm.FALLBACK_RULE and chosen[1].ineligible == 2


def _contender_threads(cells: Sequence[HttpCell]) -> int:
    (v,) = verdicts(model([*cells, cell("3.14", 1, near(50.0))]))  # type: ignore[arg-type]
    contender = v.comparisons[0].contender
    assert contender is not None
    return contender.point.threads


def _candidate_threads(cells: Sequence[HttpCell]) -> int:
    chosen = confirm.candidate(cells, server_cpus=2)
    assert chosen is not None
    return chosen[0].threads


CHOOSERS = pytest.mark.parametrize(
    "threads_chosen", [_candidate_threads, _contender_threads], ids=["bench", "report"]
)


@CHOOSERS
def test_candidates_tied_on_the_lower_bound_go_to_the_higher_median(
    threads_chosen: Callable[..., int],
) -> None:
    steady = cell("3.14t", 1, [100.0, 101.0, 102.0])
    higher = cell("3.14t", 2, [100.0, 105.0, 110.0])  # the same lower bound, a higher median
    assert threads_chosen([steady, higher]) == 2


@CHOOSERS
def test_candidates_tied_on_bound_and_median_go_to_fewer_threads(threads_chosen: Callable[..., int]) -> None:
    assert threads_chosen([cell("3.14t", 2, near(100.0)), cell("3.14t", 1, near(100.0))]) == 1


@CHOOSERS
def test_a_point_at_exactly_the_server_cpus_is_eligible(threads_chosen: Callable[..., int]) -> None:
    two = cell("3.14t", 2, near(200.0))
    assert threads_chosen([cell("3.14t", 1, near(100.0)), two]) == 2


def test_only_closed_loop_exploration_points_that_were_measured_are_candidates() -> None:
    base = cell("3.14t", 1, near(100.0))
    faster = cell("3.14t", 2, near(300.0))
    variants = {
        "open loop": faster.model_copy(update={"load": "open", "cell_id": "open"}),
        "confirmation": faster.model_copy(update={"stage": "confirm", "cell_id": "confirm"}),
        "failed": faster.model_copy(update={"status": "failed", "cell_id": "failed"}),
    }
    for name, other in variants.items():
        chosen = confirm.candidate([base, other], server_cpus=2)
        assert chosen is not None and chosen[0].cell_id == base.cell_id, name
    # the report's verdict reads the closed loop only, too
    assert _contender_threads([base, variants["open loop"]]) == 1


@pytest.mark.parametrize(("rounds", "confirmed"), [(1, False), (2, True)])
def test_a_pair_is_confirmed_from_two_shared_rounds(rounds: int, confirmed: bool) -> None:
    explore = [cell("3.14t", 1, near(120.0)), cell("3.14", 1, near(100.0))]
    confirms = [
        cell("3.14t", 1, [120.0, 118.0][:rounds], stage="confirm"),
        cell("3.14", 1, [100.0, 99.0][:rounds], stage="confirm"),
    ]
    (v,) = verdicts(model([*explore, *confirms]))  # type: ignore[arg-type]
    (pair,) = v.comparisons
    assert pair.confirmed is confirmed and pair.stage == ("confirmed" if confirmed else "explored")


def test_each_builds_row_shows_the_confirmed_ratio_and_the_reference_exactly_one() -> None:
    drift = [1.0, 0.7, 1.2, 0.9, 1.1, 0.8, 1.3, 1.0, 0.95, 1.05]
    explore = [cell("3.14t", 1, near(200.0)), cell("3.14", 1, near(100.0))]
    ft_rounds = cell("3.14t", 1, [80.0 * d for d in drift], stage="confirm")
    gil_rounds = cell("3.14", 1, [100.0 * d for d in drift], stage="confirm")
    (v,) = verdicts(model([*explore, ft_rounds, gil_rounds]))  # type: ignore[arg-type]
    (pair,) = v.comparisons
    assert pair.outcome == "gil" and pair.rounds_needed is None  # decided: no rounds to suggest
    rows = {b.build: b for b in v.builds}
    assert rows["3.14t"].choice.point.cell.cell_id == ft_rounds.cell_id
    assert rows["3.14t"].relative == pair.ratio
    assert rows["3.14"].choice.point.cell.cell_id == gil_rounds.cell_id
    assert (rows["3.14"].relative.value, rows["3.14"].relative.low) == (1.0, 1.0)
    # the exploration rows keep the exploration candidates
    explored = {b.build: b.choice.point.cell.stage for b in v.explored_builds}
    assert explored == {"3.14": "explore", "3.14t": "explore"}


@pytest.mark.parametrize("margin", [0.0, 1.0, -0.1])
def test_a_margin_outside_zero_to_one_falls_back_to_the_default(margin: float) -> None:
    cells = [cell("3.14t", 1, [100.0, 104.0, 108.0]), cell("3.14", 1, [100.0, 100.5, 101.0])]
    (v,) = verdicts(model(cells, margin=margin))  # type: ignore[arg-type]
    assert v.comparisons[0].margin == intervals.DEFAULT_MARGIN


def test_memory_is_the_contenders_over_the_references_by_distinct_pages_first() -> None:
    def measured(build: str, **memory: int) -> HttpCell:
        reps = [synthetic.http_repetition(x, **memory) for x in near(100.0)]
        return synthetic.http_cell(1, reps, build=build)

    pages = [
        measured("3.14t", unique_bytes=200, pss_bytes=10),
        measured("3.14", unique_bytes=100, pss_bytes=40),
    ]
    (v,) = verdicts(model(pages))  # type: ignore[arg-type]
    assert v.comparisons[0].memory_ratio == pytest.approx(2.0)  # pages, not PSS (0.25)
    pss = [measured("3.14t", pss_bytes=30), measured("3.14", pss_bytes=60)]
    (v,) = verdicts(model(pss))  # type: ignore[arg-type]
    assert v.comparisons[0].memory_ratio == pytest.approx(0.5)


def test_a_micro_cells_independent_samples_are_one_per_pyperf_process() -> None:
    """pyperf's values from one worker process are not independent: each process counts once, by
    the median of its values, so three processes give a 3-sample interval, not a 9-sample one."""
    from ftscale.bench.report.model import independent_samples
    from ftscale.schema import MicroRepetition

    values = [100.0, 101.0, 102.0, 200.0, 201.0, 202.0, 300.0, 301.0, 302.0]
    reps = [
        MicroRepetition(process=i // 3, loops=1, seconds_per_round=1.0, calls_per_round=1) for i in range(9)
    ]
    micro = synthetic.micro_cell(1, values).model_copy(update={"repetitions": reps})
    assert independent_samples(micro) == [101.0, 201.0, 301.0]
    (series,) = build_model(synthetic.run([micro])).series
    assert series.points[0].n_samples == 3


def test_a_build_with_only_oversubscribed_points_has_no_candidate_in_the_report_either() -> None:
    over = [cell("3.14t", 4, [300.0, 301.0, 302.0], flags=[str(Flag.OVERSUBSCRIBED)])]
    (v,) = verdicts(model([*over, cell("3.14", 1, [90.0, 91.0, 92.0])]))  # type: ignore[arg-type]
    (pair,) = v.comparisons
    assert pair.contender is None and pair.contender_flagged is None and pair.ratio is None
    assert "cannot be compared" in words.comparison_sentence(pair, memory=False)
