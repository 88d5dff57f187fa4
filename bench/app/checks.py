"""Looking into a build's environment from outside: the app's import, each module's, their names.

Every check runs in a fresh process of the environment's own interpreter (a module that turns
the GIL on turns it on for good in its process), from a neutral folder with ``PYTHONSAFEPATH``
so that nothing in the current folder shadows what is checked, and with ``PYTHON_GIL`` unset:
the GIL as the imports leave it. ftscale's checking code (standard library only) reaches the
environment through ``PYTHONPATH`` (its code stage), so an environment ftscale did not make
(``ftscale audit --python``) can be checked too. The processes print JSON of the models of
:mod:`ftscale.schema`.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ftscale.bench.env import venv
from ftscale.errors import SetupError
from ftscale.schema import AppCheck, ModuleCheck, parse

TIMEOUT_S = 120


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment with ``PYTHON_GIL`` unset (the build's default), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON_GIL", "PYTHONPATH")}
    return {**env, "PYTHONSAFEPATH": "1", "PYTHONPATH": str(venv.code_stage()), **extra}


def _run(python: Path, args: list[str], what: str) -> str:
    with tempfile.TemporaryDirectory(prefix="ftscale-check-") as neutral:
        try:
            proc = subprocess.run(
                [str(python), *args],
                capture_output=True,
                text=True,
                check=False,
                cwd=neutral,
                env=clean_env(),
                timeout=TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise SetupError(f"{what} with {python} did not finish in {TIMEOUT_S} s") from None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = proc.stderr.strip()[-400:]
        raise SetupError(f"{what} with {python} failed (exit {proc.returncode}): {tail}")
    return lines[-1]  # what the checked code printed itself comes before


def facts(python: Path, packages: bool = False) -> dict[str, Any]:
    """What ``python`` is (:func:`ftscale.buildfacts.describe`), with its installed distributions."""
    found: dict[str, Any] = json.loads(
        _run(python, ["-m", "ftscale.buildfacts", *(["--packages"] if packages else [])], "describing it")
    )
    return found


def app_check(python: Path, spec: str, app_dir: Path) -> AppCheck:
    """Import the app ``spec`` in a fresh process of ``python`` (:mod:`ftscale.server.userapp`)."""
    args = ["-m", "ftscale.server.userapp", spec, "--app-dir", str(app_dir)]
    return parse(AppCheck, _run(python, args, f"importing {spec}"), "the app check")


def module_check(python: Path, module: str) -> ModuleCheck:
    """Import ``module`` alone in a fresh process of ``python``: does the GIL stay off?"""
    out = _run(python, ["-m", "ftscale.buildfacts", "--import-module", module], f"importing {module}")
    return parse(ModuleCheck, out, f"the import check of {module}")


def top_level_modules(python: Path, distributions: list[str]) -> dict[str, list[str]]:
    """The top-level modules each installed distribution provides, in ``python``'s environment."""
    if not distributions:
        return {}
    out = _run(python, ["-m", "ftscale.buildfacts", "--top-level", *distributions], "listing modules")
    found: dict[str, list[str]] = json.loads(out)
    return found
