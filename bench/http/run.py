"""``ftscale bench``: the HTTP scaling sweep, a fresh server per repetition.

A preset (``--preset quick|full|reference``, see :mod:`ftscale.bench.http.options`) says which
builds, workloads and designs are measured; options override any part of it. The machine's CPUs
are split (SMT-aware): the server gets whole cores, and at N threads it is pinned to N of them;
the load generator and the /health probe get the rest (``--server-cpus`` / ``--client-cpus``),
and both are recorded. Before measuring, the generator's ceiling is calibrated against a server
that costs nothing. Cells are measured in groups (one workload at one thread count, every design
and build side by side, repetitions interleaved) and written by the run engine
(:mod:`ftscale.bench.engine`), which also handles ``--resume``, ``--budget``, signals and the
report. ``--target URL`` drives a server started elsewhere instead.

What it does not do: it does not tune the kernel, isolate CPUs or fix clock frequencies; the
report shows the affinity, the governor and the per-cell variation so a reader can judge the noise.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ftscale import engines, workloads
from ftscale.bench import engine, machine, results
from ftscale.bench.env import provision
from ftscale.bench.env import venv as envs
from ftscale.bench.http import arrivals as schedules
from ftscale.bench.http import capacity, ceiling, confirm
from ftscale.bench.http.ceiling import CeilingGroup
from ftscale.bench.http.cell import (
    AppRequests,
    Group,
    Plan,
    Settings,
    measure_confirmation,
    measure_group,
    server_label,
)
from ftscale.bench.http.confirm import ConfirmGroup
from ftscale.bench.http.loadgen import wrk_path, wrk_version
from ftscale.bench.http.options import PRESETS, Design, Preset, build_parser
from ftscale.bench.http.real import (
    Launcher,
    RemoteServer,
    Request,
    SubprocessGenerator,
    calibrate_ceilings,
    request_of,
)
from ftscale.bench.http.zygote import Zygote, start_zygotes
from ftscale.bench.intervals import DEFAULT_MARGIN
from ftscale.bench.options import choose, parse_threads
from ftscale.bench.profile import session as profile
from ftscale.errors import UsageError
from ftscale.schema import Build, HttpCell, MicroCell, RunMeta, Selection
from ftscale.vocab import DEFAULT_SERVER, Arrival, Flag, HttpServer, Topology, WorkloadClass

# What one repetition costs besides its warm-up and load, before any was measured: the server's
# start (until /health answers) and stop, /info before and after, the usage and memory readings,
# the generator's and the probe's own start. Per way of starting servers (--server-start),
# measured on the 2-core development machine: forked from a zygote, the quick preset's 54
# exploration repetitions took 124 s and its 60 confirmation repetitions 112 s, each 1.5 s of
# warm-up and load (start and stop alone: 0.26 s, median of 114); spawned, 72 repetitions in
# 510 s with 2.5 s of each warm-up and load (results/20261126T012948Z-http-vm).
REPETITION_OVERHEAD_S = {"fork": 0.36, "spawn": 4.5}
# What a stock deployment adds to that (it starts and stops its workers its own way: uvicorn
# --workers spawns fresh interpreters, gunicorn's arbiter forks and reaps), measured the same way:
# start and stop took 2.81 s (uvicorn --workers) and 0.42 s (gunicorn) against ftscale's 0.26 s.
TOPOLOGY_OVERHEAD_S = {"gunicorn": 0.16, "uvicorn-workers": 2.55}
# What --dry-run assumes a design's closed-loop median to be when it estimates a capacity search,
# which cannot be known before the design is measured: about what the quick workloads reach on one
# thread of the development machine (nbody 80 req/s, results/20261126T012948Z-http-vm). A faster
# design's search is shorter (its steps reach 1,000 requests sooner).
ASSUMED_CAP_RPS = 80.0


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
    """1, 2, 4, ... up to the server's CPUs (and the server's CPU count itself).

    Never more threads than server CPUs: such a point measures oversubscription, and cannot
    carry a verdict (``--threads`` still measures one on purpose, flagged).
    """
    counts, n = [], 1
    while n <= max(1, server_cpus):
        counts.append(n)
        n *= 2
    if server_cpus > 2 and counts[-1] != server_cpus:
        counts.append(server_cpus)
    return counts


def quarter_threads(server_cpus: int) -> list[int]:
    """1, N/4, N/2 and N of the N server CPUs (rounded down, at least 1, each once): the sizes a
    short window compares at (``--preset headline``)."""
    n = max(1, server_cpus)
    return sorted({1, max(1, n // 4), max(1, n // 2), n})


def connections_for(threads: int, io_wait_s: float, streamed: bool = False) -> int:
    """Enough requests in flight to keep N threads busy: 2N, 4N when requests mostly wait.

    A sweep calls it once per workload, with the most threads it measures, and every design and
    thread count of that workload gets the same connections: the thread axis then changes only
    the threads, not the offered concurrency too (:attr:`Matrix.connections_of`). Every server
    admits all of them (:attr:`~ftscale.bench.http.cell.Plan.server_args`), so a run measures
    throughput, never 503s of its own making.
    Streams: 16N concurrent streams (at least 16). A stream spends most of its life awaiting the
    upstream (``stream_tokens``: 10 ms before each chunk of about 1 ms of CPU), so it takes about
    a tenth of a core, and 16 per thread keep every thread busy with room to queue.
    """
    if streamed:
        return max(16, 16 * threads)
    return max(4, 4 * threads) if io_wait_s else max(4, 2 * threads)


def app_connections(threads: int) -> int:
    """A user's app: 4N (at least 8), as for requests that mostly wait, since its mix is unknown;
    its server has no admission limit of ftscale's (``--connections`` sets another count)."""
    return max(8, 4 * threads)


