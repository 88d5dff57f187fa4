"""The stream routes: every mode in-process, admission for a stream's whole life, a client that leaves."""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import socket
import threading
import time
import warnings
import zlib
from collections.abc import Callable, Iterator

import pytest
from serving import request, start, stop_cleanly
from starlette.exceptions import StarletteDeprecationWarning

from ftscale import workloads
from ftscale.server.app import create_app
from ftscale.server.config import Mode, ServerConfig
from ftscale.workloads import StreamSpec, Workload, WorkloadClass

with warnings.catch_warnings():
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from fastapi.testclient import TestClient

STREAMED = workloads.get("stream_tokens")


def events(body: bytes) -> list[bytes]:
    """The server-sent events of a whole body, each with its closing blank line."""
    assert body.endswith(b"\n\n"), body[-40:]
    return [part + b"\n\n" for part in body.split(b"\n\n")[:-1]]


@pytest.fixture(scope="module", params=list(Mode), ids=str)
def client(request: pytest.FixtureRequest) -> Iterator[TestClient]:
    with TestClient(create_app(ServerConfig(mode=request.param, threads=2))) as test_client:
        yield test_client


def _streamed(name: str, chunk: Callable[[int, int], bytes], delay_s: float = 0.0) -> Workload:
    return Workload(
        name=name,
        compute=lambda size: size,
        workload_class=WorkloadClass.STREAMING,
        size_meaning="chunks",
        default_size=2,
        min_size=1,
        max_size=10,
        smoke_size=1,
        description="a streamed test double",
        stream=StreamSpec(chunk=chunk, delay_s=delay_s),
    )


def test_a_stream_is_one_event_per_chunk_in_every_mode(client: TestClient) -> None:
    before = client.get("/info").json()["unit_requests"]
    started = time.monotonic()
    response = client.post("/stream/stream_tokens", json={"size": 3})
    elapsed = time.monotonic() - started
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = events(response.content)
    assert chunks == [STREAMED.stream.chunk(3, i) for i in range(3)]  # type: ignore[union-attr]
    checksum = 0
    for chunk in chunks:
        checksum = zlib.crc32(chunk, checksum)
    assert checksum == STREAMED.compute(3)
    assert elapsed >= 3 * STREAMED.stream.delay_s  # type: ignore[union-attr]
    after = client.get("/info").json()["unit_requests"]
    assert sum(after.values()) == sum(before.values()) + 1  # a finished stream counts once


def test_stream_routes_refuse_bad_input_as_the_work_routes_do(client: TestClient) -> None:
    for size in (0, STREAMED.max_size + 1, "3", 2.5):
        assert client.post("/stream/stream_tokens", json={"size": size}).status_code == 422
    response = client.post("/stream/stream_tokens", content=b'{"size": NaN}')
    assert response.status_code == 422
    for name in ("nbody", "no_such_thing"):  # a workload that does not stream, and none at all
        response = client.post(f"/stream/{name}", json={"size": 1})
        assert response.status_code == 404
        assert response.json()["known"] == ["stream_tokens"]
    assert client.post("/stream/stream_tokens").status_code == 200  # no body: the default size


def test_openapi_declares_an_event_stream_and_every_status() -> None:
    with TestClient(create_app(ServerConfig())) as test_client:
        document = test_client.get("/openapi.json").json()
    route = document["paths"]["/stream/stream_tokens"]["post"]
    assert set(route["responses"]["200"]["content"]) == {"text/event-stream"}
    event = route["responses"]["200"]["content"]["text/event-stream"]["schema"]  # each event (OpenAPI 3.1)
    assert event["required"] == ["data"] and event["properties"]["data"]["type"] == "string"
    assert set(route["responses"]) >= {"200", "400", "408", "413", "422", "500", "503"}
    assert "requestBody" in route
    unknown = document["paths"]["/stream/{workload}"]["post"]
    assert set(unknown["responses"]) >= {"404", "408", "503"}


@pytest.mark.parametrize("mode", [Mode.INLINE, Mode.THREADPOOL, Mode.EXECUTOR])
def test_each_chunk_is_computed_where_the_mode_says(mode: Mode) -> None:
    def where(size: int, index: int) -> bytes:
        return f"data: {threading.get_ident()}\n\n".encode()

    app = create_app(ServerConfig(mode=mode, threads=1), registry={"where": _streamed("where", where)})
    with TestClient(app) as test_client:
        body = test_client.post("/stream/where", json={"size": 3}).content
        loop_ident = test_client.portal.call(threading.get_ident)  # type: ignore[union-attr]
        names = {thread.ident: thread.name for thread in threading.enumerate()}
    idents = {int(event[len(b"data: ") :]) for event in events(body)}
    if mode is Mode.INLINE:
        assert idents == {loop_ident}
    elif mode is Mode.THREADPOOL:
        assert {names[i] for i in idents} == {"AnyIO worker thread"}
    else:
        assert all(names[i].startswith("ftscale-compute") for i in idents)


