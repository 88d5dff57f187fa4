"""The service's ASGI middleware: a body over the limit is a 413 (:class:`BodyLimit`); an exception
the app did not handle is a 500 and one log line (:class:`ContainErrors`).
"""

from __future__ import annotations

import logging
import os
import traceback

from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ftscale.server.counters import EVENTS

logger = logging.getLogger("ftscale.server")


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
