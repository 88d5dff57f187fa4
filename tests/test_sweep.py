"""The HTTP bench's state machine (groups, interleaved repetitions, fresh servers), with fakes."""

from __future__ import annotations

import itertools
import signal
import types
from collections.abc import Mapping
from typing import Any

import pytest

from ftscale.bench import engine
from ftscale.bench.http import cell as sweep
from ftscale.bench.http.cells import CellSpec, Group, Settings, interleaved
from ftscale.bench.http.judge import unbalanced
from ftscale.bench.http.loadgen import LoadSpec
from ftscale.bench.http.procs import ServerError, Usage
from ftscale.schema import HealthProbe, HttpCell, Info, LoadResult
from ftscale.server import info as server_info
from ftscale.server.config import ServerConfig
from ftscale.vocab import Flag
from tests import synthetic


def real_info(py_gil_disabled: bool, gil_enabled: bool, units: dict[str, int] | None = None) -> Info:
    """This process's own ``/info`` answer, as the service builds it, with the GIL facts set."""
    info = server_info.describe(ServerConfig(threads=2))
    interpreter = info.interpreter.model_copy(update={"py_gil_disabled": py_gil_disabled})
    return info.model_copy(
        update={"interpreter": interpreter, "gil_enabled": gil_enabled, "unit_requests": units}
    )


def plan(build: str = "3.14t", mode: str = "threadpool", topology: str = "single", **extra: Any) -> CellSpec:
    return CellSpec(build, "nbody", "pure-python", 100, mode, topology, 2, 4, **extra)


PLAN = plan()


@pytest.fixture(autouse=True)
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """A clock that advances 1 s per reading: the CPU readings around a load span 1 s."""
    monkeypatch.setattr(
        "ftscale.bench.http.session.time", types.SimpleNamespace(monotonic=itertools.count(0.0, 1.0).__next__)
    )


FAST = Settings(duration_s=1.0, warmup_s=0.5, repetitions=3, start_timeout_s=1.0)
CEILINGS = {"closed:4": 10_000.0, "open:8": 10_000.0}


class FakeServer:
    host, port = "127.0.0.1", 1

    def __init__(
        self,
        fail_health: bool = False,
        dies: bool = False,
        gil: bool = False,
        ft: bool = True,
        split: tuple[float, ...] | None = None,
    ) -> None:
        self.fail_health, self.dies, self.gil, self.ft, self.split = fail_health, dies, gil, ft, split
        self.stopped = False
        self.usage_calls = 0
        self.served = [0] * len(split or ())

    def wait_healthy(self, timeout_s: float) -> None:
        if self.fail_health:
            raise ServerError("server exited with 1 during start-up", "Traceback ...\nImportError: boom")

    def alive(self) -> bool:
        return not (self.dies and self.usage_calls >= 2)

    def info(self) -> Info:
        units = {f"pid {i}": n for i, n in enumerate(self.served) if n} if self.split else None
        return real_info(py_gil_disabled=self.ft, gil_enabled=self.gil, units=units)

    def serve(self, requests: int) -> None:
        for i, share in enumerate(self.split or ()):
            self.served[i] += round(requests * share)

    def usage(self) -> Usage:
        self.usage_calls += 1
        return Usage(1.5 * self.usage_calls, 50_000_000, 40_000_000, 1, peak_rss_bytes=60_000_000)

    def stderr_tail(self, limit: int = 4000) -> str:
        return "last words"

    def stop(self, timeout_s: float = 15.0) -> dict[str, Any]:
        self.stopped = True
        return {"exit_code": 0, "clean": True, "orphans_killed": []}

    def pids(self) -> list[int]:
        return []


class FakeLauncher:
    """A fresh fake server per start, made by ``make`` for the plan; remembers every start."""

    def __init__(self, make: Any = None) -> None:
        self.make = make or (lambda p: FakeServer())
        self.started: list[tuple[str, FakeServer]] = []

    def start(self, plan: CellSpec, env: Mapping[str, str] | None = None) -> FakeServer:
        server = self.make(plan)
        self.started.append((plan.key, server))
        return server


class FakeGenerator:
    name = "fake"

    def __init__(
        self, rps: Any = 100.0, busy: float = 10.0, interrupt: bool = False, p99: Any = None
    ) -> None:
        self.rps, self.busy, self.interrupt, self.p99 = rps, busy, interrupt, p99
        self.loads: list[LoadSpec] = []
        self.servers: list[FakeServer] = []

    def load(self, spec: LoadSpec, probe_health: bool) -> tuple[LoadResult, HealthProbe | None]:
        self.loads.append(spec)
        if self.interrupt and probe_health:
            raise KeyboardInterrupt
        rps = self.rps(spec) if callable(self.rps) else self.rps
        if spec.rate:
            rps = min(rps, spec.rate)
        p99 = self.p99(spec) if callable(self.p99) else 3.0
        requests = int(rps * spec.duration_s)
        result = LoadResult(
            generator="fake",
            requests=requests,
            duration_s=spec.duration_s,
            throughput_rps=rps,
            latency_ms={"p50": 1.0, "p90": 2.0, "p99": p99, "p99.9": 4.0},
            errors={},
            generator_cpu_pct=self.busy,
            generator_busy_max_pct=self.busy,
            latency_histogram=synthetic.latency_histogram(requests, p99),
            due_requests=round(spec.rate * spec.duration_s) if spec.rate else None,
            window_requests=requests if spec.rate else None,
            arrival_seed=spec.seed if spec.rate else None,
        )
        if self.servers:
            self.servers[-1].serve(result.requests)
        return result, (HealthProbe(p50=0.5, p99=0.9, samples=10) if probe_health else None)


