"""The run engine's budgets and slots, on a fake clock with fake cells: a budget stops before the
cell that would not fit, the run resumes in the next slot, and the slots form one run."""

from __future__ import annotations

import datetime as dt
import sys
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import pytest

from ftscale import schema
from ftscale.bench import engine, results
from ftscale.errors import UsageError

EPOCH = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class FakeStep:
    build: str
    threads: int

    @property
    def key(self) -> str:
        return results.cell_id(self.build, "nbody", self.threads, scaling="strong")

    @property
    def cell_keys(self) -> tuple[str, ...]:
        return (self.key,)


PLANS = [FakeStep(b, n) for b in ("3.14", "3.14t") for n in (1, 2, 4, 8)]


class Bench:
    """A fake clock and a fake ``measure`` that takes ``cell_s`` of that clock per cell."""

    def __init__(self, cell_s: float) -> None:
        self.now = 1000.0
        self.cell_s = cell_s
        self.measured: list[str] = []

    def clock(self) -> float:
        return self.now

    def stamp(self) -> str:
        return (EPOCH + dt.timedelta(seconds=self.now)).isoformat(timespec="seconds")

    def measure(self, plan: FakeStep) -> list[schema.MicroCell]:
        started = self.stamp()
        self.now += self.cell_s
        self.measured.append(plan.key)
        return [schema.MicroCell(
            run_id="r", cell_id=plan.key, build=plan.build, workload="nbody", workload_class="pure-python",
            size=10, threads=plan.threads, scaling="strong", status="ok", unit="calls/s",
            samples=[100.0 * plan.threads], started=started, finished=self.stamp(),
        )]  # fmt: skip

    def sweep(
        self, rundir: results.RunDir, estimate_s: float, budget_s: float | None, started: float | None = None
    ) -> engine.SweepOutcome[FakeStep]:
        return engine.sweep(
            rundir, PLANS, self.measure, lambda p: p.key, estimate_s, budget_s,
            clock=self.clock, tty=False, started=started,
        )  # fmt: skip


def new_run(root: Path) -> results.RunDir:
    rundir = results.RunDir(root / "r")
    rundir.write_meta(
        schema.RunMeta(
            run_id="r", kind="micro", created=results.now(), host=results.collect_host(),
            git=schema.Git(commit=None, dirty=None), config={"argv": []},
        )
    )  # fmt: skip
    return rundir


def test_a_budget_stops_before_the_cell_that_would_not_fit(tmp_path: Path) -> None:
    rundir, bench = new_run(tmp_path), Bench(cell_s=10.0)
    # cells start at 0, 10, 20 s (each expected to end by 30 s); at 30 s the next would end at 40 s
    outcome = bench.sweep(rundir, estimate_s=10.0, budget_s=35.0)
    assert (outcome.planned, outcome.measured, outcome.failed) == (8, 3, 0)
    assert [p.key for p in outcome.left] == [p.key for p in PLANS[3:]] and not outcome.complete
    assert bench.measured == [p.key for p in PLANS[:3]]
    assert (outcome.next_cell_s, outcome.budget_left_s) == (10.0, 5.0)


def test_without_a_budget_every_cell_is_measured(tmp_path: Path) -> None:
    outcome = Bench(cell_s=10.0).sweep(new_run(tmp_path), estimate_s=10.0, budget_s=None)
    assert (outcome.measured, outcome.left, outcome.complete) == (8, (), True)


def test_the_budget_counts_from_the_start_of_the_command(tmp_path: Path) -> None:
    bench = Bench(cell_s=10.0)
    began = bench.now
    bench.now += 20.0  # preparing environments took 20 s of the budget
    outcome = bench.sweep(new_run(tmp_path), estimate_s=10.0, budget_s=35.0, started=began)
    assert outcome.measured == 1


def test_the_budget_uses_measured_cell_times_not_the_estimate(tmp_path: Path) -> None:
    bench = Bench(cell_s=20.0)
    # The estimate (5 s) lets the first cell start; from then on the measured 20 s decide:
    # at 40 s the next cell would end at 60 s. With the estimate alone a third would start.
    outcome = bench.sweep(new_run(tmp_path), estimate_s=5.0, budget_s=50.0)
    assert outcome.measured == 2 and outcome.next_cell_s == 20.0


