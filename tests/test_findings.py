"""Verdicts and the cost of free threading, from small in-memory runs whose answers are worked out by hand."""

from __future__ import annotations

import pytest

pytest.importorskip("scipy")

from ftscale.bench.report.findings import verdicts
from ftscale.bench.report.model import build_model
from ftscale.bench.report.overhead import ft_overheads, gil_twin
from ftscale.schema import MicroCell
from tests import synthetic

SPREAD = (0.99, 1.0, 1.01)


def reps(x: float) -> list[float]:
    """Three repetitions around ``x``: median ``x``; a ratio r of two has [r 0.99/1.01, r 1.01/0.99]."""
    return [x * f for f in SPREAD]


def cell(build: str, threads: int, x: float, **kw: object) -> MicroCell:
    return synthetic.micro_cell(threads, reps(x), build=build, **kw)  # type: ignore[arg-type]


def test_the_free_threaded_best_is_compared_with_the_gil_twins_best() -> None:
    run = synthetic.run(
        [
            cell("3.14", 1, 100.0),
            cell("3.14", 2, 100.0),  # a tie with 1 thread: the fewer threads win it
            cell("3.14t", 1, 80.0),
            cell("3.14t", 2, 150.0),
            cell("3.14t", 4, 120.0),
        ]
    )
    (verdict,) = verdicts(build_model(run))
    assert (verdict.workload, verdict.workload_class, verdict.size, verdict.scaling) == (
        "nbody",
        "pure-python",
        100,
        "strong",
    )
    assert (verdict.best.series.key.build, verdict.best.point.threads) == ("3.14t", 2)
    (pair,) = verdict.comparisons
    assert (pair.free_threaded_build, pair.gil_build, pair.outcome) == ("3.14t", "3.14", "free-threaded")
    assert pair.contender is not None and pair.contender.point.threads == 2
    assert pair.reference is not None and pair.reference.point.threads == 1
    assert verdict.reference.point is pair.reference.point
    assert pair.ratio is not None
    # 3 against 3: the widest order-statistic interval, which covers 18 of the 20 orderings
    assert (pair.ratio.value, pair.ratio.low, pair.ratio.high, pair.ratio.coverage) == pytest.approx(
        (1.5, 1.5 * 0.99 / 1.01, 1.5 * 1.01 / 0.99, 0.9)
    )


def test_a_gil_build_can_win_against_its_free_threaded_twin() -> None:
    run = synthetic.run([cell("3.14", 1, 120.0), cell("3.14t", 1, 90.0), cell("3.14t", 2, 110.0)])
    (verdict,) = verdicts(build_model(run))
    (pair,) = verdict.comparisons
    assert verdict.best.series.key.build == "3.14" and pair.outcome == "gil"
    assert pair.contender is not None and pair.contender.point.threads == 2
    assert pair.ratio is not None and pair.ratio.value == pytest.approx(110 / 120)


def test_an_interval_inside_the_margin_is_equivalent_and_one_beyond_it_inconclusive() -> None:
    run = synthetic.run([cell("3.14", 1, 100.0), cell("3.14t", 1, 100.5)])
    (pair,) = verdicts(build_model(run))[0].comparisons
    assert pair.ratio is not None and pair.ratio.contains(1.0) and pair.outcome == "equivalent"
    wide = [*synthetic.run([cell("3.14", 1, 100.0)]).cells, synthetic.micro_cell(1, [80.0, 100.0, 125.0])]
    (pair,) = verdicts(build_model(synthetic.run(wide)))[0].comparisons
    assert pair.ratio is not None and pair.ratio.contains(1.0) and pair.outcome == "inconclusive"


