"""Shared fixtures: the free-threading marker and a scratch results directory."""

from __future__ import annotations

import sysconfig

import pytest

FREE_THREADED = bool(sysconfig.get_config_var("Py_GIL_DISABLED"))

requires_free_threading = pytest.mark.skipif(not FREE_THREADED, reason="needs a free-threaded (t) build")
