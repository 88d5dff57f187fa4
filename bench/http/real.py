"""The real things behind the cell protocols: servers started pinned, remote servers, generators.

- :class:`Launcher` starts ``python -m ftscale.server`` for a plan under the plan's build,
  pinned to as many of the server CPUs as the plan has threads (a design at N threads gets N
  cores; a design cannot borrow a core it was not given).
- :class:`RemoteServer` is a server started elsewhere (``--target``), measured from outside only.
- :class:`SubprocessGenerator` runs each load in its own processes pinned to the client CPUs,
  through the generator's :data:`~ftscale.bench.http.loadgen.RUNNERS` entry: wrk with one thread
  per client CPU, or the built-in generator in one process per client CPU
  (:mod:`ftscale.bench.http.loadgen.processes`) — so one generator thread is not what limits a
  many-core run.
  Streamed loads go to the built-in generator unless wrk was asked for by name
  (``stream_name``): wrk cannot time a stream's first byte or the gaps between its events.
- :func:`calibrate_ceilings` measures what the generator reaches against a server that costs
  nothing (:mod:`ftscale.bench.http.trivial`), on the server CPUs, with each cell's request shape
  and connection count, before anything is measured.
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ftscale.bench.http import mix as mixes
from ftscale.bench.http.cells import CellSpec
from ftscale.bench.http.gencheck import ceiling_key, request_shape
from ftscale.bench.http.loadgen import RUNNERS, LoadSpec, probe_health
from ftscale.bench.http.procs import ServerError, ServerProcess, http_json, read_info
from ftscale.bench.http.zygote import Zygote, forkable
from ftscale.errors import UsageError
from ftscale.schema import Expect, HealthProbe, Info, LoadResult
from ftscale.server.sockets import free_port
from ftscale.vocab import GENERATORS, Generator, LoadKind

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

    def cpus_for(self, plan: CellSpec) -> list[int]:
        """The first ``threads`` server CPUs (all of them when there are fewer)."""
        return self.cpus[: max(1, plan.threads)] if self.cpus else []

    def start(self, plan: CellSpec, env: Mapping[str, str] | None = None) -> ServerProcess:
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
            return ServerProcess(
                cmd=args,
                host="127.0.0.1",
                port=port,
                cpus=cpus,
                cwd=cwd,
                env=env,
                prefix=self.prefix,
                zygote=zygote,
            )
        cmd = [str(self.pythons[plan.build]), "-m", "ftscale.server", *args]
        return ServerProcess(
            cmd=cmd, host="127.0.0.1", port=port, cpus=cpus, cwd=cwd, env=env, prefix=self.prefix
        )


class RemoteServer:
    """A server started elsewhere (``--target``): measured from outside only."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise UsageError(f"--target must be an http:// URL, got {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.url = url.rstrip("/")

    def start(self, plan: CellSpec, env: Mapping[str, str] | None = None) -> RemoteServer:
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


class SubprocessGenerator:
    """Runs each load (and the /health probe) in processes pinned to the client CPUs, with the
    generator's :data:`~ftscale.bench.http.loadgen.RUNNERS` entry.

    ``stream_name`` is the generator for streamed loads (the built-in one unless wrk was asked for).
    An open loop goes to the generator asked for if it offers open loops, else to the built-in one.
    """

    def __init__(self, name: str, cpus: list[int], stream_name: str = Generator.PYTHON) -> None:
        self.name: str = Generator(name)  # a str for the cells' Generator protocol; a vocab Generator
        self.client_cpus, self.stream_name = cpus, Generator(stream_name)

    def choose(self, stream: bool, open_loop: bool) -> Generator:
        """The generator for a load that streams or not, in an open loop or not."""
        wanted = self.stream_name if stream else Generator(self.name)
        if open_loop and LoadKind.OPEN not in GENERATORS[wanted].loads:
            return Generator.PYTHON
        return wanted

    def name_for(self, spec: LoadSpec) -> Generator:
        """The generator that applies ``spec`` (:meth:`choose`)."""
        return self.choose(spec.stream, open_loop=bool(spec.rate))

    def run(self, name: Generator, spec: LoadSpec) -> LoadResult:
        """``spec`` applied by ``name`` from the client CPUs, without a /health probe."""
        return RUNNERS[name].spread(spec, self.client_cpus)

    def load(self, spec: LoadSpec, probe_health: bool) -> tuple[LoadResult, HealthProbe | None]:
        """Apply ``spec``; with ``probe_health``, /health is probed meanwhile from a thread of this
        process pinned to the client CPUs (no interpreter to start: the probe spans the load)."""
        probe = HealthThread(spec, self.client_cpus) if probe_health else None
        if probe is not None:
            probe.start()
        try:
            result = self.run(self.name_for(spec), spec)
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


def request_of(plan: CellSpec) -> Request:
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
    server = ServerProcess(cmd=cmd, host="127.0.0.1", port=port, cpus=server_cpus, cwd=Path.cwd())
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
                if load == LoadKind.OPEN:  # its open loops' generator, flat out: the fastest it can send
                    result = generator.run(generator.choose(spec.stream, open_loop=True), spec)
                else:
                    result, _ = generator.load(spec, probe_health=False)
                key = ceiling_key(load, connections, request_shape(dict(request)))
                ceilings[key] = result.throughput_rps
    finally:
        server.stop(timeout_s=5)
    return ceilings
