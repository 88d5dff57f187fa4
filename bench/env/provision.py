"""Provision the four interpreters ftscale compares: CPython 3.13, 3.13t, 3.14 and 3.14t.

For each build it first looks for a matching interpreter already on the machine (PATH, pyenv, uv)
and otherwise builds one from a pinned upstream tarball. The GIL build and the free-threaded
build of a minor version share one tarball and one configure line, except ``--disable-gil``: a
comparison between twins then measures the GIL and nothing else.

Sources are tried in order: python.org, then Debian's source package of the same release
(Debian ships the upstream tarball byte for byte) through the mirror this machine's apt already
uses. A checksum mismatch is a hard error, never a reason to try the next source.

Builds are cached under the user cache directory, keyed by version, configure flags and sha256.
A build is staged elsewhere and moved into place only once it ran, so a failed or interrupted
build never leaves a half-built interpreter in the cache. ``<cache>/bin`` holds one link per
provisioned build (``python3.14t`` ...); the noxfile puts it first on PATH so that nox's
``python="3.14t"`` finds it.

Standard library only: ``ftscale build --help`` and the noxfile use it on a bare interpreter,
loading this file by path; it loads its neighbours the same way then (:func:`_beside`): where the
tarball comes from (:mod:`~ftscale.bench.env.sources`), what an interpreter says it is
(:mod:`~ftscale.bench.env.interpreter`) and the compile itself (:mod:`~ftscale.bench.env.cpython_make`).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import shutil
import sys
import time
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import IO, TYPE_CHECKING


def _beside(name: str) -> ModuleType:
    """``name``.py of this folder, loaded by path as this module was: the noxfile and ``python
    provision.py`` run it on an interpreter where ftscale may not be installed."""
    qualified = f"ftscale_provision_{name}"
    if qualified not in sys.modules:
        spec = importlib.util.spec_from_file_location(qualified, Path(__file__).with_name(f"{name}.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module  # dataclasses look their module up while it executes
        spec.loader.exec_module(module)
    return sys.modules[qualified]


if TYPE_CHECKING or __package__:
    from ftscale.bench.env.cpython_make import StepFailed, expected_objects, make_install
    from ftscale.bench.env.interpreter import Interpreter as Interpreter
    from ftscale.bench.env.interpreter import probe as probe
    from ftscale.bench.env.sources import apt_mirrors as apt_mirrors
    from ftscale.bench.env.sources import source_urls as source_urls
else:  # run by path, not as part of the ftscale package: its neighbours by path too
    apt_mirrors, source_urls = _beside("sources").apt_mirrors, _beside("sources").source_urls
    make = _beside("cpython_make")
    StepFailed, expected_objects, make_install = make.StepFailed, make.expected_objects, make.make_install
    Interpreter, probe = _beside("interpreter").Interpreter, _beside("interpreter").probe

BUILDS: tuple[str, ...] = ("3.13", "3.13t", "3.14", "3.14t")


@dataclass(frozen=True)
class Pin:
    """One upstream release: the only tarball ftscale builds for its minor version."""

    minor: str
    version: str
    sha256: str


# sha256 values are python.org's; pyenv's python-build definition records the same for 3.13.5,
# and python.org's 3.14.7 release page for 3.14.7. Debian's .orig.tar.xz carry the same bytes.
PINS: dict[str, Pin] = {
    "3.13": Pin("3.13", "3.13.5", "93e583f243454e6e9e4588ca2c2662206ad961659863277afcdb96801647d640"),
    "3.14": Pin("3.14", "3.14.7", "3b48dac8fb59f62eaa67ac83c1eb12bda1b7a08406dd286e252c11a66be27f81"),
}

MARKER = "ftscale-build.json"


class ProvisionError(Exception):
    """A provisioning step failed; the message says which and where to look."""


class ChecksumMismatch(ProvisionError):
    """A downloaded tarball is not the pinned one."""


# --- builds ---------------------------------------------------------------------------------


def parse_build(name: str) -> tuple[Pin, bool]:
    """``"3.14t"`` -> (pin for 3.14, free-threaded)."""
    free_threaded = name.endswith("t")
    minor = name[:-1] if free_threaded else name
    if minor not in PINS:
        raise ProvisionError(f"unknown build {name!r}; known: {', '.join(BUILDS)}")
    return PINS[minor], free_threaded


@dataclass(frozen=True)
class BuildSpec:
    """How one interpreter is configured."""

    name: str
    optimized: bool = False

    @property
    def pin(self) -> Pin:
        return parse_build(self.name)[0]

    @property
    def free_threaded(self) -> bool:
        return parse_build(self.name)[1]

    def configure_args(self) -> list[str]:
        # Static libpython (no --enable-shared): faster calls and a relocatable tree.
        args = ["--with-ensurepip=install", "--disable-test-modules"]
        if self.optimized:
            args += ["--enable-optimizations", "--with-lto"]
        if self.free_threaded:
            args.append("--disable-gil")
        return args

    def key(self) -> str:
        """Cache key: version, flags and tarball hash all change it."""
        flags = hashlib.sha256(" ".join(self.configure_args()).encode()).hexdigest()[:10]
        suffix = "t" if self.free_threaded else ""
        kind = "opt" if self.optimized else "plain"
        return f"cpython-{self.pin.version}{suffix}-{kind}-{flags}-{self.pin.sha256[:12]}"

    def executable_name(self) -> str:
        return f"python{self.name}"


# --- where things live ----------------------------------------------------------------------


def cache_root() -> Path:
    """``$FTSCALE_CACHE``, else ``$XDG_CACHE_HOME/ftscale`` (``~/.cache/ftscale``)."""
    override = os.environ.get("FTSCALE_CACHE")
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "ftscale"


def bin_dir(root: Path | None = None) -> Path:
    return (root or cache_root()) / "bin"


def install_dir(spec: BuildSpec, root: Path | None = None) -> Path:
    return (root or cache_root()) / "builds" / spec.key()


# --- sources --------------------------------------------------------------------------------


Opener = Callable[[str], IO[bytes]]


def _open_url(url: str) -> IO[bytes]:
    response: IO[bytes] = urllib.request.urlopen(url, timeout=30)
    return response


def fetch(
    pin: Pin,
    dest_dir: Path,
    urls: list[str],
    opener: Opener = _open_url,
    log: Callable[[str], None] = print,
) -> Path:
    """Download the pinned tarball (or reuse a verified copy); return its path.

    Each URL is tried in order; a network error moves on to the next one, a checksum
    mismatch stops everything.
    """
    dest_dir.mkdir(parents=True, exist_ok=True)
    target = dest_dir / f"Python-{pin.version}.tar.xz"
    if target.is_file() and _sha256(target) == pin.sha256:
        return target
    errors: list[str] = []
    for url in urls:
        partial = target.with_name(f"{target.name}.{os.getpid()}.part")
        try:
            digest = _download(url, partial, opener, log)
        except (OSError, ValueError) as exc:  # URLError is an OSError
            partial.unlink(missing_ok=True)
            errors.append(f"{url}: {exc}")
            log(f"  {url}: unavailable ({exc}); trying the next source")
            continue
        if digest != pin.sha256:
            partial.unlink(missing_ok=True)
            raise ChecksumMismatch(f"checksum mismatch for {url}: expected sha256 {pin.sha256}, got {digest}")
        partial.replace(target)
        return target
    raise ProvisionError(f"could not download Python {pin.version}: " + "; ".join(errors))


def _download(url: str, dest: Path, opener: Opener, log: Callable[[str], None]) -> str:
    digest = hashlib.sha256()
    with opener(url) as response, dest.open("wb") as out:
        total = int(getattr(response, "headers", {}).get("Content-Length") or 0)
        done, shown = 0, -10
        log(f"  downloading {url}" + (f" ({total / 1e6:.1f} MB)" if total else ""))
        while chunk := response.read(1 << 16):
            out.write(chunk)
            digest.update(chunk)
            done += len(chunk)
            if total and (percent := 100 * done // total) >= shown + 10:
                shown = percent - percent % 10
                log(f"    {shown:3d}%")
    return digest.hexdigest()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


# --- existing interpreters ------------------------------------------------------------------


def candidates(env: dict[str, str] | None = None) -> Iterator[tuple[Path, str]]:
    """Interpreters on this machine that might be one of the four builds."""
    env = dict(os.environ if env is None else env)
    names = [f"python{b}" for b in BUILDS]
    own = bin_dir().resolve()
    for directory in env.get("PATH", "").split(os.pathsep):
        if not directory or Path(directory).resolve() == own or "shims" in Path(directory).parts:
            continue  # pyenv shims are searched through pyenv's own tree below
        for name in names:
            path = Path(directory) / name
            if path.is_file() and os.access(path, os.X_OK):
                yield path, "PATH"
    pyenv_root = Path(env.get("PYENV_ROOT") or Path.home() / ".pyenv")
    for prefix in sorted((pyenv_root / "versions").glob("3.1[34]*")):
        for name in names:
            if (prefix / "bin" / name).is_file():
                yield prefix / "bin" / name, "pyenv"
    uv_root = Path(env.get("UV_PYTHON_INSTALL_DIR") or Path.home() / ".local/share/uv/python")
    for prefix in sorted(uv_root.glob("cpython-3.1[34]*")):
        for name in names:
            if (prefix / "bin" / name).is_file():
                yield prefix / "bin" / name, "uv"


def find_existing(
    wanted: Iterable[str], probe_fn: Callable[[Path, str], Interpreter | None] = probe
) -> tuple[dict[str, Interpreter], list[Interpreter]]:
    """Existing interpreters per build: (usable, seen but not usable).

    An interpreter is usable only at the pinned version: twins must come from the same
    source, or a comparison would measure a release difference as a GIL difference.
    """
    wanted = set(wanted)
    usable: dict[str, Interpreter] = {}
    rejected: list[Interpreter] = []
    seen: set[Path] = set()
    for path, origin in candidates():
        real = path.resolve()
        if real in seen:
            continue
        seen.add(real)
        found = probe_fn(path, origin)
        if found is None or found.build not in wanted or found.build in usable:
            continue
        if found.version == parse_build(found.build)[0].version and found.info["implementation"] == "cpython":
            usable[found.build] = found
        else:
            rejected.append(found)
    return usable, rejected


# --- building -------------------------------------------------------------------------------


def build(spec: BuildSpec, root: Path | None = None, log: Callable[[str], None] = print) -> Interpreter:
    """Build ``spec`` into the cache unless it is already there; return it."""
    root = root or cache_root()
    prefix = install_dir(spec, root)
    if (prefix / MARKER).is_file():
        found = probe(prefix / "bin" / spec.executable_name(), "cache")
        if found is not None:
            return found
        raise ProvisionError(f"cached build {prefix} does not run; delete it to rebuild")
    tarball = fetch(spec.pin, root / "src", source_urls(spec.pin, apt_mirrors()), log=log)
    stage = root / "tmp" / f"{spec.key()}-{os.getpid()}"
    logs = root / "logs" / spec.key()
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    started = time.monotonic()
    try:
        staged, objects = make_install(
            tarball,
            spec.pin.version,
            stage,
            prefix,
            spec.configure_args(),
            spec.executable_name(),
            logs,
            log,
            expected_objects(sorted((root / "builds").glob(f"cpython-{spec.pin.version}*/{MARKER}"))),
        )
        marker = {
            "key": spec.key(),
            "build": spec.name,
            "version": spec.pin.version,
            "sha256": spec.pin.sha256,
            "configure_args": spec.configure_args(),
            "build_seconds": round(time.monotonic() - started, 1),
            "objects": objects,
        }
        (staged / MARKER).write_text(json.dumps(marker, indent=2, sort_keys=True) + "\n")
        prefix.parent.mkdir(parents=True, exist_ok=True)
        staged.rename(prefix)  # atomic on one filesystem: the cache only ever holds whole builds
    except StepFailed as exc:
        raise ProvisionError(str(exc)) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    log(f"  built {spec.name} in {time.monotonic() - started:.0f} s -> {prefix}")
    found = probe(prefix / "bin" / spec.executable_name(), "cache")
    if found is None:
        raise ProvisionError(f"built {spec.name} at {prefix} but it does not run")
    return found


def cached(spec: BuildSpec, root: Path | None = None) -> Path | None:
    prefix = install_dir(spec, root)
    return prefix / "bin" / spec.executable_name() if (prefix / MARKER).is_file() else None


def link(build_name: str, executable: Path, root: Path | None = None) -> Path:
    """Point ``<cache>/bin/python<build>`` at ``executable``."""
    directory = bin_dir(root)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"python{build_name}"
    tmp = directory / f".{target.name}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(executable)
    tmp.replace(target)
    return target


def linked(build_name: str, root: Path | None = None) -> Path | None:
    """The interpreter provisioned for ``build_name``, if any."""
    target = bin_dir(root) / f"python{build_name}"
    return target if target.exists() else None


# --- entry point ----------------------------------------------------------------------------


def resolve(
    names: list[str], optimized: bool = False, build_missing: bool = True, log: Callable[[str], None] = print
) -> dict[str, Interpreter | None]:
    """Find or build each named build and link it into ``<cache>/bin``."""
    for name in names:
        parse_build(name)
    existing, rejected = find_existing(names)
    for other in rejected:
        log(
            f"found {other.executable} ({other.origin}): {other.build} {other.version}, "
            f"not the pinned {parse_build(other.build)[0].version}; not used"
        )
    result: dict[str, Interpreter | None] = {}
    for name in names:
        spec = BuildSpec(name, optimized)
        exe = cached(spec)
        if exe is not None:
            result[name] = probe(exe, "cache")
        elif name in existing and not optimized:
            result[name] = existing[name]
        elif build_missing:
            log(f"building {name} (CPython {spec.pin.version}, {' '.join(spec.configure_args())})")
            result[name] = build(spec, log=log)
        else:
            result[name] = None
        found = result[name]
        if found is not None:
            link(name, found.executable)
    return result


def table(result: dict[str, Interpreter | None]) -> str:
    rows = [f"{'build':6} {'status':9} {'version':8} {'GIL off':7} executable / configure"]
    for name, found in result.items():
        if found is None:
            rows.append(f"{name:6} {'missing':9} {PINS[name.rstrip('t')].version:8} {'-':7} -")
            continue
        rows.append(
            f"{name:6} {found.origin:9} {found.version:8} {found.info['py_gil_disabled']!s:7} "
            f"{found.executable}\n{'':33}{found.info['config_args'] or '(default)'}"
        )
    return "\n".join(rows)


DESCRIPTION = "Find or build CPython 3.13, 3.13t, 3.14 and 3.14t (pinned tarballs, twins configured alike)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "builds", nargs="*", help=f"builds to provision (default: all of {', '.join(BUILDS)})"
    )
    parser.add_argument("--optimized", action="store_true", help="build with PGO+LTO (slow)")
    parser.add_argument("--list", action="store_true", help="only report what is available and missing")


def run(args: argparse.Namespace) -> int:
    """``ftscale build``: provision the named builds and list them."""
    names = args.builds or list(BUILDS)
    unknown = [n for n in names if n not in BUILDS]
    if unknown:
        print(
            f"ftscale build: error: unknown build {', '.join(unknown)}; known: {', '.join(BUILDS)}",
            file=sys.stderr,
        )
        return 2
    try:
        result = resolve(names, optimized=args.optimized, build_missing=not args.list)
    except ProvisionError as exc:
        print(f"ftscale build: error: {exc}", file=sys.stderr)
        return 1
    print(table(result))
    return 0 if all(result.values()) or args.list else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ftscale build", description=DESCRIPTION)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
