"""Checks of the load generator itself: did it, not the server, set the pace or the latency?

Three readings, each judged per cell (and per step of a capacity search):

- *busy*: the share of the wall time the busiest generator thread or process was running or
  waiting for a CPU (Linux schedstat). At :data:`SATURATION_BUSY_PCT` it adds its own queueing
  to every request: ``gen-saturated``. Where no reading exists the check was not made, and the
  point says so (``gen-busy?``) instead of passing it;
- *ceiling*: what the generator reached against a server that costs nothing, with the cell's own
  request shape and connection count (:func:`ceiling_key`, calibrated once per run by
  :func:`ftscale.bench.http.real.calibrate_ceilings`). A service at
  :data:`SATURATION_CEILING_SHARE` of it was limited by the generator: ``gen-saturated``. An open
  loop offers far less than its ceiling, so this cannot fire there; the send lag can;
- *send lag* (open loop): how late the generator sent requests that were due and had a free
  connection. Latency counts from the due time, so the lag is in it; over
  :data:`SEND_LAG_SHARE` of the p99 target (of the point's own p99 without a target) the point
  measures the generator too: ``send-lag``.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from ftscale.schema import HttpRepetition
from ftscale.vocab import Flag

# A cell is flagged generator-bound when one generator thread (or process) was running or
# waiting for a CPU this share of the time: it then adds its own queueing to every request, and
# the load, not the server, sets the pace. Judged per thread: a thread can use one CPU at most.
SATURATION_BUSY_PCT = 50.0
# ... or when the service answered at this share of what the generator reached against a server
# that costs nothing (its ceiling with the same connections and requests, measured once per run).
SATURATION_CEILING_SHARE = 0.8
# An open-loop point whose generator sent late by more than this share of the p99 target.
SEND_LAG_SHARE = 0.05


def request_shape(request: Mapping[str, Any]) -> str:
    """What a cell sends, as a ceiling is filed under it: ``POST /work/nbody 13B``, or ``mix``.

    ``request`` holds :class:`~ftscale.bench.http.loadgen.LoadSpec` fields
    (:meth:`~ftscale.bench.http.cells.CellSpec.request`).
    """
    if request.get("mix_file"):
        return "mix"
    body = request.get("body", b"")
    return f"{request.get('method', 'POST')} {request.get('path', '/')} {len(body)}B"


def ceiling_key(load: str, connections: int, shape: str | None = None) -> str:
    """How a generator ceiling is filed: by load kind, connection count and request shape (runs
    made before the shape was part of it have none)."""
    return f"{load}:{connections}" + (f":{shape}" if shape else "")


def ceiling_for(
    ceilings: Mapping[str, float], load: str, connections: int, request: Mapping[str, Any]
) -> float | None:
    """The ceiling calibrated for these requests (or, in a run calibrated before shapes, for the
    load kind and connections alone)."""
    found = ceilings.get(ceiling_key(load, connections, request_shape(request)))
    return found if found is not None else ceilings.get(ceiling_key(load, connections))


def generator_flags(reps: Sequence[HttpRepetition], target_ms: float | None = None) -> list[Flag]:
    """The generator's own flags over ``reps`` (see the module docstring), in vocabulary order."""
    flags: list[Flag] = []
    if not reps:
        return flags
    median_rps = statistics.median(r.load.throughput_rps for r in reps)
    readings = [r.load.generator_busy_max_pct for r in reps]
    busiest = max((b for b in readings if b is not None), default=None)
    ceiling = min((r.ceiling_rps for r in reps if r.ceiling_rps), default=None)
    saturated = (busiest is not None and busiest >= SATURATION_BUSY_PCT) or bool(
        ceiling and median_rps >= SATURATION_CEILING_SHARE * ceiling
    )
    if saturated:
        flags.append(Flag.GENERATOR_SATURATED)
    elif any(b is None for b in readings):
        flags.append(Flag.GENERATOR_UNCHECKED)
    if send_lag_over(reps, target_ms):
        flags.append(Flag.SEND_LAG)
    return flags


def send_lag_over(reps: Sequence[HttpRepetition], target_ms: float | None) -> bool:
    """Whether the worst send-lag p99 of ``reps`` is over :data:`SEND_LAG_SHARE` of ``target_ms``
    (without a target: of the repetitions' own median p99 latency)."""
    lags = [r.load.send_lag_p99_ms for r in reps if r.load.send_lag_p99_ms is not None]
    if not lags:
        return False
    reference = target_ms
    if reference is None:
        p99s = [p for r in reps if (p := r.load.latency_ms.get("p99")) is not None]
        reference = statistics.median(p99s) if p99s else None
    return reference is not None and max(lags) > SEND_LAG_SHARE * reference
