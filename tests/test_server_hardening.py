"""Hostile clients against every server, through the real ``ftscale serve`` command.

Each defect of the second hostile drill has a test here that fails with it: streams that never
read must not lock plain work out, nor hold a stop past its grace; a flood of huge heads must not
grow the service's memory; hostile JSON is a 422 with one log line; a request framed two ways
(``Content-Length`` with ``Transfer-Encoding``), or with no ``Host`` or two, is a 400 and the
connection closes; accept() out of descriptors logs once a second; granian times out a stalled
body and frees its port at once. Each runs on every server this interpreter has.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.util
import json
import re
import resource
import signal
import socket
import sysconfig
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest
from serving import Served, assert_gone, request, start, stop_cleanly

from ftscale import engines
from ftscale.server.grace import GRACEFUL_S
from ftscale.server.topology import bind_listener
from ftscale.vocab import HttpServer

pytestmark = pytest.mark.slow

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
MIB = 1024 * 1024


def installed(server: HttpServer) -> bool:
    return all(importlib.util.find_spec(m.split(".")[0]) is not None for m in engines.SERVER_MODULES[server])


def every_server() -> list[Any]:
    return [
        pytest.param(s, id=str(s), marks=pytest.mark.skipif(not installed(s), reason=f"{s} is not installed"))
        for s in HttpServer
    ]


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    with contextlib.ExitStack() as cleanup:
        yield lambda *args, **kw: start(cleanup, *args, **kw)


def info(port: int) -> dict[str, Any]:
    status, body = request(port, "GET", "/info")
    assert status == 200, body
    return body


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def tree_rss(served: Served) -> int:
    total = 0
    for proc in [psutil.Process(served.proc.pid), *served.tree()]:
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def read_all(sock: socket.socket, timeout: float = 15) -> bytes:
    """Everything the server sends until it closes the connection (fails if it does not)."""
    sock.settimeout(timeout)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


# -- streams that never read ---------------------------------------------------------------------------


def stalled_stream(port: int, size: int = 2000) -> socket.socket:
    """A stream asked for by a client that never reads (its receive buffer as small as can be)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    body = json.dumps({"size": size}).encode()
    sock.sendall(
        b"POST /stream/stream_tokens HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(body), body)
    )
    return sock


@pytest.mark.parametrize("server", every_server())
def test_ten_streams_that_never_read_leave_work_answering(serve: Any, server: HttpServer) -> None:
    """Streams take at most half the admission places (--max-streams): /work/* keeps answering
    while ten clients hold streams they never read, and the write timeout drops the clients whose
    streams got going, which frees their places."""
    served = serve("--server", server, "--threads", "1", "--write-timeout", "2")
    stalled = [stalled_stream(served.port) for _ in range(10)]
    try:
        time.sleep(1)
        for _ in range(5):
            status, body = request(served.port, "POST", "/work/nbody", {"size": 10})
            assert status == 200, body
        counters = info(served.port)["counters"]
        assert counters["streams_refused"] >= 10 - info(served.port)["config"]["max_streams"], counters
        wait_for(
            lambda: info(served.port)["counters"]["writes_timed_out"] >= 1, 30, "a stalled client dropped"
        )
    finally:
        for sock in stalled:
            sock.close()
    stop_cleanly(served)


@pytest.mark.parametrize("server", every_server())
def test_sigterm_with_stalled_streams_exits_within_the_grace(serve: Any, server: HttpServer) -> None:
    served = serve("--server", server, "--threads", "1", "--max-streams", "4", "--queue-limit", "8")
    stalled = [stalled_stream(served.port) for _ in range(4)]
    try:
        time.sleep(3)  # their buffers fill: each stream waits on a client that takes nothing
        tree = served.tree()
        began = time.monotonic()
        served.proc.send_signal(signal.SIGTERM)
        status = served.proc.wait(GRACEFUL_S + 20)
        took = time.monotonic() - began
    finally:
        for sock in stalled:
            sock.close()
    assert took < GRACEFUL_S, (took, served.log()[-3000:])
    assert status == 0, served.log()[-3000:]
    assert_gone(tree)


# -- heads too large to hold ---------------------------------------------------------------------------


