"""The HTTP cell's own rules, each stated as a reader would and checked on the side it belongs to:
flags from *any* repetition, the server's state *after* the load, per-unit counts that keep a unit
which served nothing before the load, the exact edges of imbalance, a disturbed repetition measured
once more (and only once), and confirmation rounds that carry their round.

Driven through the bench's state machine with the fakes of ``tests/test_sweep.py`` where the rule
lives in the machine (what is read when), through the functions where it lives in one function.
"""

from __future__ import annotations

import itertools
import types
from collections.abc import Iterator
from typing import Any

import pytest

from ftscale.bench.http import cell as sweep
from ftscale.bench.http.cells import Settings
from ftscale.bench.http.judge import flags_for, unbalanced
from ftscale.bench.http.procs import Usage
from ftscale.bench.http.session import CellProgress, unit_deltas
from ftscale.schema import HttpRepetition, Info, Interference, Selection
from ftscale.vocab import Flag
from tests import synthetic
from tests.test_sweep import (
    CEILINGS,
    FAST,
    FakeGenerator,
    FakeLauncher,
    FakeServer,
    _measure,
    plan,
    real_info,
)

WORKERS = plan("3.14", "inline", "workers")  # 2 threads: 2 worker processes
assert WORKERS.units == 2


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock that advances 1 s per reading (as in tests/test_sweep.py)."""
    monkeypatch.setattr(
        "ftscale.bench.http.session.time", types.SimpleNamespace(monotonic=itertools.count(0.0, 1.0).__next__)
    )


# --- flags: any repetition, never only the first or only all -----------------------------------------

POSITION = pytest.mark.parametrize("odd", [0, 1, 2], ids=["first", "middle", "last"])


def reps_with(odd: int, **fields: Any) -> list[HttpRepetition]:
    """Three repetitions, balanced, clean and with a quiet generator, the ``odd``-th changed by ``fields``."""
    even = {"units": {"pid 1": 50, "pid 2": 50}, "generator_busy_max_pct": 10.0}
    return [synthetic.http_repetition(100.0, **({**even, **fields} if i == odd else even)) for i in range(3)]


@POSITION
def test_one_unbalanced_repetition_flags_the_cell(odd: int) -> None:
    reps = reps_with(odd, units={"pid 1": 95, "pid 2": 5})
    assert str(Flag.UNBALANCED) in flags_for(WORKERS, reps, None)
    assert str(Flag.UNBALANCED) not in flags_for(WORKERS, reps_with(odd), None)


@POSITION
def test_one_repetition_with_errors_flags_the_cell(odd: int) -> None:
    assert flags_for(WORKERS, reps_with(odd, errors={"503": 2}), None) == [str(Flag.ERRORS)]


@POSITION
def test_the_busiest_repetitions_generator_decides_saturation(odd: int) -> None:
    reps = reps_with(odd, generator_busy_max_pct=90.0)  # the others at 10 %: the median would pass
    assert flags_for(WORKERS, reps, None) == [str(Flag.GENERATOR_SATURATED)]


@POSITION
def test_the_lowest_ceiling_of_the_repetitions_decides_saturation(odd: int) -> None:
    # the median, 100 req/s, is 80 % of the lowest ceiling only: one repetition's ceiling counts
    reps = reps_with(odd, ceiling_rps=125.0)
    reps = [r if i == odd else r.model_copy(update={"ceiling_rps": 1000.0}) for i, r in enumerate(reps)]
    assert flags_for(WORKERS, reps, None) == [str(Flag.GENERATOR_SATURATED)]


# --- imbalance: its exact edges ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("counts", "flagged"),
    [
        ((25, 75), False),  # exactly half of the fair share, exactly 1.5 times it: still balanced
        ((24, 76), True),
        ((10, 30, 20, 20), False),  # 4 units: 1/8 and 3/8 of the requests are the edges
        ((9, 29, 21, 21), True),  # one unit below half its share (the others within)
        ((11, 31, 19, 19), True),  # one unit above 1.5 times its share (the others within)
    ],
)
def test_imbalance_starts_just_past_half_and_one_and_a_half_shares(
    counts: tuple[int, ...], flagged: bool
) -> None:
    deltas = {f"unit {i}": n for i, n in enumerate(counts)}
    assert unbalanced(deltas, len(counts)) is flagged


# --- per-unit counts between the two /info answers ------------------------------------------------------


def info(units: dict[str, int] | None) -> Info:
    return real_info(py_gil_disabled=True, gil_enabled=False, units=units)


def test_a_unit_that_served_nothing_before_the_load_keeps_its_count() -> None:
    before = info({"worker 0": 40})  # worker 1 has no counter yet: it served nothing so far
    after = info({"worker 0": 90, "worker 1": 50})
    assert unit_deltas(before, after, 2) == {"worker 0": 50, "worker 1": 50}
    assert not unbalanced(unit_deltas(before, after, 2), 2)


def test_units_that_never_answered_are_counted_idle_and_unknown_counts_are_none() -> None:
    assert unit_deltas(info({}), info({"worker 0": 10}), 3) == {
        "worker 0": 10,
        "idle 0": 0,
        "idle 1": 0,
    }
    assert unit_deltas(None, info({"worker 0": 10}), 2) is None
    assert unit_deltas(info({"worker 0": 1}), None, 2) is None
    assert unit_deltas(info(None), info({"worker 0": 10}), 2) is None
    assert unit_deltas(info({"worker 0": 1}), info(None), 2) is None


class LateUnit(FakeServer):
    """Two workers; the warm-up reaches only the first, the measured load both alike."""

    def __init__(self) -> None:
        super().__init__(split=(1.0, 0.0))

    def serve(self, requests: int) -> None:
        super().serve(requests)
        self.split = (0.5, 0.5)


def test_through_the_bench_a_unit_first_reached_by_the_load_is_counted_not_idle() -> None:
    (cell,) = _measure(FakeLauncher(lambda p: LateUnit()), FakeGenerator(rps=100.0), WORKERS)
    assert cell.status == "ok"
    assert [r.units for r in cell.repetitions] == [{"pid 0": 50, "pid 1": 50}] * 3
    assert str(Flag.UNBALANCED) not in cell.flags


# --- the server's state after the load ---------------------------------------------------------------


class LazyGil(FakeServer):
    """A free-threaded server whose GIL comes back during the measured load (a lazy import in a
    handler): its /info says the GIL is off until the load has run."""

    def info(self) -> Info:
        return real_info(py_gil_disabled=True, gil_enabled=self.usage_calls >= 2)


def test_the_gil_is_judged_from_info_after_the_load() -> None:
    (cell,) = _measure(FakeLauncher(lambda p: LazyGil()), FakeGenerator())
    assert cell.info_before is not None and cell.info_before.gil_enabled is False
    assert cell.info_after is not None and cell.info_after.gil_enabled is True
    assert str(Flag.GIL_ENABLED) in cell.flags


class Nagle(FakeServer):
    def __init__(self, before: bool | None, after: bool | None) -> None:
        super().__init__()
        self.states = (before, after)

    def info(self) -> Info:
        nodelay = self.states[self.usage_calls >= 2]
        return real_info(py_gil_disabled=True, gil_enabled=False).model_copy(update={"tcp_nodelay": nodelay})


@pytest.mark.parametrize(
    ("before", "after", "nagle"),
    [
        (None, False, True),  # no connection seen before the load, Nagle on for the load's
        (True, False, True),  # after the load says most (more connections seen)
        (None, True, False),
        (False, None, True),  # after the load unknown: the reading before it still counts
    ],
)
def test_nagle_is_judged_from_the_reading_after_the_load_where_it_says_something(
    before: bool | None, after: bool | None, nagle: bool
) -> None:
    (cell,) = _measure(FakeLauncher(lambda p: Nagle(before, after)), FakeGenerator())
    assert (str(Flag.NAGLE) in cell.flags) is nagle
    assert cell.tcp_nodelay is (after if after is not None else before)


class Growing(FakeServer):
    """Memory that grows with every reading: the one after the load is the larger."""

    def usage(self) -> Usage:
        self.usage_calls += 1
        n = self.usage_calls
        return Usage(1.5 * n, 10_000_000 * n, 8_000_000 * n, n, peak_rss_bytes=12_000_000 * n)


def test_memory_and_processes_are_read_after_the_load() -> None:
    (cell,) = _measure(FakeLauncher(lambda p: Growing()), FakeGenerator())
    rep = cell.repetitions[0]
    assert (rep.rss_bytes, rep.pss_bytes, rep.peak_rss_bytes) == (20_000_000, 16_000_000, 24_000_000)
    assert rep.server_processes == 2


# --- a disturbed repetition is measured once more, and only once --------------------------------------


def disturbance(disturbed: bool) -> Interference:
    return Interference(
        window_s=1.0, cpus=[0], busy_cpu_pct=100.0, accounted_cpu_pct=70.0,
        foreign_cpu_pct=30.0 if disturbed else 0.0, steal_pct=0.0, disturbed=disturbed,
    )  # fmt: skip


def repeated(
    flags: list[bool], redo: bool = True, round_index: int | None = None
) -> tuple[CellProgress, int]:
    """``repeat`` with repetitions of 100, 101, ... req/s, the i-th disturbed as ``flags[i]`` says;
    the outcome and how many servers were started."""
    made: Iterator[HttpRepetition] = iter(
        synthetic.http_repetition(100.0 + i, interference=disturbance(d)) for i, d in enumerate(flags)
    )
    launcher = FakeLauncher()
    out = CellProgress(plan(), "now")
    settings = Settings(**{**FAST.__dict__, "redo_disturbed": redo})
    sweep.repeat(plan(), out, lambda s, o: next(made), launcher, settings, lambda _: None, round_index)
    return out, len(launcher.started)


def test_a_disturbed_repetition_is_kept_aside_and_measured_again_on_a_fresh_server() -> None:
    out, servers = repeated([True, False])
    assert [r.load.throughput_rps for r in out.reps] == [101.0] and servers == 2
    assert [r.load.throughput_rps for r in out.disturbed] == [100.0]


def test_a_repetition_disturbed_twice_is_kept_with_no_third_try() -> None:
    out, servers = repeated([True, True, False])
    assert [r.load.throughput_rps for r in out.reps] == [101.0] and servers == 2
    assert [r.load.throughput_rps for r in out.disturbed] == [100.0]


def test_a_quiet_repetition_or_redo_turned_off_is_kept_at_once() -> None:
    out, servers = repeated([False, False])
    assert [r.load.throughput_rps for r in out.reps] == [100.0] and out.disturbed == [] and servers == 1
    out, servers = repeated([True, False], redo=False)
    assert [r.load.throughput_rps for r in out.reps] == [100.0] and out.disturbed == [] and servers == 1


def test_a_repetition_carries_its_round() -> None:
    out, _ = repeated([False], round_index=3)
    assert out.reps[0].round == 3


def test_confirmation_rounds_measure_every_finalist_once_per_round_and_number_them() -> None:
    ft, gil = plan("3.14t", stage="confirm"), plan("3.14", stage="confirm")
    why = Selection(
        explore_cell_id="x", rule="r", lower_bound=1.0, coverage=0.75, median=1.0, candidates=1, ineligible=0
    )
    launcher = FakeLauncher()
    settings = Settings(**{**FAST.__dict__, "rounds": 4})
    cells = sweep.measure_confirmation(
        [(ft, why), (gil, why)], "r", launcher, FakeGenerator(), settings, CEILINGS
    )
    assert [key for key, _ in launcher.started] == [ft.key, gil.key, gil.key, ft.key] * 2
    for cell in cells:
        assert cell.status == "ok" and cell.stage == "confirm" and cell.selection == why
        assert [r.round for r in cell.repetitions] == [0, 1, 2, 3]


class GilInFirstServerOnly(FakeServer):
    """A free-threaded server whose GIL comes back during the load on the first server started only."""

    started = 0

    def __init__(self) -> None:
        super().__init__()
        GilInFirstServerOnly.started += 1
        self.first = GilInFirstServerOnly.started == 1

    def info(self) -> Info:
        return real_info(py_gil_disabled=True, gil_enabled=self.first and self.usage_calls >= 2)


def test_a_gil_that_came_back_in_any_repetition_flags_the_cell_and_its_gil_state() -> None:
    GilInFirstServerOnly.started = 0
    (cell,) = _measure(FakeLauncher(lambda p: GilInFirstServerOnly()), FakeGenerator())
    assert [r.gil_came_back for r in cell.repetitions] == [True, False, False]
    assert cell.info_after is not None and cell.info_after.gil_enabled is False  # the last server's
    assert str(Flag.GIL_ENABLED) in cell.flags and cell.gil_enabled is True
