"""A copy of a cached interpreter with only what a benchmark host runs.

Left out: the test suite, IDLE, tkinter and turtle, the static ``libpython`` (twice: in ``lib/``
and ``config-*/``), headers, man pages, the ``-config`` and console scripts, and the pip
installed into the build itself (environments get theirs from ``ensurepip``'s bundled wheel,
which is kept). The executable and the extension modules lose their symbols
(``strip --strip-unneeded``).

Compiled stdlib modules are kept at optimisation level 0 only (``.opt-1``/``.opt-2`` dropped):
the interpreters then start on the host without compiling the standard library, and with their
sources' modification times kept (copied with them, and by tar), the ``.pyc`` files stay valid
wherever the tree is unpacked.

The copy keeps the build's layout; a static (not ``--enable-shared``) CPython finds its prefix
from where its executable is, so the copy runs from any path. :func:`ftscale.bench.env.hostsetup.
relocation_check` proves it. The cached build itself is never modified.

Standard library only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# Top-level entries of lib/pythonX.Y[t]/ that no benchmark runs.
STDLIB_DROPPED = frozenset({"test", "idlelib", "tkinter", "turtledemo", "turtle.py"})
_OPTIMISED_PYC = re.compile(r"\.opt-[12]\.pyc$")


@dataclass(frozen=True)
class Stripped:
    """What a stripped copy weighs against its source, in bytes (hard links counted once)."""

    source_bytes: int
    copy_bytes: int
    elf_files: tuple[Path, ...]  # in the copy: the executable and the extension modules
    stripped: bool  # False where no ``strip`` was found: the files keep their symbols


def tree_bytes(root: Path) -> int:
    seen: set[tuple[int, int]] = set()
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            st = os.lstat(os.path.join(directory, name))
            if (st.st_dev, st.st_ino) not in seen:
                seen.add((st.st_dev, st.st_ino))
                total += st.st_size
    return total


def keep(relative: Path, executable: str, stdlib: str) -> bool:
    """Whether the file at ``relative`` (to the build's prefix) goes to the host."""
    parts = relative.parts
    top = parts[0]
    if top == "bin":
        return relative.name == executable
    if top in ("include", "share") or _OPTIMISED_PYC.search(relative.name):
        return False
    if top != "lib" or len(parts) < 2:
        return top == "ftscale-build.json"  # the provisioning marker: what the build is
    if parts[1] != stdlib:
        return False  # libpythonX.Y.a, pkgconfig/
    inner = parts[2:]
    if not inner:
        return False
    if inner[0] in STDLIB_DROPPED:
        return False
    if inner[0] == "__pycache__" and inner[-1].split(".")[0] in {"turtle"}:
        return False
    if inner[0] == "site-packages":
        return inner[-1] == "README.txt"
    if inner[0].startswith("config-"):
        return not relative.name.endswith((".a", ".o"))
    return not (inner[0] == "lib-dynload" and relative.name.startswith("_tkinter"))


def copy_stripped(prefix: Path, dest: Path, build: str) -> Stripped:
    """Copy the build at ``prefix`` to ``dest`` without what the host does not run; strip its ELF files."""
    executable = stdlib = f"python{build}"  # bin/python3.14t and lib/python3.14t/
    elf: list[Path] = []
    for directory, dirs, files in os.walk(prefix):
        dirs.sort()
        for name in sorted(files):
            source = Path(directory) / name
            relative = source.relative_to(prefix)
            if not keep(relative, executable, stdlib):
                continue
            target = dest / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_symlink():
                target.symlink_to(os.readlink(source))
                continue
            shutil.copy2(source, target)  # with its modification time: the .pyc files check it
            if relative.parts[0] == "bin" or relative.suffix == ".so":
                elf.append(target)
    stripped = _strip(elf)
    return Stripped(
        source_bytes=tree_bytes(prefix), copy_bytes=tree_bytes(dest), elf_files=tuple(elf), stripped=stripped
    )


def _strip(files: list[Path]) -> bool:
    strip = shutil.which("strip")
    if strip is None:
        return False  # shipped with their symbols: larger, and correct all the same
    for path in files:
        mtime = path.stat().st_mtime_ns
        subprocess.run([strip, "--strip-unneeded", str(path)], check=True, capture_output=True)
        os.utime(path, ns=(mtime, mtime))
    return True
