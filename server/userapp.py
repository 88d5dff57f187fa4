"""A user's own ASGI app served by ftscale (``ftscale serve --app MODULE:ATTR``), untouched.

:func:`load_app` imports the app the way uvicorn does (``MODULE:ATTR``, ``--app-dir`` first on
the import path) and watches the GIL while it does: on a free-threaded build, importing an
extension module that does not declare free-threading support turns the GIL back on, and
CPython says so in a RuntimeWarning naming that module. The warning is captured (other warnings
are passed on), so the module is known by name, not guessed.

:class:`AppWrapper` is what each serving unit runs: the app itself for every request, except
under the reserved prefix :data:`~ftscale.vocab.APP_PREFIX`, where it answers ftscale's own
``/health`` (on the event loop, so its latency under load is the loop's lag) and ``/info``
(the service's :class:`~ftscale.schema.Info`, with the GIL state after the import and the
module that re-enabled it). It counts the requests the app answered per serving unit, sizes
anyio's thread limiter (FastAPI's ``def`` endpoints) to the pool size on every loop, and runs
the app's lifespan, answering for an app that has none. It adds no middleware to the app and
changes none of its routes; the app's own limits, errors and logging stay as they are. Routes
of the app under the prefix are never reached: serving warns of them once, at start
(:func:`warn_reserved`).

Limits: in the ``loops`` topology the loops share one app object (one import per process,
as threads share modules), so its lifespan runs once per loop on that object. An app that
needs a factory call must make its app at import (``app = create_app()``).

``python -m ftscale.server.userapp MODULE:ATTR [--app-dir DIR]`` imports the app in a fresh
process and prints an :class:`~ftscale.schema.AppCheck` as JSON: how ``ftscale app`` and
``ftscale audit`` check an app in each build's environment before serving it. Nothing here
imports a web framework: an app needs only its own dependencies and uvicorn.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import os
import sys
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from ftscale import buildfacts
from ftscale.vocab import APP_PREFIX

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

HEALTH_PATH = f"{APP_PREFIX}/health"
INFO_PATH = f"{APP_PREFIX}/info"

logger = logging.getLogger("ftscale.server")


class AppLoadError(Exception):
    """The app cannot be served: the module does not import, or the attribute is not an ASGI app."""


@dataclass(frozen=True)
class LoadedApp:
    spec: str
    app: Any
    kind: str  # the app's type name: FastAPI, Starlette, function ...
    gil_enabled: bool  # right after the import
    gil_reenabled_by: str | None  # the module CPython named, or how the GIL was on before
    gil_warning: str | None  # CPython's warning, as it said it
    modules: tuple[str, ...]  # top-level modules outside the standard library that the import loaded


def split_spec(spec: str) -> tuple[str, str]:
    """``"pkg.module:attr.sub"`` -> ``("pkg.module", "attr.sub")``; :class:`AppLoadError` otherwise."""
    module, sep, attr = spec.partition(":")
    names = [*module.split("."), *attr.split(".")]
    if not sep or not all(n.isidentifier() for n in names):
        raise AppLoadError(f"app {spec!r}: want MODULE:ATTR, e.g. myservice.main:app")
    return module, attr


def _is_asgi3(app: Any) -> bool:
    """An ASGI 3 app: an ``async def`` taking (scope, receive, send), or an object whose call is one."""
    if inspect.isclass(app):
        return False
    call = app if inspect.isfunction(app) or inspect.ismethod(app) else getattr(app, "__call__", None)  # noqa: B004
    return call is not None and inspect.iscoroutinefunction(call)


def _gil_on_before() -> str:
    """Why the GIL was already on when the app's import began (a free-threaded build)."""
    if os.environ.get("PYTHON_GIL") == "1" or str(sys._xoptions.get("gil")) == "1":
        return "PYTHON_GIL=1 (or -X gil=1): the GIL was on from the start"
    return "a module imported before the app (the GIL was already on)"


def _import(spec: str, module_name: str) -> tuple[Any, str | None, str | None]:
    """Import ``module_name``, capturing CPython's GIL warning; (module, culprit, warning text)."""
    try:
        return buildfacts.import_watching_gil(module_name)
    except Exception as exc:
        raise AppLoadError(
            f"app {spec!r}: module {module_name!r} does not import: {type(exc).__name__}: {exc}"
        ) from None


