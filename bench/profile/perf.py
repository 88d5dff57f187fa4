"""Linux ``perf``: whether it can be used here, the commands ftscale runs, and cleaning up after it.

What is recorded (the same on bare metal and on virtual machines without hardware counters):
the software ``cpu-clock`` event at 999 Hz (off the timer tick's beat), with DWARF call graphs
of 8 KiB of stack (enough: the unwind stops at the innermost Python frame anyway), compressed
(``-z``: DWARF stack copies shrink about a hundredfold), with context-switch records
(``--switch-events``: no stacks, a few bytes each; they tell a thread that slept from one that
was preempted), without perf's build-id cache (``-N``,
which would copy the 40 MB interpreter into ``~/.debug`` on every run), on CLOCK_MONOTONIC
(``-k mono``) so sample times compare with the bench's own clock. Python function names come
from CPython's perf trampoline, switched on by ``PYTHONPERFSUPPORT=1`` in the profiled
process's environment; CPython writes ``/tmp/perf-<pid>.map`` for it, which ``perf script``
reads and :func:`remove_maps` deletes afterwards.

:func:`probe` runs once per run: perf missing, or not permitted (``perf_event_paranoid``), is one
line saying how to enable it, and the run goes on without profiles.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

EVENT = "cpu-clock"
FREQUENCY_HZ = 999
DWARF = "dwarf,8192"
SCRIPT_FIELDS = "comm,pid,tid,time,period,event,ip,sym,dso"
PERF_ENV = {"PYTHONPERFSUPPORT": "1"}  # CPython's perf trampoline: Python functions in the samples
PARANOID = Path("/proc/sys/kernel/perf_event_paranoid")
ENABLE_HINT = "run as root, or allow it with: sudo sysctl kernel.perf_event_paranoid=1"
INSTALL_HINT = "install it (Debian: apt-get install linux-perf; Ubuntu: linux-tools-$(uname -r))"
NO_KERNEL = "no-kernel-samples"  # perf may sample user space only: the kernel bucket is then empty
FP_STACKS = "frame-pointer-stacks"  # perf cannot unwind DWARF: chains are partial


@dataclass(frozen=True)
class Perf:
    """A usable perf, and how it records."""

    executable: str
    version: str
    call_graph: str = DWARF
    flags: tuple[str, ...] = field(default=())  # caveats every profile of this run carries

    def record_options(self, output: Path) -> list[str]:
        sampling = ["-e", EVENT, "-F", str(FREQUENCY_HZ), "--call-graph", self.call_graph, "--switch-events"]
        quiet = ["-z", "-N", "-k", "mono", "-q"]
        return [self.executable, "record", *sampling, *quiet, "-o", str(output)]

    def launch_command(self, output: Path, argv: Sequence[str]) -> list[str]:
        """Record ``argv`` and everything it starts, until it exits."""
        return [*self.record_options(output), "--", *argv]

    def attach_command(self, output: Path, pids: Iterable[int], seconds: float) -> list[str]:
        """Record running processes (and the threads and children they start) for ``seconds``."""
        return [*self.record_options(output), "-p", ",".join(map(str, pids)), "--", "sleep", f"{seconds:g}"]

    def script(self, data: Path) -> Iterator[str]:
        """The text of ``perf script`` for ``data``, line by line (never the whole file in memory)."""
        cmd = [
            self.executable,
            "script",
            "-i",
            str(data),
            "--no-inline",
            "--show-switch-events",
            "-F",
            SCRIPT_FIELDS,
        ]
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True, errors="replace")
            assert proc.stdout is not None
            try:
                yield from proc.stdout
            finally:
                proc.stdout.close()
                code = proc.wait()
            if code != 0:
                errors.seek(0)
                raise PerfError(f"perf script failed (exit {code}): {last_line(errors.read().decode())}")


@dataclass(frozen=True)
class Unavailable:
    """Why profiles cannot be recorded here, in one line with how to change it."""

    reason: str


class PerfError(RuntimeError):
    """perf failed on a recording that had started: the profile fails, the cell does not."""


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def paranoid_level() -> str:
    try:
        return PARANOID.read_text().strip()
    except OSError:
        return "unknown"


def not_permitted(stderr: str) -> bool:
    return "perf_event_paranoid" in stderr or "Access to performance monitoring" in stderr


def _run(cmd: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def probe(executable: str = "perf") -> Perf | Unavailable:
    """Try a one-off recording; a usable :class:`Perf`, or :class:`Unavailable` with its reason."""
    found = shutil.which(executable)
    if found is None:
        return Unavailable(f"perf not found: {INSTALL_HINT}")
    try:
        version = _run([found, "--version"])
        if version.returncode != 0:  # Debian's wrapper without a perf for this kernel
            return Unavailable(f"perf does not run here ({last_line(version.stderr)}): {INSTALL_HINT}")
        options = _run([found, "version", "--build-options"])
        dwarf = any(
            f"{name}: [ on" in options.stdout for name in ("libdw-dwarf-unwind", "libunwind", "dwarf")
        )
        perf = Perf(found, version.stdout.strip(), DWARF if dwarf else "fp", () if dwarf else (FP_STACKS,))
        with tempfile.TemporaryDirectory(prefix="ftscale-perf-probe-") as scratch:
            data = Path(scratch) / "probe.data"
            record = _run([*perf.record_options(data), "--", "true"])
            if record.returncode != 0:
                if not_permitted(record.stderr):
                    return Unavailable(
                        f"perf not permitted (perf_event_paranoid={paranoid_level()}, "
                        f"{'root' if os.geteuid() == 0 else 'not root'}): {ENABLE_HINT}"
                    )
                return Unavailable(
                    f"perf record failed (exit {record.returncode}): {last_line(record.stderr)}"
                )
            events = _run([found, "evlist", "-i", str(data)])
    except (OSError, subprocess.SubprocessError) as exc:
        return Unavailable(f"perf could not be run ({exc})")
    if f"{EVENT}:u" in events.stdout:  # unprivileged at paranoid 2: user space only
        return Perf(perf.executable, perf.version, perf.call_graph, (*perf.flags, NO_KERNEL))
    return perf


def remove_maps(pids: Iterable[int]) -> None:
    """Delete the perf trampoline's ``/tmp/perf-<pid>.map`` files (CPython never does)."""
    for pid in set(pids):
        Path(f"/tmp/perf-{pid}.map").unlink(missing_ok=True)
