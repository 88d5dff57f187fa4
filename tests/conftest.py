"""Shared fixtures: the free-threading marker, and the Hypothesis profiles.

Hypothesis profiles (``pytest --hypothesis-profile NAME``): ``default`` has no deadline (a shared
2-core machine times noisily) and keeps no example database in the work tree; ``mutants`` draws
the same 25 examples on every run, so a mutant is killed or not independently of luck (and fast);
``thorough`` draws 20 times more examples, to look for counter-examples by hand.
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path

import pytest

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))

requires_free_threading = pytest.mark.skipif(not FREE_THREADED, reason="needs a free-threaded (t) build")

try:
    from hypothesis import settings
except ImportError:  # the property tests skip themselves
    pass
else:
    settings.register_profile("default", deadline=None, database=None)
    settings.register_profile("mutants", settings.get_profile("default"), derandomize=True, max_examples=25)
    settings.register_profile("thorough", settings.get_profile("default"), max_examples=2000)
    settings.load_profile("default")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """With ``FTSCALE_EXAMPLES_FIRST`` set (``nox -s mutants``), example tests run before property tests.

    A mutant usually fails an example first, and mutmut stops at the first failure; property tests
    draw many examples and cost the most, so they run only for the mutants the examples miss.
    """
    if os.environ.get("FTSCALE_EXAMPLES_FIRST"):
        items.sort(key=lambda item: bool(getattr(getattr(item, "obj", None), "is_hypothesis_test", False)))


def provisioned(build: str) -> bool:
    from ftscale.bench.env import provision

    return provision.linked(build) is not None


requires_314t = pytest.mark.skipif(
    not provisioned("3.14t"), reason="3.14t is not provisioned (ftscale build 3.14t)"
)


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
