"""ftscale's one vocabulary: modes, topologies, HTTP servers, scaling kinds, workload classes, load
kinds, open-loop arrivals, profile buckets, flags.

Everything that names one of these reads it from here: the service's configuration and its
``--help``, the benches' command-line choices, the result schema, the report's labels and its
flag legend. Standard library only, so the service, a bare interpreter and ``ftscale --help``
can all import it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

# The topologies have a module of their own (ftscale.topologies); they are part of this vocabulary
# all the same, and read from here.
from ftscale.topologies import TOPOLOGIES as TOPOLOGIES
from ftscale.topologies import TOPOLOGY_HELP as TOPOLOGY_HELP
from ftscale.topologies import UVICORN_SERVERS as UVICORN_SERVERS
from ftscale.topologies import Refusal as Refusal
from ftscale.topologies import Topology as Topology
from ftscale.topologies import TopologyInfo as TopologyInfo


class Mode(enum.StrEnum):
    """Where a request's CPU work runs."""

    INLINE = "inline"  # on the event loop itself (blocks it: the anti-pattern, measured on purpose)
    THREADPOOL = "threadpool"  # Starlette/anyio's per-loop pool, as FastAPI 'def' endpoints use
    EXECUTOR = "executor"  # a dedicated ThreadPoolExecutor via loop.run_in_executor
    PROCESS = "process"  # a ProcessPoolExecutor: the classic way around the GIL


class WorkerBalance(enum.StrEnum):
    """How the ``workers`` topology spreads connections over its worker processes."""

    ACCEPTOR = "acceptor"  # the parent accepts and hands each connection to the least-loaded worker
    REUSEPORT = "reuseport"  # each worker its own SO_REUSEPORT socket: the kernel hashes (for comparison)


class StartMethod(enum.StrEnum):
    """How a server starts its worker processes and process-pool children."""

    SPAWN = "spawn"  # a fresh interpreter each, importing what it needs (the default)
    FORK = "fork"  # a copy of the starting process, imports included (only while it has one thread)


START_METHOD_HELP: dict[StartMethod, str] = {
    StartMethod.SPAWN: "fresh interpreters that import what they need",
    StartMethod.FORK: "copies of the serving process, imports included (spawn where it already runs threads)",
}

WORKER_BALANCE_HELP: dict[WorkerBalance, str] = {
    WorkerBalance.ACCEPTOR: "the parent accepts, and hands each connection to the worker with fewest open",
    WorkerBalance.REUSEPORT: "each worker accepts on its own SO_REUSEPORT socket (kernel hash; to compare)",
}


class HttpServer(enum.StrEnum):
    """Which HTTP server runs the service (``ftscale serve --server``; which runs where: ftscale.engines)."""

    UVICORN_H11 = "uvicorn-h11"  # uvicorn with h11 on asyncio: pure Python, installs on every build
    UVICORN_FAST = "uvicorn-fast"  # uvicorn with httptools on uvloop (C extensions, wheels per build)
    GRANIAN = "granian"  # granian: HTTP in Rust (tokio); the app on an asyncio loop per worker
    HYPERCORN = "hypercorn"  # hypercorn: pure Python (h11) on asyncio


DEFAULT_SERVER = HttpServer.UVICORN_H11

SERVER_HELP: dict[HttpServer, str] = {
    HttpServer.UVICORN_H11: "uvicorn, h11 on asyncio (the default: pure Python, the same on every build)",
    HttpServer.UVICORN_FAST: "uvicorn, httptools on uvloop (needs their wheels for the build)",
    HttpServer.GRANIAN: "granian's ASGI server (Rust I/O; workers are threads on free-threaded builds, "
    "processes on GIL builds)",
    HttpServer.HYPERCORN: "hypercorn on asyncio (pure Python; workers are processes on every build)",
}


class Scaling(enum.StrEnum):
    """How the micro bench grows the work with threads."""

    STRONG = "strong"  # fixed total work split between the threads
    WEAK = "weak"  # fixed work per thread


class WorkloadClass(enum.StrEnum):
    """How a workload's CPU time relates to the GIL; reports group results by this."""

    PURE_PYTHON = "pure-python"
    C_HOLDS_GIL = "c-holds-gil"
    C_RELEASES_GIL = "c-releases-gil"
    MIXED_IO = "mixed-io"
    BLOCKING_IO = "blocking-io"
    STREAMING = "streaming"
    CONTENTION = "contention"
    APP = "app"  # a user's own ASGI app (``ftscale app``): whatever its request mix does


