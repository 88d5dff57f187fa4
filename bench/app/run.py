"""``ftscale app MODULE:ATTR``: your own ASGI app through the HTTP bench, build against build.

Everything ``ftscale bench`` does, with the app in place of the service
(:mod:`ftscale.bench.http.plan` plans it with :class:`AppServing` as its server source,
:mod:`ftscale.bench.http.run` runs the sweep): presets, builds, designs, thread counts, a fresh
server per repetition pinned to its CPUs, closed and open load, the generator's ceiling,
statistics, flags, resume, budget and report. What differs:

- **Environments.** Each build gets one with the project's requirements and ftscale's serving
  core, from binary wheels, what has none built from source for the build (time-limited; with
  ``--no-build``, wheels only) (:mod:`ftscale.bench.env.project`); the project folder goes first
  on the app's import path. A requirement that does not build (or, with ``--no-build``, has no
  wheel) is one line naming it, before anything is written; what was built is in the run's notes.
- **The app** is imported once per build in a fresh process before the run
  (:mod:`ftscale.bench.app.checks`): a module that does not import or an attribute that is not
  an ASGI app is one line, exit status 2. Where the import turns the GIL back on, the module
  that did it is named in the run's notes and its build record, and every cell of that build is
  flagged (the server's own ``/__ftscale/info`` says the GIL is on).
- **Requests** come from the mix (:mod:`ftscale.bench.http.mix`), resolved once and written to
  the run directory as ``requests.json``; every answer is judged by what its request expects.
- **The mode** is ``threadpool``: the app decides where its work runs. A design is a topology.

A cell's "workload" is the app (``MODULE:ATTR``), its class "app", its size 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from ftscale.bench import engine, results
from ftscale.bench.app import checks
from ftscale.bench.app.options import PRESETS, build_app_parser
from ftscale.bench.env import fromsource, provision
from ftscale.bench.env import project as projects
from ftscale.bench.env import venv as envs
from ftscale.bench.http import mix as mixes
from ftscale.bench.http import plan as http_plan
from ftscale.bench.http import run as http_run
from ftscale.bench.http.cells import AppRequests
from ftscale.bench.options import choose
from ftscale.errors import UsageError
from ftscale.schema import AppCheck, Build, LoadMix
from ftscale.server.userapp import AppLoadError, split_spec
from ftscale.vocab import APP_PREFIX

MIX_FILE = "requests.json"


def request_mix(args: argparse.Namespace) -> LoadMix:
    """The resolved mix of ``--requests FILE`` or ``--request`` (bodies relative to its file or here).

    A mix file's bodies stay inside its folder unless ``--allow-outside-files``; a ``--request
    @FILE`` names its file on the command line itself, and is taken as named.
    """
    if args.requests and args.request:
        raise UsageError("give the requests as --requests FILE or as --request, not both")
    if args.requests:
        mix = mixes.load_mix_file(args.requests)
        return mixes.resolve(mix, args.requests.parent, confined=not args.allow_outside_files)
    if args.request:
        from ftscale.schema import RequestMix

        one = RequestMix(requests=[mixes.parse_request(r) for r in args.request])
        return mixes.resolve(one, Path.cwd(), confined=False)
    raise UsageError("no requests: give a request mix (--requests FILE) or --request 'METHOD PATH [@FILE]'")


class AppServing:
    """A user's app for the HTTP bench (its :class:`~ftscale.bench.http.plan.AppSource`): its
    environments, checks and what the run records of it."""

    def __init__(
        self,
        spec: str,
        app_dir: Path,
        project: projects.Project,
        mix: LoadMix,
        build_timeout_s: float | None = fromsource.BUILD_TIMEOUT_S,
    ) -> None:
        """``build_timeout_s``: the limit of each source build (None: wheels only, ``--no-build``)."""
        self.spec, self.app_dir, self.project, self.mix = spec, app_dir, project, mix
        self.build_timeout_s = build_timeout_s
        self.checks: dict[str, AppCheck] = {}
        self.built: dict[str, list[fromsource.Built]] = {}  # per build: the wheels built from source

    @property
    def command(self) -> str:
        return "app"

    @property
    def server_args(self) -> tuple[str, ...]:
        return ("--app", self.spec, "--app-dir", str(self.app_dir))

    @property
    def prefix(self) -> str:
        return APP_PREFIX

    @property
    def files(self) -> dict[str, bytes]:
        return {MIX_FILE: self.mix.model_dump_json(indent=1).encode()}

    def prepare(
        self, builds: list[str], log: Callable[[str], None]
    ) -> tuple[dict[str, Build], dict[str, Path]]:
        """Each build's environment and its record, the app imported in it (nothing written yet)."""
        envs.provisioned(builds, log)
        records: dict[str, Build] = {}
        pythons: dict[str, Path] = {}
        for build in builds:
            made = None
            if self.build_timeout_s is not None:
                made = projects.builder(build, self.project, self.build_timeout_s, log)
            python = projects.ensure(build, self.project, log, made)
            if made is not None and made.built():
                self.built[build] = made.built()
            check = checks.app_check(python, self.spec, self.app_dir)
            if not check.ok:
                raise UsageError(f"{check.error} (in {build}'s environment)")
            if check.py_gil_disabled and check.gil_enabled:
                log(
                    f"warning: {build}: importing {self.spec} turned the GIL back on "
                    f"({check.gil_reenabled_by}); its cells will be flagged"
                )
            self.checks[build] = check
            record = envs.describe(build, python)
            pythons[build] = python
            records[build] = record.model_copy(
                update={"gil_enabled": check.gil_enabled, "gil_reenabled_by": check.gil_reenabled_by}
            )
        return records, pythons

    @property
    def config(self) -> dict[str, Any]:
        return {
            "spec": self.spec,
            "app_dir": str(self.app_dir),
            "requirements": self.project.source,
            "requests": mixes.describe(self.mix),
            "mix_file": MIX_FILE,
            "prefix": APP_PREFIX,
        }

    def notes(self, builds: dict[str, Build]) -> list[str]:
        out = [
            f"Your app {self.spec} (from {self.app_dir}; requirements: {self.project.source}) served by "
            "ftscale's own server code: uvicorn's h11 protocol, TCP_NODELAY on every connection, accepts "
            f"balanced between units; ftscale's /health and /info under {APP_PREFIX}/, nothing else added.",
            f"Requests ({MIX_FILE}): {mixes.describe(self.mix)}. An answer with another status than its "
            "request expects is an error; the JSON field checks run on every answer of the built-in "
            "generator and, with wrk, once per request kind on every fresh server before it is measured.",
            "Mode threadpool: the app decides where its work runs (FastAPI 'def' endpoints in Starlette's "
            "thread pool, sized to the pool size on every event loop; 'async def' on the loop).",
        ]
        for build, wheels in sorted(self.built.items()):
            listed = ", ".join(f"{w.name} {w.version} ({w.kind})" for w in wheels)
            out.append(f"{build}: built from source for its environment (no wheel for the build): {listed}.")
        for build, check in sorted(self.checks.items()):
            if check.py_gil_disabled and check.gil_enabled:
                out.append(
                    f"{build}: importing the app turned the GIL back on ({check.gil_reenabled_by}): its "
                    "cells are flagged GIL-on and measure a free-threaded build running with the GIL."
                )
        return out


