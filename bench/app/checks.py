"""Looking into a build's environment from outside: the app's import, each module's, their names.

Every check runs in a fresh process of the environment's own interpreter (a module that turns
the GIL on turns it on for good in its process), from a neutral folder with ``PYTHONSAFEPATH``
so that nothing in the current folder shadows what is checked, and with ``PYTHON_GIL`` unset:
the GIL as the imports leave it. ftscale's checking code (standard library only) reaches the
environment through ``PYTHONPATH`` (its code stage), so an environment ftscale did not make
(``ftscale audit --python``) can be checked too. The processes print JSON of the models of
:mod:`ftscale.schema`.

Which module turned the GIL on: CPython warns once, naming the module, when an extension
without the ``Py_mod_gil`` slot first enables the GIL; the warning can be filtered away by the
code being imported, and it is not repeated for the next such module once the GIL is on. So
the imports run with ``PYTHONVERBOSE=1``, under which CPython (3.13 and later, with
``PYTHON_GIL`` unset) writes ``# loading module 'X', which requires the GIL`` for every extension
module it loads without that slot, whatever the warning filters and the GIL's state: the
check keeps those names (``gil_modules``) and names the first of them where the warning is
missing.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ftscale.bench.env import venv
from ftscale.errors import SetupError
from ftscale.schema import AppCheck, ModuleCheck, parse

TIMEOUT_S = 120
REQUIRES_GIL = re.compile(r"^# loading module '([^']+)', which requires the GIL$", re.MULTILINE)
# What the import-time verbose mode writes besides: left out of an error's tail.
VERBOSE_NOISE = re.compile(r"^(?:#|import |Python \d|Type \"help\").*$\n?", re.MULTILINE)
NO_WARNING = "an import that issued no warning"  # ftscale.buildfacts' words for an unnamed culprit


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment with ``PYTHON_GIL`` unset (the build's default), plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHON_GIL", "PYTHONPATH")}
    return {**env, "PYTHONSAFEPATH": "1", "PYTHONPATH": str(venv.code_stage()), **extra}


def _run_both(python: Path, args: list[str], what: str, verbose: bool = False) -> tuple[str, str]:
    """The last line ``python args`` printed, and its standard error (``verbose``: with
    ``PYTHONVERBOSE=1``)."""
    with tempfile.TemporaryDirectory(prefix="ftscale-check-") as neutral:
        try:
            proc = subprocess.run(
                [str(python), *args],
                capture_output=True,
                text=True,
                check=False,
                cwd=neutral,
                env=clean_env(**({"PYTHONVERBOSE": "1"} if verbose else {})),
                timeout=TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise SetupError(f"{what} with {python} did not finish in {TIMEOUT_S} s") from None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = VERBOSE_NOISE.sub("", proc.stderr).strip()[-400:]
        raise SetupError(f"{what} with {python} failed (exit {proc.returncode}): {tail}")
    return lines[-1], proc.stderr  # what the checked code printed itself comes before


def _run(python: Path, args: list[str], what: str) -> str:
    return _run_both(python, args, what)[0]


def requires_gil(stderr: str) -> list[str]:
    """The extension modules CPython's verbose mode said it loaded without the ``Py_mod_gil`` slot."""
    return list(dict.fromkeys(REQUIRES_GIL.findall(stderr)))


def _named(gil_enabled: bool, culprit: str | None, gil_modules: list[str]) -> str | None:
    """The module to blame: the one CPython's warning named, else the first without the slot."""
    if gil_enabled and culprit in (None, NO_WARNING) and gil_modules:
        return gil_modules[0]
    return culprit


def facts(python: Path, packages: bool = False) -> dict[str, Any]:
    """What ``python`` is (:func:`ftscale.buildfacts.describe`), with its installed distributions."""
    found: dict[str, Any] = json.loads(
        _run(python, ["-m", "ftscale.buildfacts", *(["--packages"] if packages else [])], "describing it")
    )
    return found


def app_check(python: Path, spec: str, app_dir: Path) -> AppCheck:
    """Import the app ``spec`` in a fresh process of ``python`` (:mod:`ftscale.server.userapp`)."""
    args = ["-m", "ftscale.server.userapp", spec, "--app-dir", str(app_dir)]
    out, stderr = _run_both(python, args, f"importing {spec}", verbose=True)
    check = parse(AppCheck, out, "the app check")
    named = _named(check.gil_enabled, check.gil_reenabled_by, requires_gil(stderr))
    return check.model_copy(update={"gil_reenabled_by": named})


def module_check(python: Path, module: str) -> ModuleCheck:
    """Import ``module`` alone in a fresh process of ``python``: does the GIL stay off, and which
    extension modules it loaded lack the free-threading slot?"""
    args = ["-m", "ftscale.buildfacts", "--import-module", module]
    out, stderr = _run_both(python, args, f"importing {module}", verbose=True)
    check = parse(ModuleCheck, out, f"the import check of {module}")
    gil_modules = requires_gil(stderr)
    named = _named(check.gil_enabled, check.gil_reenabled_by, gil_modules)
    return check.model_copy(update={"gil_reenabled_by": named, "gil_modules": gil_modules})


def extension_modules(python: Path, distributions: list[str]) -> dict[str, list[str]]:
    """The extension modules each installed distribution holds (dotted names), in ``python``'s
    environment, from the files it installed."""
    if not distributions:
        return {}
    args = ["-m", "ftscale.bench.app.probe", "--extensions", *distributions]
    found: dict[str, list[str]] = json.loads(_run(python, args, "listing extension modules"))
    return found


def top_level_modules(python: Path, distributions: list[str]) -> dict[str, list[str]]:
    """The top-level modules each installed distribution provides, in ``python``'s environment."""
    if not distributions:
        return {}
    out = _run(python, ["-m", "ftscale.buildfacts", "--top-level", *distributions], "listing modules")
    found: dict[str, list[str]] = json.loads(out)
    return found
