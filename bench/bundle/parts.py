"""An ``ftscale bundle``'s parts: each a ``.tar.xz`` of staged folders (owners anonymous), with
its size and sha256, and ``unpack.sh``, which checks and unpacks them on the host."""

from __future__ import annotations

import concurrent.futures
import hashlib
import importlib.resources
import os
import tarfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

XZ_PRESET: Literal[6] = 6  # -9 saves a few percent on these files and costs three times the time
TREE = "ftscale-bundle"  # the folder unpack.sh unpacks into, unless told otherwise
ONE_PART = "all"  # the name of the one part of a bundle written in one part


@dataclass(frozen=True)
class Part:
    name: str  # "common" or a build
    file: str
    required: bool
    contents: str
    size: int = 0
    sha256: str = ""


def part_file(name: str) -> str:
    return f"{TREE}-{name}.tar.xz"


def _anonymous(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_part(root: Path | Sequence[Path], dest: Path) -> tuple[int, str]:
    """The contents of ``root`` (or of several roots, merged) as ``dest`` (tar.xz, written aside
    and renamed); its size and sha256."""
    roots = [root] if isinstance(root, Path) else list(root)
    partial = dest.with_name(f".{dest.name}.partial")
    with tarfile.open(partial, "w:xz", preset=XZ_PRESET) as tar:
        for child in sorted((c for r in roots for c in r.iterdir()), key=lambda c: (c.name, str(c))):
            tar.add(child, arcname=child.name, filter=_anonymous)
    partial.replace(dest)
    digest = hashlib.sha256()
    with dest.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return dest.stat().st_size, digest.hexdigest()


def oversize(parts: Sequence[Part], limit_bytes: int) -> list[Part]:
    return [p for p in parts if p.size > limit_bytes]


def unpack_script(manifest: dict[str, Any], parts: Sequence[Part]) -> str:
    lines = "\n".join(
        f"{p.file} {p.sha256} {p.size} {'required' if p.required else 'optional'} {p.contents}" for p in parts
    )
    template = importlib.resources.files("ftscale.bench.bundle").joinpath("unpack.sh").read_text()
    orchestrator_exe = manifest["builds"][manifest["orchestrator"]]["executable"]
    values = {
        "@BUNDLE@": manifest["id"],
        "@GLIBC@": manifest["glibc"],
        "@TREE@": TREE,
        "@ORCHESTRATOR@": orchestrator_exe,
        "@PARTS@": lines,
    }
    for placeholder, value in values.items():
        template = template.replace(placeholder, value)
    return template


def compress(
    parts: Sequence[Part], roots: dict[str, list[Path]], output: Path, log: Callable[[str], None]
) -> list[Part]:
    """Write ``parts`` (each from its ``roots``) in parallel; the parts with their sizes and sums."""
    log(f"compressing {_count(len(parts), 'part')} (xz -{XZ_PRESET})")
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        done = list(pool.map(lambda p: write_part(roots[p.name], output / p.file), parts))
    return [
        Part(name=p.name, file=p.file, required=p.required, contents=p.contents, size=size, sha256=digest)
        for p, (size, digest) in zip(parts, done)
    ]


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
