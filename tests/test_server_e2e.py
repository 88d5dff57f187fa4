"""The service as the bench runs it: ``python -m ftscale.server`` on 127.0.0.1, stopped by a signal.

Each test starts a real server for one topology, requests workloads over HTTP, signals it and
checks that it exits 0 and leaves no process behind.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest
from serving import REPO_ROOT, STOP_TIMEOUT_S, Served, request, start, stop_cleanly

from ftscale import workloads

pytestmark = pytest.mark.slow


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """Start ``python -m ftscale.server ARGS`` and wait until /health answers; kill leftovers at the end."""
    with contextlib.ExitStack() as cleanup:
        yield lambda *args: start(cleanup, *args)


def check_workloads(port: int, names: tuple[str, ...] = ("nbody", "numpy_matmul", "rag_gateway")) -> None:
    for name in names:
        workload = workloads.get(name)
        status, body = request(port, "POST", f"/work/{name}", {"size": workload.smoke_size})
        assert status == 200, body
        assert body["checksum"] == workload.compute(workload.smoke_size)


def test_single_process_mode_and_sigterm(serve: Any) -> None:
    served = serve("--topology", "single", "--mode", "process", "--threads", "2")
    check_workloads(served.port)
    status, info = request(served.port, "GET", "/info")
    assert (status, info["topology"], info["mode"], info["pool_size"]) == (200, "single", "process", 2)
    assert info["pid"] == served.proc.pid
    assert len(psutil.Process(served.proc.pid).children()) >= 2  # the pool's children
    status, error = request(served.port, "POST", "/work/nope", {})
    assert status == 404 and "nbody" in error["known"]
    stop_cleanly(served)


def test_workers_topology_and_sigterm(serve: Any) -> None:
    served = serve("--topology", "workers", "--mode", "threadpool", "--threads", "2")
    check_workloads(served.port)
    status, info = request(served.port, "GET", "/info")
    assert (status, info["topology"], info["threads"], info["pool_size"]) == (200, "workers", 2, 1)
    assert info["parent_pid"] == served.proc.pid
    assert info["worker_pid"] == info["pid"] != served.proc.pid
    workers = psutil.Process(served.proc.pid).children()
    assert info["worker_pid"] in {p.pid for p in workers}
    stop_cleanly(served)


def test_loops_balance_connections_and_stop_on_sigint(serve: Any) -> None:
    served = serve("--topology", "loops", "--mode", "executor", "--threads", "2")
    check_workloads(served.port)
    status, info = request(served.port, "GET", "/info")
    assert (status, info["topology"], info["pool_size"], info["pid"]) == (200, "loops", 1, served.proc.pid)
    # The acceptor hands each new connection to the loop with the fewest open ones. A closing
    # connection from earlier may still count for a moment, so allow a few tries.
    for _ in range(5):
        conns = [http.client.HTTPConnection("127.0.0.1", served.port, timeout=30) for _ in range(2)]
        try:
            loops = {request(served.port, "GET", "/info", conn=conn)[1]["loop_index"] for conn in conns}
        finally:
            for conn in conns:
                conn.close()
        if loops == {0, 1}:
            break
    assert loops == {0, 1}

    names = list(workloads.REGISTRY) * 2

    def call(name: str) -> bool:
        size = workloads.get(name).smoke_size
        status, body = request(served.port, "POST", f"/work/{name}", {"size": size})
        return status == 200 and body["checksum"] == workloads.get(name).compute(size)

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        assert all(pool.map(call, names))
    stop_cleanly(served, signal.SIGINT)


def test_loops_reuseport_inline(serve: Any) -> None:
    served = serve("--topology", "loops-reuseport", "--mode", "inline", "--threads", "2")
    check_workloads(served.port, ("json_roundtrip",))
    assert request(served.port, "GET", "/info")[1]["loop_index"] in (0, 1)
    stop_cleanly(served)


def test_port_in_use_fails_with_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "ftscale.server", "--port", str(port)],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=STOP_TIMEOUT_S,
            check=False,
        )
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0
    assert f"127.0.0.1:{port}" in proc.stderr


@pytest.mark.parametrize("args", [["--mode", "fast"], ["--threads", "0"], ["--queue-limit", "-1"]])
def test_bad_arguments_exit_non_zero(args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ftscale", "serve", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=STOP_TIMEOUT_S,
        check=False,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ftscale serve: error: argument"), proc.stderr


def test_help_lists_every_option_and_the_anyio_limit() -> None:
    from ftscale.server.cli import build_parser

    text = build_parser().format_help()
    for option in ("--mode", "--topology", "--threads", "--host", "--port", "--pool-size", "--queue-limit"):
        assert option in text
    assert "--max-body-bytes" in text and "65536" in text
    assert "40 tokens" in text
