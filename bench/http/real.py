"""The real things behind the cell protocols: servers started pinned, remote servers, generators.

- :class:`Launcher` starts ``python -m ftscale.server`` for a plan under the plan's build,
  pinned to as many of the server CPUs as the plan has threads (a design at N threads gets N
  cores; a design cannot borrow a core it was not given).
- :class:`RemoteServer` is a server started elsewhere (``--target``), measured from outside only.
- :class:`SubprocessGenerator` runs each load in its own processes pinned to the client CPUs:
  wrk with one thread per client CPU, or the built-in generator in one process per client CPU
  (each pinned to its CPU, with its share of the connections and, in an open loop, of the rate
  and a schedule seeded from the load's seed and its index; their histograms merged) — so one
  generator thread is not what limits a many-core run.
  Streamed loads go to the built-in generator unless wrk was asked for by name
  (``stream_name``): wrk cannot time a stream's first byte or the gaps between its events.
- :func:`calibrate_ceilings` measures what the generator reaches against a server that costs
  nothing (:mod:`ftscale.bench.http.trivial`), on the server CPUs, with each cell's request shape
  and connection count, before anything is measured.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ftscale.bench import histogram
from ftscale.bench.http import arrivals as schedules
from ftscale.bench.http import mix as mixes
from ftscale.bench.http.cell import Plan
from ftscale.bench.http.gencheck import ceiling_key, request_shape
from ftscale.bench.http.loadgen import PERCENTILES, LoadSpec, percentiles_ms, probe_health, run_wrk
from ftscale.bench.http.procs import ServerError, ServerProcess, http_json, read_info
from ftscale.bench.http.zygote import Zygote, forkable
from ftscale.errors import UsageError
from ftscale.schema import Expect, HealthProbe, Info, LoadResult, parse
from ftscale.server.sockets import free_port
from ftscale.vocab import Arrival

RUN_ENV = "FTSCALE_RUN_ID"  # set in every server's environment: which run started it


class Launcher:
    """Starts servers; ``extra`` arguments go to every one (``--app ...`` for a user's app, whose
    /health and /info are under ``prefix``)."""

    def __init__(
        self,
        pythons: dict[str, Path],
        cpus: list[int],
        run_id: str,
        extra: Sequence[str] = (),
        prefix: str = "",
        zygotes: Mapping[str, Zygote] | None = None,
    ) -> None:
        self.pythons, self.cpus, self.run_id, self.extra = pythons, cpus, run_id, list(extra)
        self.prefix = prefix
        self.zygotes = dict(zygotes or {})

    def cpus_for(self, plan: Plan) -> list[int]:
        """The first ``threads`` server CPUs (all of them when there are fewer)."""
        return self.cpus[: max(1, plan.threads)] if self.cpus else []

    def start(self, plan: Plan, env: Mapping[str, str] | None = None) -> ServerProcess:
        """A fresh server for ``plan``: forked from its build's zygote where there is one and the
        environment allows it (:func:`ftscale.bench.http.zygote.forkable`), else a new process."""
        port = free_port()
        args = [
            "--mode",
            plan.mode,
            "--topology",
            plan.topology,
            "--threads",
            str(plan.threads),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            "--server",
            plan.server,
            *(["--runtime-threads", str(plan.runtime_threads)] if plan.runtime_threads != 1 else []),
            *plan.server_args,
            *self.extra,
        ]
        env = {RUN_ENV: self.run_id, **(env or {})}
        cpus, cwd = self.cpus_for(plan), Path.cwd()
        zygote = self.zygotes.get(plan.build)
        if zygote is not None and forkable(env):
            args += ["--start-method", "fork"]
            return ServerProcess(args, "127.0.0.1", port, cpus, cwd, env, prefix=self.prefix, zygote=zygote)
        cmd = [str(self.pythons[plan.build]), "-m", "ftscale.server", *args]
        return ServerProcess(cmd, "127.0.0.1", port, cpus, cwd, env, prefix=self.prefix)


class RemoteServer:
    """A server started elsewhere (``--target``): measured from outside only."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise UsageError(f"--target must be an http:// URL, got {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.url = url.rstrip("/")

    def start(self, plan: Plan, env: Mapping[str, str] | None = None) -> RemoteServer:
        return self

    def pids(self) -> list[int]:
        return []

    def wait_healthy(self, timeout_s: float) -> None:
        try:
            http_json(f"{self.url}/health", timeout=timeout_s)
        except (OSError, ValueError) as exc:
            raise ServerError(f"{self.url}/health: {exc}") from None

    def alive(self) -> bool:
        return True

    def info(self) -> Info:
        return read_info(self.url)

    def usage(self) -> None:
        return None

    def stderr_tail(self, limit: int = 4000) -> str:
        return ""

    def stop(self, timeout_s: float = 15.0) -> dict[str, Any]:
        return {"remote": True}


