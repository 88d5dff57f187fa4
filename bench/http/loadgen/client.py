"""The built-in load generator: an asyncio HTTP/1.1 client on one thread, in this process.

It keeps one keep-alive connection per ``connections`` and parses responses with h11. It runs a
closed loop (each connection sends its next request when the previous answer arrives) or, with
``rate``, an open loop: requests are due at seeded Poisson (or evenly spaced) times
(:mod:`ftscale.bench.http.arrivals`) and latency is measured from the time a request was *due*,
not from when it was sent, so a stalled server is not hidden by a generator that politely waited
(coordinated omission). An open loop's throughput counts only the answers completed inside its
window: a server that falls behind finishes its backlog after the window, and those answers are
latency samples, not throughput.

Streamed responses (``LoadSpec.stream``, the service's ``/stream/{name}`` routes): each body is
read as it arrives (h11 ``Data`` events); the first byte of the body is timed, the server-sent
events (blocks ending in a blank line) counted and the gaps between consecutive events of a stream
timed (:class:`StreamClock`), into histograms that merge like the latency's.

One thread is what it can drive: the bench spreads it over one process per client CPU
(:mod:`.processes`).
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path
from typing import Any

import h11

from ftscale.bench import histogram
from ftscale.bench.http import arrivals as schedules
from ftscale.bench.http import mix as mixes
from ftscale.bench.http.loadgen.spec import LoadSpec, percentiles_ms
from ftscale.schema import LoadResult
from ftscale.vocab import Generator

# Open loop: requests still queued when the window ends may finish for this long (latency counted
# from their due time); those that cannot are counted as errors ("unsent"), never dropped.
DRAIN_S = 5.0


def _schedstat() -> tuple[float, float] | None:
    """(seconds on a CPU, seconds runnable but waiting for one) of this thread, where Linux tells."""
    try:
        on_cpu, waiting, _ = Path("/proc/thread-self/schedstat").read_text().split()
    except (OSError, ValueError):
        return None
    return int(on_cpu) / 1e9, int(waiting) / 1e9


class StreamClock:
    """One streamed response as it arrives: its first body byte, its events and the gaps between.

    An event ends with a blank line (``\\n\\n``); the separator may be split between two reads.
    Events that complete in the same read arrive together: the first of them gets the gap since
    the previous event, the others a gap of 0.
    """

    def __init__(self, since: float) -> None:
        self.since = since  # when the request was sent (or due, in an open loop)
        self.first_byte_s: float | None = None
        self.events = 0
        self.gaps_s: list[float] = []
        self._last: float | None = None
        self._lone_newline = False  # the bytes so far end with a newline not yet part of a separator

    def data(self, data: bytes, now: float) -> None:
        if not data:
            return
        if self.first_byte_s is None:
            self.first_byte_s = now - self.since
        # Newlines are rare in SSE (line ends only), so finding each one (memchr) is far cheaper
        # than counting a two-byte pattern over a whole read.
        found, lone = 0, False
        at = 1 if self._lone_newline and data[:1] == b"\n" else 0
        found += at
        at = data.find(b"\n", at)
        while at != -1:
            if data[at + 1 : at + 2] == b"\n":
                found += 1
                at = data.find(b"\n", at + 2)
            else:
                lone = at == len(data) - 1
                at = data.find(b"\n", at + 1)
        self._lone_newline = lone
        for k in range(found):
            if self._last is not None:
                self.gaps_s.append(now - self._last if k == 0 else 0.0)
            self._last = now
        self.events += found


class Connection:
    """One keep-alive HTTP/1.1 connection driven by h11."""

    def __init__(self, spec: LoadSpec) -> None:
        self.spec = spec
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.h11 = h11.Connection(h11.CLIENT)

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.spec.host, self.spec.port)
        self.h11 = h11.Connection(h11.CLIENT)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes, clock: StreamClock | None = None) -> int:
        """Send one request (a JSON body, if any), read the whole response (its body's pieces to
        ``clock``); its status."""
        headers = (("Content-Type", "application/json"),) if body else ()
        status, _ = await self.exchange(method, path, body, headers, clock=clock)
        return status

    async def exchange(
        self,
        method: str,
        path: str,
        body: bytes,
        headers: tuple[tuple[str, str], ...] = (),
        want_body: bool = False,
        clock: StreamClock | None = None,
    ) -> tuple[int, bytes]:
        """Send one request, read the whole response; its status (and its body if ``want_body``)."""
        if self.writer is None or self.h11.our_state is not h11.IDLE:
            await self.close()
            await self.open()
        assert self.reader is not None and self.writer is not None
        head = [("Host", f"{self.spec.host}:{self.spec.port}"), ("Content-Length", str(len(body))), *headers]
        out = self.h11.send(h11.Request(method=method, target=path, headers=head))
        out += self.h11.send(h11.Data(data=body)) if body else b""
        out += self.h11.send(h11.EndOfMessage())
        self.writer.write(out)
        status = 0
        received = bytearray()
        while True:
            event = self.h11.next_event()
            if event is h11.NEED_DATA:
                self.h11.receive_data(await self.reader.read(65536))
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                if clock is not None:
                    clock.data(bytes(event.data), asyncio.get_running_loop().time())
                if want_body:
                    received += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif isinstance(event, h11.ConnectionClosed):
                raise ConnectionError("server closed the connection")
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
        return status, bytes(received)


async def _run_python(spec: LoadSpec) -> LoadResult:
    """Closed loop (each connection sends when its previous answer arrives) or open loop.

    Open loop: a scheduler puts every request's due time (:func:`.arrivals.due_offsets`) in a
    queue; idle connections take the next due request and send it, and its latency counts from
    the due time, so a server that falls behind shows it in the latency instead of being politely
    waited for (coordinated omission). Throughput counts the good answers completed inside the
    window; requests still unanswered when it ends may finish for :data:`DRAIN_S` as latency
    samples, and any not even sent by then are counted as errors, never silently dropped.
    """
    latencies: list[float] = []
    lags: list[float] = []
    first_bytes: list[float] = []
    gaps: list[float] = []
    chunks = window_chunks = 0  # window_chunks: of streams completed inside an open loop's window
    in_window = 0
    errors: Counter[str] = Counter()
    picker = mixes.Picker(mixes.read_load_mix(spec.mix_file), spec.sequence) if spec.mix_file else None

    async def send(conn: Connection, clock: StreamClock | None) -> str | None:
        """One request; None when its answer is good, else the key it counts under as an error."""
        if picker is None:
            status = await conn.request(spec.method, spec.path, spec.body, clock)
            return None if 200 <= status < 300 else str(status)
        request = picker.pick()
        want = request.expect.field is not None
        status, body = await conn.exchange(
            request.method, request.path, request.body, request.headers, want, clock
        )
        return mixes.judge(request.expect, status, body)

    loop = asyncio.get_running_loop()
    offsets = (
        list(schedules.due_offsets(spec.arrivals, spec.rate, spec.duration_s, spec.seed, spec.phase))
        if spec.rate
        else []
    )
    start = loop.time()
    deadline = start + spec.duration_s
    due: asyncio.Queue[float | None] | None = None
    if spec.rate:
        due = asyncio.Queue()

        async def schedule() -> None:
            assert due is not None
            for offset in offsets:
                when = start + offset
                delay = when - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                due.put_nowait(when)
            for _ in range(spec.connections):  # every worker stops after the last due request
                due.put_nowait(None)

    async def worker() -> None:
        nonlocal chunks, window_chunks, in_window
        conn = Connection(spec)
        try:
            while True:
                if due is not None:
                    ready = loop.time()
                    item = await due.get()
                    if item is None:
                        return
                    when, now = item, loop.time()
                    if now > deadline + DRAIN_S:
                        errors["unsent"] += 1
                        continue
                    # The generator's own lag: from when the request could go (due, and this
                    # connection free) to now. Waiting for a free connection is queueing, not lag.
                    lags.append(now - max(when, ready))
                else:
                    when = loop.time()
                    if when >= deadline:
                        return
                clock = StreamClock(when) if spec.stream else None
                try:
                    problem = await asyncio.wait_for(send(conn, clock), timeout=spec.timeout_s)
                except (OSError, TimeoutError, h11.ProtocolError, ConnectionError) as exc:
                    errors[type(exc).__name__] += 1
                    await conn.close()
                    continue
                if problem is None:
                    done = loop.time()
                    latencies.append(done - when)
                    in_window += done <= deadline
                    if clock is not None and clock.first_byte_s is not None:
                        first_bytes.append(clock.first_byte_s)
                        gaps.extend(clock.gaps_s)
                        chunks += clock.events
                        window_chunks += clock.events if done <= deadline else 0
                else:
                    errors[problem] += 1
        finally:
            await conn.close()

    cpu0 = time.process_time()
    sched0 = _schedstat()
    tasks = [asyncio.create_task(worker()) for _ in range(spec.connections)]
    scheduler = asyncio.create_task(schedule()) if spec.rate else None
    await asyncio.gather(*tasks)
    if scheduler is not None:
        await scheduler
    elapsed = loop.time() - start
    # Open loop: the window is the schedule's; closed loop: until the last answer arrived.
    window = spec.duration_s if spec.rate else elapsed
    served = in_window if spec.rate else len(latencies)
    cpu = time.process_time() - cpu0
    sched1 = _schedstat()
    busy = None
    if sched0 and sched1 and elapsed > 0:
        busy = round(100 * ((sched1[0] - sched0[0]) + (sched1[1] - sched0[1])) / elapsed, 1)
    counts = histogram.from_latencies_s(latencies)
    lag_p99 = None
    if lags:
        lag_p99 = round(histogram.percentile_ms(histogram.from_latencies_s(lags), 99), 4)
    result = LoadResult(
        generator=str(Generator.PYTHON),
        requests=len(latencies),
        duration_s=round(window, 4),
        throughput_rps=served / window if window > 0 else 0.0,
        latency_ms=percentiles_ms(counts),
        errors=dict(errors),
        generator_cpu_pct=round(100 * cpu / elapsed, 1) if elapsed > 0 else 0.0,
        generator_cpus=1,
        open_loop_rate=spec.rate,
        generator_busy_pct=busy,
        generator_busy_max_pct=busy,
        generator_threads=1,
        latency_histogram=counts,
        send_lag_p99_ms=lag_p99,
        arrivals=spec.arrivals if spec.rate else None,
        arrival_seed=spec.seed if spec.rate else None,
        due_requests=len(offsets) if spec.rate else None,
        window_requests=in_window if spec.rate else None,
        **(stream_figures(chunks, window, first_bytes, gaps) if spec.stream else {}),
    )
    if spec.stream and spec.rate:
        result = result.model_copy(update={"chunks_per_s": window_chunks / window if window > 0 else 0.0})
    return result


def stream_figures(
    chunks: int, window_s: float, first_bytes_s: list[float], gaps_s: list[float]
) -> dict[str, Any]:
    """The streaming fields of a :class:`LoadResult` from what the connections' clocks saw."""
    ttfb = histogram.from_latencies_s(first_bytes_s)
    gap = histogram.from_latencies_s(gaps_s)
    return {
        "chunks": chunks,
        "chunks_per_s": chunks / window_s if window_s > 0 else 0.0,
        "ttfb_ms": percentiles_ms(ttfb),
        "ttfb_histogram": ttfb,
        "gap_histogram": gap,
        "gap_p99_ms": percentiles_ms(gap)["p99"],
    }


def run_python(spec: LoadSpec) -> LoadResult:
    """Apply ``spec`` with the built-in generator, in this process and on this thread."""
    return asyncio.run(_run_python(spec))
