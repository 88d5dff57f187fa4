"""The bench's side of :mod:`ftscale.server.zygote`: one pre-imported parent per build that forks
a fresh server for every repetition.

A fresh server per repetition keeps repetitions independent; starting one the ordinary way
costs an interpreter and the import of the whole stack (1.5 s on 3.14t, more with worker
processes that import it again). A zygote imports once; each server is then a fork of it, and
its worker processes and pool children forks of that (``--start-method fork``): fresh
processes, nothing imported again.

A zygote is started with the bench's environment (``PYTHON_GIL`` and the other variables read at
interpreter start-up are the same for every server it forks), pinned to the server CPUs (each
child is pinned to its own share). Servers that need another start-up environment (a profiled
repetition's ``PYTHONPERFSUPPORT``) are started the ordinary way (:data:`STARTUP_VARIABLES`).
A zygote that could not start or refused (threads after its imports) is recorded and its build
falls back to ordinary starts.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ftscale.bench import engine

# Environment variables that only take effect when an interpreter starts: a server that needs
# one of them set differently from the bench cannot be forked from a zygote.
STARTUP_VARIABLES = frozenset(
    {
        "PYTHON_GIL",
        "PYTHONPERFSUPPORT",
        "PYTHONMALLOC",
        "PYTHONHASHSEED",
        "PYTHONDEVMODE",
        "PYTHONTRACEMALLOC",
        "PYTHONPROFILEIMPORTTIME",
        "PYTHONOPTIMIZE",
        "PYTHON_JIT",
        "PYTHONWARNINGS",
    }
)
READY_TIMEOUT_S = 120.0  # the imports on a loaded machine
ANSWER_TIMEOUT_S = 30.0


class ZygoteError(RuntimeError):
    """A zygote did not answer as it should; the message says how."""


def forkable(env: Mapping[str, str] | None) -> bool:
    """Whether a server with ``env`` added to the bench's environment can be forked from a zygote."""
    return not any(k in STARTUP_VARIABLES and os.environ.get(k) != v for k, v in (env or {}).items())


class ZygoteHandle:
    """A server forked by a zygote, as :class:`~ftscale.bench.http.procs.ServerProcess` sees it."""

    def __init__(self, zygote: Zygote, pid: int) -> None:
        self.zygote, self.pid = zygote, pid

    def poll(self) -> int | None:
        return self.zygote.wait(self.pid, 0.0)

    def wait(self, timeout_s: float) -> int | None:
        return self.zygote.wait(self.pid, timeout_s)


class Zygote:
    """``python -m ftscale.server.zygote`` under ``python``, pinned to ``cpus``."""

    def __init__(self, python: Path, cpus: Sequence[int], cwd: Path | None = None) -> None:
        self.python = python
        self.stderr = tempfile.TemporaryFile(prefix="ftscale-zygote-")  # noqa: SIM115 - lives with self
        with engine.INTERRUPTS.held():
            self.proc = subprocess.Popen(
                [str(python), "-m", "ftscale.server.zygote"],
                cwd=cwd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.stderr,
                env={**os.environ, "PYTHONSAFEPATH": "1"},
                start_new_session=True,
            )
            engine.track(self)
        if cpus:
            os.sched_setaffinity(self.proc.pid, set(cpus))
        hello = self._read(READY_TIMEOUT_S)
        self.ready = bool(hello.get("ready"))
        self.why = None if self.ready else str(hello.get("why") or hello.get("error") or "not ready")
        if not self.ready:
            self.stop()

    def _read(self, timeout_s: float) -> dict[str, Any]:
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        line = self.proc.stdout.readline() if ready else b""
        if not line:
            self.stderr.seek(0)
            tail = self.stderr.read().decode(errors="replace")[-600:]
            raise ZygoteError(f"the zygote of {self.python} did not answer: {tail.strip() or 'no output'}")
        try:
            answer = json.loads(line)
        except ValueError:
            raise ZygoteError(f"the zygote of {self.python} said {line[:200]!r}") from None
        if not isinstance(answer, dict):
            raise ZygoteError(f"the zygote of {self.python} said {answer!r}")
        return answer

    def ask(self, order: dict[str, Any], timeout_s: float = ANSWER_TIMEOUT_S) -> dict[str, Any]:
        if self.proc.stdin is None or self.proc.poll() is not None:
            raise ZygoteError(f"the zygote of {self.python} has exited")
        self.proc.stdin.write((json.dumps(order) + "\n").encode())
        self.proc.stdin.flush()
        answer = self._read(timeout_s)
        if "error" in answer:
            raise ZygoteError(f"the zygote of {self.python}: {answer['error']}")
        return answer

    def spawn(self, argv: list[str], env: Mapping[str, str], cpus: list[int], cwd: Path, stderr: Path) -> int:
        """Fork ``ftscale serve ARGV``; its pid."""
        order = {
            "op": "spawn",
            "argv": argv,
            "env": dict(env),
            "cpus": cpus,
            "cwd": str(cwd),
            "stderr": str(stderr),
        }
        return int(self.ask(order)["pid"])

    def wait(self, pid: int, timeout_s: float) -> int | None:
        """The exit status of ``pid`` once it has ended, waiting up to ``timeout_s``; else None."""
        code = self.ask({"op": "wait", "pid": pid, "timeout": timeout_s}, timeout_s + ANSWER_TIMEOUT_S)[
            "code"
        ]
        return None if code is None else int(code)

    def handle(self, pid: int) -> ZygoteHandle:
        return ZygoteHandle(self, pid)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Close its orders: it kills what it forked and exits."""
        if self.proc.stdin is not None and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.stderr.close()
        engine.untrack(self)


def start_zygotes(
    pythons: Mapping[str, Path], cpus: Sequence[int], log: Any = print
) -> tuple[dict[str, Zygote], dict[str, str]]:
    """A zygote per build that can have one; (the zygotes, why the others have none)."""
    made: dict[str, Zygote] = {}
    without: dict[str, str] = {}
    for build, python in pythons.items():
        try:
            zygote = Zygote(python, cpus)
        except (ZygoteError, OSError) as exc:
            without[build] = str(exc)
            continue
        if zygote.ready:
            made[build] = zygote
        else:
            without[build] = zygote.why or "not ready"
    for build, why in without.items():
        log(f"{build}: servers start the ordinary way ({why})")
    return made, without
