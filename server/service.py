"""One app's request path: its pool (:mod:`server.executors`), its admission control, and what a
computed request answers. The work routes (:mod:`server.app`) and the stream routes
(:mod:`server.stream`) both go through it.
"""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

from starlette.types import Receive

from ftscale.server.config import ServerConfig
from ftscale.server.counters import UnitCounts
from ftscale.server.executors import (
    Admission,
    ClientWatch,
    Dispatcher,
)
from ftscale.vocab import InfoDetail
from ftscale.workloads import Workload


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
