"""The audit's first step: which of the project's requirements resolve to wheels on a build.

The build's own pip resolves the requirements from binary wheels only (``pip install --dry-run
--report``), all together and, where that fails, one by one. A distribution without a wheel is
built from source (:mod:`ftscale.bench.env.fromsource`) when the audit builds, or named with
whether pip would build it from a source distribution when it does not. Each requirement becomes
one :class:`~ftscale.schema.AuditRequirement` row; every distribution the resolvable ones bring,
one :class:`~ftscale.schema.AuditDistribution`.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ftscale.bench.app import checks
from ftscale.bench.env import fromsource, wheelhouse
from ftscale.bench.env import project as projects
from ftscale.bench.env.fromsource import canonical
from ftscale.schema import AuditDistribution, AuditRequirement


def _pip(python: Path, args: list[str], build: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(python), "-m", "pip", *args, "--disable-pip-version-check", *wheelhouse.install_source(build)]
    return subprocess.run(cmd, capture_output=True, text=True, check=False, env=checks.clean_env())


def _resolve(python: Path, requirements: list[str], build: str) -> tuple[list[dict[str, Any]] | None, str]:
    """pip's dry-run report of installing ``requirements`` from wheels (None and stderr if it fails)."""
    with tempfile.TemporaryDirectory(prefix="ftscale-audit-") as scratch:
        report = Path(scratch) / "report.json"
        args = ["install", "--dry-run", "--ignore-installed", "--only-binary=:all:", "-q"]
        proc = _pip(python, [*args, "--report", str(report), *requirements], build)
        if proc.returncode != 0 or not report.is_file():
            return None, proc.stderr
        items: list[dict[str, Any]] = json.loads(report.read_text()).get("install", [])
        return items, ""


def _wheel_name(item: Mapping[str, Any]) -> str | None:
    url = str(item.get("download_info", {}).get("url", ""))
    return url.rsplit("/", 1)[-1] or None


def _has_sdist(python: Path, name: str, build: str) -> str | None:
    """The newest version of ``name`` published as a source distribution (None: none found)."""
    proc = _pip(python, ["index", "versions", name, "--no-binary=:all:", "--json"], build)
    try:
        versions = json.loads(proc.stdout).get("versions", []) if proc.returncode == 0 else []
    except ValueError:
        return None
    return str(versions[0]) if versions else None


def _failed(requirement: str, stderr: str, python: Path, build: str) -> AuditRequirement:
    name = projects.requirement_name(requirement)
    if found := projects.NO_WHEEL.search(stderr):
        missing = projects.requirement_name(found[1])
        sdist = _has_sdist(python, missing, build)
        if sdist:
            detail = f"{missing} {sdist} is published as a source distribution only: pip would build it"
            return AuditRequirement(
                requirement=requirement, name=name, status="sdist-only", missing=missing, detail=detail
            )
        return AuditRequirement(
            requirement=requirement, name=name, status="no-wheel", missing=missing, detail="no distribution"
        )
    if found := projects.CONFLICT.search(stderr):
        return AuditRequirement(requirement=requirement, name=name, status="conflict", detail=found[1])
    last = next((ln.strip() for ln in reversed(stderr.splitlines()) if ln.strip()), "pip failed")
    return AuditRequirement(requirement=requirement, name=name, status="error", detail=last[-300:])


def _resolved(
    requirement: str,
    items: list[dict[str, Any]],
    built: frozenset[str] = frozenset(),
    spec: str | None = None,
) -> AuditRequirement:
    """The row of a requirement that resolves to ``items`` (its own resolution, or every
    requirement's); ``built``: the file names of wheels built from source; ``spec``: what was
    resolved in its place (the pin of a project built from its path or URL)."""
    name = projects.requirement_name(spec or requirement)
    item = next((i for i in items if canonical(i["metadata"]["name"]) == name), None)
    if item is None and ("/" in requirement or requirement.endswith(".whl")):
        item = next((i for i in items if i.get("requested")), None)  # a path or URL: what it named
    if item is None:
        detail = "not installed on this build (its environment marker excludes it)"
        return AuditRequirement(requirement=requirement, name=name, status="wheel", detail=detail)
    from_source = sorted(canonical(i["metadata"]["name"]) for i in items if _wheel_name(i) in built)
    return AuditRequirement(
        requirement=requirement,
        name=canonical(item["metadata"]["name"]),
        status="built" if from_source else "wheel",
        version=item["metadata"]["version"],
        wheel=_wheel_name(item),
        built=from_source,
    )


