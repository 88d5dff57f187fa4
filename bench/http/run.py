"""``ftscale bench``: the HTTP scaling sweep, one server per cell.

The quick default compares 3.14 and 3.14t; ``--full`` covers every build, workload, mode and
topology. The machine's CPUs are split (SMT-aware): the server is pinned to most of them, the
load generator and the /health probe to the rest (``--server-cpus`` / ``--client-cpus``), and
both are recorded. Cells are measured and written by the run engine (:mod:`ftscale.bench.engine`),
which also handles ``--resume``, ``--budget``, signals and the report. ``--target URL`` drives a
server started elsewhere instead.

What it does not do: it does not tune the kernel, isolate CPUs or fix clock frequencies; the
report shows the affinity, the governor and the per-cell variation so a reader can judge the noise.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ftscale.bench import engine, machine, results
from ftscale.bench.env import provision
from ftscale.bench.env import venv as envs
from ftscale.bench.http.cell import Plan, Settings, measure
from ftscale.bench.http.loadgen import LoadSpec, wrk_path, wrk_version
from ftscale.bench.http.options import MODES, QUICK_BUILDS, QUICK_WORKLOADS, TOPOLOGIES, build_parser
from ftscale.bench.http.procs import ServerError, ServerProcess, free_port, http_json, read_info, run_pinned
from ftscale.bench.options import choose, parse_threads
from ftscale.bench.profile import session as profile

from ftscale import workloads
from ftscale.errors import UsageError
from ftscale.schema import HealthProbe, Info, LoadResult, RunMeta, parse
from ftscale.vocab import Flag

RUN_ENV = "FTSCALE_RUN_ID"  # set in every server's environment: which run started it
# --full: every mode on one process, and the multi-process / multi-loop topologies with the
# modes that make sense there (one CPU-bound request at a time per worker or loop).
FULL_COMBOS = (
    ("inline", "single"),
    ("threadpool", "single"),
    ("executor", "single"),
    ("process", "single"),
    ("inline", "workers"),
    ("threadpool", "workers"),
    ("inline", "loops"),
    ("threadpool", "loops"),
)


def parse_cpus(text: str) -> list[int]:
    """``"0-3,8"`` -> [0, 1, 2, 3, 8]."""
    try:
        return machine.parse_cpu_list(text)
    except ValueError:
        raise UsageError(f"bad CPU list {text!r}: use e.g. 0-3,8") from None


def split_cpus(available: Sequence[int]) -> tuple[list[int], list[int]]:
    """The default (server, client) split of ``available``: SMT-aware, see :func:`machine.split_cpus`."""
    try:
        return machine.split_cpus(available, machine.cpu_topology(cpus=list(available)))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def default_threads(server_cpus: int) -> list[int]:
    """1, 2, 4, ... up to the server's CPUs, and at least [1, 2]."""
    counts, n = [], 1
    while n <= max(2, server_cpus):
        counts.append(n)
        n *= 2
    if server_cpus > 2 and counts[-1] != server_cpus:
        counts.append(server_cpus)
    return counts


def connections_for(threads: int, io_wait_s: float) -> int:
    """Enough requests in flight to keep N threads busy: 2N, 4N when requests mostly wait.

    Both stay within the service's default admission limit (pool + 4 x pool), so a default
    run measures throughput, not 503s; ``--connections`` can push past it on purpose.
    """
    return max(4, 4 * threads) if io_wait_s else max(4, 2 * threads)


@dataclass(frozen=True)
class Matrix:
    builds: list[str]
    workloads: list[str]
    combos: list[tuple[str, str]]
    threads: list[int]
    sizes: dict[str, int]
    connections: int | None

    def plans(self) -> list[Plan]:
        return [
            self.plan(build, name, mode, topology, n)
            for build in self.builds
            for name in self.workloads
            for mode, topology in self.combos
            for n in self.threads
        ]

    def plan(self, build: str, name: str, mode: str, topology: str, threads: int) -> Plan:
        """One cell of this matrix (or of a remote server's own configuration)."""
        w = workloads.get(name)
        return Plan(
            build=build,
            workload=name,
            workload_class=w.workload_class.value,
            size=self.sizes.get(name, w.default_size),
            mode=mode,
            topology=topology,
            threads=threads,
            connections=self.connections or connections_for(threads, w.io_wait_s),
        )


# --- real servers and generators --------------------------------------------------------------


class Launcher:
    def __init__(
        self, pythons: dict[str, Path], cpus: list[int], run_id: str, extra: Sequence[str] = ()
    ) -> None:
        self.pythons, self.cpus, self.run_id, self.extra = pythons, cpus, run_id, list(extra)

    def start(self, plan: Plan, env: Mapping[str, str] | None = None) -> ServerProcess:
        port = free_port()
        cmd = [
            str(self.pythons[plan.build]),
            "-m",
            "ftscale.server",
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
            *self.extra,
        ]
        return ServerProcess(
            cmd, "127.0.0.1", port, self.cpus, Path.cwd(), {RUN_ENV: self.run_id, **(env or {})}
        )


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

    def pids(self) -> list[int]:
        return []

    def stderr_tail(self, limit: int = 4000) -> str:
        return ""

    def stop(self, timeout_s: float = 15.0) -> dict[str, Any]:
        return {"remote": True}


