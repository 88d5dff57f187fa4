"""Which HTTP server can serve which topology on which build, and what each one needs installed.

Standard library only. The service checks a request against this before it starts anything
(``ftscale serve --server``), the HTTP bench turns a combination that cannot run into a
*skipped* cell carrying the reason given here, the build environments install each server's
packages best-effort, and ``/info`` and the report label what actually ran.

How the topologies map onto each server (the README's "Servers" section says why):

=================  ==============================  ===================================  ==================
topology           uvicorn-h11, uvicorn-fast       granian                              hypercorn
=================  ==============================  ===================================  ==================
single             one process, one event loop     one granian worker: a thread of the  one process, one
                                                   process (free-threaded build), or    event loop
                                                   one process under granian's parent
                                                   (GIL build)
workers            N processes fed by ftscale's    N granian worker processes, each on  N processes
                   acceptor (server/workers.py)    its own SO_REUSEPORT socket (GIL     accepting on one
                                                   builds only: granian's free-threaded shared socket
                                                   wheel has no process workers)
loops              N event loops in threads fed    N granian worker threads, each its   not available
                   by ftscale's acceptor           own loop and SO_REUSEPORT socket
                                                   (free-threaded builds only: its GIL
                                                   wheel has no thread workers)
loops-reuseport    N loops in threads, one         not available (granian's ``loops``   not available
                   SO_REUSEPORT socket each        already are that)
=================  ==============================  ===================================  ==================

Whether a granian worker is a thread or a process is decided by the wheel, not by an option:
a free-threaded wheel only has its multi-threaded server, a GIL wheel only its multi-process one.
"""

from __future__ import annotations

from collections.abc import Mapping

from ftscale.vocab import TOPOLOGIES, HttpServer, Topology

# Distributions each server needs, as pip names them. ``uvicorn`` and ``h11`` come with the
# service on every build; the others are the ``servers`` extra, installed best-effort.
SERVER_PACKAGES: dict[HttpServer, tuple[str, ...]] = {
    HttpServer.UVICORN_H11: ("uvicorn", "h11"),
    HttpServer.UVICORN_FAST: ("uvicorn", "uvloop", "httptools"),
    HttpServer.GRANIAN: ("granian",),
    HttpServer.HYPERCORN: ("hypercorn",),
}

# The ``servers`` extra: installed into each build's environment one by one, binary wheels
# only; one without a wheel for a build is recorded there (Build.unavailable) and its servers'
# cells are skipped on that build.
OPTIONAL_PACKAGES: tuple[str, ...] = ("granian", "uvloop", "httptools", "hypercorn")

# Modules each server imports, in import order (the GIL import check imports them one by one).
SERVER_MODULES: dict[HttpServer, tuple[str, ...]] = {
    HttpServer.UVICORN_H11: ("h11", "uvicorn"),
    HttpServer.UVICORN_FAST: ("uvloop", "httptools", "uvicorn.protocols.http.httptools_impl"),
    HttpServer.GRANIAN: ("granian", "granian._granian", "granian.server"),
    HttpServer.HYPERCORN: ("h2", "wsproto", "hypercorn", "hypercorn.asyncio.run"),
}


def topology_reason(server: HttpServer, topology: Topology, free_threaded: bool) -> str | None:
    """Why ``server`` cannot serve ``topology`` on this kind of build (None: it can)."""
    info = TOPOLOGIES[topology]
    build = "free-threaded" if free_threaded else "gil"
    for refusal in info.refusals:
        if refusal.server == server and refusal.builds in ("any", build):
            return refusal.why
    runs = info.servers
    if runs is not None and str(server) not in runs:
        if info.stock:
            return f"{topology} is a stock uvicorn deployment: it runs uvicorn ({', '.join(runs)}) only"
        return f"{topology} runs on {', '.join(runs)} only"
    return None


def package_reason(server: HttpServer, unavailable: Mapping[str, str]) -> str | None:
    """Why ``server`` cannot run in an environment missing ``unavailable`` (package -> why)."""
    missing = [name for name in SERVER_PACKAGES[server] if name in unavailable]
    if not missing:
        return None
    return "; ".join(f"{name} is not installed: {unavailable[name]}" for name in missing)


def skip_reason(
    server: HttpServer, topology: Topology, free_threaded: bool, unavailable: Mapping[str, str]
) -> str | None:
    """Why a (server, topology) design cannot run on a build (None: it can)."""
    return package_reason(server, unavailable) or topology_reason(server, topology, free_threaded)


def unit_kind(topology: Topology) -> str:
    """What serves HTTP, on every server: one loop, loops in threads of one process, or processes."""
    return TOPOLOGIES[topology].unit_kind


def balance(server: HttpServer, topology: Topology, worker_balance: str = "acceptor") -> str | None:
    """How connections are spread over the serving units (None: there is one)."""
    info = TOPOLOGIES[topology]
    if info.units == "one":
        return None
    if info.balance == "shared":
        return "kernel: one listening socket shared by every worker"
    if server is HttpServer.GRANIAN or info.balance == "reuseport":
        return "kernel: one SO_REUSEPORT socket per unit"
    if server is HttpServer.HYPERCORN:
        return "kernel: one listening socket shared by every unit"
    if info.balance_choice and worker_balance == "reuseport":
        return "kernel: one SO_REUSEPORT socket per unit"
    return "ftscale's acceptor: each connection to the unit with the fewest open"
