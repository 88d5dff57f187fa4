"""ftscale's serving topologies, each one descriptor: what serves HTTP and how many, in how many
processes, how a pool is sized, how connections are spread, which servers run it and which
refuse it (on which builds), and the function that serves it.

Part of the one vocabulary (:mod:`ftscale.vocab` re-exports every name here). A new topology is
its serving module (the ``runner``) plus one member of :class:`Topology` and one entry in
:data:`TOPOLOGIES`. Standard library only, as the vocabulary is.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Topology(enum.StrEnum):
    """How the service serves HTTP."""

    SINGLE = "single"  # one process, one event loop
    WORKERS = "workers"  # N worker processes, connections balanced between them
    LOOPS = "loops"  # N event loops in N threads of one process, fed by one acceptor
    LOOPS_REUSEPORT = "loops-reuseport"  # N loops, each with its own SO_REUSEPORT listener
    # Stock deployments, as people run the GIL build today (ftscale's own code only wraps them):
    UVICORN_WORKERS = "uvicorn-workers"  # uvicorn --workers N: spawned workers on one shared socket
    GUNICORN = "gunicorn"  # gunicorn --preload -k uvicorn_worker.UvicornWorker: forked workers, one socket


@dataclass(frozen=True)
class Refusal:
    """A server that cannot run a topology: on which builds, and why (``ftscale.engines``)."""

    server: str  # an HttpServer value
    why: str
    builds: str = "any"  # the builds it is refused on: "any", "free-threaded" or "gil"


@dataclass(frozen=True)
class TopologyInfo:
    """What a topology is, for everything that asks instead of comparing names.

    A new topology is its serving module (a ``runner``) plus one entry in :data:`TOPOLOGIES`.
    """

    units: str  # "one": one serving unit; "threads": --threads units (processes or loops)
    unit_kind: str  # "loop", "thread" (event loops in threads) or "process"
    one_process: bool  # serves from one process (no worker processes)
    stock: bool  # a stock deployment (uvicorn --workers, gunicorn), not ftscale's own topology
    servers: tuple[str, ...] | None = None  # the HTTP servers that run it (None: every one that can)
    help: str = ""  # one line for --help and the report's legend
    # "module:function" serving it on uvicorn (resolved by ftscale.server.cli.runner; granian and
    # hypercorn have one runner each, for every topology they run)
    runner: str = ""
    pool: str = "one"  # a pool's default size: "threads" (--threads) or "one" (one unit, one worker)
    # How ftscale's uvicorn stack spreads connections over the units: "acceptor" (one acceptor hands
    # each to the least busy), "reuseport" (an SO_REUSEPORT socket per unit) or "shared" (one socket
    # every unit accepts on); with units "one" there is nothing to spread.
    balance: str = "acceptor"
    balance_choice: bool = False  # --worker-balance picks the balance (acceptor or reuseport)
    refusals: tuple[Refusal, ...] = ()  # the servers that cannot run it, and why

    @property
    def own_workers(self) -> bool:
        """ftscale's own worker processes: each imports the app itself and reports its pid."""
        return not self.one_process and not self.stock


UVICORN_SERVERS = ("uvicorn-h11", "uvicorn-fast")
_HYPERCORN_NO_LOOPS = Refusal(
    "hypercorn", "hypercorn has no event loops in threads (its workers are processes)"
)
TOPOLOGIES: dict[Topology, TopologyInfo] = {
    Topology.SINGLE: TopologyInfo(
        units="one",
        unit_kind="loop",
        one_process=True,
        stock=False,
        help="one process, one event loop; pool size = --threads",
        runner="ftscale.server.topology:run_single",
        pool="threads",
    ),
    Topology.WORKERS: TopologyInfo(
        units="threads",
        unit_kind="process",
        one_process=False,
        stock=False,
        help="--threads worker processes, connections handed to the least busy",
        runner="ftscale.server.workers:run_workers",
        balance_choice=True,
        refusals=(
            Refusal(
                "granian",
                "granian's free-threaded wheel runs its workers as threads, never as processes "
                "(measured as granian loops)",
                builds="free-threaded",
            ),
        ),
    ),
    Topology.LOOPS: TopologyInfo(
        units="threads",
        unit_kind="thread",
        one_process=True,
        stock=False,
        help="--threads event loops in threads of one process, one acceptor balancing connections",
        runner="ftscale.server.loops:run_loops",
        refusals=(
            Refusal(
                "granian",
                "granian's GIL wheel runs its workers as processes, never as threads "
                "(measured as granian workers)",
                builds="gil",
            ),
            _HYPERCORN_NO_LOOPS,
        ),
    ),
    Topology.LOOPS_REUSEPORT: TopologyInfo(
        units="threads",
        unit_kind="thread",
        one_process=True,
        stock=False,
        help="--threads event loops, each on its own SO_REUSEPORT socket (kernel balancing)",
        runner="ftscale.server.loops:run_loops_reuseport",
        balance="reuseport",
        refusals=(
            Refusal(
                "granian",
                "granian's loops are already one SO_REUSEPORT socket per loop (measured as granian loops)",
            ),
            _HYPERCORN_NO_LOOPS,
        ),
    ),
    Topology.UVICORN_WORKERS: TopologyInfo(
        units="threads",
        unit_kind="process",
        one_process=False,
        stock=True,
        servers=UVICORN_SERVERS,
        help="stock uvicorn --workers: --threads spawned worker processes accepting on one "
        "shared socket (kernel balancing), supervised by uvicorn",
        runner="ftscale.server.stock:run_uvicorn_workers",
        balance="shared",
    ),
    Topology.GUNICORN: TopologyInfo(
        units="threads",
        unit_kind="process",
        one_process=False,
        stock=True,
        servers=UVICORN_SERVERS,
        help="stock gunicorn --preload with uvicorn workers: --threads worker processes forked "
        "from the master, accepting on one shared socket",
        runner="ftscale.server.stock:run_gunicorn",
        balance="shared",
    ),
}

TOPOLOGY_HELP: dict[Topology, str] = {topology: info.help for topology, info in TOPOLOGIES.items()}
