"""``ftscale audit``: which of your requirements keep your app from running free-threaded.

For each build (3.13t and 3.14t, and their GIL twins for contrast) and the project's
requirements (``-r``, ``--pyproject`` or the project folder's own; ``--python`` audits an
installed environment as it is instead):

1. **Wheels** (:mod:`ftscale.bench.app.audit_wheels`). The build's own pip resolves the
   requirements from binary wheels only (``pip install --dry-run --report``), all together
   and, where that fails, one by one: each resolves to a wheel (its file name carries its tags).
   A distribution without one is built from source the way pip would build it
   (:mod:`ftscale.bench.env.fromsource`: ``pip wheel --no-deps``, time-limited), and the
   requirement resolves with the wheel built, or is one line saying what its build lacked; with
   ``--no-build``, it is named, with whether a source distribution exists that pip would build.
   A requirement naming a project by path or URL (``-e .``) is built the same way, a local one
   from a copy.
2. **Imports.** What resolves is installed into the project's environment of that build (the
   one ``ftscale app`` serves from; a throw-away one when not everything resolves), and every
   top-level module of every distribution it installed, and every extension module of each
   distribution built from source, is imported alone in a fresh process
   (:mod:`ftscale.bench.app.checks`): does the GIL stay off? If not, CPython's RuntimeWarning
   names the module that turned it on, or, failing that, its verbose mode names each extension
   module loaded without the free-threading slot. With ``--app``, the app itself is imported
   the same way.
3. **Measure** (``--measure``, free-threaded builds; :mod:`ftscale.bench.app.audit_measure`): one
   short closed-loop load of the app as the imports leave the GIL, and one with ``PYTHON_GIL=0``,
   on fresh servers: what the GIL that came back costs. One load each, not a benchmark
   (``ftscale app`` is).

On a free-threaded build, each requirement falls in one of four classes: it ships a wheel for
the build; it builds from source and keeps the GIL off; it builds and one of its extension
modules turns the GIL on; it does not build here. The audit fails (exit status 1) when, on a
free-threaded build, a requirement does not build (or, with ``--no-build``, lacks a wheel), a
module or the app turns the GIL back on, or the app does not import, unless ``--allow`` names
the requirement, distribution or module. The GIL twins are shown for contrast and never fail
it. A module that does not import alone is listed, not failed: some need their package's
configuration (the verdict: :mod:`ftscale.bench.app.audit_verdict`). Bad input (a missing file,
a malformed option) is one line and exit status 2 (:mod:`ftscale.bench.app.audit_plan`). The
table: :mod:`ftscale.bench.app.audit_render`.

This module runs the steps, build by build, into one :class:`~ftscale.schema.AuditReport`.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import os
import socket
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from ftscale.bench import engine, results
from ftscale.bench.app import checks
from ftscale.bench.app.audit_measure import measure
from ftscale.bench.app.audit_plan import AuditPlan, plan_audit
from ftscale.bench.app.audit_render import render
from ftscale.bench.app.audit_verdict import judge
from ftscale.bench.app.audit_wheels import audit_requirements
from ftscale.bench.env import fromsource, provision
from ftscale.bench.env import project as projects
from ftscale.bench.env import venv as envs
from ftscale.bench.env.fromsource import canonical
from ftscale.errors import UsageError
from ftscale.schema import AuditBuild, AuditDistribution, AuditModule, AuditReport, AuditRequirement

# Distributions every environment has that are not the project's.
TOOLING = {"pip", "setuptools", "wheel"}


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


# --- one build -------------------------------------------------------------------------------------


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