@dataclass(frozen=True)
class Matrix:
    """What a run measures: builds, workloads, the designs of each kind of build, threads, loads."""

    builds: list[str]
    workloads: list[str]
    free_threaded_designs: list[Design]
    gil_designs: list[Design]
    threads: list[int]
    sizes: dict[str, int]
    connections: int | None
    closed: bool = True
    open_shares: tuple[float, ...] = ()
    slo: bool = False
    app: AppRequests | None = None  # a user's app (ftscale app): its one "workload" is the app
    servers: tuple[str, ...] = (str(DEFAULT_SERVER),)
    runtime_threads: tuple[int, ...] = (1,)  # granian's variants

    def designs(self, free_threaded: bool) -> list[Design]:
        return self.free_threaded_designs if free_threaded else self.gil_designs

    def server_variants(self) -> list[tuple[str, int]]:
        """(server, runtime threads): granian once per runtime-thread count, the others once."""
        return [
            (server, n)
            for server in self.servers
            for n in (self.runtime_threads if server == HttpServer.GRANIAN else (1,))
        ]

    def connections_of(self, name: str) -> int:
        """Connections for every cell of workload ``name``: ``--connections``, else enough for its
        most threads (:func:`connections_for`), the same at every thread count."""
        if self.connections:
            return self.connections
        most = max(self.threads, default=1)
        if self.app is not None:
            return app_connections(most)
        w = workloads.get(name)
        return connections_for(most, w.io_wait_s, w.stream is not None)

    def plan(self, build: str, name: str, design: Design, threads: int, **load: Any) -> Plan:
        """One cell of this matrix (or of a remote server's own configuration)."""
        if self.app is not None:
            return Plan(
                build=build,
                workload=name,
                workload_class=str(WorkloadClass.APP),
                size=0,
                mode=design[0],
                topology=design[1],
                threads=threads,
                connections=self.connections_of(name),
                app=self.app,
                **load,
            )
        w = workloads.get(name)
        return Plan(
            build=build,
            workload=name,
            workload_class=str(w.workload_class),
            size=self.sizes.get(name, w.default_size),
            mode=design[0],
            topology=design[1],
            threads=threads,
            connections=self.connections_of(name),
            stream=w.stream is not None,
            **load,
        )

    def groups(
        self, free_threaded: dict[str, bool], unavailable: Mapping[str, Mapping[str, str]] | None = None
    ) -> list[Group]:
        """One group per workload and thread count; inside, every build's designs side by side,
        under every server. A design a server cannot run on a build (``unavailable``: build ->
        packages it could not install) is a skipped plan with the reason."""
        out = []
        for name in self.workloads:
            for n in self.threads:
                plans: list[Plan] = []
                for build in self.builds:
                    for design in self.designs(free_threaded[build]):
                        for server, runtime in self.server_variants():
                            skip = engines.skip_reason(
                                HttpServer(server),
                                Topology(design[1]),
                                free_threaded[build],
                                (unavailable or {}).get(build, {}),
                            )
                            on = {"server": server, "runtime_threads": runtime, "skip_reason": skip}
                            # open-loop and target cells need the closed-loop median of the design
                            plans.append(self.plan(build, name, design, n, **on))
                            plans += [
                                self.plan(build, name, design, n, offered_share=s, **on)
                                for s in self.open_shares
                            ]
                            if self.slo:
                                plans.append(self.plan(build, name, design, n, slo=True, **on))
                out.append(Group(name, n, tuple(plans)))
        return out


