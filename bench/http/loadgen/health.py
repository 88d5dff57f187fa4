"""The /health probe: how long /health takes to answer while a load runs (the server's event
loop lag, as a client sees it), on one keep-alive connection of the built-in client."""

from __future__ import annotations

import asyncio
import time

import h11

from ftscale.bench import histogram
from ftscale.bench.http.loadgen.client import Connection
from ftscale.bench.http.loadgen.spec import LoadSpec, percentiles_ms
from ftscale.schema import HealthProbe


async def _probe_health(
    host: str, port: int, duration_s: float, interval_s: float, path: str = "/health"
) -> list[float]:
    spec = LoadSpec(host=host, port=port, path=path, method="GET")
    conn = Connection(spec)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + duration_s
    samples: list[float] = []
    try:
        while loop.time() < deadline:
            started = loop.time()
            try:
                status = await asyncio.wait_for(conn.request("GET", path, b""), timeout=duration_s)
            except (OSError, TimeoutError, h11.ProtocolError, ConnectionError):
                await conn.close()
                continue
            if status == 200:
                samples.append(loop.time() - started)
            await asyncio.sleep(max(0.0, interval_s - (loop.time() - started)))
    finally:
        await conn.close()
    return samples


def probe_health(
    host: str, port: int, duration_s: float, interval_s: float = 0.05, path: str = "/health"
) -> HealthProbe:
    """/health latency while the server is loaded: the event loop's lag, as a client sees it."""
    cpu0 = time.thread_time()  # the probe may run in a thread of the bench (its own loop)
    samples = asyncio.run(_probe_health(host, port, duration_s, interval_s, path))
    result = percentiles_ms(histogram.from_latencies_s(samples))
    cpu = round(time.thread_time() - cpu0, 4)
    return HealthProbe(p50=result["p50"], p99=result["p99"], samples=len(samples), cpu_s=cpu)
