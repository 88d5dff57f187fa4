"""``ftscale app``: its options and presets (and what ``ftscale audit`` shares), standard library only.

A user's app decides itself where its work runs (FastAPI runs ``def`` endpoints in Starlette's
thread pool, ``async def`` ones on the event loop), so its only mode is ``threadpool`` and a
*design* is a topology: one event loop with its thread pool sized N (``single``), N worker
processes (``workers``) or N event loops in one process (``loops``). As for the service, the
fair comparison gives the free-threaded build its thread designs and the GIL build its
scale-out design, and each build is also measured as a plain single process is deployed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ftscale.bench.env import fromsource
from ftscale.bench.env.provision import BUILDS
from ftscale.bench.http.options import TOPOLOGIES, Design, Preset, add_sweep_arguments, parse_designs
from ftscale.bench.options import Parser, add_run_arguments
from ftscale.vocab import APP_PREFIX, Mode

APP_MODE = str(Mode.THREADPOOL)
ALL_APP_DESIGNS: tuple[Design, ...] = tuple(Design(APP_MODE, t) for t in TOPOLOGIES)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset(
            "quick",
            "3.14 against 3.14t: the app on one event loop with its thread pool on both, on N event "
            "loops on 3.14t and in N worker processes on 3.14; 3 repetitions of 2 s",
            ("3.14", "3.14t"),
            (),
            (Design(APP_MODE, "single"), Design(APP_MODE, "loops")),
            (Design(APP_MODE, "single"), Design(APP_MODE, "workers")),
            repetitions=3,
            duration_s=2.0,
            warmup_s=0.5,
        ),
        Preset(
            "full",
            "every build, every topology on every build, 5 repetitions of 3 s",
            BUILDS,
            (),
            ALL_APP_DESIGNS,
            ALL_APP_DESIGNS,
            repetitions=5,
            duration_s=3.0,
            warmup_s=1.0,
        ),
    )
}

DESCRIPTION = (
    "Benchmark your own ASGI app (FastAPI or any ASGI 3 app) on GIL and free-threaded builds, the way "
    "'ftscale bench' benchmarks the service: its requirements installed into each build's environment "
    "(wheels only), its request mix sent by weight, every answer checked, a fresh server per repetition, "
    "the same topologies, statistics, flags and report."
)
EPILOG = (
    "Presets: "
    + "; ".join(f"{p.name}: {p.summary}" for p in PRESETS.values())
    + f". The app is served untouched: ftscale answers /health and /info under {APP_PREFIX}/ only, "
    "which the app must not use."
)


def parse_app_designs(text: str) -> tuple[tuple[Design, ...], tuple[Design, ...]]:
    """``"single,gil:workers"`` (or ``threadpool/single``) -> (free-threaded designs, GIL designs)."""
    items = []
    for item in (i.strip() for i in text.split(",") if i.strip()):
        kind, colon, design = item.rpartition(":")
        if "/" not in design:
            design = f"{APP_MODE}/{design}"
        items.append(f"{kind}{colon}{design}")
    ft, gil = parse_designs(",".join(items))
    other = sorted({mode for mode, _ in (*ft, *gil) if mode != APP_MODE})
    if other:
        raise argparse.ArgumentTypeError(
            f"mode {', '.join(other)} does not apply to your app: it decides itself where its work runs "
            f"(FastAPI 'def' endpoints in Starlette's thread pool), so its designs are topologies: "
            f"{', '.join(TOPOLOGIES)}"
        )
    return ft, gil


def add_project_arguments(p: argparse.ArgumentParser, app_required: bool) -> None:
    """Where the app and its requirements are (``ftscale app`` and ``ftscale audit``)."""
    app_help = "the ASGI app to serve, as uvicorn names it (e.g. myservice.main:app)"
    if app_required:  # optional for argparse: --resume RUN_ID alone takes it from the run
        p.add_argument("app", metavar="MODULE:ATTR", nargs="?", help=app_help)
    else:
        p.add_argument("--app", metavar="MODULE:ATTR", help=app_help + "; its own import is checked too")
    p.add_argument(
        "--app-dir",
        default=".",
        help="the project folder, put first on the app's import path (default: the current folder)",
    )
    p.add_argument(
        "-r",
        "--requirements",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="a requirements file of the project (repeatable; default: APP_DIR/requirements.txt if there)",
    )
    p.add_argument(
        "--pyproject",
        type=Path,
        metavar="PATH",
        help="take the requirements from this pyproject.toml's [project] dependencies "
        "(default, when no -r is given and no requirements.txt: APP_DIR/pyproject.toml if it has some)",
    )
    p.add_argument(
        "--no-build",
        action="store_true",
        help="binary wheels only: a requirement without a wheel for a build is not built from source "
        "(for CI jobs that must not compile); a requirement naming a project by path or URL is refused",
    )
    p.add_argument(
        "--build-timeout",
        type=float,
        default=fromsource.BUILD_TIMEOUT_S,
        metavar="SECONDS",
        help="the time limit of each source build of a requirement without a wheel "
        f"(default: {fromsource.BUILD_TIMEOUT_S:g})",
    )


def add_request_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--requests",
        type=Path,
        metavar="FILE",
        help="the request mix: a JSON or TOML file of requests (method, path, headers, json or body_file, "
        "weight, expect)",
    )
    p.add_argument(
        "--request",
        action="append",
        default=[],
        metavar="'METHOD PATH [@FILE|JSON]'",
        help="one request, e.g. 'POST /score @body.json' (repeatable, equal weights; instead of --requests)",
    )
    p.add_argument(
        "--allow-outside-files",
        action="store_true",
        help="let the mix file's body_file entries name files outside the mix file's folder "
        "(refused by default: a mix file must not copy arbitrary files into a run)",
    )


def add_app_arguments(p: argparse.ArgumentParser) -> None:
    add_project_arguments(p, app_required=True)
    add_request_arguments(p)
    p.add_argument(
        "--preset", choices=list(PRESETS), default="quick", help="what to measure (default: quick)"
    )
    p.add_argument("--builds", help=f"comma-separated, of {', '.join(BUILDS)} (default: the preset's)")
    p.add_argument(
        "--designs",
        type=parse_app_designs,
        metavar="[ft:|gil:]TOPOLOGY,...",
        help=f"topologies to measure, of {', '.join(TOPOLOGIES)} (the mode is always {APP_MODE}); "
        "prefix ft: or gil: for one kind of build only (default: the preset's)",
    )
    add_sweep_arguments(p, connections="4 x threads, min 8")
    add_run_arguments(p, "app")
    p.set_defaults(target=None, server_python=None)  # what the HTTP bench reads and an app run has not


def build_app_parser() -> argparse.ArgumentParser:
    p = Parser(prog="ftscale app", description=DESCRIPTION, epilog=EPILOG)
    add_app_arguments(p)
    return p
