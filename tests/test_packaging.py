"""The distribution as a user meets it: ``pip install <checkout>`` gives the ``ftscale`` command.

Every ``--help`` must work on a bare interpreter (no bench dependency installed), and the
package must not claim top-level names such as ``bench`` or ``server``.
"""

from __future__ import annotations

import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

from ftscale import cli

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with only the checkout installed (no extras)."""
    root = tmp_path_factory.mktemp("bare")
    venv.create(root / "venv", with_pip=True)
    python = root / "venv" / "bin" / "python"
    proc = subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(REPO)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    return root / "venv" / "bin"


@pytest.mark.parametrize("argv", [[], *([c.name] for c in cli.COMMANDS)], ids=lambda a: " ".join(a) or "-")
def test_help_works_without_the_bench_dependencies(bare: Path, argv: list[str]) -> None:
    proc = subprocess.run(
        [str(bare / "ftscale"), *argv, "--help"], capture_output=True, text=True, check=False, cwd=bare
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage: ftscale" in proc.stdout
    for heavy in ("numpy", "pydantic", "pyperf", "scipy", "matplotlib", "h11"):
        probe = subprocess.run(
            [str(bare / "python"), "-c", f"import {heavy}"], capture_output=True, check=False
        )
        assert probe.returncode != 0, f"{heavy} is installed in the bare environment"


def test_version_and_module_entry_point(bare: Path) -> None:
    version = subprocess.run(
        [str(bare / "ftscale"), "--version"], capture_output=True, text=True, check=False, cwd=bare
    )
    module = subprocess.run(
        [str(bare / "python"), "-m", "ftscale", "--version"],
        capture_output=True,
        text=True,
        check=False,
        cwd=bare,  # not the checkout: there, -m would find its ftscale/ folder first
    )
    assert version.stdout.startswith("ftscale ") and version.stdout == module.stdout, module.stderr


def test_a_command_names_the_missing_extra(bare: Path, tmp_path: Path) -> None:
    proc = subprocess.run(
        [str(bare / "ftscale"), "report", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        cwd=bare,
    )
    assert proc.returncode == 1
    assert "pip install 'ftscale[report]'" in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


def test_the_wheel_holds_one_top_level_package(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(REPO)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("ftscale-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"ftscale"}
    for module in (
        "ftscale/bench/http/wrk_report.lua",
        "ftscale/bench/bundle/unpack.sh",
        "ftscale/bench/env/hostsetup.py",
        "ftscale/server/app.py",
        "ftscale/workloads/registry.py",
    ):
        assert module in names


def test_every_package_folder_is_in_the_distribution() -> None:
    """A subpackage missing from pyproject's list works from the checkout and fails once installed."""
    import tomllib

    declared = set(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    roots = {"ftscale": REPO / "ftscale", "ftscale.bench": REPO / "bench"}
    roots |= {"ftscale.server": REPO / "server", "ftscale.workloads": REPO / "workloads"}
    found = set()
    for name, root in roots.items():
        for init in root.rglob("__init__.py"):
            relative = init.parent.relative_to(root).parts
            if "__pycache__" not in relative:
                found.add(".".join([name, *relative]))
    assert found == declared