class LoadKind(enum.StrEnum):
    """How the HTTP bench offers load."""

    CLOSED = "closed"  # each connection sends its next request when the previous answer arrives
    OPEN = "open"  # requests are due at a fixed rate; latency counts from the due time


class Arrival(enum.StrEnum):
    """When an open loop's requests are due (``--arrivals``)."""

    POISSON = "poisson"  # independent clients: exponential gaps, bursts as real traffic has them
    UNIFORM = "uniform"  # request i due at i / rate: no bursts (understates queueing; for comparison)


ARRIVAL_HELP: dict[Arrival, str] = {
    Arrival.POISSON: "exponential gaps between requests (a Poisson process), drawn from a recorded seed",
    Arrival.UNIFORM: "evenly spaced requests (no bursts: it understates the tail latency of real traffic)",
}


class Generator(enum.StrEnum):
    """Which load generator offers the HTTP bench's load (``--generator``; its runner:
    ``ftscale.bench.http.loadgen.RUNNERS``)."""

    WRK = "wrk"  # wrk (C, epoll): closed loop only; the default where it is installed
    PYTHON = "python"  # the built-in asyncio client: closed and open loop, streams, one process a CPU


@dataclass(frozen=True)
class GeneratorInfo:
    """What a load generator can do, for everything that asks instead of comparing names."""

    loads: frozenset[LoadKind]  # the load kinds it offers (an open loop needs due times per request)
    streams: bool  # reads server-sent event streams chunk by chunk (time to first byte, gaps)
    executable: str | None  # the program it needs on PATH (None: runs in ftscale's own interpreter)
    measures: str  # what its latencies count from, in the report's words


GENERATORS: dict[Generator, GeneratorInfo] = {
    Generator.WRK: GeneratorInfo(
        loads=frozenset({LoadKind.CLOSED}),
        streams=False,
        executable="wrk",
        measures="wrk's own latency histogram: from each request's send to its answer",
    ),
    Generator.PYTHON: GeneratorInfo(
        loads=frozenset({LoadKind.CLOSED, LoadKind.OPEN}),
        streams=True,
        executable=None,
        measures="from each request's send (closed loop) or its due time (open loop) to its answer",
    ),
}

GENERATOR_HELP: dict[Generator, str] = {
    Generator.WRK: "wrk, closed loop (needs wrk on PATH: apt-get install wrk)",
    Generator.PYTHON: "the built-in asyncio client, one process per client CPU (closed and open loop, "
    "streams)",
}


class RunKind(enum.StrEnum):
    MICRO = "micro"
    HTTP = "http"


MODE_HELP: dict[Mode, str] = {
    Mode.INLINE: "compute in an async endpoint, on the event loop (blocks it)",
    Mode.THREADPOOL: "compute through Starlette's run_in_threadpool, as FastAPI 'def' endpoints do",
    Mode.EXECUTOR: "compute in a dedicated ThreadPoolExecutor via loop.run_in_executor",
    Mode.PROCESS: "compute in a ProcessPoolExecutor (spawned children; arguments and results pickled)",
}


CLASS_NAMES: dict[WorkloadClass, str] = {
    WorkloadClass.PURE_PYTHON: "Pure Python",
    WorkloadClass.C_HOLDS_GIL: "C holding the GIL",
    WorkloadClass.C_RELEASES_GIL: "C releasing the GIL",
    WorkloadClass.MIXED_IO: "I/O then Python",
    WorkloadClass.BLOCKING_IO: "Synchronous data layer",
    WorkloadClass.STREAMING: "Streaming responses",
    WorkloadClass.CONTENTION: "Shared-state contention",
    WorkloadClass.APP: "Your app",
}

CLASS_HELP: dict[WorkloadClass, str] = {
    WorkloadClass.PURE_PYTHON: "pure Python: the interpreter itself does the work",
    WorkloadClass.C_HOLDS_GIL: (
        "C extensions that hold the GIL while they work (json, re, numpy on small arrays, pydantic)"
    ),
    WorkloadClass.C_RELEASES_GIL: "C that releases the GIL (hashlib on large buffers, BLAS)",
    WorkloadClass.MIXED_IO: "awaits upstream I/O, then computes in Python (a gateway)",
    WorkloadClass.BLOCKING_IO: (
        "a synchronous database driver and ORM behind the thread pool: blocking I/O and C that release "
        "the GIL (sqlite3), then rows mapped to objects and validated in Python (pydantic)"
    ),
    WorkloadClass.STREAMING: (
        "a server-sent event stream (an LLM gateway): Python CPU work per chunk, an awaited upstream "
        "delay between chunks; measured as chunks per second, time to first byte and gaps between chunks"
    ),
    WorkloadClass.CONTENTION: "threads contend for one lock and one shared table",
    WorkloadClass.APP: "your own ASGI app under its request mix (ftscale app): its endpoints decide the work",
}

