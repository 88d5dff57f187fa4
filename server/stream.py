"""Streamed workloads: ``POST /stream/{name}`` answers server-sent events, one chunk at a time.

For every workload with a :class:`~ftscale.workloads.StreamSpec` (the LLM-gateway shape), the
route takes the same body as ``/work/{name}`` (``{"size": n}``, the number of chunks) and answers
``200 text/event-stream``: before each chunk it awaits the upstream's delay on the event loop,
then computes the chunk where the mode says, the same way ``/work`` computes a whole request:

- ``inline``: in the stream's coroutine, on the event loop (which serves nothing else meanwhile);
- ``threadpool``: through Starlette's ``run_in_threadpool``, one call per chunk (what Starlette's
  ``StreamingResponse`` does with a synchronous generator: ``iterate_in_threadpool``);
- ``executor``: one task per chunk in the dedicated ``ThreadPoolExecutor``;
- ``process``: one task per chunk in the process pool (the workload's name, the size and the
  chunk's index go to the child; the chunk's bytes come back pickled).

Admission: a stream is one request in flight from its admission to its last byte (or its
client's going), in the same :class:`~ftscale.server.executors.Admission` as ``/work``; a full
service answers 503 with ``Retry-After`` before the stream starts. Streams also take one of
``--max-streams`` places (by default half the admission places), so that streams, however long
or stalled, never take every place from plain work: one more gets 503 too. With the default
queue limit (4 x pool) that bounds concurrent streams at half of 5 x pool, far fewer than a
pool can serve when each stream mostly waits: serve streams with a ``--queue-limit`` and ``--max-streams``
sized for them (the HTTP bench passes its connection count).

A stream lives at most ``--stream-timeout`` seconds, and ends at its next chunk once the service
is stopping (:mod:`server.grace`): either way its last event is ``event: error`` with a JSON
``detail`` saying why, and the response ends properly. A client that takes none of the stream's
bytes for ``--write-timeout`` seconds is dropped by the server's guard (:mod:`server.limits`
says which layer on which server), which ends the stream and frees its places.

A client that goes stops its stream: Starlette's ``StreamingResponse`` watches the connection
and cancels the stream, and a chunk that has not started is dropped (one that has started runs
to its end, its bytes discarded), as for ``/work``. A finished stream counts once in the
serving unit's work requests. The response head is sent at once; time to the first event is
the first delay plus the first chunk's queueing and compute.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

from fastapi import FastAPI, Path, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.types import Receive, Scope, Send

from ftscale.server import grace
from ftscale.server.bodies import StrictJSONRoute, sized_endpoint
from ftscale.server.counters import EVENTS
from ftscale.server.executors import (
    ClientGone,
    ClientWatch,
    Computed,
    Overloaded,
    PoolState,
    PoolUnavailable,
)
from ftscale.server.responses import CONNECTION_RESPONSES, ErrorBody, UnknownWorkloadBody, not_one_of
from ftscale.server.service import Service
from ftscale.server.wire import RETRY_AFTER_S
from ftscale.workloads import Workload


class StreamsFull(Overloaded):
    """``--max-streams`` streams are open already."""


class StreamPlaces:
    """At most ``limit`` streams at once in one app (thread-safe, as :class:`Admission` is)."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open = 0
        self._lock = threading.Lock()

    @property
    def open(self) -> int:
        return self._open

    def enter(self) -> None:
        with self._lock:
            if self._open >= self.limit:
                raise StreamsFull(f"server busy: {self._open} streams open, the limit (--max-streams)")
            self._open += 1

    def leave(self) -> None:
        with self._lock:
            self._open -= 1


class EventStream(StreamingResponse):
    """A ``text/event-stream`` response (what the OpenAPI document declares for the stream routes)."""

    media_type = "text/event-stream"


class _AdmittedStream(EventStream):
    """An event stream that gives its admission place back when it ends, however it ends."""

    def __init__(self, content: AsyncIterator[bytes], release: Callable[[], None]) -> None:
        super().__init__(content, headers={"Cache-Control": "no-cache"})
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


# One event, as OpenAPI before 3.2 has ``schema`` describe each event of a stream (schemathesis
# checks every event against it): a ``data`` field holding the chunk's JSON.
SSE_EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "One server-sent event: one chunk",
    "required": ["data"],
    "properties": {
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "the chunk, an OpenAI-style chat.completion.chunk as JSON",
        },
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer", "minimum": 0},
    },
}
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Server-sent events, one per chunk (``data: {json}``, a blank line after each)",
        "content": {"text/event-stream": {"schema": SSE_EVENT_SCHEMA}},
    },
    **CONNECTION_RESPONSES,
    400: {"model": ErrorBody, "description": "The body could not be read"},
    413: {"model": ErrorBody, "description": "Request body larger than --max-body-bytes"},
    500: {
        "model": ErrorBody,
        "description": "An internal error before the stream started (a chunk "
        "that fails ends the stream early: the body is cut off)",
    },
}


