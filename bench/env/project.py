"""A user's project: its requirements, and one environment per build to serve its app in.

The requirements come from ``-r requirements.txt`` (any number, passed to pip as they are) or
from the ``[project] dependencies`` of a ``pyproject.toml``. The project's own code is not
installed: its folder (``--app-dir``) goes first on the app's import path when it is served,
as ``uvicorn --app-dir`` does. Each build's environment holds those requirements plus
ftscale's serving core (uvicorn and pydantic, at the versions ftscale's ``server`` extra asks
for), installed from binary wheels only; it lives under
``<cache>/envs/<installation>/app-<digest>/<build>``, the digest covering the requirements and
the contents of their files, so an edited requirements file makes a new environment.

A requirement pip cannot install is bad input, said in one line that names the build and the
package: no wheel for that build (ftscale never compiles), a conflict, or a malformed line.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ftscale.bench.env import provision, venv
from ftscale.errors import UsageError

# What a user's app needs from ftscale's side to be served and described (/info is a pydantic model).
SERVING_CORE = ("uvicorn", "pydantic")
NO_WHEEL = re.compile(r"No matching distribution found for ([^\s;]+)")
CONFLICT = re.compile(r"(Cannot install .*? because these package versions have conflicting dependencies)")
INVALID = re.compile(r"(Invalid requirement: .*)")
NESTED = re.compile(r"^\s*(?:-r|--requirement|-c|--constraint)\s*=?\s*(\S+)", re.MULTILINE)


def requirement_name(requirement: str) -> str:
    """``Fancy_Name[extra]>=1`` -> ``fancy-name`` (a path or URL stays as it is)."""
    found = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", found[1]).lower() if found else requirement


def serving_core() -> list[str]:
    """uvicorn and pydantic as ftscale's ``server`` extra pins them."""
    return [r for r in venv.requirements(("server",)) if requirement_name(r) in SERVING_CORE]


def _files(path: Path, seen: set[Path]) -> list[Path]:
    """``path`` and the requirement or constraint files it includes, recursively."""
    path = path.resolve()
    if path in seen or not path.is_file():
        return []
    seen.add(path)
    found = [path]
    for nested in NESTED.findall(path.read_text()):
        found += _files(path.parent / nested, seen)
    return found


@dataclass(frozen=True)
class Project:
    """A user's requirements: files for ``pip -r`` and single requirement strings."""

    files: tuple[Path, ...] = ()
    requirements: tuple[str, ...] = ()
    source: str = ""  # where they came from, for messages and run records

    def pip_args(self) -> list[str]:
        args = [*serving_core(), *self.requirements]
        for path in self.files:
            args += ["-r", str(path)]
        return args

    def contents(self) -> tuple[str, ...]:
        """What the arguments do not show: every requirements file's text, included ones too."""
        seen: set[Path] = set()
        return tuple(f"{p}\n{p.read_text()}" for f in self.files for p in _files(f, seen))

    @property
    def digest(self) -> str:
        text = "\0".join([*self.pip_args(), *self.contents()])
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def from_arguments(requirement_files: Sequence[Path], pyproject: Path | None) -> Project:
    """The project named on the command line; :class:`UsageError` for a file that cannot be read."""
    for path in requirement_files:
        if not path.is_file():
            raise UsageError(f"requirements file {path}: no such file")
    requirements: tuple[str, ...] = ()
    sources = [str(p) for p in requirement_files]
    if pyproject is not None:
        requirements = pyproject_dependencies(pyproject)
        sources.append(str(pyproject))
    return Project(tuple(p.resolve() for p in requirement_files), requirements, ", ".join(sources))


def find(requirement_files: Sequence[Path], pyproject: Path | None, app_dir: Path) -> Project:
    """The requirements named on the command line, else those the project folder holds
    (``requirements.txt``, else a ``pyproject.toml`` with dependencies), else none."""
    if requirement_files or pyproject:
        return from_arguments(requirement_files, pyproject)
    if (app_dir / "requirements.txt").is_file():
        return from_arguments([app_dir / "requirements.txt"], None)
    if (app_dir / "pyproject.toml").is_file() and pyproject_dependencies(app_dir / "pyproject.toml"):
        return from_arguments([], app_dir / "pyproject.toml")
    return Project(source="none")


