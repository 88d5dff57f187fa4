"""``ftscale audit``: which of your requirements keep your app from running free-threaded.

For each build (3.13t and 3.14t, and their GIL twins for contrast) and the project's
requirements (``-r``, ``--pyproject`` or the project folder's own; ``--python`` audits an
installed environment as it is instead):

1. **Wheels.** The build's own pip resolves the requirements from binary wheels only
   (``pip install --dry-run --report``), all together and, where that fails, one by one: each
   resolves to a wheel (its file name carries its tags). A distribution without one is built
   from source the way pip would build it (:mod:`ftscale.bench.env.fromsource`: ``pip wheel
   --no-deps``, time-limited), and the requirement resolves with the wheel built, or is one line
   saying what its build lacked; with ``--no-build``, it is named, with whether a source
   distribution exists that pip would build. A requirement naming a project by path or URL
   (``-e .``) is built the same way, a local one from a copy.
2. **Imports.** What resolves is installed into the project's environment of that build (the
   one ``ftscale app`` serves from; a throw-away one when not everything resolves), and every
   top-level module of every distribution it installed, and every extension module of each
   distribution built from source, is imported alone in a fresh process
   (:mod:`ftscale.bench.app.checks`): does the GIL stay off? If not, CPython's RuntimeWarning
   names the module that turned it on, or, failing that, its verbose mode names each extension
   module loaded without the free-threading slot. With ``--app``, the app itself is imported
   the same way.
3. **Measure** (``--measure``, free-threaded builds): one short closed-loop load of the app as
   the imports leave the GIL, and one with ``PYTHON_GIL=0``, on fresh servers: what the GIL
   that came back costs. One load each, not a benchmark (``ftscale app`` is).

On a free-threaded build, each requirement falls in one of four classes: it ships a wheel for
the build; it builds from source and keeps the GIL off; it builds and one of its extension
modules turns the GIL on; it does not build here. The audit fails (exit status 1) when, on a
free-threaded build, a requirement does not build (or, with ``--no-build``, lacks a wheel), a
module or the app turns the GIL back on, or the app does not import, unless ``--allow`` names
the requirement, distribution or module. The GIL twins are shown for contrast and never fail
it. A module that does not import alone is listed, not failed: some need their package's
configuration. Bad input (a missing file, a malformed option) is one line and exit status 2.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftscale.bench import engine, results
from ftscale.bench.app import checks
from ftscale.bench.app.audit_options import AUDIT_BUILDS
from ftscale.bench.app.run import request_mix
from ftscale.bench.env import fromsource, provision, wheelhouse
from ftscale.bench.env import project as projects
from ftscale.bench.env import venv as envs
from ftscale.bench.options import choose
from ftscale.errors import UsageError
from ftscale.schema import (
    AppCheck,
    AuditBuild,
    AuditDistribution,
    AuditLoad,
    AuditMeasure,
    AuditModule,
    AuditReport,
    AuditRequirement,
    LoadMix,
)
from ftscale.vocab import APP_PREFIX

# Distributions every environment has that are not the project's.
TOOLING = {"pip", "setuptools", "wheel"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class AuditPlan:
    builds: list[str]
    project: projects.Project | None  # None: --python, an installed environment as it is
    python: Path | None
    app: str | None
    app_dir: Path
    allow: frozenset[str]
    mix: LoadMix | None
    measure: bool
    duration_s: float
    threads: int | None
    json_path: str | None
    build_from_source: bool = True
    build_timeout_s: float = fromsource.BUILD_TIMEOUT_S


def plan_audit(args: argparse.Namespace) -> AuditPlan:
    """Every argument checked before anything is installed or run."""
    app_dir = Path(args.app_dir).resolve()
    if args.app is not None:
        from ftscale.server.userapp import AppLoadError, split_spec

        try:
            split_spec(args.app)
        except AppLoadError as exc:
            raise UsageError(str(exc)) from None
        if not app_dir.is_dir():
            raise UsageError(f"--app-dir {args.app_dir}: not a directory")
    python: Path | None = None
    project: projects.Project | None = None
    if args.python is not None:
        if args.requirements or args.pyproject or args.builds:
            raise UsageError("--python audits one environment as it is: no -r, --pyproject or --builds")
        if not os.access(args.python, os.X_OK):
            raise UsageError(f"--python {args.python}: not an executable")
        if args.measure:
            raise UsageError("--measure serves the app from ftscale's environment of -r or --pyproject")
        python = args.python
        builds = []
    else:
        project = projects.find(args.requirements, args.pyproject, app_dir)
        if project.source == "none" and args.app is None:
            raise UsageError("nothing to audit: give -r requirements.txt, --pyproject, --app or --python")
        projects.check_references(project, building=not args.no_build)
        builds = choose(args.builds, AUDIT_BUILDS, provision.BUILDS, "build")
    mix = None
    if args.measure:
        if args.app is None:
            raise UsageError("--measure needs the app (--app MODULE:ATTR) and its requests")
        mix = request_mix(args)
        if args.duration <= 0:
            raise UsageError("--duration must be positive")
    if args.threads is not None and args.threads < 1:
        raise UsageError("--threads must be 1 or more")
    if args.build_timeout <= 0:
        raise UsageError("--build-timeout must be positive")
    return AuditPlan(
        builds=builds,
        project=project,
        python=python,
        app=args.app,
        app_dir=app_dir,
        allow=frozenset(canonical(a) for a in args.allow),
        mix=mix,
        measure=args.measure,
        duration_s=args.duration,
        threads=args.threads,
        json_path=args.json,
        build_from_source=not args.no_build and python is None,
        build_timeout_s=args.build_timeout,
    )


# --- wheels --------------------------------------------------------------------------------------


def _pip(python: Path, args: list[str], build: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(python), "-m", "pip", *args, "--disable-pip-version-check", *wheelhouse.install_source(build)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, env=checks.clean_env())


def _resolve(python: Path, requirements: list[str], build: str) -> tuple[list[dict[str, Any]] | None, str]:
    """pip's dry-run report of installing ``requirements`` from wheels (None and stderr if it fails)."""
    with tempfile.TemporaryDirectory(prefix="ftscale-audit-") as scratch:
        report = Path(scratch) / "report.json"
        args = ["install", "--dry-run", "--ignore-installed", "--only-binary=:all:", "-q"]
        proc = _pip(python, [*args, "--report", str(report), *requirements], build)
        if proc.returncode != 0 or not report.is_file():
            return None, proc.stderr
        items: list[dict[str, Any]] = json.loads(report.read_text()).get("install", [])
        return items, ""