def test_progress_expects_the_mean_measured_cell_time() -> None:
    progress = engine.Progress(total=4, estimate_s=30.0, tty=False)
    assert progress.expected_cell_s() == 30.0 and progress.eta_s(4) == 120.0
    progress.end(10.0, 1)
    progress.end(20.0, 2)
    assert progress.expected_cell_s() == 15.0 and progress.eta_s(2) == 30.0
    seeded = engine.Progress(total=4, estimate_s=30.0, tty=False, measured=[8.0, 12.0])
    assert seeded.expected_cell_s() == 10.0


def test_budgeted_slots_resume_into_one_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rundir, bench = new_run(tmp_path), Bench(cell_s=10.0)
    first = bench.sweep(rundir, estimate_s=10.0, budget_s=35.0)
    assert engine.finish(rundir, first, "slot-1", "ftscale micro --resume r", no_report=True) == 0
    out = capsys.readouterr().out
    assert "budget reached: 3 of 8 cells done; resume with: ftscale micro --resume r" in out
    meta = rundir.read_meta()
    assert meta.finished is None
    assert [(s.started, s.cells_measured, s.complete) for s in meta.slots] == [("slot-1", 3, False)]

    # The next slot measures only the rest, with the first slot's cell times from the start.
    bench.measured.clear()
    second = bench.sweep(rundir, estimate_s=1000.0, budget_s=60.0)
    assert bench.measured == [p.key for p in PLANS[3:]] and second.complete
    assert engine.finish(rundir, second, "slot-2", "ftscale micro --resume r", no_report=True) == 0
    assert "done: 5 cells measured, 0 failed" in capsys.readouterr().out

    # What `ftscale report` reads: one run directory, every cell, both slots.
    assert results.find_runs(tmp_path) == [rundir.path]
    run = results.load_run(rundir.path)
    assert [c.cell_id for c in run.ok_cells()] == sorted(p.key for p in PLANS)
    assert [s.cells_measured for s in run.meta.slots] == [3, 5] and run.meta.finished is not None


def test_a_resumed_slot_expects_the_cell_times_of_earlier_slots(tmp_path: Path) -> None:
    rundir, bench = new_run(tmp_path), Bench(cell_s=20.0)
    bench.sweep(rundir, estimate_s=20.0, budget_s=50.0)
    assert engine.earlier_cell_seconds(rundir) == [20.0, 20.0]
    bench.measured.clear()
    # The bench's estimate (1 s) would start a 20 s cell in a 15 s budget; the measured times do not.
    outcome = bench.sweep(rundir, estimate_s=1.0, budget_s=15.0)
    assert bench.measured == [] and outcome.next_cell_s == 20.0


def test_a_budget_too_small_for_one_cell_is_bad_input(tmp_path: Path) -> None:
    rundir, bench = new_run(tmp_path), Bench(cell_s=10.0)
    outcome = bench.sweep(rundir, estimate_s=10.0, budget_s=5.0)
    assert outcome.measured == 0 and len(outcome.left) == 8
    with pytest.raises(UsageError, match=r"budget too small: the next cell is expected to take about 10 s"):
        engine.finish(rundir, outcome, "slot-1", "ftscale micro --resume r", no_report=True)
    assert len(rundir.read_meta().slots) == 1  # the slot is on record all the same


