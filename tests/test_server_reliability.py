"""The service against an unfriendly client and a hostile machine, on the real ``serve`` command.

Each test starts ``python -m ftscale.server`` in a subprocess and does what a user, a slow or
vanishing client, the OOM killer or Ctrl-C would; then it checks the answers, the counters in
``/info``, the exit status and the process tree.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import resource
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import psutil
import pytest
from serving import Served, assert_gone, is_pool_child, request, signal_group, start, stop_cleanly

from ftscale.server.topology import bind_listener

pytestmark = pytest.mark.slow

# nbody at this size computes for about a second on the development machine: long
# enough to act while it runs, well inside the CPU budget.
LONG = {"size": 150_000}


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    with contextlib.ExitStack() as cleanup:
        yield lambda *args, **kw: start(cleanup, *args, **kw)


def raw_request(port: int, path: str = "/work/nbody", body: dict[str, Any] | None = None) -> socket.socket:
    """Send one POST on a fresh connection and return the socket, answer unread."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    payload = json.dumps(body if body is not None else LONG).encode()
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        f"content-length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    return sock


def read_status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed with no answer (got {data!r})"
        data += chunk
    return int(data.split()[1])


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def info(port: int, conn: http.client.HTTPConnection | None = None) -> dict[str, Any]:
    status, body = request(port, "GET", "/info", conn=conn)
    assert status == 200, body
    return body


# -- 2. a killed pool child -----------------------------------------------------------------------


@pytest.mark.parametrize("topology", ["single", "workers"])
def test_killed_pool_child_is_replaced(serve: Any, topology: str) -> None:
    served = serve("--topology", topology, "--mode", "process", "--threads", "2", "--pool-size", "1")
    conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=30)
    unit = psutil.Process(info(served.port, conn)["pid"])  # the process that serves this connection
    (child, *_) = [p for p in unit.children() if is_pool_child(p)]
    child.kill()
    child.wait(10)
    time.sleep(0.5)  # the pool's manager thread notices the death

    # /health tells, before any work request finds out.
    code, body = request(served.port, "GET", "/health", conn=conn)
    assert (code, body["status"]) == (503, "rebuilding"), body
    statuses = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status, body = request(served.port, "POST", "/work/nbody", {"size": 10}, conn=conn)
        statuses.append(status)
        if status == 200:
            break
        assert "process" in body["detail"] and body["retry_after_s"] >= 1
        time.sleep(0.2)
    assert statuses[-1] == 200 and set(statuses) <= {200, 503}, statuses
    assert request(served.port, "GET", "/health", conn=conn) == (200, {"status": "ok"})
    after = info(served.port, conn)
    assert after["counters"]["pool_restarts"] == 1
    assert after["pool_state"] == "up"
    conn.close()
    stop_cleanly(served)


# -- 3. kill -9 of the serving processes ------------------------------------------------------------


def test_kill_9_of_a_single_server_takes_its_pool_with_it(serve: Any) -> None:
    served = serve("--topology", "single", "--mode", "process", "--threads", "2")
    tree = served.tree()
    assert sum(is_pool_child(p) for p in tree) == 2
    served.proc.kill()
    served.proc.wait()
    assert_gone(tree, timeout=10)  # the pool children and the resource tracker


def test_kill_9_of_a_worker_takes_its_pool_and_the_worker_is_replaced(serve: Any) -> None:
    served = serve("--topology", "workers", "--mode", "process", "--threads", "2")
    workers = psutil.Process(served.proc.pid).children()
    victim = next(w for w in workers if any(is_pool_child(c) for c in w.children()))
    orphans = victim.children(recursive=True)
    victim.kill()
    assert_gone(orphans, timeout=10)
    wait_for(
        lambda: len([w for w in psutil.Process(served.proc.pid).children() if w.pid != victim.pid]) >= 3,
        30,
        "a new worker",  # the other worker, its replacement, and the resource tracker
    )
    wait_for(
        lambda: {request(served.port, "GET", "/info")[1]["pid"] for _ in range(6)} >= set(), 30, "serving"
    )
    for _ in range(4):
        status, body = request(served.port, "POST", "/work/nbody", {"size": 10})
        assert status in (200, 503), body  # 503 only while the new worker's pool starts
    stop_cleanly(served)