def _wheel_name(item: Mapping[str, Any]) -> str | None:
    url = str(item.get("download_info", {}).get("url", ""))
    return url.rsplit("/", 1)[-1] or None


def _has_sdist(python: Path, name: str, build: str) -> str | None:
    """The newest version of ``name`` published as a source distribution (None: none found)."""
    proc = _pip(python, ["index", "versions", name, "--no-binary=:all:", "--json"], build)
    try:
        versions = json.loads(proc.stdout).get("versions", []) if proc.returncode == 0 else []
    except ValueError:
        return None
    return str(versions[0]) if versions else None


def _failed(requirement: str, stderr: str, python: Path, build: str) -> AuditRequirement:
    name = projects.requirement_name(requirement)
    if found := projects.NO_WHEEL.search(stderr):
        missing = projects.requirement_name(found[1])
        sdist = _has_sdist(python, missing, build)
        if sdist:
            detail = f"{missing} {sdist} is published as a source distribution only: pip would build it"
            return AuditRequirement(
                requirement=requirement, name=name, status="sdist-only", missing=missing, detail=detail
            )
        return AuditRequirement(
            requirement=requirement, name=name, status="no-wheel", missing=missing, detail="no distribution"
        )
    if found := projects.CONFLICT.search(stderr):
        return AuditRequirement(requirement=requirement, name=name, status="conflict", detail=found[1])
    last = next((ln.strip() for ln in reversed(stderr.splitlines()) if ln.strip()), "pip failed")
    return AuditRequirement(requirement=requirement, name=name, status="error", detail=last[-300:])