def test_the_resume_hint_names_a_bundles_launcher(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FTSCALE_COMMAND", "/srv/ftscale-bundle/bin/ftscale")
    rundir, bench = new_run(tmp_path), Bench(cell_s=10.0)
    outcome = bench.sweep(rundir, estimate_s=10.0, budget_s=15.0)
    assert engine.finish(rundir, outcome, "slot-1", "ftscale bench --resume r", no_report=True) == 0
    assert "resume with: /srv/ftscale-bundle/bin/ftscale bench --resume r" in capsys.readouterr().out


def test_the_budget_through_the_micro_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ftscale micro --budget`` stops, exits 0 with the resume line; ``--resume`` finishes the run."""
    from ftscale.bench.env import venv as envs
    from ftscale.bench.micro import run as micro

    bench = Bench(cell_s=10.0)
    monkeypatch.setattr(time, "monotonic", bench.clock)  # the command's start and the engine's clock

    def fake_measure(plan, python, settings, run_id, build, scratch):  # type: ignore[no-untyped-def]
        (cell,) = bench.measure(FakeStep(plan.build, plan.threads))
        return cell.model_copy(update={"cell_id": plan.key, "scaling": plan.scaling, "run_id": run_id}), None

    monkeypatch.setattr(micro, "measure", fake_measure)
    gil = schema.Build(
        build="3.14", version="3.14.7", executable="/py", py_gil_disabled=False, gil_enabled=True,
        config_args="",
    )  # fmt: skip
    monkeypatch.setattr(envs, "describe", lambda label, python: gil)
    argv = ["--python", f"a={sys.executable}", "--workloads", "nbody", "--threads", "1,2", "--smoke",
            "--run-id", "b", "--results-dir", str(tmp_path), "--no-report", "--budget", "25s"]  # fmt: skip
    assert micro.main(argv) == 0
    out = capsys.readouterr().out
    assert "budget reached: 2 of 4 cells done; resume with: ftscale micro --resume b" in out
    assert len(bench.measured) == 2
    resume = ["--resume", "b", "--results-dir", str(tmp_path), "--no-report", "--budget", "25s"]
    assert micro.main(resume) == 0
    assert "done: 2 cells measured, 0 failed" in capsys.readouterr().out
    run = results.load_run(tmp_path / "b")
    assert len(run.ok_cells()) == 4 and [s.cells_measured for s in run.meta.slots] == [2, 2]


# --- resume: a step is done only when every one of its cells is ------------------------------------


@dataclass(frozen=True)
class FakeGroup:
    """A step of several cells (an HTTP group: every design of one workload at one thread count)."""

    threads: int

    @property
    def cell_keys(self) -> tuple[str, ...]:
        return tuple(results.cell_id(b, "nbody", self.threads, scaling="strong") for b in ("3.14", "3.14t"))


def group_cells(
    group: FakeGroup, failing: Collection[str], skipped: Collection[str] = ()
) -> list[schema.MicroCell]:
    cells = []
    for key in group.cell_keys:
        status = "failed" if key in failing else "skipped" if key in skipped else "ok"
        cells.append(schema.MicroCell(
            run_id="r", cell_id=key, build=key.split("__")[0], workload="nbody", workload_class="pure-python",
            size=10, threads=group.threads, scaling="strong", status=status, unit="calls/s",
            samples=[100.0] if status == "ok" else [], error="boom" if status == "failed" else None,
            skip_reason="cannot run here" if status == "skipped" else None,
            started=results.now(), finished=results.now(),
        ))  # fmt: skip
    return cells


def test_resume_measures_again_a_group_in_which_one_cell_failed(tmp_path: Path) -> None:
    rundir, groups = new_run(tmp_path), [FakeGroup(1), FakeGroup(2)]
    broken = groups[0].cell_keys[1]
    first = engine.sweep(rundir, groups, lambda g: group_cells(g, {broken}), str, 1.0, tty=False)
    assert (first.measured, first.failed) == (4, 1)
    assert engine.finish(rundir, first, "slot-1", "ftscale bench --resume r", no_report=True) == 1
    again: list[FakeGroup] = []

    def measure(group: FakeGroup) -> list[schema.MicroCell]:
        again.append(group)
        return group_cells(group, set())

    second = engine.sweep(rundir, groups, measure, str, 1.0, tty=False)
    assert again == [groups[0]] and (second.measured, second.failed) == (2, 0)
    assert rundir.done() == {k for g in groups for k in g.cell_keys}


def test_resume_leaves_a_group_whose_cells_were_measured_or_skipped(tmp_path: Path) -> None:
    rundir, group = new_run(tmp_path), FakeGroup(1)
    engine.sweep(rundir, [group], lambda g: group_cells(g, set(), {g.cell_keys[0]}), str, 1.0, tty=False)
    again: list[FakeGroup] = []

    def measure(g: FakeGroup) -> list[schema.MicroCell]:
        again.append(g)
        return []

    engine.sweep(rundir, [group], measure, str, 1.0, tty=False)
    assert again == []
