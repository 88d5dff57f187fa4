"""What a work or stream route reads: strict JSON bodies and a workload's size.

:class:`StrictJSONRoute` parses a body with :func:`strict_json_loads`, which refuses what is not
JSON (``NaN``, ``Infinity``, numbers out of a double's range, nesting too deep, a lone surrogate:
:mod:`server.jsonguard`) as FastAPI's ordinary 422. :func:`sized_endpoint` gives an endpoint the
signature FastAPI reads: an optional body ``{"size": n}`` bounded by the workload's sizes
(:func:`request_model`).
"""

from __future__ import annotations

import inspect
import json
import math
from collections.abc import Awaitable, Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import Body, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, create_model

from ftscale.server import jsonguard
from ftscale.server.service import Service
from ftscale.workloads import Workload


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def strict_json_loads(body: bytes) -> Any:
    """``json.loads`` that refuses ``NaN``, ``Infinity``, numbers beyond a double's range, arrays
    and objects nested deeper than :data:`~server.jsonguard.MAX_DEPTH` and strings holding a lone
    surrogate (:mod:`server.jsonguard`).

    Python's json accepts all but the nesting (a RecursionError), but they are not JSON, or not
    text, and nothing can render them back, so FastAPI's own 422 for them would fail to
    serialise (a 500). Raised as a JSONDecodeError, which FastAPI turns into its ordinary
    ``json_invalid`` 422.
    """
    try:
        jsonguard.check_depth(body)
        value = json.loads(body, parse_constant=_reject_constant, parse_float=_finite_float)
        jsonguard.check_text(value)
        return value
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        raise json.JSONDecodeError(str(exc), body.decode("utf-8", "replace"), 0) from None


class StrictJSONRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = strict_json_loads(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """An APIRoute whose body is parsed by :func:`strict_json_loads` (FastAPI's documented hook)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict_handler(request: Request) -> Response:
            return await handler(StrictJSONRequest(request.scope, request.receive))

        return strict_handler


def finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its text (for error bodies)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def _whole_number(value: Any) -> Any:
    """1999.0 is the integer 1999 (JSON Schema's "integer" admits it); 1999.5 stays a float."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeInt = Annotated[StrictInt, BeforeValidator(_whole_number)]


def request_model(workload: Workload, *, allow_large: bool = False) -> type[BaseModel]:
    """The body model for ``workload``: an optional integer size within its bounds.

    An integer, or a float with no fractional part (``1999.0``: JSON Schema's "integer"
    admits it); not a string, a boolean or ``1999.5``.
    """
    title = "".join(part.capitalize() for part in workload.name.split("_")) + "Request"
    return create_model(
        title,
        __config__=ConfigDict(extra="forbid"),
        size=(
            WholeInt,
            Field(
                default=workload.default_size,
                ge=workload.min_size,
                le=workload.size_limit(allow_large=allow_large),
                description=workload.size_meaning,
            ),
        ),
    )


E = TypeVar("E", bound=Callable[..., Awaitable[Any]])


def sized_endpoint(endpoint: E, service: Service, workload: Workload, prefix: str) -> E:
    """``endpoint(request, body=None)`` as FastAPI reads it: ``body`` an optional size of ``workload``.

    The body's type is built at run time (its bounds are the workload's), so the signature
    FastAPI reads is built too.
    """
    model = request_model(workload, allow_large=service.config.allow_large_sizes)
    body_type = Annotated[model | None, Body()]  # type: ignore[valid-type]
    params = [
        inspect.Parameter("request", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=Request),
        inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=body_type),
    ]
    endpoint.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    endpoint.__name__ = f"{prefix}_{workload.name}"
    endpoint.__doc__ = f"{workload.description} Size: {workload.size_meaning}."
    return endpoint
