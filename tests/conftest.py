"""Shared fixtures: the free-threading marker and a scratch results directory."""

from __future__ import annotations

import sysconfig
from pathlib import Path

import pytest

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))

requires_free_threading = pytest.mark.skipif(not FREE_THREADED, reason="needs a free-threaded (t) build")


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
