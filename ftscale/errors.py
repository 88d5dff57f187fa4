"""The errors every command reports the same way (see :mod:`ftscale.cli`)."""

from __future__ import annotations


class UsageError(Exception):
    """Bad input from the user: one line on stderr, exit status 2, nothing written."""


class SetupError(Exception):
    """The machine or an environment cannot do what was asked (a build, a package, a tool):
    one line on stderr, exit status 1."""
