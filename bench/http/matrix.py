"""What an HTTP sweep measures (:class:`Matrix`) and the rules that size it: threads and connections.

A matrix crosses builds, workloads, each kind of build's designs, thread counts, HTTP servers and
loads; :meth:`Matrix.groups` lays it out as the groups the bench measures (one workload at one
thread count, every build's designs side by side), with a skipped cell where a server cannot run
a design on a build. Nothing here reads arguments or starts anything (:mod:`.plan` does the one,
:mod:`.run` the other).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ftscale import engines, workloads
from ftscale.bench import machine
from ftscale.bench.http.cells import AppRequests, CellSpec, Group
from ftscale.bench.http.options import Design
from ftscale.errors import UsageError
from ftscale.vocab import DEFAULT_SERVER, HttpServer, Topology, WorkloadClass


def parse_cpus(text: str) -> list[int]:
    """``"0-3,8"`` -> [0, 1, 2, 3, 8]."""
    try:
        return machine.parse_cpu_list(text)
    except ValueError:
        raise UsageError(f"bad CPU list {text!r}: use e.g. 0-3,8") from None


def split_cpus(available: Sequence[int]) -> tuple[list[int], list[int]]:
    """The default (server, client) split of ``available``: SMT-aware, see :func:`machine.split_cpus`."""
    try:
        return machine.split_cpus(available, machine.cpu_topology(cpus=list(available)))
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def default_threads(server_cpus: int) -> list[int]:
    """1, 2, 4, ... up to the server's CPUs (and the server's CPU count itself).

    Never more threads than server CPUs: such a point measures oversubscription, and cannot
    carry a verdict (``--threads`` still measures one on purpose, flagged).
    """
    counts, n = [], 1
    while n <= max(1, server_cpus):
        counts.append(n)
        n *= 2
    if server_cpus > 2 and counts[-1] != server_cpus:
        counts.append(server_cpus)
    return counts


def quarter_threads(server_cpus: int) -> list[int]:
    """1, N/4, N/2 and N of the N server CPUs (rounded down, at least 1, each once): the sizes a
    short window compares at (``--preset headline``)."""
    n = max(1, server_cpus)
    return sorted({1, max(1, n // 4), max(1, n // 2), n})


def connections_for(threads: int, io_wait_s: float, streamed: bool = False) -> int:
    """Enough requests in flight to keep N threads busy: 2N, 4N when requests mostly wait.

    A sweep calls it once per workload, with the most threads it measures, and every design and
    thread count of that workload gets the same connections: the thread axis then changes only
    the threads, not the offered concurrency too (:attr:`Matrix.connections_of`). Every server
    admits all of them (:attr:`~ftscale.bench.http.cells.CellSpec.server_args`), so a run measures
    throughput, never 503s of its own making.
    Streams: 16N concurrent streams (at least 16). A stream spends most of its life awaiting the
    upstream (``stream_tokens``: 10 ms before each chunk of about 1 ms of CPU), so it takes about
    a tenth of a core, and 16 per thread keep every thread busy with room to queue.
    """
    if streamed:
        return max(16, 16 * threads)
    return max(4, 4 * threads) if io_wait_s else max(4, 2 * threads)


def app_connections(threads: int) -> int:
    """A user's app: 4N (at least 8), as for requests that mostly wait, since its mix is unknown;
    its server has no admission limit of ftscale's (``--connections`` sets another count)."""
    return max(8, 4 * threads)


@dataclass(frozen=True)
class Matrix:
    """What a run measures: builds, workloads, the designs of each kind of build, threads, loads."""

    builds: list[str]
    workloads: list[str]
    free_threaded_designs: list[Design]
    gil_designs: list[Design]
    threads: list[int]
    sizes: dict[str, int]
    connections: int | None
    closed: bool = True
    open_shares: tuple[float, ...] = ()
    slo: bool = False
    app: AppRequests | None = None  # a user's app (ftscale app): its one "workload" is the app
    servers: tuple[str, ...] = (str(DEFAULT_SERVER),)
    runtime_threads: tuple[int, ...] = (1,)  # granian's variants

    def designs(self, free_threaded: bool) -> list[Design]:
        return self.free_threaded_designs if free_threaded else self.gil_designs

    def server_variants(self) -> list[tuple[str, int]]:
        """(server, runtime threads): granian once per runtime-thread count, the others once."""
        return [
            (server, n)
            for server in self.servers
            for n in (self.runtime_threads if server == HttpServer.GRANIAN else (1,))
        ]

    def connections_of(self, name: str) -> int:
        """Connections for every cell of workload ``name``: ``--connections``, else enough for its
        most threads (:func:`connections_for`), the same at every thread count."""
        if self.connections:
            return self.connections
        most = max(self.threads, default=1)
        if self.app is not None:
            return app_connections(most)
        w = workloads.get(name)
        return connections_for(most, w.io_wait_s, w.stream is not None)

    def cell(self, build: str, name: str, design: Design, threads: int, **load: Any) -> CellSpec:
        """One cell of this matrix (or of a remote server's own configuration)."""
        mode, topology = design
        if self.app is not None:
            return CellSpec(
                build=build,
                workload=name,
                workload_class=str(WorkloadClass.APP),
                size=0,
                mode=mode,
                topology=topology,
                threads=threads,
                connections=self.connections_of(name),
                app=self.app,
                **load,
            )
        w = workloads.get(name)
        return CellSpec(
            build=build,
            workload=name,
            workload_class=str(w.workload_class),
            size=self.sizes.get(name, w.default_size),
            mode=mode,
            topology=topology,
            threads=threads,
            connections=self.connections_of(name),
            stream=w.stream is not None,
            **load,
        )

    def groups(
        self, free_threaded: dict[str, bool], unavailable: Mapping[str, Mapping[str, str]] | None = None
    ) -> list[Group]:
        """One group per workload and thread count; inside, every build's designs side by side,
        under every server. A design a server cannot run on a build (``unavailable``: build ->
        packages it could not install) is a skipped cell with the reason."""
        out = []
        for name in self.workloads:
            for n in self.threads:
                plans: list[CellSpec] = []
                for build in self.builds:
                    for design in self.designs(free_threaded[build]):
                        for server, runtime in self.server_variants():
                            skip = engines.skip_reason(
                                HttpServer(server),
                                Topology(design[1]),
                                free_threaded[build],
                                (unavailable or {}).get(build, {}),
                            )
                            on = {"server": server, "runtime_threads": runtime, "skip_reason": skip}
                            # open-loop and target cells need the closed-loop median of the design
                            plans.append(self.cell(build, name, design, n, **on))
                            plans += [
                                self.cell(build, name, design, n, offered_share=s, **on)
                                for s in self.open_shares
                            ]
                            if self.slo:
                                plans.append(self.cell(build, name, design, n, slo=True, **on))
                out.append(Group(name, n, tuple(plans)))
        return out
