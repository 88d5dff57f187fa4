"""Per-build virtual environments for the service and the micro worker.

Each provisioned interpreter gets one environment per ftscale installation (checkout) under
``<cache>/envs/<installation>/<build>``, holding the
third-party packages of the extras it needs (``worker``: the service plus pyperf), installed from
binary wheels only: no Rust or C++ toolchain ever runs, and on 3.13t pip settles on the newest
releases that still ship cp313t wheels. The environment is rebuilt only when the interpreter or
the requirements change. Where ``$FTSCALE_WHEELHOUSE`` is set (a bundle on an offline host),
the packages come from that folder alone, at the versions pinned there for the build
(:mod:`ftscale.bench.env.wheelhouse`).

ftscale's own code is not copied into the environments: a *code stage* (a directory of
symbolic links to the ``ftscale`` packages the orchestrator itself imports) is put on each
environment's path by a ``.pth`` file, so the service and the worker run exactly the code of the
orchestrator, edits included, whether ftscale is installed normally or in editable mode.

The ``numpy`` extra (the two numpy workloads) and the ``servers`` extra (granian, uvloop,
httptools, hypercorn: ``ftscale serve --server``) are installed after the rest, one package at a
time and best-effort: a package that has no binary wheel for a build (or that a bundle left out)
is recorded with pip's reason (:attr:`Build.unavailable`), the environment is still made, the
HTTP bench skips the servers that need it on that build, and the benches refuse a workload that
needs it (one line, exit status 2).

After installing, the service's modules (and each server's, where installed) are imported one
by one to check that a free-threaded build still runs without the GIL, and which module turned
it on if not.

A user's app (``ftscale app``, ``ftscale audit``) gets environments of its own, one per
build and set of requirements (:mod:`ftscale.bench.env.project` keys them by a digest of the
requirements under ``<cache>/envs/<installation>/app-<digest>/<build>``), made the same way by
:func:`make_env`; a failed command carries what it said (:class:`CommandFailed`), so that a
requirement pip cannot install is explained in one line.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

from ftscale import engines
from ftscale.bench.env import provision, wheelhouse
from ftscale.errors import SetupError
from ftscale.schema import Build

PACKAGES = ("ftscale", "ftscale.bench", "ftscale.server", "ftscale.workloads")
PTH_NAME = "ftscale-code.pth"
OPTIONAL_EXTRAS = ("numpy", "servers")  # installed package by package; what has no wheel is recorded
UNAVAILABLE_FILE = ".ftscale-unavailable.json"


class EnvError(SetupError):
    """An environment could not be made; the message says why."""


class CommandFailed(EnvError):
    """A command making an environment failed (pip, venv); ``stderr`` is what it said, for a
    caller that can explain it better."""

    def __init__(self, message: str, stderr: str) -> None:
        super().__init__(message)
        self.stderr = stderr


PipFailed = CommandFailed  # the name the server axis gave it


def env_dir(build: str) -> Path:
    """Where ``build``'s environment for this installation of ftscale lives.

    Keyed by the code stage (that is, by where this ftscale is), so two checkouts never rebuild
    or replace each other's environments while one of them is measuring.
    """
    return provision.cache_root() / "envs" / code_stage().name / build


def env_python(build: str) -> Path:
    return env_dir(build) / "bin" / "python"


def requirements(extras: Iterable[str]) -> list[str]:
    """The third-party requirements of ftscale's ``extras``, from its installed metadata."""
    wanted = set(extras)
    found: list[str] = []
    pending = list(wanted)
    seen: set[str] = set()
    declared = importlib.metadata.requires("ftscale") or []
    while pending:
        extra = pending.pop()
        if extra in seen:
            continue
        seen.add(extra)
        for line in declared:
            requirement, _, marker = line.partition(";")
            if not re.search(rf"""extra\s*==\s*['"]{re.escape(extra)}['"]""", marker):
                continue
            requirement = requirement.strip()
            nested = re.fullmatch(r"ftscale\[([^\]]+)\]", requirement.replace(" ", ""))
            if nested:
                pending.extend(nested[1].split(","))
            elif requirement not in found:
                found.append(requirement)
    if not found:
        raise EnvError(f"ftscale's metadata declares no requirements for {', '.join(sorted(wanted))}")
    return sorted(found)


