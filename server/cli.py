"""``ftscale serve`` (or ``python -m ftscale.server``): run the service with one mode and one topology.

    ftscale serve --mode threadpool --topology loops --threads 4 --port 8000
    ftscale serve --server granian --topology loops --threads 4     # on a free-threaded build

The HTTP bench starts the service this way; every option is listed by ``--help``. Exits 0
after SIGTERM or SIGINT, non-zero (with a one-line message) on bad arguments or start-up
failure.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import subprocess
import sys
import sysconfig
from collections.abc import Sequence
from typing import TYPE_CHECKING

from ftscale.server.config import (
    ANYIO_LIMITER_NOTE,
    APP_MODE_NOTE,
    APP_SERVER_NOTE,
    DEFAULT_BODY_TIMEOUT_S,
    DEFAULT_HEADER_TIMEOUT_S,
    DEFAULT_HOST,
    DEFAULT_KEEPALIVE_TIMEOUT_S,
    DEFAULT_MAX_BODY_BYTES,
    DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_HEAD_BYTES,
    DEFAULT_MAX_HEADERS,
    DEFAULT_PORT,
    DEFAULT_QUEUE_FACTOR,
    DEFAULT_STREAM_TIMEOUT_S,
    DEFAULT_WRITE_TIMEOUT_S,
    MODE_HELP,
    RESERVED_FDS,
    SERVER_HELP,
    START_METHOD_HELP,
    TOPOLOGY_HELP,
    WORKER_BALANCE_HELP,
    HttpServer,
    Mode,
    ServerConfig,
    StartMethod,
    Topology,
    WorkerBalance,
)
from ftscale.vocab import APP_PREFIX, INFO_DETAIL_HELP, TOPOLOGIES, InfoDetail

if TYPE_CHECKING:
    from ftscale.server.units import Serve

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _non_negative(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _choices(
    helps: dict[Mode, str]
    | dict[Topology, str]
    | dict[WorkerBalance, str]
    | dict[HttpServer, str]
    | dict[StartMethod, str]
    | dict[InfoDetail, str],
) -> str:
    return "; ".join(f"{name}: {text}" for name, text in helps.items())


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each default, except where the help text says what ``None`` means."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None:
            return action.help
        return super()._get_help_string(action)


DESCRIPTION = (
    "The ftscale service under test: CPU-heavy FastAPI endpoints, on uvicorn (h11, asyncio) unless "
    "--server says otherwise."
)
EPILOG = f"Note: {ANYIO_LIMITER_NOTE}."


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ftscale serve", description=DESCRIPTION, epilog=EPILOG, formatter_class=_HelpFormatter
    )
    add_arguments(parser)
    return parser


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--mode", type=Mode, choices=list(Mode), default=Mode.THREADPOOL, help=_choices(MODE_HELP)
    )
    parser.add_argument(
        "--topology",
        type=Topology,
        choices=list(Topology),
        default=Topology.SINGLE,
        help=_choices(TOPOLOGY_HELP),
    )
    parser.add_argument(
        "--threads",
        type=_positive,
        default=1,
        help="total CPU concurrency: pool size (single), worker processes (workers) or event loops (loops)",
    )
    parser.add_argument("--host", default=DEFAULT_HOST, help="address to bind")
    parser.add_argument("--port", type=_non_negative, default=DEFAULT_PORT, help="TCP port to bind")
    parser.add_argument(
        "--pool-size",
        type=_positive,
        default=None,
        help="threads or processes per pool, one pool per process or loop "
        "(default: --threads for single, 1 for workers and loops)",
    )
    parser.add_argument(
        "--queue-limit",
        type=_non_negative,
        default=None,
        help="requests that may wait for a pool beyond those it runs; more get 503 "
        f"(default: {DEFAULT_QUEUE_FACTOR} x pool size). A stream (/stream/...) counts from its start to its "
        "last chunk: serve many concurrent streams with a limit sized for them",
    )
    parser.add_argument(
        "--max-body-bytes",
        type=_positive,
        default=DEFAULT_MAX_BODY_BYTES,
        help="largest request body accepted; larger gets 413",
    )
    parser.add_argument(
        "--header-timeout",
        type=_seconds,
        default=DEFAULT_HEADER_TIMEOUT_S,
        help="seconds a request head may take to arrive, from its first byte or the connection's "
        "opening; later gets 408 (a connection that sent nothing is just closed)",
    )
    parser.add_argument(
        "--keepalive-timeout",
        type=_seconds,
        default=DEFAULT_KEEPALIVE_TIMEOUT_S,
        help="seconds an idle keep-alive connection stays open",
    )
    parser.add_argument(
        "--max-connections",
        type=_positive,
        default=None,
        help="open connections per process (shared out between loops); over it the connection idle "
        "longest is closed, or, if all are busy, the new one gets 503 "
        f"(default: {DEFAULT_MAX_CONNECTIONS}, or 3/4 of the descriptor limit less {RESERVED_FDS} if lower)",
    )
    parser.add_argument(
        "--allow-large-sizes",
        action="store_true",
        help="accept each workload's old maximum size instead of its CPU budget (about 2 s a call)",
    )
    parser.add_argument(
        "--worker-balance",
        type=WorkerBalance,
        choices=list(WorkerBalance),
        default=WorkerBalance.ACCEPTOR,
        help="workers topology only: " + _choices(WORKER_BALANCE_HELP),
    )
    parser.add_argument(
        "--server",
        type=HttpServer,
        choices=list(HttpServer),
        default=HttpServer.UVICORN_H11,
        help=_choices(SERVER_HELP)
        + ". granian serves single and workers on GIL builds, single and loops on free-threaded ones; "
        "hypercorn serves single and workers",
    )
    parser.add_argument(
        "--runtime-threads",
        type=_positive,
        default=1,
        help="granian only: its Rust I/O threads per worker (they run no Python)",
    )
    parser.add_argument(
        "--start-method",
        type=StartMethod,
        choices=list(StartMethod),
        default=StartMethod.SPAWN,
        help="how worker processes and process-pool children start: " + _choices(START_METHOD_HELP),
    )
    parser.add_argument(
        "--log-level", choices=LOG_LEVELS, default="warning", help="server and service log level"
    )
    parser.add_argument(
        "--app",
        metavar="MODULE:ATTR",
        default=None,
        help=f"serve this ASGI app (FastAPI or any ASGI 3 app) instead of the service, untouched: ftscale "
        f"answers /health and /info under {APP_PREFIX}/ only; --mode must be threadpool ({APP_MODE_NOTE}); "
        f"{APP_SERVER_NOTE}",
    )
    parser.add_argument(
        "--app-dir", default=None, help="with --app: folder put first on the import path (default: none)"
    )
    parser.add_argument(
        "--max-head-bytes",
        type=_positive,
        default=DEFAULT_MAX_HEAD_BYTES,
        help="largest request head (request line and header fields); larger gets 431 and the connection "
        "closes",
    )
    parser.add_argument(
        "--max-headers",
        type=_positive,
        default=DEFAULT_MAX_HEADERS,
        help="most header fields in a request; more gets 431 (granian cannot accept more than 100)",
    )
    parser.add_argument(
        "--body-timeout",
        type=_seconds,
        default=DEFAULT_BODY_TIMEOUT_S,
        help="seconds a request body may take to arrive after its head; later gets 408",
    )
    parser.add_argument(
        "--write-timeout",
        type=_seconds,
        default=DEFAULT_WRITE_TIMEOUT_S,
        help="seconds a response may wait for its client to take any of its bytes; then the client is "
        "dropped (a stream's places are freed)",
    )
    parser.add_argument(
        "--stream-timeout",
        type=_seconds,
        default=DEFAULT_STREAM_TIMEOUT_S,
        help="longest life of a stream (/stream/...): then it ends with an error event",
    )
    parser.add_argument(
        "--max-streams",
        type=_positive,
        default=None,
        help="streams one pool serves at once; more get 503 (default: half of pool size + queue limit, "
        "so that streams never take every place from /work)",
    )
    parser.add_argument(
        "--info",
        dest="info_detail",
        type=InfoDetail,
        choices=list(InfoDetail),
        default=InfoDetail.FULL,
        help=_choices(INFO_DETAIL_HELP),
    )


def config_from_args(args: argparse.Namespace) -> ServerConfig:
    return ServerConfig(
        mode=args.mode,
        topology=args.topology,
        threads=args.threads,
        host=args.host,
        port=args.port,
        pool_size=args.pool_size,
        queue_limit=args.queue_limit,
        max_body_bytes=args.max_body_bytes,
        log_level=args.log_level,
        header_timeout_s=args.header_timeout,
        keepalive_timeout_s=args.keepalive_timeout,
        max_connections=args.max_connections,
        allow_large_sizes=args.allow_large_sizes,
        worker_balance=args.worker_balance,
        app=args.app,
        app_dir=args.app_dir,
        server=args.server,
        runtime_threads=args.runtime_threads,
        start_method=args.start_method,
        max_head_bytes=args.max_head_bytes,
        max_headers=args.max_headers,
        body_timeout_s=args.body_timeout,
        write_timeout_s=args.write_timeout,
        stream_timeout_s=args.stream_timeout,
        max_streams=args.max_streams,
        info_detail=args.info_detail,
    )


# Servers that run every topology they can through one runner of their own; uvicorn runs each
# topology through the runner its descriptor names (``TOPOLOGIES[topology].runner``).
SERVER_RUNNERS: dict[HttpServer, str] = {
    HttpServer.GRANIAN: "ftscale.server.on_granian:run_granian",
    HttpServer.HYPERCORN: "ftscale.server.on_hypercorn:run_hypercorn",
}


def resolve(name: str) -> Serve:
    """The function a ``module:function`` runner name stands for, its module imported now."""
    module, _, function = name.partition(":")
    serve: Serve = getattr(importlib.import_module(module), function)
    return serve


def runner(topology_name: Topology, server: HttpServer = HttpServer.UVICORN_H11) -> Serve:
    """The function that serves ``topology_name`` on ``server``; it takes the config and,
    optionally, the app factory (``ftscale.server.app.create_app`` by default).

    Imported here, not at the top: process-mode children (spawned) re-import this module as
    their main module, and need none of the HTTP stack.
    """
    return resolve(SERVER_RUNNERS.get(server) or TOPOLOGIES[topology_name].runner)


def app_problem(config: ServerConfig) -> str | None:
    """Why ``config.app`` cannot be served (one line), checked before any socket is bound.

    ``workers`` imports the app in each worker only (the supervisor stays as small as uvicorn's),
    so it is checked in a throw-away process; the other topologies import it here, once.
    """
    if config.app is None:
        return None
    if TOPOLOGIES[config.topology].own_workers:
        cmd = [sys.executable, "-m", "ftscale.server.userapp", config.app]
        cmd += ["--app-dir", config.app_dir] if config.app_dir else []
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        try:
            found = json.loads(proc.stdout)
        except ValueError:
            return f"app {config.app!r}: the import check failed: {proc.stderr.strip()[-300:]}"
        return None if found.get("ok") else str(found.get("error"))
    from ftscale.server.userapp import AppLoadError, load_app

    try:
        load_app(config.app, config.app_dir)
    except AppLoadError as exc:
        return str(exc)
    return None


def cannot_serve(config: ServerConfig) -> str | None:
    """Why ``config`` cannot be served by this interpreter (None: it can)."""
    from ftscale import engines
    from ftscale.server.limits import limits_problem

    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    reason = engines.topology_reason(config.server, config.topology, free_threaded)
    if reason is not None:
        return f"--server {config.server} --topology {config.topology}: {reason}"
    for module in engines.SERVER_MODULES[config.server]:
        if importlib.util.find_spec(module.split(".")[0]) is None:
            return (
                f"--server {config.server} needs {module.split('.')[0]}, which is not installed for this "
                "interpreter (pip install 'ftscale[servers]'; it may have no wheel for this build)"
            )
    return limits_problem(config)


def cmd_serve(config: ServerConfig) -> int:
    """Serve until SIGTERM/SIGINT; the process exit status (2: this server cannot serve this here,
    or an app that cannot be served)."""
    logging.basicConfig(level=config.log_level.upper(), format="%(levelname)s: %(message)s")
    reason = cannot_serve(config) or app_problem(config)
    if reason is not None:
        print(f"error: {reason}", file=sys.stderr)
        return 2
    serve = runner(config.topology, config.server)
    try:
        return serve(config)
    except OSError as exc:
        print(f"error: cannot serve on {config.host}:{config.port}: {exc}", file=sys.stderr)
        return 1


def run(args: argparse.Namespace) -> int:
    """``ftscale serve``: serve until SIGTERM/SIGINT."""
    try:
        config = config_from_args(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return cmd_serve(config)


def main(argv: Sequence[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))
