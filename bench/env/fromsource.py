"""Building what has no wheel: a requirement published as source only, or a project named by a
path or URL, made into a wheel the way pip makes one, for one build.

``pip wheel --no-deps`` with the build's own interpreter, one distribution at a time, within a
time limit (:data:`BUILD_TIMEOUT_S`, ``--build-timeout``). Everything a build writes goes to a
scratch folder (pip's own temporary folders too, through ``TMPDIR``) that is removed afterwards,
whether it built or not, and a build that runs out of time is killed with every process it
started. Only a finished wheel leaves the scratch folder, moved into the build's wheel folder
(:attr:`Builder.folder`), which is kept beside the environment it was built for (so that the
environment can be reused) and read by pip through ``--find-links``. A local project is copied
first and built from the copy: nothing is written into the user's folder (no ``build/``, no
``*.egg-info``).

A build that fails is one line (:class:`BuildFailed`) naming the distribution and what was
missing, read from the build's output (:func:`missing_piece`): a Rust, C, C++ or Fortran
toolchain, CMake, a header or library of the system, a build requirement the index does not
have, the time limit, or else the build's own last error.

What this does not do: it does not install system packages or toolchains, and it does not
decide whether a wheel it built is safe without the GIL (the import checks do that).

Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ftscale.errors import SetupError

BUILD_TIMEOUT_S = 120.0
NO_WHEEL = re.compile(r"No matching distribution found for ([^\s;]+)")

# Folders of a local project that a build never needs and that can be large; left out of the copy
# (at its top only: a package may have a subpackage named ``build``).
SKIPPED_AT_TOP = set(
    "build dist .venv venv .nox .tox node_modules .mypy_cache .pytest_cache .ruff_cache".split()
)


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


class BuildFailed(SetupError):
    """A distribution did not build into a wheel; the message is one line naming it and why."""

    def __init__(self, name: str, piece: str, build: str) -> None:
        super().__init__(f"{name} does not build from source on {build}: {piece}")
        self.name, self.piece = name, piece


@dataclass(frozen=True)
class Built:
    """A wheel ftscale built: its distribution (canonical name), version and file name."""

    name: str
    version: str
    wheel: str

    @property
    def pure(self) -> bool:
        """Pure Python (``py3-none-any``): nothing compiled, nothing that can hold the GIL."""
        return self.wheel.endswith("-none-any.whl")

    @property
    def kind(self) -> str:
        """``pure Python``, or the wheel's ABI tag (``cp314t``, ``abi3``)."""
        return "pure Python" if self.pure else self.wheel[: -len(".whl")].split("-")[-2]

    @classmethod
    def of(cls, wheel: Path) -> Built:
        name, version = wheel.name.split("-")[:2]
        return cls(canonical(name), version, wheel.name)


# --- what a failed build lacked --------------------------------------------------------------------

