"""The base of every model, the format version and the error a bad result file raises."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ftscale.errors import UsageError

# The format history is in this package's docstring (ftscale/schema/__init__.py).
SCHEMA_VERSION = 5


class ResultError(UsageError):
    """A result file or run directory that cannot be read (bad input); the message names the file."""


class Model(BaseModel):
    """Frozen, and strict about unknown fields: a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)
