"""Where a pinned CPython tarball may be downloaded from: python.org, then Debian's copy of it (the
same bytes) through each archive mirror this machine's apt uses.

Standard library only, and importing nothing of ftscale at run time: the provisioning script
(:mod:`~ftscale.bench.env.provision`) loads it by path on a bare interpreter.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ftscale.bench.env.provision import Pin


def _deb822_stanzas(text: str) -> Iterator[dict[str, str]]:
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            if line.startswith("#") or ":" not in line or line[0].isspace():
                continue
            field, _, value = line.partition(":")
            fields[field.strip().lower()] = value.strip()
        if fields:
            yield fields


def apt_mirrors(apt_root: Path = Path("/etc/apt")) -> list[str]:
    """Debian archive mirrors this machine's apt uses, in configuration order.

    Reads one-line ``sources.list`` files and deb822 ``.sources`` files; security and
    update suites are skipped because only the main archive holds the ``pool/`` we need.
    """
    found: list[str] = []

    def consider(uri: str, suites: list[str]) -> None:
        uri = uri.rstrip("/")
        side_suites = all("security" in s or s.endswith("-updates") for s in suites)
        if side_suites or "security" in uri or not uri.startswith(("http://", "https://")):
            return
        if uri not in found:
            found.append(uri)

    lists = [apt_root / "sources.list", *sorted((apt_root / "sources.list.d").glob("*.list"))]
    for path in lists:
        if not path.is_file():
            continue
        for line in path.read_text(errors="replace").splitlines():
            parts = re.sub(r"\[[^]]*\]", "", line.split("#", 1)[0]).split()
            if len(parts) >= 3 and parts[0] in ("deb", "deb-src"):
                consider(parts[1], [parts[2]])
    for path in sorted((apt_root / "sources.list.d").glob("*.sources")):
        for stanza in _deb822_stanzas(path.read_text(errors="replace")):
            if stanza.get("enabled", "yes").lower() == "no":
                continue
            suites = stanza.get("suites", "").split()
            for uri in stanza.get("uris", "").split():
                consider(uri, suites)
    return found


def source_urls(pin: Pin, mirrors: Iterable[str]) -> list[str]:
    """Where a pinned tarball may be fetched from, in the order to try."""
    urls = [f"https://www.python.org/ftp/python/{pin.version}/Python-{pin.version}.tar.xz"]
    for mirror in mirrors:
        package = f"python{pin.minor}"
        urls.append(f"{mirror}/pool/main/p/{package}/{package}_{pin.version}.orig.tar.xz")
    return urls
