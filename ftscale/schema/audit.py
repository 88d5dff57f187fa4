"""A user's app and requirements on each build (``ftscale app``'s import check, ``ftscale audit --json``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from ftscale.schema.base import SCHEMA_VERSION, Model


class AppCheck(Model):
    """Importing a user's app in a build's environment (``python -m ftscale.server.userapp``).

    ``ok`` is False with ``error`` (one line) when the module does not import, has no such
    attribute, or the attribute is not an ASGI 3 app. ``gil_reenabled_by`` names the module
    CPython's RuntimeWarning named when the GIL came back during the import (a free-threaded
    build only); ``modules`` are the top-level modules outside the standard library that the
    import loaded.
    """

    app: str
    ok: bool
    error: str | None = None
    kind: str | None = None  # the app's type: FastAPI, Starlette, or another ASGI callable
    build: str
    py_gil_disabled: bool
    gil_enabled: bool
    gil_reenabled_by: str | None = None
    gil_warning: str | None = None
    modules: list[str] = Field(default_factory=list)


class ModuleCheck(Model):
    """One module imported in a fresh process (``python -m ftscale.buildfacts --import-module``)."""

    module: str
    ok: bool
    error: str | None = None
    gil_enabled: bool
    gil_reenabled_by: str | None = None
    gil_warning: str | None = None
    # Extension modules the import loaded without the Py_mod_gil slot (CPython's verbose mode
    # names each, even where the GIL was already on or the warning was filtered away).
    gil_modules: list[str] = Field(default_factory=list)


# The four classes of a requirement on a free-threaded build (``ftscale audit``, building from
# source): it ships a wheel for the build; it builds from source and its modules keep the GIL off;
# it builds and one of its extension modules turns the GIL on; it does not build here.
AuditOutcome = Literal["wheel", "built-gil-off", "built-gil-on", "does-not-build"]


class AuditRequirement(Model):
    """One requirement on one build: ``wheel`` (it and its dependencies install from wheels),
    ``built`` (the same once ``built`` were built from source by the audit), ``unbuilt``
    (``missing`` did not build: ``detail`` says what it lacked), ``no-wheel`` (``missing`` has
    none for this build: itself or a dependency), ``sdist-only`` (the same, and ``missing`` has a
    source distribution pip would build; the audit did not build, ``--no-build``), ``conflict`` or
    ``error`` (``detail`` says what pip said), or ``installed`` (an environment audited as it is).
    ``outcome``: its class on a free-threaded build, where the audit built from source."""

    requirement: str
    name: str
    status: Literal["wheel", "built", "unbuilt", "no-wheel", "sdist-only", "conflict", "error", "installed"]
    version: str | None = None
    wheel: str | None = None  # the wheel's file name, whose tags say which builds it is for
    missing: str | None = None
    detail: str | None = None
    built: list[str] = Field(default_factory=list)  # distributions built from source for it
    outcome: AuditOutcome | None = None
    gil_reenabled_by: str | None = None  # built-gil-on: the extension module that turned the GIL on


class AuditDistribution(Model):
    """A distribution the requirements bring on one build, and the wheel pip chose for it."""

    name: str
    version: str | None = None
    wheel: str | None = None  # the file name: its tags say which builds it is for
    built: bool = False  # the wheel was built from source for this build by ftscale
    extensions: list[str] = Field(default_factory=list)  # a built one's extension modules, by dotted name


class AuditModule(ModuleCheck):
    distribution: str | None = None  # the distribution that installed it


class AuditLoad(Model):
    """One short closed-loop load of the app (``ftscale audit --measure``)."""

    python_gil: Literal["default", "0"]
    gil_enabled: bool | None
    throughput_rps: float
    requests: int
    errors: dict[str, int] = Field(default_factory=dict)
    latency_ms: dict[str, float | None] = Field(default_factory=dict)


class AuditMeasure(Model):
    threads: int
    duration_s: float
    generator: str
    design: str
    default: AuditLoad | None = None
    gil_off: AuditLoad | None = None
    ratio: float | None = None  # PYTHON_GIL=0 over the default
    error: str | None = None


class AuditBuild(Model):
    build: str
    version: str
    free_threaded: bool
    python: str
    requirements: list[AuditRequirement] = Field(default_factory=list)
    distributions: list[AuditDistribution] = Field(default_factory=list)
    modules: list[AuditModule] = Field(default_factory=list)
    app: AppCheck | None = None
    measure: AuditMeasure | None = None
    problems: list[str] = Field(default_factory=list)  # what fails the audit on this build
    allowed: list[str] = Field(default_factory=list)  # problems --allow excused
    error: str | None = None  # the build could not be audited (no environment)


class AuditReport(Model):
    """``ftscale audit --json``: every build's requirements, modules, app and verdict."""

    schema_version: int = SCHEMA_VERSION
    created: str
    host: str
    source: str  # the requirements files, pyproject or environment audited
    app: str | None = None
    allow: list[str] = Field(default_factory=list)
    builds: list[AuditBuild]
    passed: bool
    problems: list[str]
    # Whether what has no wheel was built from source (False: --no-build, and every audit written
    # before building existed), and each build's time limit.
    build_from_source: bool = False
    build_timeout_s: float | None = None
