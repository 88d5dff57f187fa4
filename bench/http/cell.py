"""The HTTP bench's cell state machine, independent of real processes.

One cell is one server configuration under one load: start the server, wait until /health
answers, read /info, measure the generator's ceiling against /health, warm up, run the
repetitions (each with a concurrent /health probe, CPU and memory of the server's process
tree), read /info again, stop the server. Any failure on the way stops the server, kills what
is left, and yields a failed cell with the error and the tail of the server's stderr; the
sweep goes on with the next cell.

Servers and generators come in through the small protocols below, so tests drive the whole
machine with fakes.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from ftscale.bench import results
from ftscale.bench.http.loadgen import LoadSpec
from ftscale.bench.http.procs import ServerError, Usage
from ftscale.bench.profile.http import profiled_repetition
from ftscale.bench.profile.session import Profiler

from ftscale.schema import HealthProbe, HttpCell, HttpRepetition, Info, LoadResult
from ftscale.vocab import Flag

# A cell is flagged generator-bound when the generator used this share of its CPUs ...
SATURATION_CPU_PCT = 90.0
# ... or was running or waiting for a CPU this share of the time (it then adds its own
# queueing to every request: the load, not the server, sets the pace) ...
SATURATION_BUSY_PCT = 50.0
# ... or the server answered at this share of what the generator reached against /health.
SATURATION_CEILING_SHARE = 0.8


@dataclass(frozen=True)
class Plan:
    """What one cell measures."""

    build: str
    workload: str
    workload_class: str
    size: int
    mode: str
    topology: str
    threads: int
    connections: int

    @property
    def key(self) -> str:
        return results.cell_id(self.build, self.workload, self.threads, self.mode, self.topology)

    def body(self) -> bytes:
        return f'{{"size": {self.size}}}'.encode()


@dataclass(frozen=True)
class Settings:
    duration_s: float = 3.0
    warmup_s: float = 1.0
    repetitions: int = 3
    ceiling_s: float = 1.0
    start_timeout_s: float = 60.0


class Server(Protocol):
    host: str
    port: int

    def wait_healthy(self, timeout_s: float) -> None: ...
    def alive(self) -> bool: ...
    def info(self) -> Info: ...
    def usage(self) -> Usage | None: ...
    def stderr_tail(self, limit: int = ...) -> str: ...
    def stop(self, timeout_s: float = ...) -> dict[str, Any]: ...
    def pids(self) -> list[int]: ...  # the server's process tree (empty: not on this machine)


class Launcher(Protocol):
    def start(self, plan: Plan, env: Mapping[str, str] | None = None) -> Server: ...


class Generator(Protocol):
    name: str
    cpus: int

    def load(self, spec: LoadSpec, probe_health: bool) -> tuple[LoadResult, HealthProbe | None]: ...


def _flags(reps: list[HttpRepetition], ceiling_rps: float | None, info: Info | None, cpus: int) -> list[str]:
    flags = []
    median_rps = statistics.median(r.throughput_rps for r in reps)
    cpu = max(r.generator_cpu_pct for r in reps)
    busy = max(r.generator_busy_pct or 0.0 for r in reps)
    if (
        cpu >= SATURATION_CPU_PCT * cpus
        or busy >= SATURATION_BUSY_PCT * cpus
        or (ceiling_rps and median_rps >= SATURATION_CEILING_SHARE * ceiling_rps)
    ):
        flags.append(Flag.GENERATOR_SATURATED)
    if any(r.errors for r in reps):
        flags.append(Flag.ERRORS)
    if gil_came_back(info):
        flags.append(Flag.GIL_ENABLED)
    return [str(f) for f in flags]


def gil_came_back(info: Info | None) -> bool:
    """A free-threaded build serving with the GIL on (a GIL build always has it: not a flag)."""
    return info is not None and info.interpreter.py_gil_disabled and info.gil_enabled


def _cell(plan: Plan, run_id: str, started: str, **measured: Any) -> HttpCell:
    """A result cell for ``plan``, with what was measured (or why not)."""
    return HttpCell(
        run_id=run_id,
        cell_id=plan.key,
        build=plan.build,
        workload=plan.workload,
        workload_class=plan.workload_class,
        size=plan.size,
        threads=plan.threads,
        mode=plan.mode,
        topology=plan.topology,
        unit="req/s",
        started=started,
        finished=results.now(),
        **measured,
    )


def measure(
    plan: Plan,
    run_id: str,
    launcher: Launcher,
    generator: Generator,
    settings: Settings,
    log: Callable[[str], None] = lambda _: None,
    profiler: Profiler | None = None,
) -> HttpCell:
    """Measure one cell; never raises for a server or generator failure (KeyboardInterrupt does).

    With a ``profiler`` (``--profile``), one more repetition runs afterwards on a fresh server
    under perf (:func:`ftscale.bench.profile.http.profiled_repetition`); it is the cell's
    ``profile``, never a sample.
    """
    started = results.now()
    server: Server | None = None
    info_before: Info | None = None
    state = "start"
    try:
        server = launcher.start(plan)
        state = "health"
        server.wait_healthy(settings.start_timeout_s)
        state = "info"
        info_before = server.info()
        spec = LoadSpec(
            host=server.host,
            port=server.port,
            path=f"/work/{plan.workload}",
            body=plan.body(),
            connections=plan.connections,
            duration_s=settings.duration_s,
        )
        state = "ceiling"
        ceiling, _ = generator.load(
            LoadSpec(
                host=server.host,
                port=server.port,
                path="/health",
                method="GET",
                connections=plan.connections,
                duration_s=settings.ceiling_s,
            ),
            probe_health=False,
        )
        state = "warmup"
        if settings.warmup_s > 0:
            generator.load(replace(spec, duration_s=settings.warmup_s), probe_health=False)
        reps: list[HttpRepetition] = []
        for index in range(settings.repetitions):
            state = f"repetition {index + 1}"
            before = server.usage()
            load, health = generator.load(spec, probe_health=True)
            after = server.usage()
            if not server.alive():
                raise ServerError("server died during the measurement", server.stderr_tail())
            cpu_pct = None
            if before is not None and after is not None and load.duration_s > 0:
                cpu_pct = round(100 * (after.cpu_seconds - before.cpu_seconds) / load.duration_s, 1)
            reps.append(
                HttpRepetition(
                    throughput_rps=load.throughput_rps,
                    requests=load.requests,
                    duration_s=load.duration_s,
                    latency_ms=load.latency_ms,
                    errors=load.errors,
                    server_cpu_pct=cpu_pct,
                    rss_bytes=after.rss_bytes if after else None,
                    pss_bytes=after.pss_bytes if after else None,
                    server_processes=after.processes if after else None,
                    health_latency_ms=health,
                    generator_cpu_pct=load.generator_cpu_pct,
                    generator_busy_pct=load.generator_busy_pct,
                    ceiling_rps=ceiling.throughput_rps,
                )
            )
            log(f"    rep {index + 1}: {load.throughput_rps:,.1f} req/s p99 {load.latency_ms.get('p99')} ms")
        state = "info-after"
        info_after = server.info()
        state = "stop"
        stop = server.stop()
        server = None
        if not stop.get("clean", True):
            log(f"    server did not stop cleanly: {stop}")
        profile = None
        if profiler is not None:  # --profile: one more repetition, on its own server, under perf
            state = "profile"
            profile = profiled_repetition(
                plan.key, lambda env: launcher.start(plan, env=env), generator, spec,
                settings.warmup_s, settings.start_timeout_s, profiler,
            )  # fmt: skip
            log(f"    profile: {profile.status} ({profile.error or f'{profile.samples} samples'})")
        flags = _flags(reps, ceiling.throughput_rps, info_before, generator.cpus)
        cell = _cell(
            plan,
            run_id,
            started,
            status="ok",
            samples=[r.throughput_rps for r in reps],
            repetitions=reps,
            flags=flags,
            gil_enabled=info_before.gil_enabled,
            info_before=info_before,
            info_after=info_after,
            profile=profile,
        )
        return cell
    except (ServerError, RuntimeError, OSError, ValueError, KeyError) as exc:
        tail = getattr(exc, "stderr_tail", "") or (server.stderr_tail() if server is not None else "")
        if server is not None:
            server.stop()
            server = None
        log(f"    failed in {state}: {exc}")
        cell = _cell(
            plan,
            run_id,
            started,
            status="failed",
            error=f"{state}: {exc}",
            stderr_tail=tail[-4000:] or None,
            info_before=info_before,
        )
        return cell
    finally:
        if server is not None:  # interrupted: leave nothing running
            server.stop(timeout_s=5)