@dataclass(frozen=True)
class Served:
    """What a run's servers serve when it is not the service: a user's app (``ftscale app``).

    The bench asks it for each build's environment (``prepare``: build records and pythons,
    before anything is written), passes ``server_args`` to every server, finds /health and
    /info under ``prefix``, records ``config`` and ``notes`` in ``run.json``, and writes
    ``files`` into the run directory before the first cell.
    """

    command: str  # the ftscale command that makes such runs (for --resume)
    prepare: Callable[[list[str], Callable[[str], None]], tuple[dict[str, Build], dict[str, Path]]]
    server_args: tuple[str, ...]
    prefix: str
    config: dict[str, Any]
    notes: Callable[[dict[str, Build]], list[str]]
    files: dict[str, bytes]


@dataclass(frozen=True)
class Job:
    run_dir: Path
    resuming: bool
    preset: str
    matrix: Matrix
    settings: Settings
    margin: float
    server_start: str  # "fork": from a pre-imported parent per build; "spawn": a new interpreter
    server_cpus: list[int]
    client_cpus: list[int]
    generator: str
    target: str | None
    shared_cpus: bool
    server_python: Path | None
    argv: list[str]
    profile: bool = False
    served: Served | None = None  # a user's app instead of the service
    # Streams: the built-in generator, which times the first byte and the gaps, unless wrk was
    # named (it counts the chunks only).
    stream_generator: str = "python"
    # The in-process pass (ftscale.bench.http.ceiling): its thread counts (none: no pass).
    ceiling_threads: tuple[int, ...] = ()
    hypothetical_cpus: int | None = None  # --dry-run --cpus N: planned for a host of N CPUs


def plan_job(args: argparse.Namespace, argv: list[str]) -> Job:
    """Validate every argument and work out the whole job before anything starts."""
    args, place = engine.open_run(
        args, "http", lambda saved: build_parser().parse_args(saved), command="bench"
    )
    if place.resuming:
        argv = list(results.RunDir(place.path).read_meta().config.get("argv", []))
    preset = PRESETS[args.preset]
    if args.server_python:
        if not os.access(args.server_python, os.X_OK):
            raise UsageError(f"--server-python {args.server_python}: not an executable")
        builds = [envs.describe("server-python", args.server_python).build]
    else:
        builds = choose(args.builds, preset.builds, provision.BUILDS, "build")
    try:
        if args.workloads:
            names = [w.name for w in workloads.select(args.workloads)]
        else:
            names = list(preset.workloads or workloads.REGISTRY)
    except workloads.UnknownWorkload as exc:
        raise UsageError(str(exc)) from None
    ft_designs, gil_designs = args.designs or (preset.free_threaded_designs, preset.gil_designs)
    sizes: dict[str, int] = {}
    for item in args.size:
        name, _, value = item.partition("=")
        try:
            sizes[name] = workloads.get(name).check_size(int(value))
        except (workloads.UnknownWorkload, workloads.InvalidSize) as exc:
            raise UsageError(str(exc)) from None
        except ValueError:
            raise UsageError(f"--size wants WORKLOAD=N, got {item!r}") from None
    return sweep_job(args, argv, place, preset, builds, names, (ft_designs, gil_designs), sizes)


