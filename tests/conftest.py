"""Shared fixtures: the free-threading marker, the Hypothesis profiles, and how ``nox -s tests``
splits the suite.

Hypothesis profiles (``pytest --hypothesis-profile NAME``): ``default`` has no deadline (a shared
2-core machine times noisily) and keeps no example database in the work tree; ``mutants`` draws
the same 25 examples on every run, so a mutant is killed or not independently of luck (and fast);
``thorough`` draws 20 times more examples, to look for counter-examples by hand.

How the suite is split (markers declared in pyproject.toml; ``host`` applied in
:func:`pytest_collection_modifyitems`): ``nox -s tests`` runs the tests in parallel (pytest-xdist, two
workers a CPU; ``--dist loadfile`` on the host, each test module on one worker, so a module's
fixtures are built once; ``--dist worksteal`` on 3.14t, whose tests are nearly all servers), then
the ``serial`` ones alone. It leaves out the ``e2e`` tests, long end-to-end runs of a command (a
bench sweep, the bundle built and run offline, environments the audit builds): ``nox -s e2e`` runs
those, on the host interpreter, and CI runs both sessions. The host interpreter's session runs every
other test; the 3.14t session leaves out what does not depend on the interpreter running it
(``host``: the orchestrator's logic, the reports, result files, builds and bundles, the docs), which
the host session has run already.

``FTSCALE_TEST_CPU=FILE`` (opt-in) appends one JSON line per test to ``FILE`` (``FILE.gwN`` under
pytest-xdist): the wall seconds of its setup, call and teardown, and the user and system CPU seconds
of the test process and of its children reaped meanwhile (a server still running when a test ends is
counted when it is reaped). A test that waits shows wall far above CPU; ``tests/cputable.py FILE*``
sums the lines per file and in all.
"""

from __future__ import annotations

import json
import os
import resource
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))
T = TypeVar("T")


def requires_free_threading(test: T) -> T:
    """Skip ``test`` on a GIL build; marked ``freethreaded``, so the 3.14t session always runs it."""
    skip = pytest.mark.skipif(not FREE_THREADED, reason="needs a free-threaded (t) build")
    return pytest.mark.freethreaded(skip(test))  # type: ignore[no-any-return]


try:
    from hypothesis import settings
except ImportError:  # the property tests skip themselves
    pass
else:
    settings.register_profile("default", deadline=None, database=None)
    settings.register_profile("mutants", settings.get_profile("default"), derandomize=True, max_examples=25)
    settings.register_profile("thorough", settings.get_profile("default"), max_examples=2000)
    settings.load_profile("default")


# Modules whose tests do not depend on the interpreter that runs them: the orchestrator's logic,
# the reports, result files, builds, bundles, packaging and the docs. Marked ``host``: the 3.14t session
# leaves them to the host interpreter's session (a test of them marked ``freethreaded`` stays).
HOST_ONLY = frozenset(
    {
        "test_app",
        "test_audit",
        "test_audit_build",
        "test_audit_rules",
        "test_bundle",
        "test_capacity",
        "test_ceiling_share",
        "test_cell_rules",
        "test_core_contracts",
        "test_docs",
        "test_engine",
        "test_errors",
        "test_findings",
        "test_headline",
        "test_house",
        "test_http_bench",
        "test_http_plan",
        "test_intervals",
        "test_judge_once",
        "test_loadgen",
        "test_loadgen_stream",
        "test_machine",
        "test_mistakes",
        "test_mix",
        "test_model_properties",
        "test_packaging",
        "test_profile",
        "test_profile_buckets",
        "test_profile_hooks",
        "test_profile_report",
        "test_provision",
        "test_report_browser",
        "test_report_charts",
        "test_report_fixtures",
        "test_report_render",
        "test_report_stats",
        "test_report_streams",
        "test_schema",
        "test_schema_run",
        "test_server_axis",
        "test_server_topologies",
        "test_stats_properties",
        "test_stream_bench",
        "test_sweep",
        "test_verdict_rules",
    }
)


@pytest.hookimpl(tryfirst=True)  # before -m selects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``host`` tests; with ``FTSCALE_EXAMPLES_FIRST`` set (``nox -s mutants``), run example
    tests before property tests.

    A mutant usually fails an example first, and mutmut stops at the first failure; property tests
    draw many examples and cost the most, so they run only for the mutants the examples miss.
    """
    for item in items:
        module = item.nodeid.split("::")[0].rpartition("/")[2].removesuffix(".py")
        if module in HOST_ONLY and item.get_closest_marker("freethreaded") is None:
            item.add_marker(pytest.mark.host)
    if os.environ.get("FTSCALE_EXAMPLES_FIRST"):
        items.sort(key=lambda item: bool(getattr(getattr(item, "obj", None), "is_hypothesis_test", False)))


def _cpu_seconds() -> tuple[float, float, float, float]:
    self, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return self.ru_utime, self.ru_stime, children.ru_utime, children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """With ``FTSCALE_TEST_CPU`` set: the CPU and wall seconds of each test (setup to teardown)."""
    target = os.environ.get("FTSCALE_TEST_CPU")
    if not target:
        yield
        return
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    before, started = _cpu_seconds(), time.monotonic()
    yield
    wall, after = time.monotonic() - started, _cpu_seconds()
    user, system, child_user, child_system = (round(a - b, 3) for a, b in zip(after, before, strict=True))
    record = {
        "test": item.nodeid,
        "wall": round(wall, 3),
        "user": user,
        "sys": system,
        "child_user": child_user,
        "child_sys": child_system,
    }
    with open(f"{target}.{worker}" if worker else target, "a") as out:
        out.write(json.dumps(record) + "\n")


def provisioned(build: str) -> bool:
    from ftscale.bench.env import provision

    return provision.linked(build) is not None


# Skipped unless 3.14t is provisioned: looked at when the test starts (pytest_runtest_setup), not when
# this file is imported, where no function of the project may run (nox -s mutants makes every
# mutated function fail, and a conftest that fails to import stops pytest before any test).
requires_314t = pytest.mark.requires_build("3.14t")


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("requires_build"):
        build = str(mark.args[0])
        if not provisioned(build):
            pytest.skip(f"{build} is not provisioned (ftscale build {build})")


@pytest.fixture(scope="session")
def gil_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose one requirement, a C extension built for 3.14t, turns the GIL back on
    (shared by the app and audit tests, so both use one environment)."""
    from ftscale.bench.env import provision
    from tests.extension import compiler, gil_project

    python = provision.linked("3.14t")
    if python is None or compiler() is None:
        pytest.skip("needs 3.14t provisioned and a C compiler")
    return gil_project(python, tmp_path_factory.mktemp("gilproject"))
