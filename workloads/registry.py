"""The one table of CPU workloads that the server, the benches and the tests all read.

A workload is a plain deterministic function ``compute(size) -> int`` (a checksum) plus its
metadata: its class (what it does to the GIL), what its size means, its bounds and defaults,
and an optional simulated I/O wait that happens *before* the compute (the shape of a gateway
that awaits an upstream call and then does CPU work): the service awaits it on its event loop;
the micro bench measures the compute only.

A *streamed* workload (``stream``, a :class:`StreamSpec`) is also served as a stream of chunks:
the service awaits ``delay_s`` before each chunk (the upstream's pace) and computes one chunk
at a time with ``stream.chunk(size, index)``; ``compute(size)`` stays the CPU work of all the
chunks back to back, the delays left out, folded into one checksum. A workload that needs
something made once before its first call (a database file) names it in ``prepare``: the
service runs it at start-up, the budget tool before timing.

Sizes have two upper bounds. ``max_size`` is the CPU budget: one call at that size costs at
most about :data:`CPU_BUDGET_S` of CPU on the development machine (2 cores, one thread,
CPython 3.11 and 3.14t; ``python -m ftscale.workloads.budget`` measures it again: 0.9 to 1.9 s
and at most 270 MiB there, varying by some 30 % between runs on that shared machine), so one
request cannot occupy a core for half a minute or take gigabytes. ``large_max_size`` is the
bound before there was a budget, reachable on purpose (``ftscale serve --allow-large-sizes``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from ftscale.vocab import WorkloadClass


class UnknownWorkload(KeyError):
    """A workload name that is not registered; the message lists the known ones."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class InvalidSize(ValueError):
    """A size outside a workload's bounds, or not an integer; the message names the bound."""


# What one call at ``max_size`` may cost, in CPU seconds on one thread of the development machine.
CPU_BUDGET_S = 2.0


@dataclass(frozen=True)
class StreamSpec:
    """How a workload streams: ``size`` chunks, each ``chunk(size, index)`` after ``delay_s``."""

    chunk: Callable[[int, int], bytes]  # one chunk's bytes (for SSE, one whole event)
    delay_s: float  # awaited before each chunk (the upstream's time between chunks)
    media_type: str = "text/event-stream"

    def chunks(self, size: int) -> int:
        """Chunks in a stream of ``size`` (the size is the chunk count)."""
        return size


@dataclass(frozen=True)
class Workload:
    name: str
    compute: Callable[[int], int]
    workload_class: WorkloadClass
    size_meaning: str
    default_size: int
    min_size: int
    max_size: int
    smoke_size: int
    description: str
    io_wait_s: float = 0.0
    large_max_size: int | None = None  # None: the same as max_size
    stream: StreamSpec | None = None  # served as a stream of chunks too (POST /stream/{name})
    prepare: Callable[[], object] | None = None  # made once before the first call (at start-up)
    # Distributions it imports beyond the service's own (numpy): an environment may lack them.
    needs: tuple[str, ...] = ()

    def waits(self) -> str | None:
        """What the service awaits besides the compute, in words (the micro bench leaves it out)."""
        if self.stream is not None:
            return f"{self.stream.delay_s * 1000:g} ms upstream delay before each chunk"
        if self.io_wait_s:
            return f"{self.io_wait_s * 1000:g} ms simulated I/O wait"
        return None

    def size_limit(self, *, allow_large: bool = False) -> int:
        """The largest size accepted: the CPU budget's, or the old bound with ``allow_large``."""
        if allow_large and self.large_max_size is not None:
            return self.large_max_size
        return self.max_size

    def check_size(self, size: object, *, allow_large: bool = False) -> int:
        """Return ``size`` if it is an int within bounds, else raise :class:`InvalidSize`."""
        if isinstance(size, bool) or not isinstance(size, int):
            raise InvalidSize(f"size for {self.name!r} must be an integer, got {size!r}")
        limit = self.size_limit(allow_large=allow_large)
        if not self.min_size <= size <= limit:
            hint = (
                ""
                if allow_large or limit == self.size_limit(allow_large=True)
                else "; larger needs ftscale serve --allow-large-sizes"
            )
            raise InvalidSize(
                f"size for {self.name!r} must be between {self.min_size} and {limit} "
                f"({self.size_meaning}){hint}; got {size}"
            )
        return size


REGISTRY: dict[str, Workload] = {}