def sweep_job(
    args: argparse.Namespace,
    argv: list[str],
    place: engine.RunPlace,
    preset: Preset,
    builds: list[str],
    names: list[str],
    designs: tuple[Sequence[Design], Sequence[Design]],
    sizes: dict[str, int],
    served: Served | None = None,
    app: AppRequests | None = None,
) -> Job:
    """The part of a job every HTTP sweep shares: settings, CPUs, threads, load and generator."""
    repetitions = preset.repetitions if args.repetitions is None else args.repetitions
    duration = preset.duration_s if args.duration is None else args.duration
    warmup = preset.warmup_s if args.warmup is None else args.warmup
    if repetitions < 1:
        raise UsageError("--repetitions must be 1 or more")
    if duration <= 0 or warmup < 0:
        raise UsageError("--duration must be positive and --warmup not negative")
    if args.connections is not None and args.connections < 1:
        raise UsageError("--connections must be 1 or more")
    rounds = preset.rounds if args.rounds is None else args.rounds
    if rounds < 0 or rounds == 1:
        raise UsageError("--rounds must be 0 (no confirmation) or 2 or more")
    margin = DEFAULT_MARGIN if args.margin is None else args.margin
    ft_designs, gil_designs = designs
    hypothetical = getattr(args, "cpus", None)
    if hypothetical is not None and not args.dry_run:
        raise UsageError("--cpus plans for another host: it goes with --dry-run only")
    available = list(range(hypothetical)) if hypothetical else sorted(os.sched_getaffinity(0))
    if hypothetical:  # a host of that size, one CPU per core, split as the bench splits any
        server, client = machine.split_cpus(available, [])
        if args.server_cpus or args.client_cpus or args.allow_shared_cpus:
            raise UsageError("--cpus plans with the default split: leave out --server-cpus and --client-cpus")
    elif args.server_cpus or args.client_cpus:
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
    if args.threads:
        threads = parse_threads(args.threads)
    elif preset.threads:
        threads = [n for n in preset.threads if n <= len(server)] or [1]
    elif preset.thread_rule == "quarters":
        threads = quarter_threads(len(server))
    else:
        threads = default_threads(len(server))
    load = args.load or ("open" if args.slo_p99 else preset.load)
    slo = args.slo_p99 if args.slo_p99 is not None else preset.slo_p99_ms
    if slo is not None and slo <= 0:
        raise UsageError("--slo-p99 must be a positive number of milliseconds")
    shares = args.rates or preset.open_shares or (0.5, 0.75, 0.9)
    open_shares = tuple(shares) if load in ("open", "both") and not (args.slo_p99 and not args.rates) else ()
    if args.arrivals and load not in ("open", "both"):
        raise UsageError("--arrivals applies to the open loop: add --load open, --load both or --slo-p99")
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
            raise UsageError("--profile needs servers this bench starts; it cannot profile a --target")
    return Job(
        run_dir=place.path,
        resuming=place.resuming,
        preset=preset.name,
        matrix=Matrix(
            builds=builds,
            workloads=names,
            free_threaded_designs=list(ft_designs),
            gil_designs=list(gil_designs),
            threads=threads,
            sizes=sizes,
            connections=args.connections,
            closed=True,  # the closed loop is always measured: open-loop rates are set from it
            open_shares=open_shares,
            slo=slo is not None and load in ("open", "both"),
            app=app,
            servers=getattr(args, "servers", None) or (str(DEFAULT_SERVER),),
            runtime_threads=getattr(args, "runtime_threads", None) or (1,),
        ),
        settings=Settings(
            duration_s=duration,
            warmup_s=warmup,
            repetitions=repetitions,
            open_shares=open_shares,
            slo_p99_ms=slo,
            rounds=rounds if not args.target else 0,
            arrivals=args.arrivals or str(Arrival.POISSON),
            seed=schedules.run_seed(place.path.name),
        ),
        margin=margin,
        server_start="spawn" if args.target else args.server_start,
        server_cpus=server,
        client_cpus=client,
        generator=generator,
        target=args.target,
        shared_cpus=shared,
        server_python=args.server_python,
        argv=argv,
        profile=args.profile,
        served=served,
        stream_generator="wrk" if args.generator == "wrk" else "python",
        # The pass needs the service's workloads in provisioned builds' environments: not for a
        # user's app, a server started elsewhere or an interpreter used as it is.
        ceiling_threads=()
        if served is not None or args.target or args.server_python or getattr(args, "no_ceiling", False)
        else ceiling.thread_counts(threads, len(server), preset.ceiling_curve),
        hypothetical_cpus=hypothetical,
    )


def _meta(job: Job, ceilings: dict[str, float], builds: dict[str, Build]) -> RunMeta:
    meta = _bench_meta(job, ceilings)
    if job.served is None:
        return meta
    config = {**meta.config, "command": job.served.command, "app": job.served.config}
    return meta.model_copy(update={"config": config, "notes": [*meta.notes, *job.served.notes(builds)]})


def _bench_meta(job: Job, ceilings: dict[str, float]) -> RunMeta:
    return RunMeta(
        run_id=job.run_dir.name,
        kind="http",
        created=results.now(),
        host=results.collect_host(),
        git=results.collect_git(),
        config={
            "argv": job.argv,
            "preset": job.preset,
            "server_cpus": job.server_cpus,
            "client_cpus": job.client_cpus,
            "shared_cpus": job.shared_cpus,
            "server_pinning": "a cell at N threads runs on the first N server CPUs",
            "settings": asdict(job.settings),
            "margin": job.margin,
            "server_start": job.server_start,
            "connections": {name: job.matrix.connections_of(name) for name in job.matrix.workloads},
            "matrix": {
                "builds": job.matrix.builds,
                "workloads": job.matrix.workloads,
                "free_threaded_designs": [list(d) for d in job.matrix.free_threaded_designs],
                "gil_designs": [list(d) for d in job.matrix.gil_designs],
                "threads": job.matrix.threads,
                "sizes": job.matrix.sizes,
                "open_shares": list(job.matrix.open_shares),
                "slo_p99_ms": job.settings.slo_p99_ms,
                "servers": list(job.matrix.servers),
                "runtime_threads": list(job.matrix.runtime_threads),
            },
            "target": job.target,
        },
        generator={
            "name": job.generator,
            "version": wrk_version() if job.generator == "wrk" else sys.version.split()[0],
            "cpus": job.client_cpus,
            "loop": "closed" if not job.matrix.open_shares and not job.matrix.slo else "closed and open",
            "open_loop": (
                f"built-in generator, one process per client CPU; {job.settings.arrivals} arrivals from "
                f"seeds derived from the run's ({job.settings.seed}); latency from the due time; "
                "throughput counts answers completed inside the window"
            ),
            "streams": (
                "built-in generator: it times each stream's first byte and the gaps between its chunks"
                if job.stream_generator == "python"
                else "wrk, as asked: it counts the chunks but cannot time the first byte or the gaps"
            ),
            "connections": job.matrix.connections
            or (
                "4 x threads (min 8)"
                if job.matrix.app
                else "2 x threads (min 4); 4 x threads for I/O workloads; 16 x threads (min 16) for streams"
            ),
            "ceilings": ceilings,
            "ceiling_method": "per load kind and connections, against a trivial server on the server CPUs",
        },
    )


