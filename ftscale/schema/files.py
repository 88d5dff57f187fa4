"""Reading result files and other processes' JSON: one loader that upgrades older formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ftscale.schema.base import SCHEMA_VERSION, ResultError
from ftscale.schema.cells import CELL, HttpCell, MicroCell


def upgrade(data: dict[str, Any], source: Path | str) -> dict[str, Any]:
    """Bring a decoded file of any known format to :data:`SCHEMA_VERSION`."""
    version = data.get("schema_version")
    if version == SCHEMA_VERSION:
        return data
    if version in (1, 2, 3):
        # Version 1 wrote the same fields untyped, versions 2 and 3 fewer of them: the models accept all.
        return {**data, "schema_version": SCHEMA_VERSION}
    raise ResultError(
        f"{source}: schema_version {version!r} is not supported (this ftscale reads 1 to {SCHEMA_VERSION})"
    )


M = TypeVar("M", bound=BaseModel)


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ResultError(f"{path}: no such file") from None
    except (OSError, ValueError) as exc:
        raise ResultError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ResultError(f"{path}: expected a JSON object")
    return data


def _one_line(exc: ValidationError) -> str:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def load_model(model: type[M], path: Path) -> M:
    """Read ``path`` as ``model``, upgrading older formats; :class:`ResultError` names the problem."""
    try:
        return model.model_validate(upgrade(read_json(path), path))
    except ValidationError as exc:
        raise ResultError(f"{path}: does not match the ftscale result schema: {_one_line(exc)}") from None


def load_cell(path: Path) -> HttpCell | MicroCell:
    try:
        return CELL.validate_python(upgrade(read_json(path), path))
    except ValidationError as exc:
        raise ResultError(f"{path}: does not match the ftscale result schema: {_one_line(exc)}") from None


def parse(model: type[M], text: str | bytes, what: str) -> M:
    """Validate JSON ``text`` that another process sent; the error names ``what`` it was."""
    try:
        return model.model_validate_json(text)
    except ValidationError as exc:
        raise ValueError(f"{what}: unexpected shape: {_one_line(exc)}") from None