class StreamWatch(ClientWatch):
    """Whether a stream's client has gone, as the stream itself learns it.

    Starlette's ``StreamingResponse`` reads the ASGI ``receive`` to watch the connection and
    cancels the stream when the client goes, so the stream cannot read it too: ``gone`` is
    set by :meth:`leave` when the stream is cancelled, which lets the dispatcher drop a chunk
    that has not started.
    """

    def __init__(self) -> None:  # no ClientWatch.__init__: it would read ``receive``
        self.gone = asyncio.get_running_loop().create_future()

    async def left(self) -> bool:
        return self.gone.done()

    def leave(self) -> None:
        if not self.gone.done():
            self.gone.set_result(None)

    def close(self) -> None:
        self.gone.cancel()


def _retrieve(task: asyncio.Future[Computed]) -> None:
    """Take a dropped chunk's outcome (``ClientGone``), so that asyncio does not log it."""
    if not task.cancelled():
        task.exception()


async def chunk(service: Service, workload: Workload, size: int, index: int, watch: StreamWatch) -> bytes:
    """Compute chunk ``index`` where the service's mode says; a cancelled stream drops it if it can."""
    computing = asyncio.ensure_future(service.dispatcher.run(workload, size, watch, chunk=index))
    try:
        return (await asyncio.shield(computing)).data
    except asyncio.CancelledError:
        watch.leave()
        computing.add_done_callback(_retrieve)
        raise


def last_event(detail: str) -> bytes:
    """The event that ends a stream cut short (by its time limit, or by the stop)."""
    return b"event: error\ndata: " + json.dumps({"detail": detail}).encode() + b"\n\n"


async def events(
    service: Service, workload: Workload, size: int, timeout_s: float | None = None
) -> AsyncIterator[bytes]:
    """The stream's body: the upstream's delay, then one computed chunk, ``size`` times; cut
    short, with :func:`last_event`, after ``timeout_s`` or once the service is stopping."""
    spec = workload.stream
    assert spec is not None
    watch = StreamWatch()
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    try:
        for index in range(spec.chunks(size)):
            await asyncio.sleep(spec.delay_s)
            if grace.stopping():
                EVENTS.add("streams_stopped")
                yield last_event("the service is stopping")
                return
            if deadline is not None and time.monotonic() >= deadline:
                EVENTS.add("streams_timed_out")
                yield last_event(f"stream longer than {timeout_s:g} s (--stream-timeout)")
                return
            yield await chunk(service, workload, size, index, watch)
    except ClientGone:
        return
    finally:
        watch.close()
    service.units.add(service.unit)  # a stream this unit computed to its end


def _stream_endpoint(
    service: Service, workload: Workload, places: StreamPlaces
) -> Callable[..., Awaitable[Any]]:
    timeout_s = service.config.stream_timeout_s

    async def endpoint(request: Request, body: Any = None) -> Any:
        size = workload.default_size if body is None else body.size
        if service.dispatcher.state is not PoolState.UP:  # 503 now, not a stream cut short
            raise PoolUnavailable(f"the process pool is {service.dispatcher.state}: a compute process died")
        places.enter()  # StreamsFull: answered 503 below
        try:
            service.admission.enter()  # Overloaded: the app's handler answers 503
        except BaseException:
            places.leave()
            raise

        def release() -> None:
            service.admission.leave()
            places.leave()

        return _AdmittedStream(events(service, workload, size, timeout_s), release)

    return sized_endpoint(endpoint, service, workload, "stream")


def add_routes(app: FastAPI, service: Service, table: Mapping[str, Workload]) -> None:
    """``POST /stream/{name}`` for every streamed workload in ``table``, and a 404 for other names."""
    streamed = {name: w for name, w in table.items() if w.stream is not None}
    places = StreamPlaces(service.config.effective_max_streams)
    app.state.stream_places = places

    async def streams_full(request: Request, exc: Exception) -> JSONResponse:
        EVENTS.add("streams_refused")
        return JSONResponse(
            {"detail": str(exc), "retry_after_s": RETRY_AFTER_S},
            status_code=503,
            headers={"Retry-After": str(RETRY_AFTER_S)},
        )

    app.add_exception_handler(StreamsFull, streams_full)
    for workload in streamed.values():
        assert workload.stream is not None
        app.router.add_api_route(
            f"/stream/{workload.name}",
            _stream_endpoint(service, workload, places),
            methods=["POST"],
            summary=f"{workload.description} (streamed: one event per chunk, "
            f"{workload.stream.delay_s * 1000:g} ms upstream delay before each)",
            response_class=EventStream,
            responses=STREAM_RESPONSES,
            route_class_override=StrictJSONRoute,
        )

    @app.post(
        "/stream/{workload}",
        status_code=404,
        responses={
            **CONNECTION_RESPONSES,
            404: {"model": UnknownWorkloadBody, "description": "No such streamed workload"},
        },
    )
    async def unknown_stream(
        workload: str = Path(
            description="any name but a streamed workload's",
            json_schema_extra={"pattern": not_one_of(streamed)},
        ),
    ) -> JSONResponse:
        """Any other name: 404 with the streamed workloads' names."""
        known = sorted(streamed)
        detail = f"unknown streamed workload {workload!r}; streamed: {', '.join(known)}"
        return JSONResponse({"detail": detail, "known": known}, status_code=404)