def load_seconds(duration_s: float) -> float:
    """How long one load runs: as stated (wrk is stopped when it has run that long)."""
    return duration_s


def repetition_seconds(job: Job) -> float:
    """The estimate of one repetition: its overhead, its warm-up and its load."""
    overhead = REPETITION_OVERHEAD_S[job.server_start]
    return overhead + job.settings.warmup_s + load_seconds(job.settings.duration_s)


def twinned(builds: Sequence[str]) -> list[str]:
    """The builds of ``builds`` whose twin is in the run too (``3.14t`` and ``3.14``): each sends a
    candidate to every workload's confirmation rounds (by name, before any build is described)."""
    return [b for b in builds if (b.endswith("t") and b[:-1] in builds) or f"{b}t" in builds]


def paired_builds(builds: Sequence[str]) -> int:
    return len(twinned(builds))


def search_seconds(job: Job, shares: Sequence[float] = capacity.UPWARD) -> float:
    """The estimate of one capacity search (its server's start included), at
    :data:`ASSUMED_CAP_RPS`, trying ``shares`` of it."""
    settings = job.settings
    if settings.slo_p99_ms is None:
        return 0.0
    return REPETITION_OVERHEAD_S[job.server_start] + capacity.search_seconds(
        ASSUMED_CAP_RPS, settings.slo_p99_ms, settings.duration_s, settings.warmup_s, shares,
        settings.slo_loads, settings.slo_min_samples,
    )  # fmt: skip


def confirmation_seconds(job: Job) -> float:
    """The estimate of one workload's confirmation rounds. Which design each build sends is not
    known before its exploration: a stock deployment's own start and stop is counted as the
    average over the designs of that kind of build (any of them may be its candidate)."""
    per_rep = repetition_seconds(job)
    extra = 0.0
    for build in twinned(job.matrix.builds):
        designs = job.matrix.designs(build.endswith("t"))
        extra += sum(TOPOLOGY_OVERHEAD_S.get(t, 0.0) for _, t in designs) / max(1, len(designs))
    return job.settings.rounds * (paired_builds(job.matrix.builds) * per_rep + extra)


def group_seconds(job: Job, group: Group | ConfirmGroup | CeilingGroup) -> float:
    """The bench's estimate of one group's duration before any has been measured."""
    if isinstance(group, CeilingGroup):
        return len(group.plans) * ceiling.CELL_S
    per_rep = repetition_seconds(job)
    if isinstance(group, ConfirmGroup):
        return confirmation_seconds(job)
    plans = [p for p in group.plans if p.skip_reason is None]
    measured = [p for p in plans if p.load == "closed" or p.offered_share]
    reps = job.settings.repetitions * len(measured)
    reps += sum(1 for p in plans if p.load == "closed") if job.profile else 0
    stock = job.settings.repetitions * sum(TOPOLOGY_OVERHEAD_S.get(p.topology, 0.0) for p in measured)
    return reps * per_rep + stock + sum(1 for p in plans if p.slo) * search_seconds(job)


def _loads(job: Job, groups: Sequence[Group | ConfirmGroup | CeilingGroup]) -> list[tuple[str, int, Request]]:
    """Every (load kind, connection count, request) a cell will use: what the ceilings are measured for."""
    found: set[tuple[str, int, Request]] = set()
    factor = job.settings.open_connections_factor
    for group in groups:
        for plan in group.plans if not isinstance(group, CeilingGroup) else ():
            open_loop = plan.load == "open"
            kind, connections = (
                ("open", plan.connections * factor) if open_loop else ("closed", plan.connections)
            )
            found.add((kind, connections, request_of(plan)))
    return sorted(found)


# Fixed costs of a run besides its cells, before any was measured (the 2-core development machine,
# environments already made): a zygote per build, one calibration load per load kind and
# connection count, and the report (charts for three workloads).
ZYGOTE_S = 1.0
CALIBRATION_LOAD_S = 1.3
REPORT_S = 5.0


def ceiling_groups(job: Job) -> list[CeilingGroup]:
    """The in-process pass of every workload (none where the job has no pass)."""
    return ceiling.groups(job.matrix.workloads, job.matrix.builds, job.matrix.sizes, job.ceiling_threads)


