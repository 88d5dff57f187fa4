"""The service under test, for the tools that drive it from outside (:mod:`tools.soak`,
:mod:`tools.spread`): ``ftscale serve`` started on a free loopback port and healthy, plain GETs to
it, and its process tree's RSS, sampled.
"""

from __future__ import annotations

import contextlib
import http.client
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence

import psutil

__all__ = ["HOST", "Sampler", "http_get", "process_tree", "service_process", "tree_rss"]

START_TIMEOUT_S = 60
HOST = "127.0.0.1"


def process_tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def tree_rss(pid: int) -> int:
    total = 0
    for proc in process_tree(pid):
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def http_get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


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
                if http_get(port, "/health")[0] == 200:
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


class Sampler:
    """The process tree's RSS every ``every_s`` seconds, as [seconds since the start, bytes],
    from the service's start to the end of the load."""

    def __init__(self, pid: int, every_s: float) -> None:
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-rss")
        self._began = time.monotonic()

    def _run(self) -> None:
        while True:
            self.samples.append((round(time.monotonic() - self._began, 2), tree_rss(self.pid)))
            if self._stop.wait(self.every_s):
                return

    def __enter__(self) -> Sampler:
        self._began = time.monotonic()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def __exit__(self, *exc: object) -> None:
        self.stop()