def _loadgen(what: str, spec: LoadSpec, threads: int = 1) -> list[str]:
    cmd = [
        sys.executable, "-m", "ftscale.bench.http.loadgen", what,
        "--host", spec.host, "--port", str(spec.port), "--path", spec.path, "--method", spec.method,
        "--body", spec.body.decode(), "--connections", str(spec.connections),
        "--duration", str(spec.duration_s), "--threads", str(threads),
    ]  # fmt: skip
    if spec.rate:
        cmd += ["--rate", str(spec.rate), "--arrivals", spec.arrivals, "--seed", str(spec.seed)]
        cmd += ["--phase", str(spec.phase)] if spec.phase else []
    if spec.mix_file:
        cmd += ["--mix", spec.mix_file, "--sequence", str(spec.sequence)]
    if spec.stream:
        cmd.append("--stream")
    return cmd


def merge(parts: Sequence[LoadResult], rate: float | None) -> LoadResult:
    """One result of several generator processes that ran side by side."""
    if len(parts) == 1:
        return parts[0]
    counts = histogram.merge(p.latency_histogram or {} for p in parts)
    errors: dict[str, int] = {}
    for part in parts:
        for key, n in part.errors.items():
            errors[key] = errors.get(key, 0) + n
    duration = max(p.duration_s for p in parts)
    requests = sum(p.requests for p in parts)
    busy = [p.generator_busy_max_pct for p in parts if p.generator_busy_max_pct is not None]
    lags = [p.send_lag_p99_ms for p in parts if p.send_lag_p99_ms is not None]

    def total(values: Sequence[int | None]) -> int | None:
        return None if any(v is None for v in values) else sum(v or 0 for v in values)

    return LoadResult(
        **merge_streams(parts),
        generator=parts[0].generator,
        requests=requests,
        duration_s=duration,
        throughput_rps=sum(p.throughput_rps for p in parts),
        latency_ms=percentiles_ms(counts) if counts else {k: None for k in PERCENTILES},
        errors=errors,
        generator_cpu_pct=round(sum(p.generator_cpu_pct for p in parts), 1),
        generator_cpus=len(parts),
        open_loop_rate=rate,
        generator_busy_pct=round(sum(p.generator_busy_pct or 0.0 for p in parts), 1),
        # a busy reading missing from one process is missing: the busiest may be that one
        generator_busy_max_pct=max(busy) if busy and len(busy) == len(parts) else None,
        generator_threads=len(parts),
        latency_histogram=counts,
        send_lag_p99_ms=max(lags) if lags else None,
        arrivals=parts[0].arrivals,
        arrival_seed=parts[0].arrival_seed,
        due_requests=total([p.due_requests for p in parts]),
        window_requests=total([p.window_requests for p in parts]),
    )


def merge_streams(parts: Sequence[LoadResult]) -> dict[str, Any]:
    """The streaming fields of side-by-side results: counts added, histograms merged."""
    if all(p.chunks is None for p in parts):
        return {}
    ttfb = histogram.merge(p.ttfb_histogram or {} for p in parts)
    gaps = histogram.merge(p.gap_histogram or {} for p in parts)
    timed = any(p.ttfb_histogram is not None for p in parts)
    return {
        "chunks": sum(p.chunks or 0 for p in parts),
        "chunks_per_s": sum(p.chunks_per_s or 0.0 for p in parts),
        "ttfb_ms": percentiles_ms(ttfb) if timed else None,
        "ttfb_histogram": ttfb if timed else None,
        "gap_histogram": gaps if timed else None,
        "gap_p99_ms": percentiles_ms(gaps)["p99"] if timed else None,
    }