def register(
    *,
    workload_class: WorkloadClass,
    size_meaning: str,
    default_size: int,
    max_size: int,
    smoke_size: int,
    min_size: int = 1,
    io_wait_s: float = 0.0,
    large_max_size: int | None = None,
    stream: StreamSpec | None = None,
    prepare: Callable[[], object] | None = None,
    needs: tuple[str, ...] = (),
) -> Callable[[Callable[[int], int]], Callable[[int], int]]:
    """Register ``func`` under its own name; its docstring's first line describes it."""

    def decorator(func: Callable[[int], int]) -> Callable[[int], int]:
        name = func.__name__
        if name in REGISTRY:
            raise ValueError(f"workload {name!r} registered twice")
        if not min_size <= smoke_size <= default_size <= max_size <= (large_max_size or max_size):
            raise ValueError(
                f"workload {name!r}: sizes must satisfy min <= smoke <= default <= max <= large max"
            )
        REGISTRY[name] = Workload(
            name=name,
            compute=func,
            workload_class=workload_class,
            size_meaning=size_meaning,
            default_size=default_size,
            min_size=min_size,
            max_size=max_size,
            smoke_size=smoke_size,
            description=(func.__doc__ or name).strip().splitlines()[0],
            io_wait_s=io_wait_s,
            large_max_size=large_max_size,
            stream=stream,
            prepare=prepare,
            needs=needs,
        )
        return func

    return decorator


def get(name: str) -> Workload:
    """The workload called ``name``; :class:`UnknownWorkload` lists the known names otherwise."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise UnknownWorkload(f"unknown workload {name!r}; known: {', '.join(sorted(REGISTRY))}") from None


def select(names: str | list[str] | None) -> list[Workload]:
    """Workloads by name (comma-separated string or list); all of them for None/empty."""
    if not names:
        return list(REGISTRY.values())
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    return [get(n.strip()) for n in names]


def optional_packages() -> tuple[str, ...]:
    """The distributions some workload needs beyond the service's own, each once."""
    return tuple(sorted({n for w in REGISTRY.values() for n in w.needs}))


def missing_here() -> dict[str, str]:
    """The distributions of :func:`optional_packages` this interpreter cannot import, with why."""
    import importlib.util

    return {
        name: "not installed in this interpreter"
        for name in optional_packages()
        if importlib.util.find_spec(name) is None
    }


def unmet(names: Iterable[str], missing: Mapping[str, Mapping[str, str]]) -> str | None:
    """Why the workloads ``names`` cannot run (one line), or None: ``missing`` maps each place
    (a build, "this interpreter") to the distributions it lacks, each with why."""
    for name in names:
        for place, absent in missing.items():
            lacking = [n for n in get(name).needs if n in absent]
            if lacking:
                why = "; ".join(f"{n}: {absent[n]}" for n in lacking)
                return (
                    f"workload {name} needs {', '.join(lacking)}, which {place} does not have ({why}); "
                    "choose other workloads (numpy comes with ftscale's numpy extra)"
                )
    return None


def by_class(workload_class: WorkloadClass) -> Iterator[Workload]:
    return (w for w in REGISTRY.values() if w.workload_class is workload_class)


def streamed() -> list[Workload]:
    """The workloads that are also served as streams."""
    return [w for w in REGISTRY.values() if w.stream is not None]


def calibrate(
    workload: Workload,
    target_s: float,
    clock: Callable[[], float] = time.perf_counter,
    repeat: int = 3,
) -> int:
    """A size whose compute takes about ``target_s`` seconds on this machine, in this thread.

    Doubles the size from the smoke size until one call takes at least half the target,
    then scales linearly to the target and clamps to the workload's bounds. The I/O wait is
    not part of the compute and is not counted.
    """
    if target_s <= 0:
        raise ValueError(f"target duration must be positive, got {target_s}")

    def timed(size: int) -> float:
        best = float("inf")
        for _ in range(repeat):
            start = clock()
            workload.compute(size)
            best = min(best, clock() - start)
        return best

    size = workload.smoke_size
    elapsed = timed(size)
    while elapsed < target_s / 2 and size < workload.max_size:
        size = min(size * 2, workload.max_size)
        elapsed = timed(size)
    scaled = round(size * target_s / elapsed) if elapsed > 0 else workload.max_size
    return max(workload.min_size, min(workload.max_size, scaled))
