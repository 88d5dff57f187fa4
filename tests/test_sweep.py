"""The HTTP bench's cell state machine, driven by a fake server and a fake generator."""

from __future__ import annotations

import signal
from collections.abc import Mapping
from typing import Any

import pytest
from ftscale.bench import engine
from ftscale.bench.http import cell as sweep
from ftscale.bench.http.loadgen import LoadSpec
from ftscale.bench.http.procs import ServerError, Usage
from ftscale.server import info as server_info
from ftscale.server.config import ServerConfig

from ftscale.schema import HealthProbe, HttpCell, Info, LoadResult
from ftscale.vocab import Flag


def real_info(py_gil_disabled: bool, gil_enabled: bool) -> Info:
    """This process's own ``/info`` answer, as the service builds it, with the GIL facts set."""
    info = server_info.describe(ServerConfig(threads=2))
    interpreter = info.interpreter.model_copy(update={"py_gil_disabled": py_gil_disabled})
    return info.model_copy(update={"interpreter": interpreter, "gil_enabled": gil_enabled})


PLAN = sweep.Plan(
    build="3.14t",
    workload="nbody",
    workload_class="pure-python",
    size=100,
    mode="threadpool",
    topology="single",
    threads=2,
    connections=4,
)
FAST = sweep.Settings(duration_s=1.0, warmup_s=0.5, repetitions=3, ceiling_s=0.5, start_timeout_s=1.0)


class FakeServer:
    host, port = "127.0.0.1", 1

    def __init__(
        self, fail_health: bool = False, dies_after: int | None = None, gil: bool = False, ft: bool = True
    ) -> None:
        self.fail_health, self.dies_after, self.gil, self.ft = fail_health, dies_after, gil, ft
        self.stops = 0
        self.usage_calls = 0

    def wait_healthy(self, timeout_s: float) -> None:
        if self.fail_health:
            raise ServerError("server exited with 1 during start-up", "Traceback ...\nImportError: boom")

    def alive(self) -> bool:
        return self.dies_after is None or self.usage_calls < self.dies_after

    def info(self) -> Info:
        return real_info(py_gil_disabled=self.ft, gil_enabled=self.gil)

    def usage(self) -> Usage:
        self.usage_calls += 1
        return Usage(
            cpu_seconds=1.5 * self.usage_calls, rss_bytes=50_000_000, pss_bytes=40_000_000, processes=1
        )

    def stderr_tail(self, limit: int = 4000) -> str:
        return "last words"

    def stop(self, timeout_s: float = 15.0) -> dict[str, Any]:
        self.stops += 1
        return {"exit_code": 0, "clean": True, "orphans_killed": []}

    def pids(self) -> list[int]:
        return []


class FakeLauncher:
    def __init__(self, server: FakeServer) -> None:
        self.server = server

    def start(self, plan: sweep.Plan, env: Mapping[str, str] | None = None) -> FakeServer:
        return self.server


class FakeGenerator:
    name, cpus = "fake", 1

    def __init__(
        self, rps: list[float], ceiling: float = 10_000.0, cpu_pct: float = 20.0, interrupt: bool = False
    ) -> None:
        self.rps, self.ceiling, self.cpu_pct, self.interrupt = list(rps), ceiling, cpu_pct, interrupt
        self.loads: list[LoadSpec] = []

    def load(self, spec: LoadSpec, probe_health: bool) -> tuple[LoadResult, HealthProbe | None]:
        self.loads.append(spec)
        if self.interrupt and probe_health:
            raise KeyboardInterrupt
        rps = self.ceiling if spec.path == "/health" else (self.rps.pop(0) if probe_health else 1.0)
        result = LoadResult(
            generator="fake",
            requests=int(rps * spec.duration_s),
            duration_s=spec.duration_s,
            throughput_rps=rps,
            latency_ms={"p50": 1.0, "p90": 2.0, "p99": 3.0, "p99.9": 4.0},
            errors={},
            generator_cpu_pct=self.cpu_pct,
        )
        return result, (HealthProbe(p50=0.5, p99=0.9, samples=10) if probe_health else None)


