"""ftscale's sessions: thin callers of the ``ftscale`` command.

    nox -s bench            quick HTTP scaling sweep, then its report  (ftscale bench)
    nox -s tests            the test suite but its e2e tests, in parallel, here and on 3.14t
    nox -s e2e              the long end-to-end tests (bench sweeps, bundle, audit builds); CI runs both
    nox -s schema           schemathesis against the live service (minutes), on both
    nox -s soak             a soak of the service on 3.14t (60 s a design); figures to results/soak/
    nox -s micro -- --quick in-process pyperf scaling of every workload (ftscale micro)
    nox -s app -- M:A ...   your own ASGI app through the same sweep (ftscale app)
    nox -s audit -- -r F    your requirements on free-threaded builds (ftscale audit)
    nox -s interpreters     find or build CPython 3.13, 3.13t, 3.14, 3.14t (ftscale build)
    nox -s mutants          mutation testing of the numeric and decision core (tools/mutants.py;
                            not part of CI)

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


def _module_at(path: Path | str, name: str) -> ModuleType:
    """A module of this tree by path (``bench/env/provision.py``: standard library only;
    ``tools/mutants.py``: nox): it runs in nox's own interpreter, where ftscale is not installed."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


provision = _module_at(PROVISION, "ftscale_provision")
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


# What each test session selects (markers: pyproject.toml; applied in tests/conftest.py). The host
# interpreter's session runs every test but the long end-to-end ones (``e2e``: nox -s e2e); the
# 3.14t session what depends on the interpreter running it: the service, the servers, workloads,
# workers, the GIL, and every test marked freethreaded.
TESTS_ON_HOST = "not schemathesis and not e2e"
TESTS_ON_FREE_THREADED = "not schemathesis and not e2e and (freethreaded or not host)"
END_TO_END = "not schemathesis and e2e"
NO_TESTS_SELECTED = 5  # pytest's exit status when a selection is empty


@nox.session(python=TEST_PYTHONS, requires=["interpreters-{python}"])
def tests(session: nox.Session) -> None:
    """The test suite but its e2e tests (nox -s e2e), here and (what depends on it) on 3.14t.

    In parallel (pytest-xdist), then the tests marked serial alone, each part with its 15 slowest
    tests. Arguments replace all that: ``-- tests/test_x.py -x`` runs those, as pytest is told
    (add ``-n auto`` for workers).
    """
    install(
        session,
        "bench,report,server,servers,worker,numpy"
        if session.python == HOST
        else "bench,server,servers,worker,numpy",
        "test",
    )
    session.run("python", "-m", "ftscale.buildfacts", "--import-check")
    if session.posargs:
        session.run("python", "-m", "pytest", *session.posargs)
        return
    if session.python == HOST:
        # Each module stays on one worker, so that its fixtures (the sdists, the rendered reports)
        # are built once.
        _parallel_then_serial(session, TESTS_ON_HOST, "loadfile")
    else:
        # Nearly all servers with cheap module fixtures: dealt out in runs, stolen by idle workers.
        # (xdist's loadgroup does not group under pytest 9.)
        _parallel_then_serial(session, TESTS_ON_FREE_THREADED, "worksteal")


@nox.session(python=HOST, requires=["interpreters-3.14", "interpreters-3.14t"])
def e2e(session: nox.Session) -> None:
    """The long end-to-end tests: bench sweeps, the headline bundle built and run offline from its
    parts, environments the audit and app build, on the builds they use (3.14 and 3.14t, which a
    missing one would skip). ``nox -s tests`` leaves them out; CI runs both."""
    install(session, "bench,report,server,servers,worker,numpy", "test")
    session.run("python", "-m", "ftscale.buildfacts", "--import-check")
    if session.posargs:  # as in nox -s tests: pytest as told (say -m e2e to keep to these)
        session.run("python", "-m", "pytest", *session.posargs)
        return
    _parallel_then_serial(session, END_TO_END, "loadfile", per_cpu=1)


def _parallel_then_serial(session: nox.Session, selection: str, dist: str, per_cpu: int = 2) -> None:
    """``selection``'s tests on ``per_cpu`` xdist workers a CPU (``dist``: how xdist deals them
    out), then its serial ones alone; each part prints its 15 slowest tests.

    Two a CPU for nox -s tests: the server tests mostly wait (on timeouts, stalled clients, servers
    starting), and the tests that need the CPUs to themselves are marked serial. On the 2-core
    machine that cut the host part from 205-216 s to 170 s and the 3.14t part from 140-153 s to
    109 s. One for nox -s e2e, whose builds and bench runs compute.
    """
    ok = [0, NO_TESTS_SELECTED]
    workers = str(per_cpu * len(os.sched_getaffinity(0)))
    parallel = ("-n", workers, "--dist", dist, "-m", f"({selection}) and not serial")
    session.run("python", "-m", "pytest", *parallel, "--durations=15", success_codes=ok)
    serial = ("-p", "no:xdist", "-m", f"({selection}) and serial")
    session.run("python", "-m", "pytest", *serial, "--durations=15", success_codes=ok)


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


@nox.session(python="3.14t", requires=["interpreters-3.14t"], default=False)
def soak(session: nox.Session) -> None:
    """Good, bad and idle clients against 3.14t's designs (60 s each); figures to results/soak/."""
    install(session, "server")
    session.run("python", "-m", "tools.soak", *session.posargs)


@nox.session(default=False)
def lint(session: nox.Session) -> None:
    """ruff, mypy and the import contracts (lint-imports) over the project."""
    install(session, "all,worker", "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # mypy and import-linter do not follow the editable install's import hook: they check a tree of
    # links laid out as the installed package is (ftscale/ with bench/, server/, workloads/ inside it).
    root = Path(__file__).parent.resolve()
    stage = Path(session.create_tmp()).resolve() / "typecheck"
    package = stage / "ftscale"
    package.mkdir(parents=True, exist_ok=True)
    for old in package.iterdir():  # links made by an earlier run (to a module since moved or gone)
        old.unlink()
    links = {p.name: p for p in (root / "ftscale").iterdir() if p.suffix in (".py", ".typed") or _package(p)}
    links.update({name: root / name for name in ("bench", "server", "workloads")})
    for name, target in links.items():
        (package / name).symlink_to(target)
    config = str(root / "pyproject.toml")
    with session.chdir(stage):
        session.run("mypy", "--config-file", config, "-p", "ftscale")
        # the contracts are in pyproject.toml; the staged tree comes first on sys.path from here
        session.run("lint-imports", "--no-cache", config, env={"PYTHONPATH": str(stage)})
    session.run("mypy", "--config-file", config, "noxfile.py", "tools")


def _package(path: Path) -> bool:
    return path.is_dir() and (path / "__init__.py").exists()


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


# --- mutation testing (tools/mutants.py) -----------------------------------------------------------
mutants_tool = _module_at(Path(__file__).parent / "tools" / "mutants.py", "ftscale_mutants")


@nox.session(default=False, python=HOST)
def mutants(session: nox.Session) -> None:
    """Mutation testing of the decision core: hand-written mutants, then mutmut's (survivors.md).

    ``-- --hand [NAME ...]`` runs the hand-written mutants of tests/mutants/hand/ only (or those
    named); ``-- --report`` rewrites survivors.md from the last mutmut run (after editing
    equivalent.toml). Other arguments go to ``mutmut run``.
    """
    install(session, "bench,report,server,worker", "test", "mutants")
    mutants_tool.run(session)