# A user's app served by ftscale (``ftscale serve --app``) answers ftscale's own /health and /info
# under this prefix, which no route of the app may use; everything else goes to the app.
APP_PREFIX = "/__ftscale"


class InfoDetail(enum.StrEnum):
    """How much ``/info`` says (``ftscale serve --info``)."""

    FULL = "full"  # everything, as the benches read it
    MINIMAL = "minimal"  # for a shared host: no interpreter path, configure arguments, app folder or pids


INFO_DETAIL_HELP: dict[InfoDetail, str] = {
    InfoDetail.FULL: "everything (the benches read it)",
    InfoDetail.MINIMAL: "for a shared host: without the interpreter's path and configure arguments, the "
    "app's folder and every pid",
}


class Bucket(enum.StrEnum):
    """Where a profiled cell's CPU time went (``ftscale.bench.profile.buckets`` sorts samples into these)."""

    PYTHON = "python"  # the eval loop and the object code it runs: the work itself
    REFCOUNT = "refcount"  # shared / biased reference counting slow paths (free-threaded builds)
    LOCK_WAIT = "lock-wait"  # contended locks and critical sections: slow paths, spinning, parking
    LOCK_FAST = "lock-fast"  # the lock API without contention: acquire/release, seqlocks
    GIL = "gil"  # taking and dropping the GIL on-CPU (GIL builds)
    GC = "gc"  # garbage collection, stop-the-world pauses included
    ALLOC = "alloc"  # the memory allocator (mimalloc, pymalloc, libc malloc)
    HTTP = "http"  # the HTTP stack and the event loop (uvicorn, h11, starlette, asyncio, the service)
    KERNEL = "kernel"  # system calls, the network stack, scheduling, page faults
    OTHER = "other"  # C extensions and libraries outside these (numpy, regex, json, hashlib ...)
    IDLE = "idle"  # capacity unused while the cell's threads were blocked (sleeping)
    CPU_WAIT = "cpu-wait"  # capacity unused while the cell's threads were runnable but not running


BUCKET_HELP: dict[Bucket, str] = {
    Bucket.PYTHON: "the interpreter running Python code: the eval loop and the object code it calls",
    Bucket.REFCOUNT: (
        "reference counting of objects shared between threads: the slow paths of free-threaded builds "
        "(_Py_DecRefShared, biased-refcount merges); atomic increments inlined into callers stay in python"
    ),
    Bucket.LOCK_WAIT: (
        "waiting for a lock or a per-object critical section held by another thread "
        "(slow paths of PyMutex, sched_yield spinning, parking lot, futex waits)"
    ),
    Bucket.LOCK_FAST: (
        "taking and releasing locks nobody else holds (threading.Lock, critical sections, seqlocks)"
    ),
    Bucket.GIL: "taking and handing over the GIL (on-CPU part only: a thread waiting for it is idle)",
    Bucket.GC: "garbage collection, including stop-the-world pauses and threads parked by them",
    Bucket.ALLOC: "the memory allocator (mimalloc on free-threaded builds, pymalloc, libc malloc)",
    Bucket.HTTP: (
        "the HTTP stack and the event loop: uvicorn, h11, Starlette, FastAPI, anyio, asyncio, the service"
    ),
    Bucket.KERNEL: "the kernel: system calls, the network stack, scheduling, page faults",
    Bucket.OTHER: "C extensions and libraries outside the buckets above (numpy, re, json, hashlib, libc)",
    Bucket.IDLE: (
        "capacity (the cell's threads, at most its CPUs, over the profiled window) left unused while its "
        "threads slept: waiting for the GIL on GIL builds, on a parked lock, in a stop-the-world pause, "
        "for I/O or for work"
    ),
    Bucket.CPU_WAIT: (
        "capacity left unused while the cell's threads were ready to run but not running: preempted by "
        "other processes on the same CPUs (or by more threads than CPUs)"
    ),
}


