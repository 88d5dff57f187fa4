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
import sys
import sysconfig
from typing import Any


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


def packages() -> dict[str, str]:
    """Installed distributions and their versions."""
    found = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            found[name.lower()] = dist.version
    return dict(sorted(found.items()))


if __name__ == "__main__":
    facts = describe()
    if "--import-check" in sys.argv:
        facts.update(import_check(service_modules()))
        facts["packages"] = packages()
    json.dump(facts, sys.stdout, sort_keys=True)
    sys.stdout.write("\n")
