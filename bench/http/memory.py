"""A server's memory as the pages its process tree holds, each counted once.

PSS splits every shared page between the processes that map it, whoever they are. That makes
it depend on what else runs: a server forked from the bench's pre-imported parent
(:mod:`ftscale.bench.http.zygote`) shares most of its pages with that parent, and its PSS
would show about half of what the same server uses when started alone. What a design costs is
the set of physical pages its own processes hold: a page the supervisor and its forked workers
share counts once, as it does in memory; a page only the bench's parent also maps counts fully,
as it would if the server had been started alone.

Linux tells which physical page backs each virtual page in ``/proc/PID/pagemap`` (the page frame
number, readable with CAP_SYS_ADMIN; without it the numbers read as 0 and :func:`unique_bytes`
returns None, and the reports fall back to PSS). Pages shared with processes outside the tree
(the interpreter's code, shared libraries) count fully here, where PSS would split them: this
is a little higher than a lone server's PSS, by the size of its shared code.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import numpy as np

PRESENT = np.uint64(1) << np.uint64(63)
PFN_MASK = (np.uint64(1) << np.uint64(55)) - np.uint64(1)
PAGE = os.sysconf("SC_PAGE_SIZE")


def _ranges(pid: int) -> list[tuple[int, int]]:
    found = []
    with open(f"/proc/{pid}/maps") as maps:
        for line in maps:
            span, _, rest = line.partition(" ")
            if rest.rstrip().endswith("[vsyscall]"):
                continue  # not in the page table: reading it fails
            low, _, high = span.partition("-")
            found.append((int(low, 16), int(high, 16)))
    return found


def frames(pid: int) -> np.ndarray | None:
    """The physical frame numbers of ``pid``'s resident pages (None: not readable here)."""
    present: list[np.ndarray] = []
    try:
        ranges = _ranges(pid)
        fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
    except OSError:
        return None
    try:
        for low, high in ranges:
            count = (high - low) // PAGE
            data = os.pread(fd, count * 8, (low // PAGE) * 8)
            entries = np.frombuffer(data, dtype=np.uint64)
            resident = entries[(entries & PRESENT) != 0]
            if resident.size:
                present.append(resident & PFN_MASK)
    except OSError:
        return None
    finally:
        os.close(fd)
    if not present:
        return np.zeros(0, dtype=np.uint64)
    every = np.concatenate(present)
    if every.size and not every.any():  # present pages without frame numbers: no permission
        return None
    return every


def unique_bytes(pids: Iterable[int]) -> int | None:
    """Bytes of the distinct physical pages resident in ``pids`` (None where Linux does not tell)."""
    seen: list[np.ndarray] = []
    for pid in pids:
        got = frames(pid)
        if got is None:
            return None
        seen.append(got)
    if not seen:
        return None
    return int(np.unique(np.concatenate(seen)).size) * PAGE
