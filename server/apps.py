"""Which app a serving unit runs: the ftscale service, or a user's app (``--app MODULE:ATTR``).

Every topology (:mod:`server.topology`, :mod:`server.workers`, :mod:`server.loops`) builds one
app per serving unit through :func:`make_app`, so *what* is served stays apart from *how* it is
served: the same sockets, acceptors, limits and shutdown serve either. Each app is imported
only when asked for: serving a user's app never imports the service (FastAPI, the workloads).
"""

from __future__ import annotations

from typing import Any

from ftscale.server.config import ServerConfig
from ftscale.server.counters import UnitCounts


def make_app(
    config: ServerConfig, *, loop_index: int | None = None, units: UnitCounts | None = None, unit: int = 0
) -> Any:
    """The ASGI app one serving unit runs (``unit`` is its slot in ``units``)."""
    if config.app is None:
        from ftscale.server.app import create_app

        return create_app(config, loop_index=loop_index, units=units, unit=unit)
    from ftscale.server.userapp import wrap_app

    return wrap_app(config, loop_index=loop_index, units=units, unit=unit)
