"""What the OpenAPI document declares: the service's response bodies and the statuses each route
may answer, those :mod:`server.protocol` and :mod:`server.guard` send for the connection included.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel


class ErrorBody(BaseModel):
    detail: str


class BusyBody(ErrorBody):
    retry_after_s: int


class UnknownWorkloadBody(ErrorBody):
    known: list[str]


class WorkResult(BaseModel):
    """A computed request (documented; the route returns it as a plain dict)."""

    workload: str
    size: int
    checksum: int
    compute_ms: float
    wait_ms: float
    io_wait_ms: float
    mode: str
    pid: int | None  # null with --info minimal


class HealthBody(BaseModel):
    status: str


_RETRY_AFTER_HEADER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "integer"}}}
# Statuses any route may answer: sent by server.protocol and server.guard for the connection or
# the request's framing, not by the route.
CONNECTION_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorBody,
        "description": "Content-Length with Transfer-Encoding, or no Host field or two; "
        "the connection closes",
    },
    408: {
        "model": ErrorBody,
        "description": "The request's head did not arrive within --header-timeout, or its body within "
        "--body-timeout",
    },
    431: {
        "model": ErrorBody,
        "description": "The request's head is larger than --max-head-bytes or has more than --max-headers "
        "fields; the connection closes",
    },
    503: {
        "model": BusyBody,
        "description": "Too many connections (--max-connections), the pool and its queue are full, "
        "or the process pool is being replaced; retry after Retry-After",
        "headers": _RETRY_AFTER_HEADER,
    },
}
WORK_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": WorkResult, "description": "The checksum, and where the time went"},
    **CONNECTION_RESPONSES,
    400: {"model": ErrorBody, "description": "The body could not be read"},
    413: {"model": ErrorBody, "description": "Request body larger than --max-body-bytes"},
    500: {"model": ErrorBody, "description": "The workload failed"},
}


def not_one_of(names: Iterable[str]) -> str:
    """A regular expression matching any path segment except ``names`` (for the OpenAPI document:
    a known workload's name goes to its own route, never to the unknown-workload one)."""
    alternatives = "|".join(re.escape(name) for name in sorted(names))
    return f"^(?!(?:{alternatives})$)[^/]+$"
