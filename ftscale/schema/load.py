"""What the load generators are given (a request mix) and what they print back (:class:`LoadResult`,
:class:`HealthProbe`)."""

from __future__ import annotations

from typing import Any

from pydantic import ConfigDict, Field

from ftscale.schema.base import Model


class Expect(Model):
    """What a good answer to one request of a mix looks like.

    ``status``: the status it must have. ``field``: a dotted path into its JSON body
    (``items.0.score``) that must exist, and equal ``value`` where one is given.
    """

    status: int = Field(default=200, ge=100, le=599)
    field: str | None = None
    value: Any = None


class MixRequest(Model):
    """One request of a mix file: what to send, how often, what a good answer is.

    The body is ``json`` (sent as JSON, with ``content-type: application/json`` unless the
    headers say otherwise) or ``body_file`` (its bytes as they are, the path relative to the
    mix file), or nothing. ``weight`` is its share of the requests (relative to the others).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str | None = None
    method: str = "GET"
    path: str
    headers: dict[str, str] = Field(default_factory=dict)
    json_body: Any = Field(default=None, alias="json")
    body_file: str | None = None
    weight: float = Field(default=1.0, gt=0)
    expect: Expect = Field(default_factory=Expect)


class RequestMix(Model):
    """A request-mix file (JSON or TOML): ``requests``, each a :class:`MixRequest`."""

    requests: list[MixRequest] = Field(min_length=1)


class LoadRequest(Model):
    """One request of a mix, resolved for the load generators: bytes ready to send.

    ``body`` is the body as text, or in base64 where ``base64`` (a body that is not UTF-8);
    ``headers`` keep their order.
    """

    label: str
    method: str
    path: str
    headers: list[tuple[str, str]]
    body: str = ""
    base64: bool = False
    weight: float
    expect: Expect


class LoadMix(Model):
    """The resolved mix a run sends (``requests.json`` in its run directory)."""

    requests: list[LoadRequest] = Field(min_length=1)
    seed: int = 0  # the built-in generator's choices are drawn from this seed (and its process index)


PERCENTILES = ("p50", "p90", "p99", "p99.9")


class LoadResult(Model):
    """One load applied by a generator process (wrk or the built-in one)."""

    generator: str | None  # ftscale.vocab.Generator; None only in repetitions of files before format 3
    requests: int
    duration_s: float
    throughput_rps: float
    latency_ms: dict[str, float | None]
    errors: dict[str, int] = Field(default_factory=dict)
    generator_cpu_pct: float = 0.0
    generator_cpus: int = 1
    open_loop_rate: float | None = None
    # Share of the wall time the generator was running or waiting for a CPU: near 100 % means
    # it never waited for the server, so it (or its CPU share) set the pace. Summed over its
    # threads (or processes); ``generator_busy_max_pct`` is the busiest single one, which is what
    # saturates first: a thread cannot use more than one CPU.
    generator_busy_pct: float | None = None
    generator_busy_max_pct: float | None = None
    generator_threads: int | None = None
    # Successful requests' latency in microseconds as a log-linear histogram
    # (ftscale.bench.histogram: {bucket index: count}); merges exactly across processes.
    latency_histogram: dict[int, int] | None = None
    # Open loop only: how late requests were sent after they could have been (due, and a connection
    # free): the generator's own lag. Time spent waiting for a free connection is not in it.
    send_lag_p99_ms: float | None = None
    # Open loop only (absent in older files): the arrival process and the seed of its schedule
    # (ftscale.bench.http.arrivals), the requests due in the window, and the good answers completed
    # inside it. Throughput counts those alone; requests due in the window and answered after it
    # are latency samples (``requests`` counts every good answer) but not throughput.
    arrivals: str | None = None
    arrival_seed: int | None = None
    due_requests: int | None = None
    window_requests: int | None = None
    # Streamed responses (server-sent events) only, absent otherwise. ``chunks``: events (blocks
    # ending in a blank line) received in completed 2xx streams; ``chunks_per_s``: those over the
    # window. ``ttfb_*``: from sending a request (its due time, in an open loop) to the first byte
    # of its body, the first event (the response head is sent at once: its arrival says nothing);
    # ``gap_*``: between consecutive events of one stream (0 for events that came in one read).
    # Histograms as ``latency_histogram``. wrk sees whole responses only: it counts chunks but
    # cannot time the first byte or the gaps (None).
    chunks: int | None = None
    chunks_per_s: float | None = None
    ttfb_ms: dict[str, float | None] | None = None
    ttfb_histogram: dict[int, int] | None = None
    gap_histogram: dict[int, int] | None = None
    gap_p99_ms: float | None = None


class HealthProbe(Model):
    """/health latency while the server is loaded: the event loop's lag, as a client sees it."""

    p50: float | None
    p99: float | None
    samples: int
    cpu_s: float | None = None  # the probe process's own CPU time (format 3)
