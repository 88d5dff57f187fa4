"""The hardening rules in-process: hostile JSON, framing, the limits table, streams, the stop,
accept() failures, /info for a shared host, reserved routes, and the soak's memory trend.

Each rule is stated as a test, with its boundary on both sides; the real processes are in
``tests/test_server_hardening.py``.
"""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from ftscale import workloads
from ftscale.server import accepting, grace, guard, jsonguard, limits, rss_trend, sockets, userapp
from ftscale.server import info as server_info
from ftscale.server.app import create_app, strict_json_loads
from ftscale.server.config import ServerConfig
from ftscale.server.counters import EVENTS
from ftscale.server.stream import last_event
from ftscale.vocab import APP_PREFIX, HttpServer, InfoDetail

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

REPO_ROOT = Path(__file__).resolve().parent.parent


def counter(name: str) -> int:
    return int(getattr(EVENTS.snapshot(), name) or 0)


@pytest.fixture(scope="module")
def client() -> Iterator[TestClient]:
    with TestClient(create_app(ServerConfig(threads=1))) as test_client:
        yield test_client


# -- hostile JSON -----------------------------------------------------------------------------------


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def with_siblings(depth: int) -> bytes:
    """Nesting ``depth`` deep, with more brackets beside it than ``depth`` (so the scan runs)."""
    return b"[" + b"[], " * jsonguard.MAX_DEPTH + nested(depth - 1) + b"]"


def test_nesting_up_to_the_limit_parses_and_one_level_more_is_refused() -> None:
    assert strict_json_loads(nested(jsonguard.MAX_DEPTH)) is not None
    assert strict_json_loads(with_siblings(jsonguard.MAX_DEPTH)) is not None
    with pytest.raises(json.JSONDecodeError, match="nested deeper than"):
        strict_json_loads(nested(jsonguard.MAX_DEPTH + 1))
    with pytest.raises(json.JSONDecodeError, match="nested deeper than"):
        strict_json_loads(with_siblings(jsonguard.MAX_DEPTH + 1))
    with pytest.raises(json.JSONDecodeError, match="nested deeper than"):
        strict_json_loads(b'{"a": ' * (jsonguard.MAX_DEPTH + 1) + b"1" + b"}" * (jsonguard.MAX_DEPTH + 1))


def test_many_shallow_arrays_are_not_nesting() -> None:
    body = b"[" + b", ".join([b"[]", b"{}"] * 100) + b"]"
    assert len(strict_json_loads(body)) == 200


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = json.dumps({"size": 3, "note": "[" * 500 + '\\"{' * 100})
    assert strict_json_loads(text.encode())["size"] == 3


@pytest.mark.parametrize("body", [b'"\\ud800"', b'"\\udfff"', b'{"\\ud800": 1}', b'[1, ["x\\ud83d"]]'])
def test_a_lone_surrogate_anywhere_is_refused(body: bytes) -> None:
    with pytest.raises(json.JSONDecodeError, match="lone surrogate"):
        strict_json_loads(body)


def test_a_surrogate_pair_and_other_unicode_are_text() -> None:
    assert strict_json_loads(b'["\\ud83d\\ude00", "caf\\u00e9", "\xc3\xa9"]') == ["\U0001f600", "café", "é"]


