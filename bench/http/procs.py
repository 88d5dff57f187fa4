"""Server processes for the HTTP bench: start pinned, watch, measure, stop without orphans.

A server runs in its own session (process group), pinned to the server CPUs; everything it
forks inherits the pinning. CPU time and memory are summed over the whole process tree, so
``workers`` and ``process`` topologies are charged for their children. Stopping sends SIGTERM
(the server's clean shutdown path), waits, then SIGKILLs whatever is left of the group.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from ftscale.bench import engine
from ftscale.schema import Info, parse


class ServerError(Exception):
    """A server did not start, crashed or hung; ``stderr_tail`` holds the end of its stderr."""

    def __init__(self, message: str, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def http_json(url: str, timeout: float = 5.0) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as response:
        data = json.loads(response.read())
    if not isinstance(data, dict):
        raise ValueError(f"{url} did not return a JSON object")
    return data


def read_info(base_url: str, timeout: float = 5.0) -> Info:
    """The service's ``/info``, validated: the one way the bench reads it (local or remote)."""
    with urllib.request.urlopen(f"{base_url}/info", timeout=timeout) as response:
        return parse(Info, response.read(), f"{base_url}/info")


@dataclass
class Usage:
    cpu_seconds: float
    rss_bytes: int
    pss_bytes: int | None
    processes: int
    peak_rss_bytes: int | None = None  # VmHWM summed over the tree (each process's own peak)


def _peak_rss(pid: int) -> int | None:
    """A process's peak resident set (VmHWM) in bytes, where Linux tells."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text(errors="replace").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def tree_usage(root: psutil.Process) -> Usage:
    """CPU seconds and memory summed over ``root`` and its descendants still alive."""
    procs = [root]
    try:
        procs += root.children(recursive=True)
    except psutil.Error:
        pass
    cpu = 0.0
    rss = 0
    pss: int | None = 0
    peak: int | None = 0
    counted = 0
    for proc in procs:
        try:
            times = proc.cpu_times()
            cpu += times.user + times.system
            hwm = _peak_rss(proc.pid)
            peak = None if peak is None or hwm is None else peak + hwm
            try:
                full = proc.memory_full_info()
                rss += full.rss
                pss = None if pss is None else pss + getattr(full, "pss", 0)
            except psutil.AccessDenied:
                rss += proc.memory_info().rss
                pss = None
            counted += 1
        except psutil.Error:
            continue
    return Usage(cpu_seconds=cpu, rss_bytes=rss, pss_bytes=pss, processes=counted, peak_rss_bytes=peak)


class ServerProcess:
    """A server started by the bench, on the engine's books until stopped."""

    def __init__(
        self,
        cmd: Sequence[str],
        host: str,
        port: int,
        cpus: Sequence[int] | None,
        cwd: Path,
        env: dict[str, str] | None = None,
        prefix: str = "",
    ) -> None:
        self.host, self.port = host, port
        self.prefix = prefix  # where its /health and /info are ("" for the service; a user's app: /__ftscale)
        self.stderr_file = tempfile.TemporaryFile(prefix="ftscale-server-")  # noqa: SIM115 - lives with self
        # A Ctrl-C or SIGTERM between the fork and the bookkeeping would leave a server that
        # nobody stops: interrupts wait until the server is on the books.
        with engine.INTERRUPTS.held():
            self.proc = subprocess.Popen(
                list(cmd),
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=self.stderr_file,
                start_new_session=True,
                env={**os.environ, **(env or {})},
            )
            self.ps = psutil.Process(self.proc.pid)
            engine.track(self)
            if cpus:
                # Pinned before the interpreter has started (tens of ms): its threads and children inherit it.
                os.sched_setaffinity(self.proc.pid, set(cpus))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServerError(
                    f"server exited with {self.proc.returncode} during start-up", self.stderr_tail()
                )
            try:
                if http_json(f"{self.url}{self.prefix}/health", timeout=2.0).get("status") == "ok":
                    return
            except (OSError, ValueError, urllib.error.URLError):
                pass
            time.sleep(0.1)
        raise ServerError(f"server not healthy after {timeout_s:.0f} s", self.stderr_tail())

    def info(self) -> Info:
        return read_info(self.url + self.prefix)

    def usage(self) -> Usage:
        return tree_usage(self.ps)

    def pids(self) -> list[int]:
        """The server and every process it started (uvicorn workers, process pools)."""
        try:
            return [self.ps.pid, *(child.pid for child in self.ps.children(recursive=True))]
        except psutil.Error:
            return [self.ps.pid]

    def stderr_tail(self, limit: int = 4000) -> str:
        self.stderr_file.flush()
        size = self.stderr_file.seek(0, os.SEEK_END)
        self.stderr_file.seek(max(0, size - limit))
        return self.stderr_file.read().decode(errors="replace")

    def stop(self, timeout_s: float = 15.0) -> dict[str, Any]:
        """SIGTERM, wait, then SIGKILL the group; report the exit code and any orphans killed."""
        group = [self.ps]
        try:
            group += self.ps.children(recursive=True)
        except psutil.Error:
            pass
        clean = True
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                clean = False
                self._kill_group()
                self.proc.wait(5)
        _, survivors = psutil.wait_procs([p for p in group if p.pid != self.proc.pid], timeout=5)
        orphans = [p.pid for p in survivors]
        for proc in survivors:
            try:
                proc.kill()
            except psutil.Error:
                pass
        self._kill_group()
        self.stderr_file.close()
        engine.untrack(self)
        return {"exit_code": self.proc.returncode, "clean": clean and not orphans, "orphans_killed": orphans}

    def _kill_group(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def run_pinned(cmd: Sequence[str], cpus: Sequence[int] | None, timeout_s: float, cwd: Path) -> str:
    """Run a command pinned to ``cpus``; return its stdout, raise with its stderr on failure."""
    proc = subprocess.Popen(list(cmd), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if cpus:
        os.sched_setaffinity(proc.pid, set(cpus))
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise RuntimeError(f"{' '.join(cmd[:4])} ... did not finish in {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed (exit {proc.returncode}): {err.strip()[-600:]}")
    return out
