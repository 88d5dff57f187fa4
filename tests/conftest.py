"""Shared fixtures: the free-threading marker, and the Hypothesis profiles.

Hypothesis profiles (``pytest --hypothesis-profile NAME``): ``default`` has no deadline (a shared
2-core machine times noisily) and keeps no example database in the work tree; ``mutants`` draws
the same 25 examples on every run, so a mutant is killed or not independently of luck (and fast);
``thorough`` draws 20 times more examples, to look for counter-examples by hand.
"""

from __future__ import annotations

import os
import sysconfig

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
