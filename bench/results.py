"""Run directories: where a run's files live, how they are written and how they are read back.

A run directory is ``results/<run-id>/`` with

- ``run.json``: :class:`~ftscale.schema.RunMeta` (host, builds, config, generator, git commit);
- ``cells/<cell-id>.json``: one cell per measured point, written atomically as soon as it is
  measured, so an interrupted run keeps everything it finished;
- whatever a bench adds beside them (``pyperf/<build>.json``) and the rendered reports.

The shapes are :mod:`ftscale.schema`'s; this module only places, writes and reads them.
"""

from __future__ import annotations

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
from typing import Any

from ftscale.bench import machine
from ftscale.schema import (
    Build,
    Git,
    Host,
    HttpCell,
    MicroCell,
    ResultError,
    RunMeta,
    load_cell,
    load_model,
)

AnyCell = HttpCell | MicroCell


def default_results_dir() -> Path:
    """``$FTSCALE_RESULTS``, else ``results/`` in the current directory."""
    return Path(os.environ.get("FTSCALE_RESULTS") or "results")


def cell_id(
    build: str,
    workload: str,
    threads: int,
    mode: str | None = None,
    topology: str | None = None,
    scaling: str | None = None,
    extra: str | None = None,
) -> str:
    """A stable, file-name-safe key for a cell: resuming a run skips the keys already there."""
    parts = [build, workload, mode or "-", topology or "-", scaling or "-", f"t{threads:03d}"]
    if extra:
        parts.append(extra)
    return "__".join(re.sub(r"[^A-Za-z0-9.-]", "-", p) for p in parts)


def now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def new_run_id(kind: str, host: str | None = None) -> str:
    stamp = _dt.datetime.now(_dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    name = re.sub(r"[^A-Za-z0-9-]", "-", (host or socket.gethostname()).split(".")[0])[:24]
    return f"{stamp}-{kind}-{name}"


def write_atomic(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old file or the new one, never half of either.

    The bytes go to a temporary file beside ``path``, are flushed to disk, and the temporary
    file is renamed over ``path``; on any failure the temporary file is removed and ``path`` is
    left as it was.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, data: Any) -> None:
    write_atomic(path, (json.dumps(data, indent=1, sort_keys=True) + "\n").encode())


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
    topology = machine.cpu_topology()
    return Host(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        machine=platform.machine(),
        cpu_model=_cpu_model(),
        logical_cores=os.cpu_count() or 1,
        affinity=sorted(os.sched_getaffinity(0)),
        memory_bytes=memory,
        physical_cores=len(topology) if topology else None,
        smt_siblings=[sorted(core) for core in topology] if topology else None,
        governor=machine.governor(),
        boost=machine.boost(),
    )


def collect_git(root: Path | None = None) -> Git:
    """The commit ftscale's code comes from.

    ``$FTSCALE_GIT_COMMIT`` (and ``$FTSCALE_GIT_DIRTY``, ``1`` or ``0``) first: a bundle on a
    benchmark host is no checkout, and its launcher says which commit it was made from. Else the
    checkout ftscale runs from; None outside one.
    """
    if os.environ.get("FTSCALE_GIT_COMMIT"):
        dirty = os.environ.get("FTSCALE_GIT_DIRTY")
        return Git(commit=os.environ["FTSCALE_GIT_COMMIT"], dirty=None if dirty is None else dirty == "1")
    where = root or Path(__file__).resolve().parent

    def git(*args: str) -> str | None:
        try:
            return subprocess.run(
                ["git", *args], cwd=where, capture_output=True, text=True, check=True, timeout=10
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
    cells: tuple[AnyCell, ...]

    def ok_cells(self) -> list[AnyCell]:
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
        return load_model(RunMeta, self.meta_path)

    def update_meta(self, **changes: Any) -> RunMeta:
        meta = self.read_meta().model_copy(update=changes)
        self.write_meta(meta)
        return meta

    def add_build(self, build: Build) -> RunMeta:
        meta = self.read_meta()
        meta = meta.model_copy(update={"builds": {**meta.builds, build.build: build}})
        self.write_meta(meta)
        return meta

    def write_cell(self, cell: AnyCell) -> None:
        write_json_atomic(self.cell_path(cell.cell_id), cell.model_dump(mode="json"))

    def done(self) -> set[str]:
        """Ids of cells measured successfully, or skipped as impossible on their build (a resumed
        run does not try them again)."""
        return {c.cell_id for c in iter_cells(self.path) if c.status in ("ok", "skipped")}


def iter_cells(run_path: Path) -> Iterator[AnyCell]:
    for path in sorted((run_path / "cells").glob("*.json")):
        yield load_cell(path)


def load_run(path: Path | str) -> Run:
    """Load a run directory (or its ``run.json``), upgrading older formats."""
    path = Path(path)
    if path.is_file():
        path = path.parent
    if not path.is_dir():
        raise ResultError(f"{path}: not a run directory")
    meta = load_model(RunMeta, path / "run.json")
    return Run(path=path, meta=meta, cells=tuple(iter_cells(path)))


def find_runs(root: Path | None = None) -> list[Path]:
    """Every run directory below ``root``, oldest first."""
    return sorted(p.parent for p in (root or default_results_dir()).glob("*/run.json"))