def estimate_seconds(job: Job) -> dict[str, float]:
    """The run's duration by part, from the bench's own estimates (environments already made)."""
    explore = job.matrix.groups({b: b.endswith("t") for b in job.matrix.builds})
    confirmation = len(job.matrix.workloads) if job.settings.rounds >= 2 else 0
    per_confirmation = confirmation_seconds(job)
    return {
        "in-process": sum(group_seconds(job, g) for g in ceiling_groups(job)),
        "sweep": sum(group_seconds(job, g) for g in explore),
        "confirmation": confirmation * per_confirmation,
        "start": len(job.matrix.builds) * (ZYGOTE_S if job.server_start == "fork" else 0.0)
        + CALIBRATION_LOAD_S * len(_loads(job, explore)),
        "report": REPORT_S,
    }


def dry_run(job: Job) -> int:
    """What the run would measure and how long it should take, from the bench's own estimates."""
    groups = job.matrix.groups({b: b.endswith("t") for b in job.matrix.builds})
    cells = sum(len(g.plans) for g in groups)
    skipped = [p for g in groups for p in g.plans if p.skip_reason]
    parts = estimate_seconds(job)
    seconds = sum(parts.values())
    print(f"preset {job.preset}: {len(groups)} groups, {cells} cells ({len(skipped)} skipped)")
    print(f"  builds {', '.join(job.matrix.builds)}; workloads {', '.join(job.matrix.workloads)}")
    for kind, designs in (
        ("free-threaded", job.matrix.free_threaded_designs),
        ("GIL", job.matrix.gil_designs),
    ):
        print(f"  {kind} designs: {', '.join('/'.join(d) for d in designs)}")
    variants = [server_label(s, n) for s, n in job.matrix.server_variants()]
    print(f"  servers: {', '.join(variants)} (each runs every design; packages are checked when "
          "the environments are made)")  # fmt: skip
    for build, server, mode, topology, why in sorted(
        {(p.build, p.server_label, p.mode, p.topology, p.skip_reason or "") for p in skipped}
    ):
        print(f"  skipped: {build} {server} {mode}/{topology}: {why}")
    print(f"  threads {job.matrix.threads} (server CPUs {job.server_cpus}, client CPUs {job.client_cpus})")
    connections = sorted({job.matrix.connections_of(w) for w in job.matrix.workloads})
    print(f"  connections: {', '.join(map(str, connections))} (the same at every thread count of a workload)")
    load = "closed" + (
        f"; open at {', '.join(f'{s:.0%}' for s in job.matrix.open_shares)}" if job.matrix.open_shares else ""
    )
    if job.matrix.slo:
        load += f"; capacity at p99 <= {job.settings.slo_p99_ms:g} ms"
    if job.matrix.open_shares or job.matrix.slo:
        load += f"; open loop with {job.settings.arrivals} arrivals"
    print(f"  load: {load}; {job.settings.repetitions} repetitions of {job.settings.duration_s:g} s")
    searches = sum(1 for g in groups for p in g.plans if p.slo and not p.skip_reason)
    if searches:
        print(
            f"  capacity searches: {searches}, each up to {len(capacity.UPWARD)} rates of at least "
            f"{job.settings.slo_loads} loads with {job.settings.slo_min_samples:,} requests per rate; "
            f"about {search_seconds(job) / 60:.1f} min each at a closed-loop median of {ASSUMED_CAP_RPS:g} "
            f"req/s (assumed: not known before the design is measured), "
            f"{search_seconds(job, capacity.DOWNWARD) / 60:.1f} min where half of it fails and the search "
            "goes lower; a slower design takes longer"
        )
    if job.settings.rounds >= 2:
        print(
            f"  confirmation: {job.settings.rounds} paired rounds of each build's finalist per workload; "
            f"equivalent within {job.margin:.0%}"
        )
    print(f"  fresh servers: {job.server_start} ({REPETITION_OVERHEAD_S[job.server_start]:g} s a repetition "
          "besides its warm-up and load)")  # fmt: skip
    passes = ceiling_groups(job)
    if passes:
        cells = sum(len(g.plans) for g in passes)
        print(f"  in process (the ceiling): threads {list(job.ceiling_threads)}, {cells} pyperf cells on the "
              f"server CPUs, one process each ({ceiling.CELL_S:g} s a cell)")  # fmt: skip
    if job.hypothetical_cpus:
        print(f"  planned for a host of {job.hypothetical_cpus} CPUs (one per core), not this machine")
    print(
        f"estimated duration: {_clock(seconds)} ({seconds:,.0f} s: in process {parts['in-process']:,.0f} s, "
        f"sweep {parts['sweep']:,.0f} s, "
        f"confirmation {parts['confirmation']:,.0f} s, zygotes and calibration {parts['start']:,.0f} s, "
        f"report {parts['report']:,.0f} s), with the environments already made"
    )
    return 0


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"


