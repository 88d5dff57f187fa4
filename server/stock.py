"""Stock deployments of the GIL build, as people run them today: ``uvicorn --workers N`` and
``gunicorn --preload -k uvicorn_worker.UvicornWorker``.

ftscale's own ``workers`` topology balances connections with an acceptor and forks its workers
from a pre-imported supervisor; these two are the baselines a reader deploys without ftscale,
measured beside it so that a verdict against the GIL build is a verdict against what people run:

- ``uvicorn-workers``: uvicorn's own supervisor (``uvicorn.supervisors.Multiprocess``) binds the
  socket as uvicorn does (``Config.bind_socket``), *spawns* N workers (fresh interpreters, each
  importing the app) that accept on that one shared socket, pings them and restarts the dead.
  The kernel decides which worker takes a connection.
- ``gunicorn``: gunicorn's arbiter with ``preload_app`` (the app's code imported once in the
  master, workers *forked* from it and sharing its pages copy-on-write), the worker class of
  the ``uvicorn-worker`` package, one shared socket. ``--server uvicorn-fast`` gives the workers
  httptools on uvloop, as ``uvicorn[standard]`` installs do; ``uvicorn-h11`` h11 on asyncio.

Both run uvicorn's own server and protocol in their workers, untouched: of ftscale's limits
(:mod:`server.limits`) only those of the ASGI guard in front of the app (header count, framing)
and uvicorn's own (keep-alive, h11's head size) hold there, and ``/info`` says which are held by
none. What ftscale adds is the app each worker builds on first use (its own pool) and
a shared slot per worker for its work-request count (:class:`~ftscale.server.units.SharedSlots`),
so ``/info`` shows how the kernel spread the requests.
"""

from __future__ import annotations

import logging
from typing import Any

from ftscale.server.apps import make_app
from ftscale.server.config import ServerConfig
from ftscale.server.guard import guarded
from ftscale.server.topology import GRACEFUL_S, UVICORN_STACKS, uvicorn_config
from ftscale.server.units import AppFactory, SharedSlots, UnitApp

logger = logging.getLogger("ftscale.server")


def unit_labels(threads: int) -> list[str]:
    return [f"worker {i}" for i in range(threads)]


# -- uvicorn --workers ---------------------------------------------------------------------------------


def run_uvicorn_workers(config: ServerConfig, factory: AppFactory = make_app) -> int:
    """``uvicorn --workers N``: uvicorn's supervisor, socket and server, N spawned workers."""
    from uvicorn.supervisors import Multiprocess

    slots = SharedSlots(unit_labels(config.threads))
    app = UnitApp(config, factory, slots, threads=False)  # pickled into each spawned worker
    supervisor_config = uvicorn_config(app, config, workers=config.threads)
    sock = supervisor_config.bind_socket()
    logger.info("serving on http://%s:%d (uvicorn --workers %d)", config.host, config.port, config.threads)
    Multiprocess(supervisor_config, sockets=[sock]).run()
    return 0


# -- gunicorn --preload with uvicorn workers ---------------------------------------------------------


def run_gunicorn(config: ServerConfig, factory: AppFactory = make_app) -> int:
    """``gunicorn --preload -w N -k uvicorn_worker.UvicornWorker``, until SIGTERM; the exit status."""
    from gunicorn.app.base import BaseApplication
    from uvicorn_worker import UvicornWorker

    slots = SharedSlots(unit_labels(config.threads), start_method="fork")  # gunicorn forks its workers
    app = guarded(UnitApp(config, factory, slots, threads=False), config)  # the header count, the framing
    loop, http = UVICORN_STACKS[config.server]
    kwargs: dict[str, Any] = {"loop": loop, "http": http}
    if http == "h11":
        kwargs["h11_max_incomplete_event_size"] = config.max_head_bytes
    worker = type("UvicornWorker", (UvicornWorker,), {"CONFIG_KWARGS": kwargs})

    class Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            settings = {
                "bind": f"{config.host}:{config.port}",
                "workers": config.threads,
                "worker_class": worker,
                "preload_app": True,
                "graceful_timeout": GRACEFUL_S,
                "keepalive": max(1, round(config.keepalive_timeout_s)),
                "backlog": 2048,
                "accesslog": "-" if config.log_level == "debug" else None,
                "errorlog": "-",
                "loglevel": config.log_level,
                "proc_name": "ftscale-gunicorn",
            }
            for key, value in settings.items():
                self.cfg.set(key, value)

        def load(self) -> Any:
            return app

    logger.info("serving on http://%s:%d (gunicorn, %d workers)", config.host, config.port, config.threads)
    try:
        Gunicorn().run()
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0
