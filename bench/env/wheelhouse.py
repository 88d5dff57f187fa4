"""Wheels for hosts without a package index: fetched at home, installed from a folder there.

At home (``ftscale bundle``), each build's own interpreter downloads the binary wheels of the
extras it needs, so every wheel carries that build's tags (``cp313t`` and so on) and pip settles
on the releases that build supports; the versions it chose are pinned in
``constraints-<build>.txt`` beside the wheels.

On the host, ``$FTSCALE_WHEELHOUSE`` names that folder, and every environment ftscale makes
(:func:`ftscale.bench.env.venv.ensure`) installs from it alone, with the build's pins: no index,
no network, no compiler. Unset, environments install from the configured index as usual.

Standard library only.
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterable
from pathlib import Path

ENV = "FTSCALE_WHEELHOUSE"


class WheelhouseError(Exception):
    """Wheels could not be fetched; the message says which and why."""


def constraints_name(build: str) -> str:
    return f"constraints-{build}.txt"


def install_source(build: str) -> list[str]:
    """pip arguments that make ``build``'s installs come from the wheelhouse, if one is set."""
    where = os.environ.get(ENV)
    if not where:
        return []
    args = ["--no-index", "--find-links", where]
    pins = Path(where) / constraints_name(build)
    if pins.is_file():
        args += ["--constraint", str(pins)]
    return args


def carried() -> set[str] | None:
    """The distributions the wheelhouse holds a wheel of, by normalised name (None: no wheelhouse
    set, packages come from the index)."""
    where = os.environ.get(ENV)
    if not where:
        return None
    return {pin(wheel).partition("==")[0] for wheel in Path(where).glob("*.whl")}


def download(python: Path, requirements: Iterable[str], dest: Path) -> list[Path]:
    """Binary wheels of ``requirements`` and their dependencies for ``python``, into ``dest``."""
    dest.mkdir(parents=True, exist_ok=True)
    pip = [str(python), "-m", "pip", "download", "-q", "--disable-pip-version-check"]
    cmd = [*pip, "--only-binary=:all:", "--dest", str(dest), *requirements]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise WheelhouseError(f"pip download with {python} failed: {proc.stderr.strip()[-800:]}")
    return sorted(dest.glob("*.whl"))


def download_optional(python: Path, requirements: Iterable[str], dest: Path) -> dict[str, str]:
    """Like :func:`download`, one requirement at a time and best-effort: one without a binary
    wheel for ``python`` is left out (its environment on the host records it as unavailable).
    Returns the requirements left out, with pip's last line."""
    left_out: dict[str, str] = {}
    for requirement in requirements:
        try:
            download(python, [requirement], dest)
        except WheelhouseError as exc:
            left_out[requirement] = str(exc).splitlines()[-1][-300:]
    return left_out


def pin(wheel: Path) -> str:
    """``numpy-2.3.4-cp314-cp314t-manylinux….whl`` -> ``numpy==2.3.4``."""
    name, version = wheel.name.split("-")[:2]
    return f"{re.sub(r'[-_.]+', '-', name).lower()}=={version}"