def run(
    args: argparse.Namespace,
    argv: Sequence[str],
    plan: Callable[[argparse.Namespace, list[str]], Job] = plan_job,
) -> int:
    """``ftscale bench`` (or, with ``ftscale app``'s ``plan``, a user's app): plan, prepare the
    builds, calibrate the generator, sweep, report."""
    slot_started, began = results.now(), time.monotonic()  # the budget counts from here
    job = plan(args, list(argv))
    if args.dry_run:
        return dry_run(job)
    rundir = results.RunDir(job.run_dir)
    remote = RemoteServer(job.target) if job.target else None
    launcher: Any
    builds: dict[str, Build] = {}
    groups: list[Group | ConfirmGroup | CeilingGroup]
    zygotes: dict[str, Zygote] = {}
    inprocess: ceiling.InProcess | None = None
    if remote is not None:
        info = remote.info()
        design = (info.mode, info.topology)
        on = {
            "server": info.server or str(DEFAULT_SERVER),
            "runtime_threads": info.config.runtime_threads or 1,
        }
        groups = [
            Group(
                name,
                info.threads,
                (job.matrix.plan(info.interpreter.build, name, design, info.threads, **on),),
            )
            for name in job.matrix.workloads
        ]
        launcher = remote
    else:
        if job.server_python is not None:
            build = job.matrix.builds[0]
            builds = {build: envs.describe(build, job.server_python)}
            pythons = {build: job.server_python}
        elif job.served is not None:
            print(f"preparing builds {', '.join(job.matrix.builds)}", flush=True)
            builds, pythons = job.served.prepare(job.matrix.builds, lambda m: print(m, flush=True))
        else:
            print(f"preparing builds {', '.join(job.matrix.builds)}", flush=True)
            builds = envs.prepare(job.matrix.builds, log=lambda m: print(m, flush=True))
            pythons = {b: envs.env_python(b) for b in job.matrix.builds}
        if job.matrix.app is None:  # a workload whose packages a build lacks (numpy): bad input
            problem = workloads.unmet(
                job.matrix.workloads, {f"the {b} environment": info.unavailable for b, info in builds.items()}
            )
            if problem:
                raise UsageError(problem)
        explore = job.matrix.groups(
            {b: info.py_gil_disabled for b, info in builds.items()},
            {b: info.unavailable for b, info in builds.items()},
        )
        groups = with_ceilings(with_confirmation(explore, job, builds, rundir), ceiling_groups(job))
        inprocess = ceiling.InProcess(pythons, builds, job.server_cpus, job.run_dir.name)
        served = job.served
        if job.server_start == "fork":
            print(
                "starting a pre-imported parent per build (fresh servers are forked from it) ...", flush=True
            )
            zygotes, _ = start_zygotes(pythons, job.server_cpus)
        launcher = Launcher(
            pythons,
            job.server_cpus,
            job.run_dir.name,
            extra=served.server_args if served else (),
            prefix=served.prefix if served else "",
            zygotes=zygotes,
        )
    generator = SubprocessGenerator(job.generator, job.client_cpus, job.stream_generator)
    profiling = profile.open_profiler(job.run_dir) if job.profile else None
    profiler = profiling if isinstance(profiling, profile.Profiler) else None
    for name, data in (job.served.files if job.served else {}).items():
        if not (job.run_dir / name).exists():  # a resumed run sends what it sent before
            results.write_atomic(job.run_dir / name, data)  # before calibrating: it sends the mix
    if rundir.meta_path.exists():
        ceilings = dict((rundir.read_meta().generator or {}).get("ceilings", {}))
    else:
        print("calibrating the load generator against a trivial server ...", flush=True)
        ceilings = (
            calibrate_ceilings(generator, job.server_cpus, _loads(job, groups)) if remote is None else {}
        )
        meta = _meta(job, ceilings, builds)
        if profiling is not None:
            config = {**meta.config, "profile": profile.run_config(profiling)}
            meta = meta.model_copy(update={"config": config, "notes": profile.run_notes(profiling)})
        rundir.write_meta(meta)
    for record in builds.values():
        rundir.add_build(record)
    print(
        f"server CPUs {job.server_cpus}, client CPUs {job.client_cpus}, generator {job.generator}; "
        f"ceilings {', '.join(f'{k} {v:,.0f}/s' for k, v in sorted(ceilings.items()))}",
        flush=True,
    )

    def one(group: Group | ConfirmGroup | CeilingGroup) -> list[HttpCell] | list[MicroCell]:
        if isinstance(group, CeilingGroup):  # in process on the server CPUs: nothing else runs
            assert inprocess is not None
            return inprocess.measure(group, log=lambda line: print(line, flush=True))
        if isinstance(group, ConfirmGroup):
            chosen, why = confirm_plans(group, job, builds, rundir)
            if not chosen:
                print(f"  {group.workload}: no confirmation rounds ({why})", flush=True)
                return []
            names = ", ".join(
                f"{p.build} {p.server_label} {p.mode}/{p.topology} at {p.threads}" for p, _ in chosen
            )
            print(f"  {group.workload}: {job.settings.rounds} confirmation rounds of {names}", flush=True)
            cells = measure_confirmation(
                chosen, job.run_dir.name, launcher, generator, job.settings, ceilings,
                log=lambda line: print(line, flush=True),
            )  # fmt: skip
        else:
            cells = measure_group(
                group, job.run_dir.name, launcher, generator, job.settings, ceilings, profiler=profiler
            )
        if job.shared_cpus:
            cells = [
                c.model_copy(update={"flags": [*c.flags, str(Flag.SHARED_CPUS)]}) if c.status == "ok" else c
                for c in cells
            ]
        return [
            c.model_copy(update={"flags": [*c.flags, str(Flag.OVERSUBSCRIBED)]})
            if c.status == "ok" and c.threads > len(job.server_cpus)
            else c
            for c in cells
        ]

    def group_label(g: Group | ConfirmGroup | CeilingGroup) -> str:
        if isinstance(g, CeilingGroup):
            return f"{g.workload}: in process ({len(g.plans)} cells)"
        if isinstance(g, ConfirmGroup):
            return f"{g.workload}: confirmation rounds"
        return f"{g.workload} t={g.threads} ({len(g.plans)} cells x {job.settings.repetitions} repetitions)"

    estimate = group_seconds(job, groups[0]) if groups else 0.0
    try:
        outcome = engine.sweep(
            rundir,
            groups,
            one,
            group_label,
            estimate,
            budget_s=args.budget,
            started=began,
        )
    finally:
        for zygote in zygotes.values():
            zygote.stop()
    return engine.finish(
        rundir,
        outcome,
        slot_started,
        f"ftscale {job.served.command if job.served else 'bench'} --resume {job.run_dir.name}",
        args.no_report,
    )