# (pattern over the build's output, what it says is missing); the first that matches names it.
PIECES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE | re.MULTILINE), piece)
    for pattern, piece in (
        (
            r"can't find Rust compiler|Cargo, the Rust package manager|rustc.*not found|"
            r"`cargo` not found|could not find `cargo`",
            "a Rust toolchain (rustc and cargo)",
        ),
        (
            r"command '[^']*(?:g\+\+|c\+\+|clang\+\+)' failed: No such file|"
            r"Unknown compiler\(s\): \[\['c\+\+'|No CMAKE_CXX_COMPILER could be found",
            "a C++ compiler",
        ),
        (r"Unknown compiler\(s\): \[\['gfortran'|No CMAKE_Fortran_COMPILER", "a Fortran compiler"),
        (
            r"command '[^']*(?:gcc|cc|clang)' failed: No such file|unable to execute '[^']*(?:gcc|cc)'|"
            r"Unknown compiler\(s\): \[\['cc'|No CMAKE_C_COMPILER could be found",
            "a C compiler",
        ),
        (r"CMake must be installed|No such file or directory: 'cmake'|cmake: not found", "CMake"),
        (
            r"pkg-config: not found|Did not find pkg-config|No such file or directory: 'pkg-config'",
            "pkg-config",
        ),
    )
)
HEADER = re.compile(r"fatal error: ([\w./+-]+\.h(?:pp)?): No such file or directory")
LIBRARY = re.compile(r"cannot find -l([\w.+-]+)")
PKG_CONFIG = re.compile(
    r"Package '?([\w.+-]+?)'? was not found in the pkg-config search path|"
    r"Dependency \"?([\w.+-]+)\"? not found"
)
BUILD_REQUIREMENT = re.compile(
    r"installing build dependencies.*?No matching distribution found for ([^\s;]+)", re.DOTALL | re.IGNORECASE
)
NO_CONNECTION = re.compile(
    r"Failed to connect to (\S+) while fetching \S+\s*\n\s*╰─> ([^\n]+)|"  # pip 25
    r"ConnectionPool\(host='([^']+)'.*?Max retries exceeded.*?(\[Errno -?\d+\] [^'\")]+)",  # older pips
    re.DOTALL,
)
HTTP_ERROR = re.compile(r"HTTP error (\d+) while getting (\S+)")
NO_CLONE = re.compile(r"^\s*fatal: (.*)$", re.MULTILINE)
LAST_ERROR = re.compile(r"^[\s│|]*((?:[\w.]+\.)?\w*(?:Error|Exception|Exit)\b:? .*\S)", re.MULTILINE)
# A build that fetches its own dependencies (cargo, a CMake download) on a machine without the network.
NO_HOST = re.compile(r"Could not resolve host: ([\w.-]+)|Could not resolve hostname:? ([\w.-]{3,})")
# What a build says itself about the interpreter it was given ("orjson v3.13.0 does not support
# free-threaded Python"): the most direct reason there is.
UNSUPPORTED = re.compile(r"^[\s│|]*(?:\w+: )?(.*\b(?:does not|doesn't|do not) support\b.*\S)", re.MULTILINE)
# A compiler's own error (C, C++, Cython, Rust), not the wrappers around it.
COMPILE_ERROR = re.compile(
    r"^[\s│|]*([\w./+-]+\.(?:c|cc|cpp|cxx|h|hpp|pyx|pxd|rs):\d+(?::\d+)?: (?:fatal )?error: .*\S)|"
    r"^[\s│|]*(error(?:\[E\d+\])?: (?!failed to run custom build command|could not compile|command '|"
    r"subprocess-exited|metadata-generation)(?!.*exit (?:status|code)).*\S)",
    re.MULTILINE,
)
WRAPPERS = ("CalledProcessError", "subprocess-exited")  # a build step's exit, not its reason


def missing_piece(output: str) -> str:
    """What a failed build's ``output`` says it lacked, as a few words (or its own last error)."""
    for pattern, piece in PIECES:
        if pattern.search(output):
            return f"needs {piece}"
    if found := HEADER.search(output):
        return f"needs the C header {found[1]} (a system development package)"
    if found := LIBRARY.search(output):
        return f"needs the system library lib{found[1]} (a system development package)"
    if found := PKG_CONFIG.search(output):
        return f"needs the system library {found[1] or found[2]} (pkg-config does not know it)"
    if found := BUILD_REQUIREMENT.search(output):
        return f"needs its build requirement {found[1]}, which the package index does not have"
    if "Cannot find command 'git'" in output:
        return "needs git, to clone it"
    if found := NO_CONNECTION.search(output):
        return f"could not download it from {found[1] or found[3]} ({(found[2] or found[4]).strip()})"
    if found := HTTP_ERROR.search(output):
        return f"could not download it: HTTP error {found[1]} for {found[2]}"
    if "git clone" in output and (found := NO_CLONE.search(output)):
        return f"could not clone it: {found[1][:200]}"
    if found := NO_WHEEL.search(output):
        return f"no distribution of {found[1]} to build from"
    if found := NO_HOST.search(output):
        return (
            f"its build fetches dependencies from {found[1] or found[2]}, which cannot be reached from here"
        )
    if found := UNSUPPORTED.search(output):
        return f"its build says: {found[1][:200]}"
    if found := COMPILE_ERROR.search(output):
        return f"does not compile: {(found[1] or found[2])[:200]}"
    errors = [m[1] for m in LAST_ERROR.finditer(output) if not m[1].startswith("ERROR:")]
    reasons = [e for e in errors if not any(w in e for w in WRAPPERS)] or errors
    if reasons:
        return f"its build failed: {reasons[-1][:200]}"
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    return f"its build failed: {(lines or ['pip wheel failed without a message'])[-1][:200]}"


