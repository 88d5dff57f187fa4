"""When an open loop's requests are due: Poisson arrivals (the default) or evenly spaced ones.

A service's clients do not coordinate, so their requests bunch up: the gaps between arrivals of
many independent clients are exponential (a Poisson process), and the bursts queue. Evenly
spaced arrivals (request i due at i / rate) never burst, so at the same mean rate they understate
the queueing, hence the tail latency; they are kept for comparison (``--arrivals uniform``).

Every schedule is drawn from a seed, so any load can be replayed: a run has one seed (recorded in
its ``run.json``), each load of a cell one derived from it, the cell and the load's number
(recorded in its repetition), and each generator process of a load one derived from the load's
seed and the process's index (:func:`derive_seed`). Uniform schedules of a load's processes are
offset by a share of the gap (``phase``), so k processes interleave instead of sending together.

Standard library only: the generator processes import it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator

from ftscale.vocab import Arrival


def derive_seed(seed: int, *parts: object) -> int:
    """A seed for one part of a run (a cell's load, a generator process), reproducible from ``seed``."""
    text = "/".join(str(p) for p in (seed, *parts))
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def run_seed(run_id: str) -> int:
    """A run's seed: fixed by its id, so a resumed run draws the schedules it would have drawn."""
    return derive_seed(0, run_id)


def due_offsets(kind: str, rate: float, duration_s: float, seed: int, phase: float = 0.0) -> Iterator[float]:
    """Seconds from the start of the window at which requests are due, in order, all in ``[0, duration_s)``.

    ``poisson``: exponential gaps with mean ``1 / rate`` drawn from ``random.Random(seed)``;
    ``uniform``: ``(i + phase) / rate``. ``rate`` is in requests per second.
    """
    if rate <= 0:
        raise ValueError(f"an open loop needs a positive rate, got {rate}")
    arrival = Arrival(kind)
    if arrival is Arrival.UNIFORM:
        i = 0
        while (t := (i + phase % 1.0) / rate) < duration_s:
            yield t
            i += 1
        return
    draw = random.Random(seed)
    t = draw.expovariate(rate)
    while t < duration_s:
        yield t
        t += draw.expovariate(rate)
