"""--profile in the benches: the HTTP cell's profiled repetition (with fakes), a micro run where
perf cannot be used (it goes on without profiles after one line), and, where perf can record,
a real micro run and a real HTTP run with --profile."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import pyperf
import pytest

from ftscale import schema
from ftscale.bench import results
from ftscale.bench.http import cell as sweep
from ftscale.bench.http.cells import CellSpec, Group
from ftscale.bench.micro import profile as micro_profile
from ftscale.bench.micro import run as micro
from ftscale.bench.profile import perf, session
from tests.test_http_bench import _bench as http_bench
from tests.test_profile import PY, fake_perf
from tests.test_sweep import CEILINGS, FAST, PLAN, FakeGenerator, FakeServer

# --- the HTTP cell's profiled repetition, with fakes -------------------------------------------------


class FakeProfiler(session.Profiler):
    def __init__(self) -> None:
        self.attached: list[tuple[list[int], float]] = []
        self.forgotten: list[int] = []

    def attach(self, cell_id: str, pids: Any, during: Callable[[], Any], **kw: Any) -> schema.Profile:
        work, seconds = during()
        self.attached.append((list(pids), seconds))
        return schema.Profile(status="ok", samples=10, work=work, work_unit=kw["work_unit"])

    def forget(self, pids: Any) -> None:
        self.forgotten += list(pids)


class TreeServer(FakeServer):
    def pids(self) -> list[int]:
        return [4242, 4243]


class RecordingLauncher:
    def __init__(self) -> None:
        self.envs: list[Mapping[str, str] | None] = []

    def start(self, plan: CellSpec, env: Mapping[str, str] | None = None) -> TreeServer:
        self.envs.append(env)
        return TreeServer()


def _measure(launcher: Any, gen: FakeGenerator, profiler: session.Profiler) -> schema.HttpCell:
    group = Group("nbody", PLAN.threads, (PLAN,))
    (cell,) = sweep.measure_group(group, "run-1", launcher, gen, FAST, CEILINGS, profiler=profiler)
    return cell


def test_the_profiled_repetition_runs_on_its_own_server_and_is_never_a_sample() -> None:
    rates = iter([100.0, 110.0, 90.0, 999.0])
    gen = FakeGenerator(rps=lambda spec: next(rates) if spec.duration_s == 1.0 else 1.0)
    launcher, profiler = RecordingLauncher(), FakeProfiler()
    cell = _measure(launcher, gen, profiler)
    assert cell.status == "ok" and cell.samples == [100.0, 110.0, 90.0] and len(cell.repetitions) == 3
    # three measured servers, then the profiled one: only that one has the perf trampoline
    assert launcher.envs == [None, None, None, {"PYTHONPERFSUPPORT": "1"}]
    # warm-up and measured load on each of 3 servers; then the profiled server's warm-up and its load
    assert [s.duration_s for s in gen.loads] == [0.5, 1.0, 0.5, 1.0, 0.5, 1.0, 0.5, 1.0]
    assert profiler.attached == [([4242, 4243], 1.0)] and profiler.forgotten == [4242, 4243]
    assert cell.profile is not None and cell.profile.work == 999.0 and cell.profile.work_unit == "request"


def test_a_profiled_repetition_that_fails_leaves_the_cell_measured() -> None:
    class Dying(RecordingLauncher):
        def start(self, plan: CellSpec, env: Mapping[str, str] | None = None) -> TreeServer:
            server = super().start(plan, env)
            server.fail_health = env is not None
            return server

    rates = iter([1.0, 2.0, 3.0])
    gen = FakeGenerator(rps=lambda spec: next(rates) if spec.duration_s == 1.0 else 1.0)
    cell = _measure(Dying(), gen, FakeProfiler())
    assert cell.status == "ok" and cell.samples == [1.0, 2.0, 3.0]
    assert cell.profile is not None and cell.profile.status == "failed"
    assert (cell.profile.error or "").startswith("profiled repetition: server exited with 1")


@pytest.mark.slow
def test_a_micro_run_without_perf_goes_on_without_profiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", f"{fake_perf(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}")
    argv = [
        "--python", PY, "--workloads", "nbody", "--threads", "1", "--scaling", "strong", "--smoke",
        "--in-process", "--processes", "1", "--values", "2", "--min-time", "0.002", "--profile",
        "--run-id", "np", "--results-dir", str(tmp_path), "--no-report",
    ]  # fmt: skip
    assert micro.main(argv) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("profile:")]
    assert len(lines) == 1 and "perf not permitted" in lines[0] and "goes on without profiles" in lines[0]
    run = results.load_run(tmp_path / "np")
    (cell,) = run.cells
    assert cell.status == "ok" and len(cell.samples) == 2 and cell.profile is None
    assert "perf not permitted" in run.meta.config["profile"]["unavailable"]
    assert any("no profiles were recorded" in note for note in run.meta.notes)
    assert not (tmp_path / "np" / "profiles").exists()


# --- with a real perf ----------------------------------------------------------------------------


@pytest.fixture
def usable_perf() -> perf.Perf:
    found = perf.probe()
    if isinstance(found, perf.Unavailable):
        pytest.skip(found.reason)
    return found


@pytest.fixture
def removed_maps(monkeypatch: pytest.MonkeyPatch) -> set[int]:
    """The pids whose trampoline map files the profiler deleted."""
    seen: set[int] = set()
    real = session.remove_maps

    def spy(pids: Iterable[int]) -> None:
        pids = set(pids)
        seen.update(pids)
        real(pids)

    monkeypatch.setattr(session, "remove_maps", spy)
    return seen


@pytest.mark.e2e
@pytest.mark.slow
def test_a_micro_run_with_profile_records_each_cell_once_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, usable_perf: perf.Perf, removed_maps: set[int]
) -> None:
    monkeypatch.setattr(micro_profile, "PROFILE_SECONDS", 0.3)
    argv = [
        "--python", PY, "--workloads", "nbody", "--threads", "1,2", "--scaling", "strong", "--smoke",
        "--in-process", "--processes", "1", "--values", "2", "--min-time", "0.002", "--profile",
        "--run-id", "p", "--results-dir", str(tmp_path), "--no-report",
    ]  # fmt: skip
    assert micro.main(argv) == 0
    run = results.load_run(tmp_path / "p")
    assert run.meta.config["profile"]["call_graph"] == usable_perf.call_graph
    suite = pyperf.BenchmarkSuite.load(str(tmp_path / "p" / "pyperf" / f"{run.cells[0].build}.json"))
    for cell in run.cells:
        prof = cell.profile
        assert prof is not None and prof.status == "ok", prof
        assert prof.samples > 0 and prof.work and prof.work_unit == "call"
        assert sum(prof.buckets.values()) == prof.samples and prof.capacity_cpus == min(cell.threads, 2)
        assert prof.folded == f"profiles/{cell.cell_id}.folded" and (run.path / prof.folded).stat().st_size
        # the profiled run is not a sample: two values, as asked, in the cell and in pyperf's file
        assert (
            len(cell.samples) == 2
            and len(suite.get_benchmark(f"nbody/strong/t{cell.threads}").get_values()) == 2
        )
    assert removed_maps and not any(Path(f"/tmp/perf-{pid}.map").exists() for pid in removed_maps)
    if importlib.util.find_spec("matplotlib") is not None:  # the report extra
        from ftscale.bench.report import run_report
        from ftscale.bench.report.markdown import render
        from ftscale.bench.report.model import build_model

        assert "What limits scaling" in render(run_report.build(build_model(run)))


@pytest.mark.e2e
@pytest.mark.slow
def test_an_http_run_with_profile_records_one_more_repetition(tmp_path: Path, usable_perf: perf.Perf) -> None:
    proc = http_bench(tmp_path, "--workloads", "nbody", "--threads", "1", "--size", "nbody=10", "--profile",
                      "--run-id", "hp")  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (cell,) = results.load_run(tmp_path / "hp").cells
    assert cell.status == "ok" and len(cell.samples) == 1 and len(cell.repetitions) == 1
    prof = cell.profile
    assert prof is not None and prof.status == "ok", prof
    assert prof.work and prof.work_unit == "request" and prof.samples > 0
    assert "-p" in prof.command.split() and (tmp_path / "hp" / (prof.folded or "")).is_file()
