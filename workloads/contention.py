"""Shared-state contention: every call updates one process-wide table under one lock.

On a GIL build the lock is nearly free (the GIL already serialises); on a free-threaded build
threads queue on it and on the shared objects' reference counts. The checksum depends only on
the call's own work, so it is the same however the threads interleave.
"""

from __future__ import annotations

import threading

from ftscale.vocab import WorkloadClass
from ftscale.workloads.pure_python import shared_masses, simulate
from ftscale.workloads.registry import register

_LOCK = threading.Lock()
_TABLE: dict[int, int] = {}
_SHARED_KEYS = tuple(f"key-{i}" for i in range(64))


def table_total() -> int:
    """Sum of all updates made so far by every thread (for consistency checks)."""
    with _LOCK:
        return sum(_TABLE.values())


@register(
    workload_class=WorkloadClass.CONTENTION,
    size_meaning="updates to the shared table",
    default_size=40_000,
    max_size=3_500_000,
    large_max_size=10_000_000,
    smoke_size=10,
)
def shared_counter(updates: int) -> int:
    """Increment a process-wide counter table under one lock, reading shared keys in between."""
    local = 0
    for i in range(updates):
        slot = i % 64
        local += len(_SHARED_KEYS[slot])
        with _LOCK:
            _TABLE[slot] = _TABLE.get(slot, 0) + 1
    return local * 64 + updates


@register(
    workload_class=WorkloadClass.CONTENTION,
    size_meaning="simulation steps",
    default_size=2_000,
    max_size=180_000,
    large_max_size=1_000_000,
    smoke_size=10,
)
def nbody_shared(steps: int) -> int:
    """nbody reading module-level constants every thread shares (as services read config tables).

    The same arithmetic as ``nbody`` and the same checksum, but the five masses are the module's
    own float objects. Read-only sharing is free under the GIL; on a free-threaded build every
    read and release of a shared object's reference count goes through the slower shared path
    (``_Py_DecRefShared``, merges of biased counts), which is what a module-level lookup table,
    settings object or compiled model read by every request thread costs.
    """
    return simulate(steps, shared_masses())
