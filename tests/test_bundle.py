"""``ftscale bundle``: what a stripped interpreter keeps, the wheelhouse, the libraries, the unpack
script's checks on small fake parts, and one real bundle (``--for headline``: two cached builds,
one part) unpacked into a fresh directory and running the headline preset from there without a
network, a compiler or a package index."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ftscale import schema
from ftscale.bench import results
from ftscale.bench.bundle import contents as bundle_contents
from ftscale.bench.bundle import make as bundle
from ftscale.bench.bundle import parts as bundle_parts
from ftscale.bench.env import (
    hostsetup,
    provision,
    sharedlibs,
    strip,
    wheelhouse,
)
from ftscale.bench.env import venv as envs
from tests.conftest import FREE_THREADED

SMOKE_BUILDS = ("3.14", "3.14t")  # the headline preset's builds
# The real bundle does not depend on the interpreter running the tests: it is made and measured
# once, in the session on the host interpreter, not again in the free-threaded one.
once = pytest.mark.skipif(FREE_THREADED, reason="made and measured in the host interpreter's session")


# --- stripping --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("relative", "kept"),
    [
        ("bin/python3.14t", True),
        ("bin/python3.14", False),  # the 3.14t build's hard link under the GIL build's name
        ("bin/pip3", False),
        ("bin/python3.14t-config", False),
        ("ftscale-build.json", True),
        ("include/python3.14t/Python.h", False),
        ("share/man/man1/python3.14.1", False),
        ("lib/libpython3.14t.a", False),
        ("lib/pkgconfig/python3.pc", False),
        ("lib/python3.14t/os.py", True),
        ("lib/python3.14t/__pycache__/os.cpython-314.pyc", True),
        ("lib/python3.14t/__pycache__/os.cpython-314.opt-1.pyc", False),
        ("lib/python3.14t/__pycache__/turtle.cpython-314.pyc", False),
        ("lib/python3.14t/test/test_os.py", False),
        ("lib/python3.14t/idlelib/idle.py", False),
        ("lib/python3.14t/tkinter/__init__.py", False),
        ("lib/python3.14t/lib-dynload/_tkinter.cpython-314t-x86_64-linux-gnu.so", False),
        ("lib/python3.14t/lib-dynload/_ssl.cpython-314t-x86_64-linux-gnu.so", True),
        ("lib/python3.14t/ensurepip/_bundled/pip-25.3-py3-none-any.whl", True),  # venv needs it
        ("lib/python3.14t/site-packages/pip/__init__.py", False),
        ("lib/python3.14t/site-packages/README.txt", True),
        ("lib/python3.14t/config-3.14t-x86_64-linux-gnu/libpython3.14t.a", False),
        ("lib/python3.14t/config-3.14t-x86_64-linux-gnu/Makefile", True),
    ],
)
def test_a_stripped_copy_keeps_what_a_host_runs(relative: str, kept: bool) -> None:
    assert strip.keep(Path(relative), "python3.14t", "python3.14t") is kept


def cached(build: str) -> bundle_contents.Source:
    try:
        return bundle_contents.find_source(build)
    except Exception as exc:
        pytest.skip(f"build {build} is not provisioned here ({exc}); run: ftscale build {build}")


def test_a_stripped_copy_runs_from_its_new_place_and_nowhere_else(tmp_path: Path) -> None:
    source = cached("3.14t")
    copy = tmp_path / "moved" / source.key
    stripped = strip.copy_stripped(source.prefix, copy, "3.14t")
    assert stripped.copy_bytes < stripped.source_bytes / 4 and stripped.stripped
    assert not (copy / "lib" / "python3.14t" / "test").exists()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    exe = copy / "bin" / "python3.14t"
    assert "runs from" in hostsetup.relocation_check(exe, copy, True, env)
    with pytest.raises(hostsetup.HostError, match=r"sys\.prefix is"):  # an interpreter found elsewhere
        hostsetup.relocation_check(source.executable, copy, True, env)
    with pytest.raises(hostsetup.HostError, match="it is free-threaded, unlike its build"):
        hostsetup.relocation_check(exe, copy, False, env)


# --- wheels and libraries ---------------------------------------------------------------------


def test_a_wheel_pins_its_normalised_name_and_version() -> None:
    assert wheelhouse.pin(Path("pydantic_core-2.41.4-cp313-cp313t-manylinux_2_17_x86_64.whl")) == (
        "pydantic-core==2.41.4"
    )
    assert wheelhouse.pin(Path("typing_extensions-4.15.0-py3-none-any.whl")) == "typing-extensions==4.15.0"


def test_environments_install_from_the_wheelhouse_only_when_one_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []

    def fake_run(cmd: list[str], build: str) -> str:
        commands.append(cmd)
        if "venv" in cmd:
            Path(cmd[-1]).mkdir(parents=True, exist_ok=True)
        return str(tmp_path / "site") if "sysconfig" in " ".join(cmd) else ""

    (tmp_path / "site").mkdir()
    monkeypatch.setenv("FTSCALE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(provision, "linked", lambda build: Path(sys.executable))
    monkeypatch.setattr(envs, "_run", fake_run)
    monkeypatch.delenv(wheelhouse.ENV, raising=False)
    envs.ensure("3.14t", log=lambda m: None)
    install, *optional = [c for c in commands if "install" in c]
    assert "--no-index" not in install and "--only-binary=:all:" in install
    assert [c[-1] for c in optional] == envs.requirements(envs.OPTIONAL_EXTRAS)  # one by one

    house = tmp_path / "wheels"
    house.mkdir()
    (house / "constraints-3.14t.txt").write_text("granian==2.7.0\n")
    optional = envs.requirements(envs.OPTIONAL_EXTRAS)
    carried = [r for r in optional if envs.package_name(r) != "numpy"]  # a bundle made without numpy
    for requirement in carried:
        (house / f"{envs.package_name(requirement).replace('-', '_')}-1.0-py3-none-any.whl").touch()
    monkeypatch.setenv(wheelhouse.ENV, str(house))
    commands.clear()
    envs.ensure("3.14t", log=lambda m: None)  # a new source of packages: the environment is remade
    installs = [c for c in commands if "install" in c]
    assert [c[-1] for c in installs[1:]] == carried  # what the wheelhouse lacks is not even tried
    left_out = json.loads((envs.env_dir("3.14t") / envs.UNAVAILABLE_FILE).read_text())
    assert list(left_out) == ["numpy"] and "not carried" in left_out["numpy"]
    for install in installs:  # the optional servers come from the wheelhouse too
        where = install.index("--no-index")
        assert install[where : where + 5] == [
            "--no-index",
            "--find-links",
            str(house),
            "--constraint",
            str(house / "constraints-3.14t.txt"),
        ]


def test_glibc_needed_is_the_newest_symbol_version_asked_for(tmp_path: Path) -> None:
    elf = tmp_path / "lib.so"
    elf.write_bytes(b"\x7fELF...GLIBC_2.2.5\x00GLIBC_2.34\x00GLIBC_2.17\x00GLIBC_PRIVATE\x00")
    assert sharedlibs.glibc_needed([elf]) == (2, 34)


def test_the_libraries_shipped_leave_out_glibc_and_say_where_they_come_from() -> None:
    source = cached("3.14")
    modules = sorted((source.prefix / "lib" / "python3.14" / "lib-dynload").glob("_ssl*.so"))
    found = sharedlibs.needed([source.executable, *modules])
    assert "libssl.so.3" in found and "libc.so.6" not in found and "libm.so.6" not in found
    if shutil.which("dpkg-query"):
        library = sharedlibs.provenance("libssl.so.3", found["libssl.so.3"])
        assert library.package and library.version and library.verified


# --- parts and the unpack script, on small fake parts ----------------------------------------


def test_a_part_over_the_limit_is_caught() -> None:
    parts = [
        bundle_parts.Part("common", "c", True, "", size=3 << 20),
        bundle_parts.Part("3.14", "p", True, "", size=61 << 20),
    ]
    assert [p.name for p in bundle_parts.oversize(parts, 60 << 20)] == ["3.14"]


def fake_bundle(folder: Path, glibc: str = "2.17") -> list[bundle_parts.Part]:
    """Two tiny parts; the "orchestrator" only says that it was asked to set the tree up."""
    common, build = folder / "stage" / "common", folder / "stage" / "3.14"
    (common / "bin").mkdir(parents=True)
    (common / "host.py").write_text("")
    (build / "py" / "bin").mkdir(parents=True)
    python = build / "py" / "bin" / "python"
    python.write_text('#!/bin/sh\necho "setup of $(cd "${0%/*}/../.." && pwd -P) asked: $*"\n')
    python.chmod(0o755)
    parts = []
    for name, stage in (("common", common), ("3.14", build)):
        size, digest = bundle_parts.write_part(stage, folder / bundle_parts.part_file(name))
        parts.append(
            bundle_parts.Part(
                name=name,
                file=bundle_parts.part_file(name),
                required=True,
                contents=f"the {name} part",
                size=size,
                sha256=digest,
            )
        )
    manifest = {
        "id": "test",
        "glibc": glibc,
        "orchestrator": "3.14",
        "builds": {"3.14": {"executable": "py/bin/python"}},
    }
    (folder / "unpack.sh").write_text(bundle_parts.unpack_script(manifest, parts))
    return parts


def unpack(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["sh", "unpack.sh", *args], cwd=folder, capture_output=True, text=True, check=False)


def test_unpack_checks_every_part_and_unpacks_them_into_one_tree(tmp_path: Path) -> None:
    fake_bundle(tmp_path)
    proc = unpack(tmp_path, "tree")
    assert proc.returncode == 0, proc.stderr
    assert "ftscale-bundle-common.tar.xz: sha256 checked, unpacked (the common part)" in proc.stdout
    assert f"setup of {(tmp_path / 'tree').resolve()} asked: -I" in proc.stdout
    assert (tmp_path / "tree" / "host.py").is_file() and (
        tmp_path / "tree" / "py" / "bin" / "python"
    ).is_file()
    again = unpack(tmp_path, "tree")  # as more parts arrive: what is unpacked stays
    assert again.stdout.count("already unpacked") == 2, again.stdout


def test_unpack_refuses_a_damaged_part(tmp_path: Path) -> None:
    parts = fake_bundle(tmp_path)
    damaged = tmp_path / parts[1].file
    damaged.write_bytes(damaged.read_bytes()[:-1] + b"\0")
    proc = unpack(tmp_path)
    assert proc.returncode == 1 and f"{parts[1].file}: sha256" in proc.stderr and "damaged" in proc.stderr
    assert not (tmp_path / "ftscale-bundle" / "py").exists()


def test_unpack_names_a_missing_required_part(tmp_path: Path) -> None:
    parts = fake_bundle(tmp_path)
    (tmp_path / parts[1].file).unlink()
    proc = unpack(tmp_path)
    assert proc.returncode == 1 and f"{parts[1].file} is missing (the 3.14 part)" in proc.stderr


def test_unpack_refuses_a_host_with_an_older_glibc(tmp_path: Path) -> None:
    if subprocess.run(["getconf", "GNU_LIBC_VERSION"], capture_output=True, check=False).returncode:
        pytest.skip("getconf cannot tell the glibc version here")
    fake_bundle(tmp_path, glibc="2.999")
    proc = unpack(tmp_path)
    assert proc.returncode == 1 and "the bundle needs glibc 2.999 or newer" in proc.stderr


def test_the_host_environment_knows_only_the_bundle() -> None:
    tree = Path("/srv/ftscale-bundle")
    manifest = {"git": {"commit": "abc123", "dirty": False}}
    base = {
        "PATH": "/usr/bin:/bin",
        "PIP_INDEX_URL": "https://example.invalid/simple",
        "PYTHONPATH": "/x",
        "HOME": "/home/u",
    }
    env = hostsetup.host_environment(tree, manifest, base)
    assert env["PATH"] == "/srv/ftscale-bundle/bin:/usr/bin:/bin" and env["HOME"] == "/home/u"
    assert "PIP_INDEX_URL" not in env and "PYTHONPATH" not in env
    assert env["PIP_NO_INDEX"] == "1" and env["PIP_CONFIG_FILE"] == os.devnull
    assert (
        env[wheelhouse.ENV] == "/srv/ftscale-bundle/wheels"
        and env["FTSCALE_CACHE"] == "/srv/ftscale-bundle/cache"
    )
    assert env["LD_LIBRARY_PATH"] == "/srv/ftscale-bundle/lib"
    assert env["FTSCALE_RESULTS"] == "/srv/ftscale-bundle/results"
    assert env["FTSCALE_GIT_COMMIT"] == "abc123" and env["FTSCALE_GIT_DIRTY"] == "0"


def test_a_run_outside_a_checkout_records_the_bundles_commit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FTSCALE_GIT_COMMIT", "abc123")
    monkeypatch.setenv("FTSCALE_GIT_DIRTY", "1")
    assert results.collect_git() == schema.Git(commit="abc123", dirty=True)


# --- a real bundle, unpacked elsewhere and measuring offline ---------------------------------


def basic_tools(folder: Path) -> Path:
    """A folder of links to the few programs the host side needs: no compiler among them."""
    folder.mkdir()
    for tool in ("sh", "tar", "xz", "sha256sum", "mkdir", "getconf"):
        found = shutil.which(tool)
        if found:
            (folder / tool).symlink_to(found)
    return folder


def offline(
    cmd: list[str], env: dict[str, str], cwd: Path, timeout: float
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` in a network namespace of its own (loopback only) where one can be made."""
    unshare, ip = shutil.which("unshare"), shutil.which("ip") or "/usr/sbin/ip"
    if unshare and Path(ip).exists():
        probe = subprocess.run([unshare, "-n", "true"], capture_output=True, check=False)
        if probe.returncode == 0:
            cmd = [unshare, "-n", "/bin/sh", "-c", f'{ip} link set lo up && exec "$@"', "offline", *cmd]
    return subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, check=False, timeout=timeout)


