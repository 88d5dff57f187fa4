"""Every HTTP server (``ftscale serve --server``) on this interpreter, on the real command.

Each server that can run here serves each topology it has on this kind of build (see
``ftscale.engines``) with smoke sizes: ``/health``, one work route, ``/info`` saying which server
ran and whether its connections had TCP_NODELAY, each unit's work counted, then SIGTERM: exit 0
and no process left. ``nox -s tests`` installs every server on the host and on 3.14t; elsewhere a
server that is not installed is skipped with its reason.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import os
import socket
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from serving import REPO_ROOT, Served, request, start, stop_cleanly

from ftscale import engines, workloads
from ftscale.bench import results
from ftscale.schema import HttpCell
from ftscale.vocab import Flag, HttpServer, Topology

pytestmark = pytest.mark.slow

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))


def installed(server: HttpServer) -> bool:
    return all(importlib.util.find_spec(m.split(".")[0]) is not None for m in engines.SERVER_MODULES[server])


def cases() -> Iterator[Any]:
    """(server, topology) for every design a server has on this kind of build."""
    for server in HttpServer:
        for topology in (Topology.SINGLE, Topology.WORKERS, Topology.LOOPS):
            if engines.topology_reason(server, topology, FREE_THREADED) is not None:
                continue
            mark = pytest.mark.skipif(not installed(server), reason=f"{server} is not installed here")
            yield pytest.param(server, topology, marks=mark, id=f"{server}-{topology}")


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    with contextlib.ExitStack() as cleanup:
        yield lambda *args: start(cleanup, *args)


@pytest.mark.parametrize(("server", "topology"), list(cases()))
def test_each_server_serves_counts_and_stops_cleanly(serve: Any, server: str, topology: str) -> None:
    served = serve("--server", server, "--topology", topology, "--threads", "2")
    nbody = workloads.get("nbody")
    conns = [http.client.HTTPConnection("127.0.0.1", served.port, timeout=30) for _ in range(4)]
    for _ in range(3):
        for conn in conns:
            status, body = request(served.port, "POST", "/work/nbody", {"size": nbody.smoke_size}, conn=conn)
            assert status == 200, body
            assert body["checksum"] == nbody.compute(nbody.smoke_size)
    status, info = request(served.port, "GET", "/info")
    assert status == 200, info
    assert (info["server"], info["topology"], info["config"]["server"]) == (server, topology, server)
    assert info["server_version"], info
    assert info["tcp_nodelay"] is True and info["tcp_nodelay_checked"], info
    assert info["unit_kind"] == engines.unit_kind(Topology(topology))
    units = info["unit_requests"]
    assert sum(units.values()) == 12 and len(units) == (1 if topology == "single" else 2), units
    assert info["gil_enabled"] is not FREE_THREADED  # no server's module turned the GIL back on
    if server == HttpServer.UVICORN_FAST:
        assert info["loop_impl"].startswith("uvloop"), info["loop_impl"]
    for conn in conns:
        conn.close()
    stop_cleanly(served)


@pytest.mark.parametrize(
    "server",
    [
        "uvicorn-h11",
        pytest.param(
            "uvicorn-fast",
            marks=pytest.mark.skipif(not installed(HttpServer.UVICORN_FAST), reason="not installed here"),
        ),
    ],
)
def test_uvicorn_keeps_the_request_deadline_on_every_request(serve: Any, server: str) -> None:
    """The guarded protocols (h11, httptools): a head trickling in gets 408, also on a keep-alive
    connection after an answered request."""
    served = serve("--server", server, "--header-timeout", "1", "--keepalive-timeout", "30")
    for answered_first in (False, True):
        sock = socket.create_connection(("127.0.0.1", served.port), timeout=10)
        if answered_first:
            sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            first = b""
            while not first.endswith(b'{"status":"ok"}'):  # head and body may come in two parts
                first += sock.recv(4096)
            assert first.startswith(b"HTTP/1.1 200"), first
        answer = trickle(sock, b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
        sock.close()
        assert answer.startswith(b"HTTP/1.1 408"), (answered_first, answer)
    _, info = request(served.port, "GET", "/info")
    assert info["counters"]["requests_timed_out"] >= 2
    stop_cleanly(served)


def trickle(sock: socket.socket, head: bytes, pause_s: float = 0.3) -> bytes:
    """Send ``head`` a byte at a time until the server answers (or closes); what it answered."""
    answer = b""
    for byte in head:
        try:
            sock.sendall(bytes([byte]))
        except OSError:  # closed under us: the answer is already there
            break
        time.sleep(pause_s)
        sock.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            answer += sock.recv(4096)
        sock.setblocking(True)
        if answer:
            break
    return answer


def refused(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ftscale.server", "--port", "0", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_topology_a_server_lacks_is_refused_in_one_line() -> None:
    lacking = "workers" if FREE_THREADED else "loops"  # granian's wheel decides
    for server, topology in (("hypercorn", "loops"), ("granian", lacking), ("granian", "loops-reuseport")):
        proc = refused("--server", server, "--topology", topology, "--threads", "2")
        assert proc.returncode == 2, proc.stderr
        (line,) = proc.stderr.strip().splitlines()
        reason = engines.topology_reason(HttpServer(server), Topology(topology), FREE_THREADED)
        assert reason is not None and line.endswith(reason)


def test_help_names_every_server() -> None:
    out = refused("--help").stdout
    assert all(str(s) in out for s in HttpServer) and "--runtime-threads" in out


def test_info_of_the_default_server_names_it() -> None:
    """A run of the default server records it too (older result files lack the field)."""
    from ftscale.server import info as server_info
    from ftscale.server.config import ServerConfig

    described = server_info.describe(ServerConfig())
    assert (described.server, described.config.server) == ("uvicorn-h11", "uvicorn-h11")
    assert json.loads(described.model_dump_json())["unit_kind"] == "loop"


@pytest.mark.e2e
def test_the_bench_runs_every_server_and_skips_what_cannot_run(tmp_path: Path) -> None:
    """``ftscale bench --servers``: one cell per server and design, each on its own server; a design
    a server lacks here is a skipped cell with its reason, and the exit status stays 0."""
    cpus = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
    servers = [s for s in HttpServer if installed(s)]
    proc = subprocess.run(
        [sys.executable, "-m", "ftscale", "bench", "--results-dir", str(tmp_path), "--run-id", "s",
         "--server-python", sys.executable, "--generator", "python", "--allow-shared-cpus",
         "--server-cpus", cpus, "--client-cpus", cpus, "--duration", "0.5", "--warmup", "0",
         "--repetitions", "1", "--designs", "threadpool/single,inline/loops", "--threads", "2",
         "--workloads", "nbody", "--size", "nbody=200", "--no-report",
         "--servers", ",".join(servers)],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    cells = {(c.server, c.topology): c for c in results.load_run(tmp_path / "s").cells}
    assert len(cells) == 2 * len(servers)
    for (server, topology), cell in cells.items():
        assert isinstance(cell, HttpCell)
        reason = engines.topology_reason(HttpServer(server), Topology(topology), FREE_THREADED)
        if reason is not None:
            assert (cell.status, cell.skip_reason) == ("skipped", reason)
            continue
        assert cell.status == "ok", cell.error
        assert cell.info_before is not None and cell.info_before.server == server
        assert cell.tcp_nodelay is True and str(Flag.NAGLE) not in cell.flags


@pytest.mark.parametrize("server", list(HttpServer), ids=str)
def test_each_server_streams_one_event_per_chunk(serve: Any, server: HttpServer) -> None:
    """The stream route behind every server: chunked server-sent events, the same bytes as in-process."""
    if not installed(server):
        pytest.skip(f"{server} is not installed here")
    streamed = workloads.get("stream_tokens")
    assert streamed.stream is not None
    served = serve("--server", server, "--threads", "1")
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    conn.request(
        "POST", "/stream/stream_tokens", body=b'{"size": 3}', headers={"content-type": "application/json"}
    )
    response = conn.getresponse()
    assert response.status == 200
    assert (response.getheader("content-type") or "").startswith("text/event-stream")
    body = response.read()
    conn.close()
    assert body == b"".join(streamed.stream.chunk(3, i) for i in range(3))
    stop_cleanly(served)