def _distributions(
    items: list[dict[str, Any]], built: frozenset[str] = frozenset()
) -> dict[str, AuditDistribution]:
    return {
        canonical(i["metadata"]["name"]): AuditDistribution(
            name=canonical(i["metadata"]["name"]),
            version=i["metadata"]["version"],
            wheel=_wheel_name(i),
            built=_wheel_name(i) in built,
        )
        for i in items
    }


def _unbuilt(requirement: str, failure: fromsource.BuildFailed) -> AuditRequirement:
    name = projects.requirement_name(requirement)
    missing = canonical(failure.name) if "/" not in failure.name and " " not in failure.name else None
    return AuditRequirement(
        requirement=requirement, name=name, status="unbuilt", missing=missing, detail=failure.piece
    )


def _building_rows(
    made: fromsource.Builder, lines: list[str], options: Sequence[str]
) -> tuple[list[AuditRequirement], list[AuditDistribution]]:
    """:func:`audit_requirements` where what has no wheel is built: each reference built first
    (a local project from a copy), then the requirements resolved together, and where that fails
    one by one, building what pip finds no wheel for."""
    rows: dict[str, AuditRequirement] = {}
    pins: dict[str, str] = {}  # a reference's line -> the pin of the wheel built from it
    for line in lines:
        if (ref := projects.reference(line)) is not None:
            try:
                wheel = made.project(ref.target, ref.line)
                pins[line] = f"{wheel.name}{ref.extras}=={wheel.version}"
            except fromsource.BuildFailed as exc:
                rows[line] = _unbuilt(line, exc)
    todo = [line for line in lines if line not in rows]
    specs = [pins.get(line, line) for line in todo]
    dists: dict[str, AuditDistribution] = {}
    try:
        items, _ = made.resolve([*options, *specs]) if specs else ([], "")
    except fromsource.BuildFailed:
        items = None
    together = items is not None
    built_any = together and any(_wheel_name(i) in made.names() for i in items or [])
    for line, spec in zip(todo, specs, strict=True):
        if together and not built_any:
            own: list[dict[str, Any]] | None = items  # nothing built: no need to tell whose it is
        else:  # alone: which distributions built from source each requirement brings
            try:
                own, stderr = made.resolve([*options, spec])
            except fromsource.BuildFailed as exc:
                rows[line] = _unbuilt(line, exc)
                continue
            if own is None:
                rows[line] = _failed(line, stderr, made.python, made.build)
                continue
        built = frozenset(made.names())
        rows[line] = _resolved(line, own or [], built, spec if line in pins else None)
        dists.update(_distributions(own or [], built))
    return [rows[line] for line in lines], sorted(dists.values(), key=lambda d: d.name)


def audit_requirements(
    python: Path,
    lines: list[str],
    build: str,
    options: Sequence[str] = (),
    made: fromsource.Builder | None = None,
) -> tuple[list[AuditRequirement], list[AuditDistribution]]:
    """Each requirement's status on ``build``, and every distribution the resolvable ones bring
    (``options``: where the requirements files say distributions come from; ``made``: what builds
    the distributions without a wheel, None for wheels only)."""
    if made is not None:
        return _building_rows(made, lines, options)
    items, _ = _resolve(python, [*options, *lines], build) if lines else ([], "")
    if items is not None:
        found = _distributions(items)
        return [_resolved(r, items) for r in lines], sorted(found.values(), key=lambda d: d.name)
    rows: list[AuditRequirement] = []
    dists: dict[str, AuditDistribution] = {}
    for line in lines:
        one, stderr = _resolve(python, [*options, line], build)
        if one is None:
            rows.append(_failed(line, stderr, python, build))
        else:
            rows.append(_resolved(line, one))
            dists.update(_distributions(one))
    return rows, sorted(dists.values(), key=lambda d: d.name)