@pytest.mark.parametrize("body", [nested(965), b'"\\ud800"', b'{"size": "\\udfff"}'])
def test_hostile_json_is_a_422_with_one_log_line_and_no_traceback(
    client: TestClient, caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    before = counter("json_refused")
    response = client.post("/work/nbody", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["type"] == "json_invalid"
    logged = [r for r in caplog.records if r.name == "ftscale.server"]
    assert len(logged) == 1 and logged[0].exc_info is None, logged
    assert "refused POST /work/nbody: 422" in logged[0].getMessage()
    assert counter("json_refused") == before + 1


def test_an_ordinary_422_is_not_counted_or_logged_as_hostile(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    before = counter("json_refused")
    response = client.post("/work/nbody", json={"size": 10, "\U0001f600": 1})
    assert response.status_code == 422 and response.json()["detail"][0]["type"] == "extra_forbidden"
    assert counter("json_refused") == before
    assert not [r for r in caplog.records if r.name == "ftscale.server"]


# -- framing and head limits (the ASGI guard) -------------------------------------------------------


def scope(*headers: tuple[bytes, bytes], version: str = "1.1", path: bytes = b"/health") -> dict[str, Any]:
    fields = list(headers)
    return {"type": "http", "method": "GET", "http_version": version, "raw_path": path, "headers": fields}


HOST = (b"host", b"x")


@pytest.mark.parametrize(
    ("request_scope", "status"),
    [
        (scope(HOST), None),
        (scope(HOST, (b"content-length", b"5")), None),
        (scope(HOST, (b"transfer-encoding", b"chunked")), None),
        (scope(HOST, (b"content-length", b"5"), (b"transfer-encoding", b"chunked")), 400),
        (scope(HOST, HOST), 400),
        (scope(), 400),
        (scope(version="1.0"), None),  # Host is HTTP/1.1's requirement
    ],
)
def test_framing_rules(request_scope: dict[str, Any], status: int | None) -> None:
    problem = guard.framing_problem(request_scope, 100, 16384)
    assert (problem[0] if problem else None) == status


def test_an_empty_host_is_none_only_where_the_server_fills_one_in() -> None:
    empty = scope((b"host", b""))
    assert guard.framing_problem(empty, 100, 16384) is None
    problem = guard.framing_problem(empty, 100, 16384, empty_host_is_none=True)
    assert problem is not None and problem[0] == 400


def test_header_count_and_head_size_limits_at_their_bounds() -> None:
    fields = [HOST] + [(b"x-%d" % i, b"1") for i in range(9)]
    assert guard.framing_problem(scope(*fields), 10, 16384) is None
    problem = guard.framing_problem(scope(*fields, (b"x-last", b"1")), 10, 16384)
    assert problem is not None and problem[0] == 431
    big = scope(HOST, (b"x-long", b"a" * 1000))
    size = guard.head_bytes(big)
    assert 1000 < size < 1100
    assert guard.framing_problem(big, 100, size) is None
    problem = guard.framing_problem(big, 100, size - 1)
    assert problem is not None and problem[0] == 431


def test_the_guard_answers_refusals_as_json_that_closes() -> None:
    config = ServerConfig(threads=1)
    before = counter("framing_refused")
    with TestClient(guard.guarded(create_app(config), config)) as guarded_client:
        framed_twice = {"transfer-encoding": "chunked", "content-length": "0"}
        response = guarded_client.get("/health", headers=framed_twice)
        assert guarded_client.get("/health").status_code == 200
    assert response.status_code == 400
    assert response.headers["connection"] == "close"
    assert response.json() == {"detail": "Content-Length and Transfer-Encoding together"}
    assert counter("framing_refused") == before + 1


class FakeConnection:
    """The kernel's view of one connection, as the guard reads it (:func:`server.sockets.connection_state`):
    the client acknowledges the answer ``ack_after`` looks after it was sent (never if None), and
    the server closes the connection itself, or a later one takes its addresses, from look ``gone_at``."""

    def __init__(self, ack_after: int | None = 1, gone_at: int | None = None, later: bool = False) -> None:
        self.ack_after, self.gone_at, self.later = ack_after, gone_at, later
        self.events: list[tuple[str, float]] = []
        self.looks_after_answer = 0
        self.answered = False

    def _log(self, event: str) -> None:
        self.events.append((event, time.monotonic()))

    def state(self, client: Any, server: Any) -> sockets.ConnectionState | None:
        assert (client, server) == (CLIENT, SERVER)
        if not self.answered:
            self._log("looked")
            return sockets.ConnectionState(7, 1000)
        self.looks_after_answer += 1
        self._log("looked")
        if self.gone_at is not None and self.looks_after_answer >= self.gone_at:
            return sockets.ConnectionState(8, 5000) if self.later else None  # the later one has bytes acked
        acked = self.ack_after is not None and self.looks_after_answer >= self.ack_after
        return sockets.ConnectionState(7, 1200 if acked else 1000)

    def sever(self, client: Any, server: Any, inode: int | None = None) -> bool:
        assert (client, server, inode) == (CLIENT, SERVER, 7)
        self._log("severed")
        return True

    async def send(self, message: dict[str, Any]) -> None:
        self._log(str(message.get("status", "body")))
        self.answered = message["type"] == "http.response.body"

    def names(self) -> list[str]:
        return [name for name, _ in self.events]

    def seconds(self, first: str, then: str) -> float:
        times = dict(reversed(self.events))  # the first time of each
        return times[then] - times[first]


CLIENT, SERVER = ("127.0.0.1", 50000), ("127.0.0.1", 8000)
LOOK_S = 0.05


def through_the_guard(
    monkeypatch: pytest.MonkeyPatch,
    conn: FakeConnection,
    server: HttpServer = HttpServer.GRANIAN,
    body_arrives: bool = False,
    write_timeout_s: float = 30.0,
) -> None:
    """One request through the guard of ``server`` whose body never comes (or comes at once), with
    ``conn`` standing in for the kernel; the loop runs on a second after the app returns."""
    monkeypatch.setattr(guard, "connection_state", conn.state)
    monkeypatch.setattr(guard, "sever", conn.sever)
    monkeypatch.setattr(guard, "CLOSE_AFTER_408_S", LOOK_S)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def receive() -> dict[str, Any]:
        if body_arrives:
            return {"type": "http.request", "body": b"{}", "more_body": False}
        await asyncio.Event().wait()  # the rest of the body never comes
        raise AssertionError("unreachable")

    config = ServerConfig(threads=1, server=server, body_timeout_s=0.05, write_timeout_s=write_timeout_s)
    headers = [(b"host", b"x")]
    scope = {"type": "http", "method": "POST", "path": "/w", "http_version": "1.1", "headers": headers}

    async def run() -> None:
        await guard.guarded(app, config)({**scope, "client": CLIENT, "server": SERVER}, receive, conn.send)
        await asyncio.sleep(1.0)

    asyncio.run(run())


def test_granian_s_connection_after_a_408_is_shut_down_once_the_client_has_the_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    conn = FakeConnection(ack_after=3)
    through_the_guard(monkeypatch, conn)
    assert conn.names() == ["looked", "408", "body", "looked", "looked", "looked", "severed"]
    assert conn.seconds("body", "severed") >= 3 * LOOK_S * 0.9  # not before the answer was acknowledged


def test_a_connection_granian_closed_itself_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = FakeConnection(ack_after=None, gone_at=1)
    through_the_guard(monkeypatch, conn)
    assert conn.names() == ["looked", "408", "body", "looked"]


def test_a_later_connection_between_the_same_addresses_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = FakeConnection(ack_after=None, gone_at=1, later=True)
    through_the_guard(monkeypatch, conn)
    assert "severed" not in conn.names()


def test_an_answer_never_acknowledged_is_cut_at_the_write_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = FakeConnection(ack_after=None)
    through_the_guard(monkeypatch, conn, write_timeout_s=0.3)
    assert conn.names()[-1] == "severed"
    assert 0.3 <= conn.seconds("408", "severed") < 0.3 + 3 * LOOK_S


@pytest.mark.parametrize(
    ("server", "body_arrives", "events"),
    [
        (HttpServer.GRANIAN, True, ["200", "body"]),  # the body came: the connection is the server's
        (HttpServer.HYPERCORN, False, ["408", "body"]),  # hypercorn closes after its 408 itself
    ],
)
def test_the_guard_leaves_other_connections_to_their_server(
    monkeypatch: pytest.MonkeyPatch, server: HttpServer, body_arrives: bool, events: list[str]
) -> None:
    conn = FakeConnection()
    through_the_guard(monkeypatch, conn, server=server, body_arrives=body_arrives)
    assert conn.names() == events


def test_a_connection_s_state_is_its_socket_and_the_bytes_its_client_acknowledged() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        with client, accepted:
            ends = (client.getsockname(), accepted.getsockname())
            before = sockets.connection_state(*ends)
            accepted.sendall(b"x" * 1234)
            assert client.recv(1234, socket.MSG_WAITALL) == b"x" * 1234
            deadline = time.monotonic() + 5
            while (after := sockets.connection_state(*ends)) and after.bytes_acked != 1234:
                assert time.monotonic() < deadline, after
                time.sleep(0.01)
            assert before is not None and after is not None
            assert (
                before.bytes_acked == 0 and before.inode == after.inode == os.fstat(accepted.fileno()).st_ino
            )
            assert not sockets.sever(*ends, inode=after.inode + 1)  # another socket: left alone
            accepted.sendall(b"y")
            assert client.recv(1) == b"y"  # still open
            assert sockets.sever(*ends, inode=after.inode)
            assert client.recv(16) == b""  # shut down: the client reads the end


# -- the one set of limits ---------------------------------------------------------------------------


def test_every_server_has_every_limit_enforced_by_someone() -> None:
    for server in HttpServer:
        assert set(limits.ENFORCED_BY[server]) == set(limits.Limit), server
    assert limits.ENFORCED_BY[HttpServer.UVICORN_FAST][limits.Limit.HEAD_BYTES] == limits.FTSCALE
    assert limits.ENFORCED_BY[HttpServer.GRANIAN][limits.Limit.HEAD_BYTES] == "granian"


@pytest.mark.parametrize(
    ("settings", "refused"),
    [
        ({"server": "granian", "max_headers": 100}, False),
        ({"server": "granian", "max_headers": 101}, True),
        ({"server": "uvicorn-fast", "max_headers": 500}, False),
        ({"server": "granian", "max_head_bytes": 8192}, False),
        ({"server": "granian", "max_head_bytes": 8191}, True),
        ({"server": "hypercorn", "max_head_bytes": 1024}, False),
    ],
)
def test_a_limit_a_server_cannot_hold_is_refused(settings: dict[str, Any], refused: bool) -> None:
    problem = limits.limits_problem(ServerConfig(**settings))
    assert (problem is not None) is refused
    if problem is not None:
        assert problem.startswith("--server granian") and "\n" not in problem


def test_the_refusal_is_one_line_and_exit_status_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "ftscale.server", "--server", "granian", "--max-headers", "200"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if "is not installed" in proc.stderr:
        pytest.skip("granian is not installed here")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("error: --server granian cannot accept --max-headers 200")


def test_granian_holds_heads_and_idle_connections_to_the_shorter_timeout() -> None:
    config = ServerConfig(server="granian", header_timeout_s=10, keepalive_timeout_s=4)
    held = limits.in_force(config)
    assert held["header_timeout_s"].value == held["keepalive_timeout_s"].value == 4
    held = limits.in_force(ServerConfig(server="uvicorn-h11", header_timeout_s=10, keepalive_timeout_s=4))
    assert (held["header_timeout_s"].value, held["keepalive_timeout_s"].value) == (10, 4)
    assert held["max_headers"].by == limits.FTSCALE and held["keepalive_timeout_s"].by == "uvicorn"


# -- streams ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("pool", "queue", "streams"), [(1, 4, 2), (2, 8, 5), (1, 0, 1), (4, 0, 2)])
def test_streams_get_half_the_admission_places_by_default(pool: int, queue: int, streams: int) -> None:
    config = ServerConfig(pool_size=pool, queue_limit=queue)
    assert config.effective_max_streams == streams
    assert ServerConfig(pool_size=pool, queue_limit=queue, max_streams=7).effective_max_streams == 7


def test_a_stream_over_max_streams_is_a_503_and_takes_no_admission_place() -> None:
    app = create_app(ServerConfig(threads=1, max_streams=1))
    with TestClient(app) as test_client:
        app.state.stream_places.enter()  # one stream open already
        before = counter("streams_refused")
        response = test_client.post("/stream/stream_tokens", json={"size": 1})
        assert response.status_code == 503 and response.headers["retry-after"] == "1"
        assert "--max-streams" in response.json()["detail"]
        assert counter("streams_refused") == before + 1
        assert app.state.service.admission.in_flight == 0
        app.state.stream_places.leave()
        response = test_client.post("/stream/stream_tokens", json={"size": 1})
        assert response.status_code == 200
        assert app.state.stream_places.open == 0 and app.state.service.admission.in_flight == 0


def test_a_stream_past_its_time_limit_ends_with_an_error_event() -> None:
    spec = workloads.get("stream_tokens").stream
    assert spec is not None
    app = create_app(ServerConfig(threads=1, stream_timeout_s=spec.delay_s * 3))
    before = counter("streams_timed_out")
    with TestClient(app) as test_client:
        body = test_client.post("/stream/stream_tokens", json={"size": 200}).content
    assert body.endswith(last_event("stream longer than 0.03 s (--stream-timeout)"))
    assert 1 <= body.count(b"data: ") - 1 < 200
    assert counter("streams_timed_out") == before + 1


def test_a_stream_ends_at_its_next_chunk_once_the_service_is_stopping() -> None:
    app = create_app(ServerConfig(threads=1))
    before = counter("streams_stopped")
    try:
        with TestClient(app) as test_client:
            grace.begin_stop()
            body = test_client.post("/stream/stream_tokens", json={"size": 50}).content
    finally:
        grace.reset_for_tests()
    assert body == last_event("the service is stopping")
    assert counter("streams_stopped") == before + 1


def test_the_stop_is_seen_through_a_shared_flag() -> None:
    class Flag:
        value = 0

    flag = Flag()
    try:
        grace.watch_shared(flag)
        assert not grace.stopping()
        flag.value = 1  # set by another process
        assert grace.stopping()
        flag.value = 0
        grace.begin_stop()  # set here: the flag is set for the others
        assert flag.value == 1
    finally:
        grace.reset_for_tests()
    assert not grace.stopping()


# -- accept() out of descriptors ---------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_accept_failures_are_logged_once_a_second_with_their_count(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    monkeypatch.setattr(accepting.time, "monotonic", clock)
    reporter = accepting._Reporter()
    failure = OSError(errno.EMFILE, "Too many open files")
    for at in (0.0, 0.3, 0.6, 0.99, 1.0, 1.5, 3.0):
        clock.now = 1000.0 + at
        reporter.report(failure)
    lines = [r.getMessage() for r in caplog.records if r.name == "ftscale.server"]
    assert [line.split(" time")[0] for line in lines] == [
        "accept() failed 1",  # at 0.0
        "accept() failed 4",  # at 1.0: 0.3, 0.6, 0.99 and itself
        "accept() failed 2",  # at 3.0: 1.5 and itself
    ]


def test_a_listener_backs_off_after_running_out_of_descriptors(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    monkeypatch.setattr(accepting.time, "monotonic", clock)
    calls: list[float] = []

    def out_of_fds(self: socket.socket) -> Any:
        calls.append(clock.now)
        raise OSError(errno.EMFILE, "Too many open files")

    monkeypatch.setattr(socket.socket, "accept", out_of_fds)
    with accepting.Listener(socket.AF_INET, socket.SOCK_STREAM) as listener:
        with pytest.raises(OSError) as first:
            listener.accept()
        assert first.value.errno == errno.EMFILE and not isinstance(first.value, BlockingIOError)
        clock.now += accepting.BACKOFF_S / 2
        with pytest.raises(BlockingIOError):  # the rest of the burst: nothing to accept
            listener.accept()
        clock.now += accepting.BACKOFF_S
        with pytest.raises(OSError) as again:
            listener.accept()
        assert again.value.errno == errno.EMFILE
    assert len(calls) == 2  # the socket was not asked during the back-off


# -- /info for a shared host ---------------------------------------------------------------------------------


@pytest.mark.parametrize("detail", list(InfoDetail))
def test_info_minimal_leaves_out_paths_build_options_and_pids(detail: InfoDetail) -> None:
    config = ServerConfig(info_detail=detail, app="svc:app", app_dir="/srv/private/app")
    described = server_info.describe(config)
    minimal = detail is InfoDetail.MINIMAL
    assert described.detail == str(detail)
    assert (described.pid is None, described.parent_pid is None) == (minimal, minimal)
    assert (described.interpreter.executable == "") is minimal
    assert (described.interpreter.config_args == "") is minimal or not described.interpreter.config_args
    assert (described.config.app_dir is None) is minimal
    # What the benches read stays in both.
    assert described.interpreter.build and described.gil_enabled is not None and described.counters
    assert described.limits is not None and described.config.info_detail == str(detail)


def test_work_answers_carry_no_pid_with_info_minimal() -> None:
    with TestClient(create_app(ServerConfig(info_detail="minimal", threads=1))) as test_client:
        assert test_client.post("/work/nbody", json={"size": 10}).json()["pid"] is None
        assert test_client.get("/info").json()["pid"] is None


# -- a user's routes under the reserved prefix -------------------------------------------------------------


def test_routes_under_the_reserved_prefix_are_found_and_warned_of_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from fastapi import FastAPI

    app = FastAPI()
    app.get(f"{APP_PREFIX}/metrics")(lambda: {})
    app.get(APP_PREFIX)(lambda: {})
    app.get("/__ftscalex")(lambda: {})  # a different prefix
    app.get("/orders")(lambda: {})
    assert sorted(userapp.reserved_routes(app)) == [APP_PREFIX, f"{APP_PREFIX}/metrics"]
    loaded = userapp.LoadedApp("tests:reserved", app, "FastAPI", False, None, None, ())
    userapp.warn_reserved(loaded)
    userapp.warn_reserved(loaded)
    (record,) = [r for r in caplog.records if r.name == "ftscale.server"]
    assert record.levelno == logging.WARNING and f"{APP_PREFIX}/metrics" in record.getMessage()


def test_an_app_without_reserved_routes_or_a_route_table_is_not_warned_of() -> None:
    async def bare(scope: Any, receive: Any, send: Any) -> None:
        pass

    from fastapi import FastAPI

    plain = FastAPI()
    plain.get("/orders")(lambda: {})
    assert userapp.reserved_routes(bare) == [] and userapp.reserved_routes(plain) == []


# -- the soak's memory trend --------------------------------------------------------------------------------


def series(rss: Any, seconds: int = 600, every: int = 5) -> list[tuple[float, int]]:
    return [(float(t), int(rss(t))) for t in range(0, seconds + 1, every)]


MB100 = 100 * rss_trend.MB


def test_a_steady_rise_above_the_limit_is_found() -> None:
    memory = rss_trend.trend(series(lambda t: MB100 * (1 + 0.02 * t / 60)), warmup_s=120)
    assert memory is not None and memory.steady_rise
    assert memory.slope_mb_per_min == pytest.approx(2.0, rel=1e-6)  # 2 MB a minute
    assert 1.5 < memory.slope_pct_per_min < 2.0 and 1.5 < memory.last_half_slope_pct_per_min < 2.0


def test_a_rise_that_levels_off_is_warm_up_not_a_steady_rise() -> None:
    memory = rss_trend.trend(series(lambda t: MB100 * (1 + 0.03 * min(t, 360) / 60)), warmup_s=120)
    assert memory is not None and memory.slope_pct_per_min > 1.0
    assert abs(memory.last_half_slope_pct_per_min) < 1.0 and not memory.steady_rise


def test_a_rise_only_in_the_last_half_is_not_steady_either() -> None:
    memory = rss_trend.trend(series(lambda t: MB100 * (1 + 0.04 * max(0, t - 480) / 60)), warmup_s=120)
    assert memory is not None and memory.last_half_slope_pct_per_min > 1.0
    assert memory.slope_pct_per_min < memory.last_half_slope_pct_per_min
    assert memory.steady_rise is (memory.slope_pct_per_min > 1.0)


def test_the_warm_up_is_left_out_and_a_flat_service_passes() -> None:
    climb_then_flat = series(lambda t: MB100 * (0.5 if t < 100 else 1.0))
    memory = rss_trend.trend(climb_then_flat, warmup_s=120)
    assert memory is not None and memory.slope_mb_per_min == 0 and not memory.steady_rise
    with_warmup = rss_trend.trend(climb_then_flat, warmup_s=0)
    assert with_warmup is not None and with_warmup.slope_pct_per_min > 1.0


def test_too_few_samples_give_no_trend() -> None:
    assert rss_trend.trend(series(lambda t: MB100, seconds=30), warmup_s=0) is None
    assert rss_trend.trend(series(lambda t: MB100, seconds=45), warmup_s=0) is not None


def test_minute_means_follow_the_minutes_after_the_warm_up_and_drop_a_cut_short_last_one() -> None:
    points = [(float(t), float(MB100 + (t // 60) * rss_trend.MB)) for t in range(120, 400, 5)]
    # Minutes from 120 s: 120-179 s at 102 MB, 180-239 at 103 ... 360-399 (8 of 12 samples) at 106.
    assert rss_trend.minute_means_mb(points, 120) == [102.0, 103.0, 104.0, 105.0, 106.0]
    assert rss_trend.minute_means_mb(points[:-3], 120) == [102.0, 103.0, 104.0, 105.0]  # 5 of 12: dropped
    memory = rss_trend.trend([(t, int(r)) for t, r in points], warmup_s=120)
    assert memory is not None and memory.minute_means_mb == [102.0, 103.0, 104.0, 105.0, 106.0]
