"""The ``ftscale`` command: one entry point for building, measuring, serving and reporting.

    ftscale build [BUILD ...]     find or build CPython 3.13, 3.13t, 3.14, 3.14t
    ftscale micro [options]       in-process scaling of every workload at 1..N threads (pyperf)
    ftscale bench [options]       HTTP scaling sweep of the service (quick by default)
    ftscale app MODULE:ATTR ...   the same sweep of your own ASGI app
    ftscale audit [options]       your requirements on free-threaded builds: wheels, GIL, imports
    ftscale report [RUN ...]      re-render reports from result files
    ftscale compare A B [...]     compare runs cell by cell
    ftscale serve [options]       run the service under test
    ftscale bundle [options]      ftscale for an offline benchmark host, in parts of at most 60 MiB

Each command's options come from a module that imports the standard library only, so every
``--help`` works on a bare interpreter; what a command needs beyond that is imported when it
runs, and a missing package is one line naming the extra that brings it.

Exit status: 0 success, 1 a failure of the machine or of a measurement (a build, an
environment, a failed cell), 2 bad input (nothing written), 130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from ftscale import __version__
from ftscale.errors import guard


@dataclass(frozen=True)
class Command:
    name: str
    summary: str
    options: str  # module with add_arguments-style functions (standard library only)
    add: str  # its function that adds the command's arguments
    target: str  # "module:function" run with (args) or (args, argv)
    extra: str  # the ftscale extra that brings what the command imports
    with_argv: bool = False  # the target also wants the raw argv (to save it for --resume)


COMMANDS = (
    Command(
        name="build",
        summary="find or build CPython 3.13, 3.13t, 3.14, 3.14t",
        options="ftscale.bench.env.provision",
        add="add_arguments",
        target="ftscale.bench.env.provision:run",
        extra="",
    ),
    Command(
        name="micro",
        summary="in-process scaling of every workload at 1..N threads, with pyperf",
        options="ftscale.bench.micro.options",
        add="add_arguments",
        target="ftscale.bench.micro.run:command",
        extra="bench",
        with_argv=True,
    ),
    Command(
        name="bench",
        summary="HTTP scaling sweep of the service (quick by default, --full for everything)",
        options="ftscale.bench.http.options",
        add="add_arguments",
        target="ftscale.bench.http.run:command",
        extra="bench",
        with_argv=True,
    ),
    Command(
        name="app",
        summary="benchmark your own ASGI app on GIL and free-threaded builds, as bench does the service",
        options="ftscale.bench.app.options",
        add="add_app_arguments",
        target="ftscale.bench.app.run:command",
        extra="bench",
        with_argv=True,
    ),
    Command(
        name="audit",
        summary="which of your requirements lack free-threaded wheels or turn the GIL back on",
        options="ftscale.bench.app.audit_options",
        add="add_audit_arguments",
        target="ftscale.bench.app.audit:command",
        extra="bench",
    ),
    Command(
        name="report",
        summary="render reports of run directories from their result files",
        options="ftscale.bench.report.cli",
        add="add_render_arguments",
        target="ftscale.bench.report.cli:run_render",
        extra="report",
    ),
    Command(
        name="compare",
        summary="compare runs (hosts, commits, builds) cell by cell",
        options="ftscale.bench.report.cli",
        add="add_compare_arguments",
        target="ftscale.bench.report.cli:run_compare",
        extra="report",
    ),
    Command(
        name="serve",
        summary="run the service under test",
        options="ftscale.server.cli",
        add="add_arguments",
        target="ftscale.server.cli:run",
        extra="server",
    ),
    Command(
        name="bundle",
        summary="write ftscale for an offline benchmark host, in parts of at most 60 MiB",
        options="ftscale.bench.bundle.make",
        add="add_arguments",
        target="ftscale.bench.bundle.make:run",
        extra="bench",
    ),
)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr (no usage block) and exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="ftscale",
        description="Does a FastAPI service scale on free-threaded CPython? Builds, benchmarks and reports.",
    )
    parser.add_argument("--version", action="version", version=f"ftscale {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=OneLineParser)
    for command in COMMANDS:
        options = importlib.import_module(command.options)
        description = getattr(options, "DESCRIPTION", None) or command.summary
        if command.name == "compare":
            description = options.COMPARE_DESCRIPTION
        elif command.name == "report":
            description = options.RENDER_DESCRIPTION
        p = sub.add_parser(
            command.name,
            help=command.summary,
            description=description,
            epilog=getattr(options, "EPILOG", None),
        )
        getattr(options, command.add)(p)
        p.set_defaults(_command=command)
    return parser


def _missing(command: Command, exc: ModuleNotFoundError) -> str:
    extra = f"'ftscale[{command.extra}]'" if command.extra else "ftscale"
    return (
        f"ftscale {command.name}: needs the Python package {exc.name!r}, which is not installed here; "
        f"install it with: pip install {extra}"
    )


def dispatch(command: Command, args: argparse.Namespace, argv: Sequence[str]) -> int:
    module_name, _, function = command.target.partition(":")
    try:  # a command may import more when it runs: a missing package is named either way
        run: Callable[..., int] = getattr(importlib.import_module(module_name), function)
        return run(args, list(argv)) if command.with_argv else run(args)
    except ModuleNotFoundError as exc:
        if not exc.name or exc.name.split(".")[0] == "ftscale":
            raise
        print(_missing(command, exc), file=sys.stderr)
        return 1


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    command: Command = args._command
    rest = argv[argv.index(command.name) + 1 :]
    return guard(f"ftscale {command.name}", lambda: dispatch(command, args, rest))