def _lines(project: Project) -> list[tuple[Path, str]]:
    """Every meaningful line of the project's files (included ones too), with its file."""
    seen: set[Path] = set()
    found = []
    for path in (p for f in project.files for p in _files(f, seen)):
        for raw in path.read_text().splitlines():
            line = re.sub(r"(^|\s)#.*$", "", raw).strip()
            if line:
                found.append((path, line))
    return found


def requirement_lines(project: Project) -> list[str]:
    """Every requirement of ``project`` one by one: its strings, and its files' lines (included
    files followed; comments, blank lines and pip options left out)."""
    lines = [*project.requirements, *(line for _, line in _lines(project) if not line.startswith("-"))]
    return list(dict.fromkeys(lines))


# pip options of a requirements file that say where distributions come from; each applies to
# every requirement of the file, so resolving one requirement alone needs them too.
PATH_OPTIONS = {"-f": "--find-links", "--find-links": "--find-links", "-c": "-c", "--constraint": "-c"}
KEPT_OPTIONS = ("--index-url", "-i", "--extra-index-url", "--no-index", "--pre", "--trusted-host")


def pip_options(project: Project) -> list[str]:
    """The source options of the project's files, as command-line arguments (paths made absolute,
    relative to their file as pip takes them)."""
    out: list[str] = []
    for path, line in _lines(project):
        if not line.startswith("-"):
            continue
        tokens = shlex.split(line.replace("=", " ", 1) if line.startswith("--") else line)
        name, value = tokens[0], tokens[1] if len(tokens) > 1 else None
        if name in PATH_OPTIONS and value is not None:
            local = path.parent / value
            out += [PATH_OPTIONS[name], str(local.resolve()) if local.exists() else value]
        elif name in KEPT_OPTIONS:
            out += tokens[:2]
    return out


def pyproject_dependencies(path: Path) -> tuple[str, ...]:
    """``[project] dependencies`` of a ``pyproject.toml`` (or of the one in a folder)."""
    if path.is_dir():
        path = path / "pyproject.toml"
    try:
        data = tomllib.loads(path.read_text())
    except OSError as exc:
        raise UsageError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path}: not valid TOML ({exc})") from None
    project = data.get("project", {})
    if "dependencies" in project.get("dynamic", []):
        raise UsageError(f"{path}: its dependencies are dynamic; pass them with -r requirements.txt")
    dependencies = project.get("dependencies", [])
    if not isinstance(dependencies, list) or not all(isinstance(d, str) for d in dependencies):
        raise UsageError(f"{path}: [project] dependencies must be a list of requirement strings")
    return tuple(dependencies)


def explain(stderr: str, build: str) -> str | None:
    """pip's failure as one line naming the build and the package, where pip said which."""
    if found := NO_WHEEL.search(stderr):
        return (
            f"requirement {found[1]} has no wheel for {build} (ftscale installs binary wheels only; "
            f"'ftscale audit' shows which builds have one)"
        )
    if found := CONFLICT.search(stderr):
        return f"the requirements conflict on {build}: {found[1]}"
    if found := INVALID.search(stderr):
        return f"{found[1]} (for {build})"
    return None


def env_dir(build: str, project: Project) -> Path:
    return provision.cache_root() / "envs" / venv.code_stage().name / f"app-{project.digest}" / build


def ensure(build: str, project: Project, log: Callable[[str], None] = print) -> Path:
    """Make (or reuse) ``build``'s environment for ``project``; return its python."""
    try:
        return venv.make_env(build, env_dir(build, project), project.pip_args(), project.contents(), log)
    except venv.CommandFailed as exc:
        line = explain(exc.stderr, build)
        if line is None:
            raise
        raise UsageError(line) from None
