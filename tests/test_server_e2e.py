"""The service as the bench runs it: ``python -m ftscale.server`` on 127.0.0.1, stopped by a signal.

Each test starts a real server for one topology, requests workloads over HTTP, signals it and
checks that it exits 0 and leaves no process behind.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest
from ftscale.bench.http.procs import free_port

from ftscale import workloads

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30

pytestmark = pytest.mark.slow


def request(
    port: int,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    conn: http.client.HTTPConnection | None = None,
) -> tuple[int, dict[str, Any]]:
    """One request; on ``conn`` if given (kept alive), else on a fresh connection."""
    own = conn is None
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        payload = None if body is None else json.dumps(body).encode()
        conn.request(method, path, body=payload, headers={"content-type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        if own:
            conn.close()


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    port: int
    stderr: Any

    def log(self) -> str:
        self.stderr.seek(0)
        return str(self.stderr.read().decode(errors="replace"))


@pytest.fixture
def serve() -> Iterator[Any]:
    """Start ``python -m ftscale.server ARGS`` and wait until /health answers; kill leftovers at the end."""
    with contextlib.ExitStack() as cleanup:

        def start(*args: str) -> Served:
            port = free_port()
            stderr = cleanup.enter_context(tempfile.TemporaryFile())
            cmd = [sys.executable, "-m", "ftscale.server", "--host", "127.0.0.1", "--port", str(port), *args]
            proc = subprocess.Popen(cmd, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=stderr)
            cleanup.callback(_reap, proc)
            served = Served(proc, port, stderr)
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline:
                assert proc.poll() is None, f"server exited with {proc.returncode}:\n{served.log()}"
                try:
                    if request(port, "GET", "/health") == (200, {"status": "ok"}):
                        return served
                except OSError:
                    time.sleep(0.05)  # not listening yet: nothing to wait on but the clock
            raise AssertionError(f"server not healthy within {START_TIMEOUT_S} s:\n{served.log()}")

        yield start


def _reap(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:  # a failed test left it running
        proc.kill()
        proc.wait()


def stop_cleanly(served: Served, signum: int = signal.SIGTERM) -> None:
    """Signal the server; it must exit 0 and every process it started must be gone."""
    descendants = psutil.Process(served.proc.pid).children(recursive=True)
    served.proc.send_signal(signum)
    assert served.proc.wait(STOP_TIMEOUT_S) == 0, served.log()
    _, alive = psutil.wait_procs(descendants, timeout=STOP_TIMEOUT_S)
    assert alive == [], f"left behind: {alive}"


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