def _resolved(
    requirement: str,
    items: list[dict[str, Any]],
    built: frozenset[str] = frozenset(),
    spec: str | None = None,
) -> AuditRequirement:
    """The row of a requirement that resolves to ``items`` (its own resolution, or every
    requirement's); ``built``: the file names of wheels built from source; ``spec``: what was
    resolved in its place (the pin of a project built from its path or URL)."""
    name = projects.requirement_name(spec or requirement)
    item = next((i for i in items if canonical(i["metadata"]["name"]) == name), None)
    if item is None and ("/" in requirement or requirement.endswith(".whl")):
        item = next((i for i in items if i.get("requested")), None)  # a path or URL: what it named
    if item is None:
        detail = "not installed on this build (its environment marker excludes it)"
        return AuditRequirement(requirement=requirement, name=name, status="wheel", detail=detail)
    from_source = sorted(canonical(i["metadata"]["name"]) for i in items if _wheel_name(i) in built)
    return AuditRequirement(
        requirement=requirement,
        name=canonical(item["metadata"]["name"]),
        status="built" if from_source else "wheel",
        version=item["metadata"]["version"],
        wheel=_wheel_name(item),
        built=from_source,
    )


def _distributions(
    items: list[dict[str, Any]], built: frozenset[str] = frozenset()
) -> dict[str, AuditDistribution]:
    return {
        canonical(i["metadata"]["name"]): AuditDistribution(
            name=canonical(i["metadata"]["name"]),
            version=i["metadata"]["version"],
            wheel=_wheel_name(i),
            built=_wheel_name(i) in built,
        )
        for i in items
    }


def _unbuilt(requirement: str, failure: fromsource.BuildFailed) -> AuditRequirement:
    name = projects.requirement_name(requirement)
    missing = canonical(failure.name) if "/" not in failure.name and " " not in failure.name else None
    return AuditRequirement(
        requirement=requirement, name=name, status="unbuilt", missing=missing, detail=failure.piece
    )


def _building_rows(
    made: fromsource.Builder, lines: list[str], options: Sequence[str]
) -> tuple[list[AuditRequirement], list[AuditDistribution]]:
    """:func:`audit_requirements` where what has no wheel is built: each reference built first
    (a local project from a copy), then the requirements resolved together, and where that fails
    one by one, building what pip finds no wheel for."""
    rows: dict[str, AuditRequirement] = {}
    pins: dict[str, str] = {}  # a reference's line -> the pin of the wheel built from it
    for line in lines:
        if (ref := projects.reference(line)) is not None:
            try:
                wheel = made.project(ref.target, ref.line)
                pins[line] = f"{wheel.name}{ref.extras}=={wheel.version}"
            except fromsource.BuildFailed as exc:
                rows[line] = _unbuilt(line, exc)
    todo = [line for line in lines if line not in rows]
    specs = [pins.get(line, line) for line in todo]
    dists: dict[str, AuditDistribution] = {}
    try:
        items, _ = made.resolve([*options, *specs]) if specs else ([], "")
    except fromsource.BuildFailed:
        items = None
    together = items is not None
    built_any = together and any(_wheel_name(i) in made.names() for i in items or [])
    for line, spec in zip(todo, specs, strict=True):
        if together and not built_any:
            own: list[dict[str, Any]] | None = items  # nothing built: no need to tell whose it is
        else:  # alone: which distributions built from source each requirement brings
            try:
                own, stderr = made.resolve([*options, spec])
            except fromsource.BuildFailed as exc:
                rows[line] = _unbuilt(line, exc)
                continue
            if own is None:
                rows[line] = _failed(line, stderr, made.python, made.build)
                continue
        built = frozenset(made.names())
        rows[line] = _resolved(line, own or [], built, spec if line in pins else None)
        dists.update(_distributions(own or [], built))
    return [rows[line] for line in lines], sorted(dists.values(), key=lambda d: d.name)


def audit_requirements(
    python: Path,
    lines: list[str],
    build: str,
    options: Sequence[str] = (),
    made: fromsource.Builder | None = None,
) -> tuple[list[AuditRequirement], list[AuditDistribution]]:
    """Each requirement's status on ``build``, and every distribution the resolvable ones bring
    (``options``: where the requirements files say distributions come from; ``made``: what builds
    the distributions without a wheel, None for wheels only)."""
    if made is not None:
        return _building_rows(made, lines, options)
    items, _ = _resolve(python, [*options, *lines], build) if lines else ([], "")
    if items is not None:
        found = _distributions(items)
        return [_resolved(r, items) for r in lines], sorted(found.values(), key=lambda d: d.name)
    rows: list[AuditRequirement] = []
    dists: dict[str, AuditDistribution] = {}
    for line in lines:
        one, stderr = _resolve(python, [*options, line], build)
        if one is None:
            rows.append(_failed(line, stderr, python, build))
        else:
            rows.append(_resolved(line, one))
            dists.update(_distributions(one))
    return rows, sorted(dists.values(), key=lambda d: d.name)


