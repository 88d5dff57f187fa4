"""``ftscale bench``'s plan: every argument checked and the whole run worked out before anything starts.

:func:`plan_job` reads ``ftscale bench``'s arguments (a preset, overridden by options; see
:mod:`ftscale.bench.http.options`) into an :class:`HttpPlan`: the matrix to measure
(:mod:`.matrix`), the settings of every repetition, the CPUs split between the server and the load
generator (SMT-aware; the server gets whole cores), the generator, and where the servers come from
(:data:`ServerSource`). ``ftscale app`` makes its plan with :func:`sweep_plan` and a user's app as
the source. Bad input is a :class:`~ftscale.errors.UsageError`, before anything is written.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from ftscale import workloads
from ftscale.bench import engine, machine, results
from ftscale.bench.env import provision
from ftscale.bench.env import venv as envs
from ftscale.bench.http import arrivals as schedules
from ftscale.bench.http import ceiling
from ftscale.bench.http.cells import AppRequests, Settings
from ftscale.bench.http.matrix import Matrix, default_threads, parse_cpus, quarter_threads, split_cpus
from ftscale.bench.http.options import PRESETS, Design, Preset, build_parser
from ftscale.bench.http.real import RemoteServer
from ftscale.bench.intervals import DEFAULT_MARGIN
from ftscale.bench.options import choose, parse_threads
from ftscale.errors import UsageError
from ftscale.schema import Build
from ftscale.vocab import DEFAULT_SERVER, GENERATORS, Arrival, Generator

# --- where the servers come from --------------------------------------------------------------


@dataclass(frozen=True)
class ProvisionedBuilds:
    """The service, in the environment ftscale makes for each build (the default)."""


@dataclass(frozen=True)
class GivenPython:
    """The service under one interpreter used as it is (``--server-python``)."""

    python: Path


@dataclass(frozen=True)
class RemoteTarget:
    """A server started elsewhere (``--target URL``): nothing is started, its own design is measured."""

    url: str


class AppSource(Protocol):
    """A user's app (``ftscale app``) as the servers serve it.

    The bench asks it for each build's environment (``prepare``: build records and pythons,
    before anything is written), passes ``server_args`` to every server, finds /health and /info
    under ``prefix``, records ``config`` and ``notes`` in ``run.json``, and writes ``files`` into
    the run directory before the first cell.
    """

    @property
    def command(self) -> str: ...  # the ftscale command that makes such runs (for --resume)
    @property
    def server_args(self) -> tuple[str, ...]: ...
    @property
    def prefix(self) -> str: ...
    @property
    def config(self) -> dict[str, Any]: ...
    @property
    def files(self) -> dict[str, bytes]: ...
    def prepare(
        self, builds: list[str], log: Callable[[str], None]
    ) -> tuple[dict[str, Build], dict[str, Path]]: ...
    def notes(self, builds: dict[str, Build]) -> list[str]: ...


# Where a run's servers come from; the sweep asks nothing else.
ServerSource = ProvisionedBuilds | GivenPython | RemoteTarget | AppSource


def app_of(source: ServerSource) -> AppSource | None:
    """The user's app a source serves (None: the service, or a server started elsewhere)."""
    if isinstance(source, ProvisionedBuilds | GivenPython | RemoteTarget):
        return None
    return source


# --- the plan -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class HttpPlan:
    """An HTTP run, worked out: what it measures, how, on which CPUs, against which servers."""

    run_dir: Path
    resuming: bool
    preset: str
    matrix: Matrix
    settings: Settings
    margin: float
    server_start: str  # "fork": from a pre-imported parent per build; "spawn": a new interpreter
    server_cpus: list[int]
    client_cpus: list[int]
    generator: Generator
    source: ServerSource
    shared_cpus: bool
    argv: list[str]
    profile: bool = False
    # Streams: the built-in generator, which times the first byte and the gaps, unless wrk was
    # named (it counts the chunks only).
    stream_generator: Generator = Generator.PYTHON
    # The in-process pass (ftscale.bench.http.ceiling): its thread counts (none: no pass).
    ceiling_threads: tuple[int, ...] = ()
    hypothetical_cpus: int | None = None  # --dry-run --cpus N: planned for a host of N CPUs

    @property
    def target(self) -> str | None:
        """The URL of a server started elsewhere (None: the bench starts its servers)."""
        return self.source.url if isinstance(self.source, RemoteTarget) else None

    @property
    def app(self) -> AppSource | None:
        return app_of(self.source)

    @property
    def command(self) -> str:
        """The ftscale command that made the run (``--resume`` goes with it)."""
        app = self.app
        return app.command if app is not None else "bench"


def available(generator: Generator) -> bool:
    """Whether ``generator`` can run here: the program it needs is on PATH (or it needs none)."""
    executable = GENERATORS[generator].executable
    return executable is None or shutil.which(executable) is not None


def choose_generator(name: str) -> Generator:
    """``--generator``: a named one that can run here, or with ``auto`` the first that can."""
    if name == "auto":
        return next(g for g in Generator if available(g))
    generator = Generator(name)
    if not available(generator):
        raise UsageError(
            f"--generator {generator}: {GENERATORS[generator].executable} is not installed "
            f"(apt-get install {GENERATORS[generator].executable}), or use --generator {Generator.PYTHON}"
        )
    return generator


def plan_job(args: argparse.Namespace, argv: list[str]) -> HttpPlan:
    """``ftscale bench``: validate every argument and work out the whole run before anything starts."""
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
    return sweep_plan(args, argv, place, preset, builds, names, (ft_designs, gil_designs), sizes)


def sweep_plan(
    args: argparse.Namespace,
    argv: list[str],
    place: engine.RunPlace,
    preset: Preset,
    builds: list[str],
    names: list[str],
    designs: tuple[Sequence[Design], Sequence[Design]],
    sizes: dict[str, int],
    app_source: AppSource | None = None,
    app: AppRequests | None = None,
) -> HttpPlan:
    """The part of a plan every HTTP sweep shares: settings, CPUs, threads, load, generator and
    where the servers come from (``app_source``: a user's app, whose cells send ``app``)."""
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
    generator = choose_generator(args.generator)
    source: ServerSource = ProvisionedBuilds()
    if args.target:
        RemoteServer(args.target)  # validates the URL
        if args.profile:
            raise UsageError("--profile needs servers this bench starts; it cannot profile a --target")
        source = RemoteTarget(args.target)
    elif args.server_python:
        source = GivenPython(args.server_python)
    elif app_source is not None:
        source = app_source
    return HttpPlan(
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
        source=source,
        shared_cpus=shared,
        argv=argv,
        profile=args.profile,
        stream_generator=Generator.WRK if args.generator == Generator.WRK else Generator.PYTHON,
        # The pass needs the service's workloads in provisioned builds' environments: not for a
        # user's app, a server started elsewhere or an interpreter used as it is.
        ceiling_threads=()
        if not isinstance(source, ProvisionedBuilds) or getattr(args, "no_ceiling", False)
        else ceiling.thread_counts(threads, len(server), preset.ceiling_curve),
        hypothetical_cpus=hypothetical,
    )
