"""An interpreter build and the machine a run measured on (``run.json``'s ``builds`` and ``host``)."""

from __future__ import annotations

from pydantic import Field

from ftscale.schema.base import Model


class BuildFacts(Model):
    """What an interpreter says about itself (``ftscale.buildfacts.describe``)."""

    build: str
    version: str
    implementation: str = "cpython"
    executable: str
    py_gil_disabled: bool
    gil_enabled: bool
    config_args: str
    compiler: str = ""


class Build(BuildFacts):
    """An interpreter build as it ran: what it is, and what was installed into it."""

    packages: dict[str, str] = Field(default_factory=dict)
    gil_reenabled_by: str | None = None
    # Optional packages (the ``servers`` extra) that could not be installed, and why: no binary
    # wheel for this build, usually. The servers that need them are skipped on this build.
    unavailable: dict[str, str] = Field(default_factory=dict)


class Host(Model):
    hostname: str
    platform: str
    machine: str
    cpu_model: str
    logical_cores: int
    affinity: list[int]
    memory_bytes: int | None = None
    # Facts a reader needs to judge the noise (absent where the machine does not tell).
    physical_cores: int | None = None
    smt_siblings: list[list[int]] | None = None  # logical CPUs sharing one physical core
    governor: str | None = None  # cpufreq scaling governor of the CPUs, when uniform
    boost: str | None = None  # turbo / boost state ("on", "off") where Linux exposes it


class Git(Model):
    commit: str | None
    dirty: bool | None
