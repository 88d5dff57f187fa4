"""Load generators: wrk when it is installed, else a built-in asyncio HTTP/1.1 client.

Both produce a :class:`~ftscale.schema.LoadResult`: completed requests, throughput, latency percentiles,
errors by status, and the generator's own CPU use (so a cell where the generator, not the
server, was the bottleneck can be flagged).

The built-in generator keeps one keep-alive connection per ``connections`` and parses
responses with h11. It runs a closed loop (each connection sends its next request when the
previous answer arrives) or, with ``rate``, an open loop: requests are due at seeded Poisson
(or evenly spaced) times (:mod:`.arrivals`) and latency is measured from the time a request was
*due*, not from when it was sent, so a stalled server is not hidden by a generator that politely
waited (coordinated omission). An open loop's throughput counts only the answers completed inside
its window: a server that falls behind finishes its backlog after the window, and those answers
are latency samples, not throughput. wrk is closed-loop only.

Streamed responses (``LoadSpec.stream``, the service's ``/stream/{name}`` routes): the built-in
generator reads each body as it arrives (h11 ``Data`` events) and times the first byte of the
body, counts the server-sent events (blocks ending in a blank line) and times the gaps between
consecutive events of a stream (:class:`StreamClock`), into histograms that merge like the
latency's. wrk's Lua hook sees only whole responses: it counts the events but cannot time the
first byte or the gaps, so the bench prefers the built-in generator for streams.

A load sends one request shape (``path``, ``method``, ``body``) or, with ``mix_file``, a user's
request mix by weight, each answer judged by what its request expects (:mod:`.mix`).

``python -m ftscale.bench.http.loadgen`` runs one load (or a /health probe) in its own process and prints
the result as JSON: the orchestrator pins that process to the client CPUs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h11

from ftscale.bench import histogram
from ftscale.bench.http import arrivals as schedules
from ftscale.bench.http import mix as mixes
from ftscale.schema import HealthProbe, LoadResult
from ftscale.vocab import Arrival

# Open loop: requests still queued when the window ends may finish for this long (latency counted
# from their due time); those that cannot are counted as errors ("unsent"), never dropped.
DRAIN_S = 5.0

WRK_SAMPLE_S = 0.2  # how often wrk's threads' busy times are read
PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}
WRK_SCRIPT = Path(__file__).with_name("wrk_report.lua")


@dataclass(frozen=True)
class LoadSpec:
    """One load to apply: where, what, how hard, how long."""

    host: str
    port: int
    path: str
    method: str = "POST"
    body: bytes = b""
    connections: int = 4
    duration_s: float = 3.0
    rate: float | None = None  # requests/s for an open loop; None = closed loop
    timeout_s: float = 30.0
    stream: bool = False  # responses are server-sent event streams: time and count their events
    mix_file: str | None = None  # a resolved request mix (LoadMix JSON) sent instead of path/method/body
    sequence: int = 0  # which of a mix's seeded request sequences this process draws (one per process)
    health_path: str = "/health"  # where the /health probe goes (a user's app: under its reserved prefix)
    arrivals: str = str(Arrival.POISSON)  # open loop: when requests are due (ftscale.vocab.Arrival)
    seed: int = 0  # open loop: the seed of the schedule (one per load; each process derives its own)
    phase: float = 0.0  # open loop, uniform arrivals: the schedule's offset, as a share of the gap


def _schedstat() -> tuple[float, float] | None:
    """(seconds on a CPU, seconds runnable but waiting for one) of this thread, where Linux tells."""
    try:
        on_cpu, waiting, _ = Path("/proc/thread-self/schedstat").read_text().split()
    except (OSError, ValueError):
        return None
    return int(on_cpu) / 1e9, int(waiting) / 1e9


def percentiles_ms(counts: dict[int, int]) -> dict[str, float | None]:
    """p50 ... p99.9 of a latency histogram, in milliseconds (None when it is empty)."""
    if not histogram.count(counts):
        return {k: None for k in PERCENTILES}
    return {k: round(histogram.percentile_ms(counts, q), 4) for k, q in PERCENTILES.items()}


# --- the built-in generator -------------------------------------------------------------------


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


class _Connection:
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

    async def send(conn: _Connection, clock: StreamClock | None) -> str | None:
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
        conn = _Connection(spec)
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
        generator="python",
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


async def _probe_health(
    host: str, port: int, duration_s: float, interval_s: float, path: str = "/health"
) -> list[float]:
    spec = LoadSpec(host=host, port=port, path=path, method="GET")
    conn = _Connection(spec)
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


# --- wrk -------------------------------------------------------------------------------------


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str | None:
    exe = wrk_path()
    if exe is None:
        return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) else "wrk"


def _task_schedstat(pid: int) -> dict[int, float]:
    """Seconds each thread of ``pid`` has been running or waiting for a CPU, where Linux tells."""
    found: dict[int, float] = {}
    for path in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            on_cpu, waiting, _ = path.read_text().split()
        except (OSError, ValueError):
            continue
        found[int(path.parent.name)] = (int(on_cpu) + int(waiting)) / 1e9
    return found


def _wrk_process(
    cmd: list[str], env: dict[str, str], spec: LoadSpec, cpus: Sequence[int] = ()
) -> tuple[str, str, int, float, dict[int, tuple[float, float]], float]:
    """Run wrk; (stdout, stderr, exit status, its CPU seconds, its threads' busy times, start).

    wrk takes its duration in whole seconds: it is given more, and stopped with SIGINT (on which
    it stops its threads and reports what it measured, with the time it really ran) when
    ``spec.duration_s`` has passed.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    seen: dict[int, tuple[float, float]] = {}  # thread -> (its busy seconds, when read)
    pin = (lambda: os.sched_setaffinity(0, set(cpus))) if cpus else None
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=pin
    ) as proc:
        stop_at = started + spec.duration_s

        def sample() -> None:  # beside communicate(): wrk's output can be larger than a pipe holds
            interrupted = False
            while proc.poll() is None:
                now = time.monotonic()
                for tid, busy_s in _task_schedstat(proc.pid).items():
                    seen[tid] = (busy_s, now)  # a thread that has ended keeps its last reading
                if not interrupted and now >= stop_at:
                    proc.send_signal(signal.SIGINT)
                    interrupted = True
                until_stop = stop_at - time.monotonic()
                time.sleep(min(WRK_SAMPLE_S, until_stop) if until_stop > 0 else 0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            out, err = proc.communicate(timeout=spec.duration_s + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out, err, proc.returncode, cpu, seen, started


def wrk_seconds(duration_s: float) -> int:
    """The whole seconds wrk is told to run for a load of ``duration_s``: more than that, since it
    is stopped with SIGINT at ``duration_s`` (:func:`_wrk_process`)."""
    return math.ceil(duration_s) + 1


def run_wrk(spec: LoadSpec, threads: int = 1, cpus: Sequence[int] = ()) -> LoadResult:
    """Apply ``spec`` with wrk (closed loop); its Lua hook prints a JSON summary.

    While wrk runs, each of its threads' scheduler times are read every 0.2 s, so the busiest
    thread's share of the wall time is known: a wrk thread that is always running or waiting for
    a CPU, not for the server, sets the pace itself. With ``cpus``, wrk is pinned to them from
    its start (its threads inherit it).
    """
    exe = wrk_path()
    if exe is None:
        raise RuntimeError("wrk is not installed")
    if spec.rate:
        raise ValueError("wrk runs closed-loop only; use the python generator for an open loop")
    url = f"http://{spec.host}:{spec.port}{spec.path}"
    n_threads = max(1, min(threads, spec.connections))
    cmd = [
        exe,
        f"-t{n_threads}",
        f"-c{spec.connections}",
        f"-d{wrk_seconds(spec.duration_s)}s",
        f"--timeout={round(spec.timeout_s)}s",
        "-s",
        str(WRK_SCRIPT),
        url,
    ]
    env = {
        **os.environ,
        "FTSCALE_METHOD": spec.method,
        "FTSCALE_BODY": spec.body.decode(),
        "FTSCALE_STREAM": "1" if spec.stream else "",
    }
    expected: set[str] | None = None
    with tempfile.TemporaryDirectory(prefix="ftscale-wrk-") as scratch:
        if spec.mix_file:  # the hook cycles through the mix, read from a Lua table
            load_mix = mixes.read_load_mix(spec.mix_file)
            expected = mixes.expected_statuses(load_mix)
            lua = Path(scratch) / "mix.lua"
            lua.write_text(mixes.lua_table(load_mix))
            env["FTSCALE_MIX"] = str(lua)
        out, err, returncode, cpu, seen, started = _wrk_process(cmd, env, spec, cpus)
    line = next((ln for ln in out.splitlines() if ln.startswith("FTSCALE_JSON ")), None)
    if returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {returncode}): {(err or out).strip()[-400:]}")
    data = json.loads(line.removeprefix("FTSCALE_JSON "))
    duration = data["duration_us"] / 1e6
    statuses: dict[str, int] = {str(k): int(v) for k, v in data["statuses"].items()}
    errors = mixes.statuses_to_errors(statuses, expected)
    ok = sum(n for s, n in statuses.items() if s not in errors)
    for kind in ("connect", "read", "write", "timeout"):
        if data["socket_errors"].get(kind):
            errors[f"socket-{kind}"] = int(data["socket_errors"][kind])
    busy = [100 * s / (at - started) for s, at in seen.values() if at - started > 0.5]
    counts = histogram.from_value_counts((int(v), int(c)) for v, c in data["latency_counts"])
    streamed: dict[str, Any] = {}
    if spec.stream:  # events counted in the whole bodies; no first byte, no gaps
        chunks = int(data.get("chunks", 0))
        streamed = {"chunks": chunks, "chunks_per_s": chunks / duration if duration > 0 else 0.0}
    return LoadResult(
        generator="wrk",
        requests=ok,
        duration_s=round(duration, 4),
        throughput_rps=ok / duration if duration > 0 else 0.0,
        latency_ms={k: round(float(data["latency_us"][k]) / 1e3, 4) for k in PERCENTILES},
        errors=errors,
        generator_cpu_pct=round(100 * cpu / duration, 1) if duration > 0 else 0.0,
        generator_cpus=n_threads,
        generator_busy_pct=round(sum(busy), 1) if busy else None,
        generator_busy_max_pct=round(max(busy), 1) if busy else None,
        generator_threads=n_threads,
        latency_histogram=counts,
        **streamed,
    )


# --- command line: one load in its own (pinned) process ---------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ftscale.bench.http.loadgen", description="Apply one HTTP load."
    )
    parser.add_argument("what", choices=["python", "wrk", "health"])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/health")
    parser.add_argument("--method", default="POST")
    parser.add_argument("--body", default="")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=None)
    parser.add_argument("--arrivals", choices=[str(a) for a in Arrival], default=str(Arrival.POISSON))
    parser.add_argument("--seed", type=int, default=0, help="open loop: the seed of the arrival schedule")
    parser.add_argument("--phase", type=float, default=0.0, help="uniform arrivals: offset, share of a gap")
    parser.add_argument("--stream", action="store_true", help="responses are event streams: time them")
    parser.add_argument("--interval", type=float, default=0.05, help="health probe interval (s)")
    parser.add_argument("--mix", default=None, help="a resolved request mix (LoadMix JSON) to send instead")
    parser.add_argument("--sequence", type=int, default=0, help="which seeded sequence of the mix to draw")
    args = parser.parse_args(argv)
    if args.what == "health":
        probe = probe_health(args.host, args.port, args.duration, args.interval, args.path)
        print(probe.model_dump_json())
        return 0
    spec = LoadSpec(
        host=args.host,
        port=args.port,
        path=args.path,
        method=args.method,
        body=args.body.encode(),
        connections=args.connections,
        duration_s=args.duration,
        rate=args.rate,
        arrivals=args.arrivals,
        seed=args.seed,
        phase=args.phase,
        mix_file=args.mix,
        sequence=args.sequence,
        stream=args.stream,
    )
    result = run_wrk(spec, args.threads) if args.what == "wrk" else run_python(spec)
    print(result.model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