def process_specs(spec: LoadSpec, cpus: int) -> list[LoadSpec]:
    """``spec`` split between one built-in generator process per client CPU (at most one per
    connection): each its share of the connections and of the rate, its own request sequence and,
    in an open loop, its own schedule, seeded from the load's seed and its index (uniform ones
    offset from each other, so that the processes do not send together)."""
    k = max(1, min(cpus, spec.connections))
    share = replace(
        spec, rate=spec.rate / k if spec.rate else None, connections=max(1, spec.connections // k)
    )
    return [
        replace(
            share,
            sequence=share.sequence * k + index,
            seed=schedules.derive_seed(spec.seed, "process", index) if spec.rate else 0,
            phase=index / k if spec.rate and spec.arrivals == Arrival.UNIFORM else 0.0,
        )
        for index in range(k)
    ]


class SubprocessGenerator:
    """Runs each load (and the /health probe) in processes pinned to the client CPUs.

    ``stream_name`` is the generator for streamed loads (the built-in one unless wrk was asked for).
    """

    def __init__(self, name: str, cpus: list[int], stream_name: str = "python") -> None:
        self.name, self.client_cpus, self.stream_name = name, cpus, stream_name

    def name_for(self, spec: LoadSpec) -> str:
        """The generator that applies ``spec``: the built-in one for open loops, see ``stream_name``."""
        if spec.rate:
            return "python"
        return self.stream_name if spec.stream else self.name

    def _python(self, spec: LoadSpec) -> LoadResult:
        """The built-in generator in one process per client CPU, each pinned to its CPU."""
        procs = []
        for index, mine in enumerate(process_specs(spec, len(self.client_cpus))):
            proc = subprocess.Popen(
                _loadgen("python", mine),
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            os.sched_setaffinity(proc.pid, {self.client_cpus[index % len(self.client_cpus)]})
            procs.append(proc)
        parts = []
        for proc in procs:
            out, err = proc.communicate(timeout=spec.duration_s + 120)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"the built-in generator failed (exit {proc.returncode}): {err.strip()[-400:]}"
                )
            parts.append(parse(LoadResult, out, "the built-in generator"))
        merged = merge(parts, spec.rate)
        return merged.model_copy(update={"arrival_seed": spec.seed}) if spec.rate else merged

    def load(self, spec: LoadSpec, probe_health: bool) -> tuple[LoadResult, HealthProbe | None]:
        """Apply ``spec``; with ``probe_health``, /health is probed meanwhile from a thread of this
        process pinned to the client CPUs (no interpreter to start: the probe spans the load)."""
        probe = HealthThread(spec, self.client_cpus) if probe_health else None
        if probe is not None:
            probe.start()
        name = self.name_for(spec)
        try:
            if name == "python":
                result = self._python(spec)
            else:  # wrk, started from here pinned to the client CPUs
                result = run_wrk(spec, len(self.client_cpus), self.client_cpus)
        finally:
            health = None
            if probe is not None:
                probe.join(spec.duration_s + 60)
                health = probe.result
        return result, health


class HealthThread(threading.Thread):
    """The /health probe of one load, in a thread pinned to the client CPUs (Linux pins threads)."""

    def __init__(self, spec: LoadSpec, cpus: Sequence[int]) -> None:
        super().__init__(name="ftscale-health-probe", daemon=True)
        self.spec, self.cpus = spec, list(cpus)
        self.result: HealthProbe | None = None

    def run(self) -> None:
        if self.cpus:
            os.sched_setaffinity(0, set(self.cpus))
        try:
            self.result = probe_health(
                self.spec.host, self.spec.port, self.spec.duration_s, path=self.spec.health_path
            )
        except (OSError, RuntimeError, ValueError):
            self.result = None


Request = tuple[tuple[str, Any], ...]  # a plan's request (LoadSpec fields), hashable


def request_of(plan: Plan) -> Request:
    """What a plan sends, as :func:`calibrate_ceilings` takes it."""
    return tuple(sorted(plan.request().items()))


def _calibration_request(request: Request, scratch: Path) -> dict[str, Any]:
    """The plan's request for the trivial server: the same shape, without the answers it expects
    (the trivial server answers everything 200 with the same small JSON; a health path is not sent)."""
    fields = {k: v for k, v in request if k != "health_path"}
    if fields.get("mix_file"):
        mix = mixes.read_load_mix(fields["mix_file"])
        plain = mix.model_copy(
            update={"requests": [r.model_copy(update={"expect": Expect()}) for r in mix.requests]}
        )
        path = scratch / "mix.json"
        path.write_text(plain.model_dump_json())
        fields["mix_file"] = str(path)
    return fields


def calibrate_ceilings(
    generator: SubprocessGenerator,
    server_cpus: list[int],
    loads: Sequence[tuple[str, int, Request]],
    seconds: float = 1.0,
) -> dict[str, float]:
    """Requests per second the generator reaches against a server that costs nothing.

    The trivial server runs on the server CPUs (one process per CPU), the generator as it will
    in the cells, with the cells' requests (path, method, body, or their mix); one measurement per
    (load kind, connections, request) in ``loads``, filed by :func:`~.gencheck.ceiling_key`. An
    open-loop generator is measured closed-loop here: its ceiling is the fastest it can send.
    """
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "ftscale.bench.http.trivial",
        "--port",
        str(port),
        "--processes",
        str(len(server_cpus)),
    ]
    server = ServerProcess(cmd, "127.0.0.1", port, server_cpus, Path.cwd())
    ceilings: dict[str, float] = {}
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                http_json(f"{server.url}/", timeout=1)
                break
            except (OSError, ValueError) as exc:
                if time.monotonic() > deadline or not server.alive():
                    raise ServerError(
                        f"the trivial server did not start: {exc}", server.stderr_tail()
                    ) from None
                time.sleep(0.1)
        with tempfile.TemporaryDirectory(prefix="ftscale-calibrate-") as scratch:
            for load, connections, request in loads:
                fields = _calibration_request(request, Path(scratch))
                spec = LoadSpec(
                    host="127.0.0.1", port=port, **fields, connections=connections, duration_s=seconds
                )
                if load == "open":  # the built-in generator, flat out (closed loop): the fastest it can send
                    result = generator._python(spec)
                else:
                    result, _ = generator.load(spec, probe_health=False)
                key = ceiling_key(load, connections, request_shape(dict(request)))
                ceilings[key] = result.throughput_rps
    finally:
        server.stop(timeout_s=5)
    return ceilings
