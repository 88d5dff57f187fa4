"""Facts about the machine that decide how fair a measurement is: cores, SMT siblings, clocks.

Read from Linux's ``/sys``; every function returns None (or an empty answer) where the machine
does not tell, and never fails. :func:`split_cpus` uses the SMT topology so the load generator
never runs on a hyper-thread sibling of a server CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

SYS_CPU = Path("/sys/devices/system/cpu")


def parse_cpu_list(text: str) -> list[int]:
    """Linux's CPU list syntax: ``"0-3,8"`` -> [0, 1, 2, 3, 8]; raises ValueError on bad input."""
    cpus: set[int] = set()
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        first, last = int(lo), int(hi or lo)
        if first < 0 or last < first:
            raise ValueError(f"bad CPU range {part!r}")
        cpus.update(range(first, last + 1))
    return sorted(cpus)


def cpu_topology(root: Path = SYS_CPU, cpus: Sequence[int] | None = None) -> list[frozenset[int]]:
    """Physical cores as sets of logical CPUs (SMT siblings), for ``cpus`` (default: all online).

    Empty when ``/sys`` does not say; a CPU whose siblings cannot be read is its own core.
    """
    if cpus is None:
        try:
            cpus = parse_cpu_list((root / "online").read_text())
        except (OSError, ValueError):
            return []
    cores: dict[frozenset[int], None] = {}
    for cpu in cpus:
        try:
            text = (root / f"cpu{cpu}" / "topology" / "thread_siblings_list").read_text()
            siblings = frozenset(parse_cpu_list(text)) & frozenset(cpus) or frozenset({cpu})
        except (OSError, ValueError):
            siblings = frozenset({cpu})
        cores.setdefault(siblings, None)
    return sorted(cores, key=min)


def governor(root: Path = SYS_CPU) -> str | None:
    """The cpufreq scaling governor, or "mixed: a, b" when CPUs differ; None without cpufreq."""
    found = set()
    for path in root.glob("cpu[0-9]*/cpufreq/scaling_governor"):
        try:
            found.add(path.read_text().strip())
        except OSError:
            continue
    if not found:
        return None
    return found.pop() if len(found) == 1 else "mixed: " + ", ".join(sorted(found))


def boost(root: Path = SYS_CPU) -> str | None:
    """Turbo/boost state where Linux exposes it (acpi-cpufreq ``boost``, intel_pstate ``no_turbo``)."""
    try:
        return "on" if (root / "cpufreq" / "boost").read_text().strip() == "1" else "off"
    except OSError:
        pass
    try:
        no_turbo = (root / "intel_pstate" / "no_turbo").read_text().strip()
        return "off" if no_turbo == "1" else "on"
    except OSError:
        return None


def split_cpus(
    available: Sequence[int], cores: Sequence[frozenset[int]] | None = None, client_share: float = 0.25
) -> tuple[list[int], list[int]]:
    """Default split of ``available`` CPUs into (server, client), SMT-aware.

    The client gets whole physical cores (about a quarter of them, at least one) and the server
    the remaining cores, so no client CPU is a sibling of a server CPU. With SMT, the server
    keeps one logical CPU per physical core (the other sibling idles): two threads on one core
    share its execution units, which would read as poor scaling. Without topology information
    every CPU is its own core. Raises ValueError with fewer than 2 physical cores.
    """
    avail = set(available)
    known = [c & avail for c in (cores or []) if c & avail]
    covered = set().union(*known) if known else set()
    known += [frozenset({cpu}) for cpu in sorted(avail - covered)]
    physical = sorted(known, key=min)
    if len(physical) < 2:
        raise ValueError(
            "the HTTP bench needs at least 2 physical cores to keep server and load generator apart"
        )
    n_client = max(1, int(len(physical) * client_share))
    client = sorted(cpu for core in physical[:n_client] for cpu in core)
    server = sorted(min(core) for core in physical[n_client:])
    return server, client
