"""Starting the real service (``python -m ftscale.server``) for tests, and looking at its processes."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from ftscale.bench.http.procs import free_port

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 30


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
    descendants: list[psutil.Process] = field(default_factory=list)

    def log(self) -> str:
        self.stderr.seek(0)
        return str(self.stderr.read().decode(errors="replace"))

    def tree(self) -> list[psutil.Process]:
        """Every process the server started, as now (also remembered for the final check)."""
        found = psutil.Process(self.proc.pid).children(recursive=True)
        self.descendants.extend(p for p in found if p not in self.descendants)
        return found


def start(
    cleanup: contextlib.ExitStack,
    *args: str,
    preexec_fn: Callable[[], None] | None = None,
    new_session: bool = False,
    health: str = "/health",
    port: int | None = None,
) -> Served:
    """Start ``python -m ftscale.server ARGS`` (on ``port``, or a free one) and wait until ``health``
    (its /health) answers."""
    port = port or free_port()
    stderr = cleanup.enter_context(tempfile.TemporaryFile())  # noqa: SIM115 (closed by cleanup)
    cmd = [sys.executable, "-m", "ftscale.server", "--host", "127.0.0.1", "--port", str(port), *args]
    proc = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=stderr,
        preexec_fn=preexec_fn,
        start_new_session=new_session,
    )
    served = Served(proc, port, stderr)
    cleanup.callback(_reap, served)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"server exited with {proc.returncode}:\n{served.log()}"
        try:
            if request(port, "GET", health) == (200, {"status": "ok"}):
                served.tree()
                return served
        except OSError:
            time.sleep(0.05)  # not listening yet: nothing to wait on but the clock
    raise AssertionError(f"server not healthy within {START_TIMEOUT_S} s:\n{served.log()}")


def _reap(served: Served) -> None:
    """Whatever a failed test left running: the server and everything it started."""
    with contextlib.suppress(psutil.Error):
        served.tree()
    if served.proc.poll() is None:
        served.proc.kill()
        served.proc.wait()
    for child in served.descendants:
        with contextlib.suppress(psutil.Error):
            child.kill()


def stop_cleanly(served: Served, signum: int = signal.SIGTERM) -> None:
    """Signal the server; it must exit 0 and every process it started must be gone."""
    served.tree()
    served.proc.send_signal(signum)
    assert served.proc.wait(STOP_TIMEOUT_S) == 0, served.log()
    assert_gone(served.descendants)


def assert_gone(processes: Iterable[psutil.Process], timeout: float = STOP_TIMEOUT_S) -> None:
    _, alive = psutil.wait_procs(list(processes), timeout=timeout)
    assert alive == [], f"left behind: {alive}"


def is_pool_child(proc: psutil.Process) -> bool:
    """A spawned multiprocessing child that is not the resource tracker."""
    cmdline = " ".join(proc.cmdline())
    return "multiprocessing.spawn" in cmdline and "resource_tracker" not in cmdline


def signal_group(served: Served, signum: int) -> None:
    """What Ctrl-C does: ``signum`` to the server's whole process group."""
    os.killpg(os.getpgid(served.proc.pid), signum)
