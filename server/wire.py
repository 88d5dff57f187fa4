"""What every server's connection rules share, uvicorn's (:mod:`server.protocol`) and hypercorn's
(:mod:`server.hypercorn_limits`): a raw JSON answer written past the HTTP library, a transport's
bytes not yet read, and whether its socket has TCP_NODELAY. Standard library only.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import socket
import struct
import termios
from typing import Any

RETRY_AFTER_S = 1
EVICT_IDLE_S = 0.25  # a connection idle this long may be closed to make room at the limit


def raw_json_response(status: int, reason: str, payload: dict[str, Any], extra: str = "") -> bytes:
    """A complete HTTP/1.1 response that closes the connection, as bytes (``extra``: more header
    lines, each ending in CRLF).

    Written past h11 on purpose: h11 will not send a response before it has received a request.
    """
    body = json.dumps(payload).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n{extra}connection: close\r\n\r\n"
    )
    return head.encode("latin-1") + body


def unread_bytes(transport: asyncio.BaseTransport) -> int:
    """Bytes that have arrived on the transport's socket and not been read yet (0 if unknown).

    A connection taken up after the loop was busy has its request waiting in the kernel
    before the protocol has read a byte of it: it is not idle.
    """
    sock = transport.get_extra_info("socket")
    if sock is None:
        return 0
    try:
        raw = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0" * 4)
    except OSError:
        return 0
    return int(struct.unpack("i", raw)[0])


def nodelay(transport: asyncio.BaseTransport) -> bool | None:
    """Whether the transport's TCP socket has TCP_NODELAY (None if it is not a TCP socket)."""
    sock = transport.get_extra_info("socket")
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return None
    return bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
