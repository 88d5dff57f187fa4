"""What an ``ftscale bundle`` carries: the cached builds it copies, the optional packages (HTTP
servers, numpy) the command line asks for, and the one command the host runs."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ftscale.bench.bundle.parts import TREE
from ftscale.bench.env import provision
from ftscale.bench.http.options import PRESETS, SERVERS
from ftscale.bench.options import choose
from ftscale.engines import OPTIONAL_PACKAGES, SERVER_PACKAGES
from ftscale.errors import SetupError, UsageError
from ftscale.vocab import DEFAULT_SERVER, HttpServer

SERVER_ALIASES = {"uvicorn": str(DEFAULT_SERVER)}
ORCHESTRATOR_PREFERENCE = ("3.14", "3.13", "3.14t", "3.13t")  # which bundled build runs ftscale itself


@dataclass(frozen=True)
class Source:
    """A cached build to bundle."""

    build: str
    prefix: Path
    marker: dict[str, Any]

    @property
    def key(self) -> str:
        return self.prefix.name

    @property
    def executable(self) -> Path:
        return self.prefix / "bin" / f"python{self.build}"


def find_source(build: str) -> Source:
    """The cached build ftscale made for ``build``: the linked one, else the plain or optimised one."""
    candidates = []
    linked = provision.linked(build)
    if linked is not None:
        candidates.append(linked.resolve().parent.parent)
    for optimized in (False, True):
        candidates.append(provision.install_dir(provision.BuildSpec(build, optimized)))
    for prefix in candidates:
        marker = prefix / provision.MARKER
        if marker.is_file():
            return Source(build, prefix, json.loads(marker.read_text()))
    raise SetupError(f"build {build} is not in ftscale's cache; run: ftscale build {build}")


def orchestrator(builds: Sequence[str]) -> str:
    return next(b for b in ORCHESTRATOR_PREFERENCE if b in builds)


@dataclass(frozen=True)
class Contents:
    """What a bundle carries besides the interpreters, ftscale and wrk."""

    builds: tuple[str, ...]
    servers: tuple[str, ...]  # HTTP servers whose packages go in (the default one always runs)
    numpy: bool  # numpy, for the numpy workloads
    preset: str | None = None  # --for: the preset it is made for

    def optional_packages(self) -> set[str]:
        """The optional distributions (servers extra, numpy) it carries."""
        wanted = {n for s in self.servers for n in SERVER_PACKAGES[HttpServer(s)] if n in OPTIONAL_PACKAGES}
        return wanted | ({"numpy"} if self.numpy else set())


def parse_servers(text: str) -> tuple[str, ...]:
    """``uvicorn,granian`` -> the servers, each once (``uvicorn`` is the default uvicorn-h11)."""
    names = [SERVER_ALIASES.get(n.strip(), n.strip()) for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in SERVERS]
    if unknown or not names:
        raise UsageError(
            f"unknown server {', '.join(unknown) or repr(text)}; known: uvicorn, {', '.join(SERVERS)}"
        )
    return tuple(dict.fromkeys(names))


def contents_of(args: argparse.Namespace) -> Contents:
    """The bundle's contents from the command line; :class:`UsageError` for a bad choice."""
    from ftscale import workloads  # the registry: what needs numpy (not at --help time)

    preset = PRESETS[args.preset] if args.preset else None
    default_builds = preset.builds if preset else provision.BUILDS
    builds = choose(args.builds, default_builds, provision.BUILDS, "build")
    every = (str(DEFAULT_SERVER),) if preset else SERVERS  # a preset runs the default server only
    servers = parse_servers(args.servers) if args.servers else every
    try:
        if args.workloads:
            chosen = workloads.select(args.workloads)
        elif preset and preset.workloads:
            chosen = [workloads.get(n) for n in preset.workloads]
        else:
            chosen = list(workloads.REGISTRY.values())
    except workloads.UnknownWorkload as exc:
        raise UsageError(str(exc)) from None
    numpy = any("numpy" in w.needs for w in chosen)
    return Contents(builds=tuple(builds), servers=servers, numpy=numpy, preset=args.preset)


def host_command(contents: Contents) -> str:
    """The one command to run on the host, in the folder holding the parts."""
    builds = contents.builds
    if contents.preset is not None:
        chosen = PRESETS[contents.preset].builds
        extra = "" if set(builds) == set(chosen) else f" --builds {','.join(builds)}"
        budget = "8m" if contents.preset == "headline" else "9m"  # unpacking takes the rest of a window
        return f"sh unpack.sh && {TREE}/bin/ftscale bench --preset {contents.preset}{extra} --budget {budget}"
    every = set(builds) == set(provision.BUILDS)
    sweep = "bench --preset reference" if every else f"bench --preset reference --builds {','.join(builds)}"
    return f"sh unpack.sh && {TREE}/bin/ftscale {sweep} --budget 9m"
