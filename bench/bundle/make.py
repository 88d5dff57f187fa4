"""``ftscale bundle``: ftscale for an offline x86-64 Linux host, in parts small enough to carry.

Benchmark hosts with many cores are often offline (no compiler, no package index, no network)
and lent for minutes. A bundle holds everything a run needs there:

- the interpreters, copied from the cache and stripped (:mod:`~ftscale.bench.env.strip`);
- a wheelhouse: each build's binary wheels, fetched by that build's own interpreter, pinned per
  build (:mod:`~ftscale.bench.env.wheelhouse`), and ftscale's own wheel; the host installs the
  orchestrator's environment (the ``bench`` extra, without the report packages: reports are
  rendered back home) and each build's environment from it;
- wrk and every shared library the interpreters and wrk load beyond glibc, from this machine's
  Debian packages (:mod:`~ftscale.bench.env.sharedlibs`);
- ``host.py`` (:mod:`~ftscale.bench.env.hostsetup`), ``bin/ftscale`` and ``bundle.json``.

What it carries can be narrowed to what a run needs: ``--for PRESET`` takes the builds and the
workloads of an ``ftscale bench`` preset and the default HTTP server alone (``--for headline``:
3.14 and 3.14t, no numpy, no other server); ``--servers`` names the HTTP servers whose packages go
in (all by default), ``--workloads`` the workloads (numpy goes in only for a numpy workload). What
is left out is recorded on the host as unavailable, and a run that selects it is refused in one line.

It is written as one ``.tar.xz`` part when it holds at most two builds and fits the limit
(``--parts one`` insists, ``--parts per-build`` never tries), else as one part per build plus a
common part, each at most 60 MiB (a hard limit: a larger part fails the command), so parts can
travel one at a time; ``unpack.sh`` (POSIX sh, needing only tar, xz and sha256sum) checks each
part's sha256, unpacks them into one tree and sets it up with the bundled interpreter. The command
prints every part's size and the one command to run on the host.

Limits: x86-64 Linux with a glibc at least as new as the one the interpreters were built
against (``unpack.sh`` checks); the bundle carries only builds ftscale made itself (a cached
build with its marker), since only their layout is known to relocate.

What goes in: :mod:`~ftscale.bench.bundle.contents`; the parts and ``unpack.sh``:
:mod:`~ftscale.bench.bundle.parts`; this module stages and writes them.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ftscale import __version__
from ftscale.bench.bundle.contents import (
    Contents,
    Source,
    contents_of,
    find_source,
    host_command,
    orchestrator,
)
from ftscale.bench.bundle.parts import ONE_PART, Part, compress, oversize, part_file, unpack_script
from ftscale.bench.env import hostsetup, provision, sharedlibs, strip, wheelhouse
from ftscale.bench.http.options import PRESETS, SERVERS
from ftscale.errors import SetupError, UsageError
from ftscale.vocab import DEFAULT_SERVER, GENERATORS, Generator

MIB = 1 << 20
PART_LIMIT_MIB = 60
PROJECT_FILES = ("pyproject.toml", "README.md", "ftscale", "bench", "server", "workloads")

DESCRIPTION = (
    "Write ftscale for an offline x86-64 Linux host: stripped interpreters, wheels, wrk and its "
    "libraries, and the project, in parts of at most 60 MiB with an unpack script."
)

LAUNCHER = """#!/bin/sh
# ftscale from this bundle, from any directory: host.py sets the bundle's environment (its
# cache, wheels, libraries and results folder) and runs ftscale. Run it by its path or put this
# folder on PATH (a symbolic link to this file elsewhere would not find the bundle).
case $0 in */*) bin=${0%/*} ;; *) bin=. ;; esac
root=$(cd "$bin/.." && pwd -P) || exit 1
exec "$root/@ORCHESTRATOR@" -I "$root/host.py" run "$@"
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--output", type=Path, default=Path("dist/bundle"), help="folder for the parts (default: dist/bundle)"
    )
    parser.add_argument("--builds", help=f"comma-separated, of {', '.join(provision.BUILDS)} (default: all)")
    parser.add_argument(
        "--max-part-mib",
        type=float,
        default=PART_LIMIT_MIB,
        metavar="MIB",
        help=f"largest part allowed, in MiB (default {PART_LIMIT_MIB}); a larger part is an error",
    )
    parser.add_argument(
        "--no-wrk", action="store_true", help="leave wrk out (the host then uses the built-in load generator)"
    )
    parser.add_argument(
        "--for",
        dest="preset",
        choices=list(PRESETS),
        help="only what 'ftscale bench --preset PRESET' needs: its builds and workloads, the default "
        "HTTP server; in one part when it fits (e.g. --for headline)",
    )
    parser.add_argument(
        "--servers",
        metavar="SERVER,...",
        help=f"HTTP servers whose packages go in, of {', '.join(SERVERS)} ('uvicorn': {DEFAULT_SERVER}); "
        f"default: all ({DEFAULT_SERVER} is always there)",
    )
    parser.add_argument(
        "--workloads",
        help="workloads the host will run (default: all; numpy goes in only for a numpy workload)",
    )
    parser.add_argument(
        "--parts",
        choices=("auto", "one", "per-build"),
        default="auto",
        help="one part for everything, or one per build and a common one (auto: one part when the "
        "bundle holds at most two builds and it fits the limit)",
    )


# --- building it ------------------------------------------------------------------------------


def _project_wheel(python: Path, work: Path) -> Path:
    """ftscale's own wheel, built from a clean copy of the checkout this ftscale runs from."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise SetupError(f"ftscale bundle needs ftscale's source checkout (no pyproject.toml in {root})")
    src = work / "src"
    for name in PROJECT_FILES:  # a copy: a stale build/ folder in the checkout cannot leak in
        if (root / name).is_dir():
            shutil.copytree(root / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            src.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, src / name)
    out = work / "project"
    pip = [str(python), "-m", "pip", "wheel", "-q", "--disable-pip-version-check", "--no-deps"]
    cmd = [*pip, "-w", str(out), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SetupError(f"building ftscale's wheel failed: {proc.stderr.strip()[-800:]}")
    (wheel,) = out.glob("ftscale-*.whl")
    return wheel


def _stage_interpreter(source: Source, root: Path) -> tuple[dict[str, Any], str, tuple[Path, ...]]:
    """A stripped copy of ``source`` under ``root``, proven to run from there.

    Returns its entry in ``bundle.json``, a line saying what it is, and its ELF files.
    """
    build = source.build
    prefix = Path("cache") / "builds" / source.key
    copied = strip.copy_stripped(source.prefix, root / prefix, build)
    executable = prefix / "bin" / f"python{build}"
    clean_env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    hostsetup.relocation_check(root / executable, root / prefix, build.endswith("t"), clean_env)
    what = (
        f"CPython {source.marker.get('version')}{'t' if build.endswith('t') else ''}, "
        f"{copied.source_bytes / MIB:.0f} MiB cached -> {copied.copy_bytes / MIB:.0f} MiB "
        f"{'stripped' if copied.stripped else 'copied (no strip here: symbols kept)'}"
    )
    entry = {
        "key": source.key,
        "prefix": str(prefix),
        "executable": str(executable),
        "version": source.marker.get("version"),
        "part": part_file(build),
        "configure_args": source.marker.get("configure_args"),
    }
    return entry, what, copied.elf_files


def _stage_wheels(
    sources: dict[str, Source],
    lead: str,
    work: Path,
    stage: dict[str, Path],
    log: Callable[[str], None],
    contents: Contents,
) -> dict[str, list[str]]:
    """Each build's wheels and pins; a wheel only one build needs goes to that build's part.

    Returns, per wheel file name, the builds that need it.
    """
    from ftscale.bench.env.venv import OPTIONAL_EXTRAS, package_name, requirements  # imports pydantic

    carried = contents.optional_packages()
    optional = [r for r in requirements(OPTIONAL_EXTRAS) if package_name(r) in carried]
    left_out = sorted({package_name(r) for r in requirements(OPTIONAL_EXTRAS)} - carried)
    if left_out:
        log(f"left out (not needed by what this bundle runs): {', '.join(left_out)}")
    users: dict[str, list[str]] = {}
    found: dict[str, Path] = {}
    for build, source in sources.items():
        extras = ("worker", "bench") if build == lead else ("worker",)
        dest = work / "download" / build
        wheelhouse.download(source.executable, requirements(extras), dest)
        # numpy and the other HTTP servers, where they go in and this build has wheels for them.
        for requirement, why in wheelhouse.download_optional(source.executable, optional, dest).items():
            log(f"{build}: no wheel for {requirement} ({why})")
        wheels = sorted(dest.glob("*.whl"))
        (stage[build] / "wheels").mkdir(parents=True, exist_ok=True)
        pins = "".join(f"{wheelhouse.pin(w)}\n" for w in wheels)
        (stage[build] / "wheels" / wheelhouse.constraints_name(build)).write_text(pins)
        for wheel in wheels:
            users.setdefault(wheel.name, []).append(build)
            found[wheel.name] = wheel
        log(f"{build}: {len(wheels)} wheels ({', '.join(extras)})")
    for name, wheel in found.items():
        owner = users[name][0] if len(users[name]) == 1 else "common"
        (stage[owner] / "wheels").mkdir(parents=True, exist_ok=True)
        shutil.copy2(wheel, stage[owner] / "wheels" / name)
    project = _project_wheel(sources[lead].executable, work)
    (stage["common"] / "wheels").mkdir(parents=True, exist_ok=True)
    shutil.copy2(project, stage["common"] / "wheels" / project.name)
    return users


def _wrk_program() -> str:
    """The program of the one load generator a bundle carries (the built-in one needs none)."""
    program = GENERATORS[Generator.WRK].executable
    assert program is not None
    return program


def _stage_runtime(
    common: Path, elfs: list[Path], wrk: str | None, log: Callable[[str], None]
) -> tuple[list[sharedlibs.Library], dict[str, object] | None, tuple[int, int]]:
    """wrk in ``bin/`` and every library the ELF files and wrk load in ``lib/``.

    Returns the libraries, wrk's provenance and the glibc version all of them need.
    """
    (common / "bin").mkdir(parents=True, exist_ok=True)
    wrk_record = None
    elfs = list(elfs)
    if wrk is not None:
        real, program = Path(wrk).resolve(), _wrk_program()
        shutil.copy2(real, common / "bin" / program)
        elfs.append(common / "bin" / program)
        record = sharedlibs.provenance(program, real).record()
        wrk_record = {k: v for k, v in record.items() if k != "soname"}
    libraries = [sharedlibs.provenance(s, p) for s, p in sharedlibs.needed(elfs).items()]
    (common / "lib").mkdir()
    for library in libraries:
        if library.package and not library.verified:
            log(f"warning: {library.path} is not what {library.package} installed; shipped as it is")
        shutil.copy2(library.path, common / "lib" / library.soname)
    return libraries, wrk_record, sharedlibs.glibc_needed([*elfs, *(lib.path for lib in libraries)])


def build_bundle(
    contents: Contents,
    output: Path,
    limit_bytes: int,
    with_wrk: bool,
    log: Callable[[str], None] = print,
    parts_mode: str = "auto",
) -> list[Part]:
    """Write the bundle's parts and ``unpack.sh`` into ``output``; return the parts.

    ``parts_mode``: "one" (one part, or an error if it is over the limit), "per-build", or
    "auto" (one part when there are at most two builds and it fits, else one per build).
    """
    builds = contents.builds
    sources = {b: find_source(b) for b in builds}
    wrk = shutil.which(_wrk_program()) if with_wrk else None
    if with_wrk and wrk is None:
        program = _wrk_program()
        raise SetupError(f"{program} is not installed here (apt-get install {program}), or pass --no-wrk")
    from ftscale.bench.results import collect_git  # imports pydantic: not at --help time

    lead = orchestrator(builds)
    git = collect_git().model_dump()
    created = _dt.datetime.now(_dt.UTC)
    output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ftscale-bundle-", dir=output) as scratch:
        work = Path(scratch)
        stage = {name: work / "parts" / name for name in ("common", *builds)}
        what: dict[str, str] = {}
        entries: dict[str, Any] = {}
        elfs: list[Path] = []
        for build, source in sources.items():
            entries[build], what[build], files = _stage_interpreter(source, stage[build])
            elfs.extend(files)
            log(f"{build}: {what[build]}; it runs from its new place")
        users = _stage_wheels(sources, lead, work, stage, log, contents)
        libraries, wrk_record, glibc = _stage_runtime(stage["common"], elfs, wrk, log)
        shared = sum(1 for n in users if len(users[n]) > 1)
        program = f"{_wrk_program()}, " if wrk else ""
        what["common"] = f"{program}{len(libraries)} libraries, ftscale {__version__}, {shared} shared wheels"
        for build in builds:
            what[build] += f", {sum(1 for n in users if users[n] == [build])} wheels of its own"
        manifest = {
            "format": 1,
            "created": created.isoformat(timespec="seconds"),
            "id": f"ftscale-{__version__}-{(git['commit'] or 'nogit')[:12]}-{created:%Y%m%dT%H%M%SZ}",
            "ftscale_version": __version__,
            "git": git,
            "orchestrator": lead,
            "glibc": f"{glibc[0]}.{glibc[1]}",
            "builds": entries,
            "libraries": [lib.record() for lib in libraries],
            str(Generator.WRK): wrk_record,
            "carried": sorted(contents.optional_packages()),
            "servers": list(contents.servers),
            "preset": contents.preset,
        }
        common = stage["common"]
        shutil.copy2(Path(hostsetup.__file__), common / "host.py")
        launcher = common / "bin" / "ftscale"
        launcher.write_text(LAUNCHER.replace("@ORCHESTRATOR@", entries[lead]["executable"]))
        launcher.chmod(0o755)

        def write_manifest(one: bool) -> None:
            for build in builds:
                entries[build]["part"] = part_file(ONE_PART if one else build)
            (common / hostsetup.MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")

        parts: list[Part] = []
        if parts_mode == "one" or (parts_mode == "auto" and len(builds) <= 2):
            write_manifest(one=True)
            summary = "; ".join(what[n] for n in ("common", *builds))
            one = Part(name=ONE_PART, file=part_file(ONE_PART), required=True, contents=summary)
            parts = compress([one], {ONE_PART: [stage[n] for n in ("common", *builds)]}, output, log)
            if parts_mode == "auto" and oversize(parts, limit_bytes):
                log(f"one part is {parts[0].size / MIB:.1f} MiB, over the limit: one part per build instead")
                (output / parts[0].file).unlink()
                parts = []
        if not parts:
            write_manifest(one=False)
            split = [
                Part(name=n, file=part_file(n), required=n in ("common", lead), contents=what[n])
                for n in ("common", *builds)
            ]
            parts = compress(split, {n: [stage[n]] for n in ("common", *builds)}, output, log)
    too_big = oversize(parts, limit_bytes)
    if too_big:
        listed = ", ".join(f"{p.file} is {p.size / MIB:.1f} MiB" for p in too_big)
        raise SetupError(f"parts over the {limit_bytes / MIB:g} MiB limit: {listed}; no unpack.sh written")
    (output / "SHA256SUMS").write_text("".join(f"{p.sha256}  {p.file}\n" for p in parts))
    script = output / "unpack.sh"
    script.write_text(unpack_script(manifest, parts))
    script.chmod(0o755)
    return parts


def run(args: argparse.Namespace) -> int:
    """``ftscale bundle``: write the parts, print each one's size and the command for the host."""
    contents = contents_of(args)
    if args.max_part_mib <= 0:
        raise UsageError(f"--max-part-mib must be positive, got {args.max_part_mib:g}")
    output: Path = args.output
    if output.exists() and any(output.iterdir()):
        raise UsageError(f"{output} is not empty; remove it or name another --output")
    parts = build_bundle(
        contents,
        output,
        int(args.max_part_mib * MIB),
        with_wrk=not args.no_wrk,
        log=lambda m: print(m, flush=True),
        parts_mode=args.parts,
    )
    width = max(len(p.file) for p in parts)
    print(f"\nbundle in {output} (every part at most {args.max_part_mib:g} MiB):")
    for part in parts:
        print(f"  {part.file:<{width}}  {part.size / MIB:5.1f} MiB  {part.contents}")
    total = sum(p.size for p in parts)
    print(f"  {'total':<{width}}  {total / MIB:5.1f} MiB  (+ unpack.sh; SHA256SUMS lists the parts)")
    print("\ncarry the parts and unpack.sh to the host; there, in their folder, run:")
    print(f"  {host_command(contents)}")
    return 0
