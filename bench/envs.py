"""Per-build virtual environments for the service and the benches.

Each provisioned interpreter gets one environment under ``.nox/ftscale-<build>``, installed from
the pyproject dependency groups with binary wheels only (no Rust or C++ toolchain ever runs; on
3.13t pip then settles on the newest releases that still ship cp313t wheels). An environment is
rebuilt only when the interpreter or the dependency groups change. After installing, the
service's modules are imported one by one to check that a free-threaded build still runs
without the GIL, and which module turned it on if not.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from bench import provision
from bench.results import REPO_ROOT, Build

PYPROJECT = REPO_ROOT / "pyproject.toml"


class EnvError(Exception):
    """An environment could not be made; the message says why."""


def env_dir(build: str) -> Path:
    return REPO_ROOT / ".nox" / f"ftscale-{build}"


def env_python(build: str) -> Path:
    return env_dir(build) / "bin" / "python"


def _stamp(interpreter: Path, groups: tuple[str, ...]) -> str:
    digest = hashlib.sha256()
    digest.update(str(interpreter.resolve()).encode())
    digest.update(PYPROJECT.read_bytes())
    digest.update(",".join(groups).encode())
    return digest.hexdigest()


def ensure(build: str, groups: tuple[str, ...] = ("bench",), log: Callable[[str], None] = print) -> Path:
    """Make (or reuse) the environment for ``build``; return its python."""
    interpreter = provision.linked(build)
    if interpreter is None:
        raise EnvError(f"build {build} is not provisioned; run: nox -s interpreters -- {build}")
    directory = env_dir(build)
    stamp_file = directory / ".ftscale-stamp"
    stamp = _stamp(interpreter, groups)
    if stamp_file.is_file() and stamp_file.read_text() == stamp and env_python(build).exists():
        return env_python(build)
    log(f"creating environment for {build} in {directory}")
    steps = [
        [str(interpreter), "-m", "venv", "--clear", str(directory)],
        [
            str(env_python(build)),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            *(f"--group={g}" for g in groups),
        ],
    ]
    for cmd in steps:
        proc = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            raise EnvError(f"{' '.join(cmd[:4])} ... failed for {build}: {proc.stderr.strip()[-800:]}")
    stamp_file.write_text(stamp)
    return env_python(build)


def describe(build: str, python: Path | None = None) -> Build:
    """What ``build``'s environment is, including the GIL import check and package versions."""
    python = python or env_python(build)
    proc = subprocess.run(
        [str(python), "-m", "bench.buildinfo", "--import-check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise EnvError(f"{python} -m bench.buildinfo failed: {proc.stderr.strip()[-800:]}")
    facts = json.loads(proc.stdout)
    return Build.model_validate({k: v for k, v in facts.items() if k in Build.model_fields})


def prepare(
    builds: list[str], groups: tuple[str, ...] = ("bench",), log: Callable[[str], None] = print
) -> dict[str, Build]:
    """Provision, install and describe each build; stop at the first that cannot be used."""
    missing = [b for b in builds if provision.linked(b) is None]
    if missing:
        provision.resolve(missing, log=log)
    described = {}
    for build in builds:
        ensure(build, groups, log)
        info = describe(build)
        if info.py_gil_disabled and info.gil_enabled:
            culprit = info.gil_reenabled_by or "an unknown import"
            log(f"warning: {build} runs with the GIL on: {culprit} enabled it")
        described[build] = info
    return described


if __name__ == "__main__":
    for name, info in prepare(sys.argv[1:] or ["3.14", "3.14t"]).items():
        print(name, info.version, "GIL", "on" if info.gil_enabled else "off", info.gil_reenabled_by or "")
