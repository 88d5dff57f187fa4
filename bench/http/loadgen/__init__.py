"""Load generators: wrk when it is installed, else a built-in asyncio HTTP/1.1 client.

Both produce a :class:`~ftscale.schema.LoadResult`: completed requests, throughput, latency
percentiles, errors by status, and the generator's own CPU use (so a cell where the generator, not
the server, was the bottleneck can be flagged). What each can do (load kinds, streams, the program
it needs) is its :data:`ftscale.vocab.GENERATORS` entry; how the bench applies a load with it is
its :data:`RUNNERS` entry. The modules:

- :mod:`.spec`: what one load is (:class:`LoadSpec`), its percentiles and its command line;
- :mod:`.client`: the built-in generator, one asyncio thread in this process (closed and open
  loop, streams timed chunk by chunk);
- :mod:`.processes`: the built-in generator spread over one process per client CPU, merged;
- :mod:`.wrk`: wrk (closed loop only), its threads' busy times sampled while it runs;
- :mod:`.health`: the /health probe that runs beside a load;
- :mod:`.__main__`: ``python -m ftscale.bench.http.loadgen``, one load in its own (pinned) process.

A load sends one request shape (``path``, ``method``, ``body``) or, with ``mix_file``, a user's
request mix by weight, each answer judged by what its request expects (:mod:`ftscale.bench.http.mix`).

Adding a generator: its module here, its :class:`~ftscale.vocab.Generator` and
:data:`~ftscale.vocab.GENERATORS` entry, and its :data:`RUNNERS` entry.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ftscale.bench.http.loadgen.client import DRAIN_S, StreamClock, run_python, stream_figures
from ftscale.bench.http.loadgen.health import probe_health
from ftscale.bench.http.loadgen.processes import merge, merge_streams, process_specs, run_processes
from ftscale.bench.http.loadgen.spec import PERCENTILES, LoadSpec, percentiles_ms
from ftscale.bench.http.loadgen.wrk import (
    WRK_SAMPLE_S,
    WRK_SCRIPT,
    run_wrk,
    wrk_path,
    wrk_seconds,
    wrk_version,
)
from ftscale.schema import LoadResult
from ftscale.vocab import GENERATORS, Generator

__all__ = [
    "DRAIN_S",
    "PERCENTILES",
    "RUNNERS",
    "WRK_SAMPLE_S",
    "WRK_SCRIPT",
    "LoadSpec",
    "Runner",
    "StreamClock",
    "default_generator",
    "installed",
    "merge",
    "merge_streams",
    "percentiles_ms",
    "probe_health",
    "process_specs",
    "run_processes",
    "run_python",
    "run_wrk",
    "stream_figures",
    "wrk_path",
    "wrk_seconds",
    "wrk_version",
]


@dataclass(frozen=True)
class Runner:
    """How the bench applies a load with one generator."""

    # From the orchestrator: the load from the client CPUs given, every process or thread the
    # generator starts pinned to them (:class:`ftscale.bench.http.real.SubprocessGenerator`).
    spread: Callable[[LoadSpec, Sequence[int]], LoadResult]
    # In this process, with this many threads where the generator has threads of its own
    # (``python -m ftscale.bench.http.loadgen <generator>``).
    here: Callable[[LoadSpec, int], LoadResult]
    # What a run's metadata records as the generator's version (None: its program does not say).
    version: Callable[[], str | None]


RUNNERS: dict[Generator, Runner] = {
    # wrk's threads, one per client CPU, all pinned to them
    Generator.WRK: Runner(
        spread=lambda spec, cpus: run_wrk(spec, len(cpus), cpus),
        here=lambda spec, threads: run_wrk(spec, threads),
        version=wrk_version,
    ),
    # one process per client CPU, each one thread of the built-in client
    Generator.PYTHON: Runner(
        spread=run_processes,
        here=lambda spec, _threads: run_python(spec),
        version=lambda: sys.version.split()[0],
    ),
}


def installed(generator: Generator) -> bool:
    """Whether ``generator`` can run here: the program it needs is on PATH (or it needs none)."""
    program = GENERATORS[generator].executable
    return program is None or shutil.which(program) is not None


def default_generator() -> Generator:
    """The generator ``--generator auto`` means: the vocabulary's first that is installed (wrk,
    else the built-in one, which always is)."""
    return next(g for g in GENERATORS if installed(g))
