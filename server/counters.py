"""What the service counts: work requests per serving unit, and events per process.

:class:`UnitCounts` holds one count of work requests computed per serving unit (the one loop
of ``single``, each loop of ``loops``, each worker slot of ``workers``). Every unit writes
only its own slot, so no lock is needed; a reader may see a count one request old. In
``workers`` the slots live in memory shared by every worker (a ``multiprocessing`` array the
supervisor makes), so whichever worker answers ``/info`` reports all of them; a restarted
worker keeps counting in its slot.

:data:`EVENTS` counts, per process, what the service refused, dropped or replaced; its
increments are rare and take a lock, so loops in threads may share it.
"""

from __future__ import annotations

import threading
from collections.abc import MutableSequence, Sequence
from dataclasses import dataclass, field, fields

from ftscale.schema import ServiceCounters


class UnitCounts:
    """Work requests computed per unit, in ``store`` (a list, or a shared ctypes array) by index."""

    def __init__(self, labels: Sequence[str], store: MutableSequence[int] | None = None) -> None:
        self.labels = list(labels)
        self.store: MutableSequence[int] = [0] * len(labels) if store is None else store
        if len(self.store) != len(self.labels):
            raise ValueError(f"{len(self.labels)} labels for {len(self.store)} counters")

    def add(self, unit: int) -> None:
        self.store[unit] += 1

    def snapshot(self) -> dict[str, int]:
        return {label: int(self.store[i]) for i, label in enumerate(self.labels)}


@dataclass
class Events:
    """Per-process event counts (the fields of :class:`ftscale.schema.ServiceCounters`)."""

    refused_busy: int = 0
    refused_pool_down: int = 0
    dropped_client_gone: int = 0
    finished_client_gone: int = 0
    pool_restarts: int = 0
    connections: int = 0
    connections_without_nodelay: int = 0
    connections_evicted_idle: int = 0
    connections_refused: int = 0
    connections_aborted: int = 0
    requests_timed_out: int = 0
    bodies_timed_out: int = 0
    heads_refused: int = 0
    framing_refused: int = 0
    json_refused: int = 0
    internal_errors: int = 0
    writes_timed_out: int = 0
    streams_refused: int = 0
    streams_timed_out: int = 0
    streams_stopped: int = 0
    accept_errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, name: str, count: int = 1) -> None:
        with self._lock:
            setattr(self, name, getattr(self, name) + count)

    def snapshot(self) -> ServiceCounters:
        with self._lock:
            return ServiceCounters(
                **{f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
            )


EVENTS = Events()