def test_a_flagged_point_cannot_win_unqualified() -> None:
    flagged = cell("3.14t", 4, 300.0, flags=["generator-saturated"])
    run = synthetic.run([cell("3.14", 1, 100.0), cell("3.14t", 2, 150.0), flagged])
    (verdict,) = verdicts(build_model(run))
    (pair,) = verdict.comparisons
    assert pair.contender is not None and pair.contender.point.threads == 2 and not pair.qualified
    assert verdict.best_flagged is not None and verdict.best_flagged.point.threads == 4
    # when every point of a side is flagged, the comparison is made, qualified by those flags
    only = synthetic.run([cell("3.14", 1, 100.0), cell("3.14t", 1, 150.0, flags=["generator-saturated"])])
    (pair,) = verdicts(build_model(only))[0].comparisons
    assert pair.contender is not None and pair.qualified == ("generator-saturated",)


def test_a_build_whose_every_point_is_flagged_still_has_its_best_row_with_the_flags() -> None:
    run = synthetic.run(
        [
            cell("3.14", 1, 100.0),
            cell("3.14t", 1, 90.0, flags=["generator-saturated"]),
            cell("3.14t", 2, 150.0, flags=["generator-saturated"]),
        ]
    )
    (verdict,) = verdicts(build_model(run))
    rows = {b.build: b for b in verdict.builds}
    assert set(rows) == {"3.14", "3.14t"}
    assert rows["3.14t"].choice.point.threads == 2
    assert "generator-saturated" in rows["3.14t"].choice.point.flags
    assert rows["3.14t"].relative.value == pytest.approx(1.5)
    # with one clean point, that point is the build's best, however fast the flagged one
    mixed = synthetic.run(
        [
            cell("3.14", 1, 100.0),
            cell("3.14t", 1, 90.0),
            cell("3.14t", 2, 150.0, flags=["generator-saturated"]),
        ]
    )
    (verdict,) = verdicts(build_model(mixed))
    assert {b.build: b.choice.point.threads for b in verdict.builds} == {"3.14": 1, "3.14t": 1}


def test_without_a_gil_twin_there_is_no_comparison() -> None:
    only_ft = synthetic.run([cell("3.14t", 1, 80.0), cell("3.13t", 1, 90.0)], builds=("3.14t", "3.13t"))
    (verdict,) = verdicts(build_model(only_ft))
    assert verdict.best.series.key.build == "3.13t" and verdict.comparisons == ()
    assert verdict.reference.point is verdict.best.point  # the run's best is then the reference
    # a build the run has no record of is of unknown kind: never compared
    unknown = synthetic.run([cell("3.14t", 1, 80.0), cell("custom", 1, 90.0)])
    (verdict,) = verdicts(build_model(unknown))
    assert verdict.best.series.key.build == "custom" and verdict.comparisons == ()


def test_one_verdict_per_workload_size_and_scaling_in_report_order() -> None:
    cells = [
        cell("3.14t", 1, 10.0, workload="shared_counter", workload_class="contention"),
        cell("3.14t", 1, 10.0, scaling="weak"),
        cell("3.14t", 1, 10.0, size=200),
        cell("3.14t", 1, 10.0),
        cell("3.14t", 1, 10.0, workload="json_roundtrip", workload_class="c-holds-gil"),
    ]
    found = [(v.workload, v.size, v.scaling) for v in verdicts(build_model(synthetic.run(cells)))]
    # weak scaling answers another question (work per thread): the verdict is on strong scaling
    assert found == [
        ("nbody", 100, "strong"),
        ("nbody", 200, "strong"),
        ("json_roundtrip", 100, "strong"),
        ("shared_counter", 100, "strong"),
    ]