# --- imports --------------------------------------------------------------------------------------


def audit_modules(
    python: Path, distributions: list[str], extensions: Mapping[str, list[str]] | None = None
) -> list[AuditModule]:
    """Every top-level module of ``distributions``, and every module of ``extensions`` (distribution
    -> extension modules), each imported alone in a fresh process."""
    owners = checks.top_level_modules(python, distributions)
    for dist, modules in (extensions or {}).items():
        owners[dist] = sorted({*owners.get(dist, []), *modules})
    pairs = sorted({(module, dist) for dist, modules in owners.items() for module in modules})
    workers = max(1, min(4, os.cpu_count() or 1))
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        found = list(pool.map(lambda pair: checks.module_check(python, pair[0]), pairs))
    return [
        AuditModule(**check.model_dump(), distribution=dist)
        for check, (_, dist) in zip(found, pairs, strict=True)
    ]


# --- measuring --------------------------------------------------------------------------------------


def measure(build: str, python: Path, plan: AuditPlan, log: Callable[[str], None]) -> AuditMeasure:
    """The app as the imports leave the GIL, then with ``PYTHON_GIL=0``: one short load each."""
    from ftscale.bench.http import run as http
    from ftscale.bench.http.cell import AppRequests, Outcome, Plan, Session, Settings
    from ftscale.bench.http.loadgen import wrk_path
    from ftscale.bench.http.procs import ServerError
    from ftscale.bench.http.real import Launcher, SubprocessGenerator

    assert plan.app is not None and plan.mix is not None
    available = sorted(os.sched_getaffinity(0))
    server, client = http.split_cpus(available) if len(available) > 1 else (available, available)
    threads = plan.threads or max(1, min(4, len(server)))
    generator = SubprocessGenerator("wrk" if wrk_path() else "python", client)
    result = AuditMeasure(
        threads=threads, duration_s=plan.duration_s, generator=generator.name, design="threadpool/single"
    )
    with tempfile.TemporaryDirectory(prefix="ftscale-audit-") as scratch:
        mix_file = Path(scratch) / "requests.json"
        mix_file.write_text(plan.mix.model_dump_json())
        cell = Plan(
            build, plan.app, "app", 0, "threadpool", "single", threads, http.app_connections(threads),
            app=AppRequests(str(mix_file)),
        )  # fmt: skip
        launcher = Launcher(
            {build: python}, server, "audit", ("--app", plan.app, "--app-dir", str(plan.app_dir)), APP_PREFIX
        )
        settings = Settings(duration_s=plan.duration_s, warmup_s=1.0, repetitions=1)
        loads: dict[str, AuditLoad] = {}
        for label in ("default", "0"):
            log(f"  {build}: measuring the app with PYTHON_GIL={'unset' if label == 'default' else label}")
            # An empty PYTHON_GIL is no setting: the GIL as the imports leave it.
            env = {"PYTHON_GIL": "" if label == "default" else label}
            session = Session(cell, _WithEnv(launcher, env), settings)
            out = Outcome(cell, "")
            try:
                with session:
                    rep = session.measure(generator, None, None, out)
            except (ServerError, RuntimeError, OSError, ValueError) as exc:
                return result.model_copy(update={"error": f"{session.state}: {exc}"})
            loads[label] = AuditLoad(
                python_gil="default" if label == "default" else "0",
                gil_enabled=out.info_before.gil_enabled if out.info_before else None,
                throughput_rps=rep.throughput_rps,
                requests=rep.requests,
                errors=rep.errors,
                latency_ms=rep.latency_ms,
            )
    default, off = loads["default"], loads["0"]
    ratio = off.throughput_rps / default.throughput_rps if default.throughput_rps > 0 else None
    return result.model_copy(update={"default": default, "gil_off": off, "ratio": ratio})


class _WithEnv:
    """A launcher whose servers all get ``env`` added to theirs."""

    def __init__(self, launcher: Any, env: dict[str, str]) -> None:
        self.launcher, self.env = launcher, env

    def start(self, plan: Any, env: Mapping[str, str] | None = None) -> Any:
        return self.launcher.start(plan, {**self.env, **(env or {})})


# --- one build, and the verdict ---------------------------------------------------------------------


def _culprit_names(culprit: str | None) -> set[str]:
    if not culprit:
        return set()
    module = culprit.split(" ")[0]
    return {canonical(module), canonical(module.split(".")[0])}


