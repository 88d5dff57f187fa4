"""Compile CPython from its release tarball: extract it, configure, make and install into a staging
tree, and check that the staged interpreter runs with the modules the benchmarks need.

:mod:`~ftscale.bench.env.provision` decides what to build, where it goes and when it is cached.
Standard library only, and importing nothing of ftscale: the provisioning script loads it by path
on a bare interpreter.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class StepFailed(Exception):
    """A build step failed; the message says which and where its log is."""


OBJECT = re.compile(rb"\s-o\s+\S+\.o\b")  # a compiler command line that writes one object file


def run_step(
    step: str,
    cmd: list[str],
    cwd: Path,
    logs: Path,
    log: Callable[[str], None],
    expected_objects: int | None = None,
    tty: bool | None = None,
) -> int:
    """Run one build step into its log; show progress; return the object files it compiled.

    ``make`` runs for minutes: on a terminal one status line counts the compiled objects (against
    ``expected_objects`` when a previous build of the same version recorded it) with the elapsed
    time; elsewhere a plain line every 30 s.
    """
    logs.mkdir(parents=True, exist_ok=True)
    logfile = logs / f"{step}.log"
    started = time.monotonic()
    tty = sys.stdout.isatty() if tty is None else tty
    log(f"  {step}: {' '.join(cmd[:3])}{' ...' if len(cmd) > 3 else ''} (log: {logfile})")
    objects = 0
    last_shown = started
    with (
        logfile.open("wb") as out,
        subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if OBJECT.search(line):
                objects += 1
            now = time.monotonic()
            if objects and ((tty and now - last_shown >= 0.5) or (not tty and now - last_shown >= 30)):
                last_shown = now
                total = f"/{expected_objects}" if expected_objects else ""
                status = f"  {step}: {objects}{total} objects compiled, {now - started:.0f} s"
                if tty:
                    sys.stdout.write(f"\r{status}\033[K")
                    sys.stdout.flush()
                else:
                    log(status)
    if tty and objects:
        sys.stdout.write("\r\033[K")
    if proc.returncode != 0:
        raise StepFailed(f"build step '{step}' failed (exit {proc.returncode}); log: {logfile}")
    done = f", {objects} objects" if objects else ""
    log(f"  {step}: done in {time.monotonic() - started:.0f} s{done}")
    return objects


def expected_objects(markers: Sequence[Path]) -> int | None:
    """The object files an earlier build of the same version compiled, as the first of its
    ``markers`` (the cache's build records) that counted them says."""
    for marker in markers:
        try:
            count = json.loads(marker.read_text()).get("objects")
        except (OSError, ValueError):
            continue
        if isinstance(count, int) and count > 0:
            return count
    return None


def make_install(
    tarball: Path,
    version: str,
    stage: Path,
    prefix: Path,
    configure_args: Sequence[str],
    executable_name: str,
    logs: Path,
    log: Callable[[str], None],
    expected_objects: int | None = None,
) -> tuple[Path, int]:
    """Build ``tarball`` (CPython ``version``) in ``stage`` for ``prefix``, install it under
    ``stage`` and check it runs; return the staged tree (the future ``prefix``) and the object
    files compiled."""
    log(f"  extracting {tarball.name}")
    with tarfile.open(tarball) as tar:
        tar.extractall(stage, filter="data")
    src = stage / f"Python-{version}"
    jobs = str(os.cpu_count() or 1)
    run_step("configure", ["./configure", f"--prefix={prefix}", *configure_args], src, logs, log)
    objects = run_step("make", ["make", f"-j{jobs}"], src, logs, log, expected_objects)
    run_step("install", ["make", "install", f"DESTDIR={stage / 'root'}"], src, logs, log)
    staged = stage / "root" / prefix.relative_to("/")
    staged_exe = staged / "bin" / executable_name
    # The staged tree cannot find its stdlib at the final prefix yet; PYTHONHOME points it there.
    check = subprocess.run(
        [str(staged_exe), "-c", "import ssl, ctypes, sqlite3, zlib, lzma, bz2"],
        env={**os.environ, "PYTHONHOME": str(staged)},
        capture_output=True,
        text=True,
        check=False,
    )
    if check.returncode != 0:
        raise StepFailed(f"build step 'verify' failed: {check.stderr.strip()[-400:]}")
    return staged, objects