def with_confirmation(
    explore: list[Group], job: Job, builds: Mapping[str, Build], rundir: results.RunDir
) -> list[Group | ConfirmGroup]:
    """The exploration groups with each workload's confirmation rounds after its last group."""
    if job.settings.rounds < 2:
        return list(explore)
    out: list[Group | ConfirmGroup] = []
    for index, group in enumerate(explore):
        out.append(group)
        last = index + 1 == len(explore) or explore[index + 1].workload != group.workload
        if last:
            plans = tuple(p for g in explore if g.workload == group.workload for p in g.plans)
            out.append(ConfirmGroup(group.workload, plans, lambda g: confirm_keys(g, job, builds, rundir)))
    return out


def with_ceilings(
    groups: list[Group | ConfirmGroup], passes: Sequence[CeilingGroup]
) -> list[Group | ConfirmGroup | CeilingGroup]:
    """``groups`` with each workload's in-process pass before its first group."""
    out: list[Group | ConfirmGroup | CeilingGroup] = []
    waiting = {g.workload: g for g in passes}
    for group in groups:
        first = waiting.pop(group.workload, None)
        if first is not None:
            out.append(first)
        out.append(group)
    return out


def confirm_plans(
    group: ConfirmGroup, job: Job, builds: Mapping[str, Build], rundir: results.RunDir
) -> tuple[list[tuple[Plan, Selection]], str | None]:
    """The finalists of ``group``'s workload, from its exploration cells on disk (or why none)."""
    keys = {p.key for p in group.plans}
    cells = [c for c in results.iter_cells(rundir.path) if isinstance(c, HttpCell) and c.cell_id in keys]
    pairs = confirm.twin_pairs(
        {b: r.version for b, r in builds.items()}, {b: r.py_gil_disabled for b, r in builds.items()}
    )
    return confirm.finalists(cells, {p.key: p for p in group.plans}, pairs, len(job.server_cpus))


def confirm_keys(
    group: ConfirmGroup, job: Job, builds: Mapping[str, Build], rundir: results.RunDir
) -> tuple[str, ...]:
    """The cells ``group`` writes: its finalists' once the exploration is complete on disk; else a
    placeholder that is never done, so the group is measured."""
    done = rundir.done()
    if not {p.key for p in group.plans} <= done:
        return (group.key,)
    chosen, _ = confirm_plans(group, job, builds, rundir)
    return tuple(plan.key for plan, _ in chosen)


def command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """The ``ftscale bench`` command, with the engine's signal handling and exit statuses."""
    return engine.main_guard("ftscale bench", lambda: run(args, argv))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return engine.main_guard("ftscale bench", lambda: run(build_parser().parse_args(argv), argv))