def _requirement_problem(r: AuditRequirement) -> str | None:
    if r.status in ("wheel", "built", "installed"):
        return None
    if r.status in ("no-wheel", "sdist-only"):
        source = "; pip would build it from source" if r.status == "sdist-only" else ""
        whose = f" (needs {r.missing})" if r.missing and r.missing != r.name else ""
        return f"{r.requirement}{whose}: {r.missing or r.name} has no wheel for this build{source}"
    if r.status == "unbuilt":
        whose = f"{r.missing} " if r.missing and r.missing != r.name else ""
        return f"{r.requirement}: {whose}does not build from source: {r.detail}"
    return f"{r.requirement}: {r.detail}"


def _turned_on_by(dist: AuditDistribution, modules: Sequence[AuditModule]) -> str | None:
    """The extension module of ``dist`` (built from source) that turned the GIL on when imported
    alone or with its package, as CPython named it (the warning, or the verbose mode's list)."""
    own = set(dist.extensions)
    for m in modules:
        if m.distribution == dist.name and m.ok and m.gil_enabled:
            named = [n for n in [m.gil_reenabled_by or "", *m.gil_modules] if n in own]
            if named:
                return named[0]
    return None


def outcome(r: AuditRequirement, build: AuditBuild) -> AuditRequirement:
    """The requirement's class on a free-threaded build where the audit built from source."""
    if r.status == "wheel":
        return r.model_copy(update={"outcome": "wheel"})
    if r.status == "unbuilt":
        return r.model_copy(update={"outcome": "does-not-build"})
    if r.status != "built":
        return r
    dists = {d.name: d for d in build.distributions}
    for name in r.built:
        if name in dists and (culprit := _turned_on_by(dists[name], build.modules)):
            return r.model_copy(update={"outcome": "built-gil-on", "gil_reenabled_by": culprit})
    return r.model_copy(update={"outcome": "built-gil-off"})


def judge(build: AuditBuild, allow: frozenset[str], app: str | None, classes: bool = False) -> AuditBuild:
    """What fails the audit on ``build`` (a free-threaded one), and what ``allow`` excuses;
    ``classes``: each requirement's class (:func:`outcome`) too.

    Each finding carries the names ``--allow`` may give for it: the requirement, the
    distribution without a wheel (or that did not build), the module, its distribution, the
    module CPython named.
    """
    if not build.free_threaded:
        return build
    if classes:
        build = build.model_copy(update={"requirements": [outcome(r, build) for r in build.requirements]})
    found: list[tuple[str, set[str]]] = []
    for r in build.requirements:
        problem = _requirement_problem(r)
        if problem is not None:
            found.append((problem, {r.name, canonical(r.missing or r.name)}))
    built = {d.name for d in build.distributions if d.built}
    blamed: set[tuple[str | None, str | None]] = set()
    for m in build.modules:
        if m.ok and m.gil_enabled:
            # A built distribution's extension modules are each imported too: one problem per
            # module that turned the GIL on, not one per module of the package that imports it.
            if m.distribution in built and (m.distribution, m.gil_reenabled_by) in blamed:
                continue
            blamed.add((m.distribution, m.gil_reenabled_by))
            names = {canonical(m.module), canonical(m.distribution or m.module)}
            text = f"importing {m.module} turns the GIL back on (enabled by {m.gil_reenabled_by})"
            found.append((text, names | _culprit_names(m.gil_reenabled_by)))
    if build.app is not None and not build.app.ok:
        found.append((str(build.app.error), {canonical(app or "")}))
    elif build.app is not None and build.app.gil_enabled:
        text = f"importing the app {app} turns the GIL back on (enabled by {build.app.gil_reenabled_by})"
        found.append((text, _culprit_names(build.app.gil_reenabled_by)))
    found = [(f"{build.build}: {text}", names) for text, names in found]
    problems = [text for text, names in found if not names & allow]
    allowed = [text for text, names in found if names & allow]
    return build.model_copy(update={"problems": problems, "allowed": allowed})


def _installable(rows: Sequence[AuditRequirement]) -> list[str]:
    """What to install of the rows that resolve: each requirement, or the pin of what was built
    from its path or URL."""
    out = []
    for r in rows:
        if r.status not in ("wheel", "built"):
            continue
        out.append(
            f"{r.name}=={r.version}" if projects.reference(r.requirement) and r.version else r.requirement
        )
    return out