class SubprocessGenerator:
    """Runs each load (and the /health probe) in its own process pinned to the client CPUs."""

    def __init__(self, name: str, cpus: list[int]) -> None:
        self.name, self.client_cpus = name, cpus
        self.cpus = len(cpus)

    def _cmd(self, what: str, spec: LoadSpec) -> list[str]:
        return [
            sys.executable,
            "-m",
            "ftscale.bench.http.loadgen",
            what,
            "--host",
            spec.host,
            "--port",
            str(spec.port),
            "--path",
            spec.path,
            "--method",
            spec.method,
            "--body",
            spec.body.decode(),
            "--connections",
            str(spec.connections),
            "--duration",
            str(spec.duration_s),
            "--threads",
            str(self.cpus),
        ]

    def load(self, spec: LoadSpec, probe_health: bool) -> tuple[LoadResult, HealthProbe | None]:
        probe = None
        if probe_health:
            probe = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ftscale.bench.http.loadgen",
                    "health",
                    "--host",
                    spec.host,
                    "--port",
                    str(spec.port),
                    "--duration",
                    str(spec.duration_s),
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            os.sched_setaffinity(probe.pid, set(self.client_cpus))
        try:
            out = run_pinned(self._cmd(self.name, spec), self.client_cpus, spec.duration_s + 90, Path.cwd())
        finally:
            health = None
            if probe is not None:
                probe_out, _ = probe.communicate(timeout=spec.duration_s + 60)
                if probe.returncode == 0 and probe_out:
                    health = parse(HealthProbe, probe_out, "the /health probe")
        return parse(LoadResult, out, f"the {self.name} generator"), health


# --- the command --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Job:
    run_dir: Path
    resuming: bool
    matrix: Matrix
    settings: Settings
    server_cpus: list[int]
    client_cpus: list[int]
    generator: str
    target: str | None
    shared_cpus: bool
    server_python: Path | None
    argv: list[str]
    profile: bool = False  # --profile: one extra repetition per cell under perf


def plan_job(args: argparse.Namespace, argv: list[str]) -> Job:
    """Validate every argument and work out the whole job before anything starts."""
    args, place = engine.open_run(args, "http", lambda saved: build_parser().parse_args(saved))
    if place.resuming:
        argv = list(results.RunDir(place.path).read_meta().config.get("argv", []))
    if args.repetitions < 1:
        raise UsageError("--repetitions must be 1 or more")
    if args.duration <= 0 or args.warmup < 0:
        raise UsageError("--duration must be positive and --warmup not negative")
    if args.connections is not None and args.connections < 1:
        raise UsageError("--connections must be 1 or more")
    if args.server_python:
        if not os.access(args.server_python, os.X_OK):
            raise UsageError(f"--server-python {args.server_python}: not an executable")
        builds = [envs.describe("server-python", args.server_python).build]
    else:
        default = provision.BUILDS if args.full else QUICK_BUILDS
        builds = choose(args.builds, default, provision.BUILDS, "build")
    try:
        if args.workloads:
            names = [w.name for w in workloads.select(args.workloads)]
        else:
            names = list(workloads.REGISTRY) if args.full else list(QUICK_WORKLOADS)
    except workloads.UnknownWorkload as exc:
        raise UsageError(str(exc)) from None
    if args.modes or args.topologies or not args.full:
        modes = choose(args.modes, ["threadpool"], MODES, "mode")
        tops = choose(args.topologies, ["single"], TOPOLOGIES, "topology")
        combos = [(m, t) for t in tops for m in modes]
    else:
        combos = list(FULL_COMBOS)
    sizes: dict[str, int] = {}
    for item in args.size:
        name, _, value = item.partition("=")
        try:
            sizes[name] = workloads.get(name).check_size(int(value))
        except (workloads.UnknownWorkload, workloads.InvalidSize) as exc:
            raise UsageError(str(exc)) from None
        except ValueError:
            raise UsageError(f"--size wants WORKLOAD=N, got {item!r}") from None
    available = sorted(os.sched_getaffinity(0))
    if args.server_cpus or args.client_cpus:
        default_server, default_client = split_cpus(available)
        server = parse_cpus(args.server_cpus) if args.server_cpus else default_server
        client = parse_cpus(args.client_cpus) if args.client_cpus else default_client
    else:
        server, client = split_cpus(available)
    outside = sorted(set(server + client) - set(available))
    if outside:
        raise UsageError(f"CPUs {outside} are not available to this process (available: {available})")
    shared = bool(set(server) & set(client))
    if shared and not args.allow_shared_cpus:
        raise UsageError(
            f"server CPUs {server} and client CPUs {client} overlap; pass --allow-shared-cpus to accept"
        )
    threads = parse_threads(args.threads) if args.threads else default_threads(len(server))
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if wrk_path() else "python"
    elif generator == "wrk" and not wrk_path():
        raise UsageError(
            "--generator wrk: wrk is not installed (apt-get install wrk), or use --generator python"
        )
    if args.target:
        RemoteServer(args.target)  # validates the URL
        if args.profile:
            raise UsageError("--profile needs servers this bench starts; it cannot profile --target")
    return Job(
        run_dir=place.path,
        resuming=place.resuming,
        matrix=Matrix(builds, names, combos, threads, sizes, args.connections),
        settings=Settings(
            duration_s=args.duration,
            warmup_s=args.warmup,
            repetitions=args.repetitions,
            ceiling_s=min(1.0, args.duration),
        ),
        server_cpus=server,
        client_cpus=client,
        generator=generator,
        target=args.target,
        shared_cpus=shared,
        server_python=args.server_python,
        argv=argv,
        profile=args.profile,
    )