class Flag(enum.StrEnum):
    """A qualification a cell carries beside its numbers."""

    GIL_ENABLED = "gil-enabled-on-free-threaded-build"
    GENERATOR_SATURATED = "generator-saturated"
    ERRORS = "http-errors"
    HIGH_CV = "cv-over-5pct"
    SHARED_CPUS = "server-and-client-share-cpus"
    OVERSUBSCRIBED = "threads-over-usable-cores"
    UNBALANCED = "unbalanced-units"
    NAGLE = "nagle-on"
    DISTURBED = "machine-disturbed"
    SEND_LAG = "generator-send-lag"
    GENERATOR_UNCHECKED = "generator-busy-unknown"


@dataclass(frozen=True)
class FlagInfo:
    short: str  # what tables print
    meaning: str  # one line for the legend
    kinds: frozenset[RunKind]  # the kinds of run in which the flag can occur
    disqualifies: bool  # a flagged cell cannot win a verdict unqualified


_BOTH = frozenset({RunKind.MICRO, RunKind.HTTP})
_HTTP = frozenset({RunKind.HTTP})
_MICRO = frozenset({RunKind.MICRO})

FLAGS: dict[Flag, FlagInfo] = {
    Flag.GIL_ENABLED: FlagInfo(
        "GIL-on",
        "the free-threaded build ran with the GIL enabled (an extension module re-enabled it)",
        _BOTH,
        True,
    ),
    Flag.GENERATOR_SATURATED: FlagInfo(
        "gen-saturated",
        "the load generator was the bottleneck: the throughput is a lower bound on what the server can do",
        _HTTP,
        True,
    ),
    Flag.ERRORS: FlagInfo(
        "errors", "some requests failed (HTTP errors, timeouts or socket errors)", _HTTP, True
    ),
    # Noise widens a point's interval, which the tie rule already weighs: a noisy point still
    # competes (disqualifying it made the GIL build's best a slower, steadier design on a noisy host).
    Flag.HIGH_CV: FlagInfo(
        "CV>5%",
        "the repetitions vary by more than 5 % (coefficient of variation): the interval is wide, and a "
        "ratio whose interval contains 1 is a tie",
        _BOTH,
        False,
    ),
    Flag.SHARED_CPUS: FlagInfo(
        "shared-CPUs",
        "server and load generator ran on the same CPUs (allowed with --allow-shared-cpus): they compete",
        _HTTP,
        False,
    ),
    Flag.OVERSUBSCRIBED: FlagInfo(
        "oversubscribed",
        "more threads than the CPUs the process may use: the point shows oversubscription, not scaling",
        _BOTH,
        False,
    ),
    Flag.UNBALANCED: FlagInfo(
        "unbalanced",
        "a serving unit (worker process or event loop) took almost none of the requests, or far more than "
        "its share: the design ran on fewer units than it was given",
        _HTTP,
        True,
    ),
    Flag.NAGLE: FlagInfo(
        "Nagle-on",
        "the server's accepted connections had TCP_NODELAY off: responses written in two parts wait "
        "for the client's delayed ACK (~40 ms), so the point measures a socket option, not the server",
        _HTTP,
        True,
    ),
    Flag.SEND_LAG: FlagInfo(
        "send-lag",
        "the built-in generator sent requests late: its send-lag p99 was over 5 % of the p99 target (of "
        "the point's own p99 where there is no target); latency counts from the due time, so its delay "
        "is in the latency",
        _HTTP,
        True,
    ),
    Flag.GENERATOR_UNCHECKED: FlagInfo(
        "gen-busy?",
        "how busy the load generator was is unknown (its scheduler times could not be read): whether "
        "it, not the server, set the pace was not checked",
        _HTTP,
        False,
    ),
}

FLAGS[Flag.DISTURBED] = FlagInfo(
    "disturbed",
    "other processes or the hypervisor took a share of the server's or the generator's CPUs during a "
    "repetition, and its measurement again was disturbed too (steal over 5 %, or other processes over "
    "10 % of a CPU): the point is noisier than its neighbours",
    _HTTP,
    False,
)

FLAG_ORDER: tuple[Flag, ...] = tuple(FLAGS)


def flag_info(name: str) -> FlagInfo | None:
    """What a flag read from a result file means (None for a flag this version does not know)."""
    try:
        return FLAGS[Flag(name)]
    except ValueError:
        return None