def test_the_overhead_is_against_the_gil_twin_at_one_thread() -> None:
    run = synthetic.run(
        [
            cell("3.14", 1, 100.0),
            cell("3.14", 2, 190.0),
            cell("3.14t", 1, 80.0),
            cell("3.14t", 2, 160.0),
            cell("3.13t", 1, 50.0),  # no 3.13 in the run: no twin
        ],
        builds=("3.14", "3.14t", "3.13t"),
    )
    (overhead,) = ft_overheads(build_model(run))
    assert (overhead.key.build, overhead.gil_build) == ("3.14t", "3.14")
    assert (overhead.free_threaded.threads, overhead.gil.threads) == (1, 1)
    assert (overhead.ratio.value, overhead.ratio.low, overhead.ratio.high) == pytest.approx(
        (0.8, 0.8 * 0.99 / 1.01, 0.8 * 1.01 / 0.99)
    )
    # 25% more time per call on the free-threaded build; the interval maps through 1/r - 1
    assert (overhead.time_overhead.value, overhead.time_overhead.low, overhead.time_overhead.high) == (
        pytest.approx((0.25, 1 / (0.8 * 1.01 / 0.99) - 1, 1 / (0.8 * 0.99 / 1.01) - 1))
    )


def test_no_overhead_without_a_one_thread_point_on_both_sides() -> None:
    run = synthetic.run([cell("3.14", 2, 100.0), cell("3.14t", 1, 80.0), cell("3.14t", 2, 150.0)])
    assert ft_overheads(build_model(run)) == ()
    run = synthetic.run([cell("3.14", 1, 100.0), cell("3.14t", 2, 150.0)])
    assert ft_overheads(build_model(run)) == ()


def test_the_gil_twin_is_the_gil_build_of_the_same_minor_version() -> None:
    meta = synthetic.run([], builds=("3.13", "3.14", "3.14t", "3.13t")).meta
    assert gil_twin(meta, "3.14t") == "3.14" and gil_twin(meta, "3.13t") == "3.13"
    assert gil_twin(meta, "3.14") is None  # a GIL build has no twin of its own
    assert gil_twin(meta, "missing") is None
    builds = {**meta.builds, "3.14-debug": synthetic.build("3.14").model_copy(update={"build": "3.14-debug"})}
    assert gil_twin(meta.model_copy(update={"builds": builds}), "3.14t") == "3.14"  # first by name
    odd = synthetic.build("3.14t").model_copy(update={"version": "nightly"})
    assert gil_twin(meta.model_copy(update={"builds": {**meta.builds, "3.14t": odd}}), "3.14t") is None


def test_equal_peaks_go_to_fewer_threads_and_verdicts_follow_the_workload_name() -> None:
    run = synthetic.run(
        [
            cell("3.14t", 2, 100.0, workload="a", size=200),
            cell("3.13t", 1, 100.0, workload="a", size=200),
            cell("3.14t", 1, 50.0, workload="b", size=100),
        ],
        builds=("3.14t", "3.13t"),
    )
    first, second = verdicts(build_model(run))
    assert (first.workload, second.workload) == ("a", "b")
    assert (first.best.series.key.build, first.best.point.threads) == ("3.13t", 1)


def test_a_twin_is_of_the_same_major_version_too() -> None:
    meta = synthetic.run([], builds=("3.14t",)).meta
    other_major = synthetic.build("3.14").model_copy(update={"build": "4.14", "version": "4.14.0"})
    assert gil_twin(meta.model_copy(update={"builds": {**meta.builds, "4.14": other_major}}), "3.14t") is None


def test_overheads_skip_series_without_a_counterpart_and_go_on() -> None:
    run = synthetic.run(
        [
            cell("3.13", 1, 100.0, workload="json_roundtrip"),  # the twin ran another workload only
            cell("3.13t", 1, 80.0),
            cell("3.14", 1, 100.0),
            cell("3.14t", 2, 150.0),  # no 1-thread point
            cell("3.14", 1, 100.0, workload="zlib"),
            cell("3.14t", 1, 90.0, workload="zlib"),
        ],
        builds=("3.13", "3.13t", "3.14", "3.14t"),
    )
    assert [(o.key.workload, o.key.build, o.ratio.value) for o in ft_overheads(build_model(run))] == [
        ("zlib", "3.14t", pytest.approx(0.9))
    ]
