"""The server reads each topology from its descriptor (ftscale.vocab.TOPOLOGIES): its runner, how
its pool is sized, how connections are spread, and whether its workers are ftscale's own."""

from __future__ import annotations

import dataclasses

import pytest

from ftscale import engines
from ftscale.server import cli
from ftscale.server.config import ServerConfig
from ftscale.vocab import TOPOLOGIES, HttpServer, Topology

UVICORN = (HttpServer.UVICORN_H11, HttpServer.UVICORN_FAST)


@pytest.mark.parametrize("topology", list(Topology))
def test_uvicorn_serves_each_topology_with_the_runner_its_descriptor_names(topology: Topology) -> None:
    module, _, function = TOPOLOGIES[topology].runner.partition(":")
    for server in UVICORN:
        serve = cli.runner(topology, server)
        assert (serve.__module__, serve.__name__) == (module, function)


@pytest.mark.parametrize(
    ("server", "function"),
    [(HttpServer.GRANIAN, "run_granian"), (HttpServer.HYPERCORN, "run_hypercorn")],
)
def test_granian_and_hypercorn_serve_every_topology_with_their_own_runner(
    server: HttpServer, function: str
) -> None:
    assert {cli.runner(topology, server).__name__ for topology in Topology} == {function}


def test_runners_are_distinct_where_topologies_are() -> None:
    # A descriptor pointing at another topology's runner would serve the wrong topology.
    names = [info.runner for info in TOPOLOGIES.values()]
    assert len(set(names)) == len(names)


@pytest.mark.parametrize(
    ("topology", "pool", "units"), [("single", 3, 1), ("loops", 1, 3), ("workers", 1, 3)]
)
def test_the_pool_is_sized_and_the_units_counted_as_the_descriptor_says(
    topology: str, pool: int, units: int
) -> None:
    config = ServerConfig(topology=Topology(topology), threads=3)
    assert (config.effective_pool_size, config.serving_units) == (pool, units)


def test_a_descriptor_that_sizes_the_pool_by_threads_gets_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    info = dataclasses.replace(TOPOLOGIES[Topology.LOOPS], pool="threads", units="one")
    monkeypatch.setitem(TOPOLOGIES, Topology.LOOPS, info)
    config = ServerConfig(topology=Topology.LOOPS, threads=3)
    assert (config.effective_pool_size, config.serving_units) == (3, 1)


ACCEPTOR = "ftscale's acceptor: each connection to the unit with the fewest open"
REUSEPORT = "kernel: one SO_REUSEPORT socket per unit"


@pytest.mark.parametrize(
    ("server", "topology", "worker_balance", "expected"),
    [
        ("uvicorn-h11", "single", "reuseport", None),
        ("uvicorn-h11", "workers", "acceptor", ACCEPTOR),
        ("uvicorn-h11", "workers", "reuseport", REUSEPORT),  # workers take --worker-balance
        ("uvicorn-h11", "loops", "reuseport", ACCEPTOR),  # loops do not
        ("uvicorn-fast", "loops-reuseport", "acceptor", REUSEPORT),
        ("uvicorn-h11", "gunicorn", "acceptor", "kernel: one listening socket shared by every worker"),
        ("granian", "loops", "acceptor", REUSEPORT),
        ("hypercorn", "workers", "acceptor", "kernel: one listening socket shared by every unit"),
    ],
)
def test_balance_follows_the_descriptor(
    server: str, topology: str, worker_balance: str, expected: str
) -> None:
    assert engines.balance(HttpServer(server), Topology(topology), worker_balance) == expected


@pytest.mark.parametrize(
    ("topology", "free_threaded", "refused"),
    [("workers", True, True), ("workers", False, False), ("loops", False, True), ("loops", True, False)],
)
def test_granian_is_refused_on_the_builds_its_descriptor_names(
    topology: str, free_threaded: bool, refused: bool
) -> None:
    reason = engines.topology_reason(HttpServer.GRANIAN, Topology(topology), free_threaded)
    assert (reason is not None) is refused


def test_a_topology_limited_to_some_servers_refuses_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    info = dataclasses.replace(TOPOLOGIES[Topology.LOOPS], servers=("uvicorn-h11",), refusals=())
    monkeypatch.setitem(TOPOLOGIES, Topology.LOOPS, info)
    assert engines.topology_reason(HttpServer.UVICORN_H11, Topology.LOOPS, True) is None
    reason = engines.topology_reason(HttpServer.UVICORN_FAST, Topology.LOOPS, True)
    assert reason == "loops runs on uvicorn-h11 only"


def test_only_ftscales_own_worker_processes_count_as_its_workers() -> None:
    own = {topology for topology, info in TOPOLOGIES.items() if info.own_workers}
    assert own == {Topology.WORKERS}
