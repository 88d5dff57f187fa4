"""On the benchmark host: check and set up an unpacked ftscale bundle, and run ftscale from it.

``ftscale bundle`` copies this file into the bundle's tree as ``host.py``. The bundled
orchestrator interpreter runs it (with ``-I``: nothing from the host's Python environment)
before anything is installed, so it is one file of standard library only.

    python -I host.py setup       after unpacking (``unpack.sh`` runs it): proves that every
                                  interpreter runs from where it was unpacked, links it where
                                  ftscale's provisioning looks, makes the orchestrator's
                                  environment and each build's environment from the wheelhouse
    python -I host.py run ARGS    ``ftscale ARGS`` in the bundle's environment (``bin/ftscale``)

The tree, wherever it was unpacked:

    bundle.json          what the bundle holds (:data:`MANIFEST`, written by ``ftscale bundle``)
    host.py, bin/        this file, ``bin/ftscale`` and ``bin/wrk``
    lib/                 the shared libraries of the interpreters and wrk (on LD_LIBRARY_PATH)
    wheels/              the wheelhouse and each build's ``constraints-<build>.txt``
    cache/               ``$FTSCALE_CACHE``: ``builds/<key>/`` (the interpreters), then ``bin/``,
                         ``envs/`` and ``code/`` as ftscale makes them
    envs/orchestrator/   the environment ``ftscale`` itself runs in (its ``bench`` extra: no
                         report packages; reports are rendered back home)
    results/             where runs go unless ``$FTSCALE_RESULTS`` says otherwise

Every process started from here sees no package index (``PIP_NO_INDEX``, no pip configuration
file), the bundle's wheelhouse, the bundle's libraries, and the commit the bundle was made from
(a bundle is no git checkout). The tree is not relocatable once set up (environments record
absolute paths): after moving it, run ``host.py setup`` again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

MANIFEST = "bundle.json"
ORCHESTRATOR_ENV = Path("envs") / "orchestrator"
# Imported by the relocation check: each must come from the unpacked tree (or be built in).
CHECKED_MODULES = tuple(
    "os encodings ssl _ssl _hashlib sqlite3 _sqlite3 ctypes _ctypes zlib _lzma _bz2 _decimal json asyncio "
    "venv ensurepip".split()
)
_CHECK = """
import importlib, json, sys, sysconfig
files = {name: getattr(importlib.import_module(name), "__file__", None) for name in sys.argv[1:]}
print(json.dumps({"prefix": sys.prefix, "executable": sys.executable, "files": files,
                  "free_threaded": bool(sysconfig.get_config_var("Py_GIL_DISABLED"))}))
"""


class HostError(Exception):
    """The bundle cannot be used here; the message says why."""


def load_manifest(tree: Path) -> dict[str, Any]:
    try:
        manifest: dict[str, Any] = json.loads((tree / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise HostError(f"{tree / MANIFEST}: {exc}; unpack the bundle's common part first") from None
    return manifest


def relocation_check(executable: Path, prefix: Path, free_threaded: bool, env: dict[str, str]) -> str:
    """Run ``executable`` where it now is; fail unless its prefix and modules are all there.

    A copied interpreter that still found its standard library at the place it was built
    would pass a plain ``import`` and break on a host where that place does not exist.
    """
    proc = subprocess.run(
        [str(executable), "-I", "-c", _CHECK, *CHECKED_MODULES],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise HostError(f"{executable} does not run here: {proc.stderr.strip()[-600:]}")
    facts = json.loads(proc.stdout)
    home = prefix.resolve()
    problems = []
    if Path(facts["prefix"]).resolve() != home:
        problems.append(f"sys.prefix is {facts['prefix']}")
    for name, file in facts["files"].items():
        if file is not None and home not in Path(file).resolve().parents:
            problems.append(f"{name} comes from {file}")
    if facts["free_threaded"] != free_threaded:
        problems.append(f"it is {'' if facts['free_threaded'] else 'not '}free-threaded, unlike its build")
    if problems:
        raise HostError(f"{executable} does not run from {home}: {'; '.join(problems)}")
    return f"runs from {home} ({len(facts['files'])} modules checked)"


def host_environment(tree: Path, manifest: dict[str, Any], base: dict[str, str]) -> dict[str, str]:
    """The environment of every process of the bundle: its cache, wheels, libraries and results."""
    env = {k: v for k, v in base.items() if not k.startswith(("PIP_", "PYTHON"))}
    git = manifest.get("git") or {}
    env.update(
        FTSCALE_CACHE=str(tree / "cache"),
        FTSCALE_WHEELHOUSE=str(tree / "wheels"),
        FTSCALE_RESULTS=base.get("FTSCALE_RESULTS") or str(tree / "results"),
        PATH=os.pathsep.join([str(tree / "bin"), base.get("PATH") or "/usr/bin:/bin"]),
        LD_LIBRARY_PATH=os.pathsep.join(p for p in (str(tree / "lib"), base.get("LD_LIBRARY_PATH")) if p),
        PIP_NO_INDEX="1",
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_CACHE_DIR="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHONNOUSERSITE="1",
        FTSCALE_COMMAND=str(tree / "bin" / "ftscale"),  # how the resume hint names the command
    )
    if git.get("commit"):
        env["FTSCALE_GIT_COMMIT"] = str(git["commit"])
        env["FTSCALE_GIT_DIRTY"] = "1" if git.get("dirty") else "0"
    return env


def present_builds(tree: Path, manifest: dict[str, Any]) -> list[str]:
    """The manifest's builds whose part has been unpacked here."""
    return [b for b, facts in manifest["builds"].items() if (tree / facts["executable"]).is_file()]


