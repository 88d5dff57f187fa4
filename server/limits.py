"""One set of limits for every server, and who enforces each on which server.

Every server (``--server``) is held to the same limits, each a ``serve`` option recorded in
``/info``:

==================  =====================  ==========================================================
limit               option (default)       what it bounds
==================  =====================  ==========================================================
head size           ``--max-head-bytes``   a request's head (request line and header fields), bytes
header count        ``--max-headers``      a request's header fields
header timeout      ``--header-timeout``   from a request's first byte (a connection's opening, for its
                                           first) to the end of its head
body timeout        ``--body-timeout``     from the end of a request's head to the end of its body
keep-alive          ``--keepalive-timeout`` how long a connection may sit idle between requests
connection cap      ``--max-connections``  open connections per process
write timeout       ``--write-timeout``    how long a response may wait for its client to take a byte
==================  =====================  ==========================================================

:data:`ENFORCED_BY` says, per server, whether the server's own setting enforces a limit (set from
the option) or ftscale's wrapper does: the guarded uvicorn protocols (:mod:`server.protocol`),
hypercorn's guarded connection (:mod:`server.hypercorn_limits`) or the ASGI guard in front of the
app (:mod:`server.guard`). Where neither can, the combination is refused before anything starts
(:func:`limits_problem`: one line, exit status 2). Checked against uvicorn 0.55 (h11 0.16,
httptools 0.9), granian 2.8 (hyper 1.x) and hypercorn 0.18.

Streams (``--stream-timeout``, ``--max-streams``) are the app's own, the same on every server
(:mod:`server.stream`).

Limits of the table, each the server's: granian's HTTP parser (hyper) refuses a head of more than
100 fields itself and needs a head buffer of at least 8 KiB, and one timer of hyper's bounds both
a head and an idle connection, so granian closes an idle connection, and cuts a head, at the
shorter of ``--header-timeout`` and ``--keepalive-timeout``; ``/info`` reports the values in force.
"""

from __future__ import annotations

import enum

from ftscale.schema import LimitInForce
from ftscale.server.config import ServerConfig
from ftscale.vocab import TOPOLOGIES, HttpServer

FTSCALE = "ftscale"


class Limit(enum.StrEnum):
    """A limit, named as its ``ServerConfig`` field."""

    HEAD_BYTES = "max_head_bytes"
    HEADERS = "max_headers"
    HEADER_TIMEOUT = "header_timeout_s"
    BODY_TIMEOUT = "body_timeout_s"
    KEEPALIVE = "keepalive_timeout_s"
    CONNECTIONS = "max_connections"
    WRITE_TIMEOUT = "write_timeout_s"


# Who enforces each limit on each server: the server itself (its name; the option sets its
# setting) or ftscale's wrapper.
ENFORCED_BY: dict[HttpServer, dict[Limit, str]] = {
    HttpServer.UVICORN_H11: {
        Limit.HEAD_BYTES: "h11",  # uvicorn's h11_max_incomplete_event_size
        Limit.HEADERS: FTSCALE,
        Limit.HEADER_TIMEOUT: FTSCALE,
        Limit.BODY_TIMEOUT: FTSCALE,
        Limit.KEEPALIVE: "uvicorn",
        Limit.CONNECTIONS: FTSCALE,
        Limit.WRITE_TIMEOUT: FTSCALE,
    },
    HttpServer.UVICORN_FAST: {
        Limit.HEAD_BYTES: FTSCALE,  # httptools has no limit of its own
        Limit.HEADERS: FTSCALE,
        Limit.HEADER_TIMEOUT: FTSCALE,
        Limit.BODY_TIMEOUT: FTSCALE,
        Limit.KEEPALIVE: "uvicorn",
        Limit.CONNECTIONS: FTSCALE,
        Limit.WRITE_TIMEOUT: FTSCALE,
    },
    HttpServer.GRANIAN: {
        Limit.HEAD_BYTES: "granian",  # HTTP1Settings.max_buffer_size
        Limit.HEADERS: FTSCALE,  # below hyper's own 100
        Limit.HEADER_TIMEOUT: "granian",  # HTTP1Settings.header_read_timeout
        Limit.BODY_TIMEOUT: FTSCALE,
        Limit.KEEPALIVE: "granian",  # the same timer as the head's
        Limit.CONNECTIONS: "granian",  # backpressure: holds new connections back
        Limit.WRITE_TIMEOUT: FTSCALE,
    },
    HttpServer.HYPERCORN: {
        Limit.HEAD_BYTES: "hypercorn",  # h11_max_incomplete_size
        Limit.HEADERS: FTSCALE,
        Limit.HEADER_TIMEOUT: FTSCALE,
        Limit.BODY_TIMEOUT: FTSCALE,
        Limit.KEEPALIVE: "hypercorn",
        Limit.CONNECTIONS: FTSCALE,
        Limit.WRITE_TIMEOUT: FTSCALE,
    },
}

