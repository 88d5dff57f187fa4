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
traceback (:class:`server.middleware.ContainErrors`). Every error the app answers has a JSON
body, and the OpenAPI document lists every status the service sends (including the 408 and 503 that
:mod:`server.protocol` sends for slow and surplus connections); requests that are not valid HTTP
are refused by uvicorn in its plain text.

``/health`` is 503 while a ``process`` pool is being replaced after a child died. Each serving
unit counts the work requests it computed (:mod:`server.counters`); ``/info`` reports every
unit's count, the timeouts and limits in force, and the process's event counters.

A workload with simulated upstream I/O (``io_wait_s``) awaits it on the event loop first and
then queues for the pool, as a gateway would; ``wait_ms`` counts from the end of that wait, so
it is pure queueing, and ``io_wait_ms`` reports the wait itself.

The request path lives beside it: bodies (:mod:`server.bodies`), response models
(:mod:`server.responses`), middleware (:mod:`server.middleware`) and the pool's admission
(:mod:`server.service`).

Importing this module has no side effects; :func:`create_app` builds an app, and the app's
lifespan prepares what workloads need made once (the ORM workload's database file) and starts
and stops its pool, so every event loop that serves an app owns its pool.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Mapping
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Path, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from ftscale import workloads
from ftscale.schema import Info
from ftscale.server import info, stream
from ftscale.server.bodies import StrictJSONRoute, finite, sized_endpoint, strict_json_loads
from ftscale.server.config import ServerConfig
from ftscale.server.counters import EVENTS, UnitCounts
from ftscale.server.executors import (
    ClientGone,
    Overloaded,
    PoolState,
    PoolUnavailable,
    make_dispatcher,
)
from ftscale.server.middleware import BodyLimit, ContainErrors, one_line
from ftscale.server.responses import (
    CONNECTION_RESPONSES,
    WORK_RESPONSES,
    HealthBody,
    UnknownWorkloadBody,
    not_one_of,
)
from ftscale.server.service import Service
from ftscale.server.wire import RETRY_AFTER_S
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


def _work_endpoint(service: Service, workload: Workload) -> Callable[..., Awaitable[Any]]:
    async def endpoint(request: Request, body: Any = None) -> Any:
        size = workload.default_size if body is None else body.size
        try:
            return await service.work(workload, size, request.receive)
        except ClientGone:
            return JSONResponse({"detail": "client gone"}, status_code=CLIENT_GONE_STATUS)

    return sized_endpoint(endpoint, service, workload, "work")


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
        return JSONResponse({"detail": finite(jsonable_encoder(errors))}, status_code=422)

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

    stream.add_routes(app, service, table)
    return app


# Other modules and tests import these from here, as before the request path was split out.
__all__ = ["create_app", "strict_json_loads"]
