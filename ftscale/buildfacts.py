"""What an interpreter is: version, free-threading build flag, runtime GIL state, configure arguments.

Run as ``python -m ftscale.buildfacts`` (or by path, ``python -I .../buildfacts.py``) under any
interpreter to get the same facts as JSON; the provisioning code uses that to identify interpreters
it did not build, and every result file
records it so a number can always be traced to the exact build that produced it.
Standard library only: it must run in a bare, freshly built interpreter.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import platform
import re
import sys
import sysconfig
import warnings
from types import ModuleType
from typing import Any

# CPython's RuntimeWarning when an import turns the GIL back on names the module that did it.
GIL_WARNING = re.compile(r"has been enabled to load module '([^']+)'")


def build_name(version: tuple[int, int], free_threaded: bool) -> str:
    """ftscale's name for a build: ``3.14`` or ``3.14t``."""
    return f"{version[0]}.{version[1]}{'t' if free_threaded else ''}"


def gil_enabled() -> bool:
    """Whether the GIL is on right now (always True on a GIL build)."""
    probe = getattr(sys, "_is_gil_enabled", None)
    return True if probe is None else bool(probe())


def describe() -> dict[str, Any]:
    """Facts about the running interpreter, JSON-ready."""
    free_threaded = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
    return {
        "build": build_name((sys.version_info[0], sys.version_info[1]), free_threaded),
        "version": platform.python_version(),
        "implementation": sys.implementation.name,
        "executable": sys.executable,
        "py_gil_disabled": free_threaded,
        "gil_enabled": gil_enabled(),
        "config_args": sysconfig.get_config_var("CONFIG_ARGS") or "",
        "compiler": platform.python_compiler(),
    }


# What the service and the benches import, in the order they import it. A free-threaded build
# turns the GIL back on when an extension module that does not declare free-threading support
# is imported; importing these one at a time names the module that did it.
SERVICE_MODULES = (
    "numpy",
    "threadpoolctl",
    "pydantic_core",
    "pydantic",
    "anyio",
    "starlette",
    "fastapi",
    "h11",
    "uvicorn",
    "psutil",
    "pyperf",
    "ftscale.workloads",
    "ftscale.server.app",
)


def service_modules() -> tuple[str, ...]:
    """:data:`SERVICE_MODULES`, then every HTTP server's modules (``ftscale.engines``), each where
    installed: a server without a wheel for this build is reported missing, which is no error.

    Only as ``python -m ftscale.buildfacts --import-check``, where ftscale is importable.
    """
    from ftscale.engines import SERVER_MODULES

    servers = [name for modules in SERVER_MODULES.values() for name in modules]
    return tuple(dict.fromkeys([*SERVICE_MODULES, *servers]))


def import_check(modules: tuple[str, ...] = SERVICE_MODULES) -> dict[str, Any]:
    """Import ``modules`` one by one; report the GIL state and the first module that enabled it."""
    reenabled_by = None
    missing = []
    for name in modules:
        before = gil_enabled()
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
            continue
        if not before and gil_enabled() and reenabled_by is None:
            reenabled_by = name
    return {"gil_enabled": gil_enabled(), "gil_reenabled_by": reenabled_by, "missing": missing}


def import_watching_gil(name: str) -> tuple[ModuleType, str | None, str | None]:
    """Import ``name``; (module, the module CPython named for turning the GIL on, its warning).

    The GIL warning is captured (it is issued once, by the import that enables the GIL); any
    other warning is passed on. An exception raised by the import propagates.
    """
    culprit = message = None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(name)
    for w in caught:
        found = GIL_WARNING.search(str(w.message)) if issubclass(w.category, RuntimeWarning) else None
        if found and culprit is None:
            culprit, message = found[1], str(w.message)
        elif not found:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno, source=w.source)
    return module, culprit, message


def module_check(name: str) -> dict[str, Any]:
    """Import one module (in a fresh process, for ``ftscale audit``): does the GIL stay off?"""
    before = gil_enabled()
    try:
        _, culprit, message = import_watching_gil(name)
    except BaseException as exc:  # an import may raise anything, SystemExit included
        error = f"{type(exc).__name__}: {exc}"
        return {"module": name, "ok": False, "error": error, "gil_enabled": gil_enabled()}
    if gil_enabled() and culprit is None:
        culprit = "on before the import" if before else "an import that issued no warning"
    return {
        "module": name,
        "ok": True,
        "error": None,
        "gil_enabled": gil_enabled(),
        "gil_reenabled_by": culprit if gil_enabled() else None,
        "gil_warning": message,
    }


def top_level_modules(names: list[str]) -> dict[str, list[str]]:
    """The importable top-level modules of each installed distribution in ``names``.

    From ``top_level.txt`` where the distribution has one, else from the files it installed
    (packages, modules and extension modules at the top of site-packages).
    """
    found: dict[str, list[str]] = {}
    for name in names:
        try:
            dist = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = []
            continue
        listed = (dist.read_text("top_level.txt") or "").split()
        modules: set[str] = {m for m in listed if m.isidentifier()}
        if not listed:
            for path in dist.files or ():
                top = path.parts[0]
                if top.endswith((".dist-info", ".data")) or top in ("..", "__pycache__"):
                    continue
                if len(path.parts) == 1:
                    stem = top.split(".")[0]
                    if top.endswith((".py", ".so", ".pyd")) and stem.isidentifier():
                        modules.add(stem)
                elif path.name == "__init__.py" and len(path.parts) == 2 and top.isidentifier():
                    modules.add(top)
        found[name] = sorted(modules)
    return found


def packages() -> dict[str, str]:
    """Installed distributions and their versions."""
    found = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[name.lower()] = dist.version
    return dict(sorted(found.items()))


if __name__ == "__main__":
    if "--import-module" in sys.argv:  # one module, in this fresh process
        json.dump(module_check(sys.argv[sys.argv.index("--import-module") + 1]), sys.stdout)
        sys.stdout.write("\n")
        sys.exit(0)
    if "--top-level" in sys.argv:  # the modules of the distributions named after it
        json.dump(top_level_modules(sys.argv[sys.argv.index("--top-level") + 1 :]), sys.stdout)
        sys.stdout.write("\n")
        sys.exit(0)
    facts = describe()
    if "--import-check" in sys.argv:
        facts.update(import_check(service_modules()))
    if "--import-check" in sys.argv or "--packages" in sys.argv:
        facts["packages"] = packages()
    json.dump(facts, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