def _group(*plans: CellSpec) -> Group:
    return Group("nbody", 2, plans or (PLAN,))


def _measure(
    launcher: FakeLauncher, generator: FakeGenerator, *plans: CellSpec, **settings: Any
) -> list[HttpCell]:
    def make(p: CellSpec, inner: Any = launcher.make) -> FakeServer:
        server = inner(p)
        generator.servers.append(server)
        return server

    launcher.make = make
    s = Settings(**{**FAST.__dict__, **settings})
    return sweep.measure_group(_group(*plans), "run-1", launcher, generator, s, CEILINGS)


def test_every_repetition_runs_on_a_fresh_server_that_is_stopped() -> None:
    launcher, gen = FakeLauncher(), FakeGenerator(rps=100.0)
    (cell,) = _measure(launcher, gen)
    assert cell.status == "ok" and cell.cell_id == PLAN.key and cell.samples == [100.0] * 3
    assert len(launcher.started) == 3 and all(server.stopped for _, server in launcher.started)
    # warm-up then measured load, on each server
    assert [s.duration_s for s in gen.loads] == [0.5, 1.0] * 3
    assert gen.loads[1].body == b'{"size": 100}' and gen.loads[1].path == "/work/nbody"
    rep = cell.repetitions[0]
    assert rep.server_cpu_pct == 150.0  # 1.5 CPU-seconds over the 1 s its readings spanned
    assert rep.peak_rss_bytes == 60_000_000 and rep.ceiling_rps == 10_000.0
    assert rep.health_latency_ms is not None and rep.health_latency_ms.p99 == 0.9
    assert cell.flags == [] and cell.gil_enabled is False
    HttpCell.model_validate(cell.model_dump())


def test_repetitions_are_interleaved_and_rotated() -> None:
    a, b, c = plan("3.14"), plan("3.14t"), plan("3.14t", "inline", "loops")
    order = [(rep, p.key) for rep, p in interleaved([a, b, c], 3)]
    assert order == [
        (0, a.key), (0, b.key), (0, c.key),
        (1, b.key), (1, c.key), (1, a.key),
        (2, c.key), (2, a.key), (2, b.key),
    ]  # fmt: skip
    launcher = FakeLauncher()
    _measure(launcher, FakeGenerator(), a, b)
    assert [key for key, _ in launcher.started] == [a.key, b.key, b.key, a.key, a.key, b.key]


def test_a_failing_design_does_not_stop_the_others() -> None:
    bad = plan("3.14", "process", "single")
    launcher = FakeLauncher(lambda p: FakeServer(fail_health=p is bad))
    cells = {c.cell_id: c for c in _measure(launcher, FakeGenerator(), PLAN, bad)}
    assert cells[PLAN.key].status == "ok" and len(cells[PLAN.key].samples) == 3
    failed = cells[bad.key]
    assert failed.status == "failed" and failed.samples == []
    assert failed.error is not None and failed.error.startswith("health:")
    assert failed.stderr_tail is not None and "ImportError: boom" in failed.stderr_tail
    assert sum(1 for key, _ in launcher.started if key == bad.key) == 1  # not retried after failing
    assert all(server.stopped for _, server in launcher.started)


def test_a_server_that_dies_mid_run_fails_the_cell() -> None:
    launcher = FakeLauncher(lambda p: FakeServer(dies=True))
    (cell,) = _measure(launcher, FakeGenerator())
    assert cell.status == "failed" and "died" in (cell.error or "")
    assert all(server.stopped for _, server in launcher.started)


@pytest.mark.parametrize(
    ("busy", "rps", "saturated"), [(10.0, 100.0, False), (60.0, 100.0, True), (10.0, 9_000.0, True)]
)
def test_generator_saturation_is_judged_per_thread_and_against_the_ceiling(
    busy: float, rps: float, saturated: bool
) -> None:
    (cell,) = _measure(FakeLauncher(), FakeGenerator(rps=rps, busy=busy))
    assert (Flag.GENERATOR_SATURATED in cell.flags) is saturated


