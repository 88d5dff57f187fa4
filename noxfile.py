"""ftscale's sessions: thin callers of the ``ftscale`` command.

    nox -s bench            quick HTTP scaling sweep, then its report  (ftscale bench)
    nox -s tests            the test suite, on this interpreter and on 3.14t
    nox -s schema           schemathesis against the live service (minutes), on both
    nox -s soak             a 60 s soak of the service; its figures go to results/soak/
    nox -s micro -- --quick in-process pyperf scaling of every workload (ftscale micro)
    nox -s app -- M:A ...   your own ASGI app through the same sweep (ftscale app)
    nox -s audit -- -r F    your requirements on free-threaded builds (ftscale audit)
    nox -s interpreters     find or build CPython 3.13, 3.13t, 3.14, 3.14t (ftscale build)

Each session installs the project (editable) with the extras it needs, from binary wheels only,
and passes its arguments through. Provisioned builds are linked into ``<cache>/ftscale/bin``,
which is put first on PATH here so that ``python="3.14t"`` finds them. A missing build is
skipped with its reason, or fails the run when ``CI`` is set (nox's default).
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["bench"]


PROVISION = str(Path(__file__).parent / "bench" / "env" / "provision.py")


def _provision_module() -> ModuleType:
    """``bench/env/provision.py`` by path: standard library only, it runs in nox's own interpreter."""
    spec = importlib.util.spec_from_file_location("ftscale_provision", PROVISION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


provision = _provision_module()
os.environ["PATH"] = f"{provision.bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}"

HOST = f"{sys.version_info[0]}.{sys.version_info[1]}"
BUILDS = list(provision.BUILDS)
TEST_PYTHONS = list(dict.fromkeys([HOST, "3.14t"]))
PIP_BINARY_ONLY = "--only-binary=:all:"
PYPROJECT = nox.project.load_toml("pyproject.toml")


def install(session: nox.Session, extras: str, *groups: str) -> None:
    """The project (editable) with ``extras``, and dependency ``groups``, from wheels only."""
    session.install(PIP_BINARY_ONLY, "-e", f".[{extras}]", *nox.project.dependency_groups(PYPROJECT, *groups))


@nox.session(python=False)
def interpreters(session: nox.Session) -> None:
    """Find or build CPython 3.13, 3.13t, 3.14, 3.14t (or those named) and list them."""
    session.run(sys.executable, PROVISION, *session.posargs, external=True)


for _build in [*BUILDS, *([HOST] if HOST not in BUILDS else [])]:

    def _one(session: nox.Session, build: str = _build) -> None:
        if build in BUILDS:
            session.run(sys.executable, PROVISION, build, external=True)
        else:
            session.log(f"{build} is the host interpreter: nothing to provision")

    _one.__doc__ = f"find or build {_build} only"
    nox.session(name=f"interpreters-{_build}", python=False, default=False)(_one)


@nox.session(python=TEST_PYTHONS, requires=["interpreters-{python}"])
def tests(session: nox.Session) -> None:
    """Run the test suite (on this interpreter and on the free-threaded 3.14t)."""
    install(
        session, "bench,report,server,worker" if session.python == HOST else "bench,server,worker", "test"
    )
    session.run("python", "-m", "ftscale.buildfacts", "--import-check")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(python=TEST_PYTHONS, requires=["interpreters-{python}"], default=False)
def schema(session: nox.Session) -> None:
    """Schemathesis against the live service: every operation, valid and invalid input, every check."""
    install(session, "bench,server", "test")
    session.run(
        "python",
        "-m",
        "pytest",
        "-m",
        "schemathesis",
        "tests/test_server_schema.py",
        *session.posargs,
    )


@nox.session(default=False)
def soak(session: nox.Session) -> None:
    """60 s of good, bad and idle clients against the service; figures to results/soak/."""
    install(session, "server")
    session.run("python", "-m", "ftscale.server.soak", *session.posargs)


@nox.session(default=False)
def lint(session: nox.Session) -> None:
    """ruff and mypy over the project."""
    install(session, "all,worker", "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # mypy does not follow the editable install's import hook: it checks a tree of links laid
    # out as the installed package is (ftscale/ with bench/, server/, workloads/ inside it).
    root = Path(__file__).parent.resolve()
    stage = Path(session.create_tmp()).resolve() / "typecheck"
    package = stage / "ftscale"
    package.mkdir(parents=True, exist_ok=True)
    links = {p.name: p for p in (root / "ftscale").iterdir() if p.suffix in (".py", ".typed")}
    links.update({name: root / name for name in ("bench", "server", "workloads")})
    for name, target in links.items():
        (package / name).unlink(missing_ok=True)
        (package / name).symlink_to(target)
    config = str(root / "pyproject.toml")
    with session.chdir(stage):
        session.run("mypy", "--config-file", config, "-p", "ftscale")
    session.run("mypy", "--config-file", config, "noxfile.py")


@nox.session
def bench(session: nox.Session) -> None:
    """HTTP scaling sweep: quick by default (fair designs on 3.14 and 3.14t), --full for everything."""
    install(session, "bench,report")
    session.run("ftscale", "bench", *session.posargs)


@nox.session(default=False)
def app(session: nox.Session) -> None:
    """Your own ASGI app through the HTTP sweep: -- MODULE:ATTR --requests FILE (ftscale app)."""
    install(session, "bench,report")
    session.run("ftscale", "app", *session.posargs)


@nox.session(default=False)
def audit(session: nox.Session) -> None:
    """Your requirements on free-threaded builds: wheels, imports, the GIL (ftscale audit)."""
    install(session, "bench")
    session.run("ftscale", "audit", *session.posargs)


@nox.session(default=False)
def micro(session: nox.Session) -> None:
    """In-process pyperf scaling of every workload at 1..N threads (--quick for a fast pass)."""
    install(session, "bench,report")
    session.run("ftscale", "micro", *session.posargs)


for _build in BUILDS:
    for _name in ("bench", "micro"):

        def _per_build(session: nox.Session, command: str = _name, build: str = _build) -> None:
            install(session, "bench,report")
            args = list(session.posargs)
            if "--builds" not in args:
                args = ["--builds", build, *args]
            session.run("ftscale", command, *args)

        _per_build.__doc__ = f"{_name} on {_build} only"
        nox.session(name=f"{_name}-{_build}", default=False)(_per_build)


@nox.session(default=False)
def report(session: nox.Session) -> None:
    """Re-render reports of run directories (default: every run under results/)."""
    install(session, "report")
    session.run("ftscale", "report", *session.posargs)
