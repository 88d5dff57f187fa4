"""ftscale's sessions: provision interpreters, test, benchmark, report.

    nox -s bench            quick HTTP scaling sweep (3.14 vs 3.14t), then its report
    nox -s tests            the test suite, on this interpreter and on 3.14t
    nox -s micro -- --quick in-process pyperf scaling of every workload
    nox -s interpreters     find or build CPython 3.13, 3.13t, 3.14, 3.14t

Provisioned builds are linked into ``<user cache>/ftscale/bin``, which is put first on PATH
here so that ``python="3.14t"`` finds them. A missing build is skipped with its reason, or
fails the run when ``CI`` is set (nox's --error-on-missing-interpreters default).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).parent))
from bench import provision

nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["bench"]

os.environ["PATH"] = f"{provision.bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}"

HOST = f"{sys.version_info[0]}.{sys.version_info[1]}"
BUILDS = list(provision.BUILDS)
TEST_PYTHONS = list(dict.fromkeys([HOST, "3.14t"]))
PIP_BINARY_ONLY = "--only-binary=:all:"


PYPROJECT = nox.project.load_toml("pyproject.toml")


def install_groups(session: nox.Session, *groups: str) -> None:
    """Install pyproject dependency groups from wheels only (never a Rust or C++ build)."""
    session.install(PIP_BINARY_ONLY, *nox.project.dependency_groups(PYPROJECT, *groups))


def _provision(session: nox.Session, builds: list[str]) -> None:
    session.run(sys.executable, "-m", "bench.provision", *builds, external=True)


@nox.session(python=False)
def interpreters(session: nox.Session) -> None:
    """Find or build CPython 3.13, 3.13t, 3.14, 3.14t (or those named) and list them."""
    _provision(session, list(session.posargs))


for _build in [*BUILDS, *([HOST] if HOST not in BUILDS else [])]:

    def _one(session: nox.Session, build: str = _build) -> None:
        if build in BUILDS:
            _provision(session, [build])
        else:
            session.log(f"{build} is the host interpreter: nothing to provision")

    _one.__doc__ = f"find or build {_build} only"
    nox.session(name=f"interpreters-{_build}", python=False, default=False)(_one)


@nox.session(python=TEST_PYTHONS, requires=["interpreters-{python}"])
def tests(session: nox.Session) -> None:
    """Run the test suite (on this interpreter and on the free-threaded 3.14t)."""
    install_groups(session, "test")
    if session.python == HOST:
        install_groups(session, "report")
    session.run("python", "-m", "bench.buildinfo", "--import-check")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session(default=False)
def lint(session: nox.Session) -> None:
    """ruff and mypy over the project."""
    install_groups(session, "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")


def _bench(session: nox.Session, module: str, builds: list[str]) -> None:
    install_groups(session, "bench", "report")
    args = list(session.posargs)
    if builds and "--builds" not in args:
        args = ["--builds", ",".join(builds), *args]
    session.run("python", "-m", module, *args)


@nox.session
def bench(session: nox.Session) -> None:
    """HTTP scaling sweep: quick by default (3.14, 3.14t), --full for every build and mode."""
    _bench(session, "bench.http", [])


@nox.session(default=False)
def micro(session: nox.Session) -> None:
    """In-process pyperf scaling of every workload at 1..N threads (--quick for a fast pass)."""
    _bench(session, "bench.micro", [])


for _build in BUILDS:
    for _name, _module in (("bench", "bench.http"), ("micro", "bench.micro")):

        def _per_build(session: nox.Session, module: str = _module, build: str = _build) -> None:
            _bench(session, module, [build])

        _per_build.__doc__ = f"{_name} on {_build} only"
        nox.session(name=f"{_name}-{_build}", default=False)(_per_build)


@nox.session(default=False)
def report(session: nox.Session) -> None:
    """Render reports for run directories (default: every run under results/), or compare runs."""
    install_groups(session, "report")
    session.run("python", "-m", "bench.report", *session.posargs)
