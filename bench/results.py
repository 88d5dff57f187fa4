"""The result schema: one versioned format for micro and HTTP runs, read through one loader.

A run directory is ``results/<run-id>/`` with

- ``run.json``: :class:`RunMeta` (host, builds, config, generator, git commit);
- ``cells/<cell-id>.json``: one :class:`Cell` per measured point, written atomically as soon
  as it is measured, so an interrupted run keeps everything it finished;
- whatever a bench adds beside them (``pyperf/<build>.json``) and the rendered reports.

Every cell carries ``samples``: the throughput of each repetition (higher is better), so the
statistics code never needs to know which bench produced a cell.

Format history (bump SCHEMA_VERSION and teach :func:`_upgrade` the old shape):
  1 (2026-11): first version.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import re
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

SCHEMA_VERSION = 1
RunKind = Literal["micro", "http"]
REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "results"

# Flags a cell can carry; reports show them beside the number.
FLAG_GIL_ENABLED = "gil-enabled-on-free-threaded-build"
FLAG_GENERATOR_SATURATED = "generator-saturated"
FLAG_ERRORS = "http-errors"
FLAG_HIGH_CV = "cv-over-5pct"


class ResultError(Exception):
    """A result file or run directory that cannot be read; the message names the file."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Host(_Model):
    hostname: str
    platform: str
    machine: str
    cpu_model: str
    logical_cores: int
    affinity: list[int]
    memory_bytes: int | None = None


class Git(_Model):
    commit: str | None
    dirty: bool | None


class Build(_Model):
    """An interpreter build as it ran: what it is, and what was installed into it."""

    build: str
    version: str
    implementation: str = "cpython"
    executable: str
    py_gil_disabled: bool
    gil_enabled: bool
    config_args: str
    compiler: str = ""
    packages: dict[str, str] = Field(default_factory=dict)
    gil_reenabled_by: str | None = None


class RunMeta(_Model):
    schema_version: int = SCHEMA_VERSION
    run_id: str
    kind: RunKind
    created: str
    finished: str | None = None
    host: Host
    git: Git
    config: dict[str, Any] = Field(default_factory=dict)
    builds: dict[str, Build] = Field(default_factory=dict)
    generator: dict[str, Any] | None = None
    notes: list[str] = Field(default_factory=list)


class Cell(_Model):
    """One measured point of a sweep.

    ``samples`` holds one throughput per repetition (``unit``: ``calls/s`` for micro cells,
    ``req/s`` for HTTP cells). ``repetitions`` keeps each repetition's full detail (latency
    percentiles, errors, CPU, memory ...), as the bench measured it.
    """

    schema_version: int = SCHEMA_VERSION
    run_id: str
    cell_id: str
    kind: RunKind
    build: str
    workload: str
    workload_class: str
    size: int
    threads: int
    mode: str | None = None
    topology: str | None = None
    scaling: Literal["strong", "weak"] | None = None
    status: Literal["ok", "failed"]
    error: str | None = None
    stderr_tail: str | None = None
    unit: str
    samples: list[float] = Field(default_factory=list)
    repetitions: list[dict[str, Any]] = Field(default_factory=list)
    flags: list[str] = Field(default_factory=list)
    gil_enabled: bool | None = None
    info_before: dict[str, Any] | None = None
    info_after: dict[str, Any] | None = None
    started: str
    finished: str


def cell_id(
    build: str,
    workload: str,
    threads: int,
    mode: str | None = None,
    topology: str | None = None,
    scaling: str | None = None,
) -> str:
    """A stable, file-name-safe key for a cell: resuming a run skips the keys already there."""
    parts = [build, workload, mode or "-", topology or "-", scaling or "-", f"t{threads:03d}"]
    return "__".join(re.sub(r"[^A-Za-z0-9.-]", "-", p) for p in parts)