def _remote_plans(job: Job, server: RemoteServer) -> list[Plan]:
    info = server.info()
    build = info.interpreter.build
    return [
        job.matrix.plan(build, name, info.mode, info.topology, info.threads) for name in job.matrix.workloads
    ]


def _meta(job: Job) -> RunMeta:
    return RunMeta(
        run_id=job.run_dir.name,
        kind="http",
        created=results.now(),
        host=results.collect_host(),
        git=results.collect_git(),
        config={
            "argv": job.argv,
            "server_cpus": job.server_cpus,
            "client_cpus": job.client_cpus,
            "shared_cpus": job.shared_cpus,
            "settings": asdict(job.settings),
            "matrix": {
                "builds": job.matrix.builds,
                "workloads": job.matrix.workloads,
                "combos": job.matrix.combos,
                "threads": job.matrix.threads,
                "sizes": job.matrix.sizes,
            },
            "target": job.target,
        },
        generator={
            "name": job.generator,
            "version": wrk_version() if job.generator == "wrk" else sys.version.split()[0],
            "cpus": job.client_cpus,
            "loop": "closed",
            "connections": job.matrix.connections or "2 x threads (min 4); 4 x threads for I/O workloads",
        },
    )


def cell_seconds(settings: Settings, profiled: bool = False) -> float:
    """The bench's estimate of one cell's duration before any has been measured."""
    reps = settings.repetitions + (1 if profiled else 0)
    starts = 2.0 + (2.0 + settings.warmup_s if profiled else 0.0)
    return starts + settings.ceiling_s + settings.warmup_s + reps * (settings.duration_s + 0.5)


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``ftscale bench``: plan, prepare the builds, sweep, report."""
    slot_started = results.now()
    job = plan_job(args, list(argv))
    rundir = results.RunDir(job.run_dir)
    remote = RemoteServer(job.target) if job.target else None
    launcher: Any
    if remote is not None:
        plans = _remote_plans(job, remote)
        launcher = remote
        builds = {}
    elif job.server_python is not None:
        build = job.matrix.builds[0]
        builds = {build: envs.describe(build, job.server_python)}
        plans = job.matrix.plans()
        launcher = Launcher({build: job.server_python}, job.server_cpus, job.run_dir.name)
    else:
        print(f"preparing builds {', '.join(job.matrix.builds)}", flush=True)
        builds = envs.prepare(job.matrix.builds, log=lambda m: print(m, flush=True))
        plans = job.matrix.plans()
        launcher = Launcher(
            {b: envs.env_python(b) for b in job.matrix.builds}, job.server_cpus, job.run_dir.name
        )
    profiling = profile.open_profiler(job.run_dir) if job.profile else None
    if not rundir.meta_path.exists():
        meta = _meta(job)
        if profiling is not None:
            config = {**meta.config, "profile": profile.run_config(profiling)}
            meta = meta.model_copy(update={"config": config, "notes": profile.run_notes(profiling)})
        rundir.write_meta(meta)
    for info in builds.values():
        rundir.add_build(info)
    generator = SubprocessGenerator(job.generator, job.client_cpus)
    print(
        f"server CPUs {job.server_cpus}, client CPUs {job.client_cpus}, generator {job.generator}",
        flush=True,
    )

    def one(plan: Plan) -> Any:
        profiler = profiling if isinstance(profiling, profile.Profiler) else None
        cell = measure(plan, job.run_dir.name, launcher, generator, job.settings, profiler=profiler)
        if job.shared_cpus and cell.status == "ok":
            cell = cell.model_copy(update={"flags": [*cell.flags, str(Flag.SHARED_CPUS)]})
        return cell

    outcome = engine.sweep(
        rundir,
        plans,
        one,
        lambda p: f"{p.build} {p.workload} {p.mode}/{p.topology} t={p.threads}",
        cell_seconds(job.settings, job.profile),
        budget_s=args.budget,
    )
    return engine.finish(
        rundir, outcome, slot_started, f"ftscale bench --resume {job.run_dir.name}", args.no_report
    )


def command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """The ``ftscale bench`` command, with the engine's signal handling and exit statuses."""
    return engine.main_guard("ftscale bench", lambda: run(args, argv))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return engine.main_guard("ftscale bench", lambda: run(build_parser().parse_args(argv), argv))


if __name__ == "__main__":
    sys.exit(main())