def _measure(server: FakeServer, generator: FakeGenerator) -> HttpCell:
    return sweep.measure(PLAN, "run-1", FakeLauncher(server), generator, FAST)


def test_a_cell_goes_ceiling_warmup_repetitions_and_stops_its_server() -> None:
    server, gen = FakeServer(), FakeGenerator([100.0, 110.0, 90.0])
    cell = _measure(server, gen)
    assert cell.status == "ok" and cell.cell_id == PLAN.key
    assert cell.samples == [100.0, 110.0, 90.0]
    assert [s.path for s in gen.loads] == [
        "/health",
        "/work/nbody",
        "/work/nbody",
        "/work/nbody",
        "/work/nbody",
    ]
    assert [s.duration_s for s in gen.loads] == [0.5, 0.5, 1.0, 1.0, 1.0]
    assert gen.loads[1].body == b'{"size": 100}'
    rep = cell.repetitions[0]
    assert rep.server_cpu_pct == 150.0  # 1.5 CPU-seconds over a 1 s repetition
    assert (
        rep.rss_bytes == 50_000_000 and rep.health_latency_ms is not None and rep.health_latency_ms.p99 == 0.9
    )
    assert cell.flags == [] and cell.gil_enabled is False
    assert server.stops == 1
    HttpCell.model_validate(cell.model_dump())


def test_start_failure_is_recorded_with_stderr_and_the_server_stopped() -> None:
    server = FakeServer(fail_health=True)
    cell = _measure(server, FakeGenerator([]))
    assert cell.status == "failed" and cell.samples == []
    assert cell.error is not None and cell.error.startswith("health:")
    assert cell.stderr_tail is not None and "ImportError: boom" in cell.stderr_tail
    assert server.stops == 1


def test_a_server_that_dies_mid_run_fails_the_cell() -> None:
    server = FakeServer(dies_after=2)
    cell = _measure(server, FakeGenerator([100.0, 100.0, 100.0]))
    assert cell.status == "failed" and "died" in (cell.error or "")
    assert cell.stderr_tail == "last words" and server.stops == 1


@pytest.mark.parametrize(
    ("cpu_pct", "ceiling", "saturated"),
    [(20.0, 10_000.0, False), (97.0, 10_000.0, True), (20.0, 110.0, True)],
)
def test_generator_saturation_is_flagged(cpu_pct: float, ceiling: float, saturated: bool) -> None:
    cell = _measure(FakeServer(), FakeGenerator([100.0] * 3, ceiling=ceiling, cpu_pct=cpu_pct))
    assert (Flag.GENERATOR_SATURATED in cell.flags) is saturated


def test_a_free_threaded_build_running_with_the_gil_is_flagged() -> None:
    cell = _measure(FakeServer(gil=True), FakeGenerator([100.0] * 3))
    assert Flag.GIL_ENABLED in cell.flags and cell.gil_enabled is True


def test_a_gil_build_with_its_gil_is_not_flagged() -> None:
    cell = _measure(FakeServer(gil=True, ft=False), FakeGenerator([100.0] * 3))
    assert cell.gil_enabled is True and Flag.GIL_ENABLED not in cell.flags


def test_a_free_threaded_build_without_the_gil_is_not_flagged() -> None:
    cell = _measure(FakeServer(gil=False, ft=True), FakeGenerator([100.0] * 3))
    assert cell.gil_enabled is False and Flag.GIL_ENABLED not in cell.flags


def test_interrupt_stops_the_server_and_propagates() -> None:
    server = FakeServer()
    with pytest.raises(KeyboardInterrupt):
        _measure(server, FakeGenerator([], interrupt=True))
    assert server.stops == 1


def test_interrupts_wait_until_a_started_server_is_recorded() -> None:
    gate = engine.Interrupts()
    reached = []
    with pytest.raises(KeyboardInterrupt), gate.held():
        gate.handler(signal.SIGTERM, None)  # arrives between fork and bookkeeping
        reached.append("recorded")
    assert reached == ["recorded"]
    with pytest.raises(KeyboardInterrupt):
        gate.handler(signal.SIGINT, None)  # outside the window it stops at once