def plan_job(args: argparse.Namespace, argv: list[str]) -> http_plan.HttpPlan:
    """Every argument checked, the project, app and mix read, before anything is written."""
    if not args.resume and not args.app:
        raise UsageError("which app? give it as MODULE:ATTR, e.g. ftscale app myservice.main:app ...")
    if not args.resume and not args.run_id:
        args.run_id = results.new_run_id("app")
    args, place = engine.open_run(
        args, "http", lambda saved: build_app_parser().parse_args(saved), command="app"
    )
    if place.resuming:
        argv = list(results.RunDir(place.path).read_meta().config.get("argv", []))
    try:
        split_spec(args.app)
    except AppLoadError as exc:
        raise UsageError(str(exc)) from None
    app_dir = Path(args.app_dir).resolve()
    if not app_dir.is_dir():
        raise UsageError(f"--app-dir {args.app_dir}: not a directory")
    project = projects.find(args.requirements, args.pyproject, app_dir)
    projects.check_references(project, building=not args.no_build)
    if args.build_timeout <= 0:
        raise UsageError("--build-timeout must be positive")
    mix = request_mix(args)
    preset = PRESETS[args.preset]
    builds = choose(args.builds, preset.builds, provision.BUILDS, "build")
    designs = args.designs or (preset.free_threaded_designs, preset.gil_designs)
    timeout_s = None if args.no_build else args.build_timeout
    serving = AppServing(spec=args.app, app_dir=app_dir, project=project, mix=mix, build_timeout_s=timeout_s)
    return http_plan.sweep_plan(
        args,
        argv,
        place,
        preset,
        builds,
        [args.app],
        designs,
        {},
        app_source=serving,
        app=AppRequests(str(place.path.resolve() / MIX_FILE)),
    )


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """``ftscale app``: plan, prepare each build's environment, sweep, report."""
    slot_started, began = results.now(), time.monotonic()  # the budget counts from here
    return http_run.execute(plan_job(args, list(argv)), args, slot_started, began)


def command(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """The ``ftscale app`` command, with the engine's signal handling and exit statuses."""
    return engine.main_guard("ftscale app", lambda: run(args, argv))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    return engine.main_guard("ftscale app", lambda: run(build_app_parser().parse_args(argv), argv))
