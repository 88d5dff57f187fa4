"""Recording one cell's profile: launch a self-terminating command, or attach to running servers.

- :meth:`Profiler.launch` (the micro bench): ``perf record -- <worker>`` until the worker exits;
  only the worker's own threads are kept (``threads``), so its start-up in the main thread is not
  counted, and the window is the span of the kept samples.
- :meth:`Profiler.attach` (the HTTP bench): ``perf record -p <server tree> -- sleep`` while the
  bench applies one load; samples outside the load's window are dropped, and perf is stopped
  with SIGINT as soon as the load ends (perf then writes a complete file, and the server is
  untouched).

Either way, ``perf script`` is folded straight from its pipe, the collapsed stacks go to
``profiles/<cell-id>.folded`` in the run directory, and ``perf.data`` (in a scratch directory)
and the trampoline's ``/tmp/perf-<pid>.map`` files are deleted. A profile that cannot be made
is a :class:`~ftscale.schema.Profile` with ``status="failed"`` and the reason: the cell itself
stays measured.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import psutil

from ftscale.bench import results
from ftscale.bench.profile.attribute import Tally, profile_of, python_tids, tally
from ftscale.bench.profile.perf import (
    EVENT,
    FREQUENCY_HZ,
    PERF_ENV,
    Perf,
    PerfError,
    Unavailable,
    last_line,
    probe,
    remove_maps,
)
from ftscale.bench.profile.stacks import Sample, folded_text, parse
from ftscale.schema import Profile

PROFILES_DIR = "profiles"
READY_TIMEOUT_S = 10.0  # for perf to attach before the load starts
STOP_TIMEOUT_S = 120.0  # for perf to write its file after SIGINT


def folded_name(cell_id: str) -> str:
    """Where a cell's collapsed stacks live, relative to its run directory."""
    return f"{PROFILES_DIR}/{cell_id}.folded"


def failed(error: str, command: Sequence[str] = ()) -> Profile:
    return Profile(status="failed", error=error, command=shlex.join(command))


def worker_threads(sample: Sample) -> bool:
    """Every thread but the main one: a micro worker's team (its main thread only starts it).

    With ``python_threads`` (the default of :meth:`Profiler.launch`), threads that never ran
    Python code are left out too: OpenBLAS's server threads, which spin in a process that
    imported numpy, are not the cell's work.
    """
    return sample.tid != sample.pid