@pytest.fixture(scope="module")
def parts_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    for build in SMOKE_BUILDS:
        cached(build)
    out = tmp_path_factory.mktemp("bundle") / "parts"
    argv = ["bundle", "--for", "headline", "--output", str(out)]
    if shutil.which("wrk") is None:
        argv.append("--no-wrk")
    proc = subprocess.run(
        [sys.executable, "-m", "ftscale", *argv], capture_output=True, text=True, check=False, timeout=1800
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return out, proc.stdout


@pytest.fixture(scope="module")
def host(parts_folder: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The parts copied to a fresh folder and unpacked there with only basic tools on PATH."""
    parts, _ = parts_folder
    root = tmp_path_factory.mktemp("host")
    landing = root / "landing"
    shutil.copytree(parts, landing)
    tools = basic_tools(root / "tools")
    env = {"PATH": str(tools), "HOME": str(root), "PIP_NO_INDEX": "1"}
    proc = offline(["sh", "unpack.sh"], env, landing, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return {"tree": landing / bundle_parts.TREE, "env": env, "unpack": proc.stdout, "root": root}


@pytest.mark.e2e
@pytest.mark.slow
@once
def test_the_headline_bundle_is_one_part_within_the_limit_and_says_its_size(
    parts_folder: tuple[Path, str],
) -> None:
    out, printed = parts_folder
    files = sorted(p.name for p in out.glob("*.tar.xz"))
    assert files == [bundle_parts.part_file(bundle_parts.ONE_PART)]
    size = (out / files[0]).stat().st_size
    assert size <= bundle.PART_LIMIT_MIB << 20
    assert re.search(rf"{re.escape(files[0])} +{size / (1 << 20):.1f} MiB", printed), printed
    assert f"sh unpack.sh && {bundle_parts.TREE}/bin/ftscale bench --preset headline" in printed
    sums = (out / "SHA256SUMS").read_text().split()
    assert sums[1::2] == files
    assert "left out (not needed by what this bundle runs): " in printed and "numpy" in printed


@pytest.mark.e2e
@pytest.mark.slow
@once
def test_the_unpacked_bundle_checks_its_interpreters_and_uses_its_own_libraries(host: dict[str, Any]) -> None:
    tree: Path = host["tree"]
    for build in SMOKE_BUILDS:
        assert f"{build}: runs from {tree.resolve()}/cache/builds/" in host["unpack"]
    manifest = json.loads((tree / "bundle.json").read_text())
    env = hostsetup.host_environment(tree.resolve(), manifest, host["env"])
    python = tree / "envs" / "orchestrator" / "bin" / "python"
    probe = (
        "import shutil, ssl, sys; "
        "print([c for c in ('cc', 'gcc', 'clang', 'c++', 'pip') if shutil.which(c)]); "
        "print([line.split()[-1] for line in open('/proc/self/maps') if 'libssl' in line][:1])"
    )
    proc = subprocess.run([str(python), "-c", probe], env=env, capture_output=True, text=True, check=False)
    compilers, libssl = proc.stdout.splitlines()
    assert compilers == "[]", "a compiler (or pip on PATH) is reachable from the bundle"
    assert libssl == f"['{tree.resolve()}/lib/libssl.so.3']"


@pytest.mark.e2e
@pytest.mark.slow
@once
def test_the_headline_preset_runs_from_the_bundle_offline(host: dict[str, Any]) -> None:
    tree: Path = host["tree"]
    elsewhere = host["root"] / "elsewhere"  # any working directory will do
    elsewhere.mkdir()
    launcher = str(tree / "bin" / "ftscale")
    headline = [
        launcher,
        *"bench --preset headline --duration 1 --warmup 0 --repetitions 1 --rounds 2".split(),
        *"--size nbody=10 --size rag_gateway=5 --run-id headline-smoke".split(),
    ]
    micro = [
        *[launcher, "micro", "--builds", ",".join(SMOKE_BUILDS), "--workloads", "nbody", "--threads", "1"],
        *"--scaling strong --smoke --processes 1 --values 2 --warmups 0 --min-time 0.002".split(),
        *["--run-id", "micro-smoke"],
    ]
    for argv in (headline, micro):
        proc = offline(argv, host["env"], elsewhere, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        assert "report: not rendered here" in proc.stdout  # no report packages on the host
    run = results.load_run(tree / "results" / "headline-smoke")
    assert run.meta.kind == "http" and run.meta.finished is not None and run.meta.git.commit
    assert run.meta.config["preset"] == "headline"
    ok = run.ok_cells()
    assert {c.workload for c in ok} == {"nbody", "rag_gateway"}
    in_process = [c for c in ok if isinstance(c, schema.MicroCell)]
    assert sorted((c.build, c.workload) for c in in_process) == sorted(
        (b, w) for b in SMOKE_BUILDS for w in ("nbody", "rag_gateway")
    )
    assert all(c.stage == "ceiling" and c.cpus == run.meta.config["server_cpus"][:1] for c in in_process)
    confirmed = [c for c in ok if isinstance(c, schema.HttpCell) and c.stage == "confirm"]
    assert sorted(c.build for c in confirmed) == sorted(SMOKE_BUILDS * 2)  # both workloads' finalists
    micro_run = results.load_run(tree / "results" / "micro-smoke")
    assert sorted(c.build for c in micro_run.ok_cells()) == sorted(SMOKE_BUILDS)
    for each in (run, micro_run):
        for build, info in each.meta.builds.items():
            assert info.executable.startswith(str(tree.resolve())), (build, info.executable)
            assert info.gil_enabled is (not build.endswith("t"))
            assert "numpy" in info.unavailable  # the headline bundle carries no numpy
    http = results.load_run(tree / "results" / "headline-smoke").meta
    assert http.generator is not None
    assert http.generator["name"] == ("wrk" if (tree / "bin" / "wrk").exists() else "python")


@pytest.mark.e2e
@pytest.mark.slow
@once
def test_a_workload_the_bundle_cannot_run_is_one_line_and_exit_status_2(host: dict[str, Any]) -> None:
    launcher = str(host["tree"] / "bin" / "ftscale")
    argv = [launcher, "bench", "--preset", "headline", "--workloads", "numpy_small", "--run-id", "numpy"]
    proc = offline(argv, host["env"], host["root"], timeout=300)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("ftscale bench: error: workload numpy_small needs numpy"), line
    assert not (host["tree"] / "results" / "numpy").exists()