def code_stage(root: Path | None = None) -> Path:
    """A directory whose ``ftscale/`` links to the packages this process imports.

    Keyed by where those packages are, so every checkout or installation gets its own.
    """
    import importlib

    places = {name: Path(importlib.import_module(name).__path__[0]).resolve() for name in PACKAGES}
    digest = hashlib.sha256("|".join(f"{k}={v}" for k, v in places.items()).encode()).hexdigest()[:16]
    stage = (root or provision.cache_root()) / "code" / digest
    package = stage / "ftscale"
    package.mkdir(parents=True, exist_ok=True)
    # Linked anew on every call (cheap): a module added to the root package since is picked up.
    links = {entry.name: entry for entry in places["ftscale"].iterdir() if entry.name != "__pycache__"}
    for name in PACKAGES[1:]:
        links[name.rsplit(".", 1)[1]] = places[name]
    for name, target in links.items():
        link = package / name
        if link.is_symlink() and link.readlink() == target:
            continue
        tmp = package / f".{name}.{os.getpid()}"
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(target)
        tmp.replace(link)  # atomic: a concurrent reader sees the old link or the new one
    return stage


def _stamp(interpreter: Path, reqs: list[str], stage: Path, source: list[str]) -> str:
    digest = hashlib.sha256()
    for part in (str(interpreter.resolve()), *reqs, str(stage), *source):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()


def package_name(requirement: str) -> str:
    """``granian>=2.7`` -> ``granian`` (normalised as pip names distributions)."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise EnvError(f"not a requirement: {requirement!r}")
    return re.sub(r"[-_.]+", "-", match[1]).lower()


def pip_reason(stderr: str) -> str:
    """The line of pip's error output that says why (the last ``ERROR:`` line, else the last line)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR:")]
    return (errors or lines or ["pip failed without a message"])[-1][:300]


def install_optional(pip: list[str], reqs: Iterable[str], build: str) -> dict[str, str]:
    """Install each of ``reqs`` on its own with ``pip`` (a command up to its requirements); return
    those that failed, package name -> why."""
    unavailable: dict[str, str] = {}
    house = wheelhouse.carried()
    for requirement in reqs:
        if house is not None and package_name(requirement) not in house:  # a bundle made without it
            unavailable[package_name(requirement)] = "not carried: the wheelhouse has no wheel of it"
            continue
        try:
            _run([*pip, requirement], build)
        except CommandFailed as exc:
            why = pip_reason(exc.stderr)
            unavailable[package_name(requirement)] = f"no binary wheel installs here ({why})"
    return unavailable