def test_process_mode_computes_chunks_in_its_children() -> None:
    with TestClient(create_app(ServerConfig(mode=Mode.PROCESS, threads=1))) as test_client:
        response = test_client.post("/stream/stream_tokens", json={"size": 2})
    assert events(response.content) == [STREAMED.stream.chunk(2, i) for i in range(2)]  # type: ignore[union-attr]


@pytest.mark.parametrize("mode", [Mode.INLINE, Mode.THREADPOOL, Mode.EXECUTOR])
def test_a_stream_holds_its_admission_place_until_its_last_chunk(mode: Mode) -> None:
    first_sent, second_started, release = threading.Event(), threading.Event(), threading.Event()

    def chunk(size: int, index: int) -> bytes:
        if index == 0:
            first_sent.set()
        elif size == 2:  # the first stream's last chunk waits for the test
            second_started.set()
            assert release.wait(10), "the test never released the last chunk"
        return b"data: x\n\n"

    slow = _streamed("slow", chunk, delay_s=1.0)
    app = create_app(
        ServerConfig(mode=mode, pool_size=1, queue_limit=0),
        registry={"slow": slow, "work": _streamed("work", chunk)},
    )
    with TestClient(app) as test_client, concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(test_client.post, "/stream/slow", json={"size": 2})
        try:
            assert first_sent.wait(10)
            refused = [test_client.post("/stream/slow", json={"size": 1}), test_client.post("/work/work")]
            # Between its chunks (in the 1 s delay) the stream computes nothing, yet its place is
            # taken: both routes refuse.
            between = not second_started.is_set()
        finally:
            release.set()
        assert [r.status_code for r in refused] == [503, 503]
        assert between, "the refusals came after the delay: too slow a machine to tell"
        assert refused[0].headers["retry-after"] == "1" and "busy" in refused[0].json()["detail"]
        assert events(first.result(10).content) == [b"data: x\n\n"] * 2
        assert test_client.post("/stream/slow", json={"size": 1}).status_code == 200  # place freed


def _open_stream(port: int, size: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    body = json.dumps({"size": size}).encode()
    sock.sendall(
        b"POST /stream/stream_tokens HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    return sock


def _read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        piece = sock.recv(65536)
        assert piece, f"connection closed before {marker!r}: {data[-200:]!r}"
        data += piece
    return data


@pytest.mark.slow
def test_a_client_that_leaves_ends_its_stream_and_frees_its_place() -> None:
    with contextlib.ExitStack() as cleanup:
        served = start(cleanup, "--mode", "threadpool", "--threads", "1", "--queue-limit", "0")
        sock = _open_stream(served.port, STREAMED.max_size)  # 20 s of chunks if nobody stopped it
        head = _read_until(sock, b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200") and b"text/event-stream" in head
        _read_until(sock, b"}\n\n")  # the first event
        status, busy = request(served.port, "POST", "/work/nbody", {"size": 1})
        assert status == 503, busy  # the stream holds the only place
        sock.close()
        deadline = time.monotonic() + 10
        while (status := request(served.port, "POST", "/work/nbody", {"size": 1})[0]) == 503:
            assert time.monotonic() < deadline, "the place of a stream whose client left was not freed"
            time.sleep(0.05)
        assert status == 200
        _, info = request(served.port, "GET", "/info")
        assert info["unit_requests"] == {"single": 1}  # the work request; the cut stream never finished
        stop_cleanly(served)


def test_the_app_prepares_its_workloads_before_it_serves() -> None:
    prepared: list[str] = []

    def compute(size: int) -> int:
        assert prepared == ["made"], "computed before its workload was prepared"
        return size

    workload = Workload(
        name="needs",
        compute=compute,
        workload_class=WorkloadClass.BLOCKING_IO,
        size_meaning="rows",
        default_size=1,
        min_size=1,
        max_size=10,
        smoke_size=1,
        description="a test double with something to make once",
        prepare=lambda: prepared.append("made"),
    )
    app = create_app(ServerConfig(mode=Mode.THREADPOOL), registry={"needs": workload})
    assert prepared == []  # building the app makes nothing
    with TestClient(app) as test_client:
        assert prepared == ["made"]
        assert test_client.post("/work/needs", json={"size": 3}).json()["checksum"] == 3
    assert prepared == ["made"]