def add_run_arguments(parser: argparse.ArgumentParser, kind: RunKind) -> None:
    """The options every bench shares for naming, placing and resuming its run directory."""
    parser.add_argument("--resume", metavar="RUN_ID", help="finish an interrupted run with its own arguments")
    parser.add_argument("--run-id", help=f"name of the run directory (default: timestamp-{kind}-host)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIR)
    parser.add_argument(
        "--no-report", action="store_true", help="do not render report.md/report.html at the end"
    )


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def new_run_id(kind: RunKind, host: str | None = None) -> str:
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    name = re.sub(r"[^A-Za-z0-9-]", "-", (host or socket.gethostname()).split(".")[0])[:24]
    return f"{stamp}-{kind}-{name}"


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the new one, never half of either."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w") as fh:
        json.dump(data, fh, indent=1, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    tmp.replace(path)


# --- facts about the machine ----------------------------------------------------------------


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def collect_host() -> Host:
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = None
    return Host(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        machine=platform.machine(),
        cpu_model=_cpu_model(),
        logical_cores=os.cpu_count() or 1,
        affinity=sorted(os.sched_getaffinity(0)),
        memory_bytes=memory,
    )


def collect_git(root: Path = REPO_ROOT) -> Git:
    def git(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args], cwd=root, capture_output=True, text=True, check=True, timeout=10
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return None

    commit = git("rev-parse", "HEAD")
    status = git("status", "--porcelain", "--untracked-files=no")
    return Git(commit=commit, dirty=None if status is None else bool(status))


# --- run directories ------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """A loaded run: its metadata and its cells, ordered by cell id."""

    path: Path
    meta: RunMeta
    cells: tuple[Cell, ...]

    def ok_cells(self) -> list[Cell]:
        return [c for c in self.cells if c.status == "ok"]


class RunDir:
    """Writes a run directory; every write is atomic."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def meta_path(self) -> Path:
        return self.path / "run.json"

    def cell_path(self, key: str) -> Path:
        return self.path / "cells" / f"{key}.json"

    def write_meta(self, meta: RunMeta) -> None:
        write_json_atomic(self.meta_path, meta.model_dump(mode="json"))

    def read_meta(self) -> RunMeta:
        return _load_model(RunMeta, self.meta_path)

    def update_meta(self, **changes: Any) -> RunMeta:
        meta = self.read_meta().model_copy(update=changes)
        self.write_meta(meta)
        return meta

    def add_build(self, build: Build) -> RunMeta:
        meta = self.read_meta()
        meta = meta.model_copy(update={"builds": {**meta.builds, build.build: build}})
        self.write_meta(meta)
        return meta

    def write_cell(self, cell: Cell) -> None:
        write_json_atomic(self.cell_path(cell.cell_id), cell.model_dump(mode="json"))

    def done(self) -> set[str]:
        """Ids of cells measured successfully (a resumed run skips them)."""
        return {c.cell_id for c in iter_cells(self.path) if c.status == "ok"}


def _upgrade(data: dict[str, Any], source: Path) -> dict[str, Any]:
    version = data.get("schema_version")
    if version == SCHEMA_VERSION:
        return data
    raise ResultError(
        f"{source}: schema_version {version!r} is not supported (this ftscale reads {SCHEMA_VERSION})"
    )


M = TypeVar("M", bound=BaseModel)


def _load_model(model: type[M], path: Path) -> M:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ResultError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ResultError(f"{path}: expected a JSON object")
    try:
        return model.model_validate(_upgrade(data, path))
    except ValidationError as exc:
        raise ResultError(f"{path}: does not match the ftscale result schema: {exc}") from None


def iter_cells(run_path: Path) -> Iterator[Cell]:
    for path in sorted((run_path / "cells").glob("*.json")):
        yield _load_model(Cell, path)


def load_run(path: Path | str) -> Run:
    """Load a run directory (or its ``run.json``), upgrading older formats."""
    path = Path(path)
    if path.is_file():
        path = path.parent
    if not path.is_dir():
        raise ResultError(f"{path}: not a run directory")
    meta = _load_model(RunMeta, path / "run.json")
    return Run(path=path, meta=meta, cells=tuple(iter_cells(path)))


def find_runs(root: Path = RESULTS_DIR) -> list[Path]:
    """Every run directory below ``root``, oldest first."""
    return sorted(p.parent for p in root.glob("*/run.json"))
