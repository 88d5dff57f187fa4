"""A user's project: its requirements, and one environment per build to serve its app in.

The requirements come from ``-r requirements.txt`` (any number, passed to pip as they are) or
from the ``[project] dependencies`` of a ``pyproject.toml``. The project's own code is not
installed: its folder (``--app-dir``) goes first on the app's import path when it is served,
as ``uvicorn --app-dir`` does. Each build's environment holds those requirements plus
ftscale's serving core (uvicorn and pydantic, at the versions ftscale's ``server`` extra asks
for), installed from binary wheels only; it lives under
``<cache>/envs/<installation>/app-<digest>/<build>``, the digest covering the requirements and
the contents of their files, so an edited requirements file makes a new environment.

What has no wheel for a build is built from source for it, the way pip would build it
(:mod:`ftscale.bench.env.fromsource`: ``pip wheel --no-deps``, time-limited, in a scratch
folder), unless the caller forbids building (``--no-build``); the wheels built are kept beside the
environment (``<build>-built/``), whose stamp names them. A requirement that names a project by
where it is (a folder, ``-e``, an archive, a ``file:``, VCS or other URL: :class:`Reference`) is
built into a wheel too, a local folder from a copy of it, so nothing is ever written into the
user's project; one that names a folder that is not a project is bad input. An environment that
could not be made is removed, never left half made.

A requirement pip cannot install is said in one line that names the build and the package: no
wheel and no source to build from, a build that failed and what it lacked, a conflict, or a
malformed line.
"""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import shutil
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

from ftscale.bench.env import fromsource, provision, venv, wheelhouse
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
    files = tuple(p.resolve() for p in requirement_files)
    return Project(files=files, requirements=requirements, source=", ".join(sources))


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


HASH_OPTION = re.compile(r"\s--hash[=\s]\S+")
EDITABLE = re.compile(r"^(?:-e|--editable)(?:\s+|\s*=\s*)(\S.*)$")


def _lines(project: Project) -> list[tuple[Path, str]]:
    """Every meaningful line of the project's files (included ones too), with its file: lines
    continued with a backslash joined, comments and ``--hash`` options left out."""
    seen: set[Path] = set()
    found = []
    for path in (p for f in project.files for p in _files(f, seen)):
        text = re.sub(r"\\\n", " ", path.read_text())
        for raw in text.splitlines():
            line = HASH_OPTION.sub("", re.sub(r"(^|\s)#.*$", "", raw)).strip()
            if line:
                found.append((path, line))
    return found


def requirement_lines(project: Project) -> list[str]:
    """Every requirement of ``project`` one by one: its strings, and its files' lines (included
    files followed; comments, blank lines and pip options left out, but ``-e`` lines kept: they
    are requirements too)."""
    lines = [
        *project.requirements,
        *(line for _, line in _lines(project) if not line.startswith("-") or EDITABLE.match(line)),
    ]
    return list(dict.fromkeys(lines))


# --- requirements that name where a project is ---------------------------------------------------------

URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # a scheme: https:, git+https:, file:
DIRECT = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(\[[^\]]*\])?\s*@\s*(\S+)")  # name[x] @ url
ARCHIVES = (".whl", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip", ".tar")


@dataclass(frozen=True)
class Reference:
    """A requirement that says where a project is instead of what it is: a folder or archive (with
    ``-e`` or without), a ``file:`` URL, a VCS or other URL, or ``name @ URL``. ``target`` is an
    absolute path for a local one (relative paths are taken from the current folder, as pip takes
    them), else the URL."""

    line: str
    target: str
    local: bool
    extras: str = ""
    editable: bool = False

    @property
    def wheel(self) -> bool:
        """Already a wheel: nothing to build, only to fetch."""
        return self.target.split("#")[0].endswith(".whl")

    def problem(self) -> str | None:
        """Why a local reference cannot be built (None: it can, or it is not local)."""
        path = Path(self.target)
        if not path.exists():
            return f"{path} does not exist"
        if path.is_dir() and not ((path / "pyproject.toml").is_file() or (path / "setup.py").is_file()):
            return f"{path} is not a Python project (it has no pyproject.toml or setup.py)"
        if path.is_file() and not path.name.endswith(ARCHIVES):
            return f"{path} is not a project folder, a wheel or a source archive"
        return None


def _local(target: str, base: Path) -> tuple[str, str]:
    """(absolute path, extras) of a path or ``file:`` URL, extras such as ``[dev]`` split off."""
    found = re.match(r"^(.*?)(\[[^\]]*\])?$", target.strip())
    assert found is not None
    path = found[1]
    if path.startswith("file:"):
        path = unquote(urlparse(path).path) if path.startswith("file://") else path[len("file:") :]
    return str((base / os.path.expanduser(path)).resolve()), found[2] or ""


def reference(line: str, base: Path | None = None) -> Reference | None:
    """``line`` as a :class:`Reference`, or None for a requirement by name (``fastapi>=0.115``)."""
    base = base or Path.cwd()
    editable = EDITABLE.match(line)
    text = editable[1].strip() if editable else line.strip()
    if direct := DIRECT.match(text):
        url = direct[3]
        if url.startswith("file:"):
            target, local = _local(url, base)[0], True
        else:
            target, local = url, False
        return Reference(
            line=line, target=target, local=local, extras=direct[2] or "", editable=bool(editable)
        )
    if URL.match(text) and not text.startswith("file:"):
        return Reference(line=line, target=text.split(";")[0].strip(), local=False, editable=bool(editable))
    path = text.split(";")[0].strip()
    if editable or path.startswith(("file:", ".", "/", "~")) or os.sep in path:
        target, extras = _local(path, base)
        return Reference(line=line, target=target, local=True, extras=extras, editable=bool(editable))
    return None


def references(project: Project) -> list[Reference]:
    return [r for r in (reference(line) for line in requirement_lines(project)) if r is not None]


def check_references(project: Project, building: bool) -> None:
    """Bad input, before anything is installed: a reference to a folder that is not a project (or
    to nothing), or, when building is forbidden, one that needs building."""
    for ref in references(project):
        where = f"requirement {ref.line!r} ({project.source})"
        if ref.local and (problem := ref.problem()):
            raise UsageError(f"{where}: {problem}")
        if not building and not ref.wheel:
            raise UsageError(
                f"{where} names a project to build (ftscale builds it from a copy, never in place); "
                "--no-build forbids building"
            )


def install_args(project: Project, pins: dict[str, str]) -> list[str]:
    """pip's arguments for the project's environment: :meth:`Project.pip_args`, or, where the project
    has references, its requirements one by one with each reference replaced by the pin of the
    wheel built from it (``pins``: line -> ``name==version``), and its files' source options."""
    if not pins:
        return project.pip_args()
    lines = [pins.get(line, line) for line in requirement_lines(project)]
    return [*serving_core(), *lines, *pip_options(project)]


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


def explain(stderr: str, build: str, building: bool = False) -> str | None:
    """pip's failure as one line naming the build and the package, where pip said which."""
    if found := NO_WHEEL.search(stderr):
        how = "--no-build: ftscale installs binary wheels only" if not building else "and none was built"
        return (
            f"requirement {found[1]} has no wheel for {build} ({how}; 'ftscale audit' shows which builds "
            "have one)"
        )
    if found := CONFLICT.search(stderr):
        return f"the requirements conflict on {build}: {found[1]}"
    if found := INVALID.search(stderr):
        return f"{found[1]} (for {build})"
    return None


def env_dir(build: str, project: Project) -> Path:
    return provision.cache_root() / "envs" / venv.code_stage().name / f"app-{project.digest}" / build


def built_dir(build: str, project: Project) -> Path:
    """Where the wheels built from source for ``build``'s environment of ``project`` are kept."""
    return env_dir(build, project).with_name(f"{build}-built")


def builder(
    build: str,
    project: Project,
    timeout_s: float = fromsource.BUILD_TIMEOUT_S,
    log: Callable[[str], None] = print,
) -> fromsource.Builder:
    """What builds the wheels ``build`` lacks for ``project``, with the build's own interpreter."""
    interpreter = provision.linked(build)
    if interpreter is None:
        raise venv.EnvError(f"build {build} is not provisioned; run: ftscale build {build}")
    folder = built_dir(build, project)
    folder.mkdir(parents=True, exist_ok=True)
    source = wheelhouse.install_source(build)
    return fromsource.Builder(
        python=interpreter,
        build=build,
        folder=folder,
        timeout_s=timeout_s,
        options=pip_options(project),
        source=source,
        log=log,
    )


def build_references(project: Project, made: fromsource.Builder) -> dict[str, str]:
    """Every reference of ``project`` built (a local folder from a copy): its line -> the pin of
    its wheel. :class:`~ftscale.bench.env.fromsource.BuildFailed` for the first that does not build."""
    pins = {}
    for ref in references(project):
        built = made.project(ref.target, ref.line)
        pins[ref.line] = f"{built.name}{ref.extras}=={built.version}"
    return pins


def _make(
    build: str, project: Project, args: list[str], log: Callable[[str], None], made: fromsource.Builder | None
) -> Path:
    directory = env_dir(build, project)
    digest = (*project.contents(), *(made.stamp() if made else ()))
    try:
        return venv.make_env(build, directory, args, digest, log, find_links=made.folder if made else None)
    except venv.CommandFailed:
        shutil.rmtree(directory, ignore_errors=True)  # never leave an environment half made
        raise


def ensure(
    build: str, project: Project, log: Callable[[str], None] = print, made: fromsource.Builder | None = None
) -> Path:
    """Make (or reuse) ``build``'s environment for ``project``; return its python.

    ``made`` builds what has no wheel (None: wheels only, and a reference is bad input). A
    build that fails raises :class:`~ftscale.bench.env.fromsource.BuildFailed`.
    """
    check_references(project, building=made is not None)
    args = install_args(project, build_references(project, made) if made else {})
    try:
        return _make(build, project, args, log, made)
    except venv.CommandFailed as exc:
        if made is None or not NO_WHEEL.search(exc.stderr):
            line = explain(exc.stderr, build, made is not None)
            if line is None:
                raise
            raise UsageError(line) from None
    items, stderr = made.resolve(args)  # builds each distribution without a wheel
    if items is None:
        line = explain(stderr, build, building=True)
        raise UsageError(line or f"pip cannot install the requirements on {build}: {venv.pip_reason(stderr)}")
    try:
        return _make(build, project, args, log, made)
    except venv.CommandFailed as exc:
        line = explain(exc.stderr, build, building=True)
        if line is None:
            raise
        raise UsageError(line) from None
