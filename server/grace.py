"""The stop, as the app sees it, and a bound on how long it may take.

When the service is asked to stop (SIGTERM, SIGINT), each topology calls :func:`begin_stop`.
From then on :func:`stopping` is true in this process, and streams end themselves at their
next chunk (:mod:`server.stream`) instead of holding the stop up for as long as they would run.
granian's worker processes (its GIL wheel) learn of the stop from their main process through a
flag in shared memory (:func:`watch_shared`).

A stop is bounded: requests in flight get :data:`GRACEFUL_S`, then the rest of the stop (pools,
lifespans) :data:`STOP_MARGIN_S`. uvicorn and hypercorn enforce the first part themselves
(granian does not: it waits for connections with no time limit), none of them the second, and
ftscale's own supervisors kill workers that outlive both. In every serving process,
:func:`watchdog` ends the process at the bound with one log line, and exit status 0: the stop
was asked for, and only what had the whole grace period to finish is cut.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from typing import Protocol

GRACEFUL_S = 10
STOP_MARGIN_S = 3

logger = logging.getLogger("ftscale.server")


class SharedFlag(Protocol):
    """A value in shared memory (``multiprocessing.RawValue``): non-zero once the stop began."""

    value: int


_stopping = threading.Event()
_shared: list[SharedFlag] = []
_watchdog_started = threading.Event()


def begin_stop() -> None:
    """The service has been asked to stop (idempotent; from any thread or a signal handler)."""
    _stopping.set()
    for flag in _shared:
        flag.value = 1


def stopping() -> bool:
    """Whether this process is stopping (read per stream chunk: a flag, no lock)."""
    return _stopping.is_set() or any(flag.value for flag in _shared)


def watch_shared(flag: SharedFlag) -> None:
    """Also stop when ``flag`` is set, by this process or another sharing it."""
    if not any(f is flag for f in _shared):
        _shared.append(flag)


def watchdog(bound_s: float = GRACEFUL_S + STOP_MARGIN_S, what: str = "the service") -> None:
    """End this process ``bound_s`` seconds from now if it is still running (once per process)."""
    if _watchdog_started.is_set():
        return
    _watchdog_started.set()

    def expire() -> None:
        time.sleep(bound_s)
        logger.error("%s did not stop within %g s of being asked; ending it", what, bound_s)
        logging.shutdown()
        os._exit(0)

    threading.Thread(target=expire, name="ftscale-stop-watchdog", daemon=True).start()


def reset_for_tests() -> None:
    """Forget a stop (tests that build apps in-process after stopping one)."""
    _stopping.clear()
    _shared.clear()
