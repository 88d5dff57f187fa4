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

import itertools
import os
import sys
from collections.abc import Iterable

PRESENT = 1 << 63
PFN_MASK = (1 << 55) - 1
PAGE = os.sysconf("SC_PAGE_SIZE")
# Where the present bit (bit 63) lies in a pagemap entry's 8 bytes, and a table that maps that
# byte to 1 when the bit is set: bytes.translate then finds the resident pages at C speed, and
# only those are read one by one (the standard library alone, so a bundle needs no numpy).
_TOP_BYTE = 7 if sys.byteorder == "little" else 0
_RESIDENT = bytes(1 if b & 0x80 else 0 for b in range(256))


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


def resident_frames(data: bytes) -> list[int]:
    """The frame numbers of the resident pages among pagemap ``data`` (8 bytes an entry)."""
    flags = data[_TOP_BYTE::8].translate(_RESIDENT)
    if 1 not in flags:
        return []
    entries = memoryview(data).cast("Q")
    return [entries[i] & PFN_MASK for i in itertools.compress(range(len(flags)), flags)]


def frames(pid: int) -> set[int] | None:
    """The physical frame numbers of ``pid``'s resident pages (None: not readable here)."""
    present: set[int] = set()
    resident = 0
    try:
        ranges = _ranges(pid)
        fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
    except OSError:
        return None
    try:
        for low, high in ranges:
            count = (high - low) // PAGE
            found = resident_frames(os.pread(fd, count * 8, (low // PAGE) * 8))
            resident += len(found)
            present.update(found)
    except OSError:
        return None
    finally:
        os.close(fd)
    if resident and present == {0}:  # present pages without frame numbers: no permission
        return None
    return present


def unique_bytes(pids: Iterable[int]) -> int | None:
    """Bytes of the distinct physical pages resident in ``pids`` (None where Linux does not tell)."""
    seen: set[int] = set()
    any_pid = False
    for pid in pids:
        got = frames(pid)
        if got is None:
            return None
        seen |= got
        any_pid = True
    if not any_pid:
        return None
    return len(seen) * PAGE
