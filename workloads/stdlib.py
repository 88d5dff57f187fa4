"""Standard-library C code: json and re hold the GIL throughout; hashlib releases it on big buffers."""

from __future__ import annotations

import hashlib
import json
import re

from ftscale.vocab import WorkloadClass
from ftscale.workloads.checksum import fold_bytes
from ftscale.workloads.registry import register


def _record(i: int) -> dict[str, object]:
    return {
        "id": i,
        "name": f"user-{i:06d}",
        "active": i % 3 != 0,
        "score": (i * 7919) % 1000 / 10,
        "tags": [f"t{(i + k) % 17}" for k in range(4)],
        "address": {"street": f"{i} Main St", "zip": f"{10000 + i % 89999:05d}"},
    }


@register(
    workload_class=WorkloadClass.C_HOLDS_GIL,
    size_meaning="records serialised and parsed back",
    default_size=500,
    max_size=95_000,
    large_max_size=1_000_000,
    smoke_size=3,
)
def json_roundtrip(records: int) -> int:
    """json.dumps then json.loads of a list of nested records (C accelerator, GIL held)."""
    text = json.dumps([_record(i) for i in range(records)], sort_keys=True)
    back = json.loads(text)
    if len(back) != records:
        raise AssertionError("json round-trip lost records")
    return fold_bytes(json.dumps(back, sort_keys=True).encode())


_LOG_LINE = re.compile(
    r'(?P<ip>\d{1,3}(?:\.\d{1,3}){3}) - - \[(?P<ts>[^\]]+)\] "(?P<method>[A-Z]+) (?P<path>\S+) '
    r'HTTP/1\.[01]" (?P<status>\d{3}) (?P<bytes>\d+)'
)
_METHODS = ("GET", "POST", "PUT", "DELETE")


def _log_line(i: int) -> str:
    return (
        f"10.{i % 256}.{(i // 256) % 256}.{i % 7} - - [25/Nov/2026:10:{i % 60:02d}:{i % 59:02d} +0000] "
        f'"{_METHODS[i % 4]} /api/v1/items/{i * 31 % 10007}?q={i % 13} HTTP/1.1" '
        f"{(200, 201, 304, 404, 500)[i % 5]} {i * 17 % 65536}"
    )


@register(
    workload_class=WorkloadClass.C_HOLDS_GIL,
    size_meaning="access-log lines parsed",
    default_size=6_000,
    max_size=350_000,
    large_max_size=5_000_000,
    smoke_size=5,
)
def regex_parse(lines: int) -> int:
    """Parse access-log lines with a compiled regular expression (re's engine holds the GIL)."""
    text = "\n".join(_log_line(i) for i in range(lines))
    total = 0
    for match in _LOG_LINE.finditer(text):
        total = (total * 31 + int(match["status"]) + len(match["path"]) + int(match["bytes"])) % (1 << 61)
    return total


_BLOCK = bytes(range(256)) * 4096  # 1 MiB, read-only and shared by every thread


@register(
    workload_class=WorkloadClass.C_RELEASES_GIL,
    size_meaning="KiB hashed with SHA-256",
    default_size=10_240,
    max_size=2_500_000,
    large_max_size=4_194_304,
    smoke_size=4,
)
def sha256_hash(kib: int) -> int:
    """SHA-256 over a large buffer (hashlib releases the GIL for updates over 2 KiB)."""
    digest = hashlib.sha256()
    view = memoryview(_BLOCK)
    whole, rest = divmod(kib * 1024, len(_BLOCK))
    for _ in range(whole):
        digest.update(view)
    digest.update(view[:rest])
    return int.from_bytes(digest.digest()[:8], "big")