def audit_build(build: str, plan: AuditPlan, log: Callable[[str], None]) -> AuditBuild:
    """Everything the audit finds on one provisioned build."""
    assert plan.project is not None
    interpreter = provision.linked(build)
    assert interpreter is not None
    facts = checks.facts(interpreter)
    free_threaded = bool(facts["py_gil_disabled"])
    made = (
        projects.builder(build, plan.project, plan.build_timeout_s, log) if plan.build_from_source else None
    )
    how = "from wheels, building from source what has none" if made else "from wheels"
    log(f"{build}: resolving the requirements {how}")
    # What does not all install is audited in a throw-away environment: the project's own is
    # never left half made.
    with tempfile.TemporaryDirectory(prefix="ftscale-audit-env-") as scratch:
        python: Path | None
        try:
            python = projects.ensure(build, plan.project, log, made)
        except (UsageError, envs.EnvError, fromsource.BuildFailed):
            python = None
        lines, options = projects.requirement_lines(plan.project), projects.pip_options(plan.project)
        rows, dists = audit_requirements(interpreter, lines, build, options, made)
        if made is not None and any(d.built for d in dists):
            names = [d.name for d in dists if d.built]
            log(f"{build}: built from source: {', '.join(names)}")
        complete = python is not None
        if python is None:
            args = [*options, *projects.serving_core(), *_installable(rows)]
            try:
                python = envs.make_env(
                    build, Path(scratch) / build, args, log=log, find_links=made.folder if made else None
                )
            except envs.CommandFailed as exc:
                why = envs.pip_reason(exc.stderr)
                error = f"the requirements that resolve alone do not install together: {why}"
                record = AuditBuild(
                    build=build,
                    version=facts["version"],
                    free_threaded=free_threaded,
                    python=str(interpreter),
                )
                return record.model_copy(update={"requirements": rows, "error": error})
        record = AuditBuild(
            build=build, version=facts["version"], free_threaded=free_threaded, python=str(python)
        )
        built = [d.name for d in dists if d.built]
        extensions = checks.extension_modules(python, built) if built else {}
        dists = [d.model_copy(update={"extensions": extensions.get(d.name, [])}) for d in dists]
        log(f"{build}: importing {len(dists)} distributions' modules one by one")
        modules = audit_modules(python, [d.name for d in dists], extensions)
        record = record.model_copy(update={"requirements": rows, "distributions": dists, "modules": modules})
        if plan.app is not None:
            record = record.model_copy(update={"app": checks.app_check(python, plan.app, plan.app_dir)})
        if plan.measure and free_threaded and complete and record.app is not None and record.app.ok:
            record = record.model_copy(update={"measure": measure(build, python, plan, log)})
    return judge(record, plan.allow, plan.app, classes=made is not None)


def audit_environment(plan: AuditPlan, log: Callable[[str], None]) -> AuditBuild:
    """``--python``: an installed environment as it is, every distribution in it."""
    assert plan.python is not None
    python = plan.python
    facts = checks.facts(python, packages=True)
    packages: dict[str, str] = facts.get("packages", {})
    names = sorted(canonical(n) for n in packages if canonical(n) not in TOOLING)
    versions = {canonical(n): v for n, v in packages.items()}
    rows = [
        AuditRequirement(requirement=n, name=n, status="installed", version=versions.get(n)) for n in names
    ]
    dists = [AuditDistribution(name=n, version=versions.get(n)) for n in names]
    log(f"{facts['build']}: importing {len(names)} distributions' modules one by one")
    record = AuditBuild(
        build=facts["build"],
        version=facts["version"],
        free_threaded=bool(facts["py_gil_disabled"]),
        python=str(python),
        requirements=rows,
        distributions=dists,
        modules=audit_modules(python, names),
    )
    if plan.app is not None:
        record = record.model_copy(update={"app": checks.app_check(python, plan.app, plan.app_dir)})
    return judge(record, plan.allow, plan.app)


def audit(plan: AuditPlan, log: Callable[[str], None] = print) -> AuditReport:
    if plan.python is not None:
        builds = [audit_environment(plan, log)]
        source = f"the environment of {plan.python}"
    else:
        assert plan.project is not None
        envs.provisioned(plan.builds, log)
        builds = [audit_build(b, plan, log) for b in plan.builds]
        source = plan.project.source
    problems = [p for b in builds for p in b.problems]
    problems += [f"{b.build}: {b.error}" for b in builds if b.error and b.free_threaded]
    return AuditReport(
        created=results.now(),
        host=socket.gethostname(),
        source=source,
        app=plan.app,
        allow=sorted(plan.allow),
        builds=builds,
        passed=not problems,
        problems=problems,
        build_from_source=plan.build_from_source,
        build_timeout_s=plan.build_timeout_s if plan.build_from_source else None,
    )