_loaded: dict[tuple[str, str | None], LoadedApp] = {}
_load_lock = threading.Lock()


def load_app(spec: str, app_dir: str | None = None) -> LoadedApp:
    """Import the app ``spec`` (once per process) and what the import did to the GIL."""
    key = (spec, app_dir)
    with _load_lock:
        if key in _loaded:
            return _loaded[key]
        module_name, attr = split_spec(spec)
        if app_dir is not None:
            folder = os.path.abspath(app_dir)
            if not os.path.isdir(folder):
                raise AppLoadError(f"--app-dir {app_dir}: not a directory")
            if folder not in sys.path:
                sys.path.insert(0, folder)
        modules_before = set(sys.modules)
        gil_before = buildfacts.gil_enabled()
        module, culprit, message = _import(spec, module_name)
        app: Any = module
        for part in attr.split("."):
            try:
                app = getattr(app, part)
            except AttributeError:
                raise AppLoadError(
                    f"app {spec!r}: module {module_name!r} has no attribute {attr!r}"
                ) from None
        kind = type(app).__name__
        if not _is_asgi3(app):
            hint = ""
            if inspect.isclass(app):
                hint = " (a class, not an app made from it)"
            elif callable(app):
                hint = " (an app factory? make the app at import: app = create_app())"
            raise AppLoadError(f"app {spec!r} is not an ASGI app (its type is {kind}){hint}")
        gil_now = buildfacts.gil_enabled()
        free_threaded = buildfacts.describe()["py_gil_disabled"]
        if free_threaded and gil_now and culprit is None:
            culprit = _gil_on_before() if gil_before else "an import that issued no warning"
        stdlib = sys.stdlib_module_names
        loaded = sorted({m.split(".")[0] for m in set(sys.modules) - modules_before} - stdlib - {"ftscale"})
        found = LoadedApp(
            spec=spec,
            app=app,
            kind=kind,
            gil_enabled=gil_now,
            gil_reenabled_by=culprit if gil_now else None,
            gil_warning=message,
            modules=tuple(loaded),
        )
        _loaded[key] = found
        return found


# --- serving ---------------------------------------------------------------------------------------


async def _json(send: Send, status: int, body: Any) -> None:
    data = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": data})


class AppWrapper:
    """One serving unit's view of the user's app: ftscale's routes under the prefix, the app elsewhere."""

    def __init__(
        self,
        loaded: LoadedApp,
        config: Any,  # ServerConfig (imported lazily: the check command needs none of the server)
        *,
        loop_index: int | None = None,
        units: Any = None,  # UnitCounts
        unit: int = 0,
    ) -> None:
        from ftscale.server.counters import UnitCounts

        self.loaded, self.app, self.config = loaded, loaded.app, config
        self.loop_index = loop_index
        self.units = units if units is not None else UnitCounts([str(config.topology)])
        self.unit = unit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        path = scope.get("path", "")
        if scope["type"] == "http" and (path == APP_PREFIX or path.startswith(APP_PREFIX + "/")):
            await self._own(scope, send)
            return
        await self.app(scope, receive, send)
        if scope["type"] == "http":
            self.units.add(self.unit)  # a request the app answered (not ftscale's own routes)

    async def _own(self, scope: Scope, send: Send) -> None:
        if scope["method"] not in ("GET", "HEAD"):
            await _json(send, 405, {"detail": f"{scope['path']} answers GET only"})
        elif scope["path"] == HEALTH_PATH:
            await _json(send, 200, {"status": "ok"})
        elif scope["path"] == INFO_PATH:
            await _json(send, 200, self.info(scope).model_dump(mode="json"))
        else:
            known = f"{HEALTH_PATH}, {INFO_PATH}"
            await _json(send, 404, {"detail": f"{APP_PREFIX} is reserved for ftscale; known: {known}"})

    def info(self, scope: Scope | None = None) -> Any:
        from ftscale.server import info

        connection = (scope.get("client"), scope.get("server")) if scope is not None else None
        return info.describe(
            self.config,
            loop_index=self.loop_index,
            units=self.units,
            app=self.loaded.spec,
            gil_reenabled_by=self.loaded.gil_reenabled_by,
            connection=connection,
        )

    def _size_thread_limiter(self) -> None:
        """anyio's default limiter (FastAPI's ``def`` endpoints) gets ``pool_size`` tokens on this loop."""
        try:
            import anyio.to_thread
        except ImportError:  # an app without anyio has no thread pool of Starlette's to size
            return
        anyio.to_thread.current_default_thread_limiter().total_tokens = self.config.effective_pool_size

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        """The app's lifespan; for an app that has none, ftscale answers the lifespan messages."""
        self._size_thread_limiter()
        received: list[str] = []
        started = False

        async def watch_receive() -> Message:
            message = await receive()
            received.append(message["type"])
            return message

        async def watch_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "lifespan.startup.complete"
            await send(message)

        try:
            await self.app(scope, watch_receive, watch_send)
            return
        except Exception:
            if started or received:  # the app speaks lifespan and failed in it: uvicorn reports it
                raise
        # The app raised before reading a lifespan message: it has no lifespan; answer for it.
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return


