"""Server processes for the HTTP bench: start pinned, watch, measure, stop without orphans.

A server runs in its own session (process group), pinned to the server CPUs; everything it
forks inherits the pinning. CPU time and memory are summed over the whole process tree, so
``workers`` and ``process`` topologies are charged for their children. Stopping sends SIGTERM
(the server's clean shutdown path), waits, then SIGKILLs whatever is left of the group.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import psutil

from ftscale.bench import engine
from ftscale.schema import Info, parse
from ftscale.server.sockets import free_port as free_port  # where tests and older callers look for it

if TYPE_CHECKING:
    from ftscale.bench.http.zygote import Zygote

HEALTH_POLL_S = 0.005  # the first pause between /health tries, growing to 0.1 s


class ServerError(Exception):
    """A server did not start, crashed or hung; ``stderr_tail`` holds the end of its stderr."""

    def __init__(self, message: str, stderr_tail: str = "") -> None:
        super().__init__(message)
        self.stderr_tail = stderr_tail


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


class ProcessHandle(Protocol):
    """A started server's root process, however it was started."""

    pid: int

    def poll(self) -> int | None: ...  # its exit status once it has ended (-N: killed by signal N)
    def wait(self, timeout_s: float) -> int | None: ...  # ... waiting up to timeout_s for it


class PopenHandle:
    """A server started as a subprocess of the bench."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        self.proc, self.pid = proc, proc.pid

    def poll(self) -> int | None:
        return self.proc.poll()

    def wait(self, timeout_s: float) -> int | None:
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            return None


class ServerProcess:
    """A server started by the bench, on the engine's books until stopped.

    Started as a subprocess (``cmd`` is the whole command) or, with ``zygote``, forked from a
    pre-imported parent of its build (``cmd`` is then ``ftscale serve``'s arguments only, see
    :mod:`ftscale.bench.http.zygote`). Either way it runs in a session of its own, pinned to
    ``cpus``, and ``start_s``/``stop_s`` say what starting it (until ``/health`` answered) and
    stopping it cost.
    """

    def __init__(
        self,
        cmd: Sequence[str],
        host: str,
        port: int,
        cpus: Sequence[int] | None,
        cwd: Path,
        env: dict[str, str] | None = None,
        prefix: str = "",
        zygote: Zygote | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.prefix = prefix  # where its /health and /info are ("" for the service; a user's app: /__ftscale)
        self.stderr_file = tempfile.NamedTemporaryFile(prefix="ftscale-server-", delete=False)  # noqa: SIM115
        self.requested = time.monotonic()
        self.start_s: float | None = None
        self.stop_s: float | None = None
        self.forked = zygote is not None
        # A Ctrl-C or SIGTERM between the fork and the bookkeeping would leave a server that
        # nobody stops: interrupts wait until the server is on the books.
        with engine.INTERRUPTS.held():
            if zygote is not None:
                pid = zygote.spawn(list(cmd), env or {}, list(cpus or []), cwd, Path(self.stderr_file.name))
                self.handle: ProcessHandle = zygote.handle(pid)
            else:
                proc = subprocess.Popen(
                    list(cmd),
                    cwd=cwd,
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=self.stderr_file,
                    start_new_session=True,
                    env={**os.environ, **(env or {})},
                )
                self.handle = PopenHandle(proc)
            self.ps = psutil.Process(self.handle.pid)
            engine.track(self)
            if cpus and zygote is None:
                # Pinned before the interpreter has started (tens of ms): its threads and children inherit it.
                os.sched_setaffinity(self.handle.pid, set(cpus))

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.handle.pid

    def alive(self) -> bool:
        return self.handle.poll() is None

    def wait_healthy(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        pause = HEALTH_POLL_S
        while time.monotonic() < deadline:
            if not self.alive():
                raise ServerError(
                    f"server exited with {self.handle.poll()} during start-up", self.stderr_tail()
                )
            try:
                if http_json(f"{self.url}{self.prefix}/health", timeout=2.0).get("status") == "ok":
                    self.start_s = time.monotonic() - self.requested
                    return
            except (OSError, ValueError, urllib.error.URLError):
                pass
            time.sleep(pause)
            pause = min(0.1, pause * 1.5)
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
        try:
            with open(self.stderr_file.name, "rb") as err:
                size = err.seek(0, os.SEEK_END)
                err.seek(max(0, size - limit))
                return err.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout_s: float = 15.0) -> dict[str, Any]:
        """SIGTERM, wait, then SIGKILL the group; report the exit code and any orphans killed."""
        began = time.monotonic()
        group = [self.ps]
        try:
            group += self.ps.children(recursive=True)
        except psutil.Error:
            pass
        clean = True
        code = self.handle.poll()
        if code is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.handle.pid, signal.SIGTERM)
            code = self.handle.wait(timeout_s)
            if code is None:
                clean = False
                self._kill_group()
                code = self.handle.wait(5)
        _, survivors = psutil.wait_procs([p for p in group if p.pid != self.handle.pid], timeout=5)
        orphans = [p.pid for p in survivors]
        for proc in survivors:
            try:
                proc.kill()
            except psutil.Error:
                pass
        self._kill_group()
        self.stop_s = time.monotonic() - began
        self.stderr_file.close()
        with contextlib.suppress(OSError):
            os.unlink(self.stderr_file.name)
        engine.untrack(self)
        return {"exit_code": code, "clean": clean and not orphans, "orphans_killed": orphans}

    def _kill_group(self) -> None:
        try:
            os.killpg(self.handle.pid, signal.SIGKILL)
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