class Profiler:
    """Records profiles for the cells of one run, with a probed :class:`Perf`."""

    def __init__(self, perf: Perf, run_dir: Path) -> None:
        self.perf = perf
        self.run_dir = run_dir

    def env(self) -> dict[str, str]:
        """What the profiled process's environment needs (Python functions in the samples)."""
        return dict(PERF_ENV)

    def forget(self, pids: Iterable[int]) -> None:
        """Delete what profiling these processes left in /tmp (after a profile that failed early)."""
        remove_maps(pids)

    def launch(
        self,
        cell_id: str,
        argv: Sequence[str],
        *,
        gil: bool,
        capacity_cpus: float,
        work: float | Callable[[str], float | None] | None,
        work_unit: str,
        threads: Callable[[Sample], bool] = worker_threads,
        python_threads: bool = True,
        timeout_s: float = 600.0,
    ) -> Profile:
        """Record ``argv`` to its end; ``work`` is what it does in the kept threads (a number, or
        read from its standard output)."""
        with tempfile.TemporaryDirectory(prefix="ftscale-perf-") as scratch:
            data = Path(scratch) / "perf.data"
            cmd = self.perf.launch_command(data, argv)
            try:
                proc = subprocess.run(
                    cmd,
                    capture_output=True,
                    text=True,
                    timeout=timeout_s,
                    check=False,
                    env={**os.environ, **self.env()},
                )
            except subprocess.TimeoutExpired:
                return failed(f"the profiled run did not finish in {timeout_s:.0f} s", cmd)
            if proc.returncode != 0 or not data.is_file():
                if data.is_file():  # the command failed: its processes' map files are still there
                    with contextlib.suppress(PerfError):
                        remove_maps({s.pid for s in parse(self.perf.script(data))})
                said = last_line(proc.stderr) if proc.stderr.strip() else last_line(proc.stdout)
                return failed(f"perf record exited with {proc.returncode}: {said}", cmd)
            return self._fold(
                cell_id,
                cmd,
                data,
                None,
                gil=gil,
                capacity_cpus=capacity_cpus,
                work=work(proc.stdout) if callable(work) else work,
                work_unit=work_unit,
                threads=threads,
                python_threads=python_threads,
            )

    def attach(
        self,
        cell_id: str,
        pids: Iterable[int],
        during: Callable[[], tuple[float | None, float | None]],
        *,
        gil: bool,
        capacity_cpus: float,
        work_unit: str,
        max_seconds: float,
    ) -> Profile:
        """Record the processes ``pids`` while ``during()`` runs.

        ``during`` returns the work it did and, when it knows, for how long it was loading the
        processes: the window is then that long and ends when ``during`` returned (so the start-up
        of a load generator's process is not counted as the server's idle time).
        """
        targets = sorted(set(pids))
        if not targets:
            return failed("no process to attach to (a server started elsewhere)")
        with tempfile.TemporaryDirectory(prefix="ftscale-perf-") as scratch:
            data = Path(scratch) / "perf.data"
            cmd = self.perf.attach_command(data, targets, max_seconds)
            errors = Path(scratch) / "perf.err"
            with errors.open("w") as err:
                proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)
            try:
                if not _wait_attached(proc):
                    return failed(f"perf record did not start: {last_line(errors.read_text())}", cmd)
                start = time.monotonic()
                work, active_s = during()
                end = time.monotonic()
                if active_s is not None and 0 < active_s < end - start:
                    start = end - active_s
            finally:
                _stop(proc)
            if not data.is_file():
                return failed(
                    f"perf record exited with {proc.returncode}: {last_line(errors.read_text())}", cmd
                )
            return self._fold(
                cell_id,
                cmd,
                data,
                (start, end),
                gil=gil,
                capacity_cpus=capacity_cpus,
                work=work,
                work_unit=work_unit,
                threads=lambda s: True,
            )

    def _fold(
        self,
        cell_id: str,
        cmd: list[str],
        data: Path,
        window: tuple[float, float] | None,
        *,
        gil: bool,
        capacity_cpus: float,
        work: float | None,
        work_unit: str,
        threads: Callable[[Sample], bool],
        python_threads: bool = False,
    ) -> Profile:
        counted = Tally()
        try:
            samples: Iterable[Sample] = parse(self.perf.script(data))
            if python_threads:
                samples = list(samples)
                ran_python = python_tids(samples)
                if ran_python:  # without the trampoline no thread shows Python: keep them all
                    cell_threads = threads

                    def threads(s: Sample) -> bool:
                        return s.tid in ran_python and cell_threads(s)

            counted = tally(samples, gil, threads, window)
        except PerfError as exc:
            return failed(str(exc), cmd)
        finally:
            remove_maps(counted.pids)
        if not counted.samples:
            return failed("perf recorded no samples of the cell's threads", cmd)
        name = folded_name(cell_id)
        results.write_atomic(self.run_dir / name, folded_text(counted.stacks).encode())
        return profile_of(
            counted,
            gil=gil,
            capacity_cpus=capacity_cpus,
            window=window or counted.span,
            command=shlex.join(cmd),
            call_graph=self.perf.call_graph,
            frequency_hz=FREQUENCY_HZ,
            work=work,
            work_unit=work_unit,
            folded=name,
            flags=self.perf.flags,
        )


def _wait_attached(proc: subprocess.Popen[bytes]) -> bool:
    """True once perf has enabled its events: it then lets its ``sleep`` child exec."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    parent = psutil.Process(proc.pid)
    while time.monotonic() < deadline and proc.poll() is None:
        with contextlib.suppress(psutil.Error):
            if any(child.name() == "sleep" for child in parent.children()):
                return True
        time.sleep(0.02)
    return False


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT (perf writes a complete file and leaves its targets running), then wait."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def open_profiler(run_dir: Path, log: Callable[[str], None] = print) -> Profiler | Unavailable:
    """A profiler for this run; or, after one line saying why perf cannot be used and how to fix
    it, the reason (the run then goes on without profiles)."""
    found = probe()
    if isinstance(found, Unavailable):
        log(f"profile: {found.reason}; the run goes on without profiles")
        return found
    return Profiler(found, run_dir)


def run_config(found: Profiler | Unavailable) -> dict[str, Any]:
    """How this run's profiles were recorded (for ``run.json``'s config)."""
    if isinstance(found, Unavailable):
        return {"unavailable": found.reason}
    return {
        "perf": found.perf.version,
        "event": EVENT,
        "frequency_hz": FREQUENCY_HZ,
        "call_graph": found.perf.call_graph,
        "environment": PERF_ENV,
        "flags": list(found.perf.flags),
        "note": "one extra repetition per cell under perf; never part of the measured samples",
    }


def run_notes(found: Profiler | Unavailable) -> list[str]:
    """What the report says up front when profiles were asked for but could not be recorded."""
    if isinstance(found, Unavailable):
        return [f"--profile: no profiles were recorded ({found.reason})"]
    return []
