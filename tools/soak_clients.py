"""The soak's clients (:mod:`tools.soak`): good and bad requests in turn, and idle sockets that never
send a byte, against a service on loopback; each kind's statuses counted, and what each may get back.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import socket
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable

from tools.service import HOST

LARGE = "numpy_small"  # the workload sent now and then at its largest size
IDLE_REUSE_S = 2.0  # a keep-alive connection idle longer is reopened (the service closes idle ones)


# What each kind of request may get back. 503 is a clear refusal (busy, or too many
# connections), which a client under this much load may meet.
EXPECTED: dict[str, list[int]] = {
    "work": [200, 503],
    "health": [200, 503],
    "info": [200, 503],
    "large": [200, 503],
    "nan": [422, 503],
    "unknown": [404, 503],
    "out_of_range": [422, 503],
    "oversized": [413, 503],
    "malformed": [400],
    "slow_head": [408],
    "gone": [],  # the client leaves: nothing to read
    "stream": [200, 503],
    "deep_json": [422],
    "surrogate": [422],
    "big_head": [431],
    "framing": [400],
}
SMUGGLED = b"GET /info HTTP/1.1\r\nhost: soak\r\n\r\n"


def _post(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nhost: soak\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{extra}\r\n"
    ).encode() + body


def _status(sock: socket.socket) -> int:
    data = b""
    while b"\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed without an answer")
        data += chunk
    return int(data.split()[1])


class Soak:
    def __init__(self, port: int, clients: int, idle: int, deadline: float, large_size: int) -> None:
        self.port = port
        self.large_body = json.dumps({"size": large_size}).encode()
        self.clients = clients
        self.idle = idle
        self.deadline = deadline
        self.kinds: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.lock = threading.Lock()
        self.last_use: dict[int, float] = {}

    def record(self, kind: str, status: int | str) -> None:
        with self.lock:
            self.kinds[kind][str(status)] += 1

    def raw(self, kind: str, payload: bytes, timeout: float = 30) -> None:
        try:
            with socket.create_connection((HOST, self.port), timeout=timeout) as sock:
                sock.sendall(payload)
                self.record(kind, _status(sock))
        except OSError as exc:
            self.record(kind, f"error: {type(exc).__name__}")

    def client(self, index: int) -> None:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=120)
        steps: list[Callable[[], None]] = [
            lambda: self.keep_alive(conn, "work", "POST", "/work/nbody", b'{"size": 2000}'),
            lambda: self.keep_alive(conn, "work", "POST", "/work/json_roundtrip", b"{}"),
            lambda: self.keep_alive(conn, "health", "GET", "/health", b""),
            lambda: self.keep_alive(conn, "nan", "POST", "/work/nbody", b'{"size": NaN}'),
            lambda: self.keep_alive(conn, "unknown", "POST", "/work/fibonacci", b"{}"),
            lambda: self.keep_alive(conn, "out_of_range", "POST", "/work/nbody", b'{"size": 1e308}'),
            lambda: self.keep_alive(conn, "info", "GET", "/info", b""),
            lambda: self.raw("oversized", _post("/work/nbody", b'{"size": 1' + b" " * 70_000 + b"}")),
            lambda: self.raw("malformed", b"GARBAGE / HTTP/9\r\n\r\n"),
            lambda: self.keep_alive(conn, "stream", "POST", "/stream/stream_tokens", b'{"size": 8}'),
            lambda: self.keep_alive(conn, "deep_json", "POST", "/work/nbody", b"[" * 965 + b"]" * 965),
            lambda: self.keep_alive(conn, "surrogate", "POST", "/work/nbody", b'{"size": "\\ud800"}'),
            lambda: self.raw(
                "big_head", b"GET /health HTTP/1.1\r\nhost: soak\r\nx-long: " + b"a" * 20_000 + b"\r\n\r\n"
            ),
            lambda: self.raw(
                "framing",
                b"POST /work/nbody HTTP/1.1\r\nhost: soak\r\ncontent-length: 5\r\n"
                b"transfer-encoding: chunked\r\n\r\n0\r\n\r\n" + SMUGGLED,
            ),
            self.gone,
            lambda: self.keep_alive(conn, "work", "POST", "/work/regex_parse", b'{"size": 3000}'),
        ]
        if index == 0:
            steps.append(self.slow_head)
        turn = itertools.count()
        last_large = time.monotonic()
        while time.monotonic() < self.deadline:
            steps[next(turn) % len(steps)]()
            if index == 0 and time.monotonic() - last_large > 10:
                last_large = time.monotonic()
                self.keep_alive(conn, "large", "POST", f"/work/{LARGE}", self.large_body)
        conn.close()

    def keep_alive(
        self, conn: http.client.HTTPConnection, kind: str, method: str, path: str, body: bytes
    ) -> None:
        if time.monotonic() - self.last_use.get(id(conn), 0.0) > IDLE_REUSE_S:
            conn.close()  # the server may have closed it (keep-alive timeout): start afresh, as clients do
        self.last_use[id(conn)] = time.monotonic()
        try:
            headers = {"content-type": "application/json"} if body else {}
            conn.request(method, path, body=body or None, headers=headers)
            response = conn.getresponse()
            response.read()
            self.record(kind, response.status)
            if response.getheader("connection", "").lower() == "close":
                conn.close()
        except (OSError, http.client.HTTPException) as exc:
            self.record(kind, f"error: {type(exc).__name__}")
            conn.close()

    def gone(self) -> None:
        with contextlib.suppress(OSError), socket.create_connection((HOST, self.port), timeout=5) as sock:
            sock.sendall(_post("/work/spectral_norm", b'{"size": 200}'))
        self.record("gone", "left")

    def slow_head(self) -> None:
        """A head sent one byte every half second: answered 408 at the header timeout."""
        try:
            with socket.create_connection((HOST, self.port), timeout=30) as sock:
                for byte in b"GET /health HTTP/1.1\r\nhost: soak\r\n\r\n":
                    sock.sendall(bytes([byte]))
                    time.sleep(0.5)
                    sock.setblocking(False)
                    try:
                        if sock.recv(1, socket.MSG_PEEK):
                            break
                    except BlockingIOError:
                        pass
                    finally:
                        sock.setblocking(True)
                self.record("slow_head", _status(sock))
        except OSError as exc:
            self.record("slow_head", f"error: {type(exc).__name__}")

    def idle_sockets(self, stop: threading.Event) -> None:
        """Keep ``idle`` connections open that never send, reopening those the server closes."""
        held: list[socket.socket] = []
        try:
            while not stop.is_set():
                alive = []
                for sock in held:
                    sock.setblocking(False)
                    try:
                        closed = sock.recv(1) == b""
                    except BlockingIOError:
                        closed = False
                    except OSError:
                        closed = True
                    if closed:
                        sock.close()
                    else:
                        alive.append(sock)
                held = alive
                while len(held) < self.idle and not stop.is_set():
                    try:
                        held.append(socket.create_connection((HOST, self.port), timeout=5))
                    except OSError:
                        break
                stop.wait(0.5)
        finally:
            for sock in held:
                sock.close()