# What ftscale's guarded uvicorn protocol holds (the ASGI guard holds the header count and the
# framing rules). A stock deployment (``uvicorn-workers``, ``gunicorn``) runs uvicorn's own
# protocol in its workers, as people deploy it: there these are held by nobody, and /info says so.
PROTOCOL_HELD = (
    Limit.HEAD_BYTES,
    Limit.HEADER_TIMEOUT,
    Limit.BODY_TIMEOUT,
    Limit.CONNECTIONS,
    Limit.WRITE_TIMEOUT,
)
NOT_HELD = "none (a stock deployment runs uvicorn's own protocol)"

GRANIAN_MAX_HEADERS = 100  # hyper's fixed limit on a head's fields
GRANIAN_MIN_HEAD_BYTES = 8192  # hyper's smallest read buffer (it refuses to start below it)


def limits_problem(config: ServerConfig) -> str | None:
    """Why ``config``'s limits cannot be held on its server (one line), or None."""
    if config.server is HttpServer.GRANIAN:
        if config.max_headers > GRANIAN_MAX_HEADERS:
            return (
                f"--server granian cannot accept --max-headers {config.max_headers}: its HTTP parser "
                f"refuses a head of more than {GRANIAN_MAX_HEADERS} fields"
            )
        if config.max_head_bytes < GRANIAN_MIN_HEAD_BYTES:
            return (
                f"--server granian cannot hold --max-head-bytes {config.max_head_bytes}: its smallest "
                f"head buffer is {GRANIAN_MIN_HEAD_BYTES} bytes"
            )
    return None


def granian_idle_timeout_s(config: ServerConfig) -> float:
    """hyper's one timer, which bounds both a head and an idle connection under granian."""
    return min(config.header_timeout_s, config.keepalive_timeout_s)


def in_force(config: ServerConfig) -> dict[str, LimitInForce]:
    """Each limit's value as this server holds it, and who holds it (for ``/info``)."""
    values: dict[Limit, float] = {
        Limit.HEAD_BYTES: config.max_head_bytes,
        Limit.HEADERS: config.max_headers,
        Limit.HEADER_TIMEOUT: config.header_timeout_s,
        Limit.BODY_TIMEOUT: config.body_timeout_s,
        Limit.KEEPALIVE: config.keepalive_timeout_s,
        Limit.CONNECTIONS: config.effective_max_connections,
        Limit.WRITE_TIMEOUT: config.write_timeout_s,
    }
    if config.server is HttpServer.GRANIAN:
        values[Limit.HEADER_TIMEOUT] = values[Limit.KEEPALIVE] = granian_idle_timeout_s(config)
    by = dict(ENFORCED_BY[config.server])
    if TOPOLOGIES[config.topology].stock:  # uvicorn's own protocol in the workers, as it ships
        for limit in PROTOCOL_HELD:
            if by[limit] == FTSCALE:
                by[limit] = NOT_HELD
    return {str(limit): LimitInForce(value=value, by=by[limit]) for limit, value in values.items()}


def enforced_by_ftscale(server: HttpServer, limit: Limit) -> bool:
    return ENFORCED_BY[server][limit] == FTSCALE
