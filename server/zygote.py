"""A pre-imported parent that forks fresh servers: ``python -m ftscale.server.zygote``.

Starting ``ftscale serve`` costs an interpreter start and the import of the HTTP stack, FastAPI,
pydantic and the workloads: about 1.5 s on 3.14t, paid by every repetition of a bench that wants
a fresh server each time. The zygote pays it once. It imports what the servers import, then
waits for orders on its standard input, one JSON object per line, and answers each with one
JSON line on its standard output:

- ``{"op": "spawn", "argv": [...], "env": {...}, "cpus": [...], "cwd": "...", "stderr": PATH}``
  forks a child that becomes ``ftscale serve ARGV`` in a session of its own (so its process
  group can be signalled as one), pinned to ``cpus``, with ``env`` added to its environment and
  its standard error appended to ``PATH``; answers ``{"pid": N}``;
- ``{"op": "wait", "pid": N, "timeout": S}``: ``{"code": C}`` once the child has exited (a
  signal's death as ``-SIGNUM``), or ``{"code": null}`` after ``S`` seconds;
- ``{"op": "poll", "pid": N}``: the same without waiting.

Each child is a fresh process: its own memory from the fork on, its own pools and sockets, and
its worker processes and pool children are forked from it in turn (``--start-method fork``),
so none of them imports anything again. It exits with ``os._exit`` after serving: interpreter
finalisation would only cost time, and the service has already stopped its pools and sockets.

Forking is safe only from a process with one thread: the zygote checks that it has one after
its imports (a library that starts threads at import, such as OpenBLAS, would break that) and
says ``{"ready": false, "why": ...}`` instead of ``{"ready": true}`` when it does not, so the
caller starts servers the ordinary way. Variables that the interpreter reads at start-up
(``PYTHON_GIL``, ``PYTHONPERFSUPPORT`` …) cannot change in a forked child: the caller starts the
zygote with them, or does not use it. Children share the zygote's hash seed.

When its standard input closes (the bench has ended or died), the zygote kills every child's
process group and exits.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import signal
import sys
import time
from typing import Any

from ftscale.server import lifeline
from ftscale.vocab import TOPOLOGIES

# What ``ftscale serve`` imports on its way to serving, on any server and topology (those not
# installed for this build are skipped); every topology's runner module among them.
_RUNNER_MODULES = tuple(dict.fromkeys(info.runner.partition(":")[0] for info in TOPOLOGIES.values()))
PRELOAD = (
    "ftscale.server.cli",
    "ftscale.server.config",
    "ftscale.server.app",
    "ftscale.server.stream",
    *_RUNNER_MODULES,
    "ftscale.server.userapp",
    "ftscale.workloads",
    "uvicorn.protocols.http.h11_impl",
    "uvicorn.lifespan.on",
    "uvicorn.loops.asyncio",
    "concurrent.futures.process",
    "multiprocessing.popen_fork",
    "multiprocessing.popen_spawn_posix",
)
WAIT_STEP_S = 0.002


def preload(modules: tuple[str, ...] = PRELOAD) -> list[str]:
    """Import ``modules``; the names of those that could not be imported."""
    missing = []
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    return missing


class Children:
    """The children forked so far and the exit codes of those that have ended."""

    def __init__(self) -> None:
        self.running: set[int] = set()
        self.codes: dict[int, int] = {}

    def reap(self) -> None:
        while self.running:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                self.running.clear()
                return
            if pid == 0:
                return
            self.running.discard(pid)
            self.codes[pid] = os.waitstatus_to_exitcode(status)

    def code(self, pid: int) -> int | None:
        self.reap()
        if pid not in self.codes and pid not in self.running:
            raise KeyError(f"no child {pid}")
        return self.codes.get(pid)

    def wait(self, pid: int, timeout_s: float) -> int | None:
        deadline = time.monotonic() + timeout_s
        while (code := self.code(pid)) is None and time.monotonic() < deadline:
            time.sleep(WAIT_STEP_S)
        return code

    def kill_all(self) -> None:
        for pid in list(self.running):
            with contextlib.suppress(OSError):
                os.killpg(pid, signal.SIGKILL)
        self.reap()


def become_server(order: dict[str, Any]) -> int:
    """In the forked child: set the process up as ``order`` says and serve; the exit status."""
    os.setsid()
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
        signal.signal(signum, signal.SIG_DFL if signum != signal.SIGPIPE else signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())
    cpus = order.get("cpus") or []
    if cpus:
        os.sched_setaffinity(0, set(cpus))
    os.environ.update({str(k): str(v) for k, v in (order.get("env") or {}).items()})
    os.chdir(order.get("cwd") or os.getcwd())
    null = os.open(os.devnull, os.O_RDWR)
    os.dup2(null, 0)
    os.dup2(null, 1)
    err = os.open(order["stderr"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.dup2(err, 2)
    os.close(null)
    os.close(err)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 - the process's own descriptors
    sys.stdout = open(1, "w", closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", closefd=False)  # noqa: SIM115
    from ftscale.server.cli import main

    argv = [str(a) for a in order["argv"]]
    sys.argv = ["ftscale serve", *argv]
    return main(argv)


def spawn(children: Children, order: dict[str, Any]) -> int:
    pid = os.fork()
    if pid == 0:  # the child never returns from here
        code = 1
        try:
            code = become_server(order)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            import traceback

            traceback.print_exc()
        finally:
            with contextlib.suppress(Exception):
                import logging

                logging.shutdown()
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)
    children.running.add(pid)
    return pid


def answer(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def serve_orders() -> int:
    children = Children()
    for line in sys.stdin:
        try:
            order = json.loads(line)
            op = order["op"]
            if op == "spawn":
                answer({"pid": spawn(children, order)})
            elif op == "wait":
                answer({"code": children.wait(int(order["pid"]), float(order.get("timeout", 0)))})
            elif op == "poll":
                answer({"code": children.code(int(order["pid"]))})
            else:
                answer({"error": f"unknown op {op!r}"})
        except (KeyError, ValueError, TypeError, OSError) as exc:
            answer({"error": f"{type(exc).__name__}: {exc}"})
    children.kill_all()
    return 0


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the bench's; it closes our stdin
    missing = preload()
    threads = lifeline.os_threads()
    if threads != 1:
        answer({"ready": False, "why": f"{threads} threads after the imports: forking would be unsafe"})
        return 0
    answer({"ready": True, "missing": missing, "python": sys.version.split()[0]})
    return serve_orders()


if __name__ == "__main__":
    sys.exit(main())