def test_kill_9_of_the_workers_supervisor_stops_the_workers_and_frees_the_port(serve: Any) -> None:
    served = serve("--topology", "workers", "--mode", "process", "--threads", "2")
    workers = psutil.Process(served.proc.pid).children()
    wait_for(lambda: sum(any(is_pool_child(c) for c in w.children()) for w in workers) == 2, 30, "pools")
    tree = served.tree()
    served.proc.kill()
    served.proc.wait()
    assert_gone(tree, timeout=20)
    bind_listener("127.0.0.1", served.port).close()  # the next server can bind the port


# -- 4. slow and idle clients --------------------------------------------------------------------------


def test_silent_and_slow_clients_are_cut_off(serve: Any) -> None:
    served = serve("--header-timeout", "1", "--keepalive-timeout", "1", "--mode", "inline")
    config = info(served.port)["config"]
    assert (config["header_timeout_s"], config["keepalive_timeout_s"]) == (1.0, 1.0)

    silent = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    started = time.monotonic()
    assert silent.recv(100) == b""  # closed without a word
    assert 0.5 < time.monotonic() - started < 5

    slow = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    head = b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n"
    answer = b""
    for byte in head:
        try:
            slow.sendall(bytes([byte]))
        except OSError:  # closed under us: the answer is already there
            break
        time.sleep(0.3)
        slow.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            answer += slow.recv(4096)
        slow.setblocking(True)
        if answer:
            break
    silent.close()
    slow.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["detail"].startswith("request not received within 1")
    assert info(served.port)["counters"]["requests_timed_out"] >= 2
    stop_cleanly(served)


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256))


def test_idle_sockets_under_a_low_fd_limit_do_not_lock_clients_out(serve: Any) -> None:
    served = serve("--mode", "threadpool", preexec_fn=_low_fd_limit)
    idle = []
    try:
        for _ in range(300):
            idle.append(socket.create_connection(("127.0.0.1", served.port), timeout=10))
        time.sleep(0.5)
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=5)
        assert request(served.port, "GET", "/health", conn=conn) == (200, {"status": "ok"})
        counters = info(served.port, conn)["counters"]
        conn.close()
    finally:
        for sock in idle:
            sock.close()
    assert counters["connections_evicted_idle"] > 0
    assert info(served.port)["config"]["max_connections"] < 256
    stop_cleanly(served)


def test_connection_limit_refuses_clearly_when_no_connection_is_idle(serve: Any) -> None:
    served = serve("--max-connections", "8", "--mode", "threadpool")
    busy = [socket.create_connection(("127.0.0.1", served.port), timeout=10) for _ in range(8)]
    for sock in busy:
        sock.sendall(b"GET /health HTTP/1.1\r\n")  # a head on its way: not idle
    time.sleep(0.3)
    late = socket.create_connection(("127.0.0.1", served.port), timeout=10)
    late.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
    answer = b""
    while chunk := late.recv(4096):
        answer += chunk
    head, body = answer.split(b"\r\n\r\n", 1)
    for sock in (*busy, late):
        sock.close()
    assert head.startswith(b"HTTP/1.1 503"), answer
    assert b"retry-after: 1" in head.lower() and b"connection: close" in head.lower()
    assert json.loads(body)["detail"] == "too many connections (limit 8)"
    assert info(served.port)["counters"]["connections_refused"] >= 1
    stop_cleanly(served)


# -- 5. work whose client has gone -------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["inline", "threadpool", "executor", "process"])
def test_work_of_a_client_that_left_is_dropped(serve: Any, mode: str) -> None:
    served = serve("--mode", mode, "--threads", "1", "--pool-size", "1", "--queue-limit", "2")
    first = raw_request(served.port)  # computing
    time.sleep(0.1)
    second = raw_request(served.port)  # next in line
    time.sleep(0.1)
    leaving = raw_request(served.port)  # waits, then gives up
    time.sleep(0.1)
    leaving.close()
    time.sleep(0.1)
    late = raw_request(served.port)  # would be refused if the leaver still held its place
    assert [read_status(s) for s in (first, second, late)] == [200, 200, 200]
    counters = info(served.port)["counters"]
    assert counters["dropped_client_gone"] == 1, counters
    assert counters["refused_busy"] == 0
    for sock in (first, second, late):
        sock.close()
    stop_cleanly(served)