# --- one build ---------------------------------------------------------------------------------------


def _copy_ignore(root: Path) -> Callable[[str, list[str]], set[str]]:
    def ignore(folder: str, names: list[str]) -> set[str]:
        top = Path(folder) == root
        return {
            n for n in names if n == "__pycache__" or n.endswith(".egg-info") or (top and n in SKIPPED_AT_TOP)
        }

    return ignore


def builder_env() -> dict[str, str]:
    """This process's environment without what ftscale sets for its own processes: a build runs
    scripts as pip runs them for the user (``PYTHONSAFEPATH`` would keep a ``setup.py`` from
    importing the helper module beside it)."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHON_GIL", "PYTHONSAFEPATH")}


def _run_limited(cmd: list[str], env: dict[str, str], timeout_s: float) -> tuple[int | None, str]:
    """Run ``cmd`` in its own session; (exit status, output), None for a build killed at the limit
    with every process it started (a compiler, a backend's own subprocesses)."""
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        try:  # a process that left the session (a build daemon) may hold the pipe open: do not wait on it
            out, _ = proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            out = ""
        return None, out
    return proc.returncode, out


@dataclass
class Builder:
    """Builds the wheels one build lacks, into :attr:`folder`, each distribution at most once.

    ``python`` is the build's interpreter (its pip resolves and builds); ``options`` are the
    project's pip options saying where distributions come from, ``source`` ftscale's own
    (a wheelhouse). A failure is remembered, so a build that ran out of time is not tried again.
    """

    python: Path
    build: str
    folder: Path
    timeout_s: float = BUILD_TIMEOUT_S
    options: Sequence[str] = ()
    source: Sequence[str] = ()
    log: Callable[[str], None] = print
    failed: dict[str, BuildFailed] = field(default_factory=dict)
    projects: dict[str, Built] = field(default_factory=dict)  # built from a path or URL, by target

    def wheels(self) -> list[Path]:
        return sorted(self.folder.glob("*.whl")) if self.folder.is_dir() else []

    def built(self) -> list[Built]:
        return [Built.of(w) for w in self.wheels()]

    def names(self) -> set[str]:
        """The file names of every wheel built for this build (now or before)."""
        return {w.name for w in self.wheels()}

    def stamp(self) -> tuple[str, ...]:
        """What identifies the wheels an environment was made from: each file name, and a digest of
        its RECORD (the hashes of the files it installs), which a rebuild of the same code repeats."""
        out = []
        for wheel in self.wheels():
            with zipfile.ZipFile(wheel) as archive:
                record = next((n for n in archive.namelist() if n.endswith(".dist-info/RECORD")), None)
                data = archive.read(record) if record else b""
            out.append(f"built:{wheel.name}:{hashlib.sha256(data).hexdigest()[:16]}")
        return tuple(out)

    def _pip_wheel(self, target: str, name: str) -> Built:
        """``pip wheel --no-deps target`` in a scratch folder; the wheel moved into :attr:`folder`."""
        if canonical(name) in self.failed:
            raise self.failed[canonical(name)]
        self.folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix="ftscale-build-") as scratch:
            out, tmp = Path(scratch) / "wheel", Path(scratch) / "tmp"
            tmp.mkdir()
            env = builder_env()
            env.update(TMPDIR=str(tmp), PIP_NO_INPUT="1")
            pip = [str(self.python), "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check"]
            into = ["--progress-bar", "off", "--wheel-dir", str(out), "--find-links", str(self.folder)]
            cmd = [*pip, *into, *self.source, *self.options, target]
            status, output = _run_limited(cmd, env, self.timeout_s)
            wheels = sorted(out.glob("*.whl")) if status == 0 else []
            if status is None:
                piece = f"did not build within {self.timeout_s:g} s (--build-timeout)"
            elif len(wheels) != 1:
                piece = missing_piece(output)
            else:
                built = Built.of(wheels[0])
                for old in self.folder.glob(f"{wheels[0].name.split('-')[0]}-*.whl"):
                    old.unlink()  # an earlier build of the same distribution (a local project changed)
                shutil.move(wheels[0], self.folder / wheels[0].name)
                return built
        failure = BuildFailed(name, piece, self.build)
        self.failed[canonical(name)] = failure
        self.log(f"{self.build}: {failure}")
        raise failure

    def requirement(self, spec: str) -> Built:
        """Build ``spec`` (a requirement pip found no wheel for: ``orjson>=3``) from its source."""
        name = re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0]
        if canonical(name) in self.failed:
            raise self.failed[canonical(name)]
        self.log(f"{self.build}: building {spec} from source (at most {self.timeout_s:g} s)")
        built = self._pip_wheel(spec, name)
        self.log(f"{self.build}: built {built.wheel}")
        return built

    def project(self, target: str, label: str) -> Built:
        """Build the project at ``target`` (a folder, an archive, a URL) named ``label`` in messages;
        a folder is copied first and built from the copy."""
        if canonical(label) in self.failed:
            raise self.failed[canonical(label)]
        if target in self.projects:  # once per run: a local project may change between runs
            return self.projects[target]
        self.log(f"{self.build}: building {label} (at most {self.timeout_s:g} s)")
        local = Path(target)
        if not local.is_dir():
            built = self._pip_wheel(target, label)
        else:
            with tempfile.TemporaryDirectory(prefix="ftscale-copy-") as scratch:
                copy = Path(scratch) / local.name
                shutil.copytree(local, copy, symlinks=True, ignore=_copy_ignore(local))
                built = self._pip_wheel(str(copy), label)
        self.log(f"{self.build}: built {built.wheel}")
        self.projects[target] = built
        return built

    def resolve(self, args: Sequence[str]) -> tuple[list[dict[str, Any]] | None, str]:
        """pip's dry-run report of installing ``args`` from wheels, this build's built ones included,
        building each distribution pip finds no wheel for and trying again.

        Returns (the report's items, "") or (None, pip's error output) when pip fails for another
        reason; :class:`BuildFailed` when a build fails (or pip asks again for one it built).
        """
        tried: set[str] = set()
        while True:
            items, stderr = dry_run(self.python, [*self.source, "--find-links", str(self.folder), *args])
            found = NO_WHEEL.search(stderr) if items is None else None
            if found is None:
                return items, stderr
            spec = found[1]
            name = canonical(re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0])
            if name in tried:  # built, yet pip still finds no wheel: the version it built does not fit
                raise BuildFailed(name, f"the wheel built does not satisfy {spec}", self.build)
            tried.add(name)
            self.requirement(spec)


def dry_run(python: Path, args: Sequence[str]) -> tuple[list[dict[str, Any]] | None, str]:
    """pip's dry-run report of installing ``args`` from binary wheels only (None and stderr if it fails)."""
    with tempfile.TemporaryDirectory(prefix="ftscale-resolve-") as scratch:
        report = Path(scratch) / "report.json"
        pip = [str(python), "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:"]
        cmd = [*pip, "-q", "--disable-pip-version-check", "--report", str(report), *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, env=builder_env())
        if proc.returncode != 0 or not report.is_file():
            return None, proc.stderr
        items: list[dict[str, Any]] = json.loads(report.read_text()).get("install", [])
        return items, ""
