"""The service's parts on their own: settings resolution, CLI parsing, the listening socket."""

from __future__ import annotations

import asyncio
import socket
import sys

import pytest

from ftscale.server.cli import build_parser, config_from_args
from ftscale.server.config import Mode, ServerConfig, Topology
from ftscale.server.topology import bind_listener


@pytest.mark.parametrize(
    ("topology", "pool_size", "expected_pool"),
    [
        (Topology.SINGLE, None, 4),
        (Topology.WORKERS, None, 1),
        (Topology.LOOPS, None, 1),
        (Topology.LOOPS_REUSEPORT, None, 1),
        (Topology.LOOPS, 3, 3),
    ],
)
def test_pool_size_and_queue_limit_defaults(
    topology: Topology, pool_size: int | None, expected_pool: int
) -> None:
    config = ServerConfig(topology=topology, threads=4, pool_size=pool_size)
    assert config.effective_pool_size == expected_pool
    assert config.effective_queue_limit == 4 * expected_pool
    assert config.as_dict()["pool_size"] == expected_pool
    assert ServerConfig(topology=topology, threads=4, queue_limit=0).effective_queue_limit == 0


@pytest.mark.parametrize(
    "bad",
    [
        {"threads": 0},
        {"pool_size": 0},
        {"queue_limit": -1},
        {"max_body_bytes": 0},
        {"port": 70000},
        {"mode": "x"},
    ],
)
def test_config_rejects_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ServerConfig(**bad)  # type: ignore[arg-type]


def test_cli_maps_onto_config() -> None:
    args = build_parser().parse_args(
        ["--mode", "process", "--topology", "loops", "--threads", "3", "--port", "9000", "--queue-limit", "0"]
    )
    config = config_from_args(args)
    assert (config.mode, config.topology, config.threads, config.port) == (
        Mode.PROCESS,
        Topology.LOOPS,
        3,
        9000,
    )
    assert (config.host, config.effective_pool_size, config.effective_queue_limit) == ("127.0.0.1", 1, 0)


def _accepted_nodelay(listener: socket.socket) -> int:
    """TCP_NODELAY on the server side of one connection accepted by asyncio from ``listener``."""

    async def main() -> int:
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[int] = loop.create_future()

        class Probe(asyncio.Protocol):
            def connection_made(self, transport: asyncio.BaseTransport) -> None:
                sock = transport.get_extra_info("socket")
                accepted.set_result(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                transport.close()

        server = await loop.create_server(Probe, sock=listener)
        async with server:
            _, writer = await asyncio.open_connection(*listener.getsockname()[:2])
            value = await asyncio.wait_for(accepted, 10)
            writer.close()
            await writer.wait_closed()
        return value

    return asyncio.run(main())


@pytest.mark.skipif(sys.platform != "linux", reason="the proto inheritance described is Linux's")
def test_listener_gives_accepted_connections_nodelay() -> None:
    assert _accepted_nodelay(bind_listener("127.0.0.1", 0)) != 0


@pytest.mark.skipif(sys.platform != "linux", reason="the proto inheritance described is Linux's")
def test_listener_made_like_uvicorns_would_leave_nagle_on() -> None:
    """Why bind_listener exists: a proto-0 socket, as uvicorn.Config.bind_socket makes, gets no NODELAY."""
    listener = socket.socket(socket.AF_INET)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    assert _accepted_nodelay(listener) == 0
