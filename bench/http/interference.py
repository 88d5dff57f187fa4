"""Was the machine quiet while a load ran? Steal time and other processes' CPU on our CPUs.

Two things disturb a measurement without showing in it: a hypervisor that runs another guest on
our CPUs (*steal* time, counted by the guest kernel per CPU) and other processes of this machine
that run on the server's or the generator's CPUs (*foreign* load: CPU time those CPUs were busy
beyond what the server's process tree, the load generator and the /health probe account for).
Both come from ``/proc/stat``'s per-CPU counters, read before and after each load; a repetition
over either threshold is flagged *disturbed* and measured again once (:mod:`.cell`).

The counters tick at ``USER_HZ`` (100 per second on Linux): over a 1.5 s load a CPU gives 150
ticks, so a reading resolves about 1 % of a CPU. The bench's own orchestrating process is not
pinned and counts as foreign where it runs (it sleeps while a load runs).
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass

from ftscale.schema import Interference

TICKS_PER_S = os.sysconf("SC_CLK_TCK")
# A repetition is disturbed when the hypervisor took this share of our CPUs' time ...
STEAL_LIMIT_PCT = 5.0
# ... or other processes used this much CPU (100 % = one CPU) on the server's and client's CPUs.
FOREIGN_LIMIT_PCT = 10.0


@dataclass(frozen=True)
class CpuTicks:
    """Per-CPU (busy, steal) ticks at one moment."""

    busy: dict[int, int]
    steal: dict[int, int]


def read_ticks(path: str = "/proc/stat") -> CpuTicks | None:
    """Each CPU's busy and steal ticks since boot (None where Linux does not tell)."""
    busy: dict[int, int] = {}
    steal: dict[int, int] = {}
    try:
        with open(path) as stat:
            for line in stat:
                name, _, rest = line.partition(" ")
                if not name.startswith("cpu") or name == "cpu":
                    continue
                fields = [int(x) for x in rest.split()]
                user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
                cpu = int(name[3:])
                busy[cpu] = user + nice + system + irq + softirq
                steal[cpu] = fields[7] if len(fields) > 7 else 0
    except (OSError, ValueError):
        return None
    return CpuTicks(busy, steal)


def measure(
    before: CpuTicks | None,
    after: CpuTicks | None,
    cpus: Collection[int],
    window_s: float,
    accounted_cpu_s: float,
) -> Interference | None:
    """What else ran on ``cpus`` during ``window_s`` seconds, beyond ``accounted_cpu_s`` (the
    server's, the generator's and the probe's CPU time)."""
    if before is None or after is None or window_s <= 0 or not cpus:
        return None
    # a CPU shared by the server and the generator (--allow-shared-cpus) is one CPU: count it once
    mine = sorted({c for c in cpus if c in before.busy and c in after.busy})
    if not mine:
        return None
    busy_s = sum(after.busy[c] - before.busy[c] for c in mine) / TICKS_PER_S
    steal_s = sum(after.steal[c] - before.steal[c] for c in mine) / TICKS_PER_S
    foreign_pct = max(0.0, 100 * (busy_s - accounted_cpu_s) / window_s)
    steal_pct = 100 * steal_s / (window_s * len(mine))
    return Interference(
        window_s=round(window_s, 4),
        cpus=mine,
        busy_cpu_pct=round(100 * busy_s / window_s, 1),
        accounted_cpu_pct=round(100 * accounted_cpu_s / window_s, 1),
        foreign_cpu_pct=round(foreign_pct, 1),
        steal_pct=round(steal_pct, 1),
        disturbed=steal_pct > STEAL_LIMIT_PCT or foreign_pct > FOREIGN_LIMIT_PCT,
    )
