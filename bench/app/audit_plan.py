"""``ftscale audit``'s plan: every argument checked, before anything is installed or run."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from ftscale.bench.app.audit_options import AUDIT_BUILDS
from ftscale.bench.app.run import request_mix
from ftscale.bench.env import fromsource, provision
from ftscale.bench.env import project as projects
from ftscale.bench.env.fromsource import canonical
from ftscale.bench.options import choose
from ftscale.errors import UsageError
from ftscale.schema import LoadMix


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