def huge_head(port: int, value_bytes: int, stop: threading.Event) -> None:
    """A head whose one header value is ``value_bytes`` long, sent until the server gives up on it."""
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nx-long: ")
        piece = b"a" * MIB
        for _ in range(value_bytes // MIB):
            if stop.is_set():
                return
            sock.sendall(piece)


@pytest.mark.parametrize("server", every_server())
def test_eight_heads_of_64_mib_leave_memory_flat(serve: Any, server: HttpServer) -> None:
    served = serve("--server", server, "--threads", "1")
    before = tree_rss(served)
    stop = threading.Event()
    senders = [threading.Thread(target=huge_head, args=(served.port, 64 * MIB, stop)) for _ in range(8)]
    for thread in senders:
        thread.start()
    peak = before
    while any(thread.is_alive() for thread in senders):
        peak = max(peak, tree_rss(served))
        time.sleep(0.05)
        if peak > before + 200 * MIB:
            stop.set()  # the test has failed: do not take the machine down with it
    for thread in senders:
        thread.join()
    after = tree_rss(served)
    assert peak - before < 50 * MIB, (before / MIB, peak / MIB)
    assert after - before < 50 * MIB, (before / MIB, after / MIB)
    assert request(served.port, "GET", "/health") == (200, {"status": "ok"})
    stop_cleanly(served)


@pytest.mark.parametrize("server", every_server())
def test_a_head_over_the_limit_gets_431_and_the_connection_closes(serve: Any, server: HttpServer) -> None:
    served = serve("--server", server, "--max-head-bytes", "9000", "--max-headers", "20")
    for extra in (b"x-long: " + b"a" * 20_000 + b"\r\n", b"".join(b"x-%d: 1\r\n" % i for i in range(30))):
        with socket.create_connection(("127.0.0.1", served.port), timeout=15) as sock:
            with contextlib.suppress(OSError):  # the server may close before it has read it all
                sock.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n" + extra + b"\r\n")
            answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    stop_cleanly(served)


# -- hostile JSON ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("server", every_server())
def test_deep_json_and_lone_surrogates_get_422_with_one_log_line_each(serve: Any, server: HttpServer) -> None:
    served = serve("--server", server, "--threads", "1")
    bodies = [b"[" * 965 + b"]" * 965, b'"\\ud800"', b'{"size": "\\udfff"}', b'{"\\ud800": 1}']
    for body in bodies:
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
        conn.request("POST", "/work/nbody", body=body, headers={"content-type": "application/json"})
        response = conn.getresponse()
        payload = response.read()
        conn.close()
        assert response.status == 422, payload
        assert json.loads(payload)["detail"][0]["type"] == "json_invalid"
    assert info(served.port)["counters"]["json_refused"] == len(bodies)
    stop_cleanly(served)
    log = served.log()
    refusals = [line for line in log.splitlines() if "refused POST /work/nbody: 422" in line]
    assert len(refusals) == len(bodies), log[-3000:]
    assert "Traceback" not in log and "RecursionError" not in log


# -- framing -----------------------------------------------------------------------------------------------


SMUGGLED = b"GET /info HTTP/1.1\r\nhost: x\r\n\r\n"
FRAMED_BADLY = {
    "content-length and transfer-encoding": b"POST /work/nbody HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n"
    b"transfer-encoding: chunked\r\ncontent-type: application/json\r\n\r\n0\r\n\r\n" + SMUGGLED,
    "no host": b"GET /health HTTP/1.1\r\n\r\n" + SMUGGLED,
    "two hosts": b"GET /health HTTP/1.1\r\nhost: a\r\nhost: b\r\n\r\n" + SMUGGLED,
}


@pytest.mark.parametrize("server", every_server())
def test_badly_framed_requests_get_400_and_the_connection_closes(serve: Any, server: HttpServer) -> None:
    """Every server closes the connection after one answer, so the smuggled request is never read.

    granian's parser (hyper) takes a request framed both ways by its Transfer-Encoding alone, as
    RFC 9112 §6.1 allows, drops the Content-Length before the app could see it and closes the
    connection after answering: there the answer is the request's own, not a 400.
    """
    served = serve("--server", server)
    for what, payload in FRAMED_BADLY.items():
        with socket.create_connection(("127.0.0.1", served.port), timeout=15) as sock:
            sock.sendall(payload)
            answer = read_all(sock)  # fails unless the server closes the connection
        assert answer.count(b"HTTP/1.1 ") == 1, (what, answer)  # the smuggled request is never answered
        if server is HttpServer.GRANIAN and what == "content-length and transfer-encoding":
            assert b"\r\nconnection: close\r\n" in answer.lower(), answer[:300]
            continue
        assert answer.startswith(b"HTTP/1.1 400"), (what, answer[:300])
    stop_cleanly(served)


# -- accept() out of descriptors ---------------------------------------------------------------------------


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def test_running_out_of_descriptors_logs_once_a_second(serve: Any) -> None:
    served = serve("--max-connections", "1000", preexec_fn=_low_fd_limit)  # above what the fds allow
    idle = []
    try:
        for _ in range(400):
            with contextlib.suppress(OSError):
                idle.append(socket.create_connection(("127.0.0.1", served.port), timeout=10))
        time.sleep(2.5)
    finally:
        for sock in idle:
            sock.close()
    wait_for(lambda: request(served.port, "GET", "/health") == (200, {"status": "ok"}), 10, "serving again")
    counters = info(served.port)["counters"]
    stop_cleanly(served)
    log = served.log()
    assert "Traceback" not in log, log[-3000:]
    assert 1 <= log.count("Too many open files") <= 6, log[-3000:]  # about one a second, for 2.5 s
    reports = re.findall(r"accept\(\) failed (\d+) time", log)
    assert len(reports) == log.count("Too many open files")
    assert 1 <= sum(int(n) for n in reports) <= counters.get("accept_errors", 0), (reports, counters)


# -- granian -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("server", every_server())
def test_a_stalled_body_gets_408_at_the_body_timeout(serve: Any, server: HttpServer) -> None:
    served = serve("--server", server, "--body-timeout", "1", "--header-timeout", "30")
    with socket.create_connection(("127.0.0.1", served.port), timeout=15) as sock:
        sock.sendall(
            b"POST /work/nbody HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
            b"content-length: 100\r\n\r\n{"
        )
        began = time.monotonic()
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert 0.5 < time.monotonic() - began < 10
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["detail"].startswith(
        "request body not received within 1"
    )
    assert info(served.port)["counters"]["bodies_timed_out"] == 1
    stop_cleanly(served)


@pytest.mark.skipif(not installed(HttpServer.GRANIAN), reason="granian is not installed")
def test_granian_restarts_on_the_port_it_just_left(serve: Any) -> None:
    first = serve("--server", "granian")
    conns = [http.client.HTTPConnection("127.0.0.1", first.port, timeout=10) for _ in range(4)]
    for conn in conns:  # connections the server closes leave TIME_WAIT sockets on its port
        conn.request("GET", "/health", headers={"connection": "close"})
        conn.getresponse().read()
        conn.close()
    stop_cleanly(first)
    bind_listener("127.0.0.1", first.port).close()
    second = serve("--server", "granian", port=first.port)
    assert request(second.port, "GET", "/health") == (200, {"status": "ok"})
    stop_cleanly(second)