# --- the table ----------------------------------------------------------------------------------------


def wheel_kind(wheel: str | None) -> str:
    """``markupsafe-3.0.4-cp314-cp314t-manylinux….whl`` -> ``cp314t``; a pure wheel -> ``pure Python``."""
    if not wheel or not wheel.endswith(".whl"):
        return "installed" if not wheel else "?"
    _, abi, platform = wheel[: -len(".whl")].split("-")[-3:]
    return "pure Python" if abi == "none" and platform == "any" else abi


def _requirement_cell(r: AuditRequirement) -> str:
    if r.status == "wheel":
        return f"{r.version} ({wheel_kind(r.wheel)})" if r.version else str(r.detail)
    if r.status == "built":
        own = r.name in r.built
        kind = f"built from source, {wheel_kind(r.wheel)}" if own else wheel_kind(r.wheel)
        others = [b for b in r.built if b != r.name]
        return f"{r.version} ({kind})" + (f"; built from source: {', '.join(others)}" if others else "")
    if r.status == "unbuilt":
        who = f"{r.missing}: " if r.missing and r.missing != r.name else ""
        return f"DOES NOT BUILD  {who}{r.detail or ''}"
    if r.status == "installed":
        return f"{r.version} (installed)"
    if r.status in ("no-wheel", "sdist-only"):
        who = f"{r.missing}: " if r.missing and r.missing != r.name else ""
        return f"NO WHEEL  {who}{r.detail or ''}"
    return f"{r.status.upper()}  {r.detail or ''}"


def _gil_cell(free_threaded: bool, ok: bool, error: str | None, on: bool, culprit: str | None) -> str:
    if not ok:
        return f"import failed: {error}"
    if not free_threaded:
        return "imports (GIL build)"
    return f"GIL ON: enabled by {culprit}" if on else "GIL stays off"


def _owners(b: AuditBuild) -> dict[str, str]:
    """Each module's distribution, its version and the kind of wheel it came in."""
    dists = {d.name: d for d in b.distributions}
    out = {}
    for m in b.modules:
        d = dists.get(m.distribution or "")
        built = "built, " if d and d.built else ""
        out[m.module] = f"{d.name} {d.version} ({built}{wheel_kind(d.wheel)})" if d else str(m.distribution)
    return out


# The four classes, in the order the table lists them, with what each says of a requirement.
CLASSES = (
    ("wheel", "ships a wheel for this build"),
    ("built-gil-off", "builds from source, the GIL stays off"),
    ("built-gil-on", "builds from source, turns the GIL on"),
    ("does-not-build", "does not build here"),
)


def _class_item(r: AuditRequirement) -> str:
    if r.outcome == "built-gil-off":
        kinds = "pure Python" if wheel_kind(r.wheel) == "pure Python" else "an extension"
        return f"{r.requirement} ({kinds if r.name in r.built else 'built: ' + ', '.join(r.built)})"
    if r.outcome == "built-gil-on":
        return f"{r.requirement}: the GIL turned on by {r.gil_reenabled_by}"
    if r.outcome == "does-not-build":
        who = f"{r.missing}: " if r.missing and r.missing != r.name else ""
        return f"{r.requirement}: {who}{r.detail}"
    return r.requirement


def class_lines(b: AuditBuild) -> list[str]:
    """The build's requirements by class (where the audit built from source, on a free-threaded build):
    the first two as lists, the two that fail one requirement a line, each with its reason."""
    if not any(r.outcome for r in b.requirements):
        return []
    lines = ["  requirements by class:"]
    for key, words in CLASSES:
        items = [_class_item(r) for r in b.requirements if r.outcome == key]
        if not items:
            lines.append(f"    {words}: none")
        elif key in ("wheel", "built-gil-off"):
            lines.append(f"    {words} ({len(items)}): {', '.join(items)}")
        else:
            lines += [f"    {words} ({len(items)}):", *(f"      {item}" for item in items)]
    return lines


