"""The service under test: one FastAPI app whose work routes come from the workload registry.

``POST /work/{name}`` for every registered workload (body ``{"size": n}``, optional), validated
by a pydantic model bounded by that workload's sizes; ``POST /stream/{name}`` for every streamed
workload (server-sent events, one chunk at a time: :mod:`server.stream`); ``GET /health`` answers on the event
loop and so measures its lag; ``GET /info`` says what is running. A request's CPU work goes to
the mode's dispatcher (:mod:`server.executors`) through a bounded queue: a full queue is a 503
with ``Retry-After``, an unknown workload a 404 listing the known ones, a bad size a 422 naming
the bound, a body over the limit a 413, JSON that is not strict JSON (``NaN``, ``Infinity``,
numbers out of a double's range, nesting deeper than :data:`server.jsonguard.MAX_DEPTH`, a lone
surrogate) a 422 like any other malformed body, logged on one line. An error the app did not
expect is a 500 whose body never carries the exception's text, logged on one line without a
traceback (:class:`ContainErrors`). Every error the app answers has a JSON body, and the OpenAPI
document lists every status the service sends (including the 408 and 503 that
:mod:`server.protocol` sends for slow and surplus connections); requests that are not valid HTTP
are refused by uvicorn in its plain text.

``/health`` is 503 while a ``process`` pool is being replaced after a child died. Each serving
unit counts the work requests it computed (:mod:`server.counters`); ``/info`` reports every
unit's count, the timeouts and limits in force, and the process's event counters.

A workload with simulated upstream I/O (``io_wait_s``) awaits it on the event loop first and
then queues for the pool, as a gateway would; ``wait_ms`` counts from the end of that wait, so
it is pure queueing, and ``io_wait_ms`` reports the wait itself.

Importing this module has no side effects; :func:`create_app` builds an app, and the app's
lifespan prepares what workloads need made once (the ORM workload's database file) and starts
and stops its pool, so every event loop that serves an app owns its pool.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import logging
import math
import os
import re
import threading
import time
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any, TypeVar

from fastapi import Body, FastAPI, Path, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictInt, create_model
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ftscale import workloads
from ftscale.schema import Info
from ftscale.server import info, jsonguard
from ftscale.server.config import ServerConfig
from ftscale.server.counters import EVENTS, UnitCounts
from ftscale.server.executors import (
    Admission,
    ClientGone,
    ClientWatch,
    Dispatcher,
    Overloaded,
    PoolState,
    PoolUnavailable,
    make_dispatcher,
)
from ftscale.server.protocol import RETRY_AFTER_S
from ftscale.vocab import InfoDetail
from ftscale.workloads import Workload

# What a response to a client that has gone carries (nobody reads it: uvicorn drops it).
CLIENT_GONE_STATUS = 499

logger = logging.getLogger("ftscale.server")

_blas_lock = threading.Lock()
_blas_pinned: list[bool] = []


def prepare(table: Iterable[Workload]) -> None:
    """Make what each workload needs before its first call (a database file); at start-up."""
    for workload in table:
        if workload.prepare is not None:
            workload.prepare()


def pin_blas_once() -> None:
    """Pin BLAS to one thread, once per process however many loops start apps at once."""
    with _blas_lock:
        if not _blas_pinned:
            workloads.pin_blas_threads()
            _blas_pinned.append(True)


# -- strict JSON -----------------------------------------------------------------------------------


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


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by its text (for error bodies)."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def _whole_number(value: Any) -> Any:
    """1999.0 is the integer 1999 (JSON Schema's "integer" admits it); 1999.5 stays a float."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


WholeInt = Annotated[StrictInt, BeforeValidator(_whole_number)]


# -- what the OpenAPI document declares -------------------------------------------------------------


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


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` gets a 413, declared or streamed.

    The service's own, so that the limit and its JSON body do not depend on which FastAPI
    release an interpreter's environment resolved to.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _detail(self) -> str:
        return f"request body larger than {self.max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await JSONResponse({"detail": self._detail()}, status_code=413)(scope, receive, send)
                return
        received = 0

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI re-raises an HTTPException met while reading the body.
                    raise HTTPException(413, self._detail())
            return message

        await self.app(scope, limited, send)


def one_line(text: str, most: int = 200) -> str:
    """``text`` fit for one log line: no line breaks, at most ``most`` characters."""
    flat = " ".join(text.split())
    return flat if len(flat) <= most else flat[: most - 1] + "…"


def where(exc: BaseException) -> str:
    """The file and line an exception was raised at (its innermost frame)."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown place"
    return f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno}"


class ContainErrors:
    """ASGI middleware: an exception the app did not handle is a 500 with a fixed JSON body and one
    log line (its type, message and place), never a traceback, and never its text in the answer.

    Outside the app's other middleware and inside Starlette's ServerErrorMiddleware, which would
    log the traceback and re-raise it to the server, which would log it again. An ``OSError``
    after the response has started is a client that left or was dropped mid-response: nothing
    to answer, nothing to log.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if started and isinstance(exc, OSError):
                return
            EVENTS.add("internal_errors")
            logger.error(
                "500 %s %s: %s: %s at %s",
                scope.get("method"),
                scope.get("path"),
                type(exc).__name__,
                one_line(str(exc)),
                where(exc),
            )
            if not started:
                await JSONResponse({"detail": "internal error"}, status_code=500)(scope, receive, send)


class Service:
    """One app's pool, its admission control and the request path through them."""

    def __init__(
        self,
        config: ServerConfig,
        dispatcher: Dispatcher,
        loop_index: int | None,
        units: UnitCounts,
        unit: int,
    ) -> None:
        self.config = config
        self.dispatcher = dispatcher
        self.admission = Admission(config.effective_pool_size, config.effective_queue_limit)
        self.loop_index = loop_index
        self.units = units
        self.unit = unit

    async def work(self, workload: Workload, size: int, receive: Receive) -> dict[str, Any]:
        io_wait_ms = 0.0
        if workload.io_wait_s:
            io_started = time.monotonic()
            await asyncio.sleep(workload.io_wait_s)
            io_wait_ms = (time.monotonic() - io_started) * 1000
        arrival = time.monotonic()
        self.admission.enter()
        client = ClientWatch(receive)
        try:
            computed = await self.dispatcher.run(workload, size, client)
        finally:
            client.close()
            self.admission.leave()
        self.units.add(self.unit)  # a work request this unit computed and answers
        return {
            "workload": workload.name,
            "size": size,
            "checksum": computed.checksum,
            "compute_ms": computed.compute_s * 1000,
            "wait_ms": max(0.0, computed.started - arrival) * 1000,
            "io_wait_ms": io_wait_ms,
            "mode": str(self.config.mode),
            "pid": None if self.config.info_detail is InfoDetail.MINIMAL else os.getpid(),
        }


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


def _work_endpoint(service: Service, workload: Workload) -> Callable[..., Awaitable[Any]]:
    async def endpoint(request: Request, body: Any = None) -> Any:
        size = workload.default_size if body is None else body.size
        try:
            return await service.work(workload, size, request.receive)
        except ClientGone:
            return JSONResponse({"detail": "client gone"}, status_code=CLIENT_GONE_STATUS)

    return sized_endpoint(endpoint, service, workload, "work")


def not_one_of(names: Iterable[str]) -> str:
    """A regular expression matching any path segment except ``names`` (for the OpenAPI document:
    a known workload's name goes to its own route, never to the unknown-workload one)."""
    alternatives = "|".join(re.escape(name) for name in sorted(names))
    return f"^(?!(?:{alternatives})$)[^/]+$"


def create_app(
    config: ServerConfig,
    *,
    registry: Mapping[str, Workload] | None = None,
    loop_index: int | None = None,
    units: UnitCounts | None = None,
    unit: int = 0,
) -> FastAPI:
    """Build the service for ``config``; ``registry`` replaces the workload table (tests do).

    The pool starts with the app's lifespan (``TestClient`` as a context manager, or a server).
    ``process`` mode computes in child processes, which only know the registered workloads.
    ``units`` are every serving unit's work-request counters (this app counts in slot ``unit``);
    by default the app is the only unit.
    """
    table = dict(workloads.REGISTRY if registry is None else registry)
    units = units if units is not None else UnitCounts([str(config.topology)])
    dispatcher = make_dispatcher(config.mode, config.effective_pool_size, str(config.start_method))
    service = Service(config, dispatcher, loop_index, units, unit)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pin_blas_once()
        # The pool first: a forked process pool (--start-method fork) must start while this
        # process has one thread, before to_thread starts the loop's default executor.
        await service.dispatcher.start()
        try:
            await asyncio.to_thread(prepare, table.values())
            yield
        finally:
            await service.dispatcher.stop()

    app = FastAPI(
        title="ftscale service",
        summary=f"mode={config.mode} topology={config.topology}",
        lifespan=lifespan,
    )
    app.state.service = service
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    app.add_middleware(ContainErrors)  # added last: outside every other middleware of the app

    def busy(detail: str) -> JSONResponse:
        return JSONResponse(
            {"detail": detail, "retry_after_s": RETRY_AFTER_S},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.exception_handler(Overloaded)
    async def overloaded(request: Request, exc: Overloaded) -> JSONResponse:
        EVENTS.add("refused_busy")
        return busy(str(exc))

    @app.exception_handler(PoolUnavailable)
    async def pool_unavailable(request: Request, exc: PoolUnavailable) -> JSONResponse:
        EVENTS.add("refused_pool_down")
        return busy(str(exc))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        # FastAPI's own handler, minus a 500 when an input it echoes is not valid JSON; a body
        # that is not JSON (hostile or not) is logged on one line.
        errors = exc.errors()
        unparsed = [e for e in errors if e.get("type") == "json_invalid"]
        if unparsed:
            EVENTS.add("json_refused")
            reason = (unparsed[0].get("ctx") or {}).get("error", "not JSON")
            logger.warning("refused %s %s: 422 %s", request.method, request.url.path, one_line(str(reason)))
        return JSONResponse({"detail": _finite(jsonable_encoder(errors))}, status_code=422)

    @app.get("/health", responses={200: {"model": HealthBody}, **CONNECTION_RESPONSES})
    async def health() -> Any:
        """Liveness, answered on the event loop: its latency under load is the loop's lag.

        503 while the process pool is being replaced (a compute process died) or down.
        """
        state = service.dispatcher.state
        if state is PoolState.UP:
            return {"status": "ok"}
        return JSONResponse(
            {
                "status": str(state),
                "detail": "the process pool is not serving: a compute process died",
                "retry_after_s": RETRY_AFTER_S,
            },
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.get("/info", responses=CONNECTION_RESPONSES)
    async def get_info(request: Request) -> Info:
        """Interpreter, GIL state, server, settings, limits, counters, process and threads."""
        return info.describe(
            config,
            loop_index=loop_index,
            units=units,
            pool_state=str(service.dispatcher.state),
            max_sizes={w.name: w.size_limit(allow_large=config.allow_large_sizes) for w in table.values()},
            connection=(request.scope.get("client"), request.scope.get("server")),
        )

    for workload in table.values():
        app.router.add_api_route(
            f"/work/{workload.name}",
            _work_endpoint(service, workload),
            methods=["POST"],
            summary=workload.description,
            responses=WORK_RESPONSES,
            route_class_override=StrictJSONRoute,
        )

    @app.post(
        "/work/{workload}",
        status_code=404,
        responses={
            **CONNECTION_RESPONSES,
            404: {"model": UnknownWorkloadBody, "description": "No such workload"},
        },
    )
    async def unknown_workload(
        # Documented, not validated (pydantic's regex engine has no look-ahead), and a default
        # rather than Annotated: the annotation is a string, evaluated where `table` is unknown.
        workload: str = Path(
            description="any name but a workload's", json_schema_extra={"pattern": not_one_of(table)}
        ),
    ) -> JSONResponse:
        """Any other name: 404 with the known ones."""
        known = sorted(table)
        detail = f"unknown workload {workload!r}; known: {', '.join(known)}"
        return JSONResponse({"detail": detail, "known": known}, status_code=404)

    from ftscale.server import stream  # imported here: it builds on this module's models

    stream.add_routes(app, service, table)
    return app
