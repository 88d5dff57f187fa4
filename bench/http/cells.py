"""The HTTP bench's cell model: what one cell measures, the groups cells are measured in, and the
order of work.

A *cell* is one design (build, mode, topology) at one thread count for one workload, under one
HTTP server and load (:class:`CellSpec`). The bench measures cells in *groups* (:class:`Group`):
every cell of one workload at one thread count. Inside a group, repetitions are interleaved
(:func:`interleaved`) so drift of the machine spreads over every build and design alike; a
workload's finalists are measured in rotating rounds (:func:`rounds_order`).

Streaming cells (a workload the service streams, ``CellSpec.stream``) load ``/stream/{name}``:
their samples are chunks per second, and a stream holds an admission place for its whole life, so
their servers admit every stream the load can open (:attr:`CellSpec.server_args`).

Nothing here starts a process or measures: :mod:`.session` runs one repetition, :mod:`.cell` the
groups.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ftscale.bench import results
from ftscale.bench.http import capacity, options
from ftscale.vocab import APP_PREFIX, DEFAULT_SERVER, TOPOLOGIES, Arrival, Topology

# A streaming cell's server admits this many streams per connection its load may open.
STREAM_ADMISSION_FACTOR = 2
# Open loops keep this many connections per closed-loop connection (room for requests that queue).
OPEN_CONNECTIONS_FACTOR = 2
# Confirmation rounds by default: each measures every finalist once on a fresh server.
CONFIRM_ROUNDS = options.CONFIRM_ROUNDS


@dataclass(frozen=True)
class AppRequests:
    """What a cell of a user's app (``ftscale app``) sends: its resolved request mix (a
    :class:`~ftscale.schema.LoadMix` file), judged on every fresh server before it is measured."""

    mix_file: str
    prefix: str = APP_PREFIX  # where the served app answers ftscale's /health and /info


@dataclass(frozen=True)
class CellSpec:
    """What one cell measures: the service's ``/work/{workload}``, or a user's app (``app``)."""

    build: str
    workload: str
    workload_class: str
    size: int
    mode: str
    topology: str
    threads: int
    connections: int
    offered_share: float | None = None  # open loop at this share of the closed-loop median
    slo: bool = False  # the search for the capacity at the latency target
    app: AppRequests | None = None  # a user's app: its request mix instead of /work/{workload}
    server: str = str(DEFAULT_SERVER)  # the HTTP server (ftscale.vocab.HttpServer)
    runtime_threads: int = 1  # granian's Rust I/O threads per worker
    skip_reason: str | None = None  # the design cannot run on this build: nothing is started
    stream: bool = False  # the workload is loaded as a stream (POST /stream/{name})
    stage: str = "explore"  # or "confirm": a finalist measured in paired rounds

    @property
    def path(self) -> str:
        return f"/{'stream' if self.stream else 'work'}/{self.workload}"

    @property
    def unit(self) -> str:
        """What a sample counts: requests, or a streaming cell's chunks, per second."""
        return "chunks/s" if self.stream else "req/s"

    @property
    def load_connections(self) -> int:
        """Connections its loads keep open: ``connections``, more for an open loop."""
        return self.connections * (OPEN_CONNECTIONS_FACTOR if self.load == "open" else 1)

    @property
    def server_args(self) -> tuple[str, ...]:
        """Server options the cell needs beyond its design: admission room for every request its
        load can have in flight (and every stream it may open, among the streams too, which by
        default get half of the places), so the bench measures what the design serves, never 503s
        of its own making. A user's app has no admission of ftscale's."""
        if self.app is not None:
            return ()
        room = str(self.load_connections * (STREAM_ADMISSION_FACTOR if self.stream else 1))
        return ("--queue-limit", room, *(("--max-streams", room) if self.stream else ()))

    @property
    def load(self) -> str:
        return "open" if self.offered_share is not None or self.slo else "closed"

    @property
    def server_label(self) -> str:
        """The server and its own settings, as keys and reports name it (``granian-rt2``)."""
        return server_label(self.server, self.runtime_threads)

    @property
    def key(self) -> str:
        load = None
        if self.offered_share is not None:
            load = f"open{round(self.offered_share * 100):03d}"
        elif self.slo:
            load = "slo"
        # The default server adds nothing: keys of runs made before servers were a choice still match.
        server = None if self.server_label == str(DEFAULT_SERVER) else self.server_label
        stage = "confirm" if self.stage == "confirm" else None
        extra = "-".join(part for part in (server, load, stage) if part) or None
        return results.cell_id(self.build, self.workload, self.threads, self.mode, self.topology, extra=extra)

    @property
    def design(self) -> tuple[str, str, str, str]:
        return (self.build, self.server_label, self.mode, self.topology)

    @property
    def units(self) -> int:
        """Serving units the design spreads connections over (1 for a single process and loop)."""
        return self.threads if TOPOLOGIES[Topology(self.topology)].units == "threads" else 1

    def body(self) -> bytes:
        return f'{{"size": {self.size}}}'.encode()

    def request(self) -> dict[str, Any]:
        """The :class:`LoadSpec` fields saying what this cell sends."""
        if self.app is None:
            return {"path": self.path, "body": self.body()}
        return {"path": "/", "mix_file": self.app.mix_file, "health_path": f"{self.app.prefix}/health"}


