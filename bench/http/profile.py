"""The HTTP bench's profiled repetition: one more load, on a fresh server, under perf.

The server starts with the perf trampoline on (so Python functions show in the samples; the
measured servers never pay for it), is warmed up like a measured one, and perf attaches to its
whole process tree (workers and pool processes included) for one load. The work is the requests
served; the capacity is the server's CPUs (its affinity, from ``/info``). A failure here fails
the profile, never the cell.

Kept apart from the bench's state machine: it needs only a way to start a server with extra
environment variables, the server's process ids, and the generator.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

from ftscale.bench.http.loadgen import LoadSpec
from ftscale.bench.http.procs import ServerError
from ftscale.bench.http.session import LoadGenerator
from ftscale.bench.profile.perf import last_line
from ftscale.bench.profile.session import Profiler, failed
from ftscale.schema import Info, Profile

WORK_UNIT = "request"
PERF_MARGIN_S = 120.0  # perf's own time limit beyond the load (it is stopped when the load ends)


class ProfiledServer(Protocol):
    host: str
    port: int

    def wait_healthy(self, timeout_s: float) -> None: ...
    def info(self) -> Info: ...
    def pids(self) -> list[int]: ...
    def stop(self, timeout_s: float = ...) -> dict[str, Any]: ...


def profiled_repetition(
    key: str,
    start: Callable[[Mapping[str, str]], ProfiledServer],
    generator: LoadGenerator,
    spec: LoadSpec,
    warmup_s: float,
    start_timeout_s: float,
    profiler: Profiler,
) -> Profile:
    """Start a server with ``start(env)``, warm it up, and profile one load of ``spec`` (aimed at it)."""
    server: ProfiledServer | None = None
    try:
        server = start(profiler.env())
        server.wait_healthy(start_timeout_s)
        aimed = replace(spec, host=server.host, port=server.port)
        if warmup_s > 0:
            generator.load(replace(aimed, duration_s=warmup_s), probe_health=False)
        info = server.info()

        def one_load() -> tuple[float, float]:
            load, _ = generator.load(aimed, probe_health=False)
            return float(load.requests), load.duration_s

        return profiler.attach(
            key,
            server.pids(),
            one_load,
            gil=info.gil_enabled,
            capacity_cpus=float(len(info.cpu_affinity) or 1),
            work_unit=WORK_UNIT,
            max_seconds=aimed.duration_s + PERF_MARGIN_S,
        )
    except (ServerError, RuntimeError, OSError, ValueError, KeyError) as exc:
        return failed(f"profiled repetition: {last_line(str(exc))}")
    finally:
        if server is not None:
            profiler.forget(server.pids())  # the trampoline's map files, had perf not run
            server.stop()
