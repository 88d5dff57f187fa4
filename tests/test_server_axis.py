"""The server axis without real servers: what can run where, and what each build can install."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from ftscale.bench.env import venv as envs

from ftscale import engines
from ftscale.vocab import HttpServer, Topology

NO_UVLOOP = {"uvloop": "no binary wheel installs here (No matching distribution found for uvloop)"}


# -- which server runs what, where -------------------------------------------------------------------


def test_a_server_missing_a_package_is_skipped_with_pips_reason() -> None:
    why = engines.skip_reason(HttpServer.UVICORN_FAST, Topology.SINGLE, True, NO_UVLOOP)
    assert why is not None and "uvloop" in why and "No matching distribution" in why
    assert engines.skip_reason(HttpServer.UVICORN_H11, Topology.SINGLE, True, NO_UVLOOP) is None
    assert engines.skip_reason(HttpServer.GRANIAN, Topology.SINGLE, True, NO_UVLOOP) is None


@pytest.mark.parametrize(
    ("server", "topology", "free_threaded", "runs"),
    [
        ("granian", "single", True, True),
        ("granian", "single", False, True),
        ("granian", "loops", True, True),  # worker threads
        ("granian", "loops", False, False),
        ("granian", "workers", False, True),  # worker processes
        ("granian", "workers", True, False),
        ("granian", "loops-reuseport", True, False),
        ("hypercorn", "workers", True, True),
        ("hypercorn", "loops", True, False),
        ("uvicorn-fast", "loops-reuseport", False, True),
        ("uvicorn-h11", "loops", False, True),
    ],
)
def test_what_each_server_can_serve(server: str, topology: str, free_threaded: bool, runs: bool) -> None:
    reason = engines.topology_reason(HttpServer(server), Topology(topology), free_threaded)
    assert (reason is None) is runs


def test_every_servers_packages_are_in_the_servers_extra_or_the_service() -> None:
    service = set(envs.requirements(("server",)))
    optional = {envs.package_name(r) for r in envs.requirements(envs.OPTIONAL_EXTRAS)}
    assert optional == set(engines.OPTIONAL_PACKAGES)
    for packages in engines.SERVER_PACKAGES.values():
        for name in packages:
            assert name in optional or any(envs.package_name(r) == name for r in service) or name == "h11"


# -- environments ------------------------------------------------------------------------------------


def test_a_package_without_a_wheel_is_recorded_and_the_rest_installs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    commands: list[list[str]] = []

    def fake_run(cmd: list[str], build: str) -> str:
        commands.append(cmd)
        if "venv" in cmd:
            Path(cmd[-1]).mkdir(parents=True, exist_ok=True)
        if cmd[-1].startswith("uvloop"):
            raise envs.PipFailed("pip failed", "ERROR: No matching distribution found for uvloop>=0.21\n")
        return str(tmp_path / "site") if "sysconfig" in " ".join(cmd) else ""

    (tmp_path / "site").mkdir()
    monkeypatch.setenv("FTSCALE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(envs.provision, "linked", lambda build: Path(sys.executable))
    monkeypatch.setattr(envs, "_run", fake_run)
    said: list[str] = []
    envs.ensure("3.13t", log=said.append)
    assert envs.unavailable("3.13t") == {
        "uvloop": "no binary wheel installs here (No matching distribution found for uvloop>=0.21)"
    }
    assert any("uvloop is not available" in line for line in said)
    installed = [c[-1] for c in commands if "install" in c][1:]
    assert [envs.package_name(r) for r in installed] == sorted(engines.OPTIONAL_PACKAGES)