def unavailable(build: str) -> dict[str, str]:
    """The optional packages ``build``'s environment could not install, and why."""
    path = env_dir(build) / UNAVAILABLE_FILE
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _run(cmd: list[str], build: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        message = f"{' '.join(cmd[:4])} ... failed for {build}: {proc.stderr.strip()[-800:]}"
        raise CommandFailed(message, proc.stderr)
    return proc.stdout


def ensure(
    build: str,
    extras: tuple[str, ...] = ("worker",),
    log: Callable[[str], None] = print,
    optional: tuple[str, ...] = OPTIONAL_EXTRAS,
) -> Path:
    """Make (or reuse) the environment for ``build``; return its python.

    ``optional`` extras are installed after ``extras``, each package on its own and best-effort
    (what failed is in :func:`unavailable`).
    """
    reqs = requirements(extras)
    extra_reqs = [r for r in (requirements(optional) if optional else []) if r not in reqs]
    return make_env(build, env_dir(build), reqs, log=log, optional=extra_reqs)


def make_env(
    build: str,
    directory: Path,
    pip_args: list[str],
    digest: tuple[str, ...] = (),
    log: Callable[[str], None] = print,
    optional: list[str] | None = None,
    find_links: Path | None = None,
) -> Path:
    """Make (or reuse) an environment of ``build`` at ``directory`` with ``pip_args`` installed
    (requirements, ``-r FILE``), from wheels only; return its python.

    Reused while the interpreter, the arguments, ``digest`` (what the arguments do not show, such
    as the contents of a requirements file) and the code stage stay the same. ``optional``
    requirements are installed after, each on its own and best-effort; those that failed are
    written to the environment's :data:`UNAVAILABLE_FILE` (None: no optional ones, no file).
    ``find_links``: a folder of wheels ftscale built for this build (:mod:`ftscale.bench.env.fromsource`)
    that pip may take; not part of the stamp (``digest`` names its wheels).
    """
    interpreter = provision.linked(build)
    if interpreter is None:
        raise EnvError(f"build {build} is not provisioned; run: ftscale build {build}")
    stage = code_stage()
    stamp_file = directory / ".ftscale-stamp"
    source = wheelhouse.install_source(build)
    extra = ["optional:", *optional] if optional is not None else []
    stamp = _stamp(interpreter, [*pip_args, *digest, *extra], stage, source)
    python = directory / "bin" / "python"
    if stamp_file.is_file() and stamp_file.read_text() == stamp and python.exists():
        return python
    log(f"creating environment for {build} in {directory}")
    _run([str(interpreter), "-m", "venv", "--clear", str(directory)], build)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--only-binary=:all:"]
    built = ["--find-links", str(find_links)] if find_links is not None else []
    _run([*pip, *source, *built, *pip_args], build)
    if optional is not None:
        missing = install_optional([*pip, *source], optional, build)
        for name, why in missing.items():
            log(f"{build}: {name} is not available: {why}")
        (directory / UNAVAILABLE_FILE).write_text(json.dumps(missing, indent=2, sort_keys=True))
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], build)
    (Path(purelib.strip()) / PTH_NAME).write_text(f"{stage}\n")
    stamp_file.write_text(stamp)
    return python


def describe(build: str, python: Path | None = None) -> Build:
    """What ``build``'s environment is, including the GIL import check and package versions."""
    python = python or env_python(build)
    out = _run([str(python), "-m", "ftscale.buildfacts", "--import-check"], build)
    facts = json.loads(out)
    absent = dict(unavailable(build)) if python == env_python(build) else {}
    from ftscale import workloads  # the workloads' own packages (numpy): not at --help time

    for name in (*engines.OPTIONAL_PACKAGES, *workloads.optional_packages()):  # import name = its own
        if name in facts.get("missing", []) and name not in absent:
            absent[name] = "not installed in this environment"
    facts["unavailable"] = absent
    return Build.model_validate({k: v for k, v in facts.items() if k in Build.model_fields})


def provisioned(builds: list[str], log: Callable[[str], None] = print) -> None:
    """Find or build every interpreter of ``builds`` that is not provisioned yet."""
    missing = [b for b in builds if provision.linked(b) is None]
    if missing:
        try:
            provision.resolve(missing, log=log)
        except provision.ProvisionError as exc:
            raise EnvError(str(exc)) from None


def prepare(
    builds: list[str], extras: tuple[str, ...] = ("worker",), log: Callable[[str], None] = print
) -> dict[str, Build]:
    """Provision, install and describe each build; stop at the first that cannot be used."""
    provisioned(builds, log)
    described = {}
    for build in builds:
        ensure(build, extras, log)
        info = describe(build)
        if info.py_gil_disabled and info.gil_enabled:
            culprit = info.gil_reenabled_by or "an unknown import"
            log(f"warning: {build} runs with the GIL on: {culprit} enabled it")
        described[build] = info
    return described


if __name__ == "__main__":
    for name, info in prepare(sys.argv[1:] or ["3.14", "3.14t"]).items():
        print(name, info.version, "GIL", "on" if info.gil_enabled else "off", info.gil_reenabled_by or "")