def reserved_routes(app: Any) -> list[str]:
    """The paths of ``app``'s routes under :data:`~ftscale.vocab.APP_PREFIX` (ftscale answers that
    prefix itself, so they are never reached). Found for apps that list their routes (FastAPI,
    Starlette: ``app.routes``; a mount counts by its own path); a bare ASGI callable shows none."""
    routes = getattr(app, "routes", None)
    if routes is None:
        routes = getattr(getattr(app, "router", None), "routes", None)
    found = []
    for route in routes or ():
        path = getattr(route, "path", None)
        if isinstance(path, str) and (path == APP_PREFIX or path.startswith(APP_PREFIX + "/")):
            found.append(path)
    return found


_warned: set[str] = set()


def warn_reserved(loaded: LoadedApp) -> None:
    """Warn once per process (on stderr, through logging) of the app's routes ftscale hides."""
    if loaded.spec in _warned:
        return
    _warned.add(loaded.spec)
    hidden = reserved_routes(loaded.app)
    if hidden:
        logger.warning(
            "app %s has %d route(s) under %s, which ftscale answers itself; they will never be reached: %s",
            loaded.spec,
            len(hidden),
            APP_PREFIX,
            ", ".join(sorted(hidden)[:5]) + (" ..." if len(hidden) > 5 else ""),
        )


def wrap_app(config: Any, *, loop_index: int | None = None, units: Any = None, unit: int = 0) -> AppWrapper:
    """The user's app named by ``config.app`` (imported once per process), wrapped for one unit.

    The first unit (slot 0: the only one, loop 0, or worker 0) warns of routes under the prefix.
    """
    loaded = load_app(config.app, config.app_dir)
    if unit == 0:
        warn_reserved(loaded)
    return AppWrapper(loaded, config, loop_index=loop_index, units=units, unit=unit)


# --- the check: the app imported in a fresh process ---------------------------------------------------


def check(spec: str, app_dir: str | None) -> dict[str, Any]:
    """An :class:`~ftscale.schema.AppCheck` of ``spec`` in this process, JSON-ready."""
    facts = buildfacts.describe()
    result: dict[str, Any] = {
        "app": spec,
        "build": facts["build"],
        "py_gil_disabled": facts["py_gil_disabled"],
    }
    try:
        loaded = load_app(spec, app_dir)
    except AppLoadError as exc:
        return {**result, "ok": False, "error": str(exc), "gil_enabled": buildfacts.gil_enabled()}
    return {
        **result,
        "ok": True,
        "kind": loaded.kind,
        "gil_enabled": loaded.gil_enabled,
        "gil_reenabled_by": loaded.gil_reenabled_by,
        "gil_warning": loaded.gil_warning,
        "modules": list(loaded.modules),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ftscale.server.userapp",
        description="Import a user's ASGI app and print what the import did (AppCheck JSON).",
    )
    parser.add_argument("app", metavar="MODULE:ATTR")
    parser.add_argument("--app-dir", default=None, help="folder put first on the import path")
    args = parser.parse_args(argv)
    # Only the standard library and ftscale's stdlib modules are imported, before the app and
    # after it, so a GIL that comes back is the app's doing, and an environment without pydantic
    # can be checked too (the reader validates this as an AppCheck).
    print(json.dumps(check(args.app, args.app_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