def test_a_free_threaded_build_running_with_the_gil_is_flagged() -> None:
    (cell,) = _measure(FakeLauncher(lambda p: FakeServer(gil=True)), FakeGenerator())
    assert Flag.GIL_ENABLED in cell.flags and cell.gil_enabled is True


def test_a_gil_build_with_its_gil_is_not_flagged() -> None:
    (cell,) = _measure(FakeLauncher(lambda p: FakeServer(gil=True, ft=False)), FakeGenerator())
    assert cell.gil_enabled is True and Flag.GIL_ENABLED not in cell.flags


def test_a_free_threaded_build_without_the_gil_is_not_flagged() -> None:
    (cell,) = _measure(FakeLauncher(lambda p: FakeServer(gil=False, ft=True)), FakeGenerator())
    assert cell.gil_enabled is False and Flag.GIL_ENABLED not in cell.flags


@pytest.mark.parametrize(
    ("split", "flagged"), [((0.5, 0.5), False), ((0.45, 0.55), False), ((1.0, 0.0), True), ((0.8, 0.2), True)]
)
def test_imbalance_between_serving_units_is_flagged(split: tuple[float, ...], flagged: bool) -> None:
    workers = plan("3.14", "inline", "workers")
    (cell,) = _measure(FakeLauncher(lambda p: FakeServer(split=split)), FakeGenerator(rps=100.0), workers)
    assert (Flag.UNBALANCED in cell.flags) is flagged
    units = cell.repetitions[0].units
    assert units is not None and sum(units.values()) == 100 and len(units) == 2


def test_one_unit_cannot_be_unbalanced() -> None:
    assert not unbalanced({"pid 1": 10}, 1)
    assert unbalanced({"pid 1": 10}, 2)  # the other unit never answered
    assert not unbalanced(None, 4)


def test_open_loop_cells_offer_shares_of_the_closed_loop_median() -> None:
    half = plan(offered_share=0.5)
    gen = FakeGenerator(rps=120.0)
    cells = {c.cell_id: c for c in _measure(FakeLauncher(), gen, PLAN, half)}
    assert cells[half.key].status == "ok" and cells[half.key].load == "open"
    assert cells[half.key].offered_rps == 60.0 and cells[half.key].samples == [60.0] * 3
    assert [s.rate for s in gen.loads if s.rate] == [60.0] * 6  # warm-up and load, 3 times
    assert all(s.connections == 8 for s in gen.loads if s.rate)  # twice the closed-loop connections
    assert cells[half.key].repetitions[0].offered_rps == 60.0


def test_the_latency_target_search_finds_the_highest_rate_that_meets_it() -> None:
    slo = plan(slo=True)
    # p99 grows with the offered rate: 100 ms at the closed-loop peak (200 req/s), 50 ms at 100 req/s,
    # where its upper bound (the top of 50 ms's bucket) is just over the target
    gen = FakeGenerator(rps=200.0, p99=lambda spec: (spec.rate or 200.0) / 2)
    cells = {c.cell_id: c for c in _measure(FakeLauncher(), gen, PLAN, slo, slo_p99_ms=50.0)}
    found = cells[slo.key].slo
    assert found is not None and found.target_p99_ms == 50.0
    # 100 (half the peak) fails; 50 passes, then 75 and 87.5 do: the capacity lies in [87.5, 100)
    assert [s.offered_rps for s in found.steps] == [100.0, 50.0, 75.0, 87.5]
    assert found.capacity_rps == 87.5 and found.failing_rps == 100.0 and found.censored is False
    assert all(
        step.met == (step.p99_upper_ms is not None and step.p99_upper_ms <= 50.0) for step in found.steps
    )
    assert cells[slo.key].status == "ok" and cells[slo.key].offered_rps == found.capacity_rps
    # the cell's repetitions are the loads of the step at the capacity, each with its own seed
    reps = cells[slo.key].repetitions
    assert len(reps) == 5 and {r.offered_rps for r in reps} == {87.5}
    assert len({r.load.arrival_seed for r in reps}) == 5
    # the search's server says what it ran: its build and GIL state are the cell's, as for any cell
    assert cells[slo.key].info_before is not None and cells[slo.key].info_after is not None
    assert cells[slo.key].gil_enabled is not None


def test_interrupt_stops_the_server_and_propagates() -> None:
    launcher = FakeLauncher()
    with pytest.raises(KeyboardInterrupt):
        _measure(launcher, FakeGenerator(interrupt=True))
    assert launcher.started and all(server.stopped for _, server in launcher.started)


def test_interrupts_wait_until_a_started_server_is_recorded() -> None:
    gate = engine.Interrupts()
    reached = []
    with pytest.raises(KeyboardInterrupt), gate.held():
        gate.handler(signal.SIGTERM, None)  # arrives between fork and bookkeeping
        reached.append("recorded")
    assert reached == ["recorded"]
    with pytest.raises(KeyboardInterrupt):
        gate.handler(signal.SIGINT, None)  # outside the window it stops at once
