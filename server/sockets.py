"""Sockets by address: a port free now (:func:`free_port`), and this process's socket for one
connection, found by its addresses, for servers that never show it.

granian and hypercorn hand the app a request's addresses (its ASGI scope's ``client`` and
``server``), not its socket. :func:`connection_socket` finds the socket this process holds for
those addresses and returns a duplicate of it: :mod:`server.info` reads TCP_NODELAY from it,
and :mod:`server.guard` shuts it down to drop a client that takes no bytes (the server's own
descriptor then fails its next write, and the server closes it). Closing the duplicate leaves
the server's descriptor alone.

It scans this process's sockets (``psutil``): for a check now and then, never per request.
:func:`free_port` finds a loopback port no one listens on, for a server about to start.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Sequence
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` free now (for a server about to bind it: another may take it meanwhile)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _address(value: Sequence[Any] | None) -> tuple[str, int] | None:
    # granian gives ports as strings, uvicorn and hypercorn as integers.
    if not value or len(value) < 2:
        return None
    try:
        return str(value[0]), int(value[1])
    except (TypeError, ValueError):
        return None


def connection_socket(client: Sequence[Any] | None, server: Sequence[Any] | None) -> socket.socket | None:
    """A duplicate of this process's TCP socket from ``server`` to ``client`` (None if none is
    found, or it closed meanwhile); the caller closes it."""
    import psutil

    remote, local = _address(client), _address(server)
    if remote is None or local is None:
        return None
    for conn in psutil.Process().net_connections(kind="tcp"):
        if conn.fd < 0 or not conn.raddr or not conn.laddr:
            continue
        if (conn.laddr[0], conn.laddr[1]) == local and (conn.raddr[0], conn.raddr[1]) == remote:
            try:
                return socket.socket(fileno=os.dup(conn.fd))
            except OSError:  # closed meanwhile
                return None
    return None


def sever(client: Sequence[Any] | None, server: Sequence[Any] | None) -> bool:
    """Shut down both directions of this process's connection to ``client``: whatever the server is
    waiting to write or read fails, and it closes the connection. False if it was not found."""
    sock = connection_socket(client, server)
    if sock is None:
        return False
    with sock:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already gone
            return False
    return True
