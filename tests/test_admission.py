"""Admission never leaks a place: a refused request takes none and gives none back, so the limit
stays where it was however many requests are refused (each leaked place would let one more
request in the next time, until the limit meant nothing)."""

from __future__ import annotations

import concurrent.futures
import threading

import pytest

from ftscale.server.app import create_app
from ftscale.server.config import Mode, ServerConfig
from ftscale.server.executors import Admission, Overloaded
from tests.test_server_app import TestClient, _fake


def test_a_refusal_leaves_the_places_as_they_were() -> None:
    admission = Admission(pool_size=2, queue_limit=1)
    for _ in range(3):
        admission.enter()
    for _ in range(5):
        with pytest.raises(Overloaded):
            admission.enter()
        assert admission.in_flight == 3
    admission.leave()
    admission.enter()  # the one place freed, and no more
    with pytest.raises(Overloaded):
        admission.enter()
    assert admission.in_flight == 3


def test_capacity_is_exactly_the_pool_and_its_queue() -> None:
    admission = Admission(pool_size=3, queue_limit=2)
    for n in range(1, 6):
        admission.enter()
        assert admission.in_flight == n
    with pytest.raises(Overloaded, match="5 requests in flight for a pool of 3 with a queue limit of 2"):
        admission.enter()


@pytest.mark.parametrize("mode", [Mode.THREADPOOL, Mode.EXECUTOR])
def test_the_service_refuses_every_request_while_its_place_is_taken(mode: Mode) -> None:
    """One place (pool 1, no queue), held by a running request: every request after it is a 503,
    not only the first; once it is done, one place is free again."""
    entered, release = threading.Event(), threading.Event()

    def gate(size: int) -> int:
        entered.set()
        assert release.wait(10), "the test never released the gate"
        return size

    app = create_app(
        ServerConfig(mode=mode, pool_size=1, queue_limit=0), registry={"gate": _fake("gate", gate)}
    )
    with TestClient(app) as client, concurrent.futures.ThreadPoolExecutor(1) as pool:
        first = pool.submit(client.post, "/work/gate", json={"size": 7})
        try:
            assert entered.wait(10)
            refused = [client.post("/work/gate", json={"size": 3}).status_code for _ in range(4)]
        finally:
            release.set()
        assert refused == [503] * 4
        assert first.result(10).json()["checksum"] == 7
        assert client.post("/work/gate", json={"size": 5}).json()["checksum"] == 5
