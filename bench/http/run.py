"""``ftscale bench``: the HTTP scaling sweep, a fresh server per repetition.

The plan comes first (:mod:`.plan`: every argument checked, the matrix, the CPUs, the generator
and where servers come from); ``--dry-run`` prints it with its estimate (:mod:`.estimate`). Then
:func:`execute` prepares the builds' environments (or the user's app's, or nothing for a server
started elsewhere), calibrates the generator's ceiling against a server that costs nothing,
writes the run's metadata (:mod:`.meta`), and measures the groups (one workload at one thread
count, every design and build side by side, repetitions interleaved: :mod:`.cell`), each
workload's in-process pass before its groups and its confirmation rounds after them. The run
engine (:mod:`ftscale.bench.engine`) writes the cells and handles ``--resume``, ``--budget``,
signals and the report.

What it does not do: it does not tune the kernel, isolate CPUs or fix clock frequencies; the
report shows the affinity, the governor and the per-cell variation so a reader can judge the noise.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from ftscale import workloads
from ftscale.bench import engine, results
from ftscale.bench.env import venv as envs
from ftscale.bench.http import ceiling, confirm
from ftscale.bench.http.ceiling import CeilingGroup
from ftscale.bench.http.cell import measure_confirmation, measure_group
from ftscale.bench.http.cells import CellSpec, Group
from ftscale.bench.http.confirm import ConfirmGroup
from ftscale.bench.http.estimate import calibration_loads, ceiling_groups, dry_run, group_seconds
from ftscale.bench.http.judge import CpuContext
from ftscale.bench.http.meta import run_meta
from ftscale.bench.http.options import Design, build_parser
from ftscale.bench.http.plan import GivenPython, HttpPlan, RemoteTarget, plan_job
from ftscale.bench.http.real import Launcher, RemoteServer, SubprocessGenerator, calibrate_ceilings
from ftscale.bench.http.zygote import Zygote, start_zygotes
from ftscale.bench.profile import session as profile
from ftscale.errors import UsageError
from ftscale.schema import Build, HttpCell, MicroCell, Selection
from ftscale.vocab import DEFAULT_SERVER


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``ftscale bench``: plan, then :func:`execute`."""
    slot_started, began = results.now(), time.monotonic()  # the budget counts from here
    return execute(plan_job(args, list(argv)), args, slot_started, began)


def execute(job: HttpPlan, args: argparse.Namespace, slot_started: str, began: float) -> int:
    """Run ``job`` (``--dry-run``: print it): prepare the builds, calibrate the generator, sweep,
    report. ``slot_started`` and ``began``: when the command began (the budget counts from there)."""
    if args.dry_run:
        return dry_run(job)
    rundir = results.RunDir(job.run_dir)
    source, app = job.source, job.app
    launcher: Any
    builds: dict[str, Build] = {}
    groups: list[Group | ConfirmGroup | CeilingGroup]
    zygotes: dict[str, Zygote] = {}
    inprocess: ceiling.InProcess | None = None
    if isinstance(source, RemoteTarget):
        remote = RemoteServer(source.url)
        info = remote.info()
        design = Design(info.mode, info.topology)
        on = {
            "server": info.server or str(DEFAULT_SERVER),
            "runtime_threads": info.config.runtime_threads or 1,
        }
        groups = [
            Group(
                name,
                info.threads,
                (job.matrix.cell(info.interpreter.build, name, design, info.threads, **on),),
            )
            for name in job.matrix.workloads
        ]
        launcher = remote
    else:
        if isinstance(source, GivenPython):
            build = job.matrix.builds[0]
            builds = {build: envs.describe(build, source.python)}
            pythons = {build: source.python}
        elif app is not None:
            print(f"preparing builds {', '.join(job.matrix.builds)}", flush=True)
            builds, pythons = app.prepare(job.matrix.builds, lambda m: print(m, flush=True))
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
        if job.server_start == "fork":
            print(
                "starting a pre-imported parent per build (fresh servers are forked from it) ...", flush=True
            )
            zygotes, _ = start_zygotes(pythons, job.server_cpus)
        launcher = Launcher(
            pythons,
            job.server_cpus,
            job.run_dir.name,
            extra=app.server_args if app else (),
            prefix=app.prefix if app else "",
            zygotes=zygotes,
        )
    generator = SubprocessGenerator(job.generator, job.client_cpus, job.stream_generator)
    profiling = profile.open_profiler(job.run_dir) if job.profile else None
    profiler = profiling if isinstance(profiling, profile.Profiler) else None
    for name, data in (app.files if app else {}).items():
        if not (job.run_dir / name).exists():  # a resumed run sends what it sent before
            results.write_atomic(job.run_dir / name, data)  # before calibrating: it sends the mix
    if rundir.meta_path.exists():
        given = rundir.read_meta().generator
        ceilings = dict(given.ceilings or {}) if given is not None else {}
    else:
        print("calibrating the load generator against a trivial server ...", flush=True)
        ceilings = (
            {}
            if isinstance(source, RemoteTarget)
            else calibrate_ceilings(generator, job.server_cpus, calibration_loads(job, groups))
        )
        meta = run_meta(job, ceilings, builds)
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

    cpus = CpuContext(server_cpus=len(job.server_cpus), shared=job.shared_cpus)

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
            return measure_confirmation(
                chosen,
                job.run_dir.name,
                launcher,
                generator,
                job.settings,
                ceilings,
                log=lambda line: print(line, flush=True),
                cpus=cpus,
            )
        return measure_group(
            group, job.run_dir.name, launcher, generator, job.settings, ceilings, profiler=profiler, cpus=cpus
        )

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
        f"ftscale {job.command} --resume {job.run_dir.name}",
        args.no_report,
    )


def with_confirmation(
    explore: list[Group], job: HttpPlan, builds: Mapping[str, Build], rundir: results.RunDir
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
    group: ConfirmGroup, job: HttpPlan, builds: Mapping[str, Build], rundir: results.RunDir
) -> tuple[list[tuple[CellSpec, Selection]], str | None]:
    """The finalists of ``group``'s workload, from its exploration cells on disk (or why none)."""
    keys = {p.key for p in group.plans}
    cells = [c for c in results.iter_cells(rundir.path) if isinstance(c, HttpCell) and c.cell_id in keys]
    pairs = confirm.twin_pairs(
        {b: r.version for b, r in builds.items()}, {b: r.py_gil_disabled for b, r in builds.items()}
    )
    return confirm.finalists(cells, {p.key: p for p in group.plans}, pairs, len(job.server_cpus))


def confirm_keys(
    group: ConfirmGroup, job: HttpPlan, builds: Mapping[str, Build], rundir: results.RunDir
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