# -- 6. inline mode has an admission bound ---------------------------------------------------------


def test_inline_mode_bounds_requests_waiting_for_the_loop(serve: Any) -> None:
    """Requests that arrive while the loop computes wait for it, and only so many may."""
    served = serve("--mode", "inline", "--threads", "1", "--pool-size", "1", "--queue-limit", "1")
    busy = raw_request(served.port)  # holds the loop; the next three arrive meanwhile
    time.sleep(0.1)
    waiting = [raw_request(served.port, "/work/nbody", {"size": 10}) for _ in range(3)]
    statuses = [read_status(s) for s in (busy, *waiting)]
    for sock in (busy, *waiting):
        sock.close()
    assert statuses[0] == 200 and sorted(statuses[1:]) == [200, 200, 503], statuses
    assert info(served.port)["counters"]["refused_busy"] == 1
    stop_cleanly(served)


# -- 7. loops drain what they were handed ----------------------------------------------------------------


def test_loops_answer_connections_handed_over_before_sigterm(serve: Any) -> None:
    served = serve("--topology", "loops", "--mode", "inline", "--threads", "1")
    busy = raw_request(served.port)  # the loop computes; it takes up nothing else meanwhile
    time.sleep(0.15)
    waiting = [raw_request(served.port, "/work/nbody", {"size": 10}) for _ in range(3)]
    time.sleep(0.05)
    served.proc.send_signal(signal.SIGTERM)
    assert [read_status(s) for s in (busy, *waiting)] == [200, 200, 200, 200]
    for sock in (busy, *waiting):
        sock.close()
    assert served.proc.wait(30) == 0, served.log()
    assert_gone(served.descendants)


# -- 8. Ctrl-C -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("topology", ["single", "workers", "loops"])
def test_ctrl_c_in_process_mode_finishes_requests_in_flight(serve: Any, topology: str) -> None:
    served = serve("--topology", topology, "--mode", "process", "--threads", "2", new_session=True)
    in_flight = [raw_request(served.port) for _ in range(2)]
    time.sleep(0.2)
    tree = served.tree()
    signal_group(served, signal.SIGINT)
    assert [read_status(s) for s in in_flight] == [200, 200]
    for sock in in_flight:
        sock.close()
    assert served.proc.wait(30) == 0, served.log()
    assert_gone(tree)
    assert "Traceback" not in served.log()


# -- balance and counts in workers -----------------------------------------------------------------------


def test_workers_spread_keep_alive_connections_and_count_every_worker(serve: Any) -> None:
    served = serve("--topology", "workers", "--mode", "threadpool", "--threads", "4")
    for _ in range(3):
        conns = [http.client.HTTPConnection("127.0.0.1", served.port, timeout=30) for _ in range(8)]
        pids = Counter(info(served.port, conn)["pid"] for conn in conns)
        for conn in conns:
            assert request(served.port, "POST", "/work/nbody", {"size": 10}, conn=conn)[0] == 200
            conn.close()
        assert sorted(pids.values()) == [2, 2, 2, 2], pids
        time.sleep(0.2)  # the closed connections are reported back
    counts = info(served.port)["unit_requests"]  # work requests only
    assert counts == {f"worker {i}": 6 for i in range(4)}, counts
    assert info(served.port)["tcp_nodelay"] is True
    stop_cleanly(served)


def test_loops_report_every_loops_count(serve: Any) -> None:
    served = serve("--topology", "loops", "--mode", "executor", "--threads", "2")
    conns = [http.client.HTTPConnection("127.0.0.1", served.port, timeout=30) for _ in range(2)]
    for conn in conns:
        for _ in range(3):
            assert request(served.port, "POST", "/work/nbody", {"size": 10}, conn=conn)[0] == 200
    counts = info(served.port, conns[0])["unit_requests"]
    for conn in conns:
        conn.close()
    assert counts == {"loop 0": 3, "loop 1": 3}, counts
    stop_cleanly(served)


def test_port_is_free_again_after_a_clean_stop(serve: Any) -> None:
    served = serve("--topology", "workers", "--threads", "2")
    stop_cleanly(served)
    bind_listener("127.0.0.1", served.port).close()
    assert not os.path.exists(f"/proc/{served.proc.pid}")
