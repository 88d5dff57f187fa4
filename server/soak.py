"""A bounded soak of the service: mixed good and bad requests plus idle sockets, on loopback.

    python -m ftscale.server.soak [--duration 60] [--idle 300] [-- SERVE ARGS]   (nox -s soak)

Starts ``ftscale serve`` (by default ``--topology workers --mode process --threads 2``, the
design with the most moving parts) on a free 127.0.0.1 port and, for ``--duration`` seconds,
keeps ``--idle`` sockets open that never send a byte (reopening those the server closes), while
``--clients`` threads send, in turn: good work requests, ``/health``, ``/info``, a NaN body,
an unknown workload, a size out of range, an oversized body, malformed HTTP, a request whose
client leaves at once, a head sent a byte at a time, and now and then one call at a workload's
largest size. Then it closes the idle sockets, times ``/health``, reads the process tree's RSS,
stops the service with SIGTERM, and checks that nothing is left. The figures go to
``results/soak/<time>-soak.json`` (:class:`ftscale.schema.SoakResult`); the exit status is 0
when the soak passed: no unexpected status, ``/health`` under 50 ms, RSS within 20 % of its
start (after a warm-up), exit status 0 and no leftover process.

It sends nothing but to 127.0.0.1, and stops by itself. A client of the service: it reads
``/info`` and the process table, nothing inside the service.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import http.client
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import psutil

from ftscale.schema import Info, SoakResult

DEFAULT_SERVE = ["--topology", "workers", "--mode", "process", "--threads", "2"]
HEALTH_LIMIT_MS = 50.0
RSS_LIMIT_PCT = 20.0
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30
HOST = "127.0.0.1"
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
}


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


def _tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def _rss(pid: int) -> int:
    total = 0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def _get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def service_process(serve_args: Sequence[str], port: int) -> Iterator[subprocess.Popen[bytes]]:
    """``ftscale serve ARGS`` on ``HOST:port``, healthy, until the block ends (then killed if still up)."""
    cmd = [sys.executable, "-m", "ftscale.server", "--host", HOST, "--port", str(port), *serve_args]
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed below); the service's warnings stay out of sight
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                log.seek(0)
                tail = log.read().decode(errors="replace")[-2000:]
                raise SystemExit(f"the service exited with status {proc.returncode}:\n{tail}")
            with contextlib.suppress(OSError):
                if _get(port, "/health")[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise SystemExit("the service did not start")
            time.sleep(0.1)
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        log.close()


def run(duration_s: float, clients: int, idle: int, serve_args: Sequence[str]) -> SoakResult:
    port = free_port()
    started = datetime.datetime.now(datetime.UTC)
    load_before = list(os.getloadavg())
    with service_process(serve_args, port) as proc:
        large_size = Info.model_validate_json(_get(port, "/info")[1]).max_sizes[LARGE]  # type: ignore[index]
        warm = Soak(port, clients, idle, time.monotonic() + 3, large_size)  # first calls import and allocate
        threads = [threading.Thread(target=warm.client, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        processes_start = len(_tree(proc.pid))
        rss_start = _rss(proc.pid)

        soak = Soak(port, clients, idle, time.monotonic() + duration_s, large_size)
        stop_idle = threading.Event()
        idler = threading.Thread(target=soak.idle_sockets, args=(stop_idle,))
        idler.start()
        threads = [threading.Thread(target=soak.client, args=(i,)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        stop_idle.set()
        idler.join()
        time.sleep(2)  # the closed sockets reach the server

        health_ms = []
        for _ in range(20):
            begun = time.perf_counter()
            status, _ = _get(port, "/health")
            health_ms.append((time.perf_counter() - begun) * 1000 if status == 200 else float("inf"))
        status, body = _get(port, "/info")
        info_after = Info.model_validate_json(body) if status == 200 else None
        tree = _tree(proc.pid)
        rss_end = _rss(proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            exit_status: int | None = proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            exit_status = None
        _, alive = psutil.wait_procs(tree[1:], timeout=STOP_TIMEOUT_S)

    kinds = {kind: dict(sorted(counts.items())) for kind, counts in sorted(soak.kinds.items())}
    unexpected = sum(
        n
        for kind, counts in kinds.items()
        for status, n in counts.items()
        if kind != "gone" and (not status.isdigit() or int(status) not in EXPECTED[kind])
    )
    change = (rss_end - rss_start) / rss_start * 100
    health = {"p50": statistics.median(health_ms), "max": max(health_ms)}
    passed = (
        unexpected == 0
        and health["max"] < HEALTH_LIMIT_MS
        and abs(change) <= RSS_LIMIT_PCT
        and exit_status == 0
        and not alive
    )
    return SoakResult(
        started=started.isoformat(timespec="seconds"),
        duration_s=duration_s,
        command=["ftscale", "serve", *serve_args],
        python=sys.version.split()[0] + ("t" if "free-threading" in sys.version else ""),
        gil_enabled=info_after.gil_enabled if info_after else None,
        cpus=len(os.sched_getaffinity(0)),
        load_average_before=load_before,
        load_average_after=list(os.getloadavg()),
        clients=clients,
        idle_sockets=idle,
        kinds=kinds,
        expected=EXPECTED,
        unexpected=unexpected,
        requests=sum(n for counts in kinds.values() for n in counts.values()),
        rss_start_bytes=rss_start,
        rss_end_bytes=rss_end,
        rss_change_pct=round(change, 2),
        health_after_ms={k: round(v, 3) for k, v in health.items()},
        processes_start=processes_start,
        processes_end=len(tree),
        exit_status=exit_status,
        leftover_processes=len(alive),
        info_after=info_after,
        passed=passed,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ftscale.server.soak", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of mixed traffic")
    parser.add_argument("--clients", type=int, default=4, help="client threads sending requests")
    parser.add_argument("--idle", type=int, default=300, help="idle sockets held open meanwhile")
    parser.add_argument("--out", type=Path, default=Path("results/soak"), help="folder for the JSON file")
    parser.add_argument(
        "serve", nargs="*", help=f"ftscale serve arguments (default: {' '.join(DEFAULT_SERVE)})"
    )
    args = parser.parse_args(argv)
    result = run(args.duration, args.clients, args.idle, args.serve or DEFAULT_SERVE)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = result.started.replace(":", "").replace("-", "").replace("+0000", "Z")
    path = args.out / f"{stamp}-soak.json"
    path.write_text(json.dumps(result.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
    print(
        f"{'passed' if result.passed else 'FAILED'}: {result.requests} requests, "
        f"{result.unexpected} unexpected; "
        f"/health p50 {result.health_after_ms['p50']:.1f} ms, max {result.health_after_ms['max']:.1f} ms; "
        f"RSS {result.rss_change_pct:+.1f} %; exit {result.exit_status}; "
        f"{result.leftover_processes} left over -> {path}"
    )
    return 0 if result.passed else 1


if __name__ == "__main__":
    sys.exit(main())
