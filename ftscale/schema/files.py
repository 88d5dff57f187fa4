"""Reading result files and other processes' JSON: one loader that upgrades older formats."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ftscale.schema.base import SCHEMA_VERSION, ResultError
from ftscale.schema.cells import CELL, FLAT_LOAD_FIELDS, HttpCell, MicroCell


def upgrade(data: dict[str, Any], source: Path | str) -> dict[str, Any]:
    """Bring a decoded file of any known format to :data:`SCHEMA_VERSION`."""
    version = data.get("schema_version")
    if version == SCHEMA_VERSION:
        return data
    if version in (1, 2, 3, 4):
        # Version 1 wrote the same fields untyped, versions 2 to 4 fewer of them: the models accept
        # all once an HTTP cell's repetitions have their load generator's fields nested (format 5).
        if data.get("kind") == "http":
            data = {
                key: nest_flat_loads(value) if key in ("repetitions", "disturbed") else value
                for key, value in data.items()
            }
        return {**data, "schema_version": SCHEMA_VERSION}
    raise ResultError(
        f"{source}: schema_version {version!r} is not supported (this ftscale reads 1 to {SCHEMA_VERSION})"
    )


def nest_flat_loads(repetitions: Any) -> Any:
    """Repetitions of formats 1 to 4, their load generator's flat fields under ``load``."""
    if not isinstance(repetitions, list):
        return repetitions  # not a list: the model names the problem
    nested = []
    for rep in repetitions:
        if isinstance(rep, dict) and "load" not in rep:
            load = {key: rep[key] for key in FLAT_LOAD_FIELDS if key in rep}
            load.setdefault("generator", None)  # before format 3 a repetition did not say
            rep = {key: value for key, value in rep.items() if key not in FLAT_LOAD_FIELDS}
            rep["load"] = load
        nested.append(rep)
    return nested


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