def _app_line(check: AppCheck, free_threaded: bool) -> str:
    return _gil_cell(free_threaded, check.ok, check.error, check.gil_enabled, check.gil_reenabled_by)


def render(report: AuditReport) -> str:
    """The audit as a table per build and a verdict, for a terminal (or a text file)."""
    lines = [f"ftscale audit of {report.source}" + (f", app {report.app}" if report.app else "")]
    if report.build_from_source:
        limit = f"{report.build_timeout_s:g} s" if report.build_timeout_s else "no limit"
        lines.append(f"(what has no wheel is built from source, the way pip would, at most {limit} each)")
    for b in report.builds:
        kind = "free-threaded" if b.free_threaded else "GIL build, for contrast"
        lines += ["", f"{b.build} (CPython {b.version}, {kind})"]
        if b.requirements:
            width = max(len(r.requirement) for r in b.requirements)
            lines.append(f"  {'requirement':{width}}  wheel")
            lines += [f"  {r.requirement:{width}}  {_requirement_cell(r)}" for r in b.requirements]
        if b.modules:
            owner = _owners(b)
            width = max(len(m.module) for m in b.modules)
            dwidth = max(len(o) for o in owner.values())
            lines.append(f"  {'module':{width}}  {'from':{dwidth}}  after a fresh import")
            for m in b.modules:
                gil = _gil_cell(b.free_threaded, m.ok, m.error, m.gil_enabled, m.gil_reenabled_by)
                lines.append(f"  {m.module:{width}}  {owner[m.module]:{dwidth}}  {gil}")
        lines += class_lines(b)
        if b.app is not None:
            lines.append(f"  app {b.app.app}: {_app_line(b.app, b.free_threaded)}")
        if b.measure is not None:
            lines.append("  " + _measure_line(b.measure))
        if b.error:
            lines.append(f"  not audited further: {b.error}")
        lines += [f"  allowed (--allow): {a}" for a in b.allowed]
    lines.append("")
    allowed = sum(len(b.allowed) for b in report.builds)
    if report.passed and allowed:
        lines.append(f"PASS with {allowed} allowed exception(s) (--allow), listed above")
    elif report.passed and any(r.status == "built" for b in report.builds for r in b.requirements):
        lines.append(
            "PASS: every requirement has a wheel or builds from source, and the GIL stays off on every "
            "free-threaded build"
        )
    elif report.passed:
        lines.append("PASS: every requirement has a wheel and the GIL stays off on every free-threaded build")
    else:
        lines.append(f"FAIL: {len(report.problems)} problem(s) on free-threaded builds:")
        lines += [f"  - {p}" for p in report.problems]
    return "\n".join(lines)


def _measure_line(m: AuditMeasure) -> str:
    if m.error or m.default is None or m.gil_off is None:
        return f"measure: failed ({m.error})"

    def one(load: AuditLoad) -> str:
        gil = "?" if load.gil_enabled is None else ("on" if load.gil_enabled else "off")
        errors = sum(load.errors.values())
        return f"{load.throughput_rps:,.0f} req/s (GIL {gil}{f', {errors} errors' if errors else ''})"

    ratio = f"{m.ratio:.2f}x" if m.ratio is not None else "n/a"
    if m.default.gil_enabled is False and m.gil_off.gil_enabled is False:
        # One short load each, with the GIL off in both: the ratio is only run-to-run variation.
        ratio += " (the GIL was off in both: no cost to find, the difference is run-to-run variation)"
    return (
        f"measure ({m.design}, {m.threads} thread{'s' if m.threads != 1 else ''}, {m.duration_s:g} s, "
        f"{m.generator}): default "
        f"{one(m.default)}, PYTHON_GIL=0 {one(m.gil_off)}: {ratio}"
    )


# --- the command ------------------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    plan = plan_audit(args)
    # Progress goes to stderr: standard output is the table (or the JSON), ready to keep in a file.
    report = audit(plan, log=lambda m: print(m, file=sys.stderr, flush=True))
    data = report.model_dump_json(indent=1)
    if plan.json_path == "-":
        print(data)
    else:
        print(render(report))
        if plan.json_path:
            results.write_atomic(Path(plan.json_path), (data + "\n").encode())
    return 0 if report.passed else 1


def command(args: argparse.Namespace) -> int:
    """The ``ftscale audit`` command (exit status 0 pass, 1 a problem found or a failure, 2 bad input)."""
    return engine.main_guard("ftscale audit", lambda: run(args))
