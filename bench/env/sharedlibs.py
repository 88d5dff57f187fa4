"""The shared libraries a set of ELF files needs beyond the C library, and where they came from.

An offline benchmark host has a basic userland: the C library, but not necessarily OpenSSL,
SQLite, libffi, LuaJIT or ncurses. A bundle therefore carries every library its interpreters,
their extension modules and wrk load, except glibc's own and libgcc_s (present wherever a glibc
program runs), and puts them on ``LD_LIBRARY_PATH`` on the host. The libraries are this
machine's, as its package manager installed them: each is traced to its Debian package and
version and checked against dpkg's recorded md5 sum, so a bundle ships Debian's bytes, not a
local rebuild. On a machine without dpkg the files are shipped all the same, their origin unknown.

Limits: ``ldd`` decides what is needed, so a library opened with ``dlopen`` at run time (none of
ours) would be missed; the host's glibc must be at least the newest symbol version any shipped
file asks for (:func:`glibc_needed`), which the unpack script checks before unpacking.

Standard library only.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# The C library's own objects and libgcc_s: part of any system that runs glibc programs at all.
BASE = frozenset(
    {
        "linux-vdso.so.1",
        "ld-linux-x86-64.so.2",
        "libc.so.6",
        "libm.so.6",
        "libmvec.so.1",
        "libpthread.so.0",
        "libdl.so.2",
        "librt.so.1",
        "libutil.so.1",
        "libresolv.so.2",
        "libanl.so.1",
        "libgcc_s.so.1",
    }
)
ELF_MAGIC = b"\x7fELF"
_LDD_LINE = re.compile(r"^\s*(\S+)\s+=>\s+(\S+|not found)")
_GLIBC = re.compile(rb"GLIBC_(\d+)\.(\d+)(?:\.\d+)?\x00")


class LibraryError(Exception):
    """A needed library cannot be found here."""


@dataclass(frozen=True)
class Library:
    """One shared library to ship: its soname, the file here, and its Debian package if known."""

    soname: str
    path: Path  # the real file (symbolic links resolved)
    package: str | None = None
    version: str | None = None
    verified: bool = False  # its md5 sum matches what dpkg recorded when it installed the package

    def record(self) -> dict[str, object]:
        return {
            "soname": self.soname,
            "package": self.package,
            "version": self.version,
            "verified": self.verified,
        }


def is_elf(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            return fh.read(4) == ELF_MAGIC
    except OSError:
        return False


def needed(elfs: Iterable[Path]) -> dict[str, Path]:
    """Soname -> real file of every library the ELF files load (transitively), glibc's excepted."""
    found: dict[str, Path] = {}
    missing: list[str] = []
    for elf in elfs:
        proc = subprocess.run(["ldd", str(elf)], capture_output=True, text=True, check=False)
        for line in proc.stdout.splitlines():
            match = _LDD_LINE.match(line)
            if not match or match[1] in BASE:
                continue
            if match[2] == "not found":
                missing.append(f"{match[1]} (for {elf.name})")
            else:
                found.setdefault(match[1], Path(match[2]).resolve())
    if missing:
        raise LibraryError(f"libraries not found here: {', '.join(sorted(set(missing)))}")
    return dict(sorted(found.items()))


def _owner(path: Path) -> str | None:
    """The Debian package that installed ``path`` (merged-/usr aware), or None."""
    text = str(path)
    bare = text.removeprefix("/usr") if text.startswith("/usr/") else text
    candidates = [text, bare, f"/usr{bare}"] if bare != text else [text, f"/usr{text}"]
    for candidate in candidates:
        try:
            proc = subprocess.run(
                ["dpkg-query", "-S", candidate], capture_output=True, text=True, check=False
            )
        except OSError:  # no dpkg here
            return None
        if proc.returncode == 0 and ":" in proc.stdout:
            return proc.stdout.split(": ", 1)[0].split(",")[0].strip()
    return None


def _dpkg_md5(package: str, path: Path) -> str | None:
    """The md5 sum dpkg recorded for ``path`` when it installed ``package``."""
    info = Path("/var/lib/dpkg/info")
    relative = str(path).lstrip("/")
    names = {relative, relative.removeprefix("usr/"), f"usr/{relative}"}
    for sums in (info / f"{package}.md5sums", info / f"{package.split(':')[0]}.md5sums"):
        if not sums.is_file():
            continue
        for line in sums.read_text(errors="replace").splitlines():
            digest, _, name = line.partition("  ")
            if name.strip() in names:
                return digest
    return None


def provenance(soname: str, path: Path) -> Library:
    """``path`` with its Debian package, version and whether its bytes are the package's."""
    package = _owner(path)
    if package is None:
        return Library(soname=soname, path=path)
    proc = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True, check=False
    )
    recorded = _dpkg_md5(package, path)
    actual = hashlib.md5(path.read_bytes(), usedforsecurity=False).hexdigest()
    version = proc.stdout.strip() or None
    return Library(soname=soname, path=path, package=package, version=version, verified=recorded == actual)


def glibc_needed(elfs: Iterable[Path]) -> tuple[int, int]:
    """The newest ``GLIBC_x.y`` symbol version any of the files asks for."""
    newest = (2, 2)
    for elf in elfs:
        for major, minor in _GLIBC.findall(elf.read_bytes()):
            newest = max(newest, (int(major), int(minor)))
    return newest
