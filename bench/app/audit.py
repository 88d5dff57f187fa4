"""``ftscale audit``: which of your requirements keep your app from running free-threaded.

For each build (3.13t and 3.14t, and their GIL twins for contrast) and the project's
requirements (``-r``, ``--pyproject`` or the project folder's own; ``--python`` audits an
installed environment as it is instead):

1. **Wheels.** The build's own pip resolves the requirements from binary wheels only
   (``pip install --dry-run --report``), all together and, where that fails, one by one: each
   resolves to a wheel (its file name carries its tags), or the distribution without one is
   named, with whether a source distribution exists that pip would build (ftscale never does).
2. **Imports.** What resolves is installed into the project's environment of that build (the
   one ``ftscale app`` serves from), and every top-level module of every distribution it
   installed is imported alone in a fresh process (:mod:`ftscale.bench.app.checks`): does
   the GIL stay off? If not, CPython's RuntimeWarning names the module that turned it on.
   With ``--app``, the app itself is imported the same way.
3. **Measure** (``--measure``, free-threaded builds): one short closed-loop load of the app as
   the imports leave the GIL, and one with ``PYTHON_GIL=0``, on fresh servers: what the GIL
   that came back costs. One load each, not a benchmark (``ftscale app`` is).

The audit fails (exit status 1) when, on a free-threaded build, a requirement lacks a wheel, a
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
from ftscale.bench.env import project as projects
from ftscale.bench.env import provision, wheelhouse
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


def _resolved(requirement: str, items: list[dict[str, Any]]) -> AuditRequirement:
    name = projects.requirement_name(requirement)
    item = next((i for i in items if canonical(i["metadata"]["name"]) == name), None)
    if item is None and ("/" in requirement or requirement.endswith(".whl")):
        item = next((i for i in items if i.get("requested")), None)  # a path or URL: what it named
    if item is None:
        detail = "not installed on this build (its environment marker excludes it)"
        return AuditRequirement(requirement=requirement, name=name, status="wheel", detail=detail)
    return AuditRequirement(
        requirement=requirement,
        name=canonical(item["metadata"]["name"]),
        status="wheel",
        version=item["metadata"]["version"],
        wheel=_wheel_name(item),
    )


def _distributions(items: list[dict[str, Any]]) -> dict[str, AuditDistribution]:
    return {
        canonical(i["metadata"]["name"]): AuditDistribution(
            name=canonical(i["metadata"]["name"]), version=i["metadata"]["version"], wheel=_wheel_name(i)
        )
        for i in items
    }


def audit_requirements(
    python: Path,
    lines: list[str],
    build: str,
    options: Sequence[str] = (),
) -> tuple[list[AuditRequirement], list[AuditDistribution]]:
    """Each requirement's status on ``build``, and every distribution the resolvable ones bring
    (``options``: where the requirements files say distributions come from)."""
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


def audit_modules(python: Path, distributions: list[str]) -> list[AuditModule]:
    """Every top-level module of ``distributions``, each imported alone in a fresh process."""
    owners = checks.top_level_modules(python, distributions)
    pairs = sorted((module, dist) for dist, modules in owners.items() for module in modules)
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
    if r.status in ("wheel", "installed"):
        return None
    if r.status in ("no-wheel", "sdist-only"):
        source = "; pip would build it from source" if r.status == "sdist-only" else ""
        whose = f" (needs {r.missing})" if r.missing and r.missing != r.name else ""
        return f"{r.requirement}{whose}: {r.missing or r.name} has no wheel for this build{source}"
    return f"{r.requirement}: {r.detail}"


def judge(build: AuditBuild, allow: frozenset[str], app: str | None) -> AuditBuild:
    """What fails the audit on ``build`` (a free-threaded one), and what ``allow`` excuses.

    Each finding carries the names ``--allow`` may give for it: the requirement, the
    distribution without a wheel, the module, its distribution, the module CPython named.
    """
    if not build.free_threaded:
        return build
    found: list[tuple[str, set[str]]] = []
    for r in build.requirements:
        problem = _requirement_problem(r)
        if problem is not None:
            found.append((problem, {r.name, canonical(r.missing or r.name)}))
    for m in build.modules:
        if m.ok and m.gil_enabled:
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


def audit_build(build: str, plan: AuditPlan, log: Callable[[str], None]) -> AuditBuild:
    """Everything the audit finds on one provisioned build."""
    assert plan.project is not None
    interpreter = provision.linked(build)
    assert interpreter is not None
    facts = checks.facts(interpreter)
    free_threaded = bool(facts["py_gil_disabled"])
    log(f"{build}: resolving the requirements from wheels")
    complete = True
    try:
        python = projects.ensure(build, plan.project, log)
    except (UsageError, envs.EnvError):  # something does not install from wheels: audit what does
        complete = False
        python = projects.env_dir(build, plan.project) / "bin" / "python"
    record = AuditBuild(
        build=build, version=facts["version"], free_threaded=free_threaded, python=str(python)
    )
    if not python.exists():
        return record.model_copy(update={"error": "the environment could not be created"})
    lines, options = projects.requirement_lines(plan.project), projects.pip_options(plan.project)
    rows, dists = audit_requirements(python, lines, build, options)
    if not complete:
        good = [r.requirement for r in rows if r.status == "wheel"]
        args = ["install", "-q", "--only-binary=:all:", *options, *projects.serving_core(), *good]
        proc = _pip(python, args, build)
        if proc.returncode != 0:
            error = (
                f"the requirements that resolve alone do not install together: {proc.stderr.strip()[-300:]}"
            )
            return record.model_copy(update={"requirements": rows, "error": error})
    log(f"{build}: importing {len(dists)} distributions' modules one by one")
    modules = audit_modules(python, [d.name for d in dists])
    record = record.model_copy(update={"requirements": rows, "distributions": dists, "modules": modules})
    if plan.app is not None:
        record = record.model_copy(update={"app": checks.app_check(python, plan.app, plan.app_dir)})
    if plan.measure and free_threaded and complete and record.app is not None and record.app.ok:
        record = record.model_copy(update={"measure": measure(build, python, plan, log)})
    return judge(record, plan.allow, plan.app)


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
        out[m.module] = f"{d.name} {d.version} ({wheel_kind(d.wheel)})" if d else str(m.distribution)
    return out


def _app_line(check: AppCheck, free_threaded: bool) -> str:
    return _gil_cell(free_threaded, check.ok, check.error, check.gil_enabled, check.gil_reenabled_by)


def render(report: AuditReport) -> str:
    """The audit as a table per build and a verdict, for a terminal (or a text file)."""
    lines = [f"ftscale audit of {report.source}" + (f", app {report.app}" if report.app else "")]
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