@dataclass(frozen=True)
class Group:
    """Every cell of one workload at one thread count: measured together, interleaved."""

    workload: str
    threads: int
    plans: tuple[CellSpec, ...]

    @property
    def key(self) -> str:
        return f"{self.workload}__t{self.threads:03d}"

    @property
    def cell_keys(self) -> tuple[str, ...]:
        return tuple(p.key for p in self.plans)


@dataclass(frozen=True)
class Settings:
    duration_s: float = 3.0
    warmup_s: float = 1.0
    repetitions: int = 3
    start_timeout_s: float = 60.0
    open_shares: tuple[float, ...] = ()
    slo_p99_ms: float | None = None
    open_connections_factor: int = OPEN_CONNECTIONS_FACTOR  # open loop: connections per closed-loop one
    rounds: int = CONFIRM_ROUNDS  # confirmation rounds (0: none)
    redo_disturbed: bool = True  # measure a repetition again, once, when the machine disturbed it
    arrivals: str = str(Arrival.POISSON)  # open loop: when requests are due
    seed: int = 0  # the run's seed: every open-loop load's schedule is derived from it
    slo_loads: int = capacity.MIN_LOADS  # a capacity step's loads (at least)
    slo_min_samples: int = capacity.MIN_SAMPLES  # ... and the requests its p99 rests on (at least)


def server_label(server: str | None, runtime_threads: int | None = 1) -> str:
    """``granian`` or, with other than one runtime thread, ``granian-rt2``; None is the default."""
    name = server or str(DEFAULT_SERVER)
    return name if (runtime_threads or 1) == 1 else f"{name}-rt{runtime_threads}"


# --- the order of work ------------------------------------------------------------------------


def interleaved(plans: Sequence[CellSpec], repetitions: int) -> Iterator[tuple[int, CellSpec]]:
    """(repetition, plan) in measuring order: every plan's repetition 1, then every repetition 2 ...

    Within a round the order rotates by one each time (A B C, B C A, C A B …), so no design is
    always first after a pause or always last.
    """
    n = len(plans)
    for rep in range(repetitions):
        for k in range(n):
            yield rep, plans[(k + rep) % n]


def rounds_order(count: int, rounds: int) -> Iterator[tuple[int, list[int]]]:
    """(round, the finalists' indices in measuring order): rotated each round (A B, B A, A B …),
    so no finalist is always first after a pause or always last."""
    for r in range(rounds):
        yield r, [(k + r) % count for k in range(count)]
