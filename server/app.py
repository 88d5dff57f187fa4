"""The service under test: one FastAPI app whose work routes come from the workload registry.

``POST /work/{name}`` for every registered workload (body ``{"size": n}``, optional), validated
by a pydantic model bounded by that workload's sizes; ``GET /health`` answers on the event
loop and so measures its lag; ``GET /info`` says what is running. A request's CPU work goes to
the mode's dispatcher (:mod:`server.executors`) through a bounded queue: a full queue is a 503
with ``Retry-After``, an unknown workload a 404 listing the known ones, a bad size a 422 naming
the bound, a body over the limit a 413. Every error the app answers has a JSON body; requests
that are not valid HTTP are refused by uvicorn before they reach the app, in its plain text.

A workload with simulated upstream I/O (``io_wait_s``) awaits it on the event loop first and
then queues for the pool, as a gateway would; ``wait_ms`` counts from the end of that wait, so
it is pure queueing, and ``io_wait_ms`` reports the wait itself.

Importing this module has no side effects; :func:`create_app` builds an app, and the app's
lifespan starts and stops its pool, so every event loop that serves an app owns its pool.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Body, FastAPI, Request
from fastapi.responses import JSONResponse
from ftscale.server import info
from ftscale.server.config import ServerConfig
from ftscale.server.executors import Admission, Dispatcher, Overloaded, make_dispatcher
from ftscale.workloads import Workload
from pydantic import BaseModel, ConfigDict, Field, StrictInt, create_model
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ftscale import workloads
from ftscale.schema import Info

RETRY_AFTER_S = 1

_blas_lock = threading.Lock()
_blas_pinned: list[bool] = []


def pin_blas_once() -> None:
    """Pin BLAS to one thread, once per process however many loops start apps at once."""
    with _blas_lock:
        if not _blas_pinned:
            workloads.pin_blas_threads()
            _blas_pinned.append(True)


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


class Service:
    """One app's pool, its admission control and the request path through them."""

    def __init__(self, config: ServerConfig, dispatcher: Dispatcher, loop_index: int | None) -> None:
        self.config = config
        self.dispatcher = dispatcher
        self.admission = Admission(config.effective_pool_size, config.effective_queue_limit)
        self.loop_index = loop_index

    async def work(self, workload: Workload, size: int) -> dict[str, Any]:
        io_wait_ms = 0.0
        if workload.io_wait_s:
            io_started = time.monotonic()
            await asyncio.sleep(workload.io_wait_s)
            io_wait_ms = (time.monotonic() - io_started) * 1000
        arrival = time.monotonic()
        self.admission.enter()
        try:
            computed = await self.dispatcher.run(workload, size)
        finally:
            self.admission.leave()
        return {
            "workload": workload.name,
            "size": size,
            "checksum": computed.checksum,
            "compute_ms": computed.compute_s * 1000,
            "wait_ms": max(0.0, computed.started - arrival) * 1000,
            "io_wait_ms": io_wait_ms,
            "mode": str(self.config.mode),
            "pid": os.getpid(),
        }


def request_model(workload: Workload) -> type[BaseModel]:
    """The body model for ``workload``: an optional strict integer size within its bounds."""
    title = "".join(part.capitalize() for part in workload.name.split("_")) + "Request"
    return create_model(
        title,
        __config__=ConfigDict(extra="forbid"),
        size=(
            StrictInt,
            Field(
                default=workload.default_size,
                ge=workload.min_size,
                le=workload.max_size,
                description=workload.size_meaning,
            ),
        ),
    )


def _work_endpoint(service: Service, workload: Workload) -> Callable[..., Awaitable[dict[str, Any]]]:
    model = request_model(workload)

    async def endpoint(body: Any = None) -> dict[str, Any]:
        size = workload.default_size if body is None else body.size
        return await service.work(workload, size)

    # The body's type is built at run time, so the signature FastAPI reads is built too.
    body_type = Annotated[model | None, Body()]  # type: ignore[valid-type]
    param = inspect.Parameter("body", inspect.Parameter.KEYWORD_ONLY, default=None, annotation=body_type)
    endpoint.__signature__ = inspect.Signature([param])  # type: ignore[attr-defined]
    endpoint.__name__ = f"work_{workload.name}"
    endpoint.__doc__ = f"{workload.description} Size: {workload.size_meaning}."
    return endpoint


def create_app(
    config: ServerConfig,
    *,
    registry: Mapping[str, Workload] | None = None,
    loop_index: int | None = None,
) -> FastAPI:
    """Build the service for ``config``; ``registry`` replaces the workload table (tests do).

    The pool starts with the app's lifespan (``TestClient`` as a context manager, or a server).
    ``process`` mode computes in child processes, which only know the registered workloads.
    """
    table = dict(workloads.REGISTRY if registry is None else registry)
    service = Service(config, make_dispatcher(config.mode, config.effective_pool_size), loop_index)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pin_blas_once()
        await service.dispatcher.start()
        try:
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

    @app.exception_handler(Overloaded)
    async def overloaded(request: Request, exc: Overloaded) -> JSONResponse:
        return JSONResponse(
            {"detail": str(exc), "retry_after_s": RETRY_AFTER_S},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"detail": f"internal error: {type(exc).__name__}: {exc}"}, status_code=500)

    @app.get("/health")
    async def health() -> dict[str, str]:
        """Liveness, answered on the event loop: its latency under load is the loop's lag."""
        return {"status": "ok"}

    @app.get("/info")
    async def get_info() -> Info:
        """Interpreter, GIL state, settings, process and threads."""
        return info.describe(config, loop_index=loop_index)

    for workload in table.values():
        app.add_api_route(
            f"/work/{workload.name}",
            _work_endpoint(service, workload),
            methods=["POST"],
            summary=workload.description,
        )

    @app.post("/work/{workload}", status_code=404)
    async def unknown_workload(workload: str) -> JSONResponse:
        """Any other name: 404 with the known ones."""
        known = sorted(table)
        detail = f"unknown workload {workload!r}; known: {', '.join(known)}"
        return JSONResponse({"detail": detail, "known": known}, status_code=404)

    return app