def _run(cmd: list[str], env: dict[str, str], what: str) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise HostError(f"{what} failed: {(proc.stderr or proc.stdout).strip()[-800:]}")


def _link(link: Path, target: Path) -> None:
    link.parent.mkdir(parents=True, exist_ok=True)
    tmp = link.with_name(f".{link.name}.{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target)
    tmp.replace(link)


def setup(tree: Path) -> None:
    """Check every unpacked interpreter, link it, make the environments (offline); idempotent."""
    manifest = load_manifest(tree)
    env = host_environment(tree, manifest, dict(os.environ))
    builds = present_builds(tree, manifest)
    orchestrator = manifest["orchestrator"]
    if orchestrator not in builds:
        raise HostError(f"the part of build {orchestrator} (it runs ftscale) is not unpacked")
    for build in manifest["builds"]:
        if build not in builds:
            print(f"{build}: its part is not unpacked; runs here cannot use it", flush=True)
    for build in builds:
        facts = manifest["builds"][build]
        executable = tree / facts["executable"]
        print(
            f"{build}: {relocation_check(executable, tree / facts['prefix'], build.endswith('t'), env)}",
            flush=True,
        )
        _link(tree / "cache" / "bin" / f"python{build}", executable.resolve())
    envdir = tree / ORCHESTRATOR_ENV
    stamp = tree / "envs" / ".orchestrator-stamp"
    wanted = f"{manifest['id']}\n{tree.resolve()}\n"
    if not (stamp.is_file() and stamp.read_text() == wanted and (envdir / "bin" / "python").exists()):
        print(f"creating the orchestrator's environment ({orchestrator}) in {envdir}", flush=True)
        base = tree / manifest["builds"][orchestrator]["executable"]
        _run(
            [str(base), "-m", "venv", "--clear", str(envdir)], env, "creating the orchestrator's environment"
        )
        wheels = tree / "wheels"
        pins = wheels / f"constraints-{orchestrator}.txt"
        pip = [str(envdir / "bin" / "python"), "-m", "pip", "install", "-q", "--no-index"]
        offline = ["--find-links", str(wheels), "--constraint", str(pins)]
        package = f"ftscale[bench]=={manifest['ftscale_version']}"
        _run([*pip, *offline, package], env, "installing ftscale into the orchestrator's environment")
        stamp.write_text(wanted)
    # Each build's environment, made as ftscale makes it, here from the wheelhouse: done now so
    # that a measuring slot does not spend its minutes on it.
    proc = subprocess.run(
        [str(envdir / "bin" / "python"), "-m", "ftscale.bench.env.venv", *builds], env=env, check=False
    )
    if proc.returncode != 0:
        raise HostError("making the builds' environments failed (see above)")
    print(f"ready: {tree / 'bin' / 'ftscale'} bench|micro ... (results in {env['FTSCALE_RESULTS']})")


def run(tree: Path, args: list[str]) -> None:
    """Replace this process with ``ftscale ARGS`` in the bundle's environment."""
    manifest = load_manifest(tree)
    python = tree / ORCHESTRATOR_ENV / "bin" / "python"
    if not python.exists():
        raise HostError(f"the bundle at {tree} is not set up; run: sh unpack.sh (or {sys.argv[0]} setup)")
    env = host_environment(tree, manifest, dict(os.environ))
    os.execve(python, [str(python), "-m", "ftscale", *args], env)


def main(argv: list[str]) -> int:
    tree = Path(__file__).resolve().parent
    try:
        if argv[:1] == ["setup"]:
            setup(tree)
        elif argv[:1] == ["run"]:
            run(tree, argv[1:])
        else:
            print("usage: host.py setup | host.py run FTSCALE-ARGS ...", file=sys.stderr)
            return 2
    except HostError as exc:
        print(f"ftscale bundle: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
