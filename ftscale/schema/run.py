"""A run's own record (``run.json``): where and how it was measured, what it was asked, in which slots.

Its ``config`` (what the command was asked, resolved), ``generator`` (what applied the HTTP load)
and ``slots`` (the wall-clock slots it was measured in) are typed. ``config`` and ``generator``
hold different keys for different commands and formats: each writes back the keys it was given
and no others, so a committed file reads and writes unchanged, and each reads as a mapping too
(``meta.config.get("server_cpus")``) for code that predates the fields.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, Self

from pydantic import Field, SerializationInfo, SerializerFunctionWrapHandler, model_serializer

from ftscale.schema.base import SCHEMA_VERSION, Model
from ftscale.schema.machine import Build, Git, Host


class Given(Model):
    """A record whose keys depend on who wrote it: it writes the fields it was given, no others.

    Absent and null differ (an http run's ``target`` is null, a micro run has none), so an unset
    field is left out rather than written as null. Read-only mapping access goes over the same
    fields.
    """

    @model_serializer(mode="wrap")
    def _given_only(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {k: v for k, v in data.items() if k in self.model_fields_set}

    def keys(self) -> list[str]:
        return [name for name in type(self).model_fields if name in self.model_fields_set]

    def __getitem__(self, key: str) -> Any:
        if key not in self.model_fields_set:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key) if key in self.model_fields_set else default

    def items(self) -> list[tuple[str, Any]]:
        return [(key, getattr(self, key)) for key in self.keys()]

    def __contains__(self, key: object) -> bool:
        return key in self.model_fields_set


class RunConfig(Given):
    """What the command was asked, resolved (``ftscale bench``/``app`` for http runs, ``micro``).

    A key a command starts writing is a field here first: an unknown key is an error.
    """

    argv: list[str] | None = None
    command: str | None = None  # "app" for ``ftscale app``; absent for ``ftscale bench`` and ``micro``
    judge: int | None = None  # 1: each cell's flags were judged once, when it was made (absent: older runs)
    preset: str | None = None
    # HTTP runs: where the server and the generator ran, and the matrix of designs measured.
    server_cpus: list[int] | None = None
    client_cpus: list[int] | None = None
    shared_cpus: bool | None = None
    server_pinning: str | None = None
    server_start: str | None = None  # "fork" or "spawn"
    settings: dict[str, Any] | None = None  # the bench's timing settings (its Settings, as a dict)
    margin: float | None = None
    connections: int | dict[str, int] | None = None  # per workload (older files: one for all)
    matrix: dict[str, Any] | None = None
    target: str | None = None  # a server started elsewhere (--target); null: ftscale started them
    app: dict[str, Any] | None = None  # ``ftscale app``: the app, its folder and its request mix
    profile: dict[str, Any] | None = None  # --profile: how perf ran (or why it could not)
    # Micro runs.
    workloads: list[str] | None = None
    sizes: dict[str, int] | None = None
    size_source: str | None = None
    threads: list[int] | None = None
    usable_cores: int | None = None
    scaling: list[str] | None = None
    strong_calls_per_round: int | None = None
    weak_calls_per_thread: int | None = None
    pyperf: dict[str, Any] | None = None
    quick: bool | None = None
    round: str | None = None
    io_wait: str | None = None
    sample: str | None = None
    # The first committed runs' settings, before they were grouped under ``settings``.
    duration_s: int | float | None = None
    repetitions: int | None = None


class RunGenerator(Given):
    """What applied an HTTP run's load: the generator, where it ran, and how each load kind was driven."""

    name: str  # ftscale.vocab.Generator
    version: str | None = None
    cpus: list[int] | None = None
    loop: str | None = None  # "closed", or "closed and open"
    connections: int | str | None = None  # older files: one count, or how it was chosen
    duration_s: int | float | None = None
    open_loop: str | None = None
    streams: str | None = None
    ceilings: dict[str, float] | None = None  # the trivial server's rate per load kind and connections
    ceiling_method: str | None = None


class Slot(Model):
    """One wall-clock slot a run was measured in (a run resumed across slots is still one run)."""

    started: str
    finished: str
    host: str  # the hostname
    cells_measured: int
    cells_failed: int
    complete: bool


class RunMeta(Model):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    kind: Literal["micro", "http"]
    created: str
    finished: str | None = None
    host: Host
    git: Git
    config: RunConfig = Field(default_factory=RunConfig)
    builds: dict[str, Build] = Field(default_factory=dict)
    generator: RunGenerator | None = None
    notes: list[str] = Field(default_factory=list)
    slots: list[Slot] = Field(default_factory=list)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """A copy; changes are validated (a ``config`` given as a dict becomes a :class:`RunConfig`)."""
        if not update:
            return super().model_copy(deep=deep)
        fields = {name: getattr(self, name) for name in self.model_fields_set}
        return type(self).model_validate({**fields, **update})
