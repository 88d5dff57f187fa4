"""Sockets by address: a port free now (:func:`free_port`), and this process's socket for one
connection, found by its addresses, for servers that never show it.

granian and hypercorn hand the app a request's addresses (its ASGI scope's ``client`` and
``server``), not its socket. :func:`connection_socket` finds the socket this process holds for
those addresses and returns a duplicate of it: :mod:`server.info` reads TCP_NODELAY from it,
and :mod:`server.guard` shuts it down to drop a client that takes no bytes (the server's own
descriptor then fails its next write, and the server closes it), or reads its
:func:`connection_state` to close a connection granian left open after a 408 once the answer is
out. Closing the duplicate leaves the server's descriptor alone.

It scans this process's sockets (``psutil``): for a check now and then, never for every request
(the guard scans only for a request it refused with 408 or a client it drops, off its event loop).
:func:`free_port` finds a loopback port no one listens on, for a server about to start.
"""

from __future__ import annotations

import os
import socket
import struct
from collections.abc import Sequence
from typing import Any, NamedTuple

# struct tcp_info (linux/tcp.h): tcpi_bytes_acked, a u64 after 8 bytes of u8 fields, 24 u32 fields
# and two u64 pacing rates; there since Linux 4.1.
_BYTES_ACKED = struct.Struct("=Q")
_BYTES_ACKED_AT = 120
_TCP_INFO_LEN = 232


class ConnectionState(NamedTuple):
    """One connection's socket as the kernel sees it: which socket (its inode: a later connection
    between the same addresses is another), and how many bytes the client has acknowledged."""

    inode: int
    bytes_acked: int | None


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


def connection_state(client: Sequence[Any] | None, server: Sequence[Any] | None) -> ConnectionState | None:
    """The state of this process's socket from ``server`` to ``client``, or None if there is none."""
    sock = connection_socket(client, server)
    if sock is None:
        return None
    with sock:
        inode = os.fstat(sock.fileno()).st_ino
        try:
            info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO_LEN)
        except OSError:
            return ConnectionState(inode, None)
    if len(info) < _BYTES_ACKED_AT + _BYTES_ACKED.size:
        return ConnectionState(inode, None)
    return ConnectionState(inode, _BYTES_ACKED.unpack_from(info, _BYTES_ACKED_AT)[0])


def sever(client: Sequence[Any] | None, server: Sequence[Any] | None, inode: int | None = None) -> bool:
    """Shut down both directions of this process's connection to ``client`` (only if its socket is
    still ``inode``, when given): whatever the server is waiting to write or read fails, and it
    closes the connection. False if it was not found."""
    sock = connection_socket(client, server)
    if sock is None:
        return False
    with sock:
        if inode is not None and os.fstat(sock.fileno()).st_ino != inode:
            return False
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:  # already gone
            return False
    return True
