"""The server axis without real servers: what can run where, skipped cells, TCP_NODELAY records.

A design a server cannot run on a build (no wheel for one of its packages, no such topology) is
a *skipped* cell with its reason: nothing is started, it is not a failure, a resumed run does not
try it again, and the report lists it. Cells of the default server keep the keys they always had.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_sweep import CEILINGS, FAST, FakeGenerator, FakeLauncher, FakeServer, plan, real_info

from ftscale import engines, workloads
from ftscale.bench import engine, results
from ftscale.bench.env import venv as envs
from ftscale.bench.http import cell as sweep
from ftscale.bench.http.cells import CellSpec, Group
from ftscale.bench.http.matrix import Matrix
from ftscale.bench.http.options import build_parser
from ftscale.bench.http.session import CellProgress
from ftscale.errors import UsageError
from ftscale.schema import HttpCell
from ftscale.server import info as server_info
from ftscale.vocab import Flag, HttpServer, Topology

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
    assert optional == {*engines.OPTIONAL_PACKAGES, *workloads.optional_packages()}
    for packages in engines.SERVER_PACKAGES.values():
        for name in packages:
            assert name in optional or any(envs.package_name(r) == name for r in service) or name == "h11"


# -- the bench's matrix and cells --------------------------------------------------------------------


def matrix(*servers: str, runtime: tuple[int, ...] = (1,)) -> Matrix:
    return Matrix(
        builds=["3.13t", "3.14"],
        workloads=["nbody"],
        free_threaded_designs=[("threadpool", "single"), ("inline", "loops")],
        gil_designs=[("inline", "workers")],
        threads=[2],
        sizes={},
        connections=None,
        servers=servers,
        runtime_threads=runtime,
    )


def test_the_matrix_skips_what_a_build_cannot_run_and_keeps_default_keys() -> None:
    (group,) = matrix("uvicorn-h11", "uvicorn-fast", "granian").groups(
        {"3.13t": True, "3.14": False}, {"3.13t": {**NO_UVLOOP, "httptools": "no wheel"}}
    )
    plans = {(p.build, p.server, p.mode, p.topology): p for p in group.plans}
    assert len(plans) == len(group.plans) == 9
    assert plans["3.13t", "uvicorn-h11", "threadpool", "single"].key == (
        "3.13t__nbody__threadpool__single__-__t002"  # as before servers were a choice: old runs resume
    )
    fast = plans["3.13t", "uvicorn-fast", "inline", "loops"]
    assert fast.skip_reason is not None and "uvloop" in fast.skip_reason
    assert fast.key == "3.13t__nbody__inline__loops__-__t002__uvicorn-fast"
    assert plans["3.14", "uvicorn-fast", "inline", "workers"].skip_reason is None
    assert plans["3.13t", "granian", "inline", "loops"].skip_reason is None  # threads on t builds
    gil_granian = plans["3.14", "granian", "inline", "workers"]
    assert gil_granian.skip_reason is None and gil_granian.design == ("3.14", "granian", "inline", "workers")


def test_granian_runtime_threads_are_variants_of_granian_only() -> None:
    (group,) = matrix("uvicorn-h11", "granian", runtime=(1, 2)).groups({"3.13t": True, "3.14": False})
    labels = sorted({p.server_label for p in group.plans})
    assert labels == ["granian", "granian-rt2", "uvicorn-h11"]
    rt2 = next(p for p in group.plans if p.server_label == "granian-rt2")
    assert rt2.key.endswith("__granian-rt2") and rt2.runtime_threads == 2


def test_servers_option_rejects_unknown_names() -> None:
    args = build_parser().parse_args(["--servers", "granian,hypercorn,granian"])
    assert args.servers == ("granian", "hypercorn")
    with pytest.raises(UsageError, match="bad server gunicorn: want a comma-separated list of uvicorn-h11"):
        build_parser().parse_args(["--servers", "gunicorn"])


def test_a_skipped_plan_starts_nothing_and_is_not_a_failure(tmp_path: Path) -> None:
    runnable = plan("3.14t", server="granian")
    skipped = plan("3.14t", "inline", "workers", server="granian", skip_reason="no process workers")
    launcher = FakeLauncher()
    group = Group("nbody", 2, (runnable, skipped))
    cells = {c.cell_id: c for c in sweep.measure_group(group, "r", launcher, FakeGenerator(), FAST, CEILINGS)}
    assert {key for key, _ in launcher.started} == {runnable.key}
    cell = cells[skipped.key]
    assert (cell.status, cell.skip_reason, cell.server, cell.samples) == (
        "skipped",
        "no process workers",
        "granian",
        [],
    )
    assert cells[runnable.key].status == "ok" and cells[runnable.key].server == "granian"
    assert cells[runnable.key].tcp_nodelay is None  # the fake /info has seen no connection
    HttpCell.model_validate(cell.model_dump())

    rundir = results.RunDir(tmp_path / "run")
    outcome = engine.sweep(rundir, [group], lambda g: list(cells.values()), lambda g: "g", 1.0, tty=False)
    assert (outcome.measured, outcome.failed) == (2, 0)
    assert rundir.done() == {runnable.key, skipped.key}  # a resumed run tries neither again


def test_a_server_that_leaves_nagle_on_is_flagged_and_recorded() -> None:
    def nagle(p: CellSpec) -> FakeServer:
        server = FakeServer()
        server.info = lambda: real_info(True, False).model_copy(update={"tcp_nodelay": False})  # type: ignore[method-assign]
        return server

    (cell,) = sweep.measure_group(
        Group("nbody", 2, (plan(),)), "r", FakeLauncher(nagle), FakeGenerator(), FAST, CEILINGS
    )
    assert cell.status == "ok" and cell.tcp_nodelay is False
    assert str(Flag.NAGLE) in cell.flags


# -- TCP_NODELAY as /info reads it -------------------------------------------------------------------


@contextlib.contextmanager
def connected(nodelay: bool) -> Iterator[tuple[socket.socket, socket.socket]]:
    """(client, the server's accepted socket) through a listener made without IPPROTO_TCP."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        if nodelay:
            listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        with client, accepted:
            yield client, accepted


@pytest.mark.skipif(sys.platform != "linux", reason="reads this process's sockets through /proc")
@pytest.mark.parametrize("nodelay", [True, False])
def test_info_reads_nodelay_from_the_servers_own_socket(nodelay: bool) -> None:
    with connected(nodelay) as (client, accepted):
        # As a request's scope gives them: the client's address, the server's (a port as granian's string).
        host, port = accepted.getsockname()
        assert server_info.connection_nodelay(client.getsockname(), (host, str(port))) is nodelay
        assert server_info.connection_nodelay(("127.0.0.1", 1), (host, port)) is None  # no such socket


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
    assert [envs.package_name(r) for r in installed] == sorted(
        [*engines.OPTIONAL_PACKAGES, *workloads.optional_packages()]
    )


# -- the report ----------------------------------------------------------------------------------------


def with_servers(tmp_path: Path) -> Path:
    """The synthetic HTTP run, as if granian had run every design too (faster on 3.14t loops), plus
    a skipped cell."""
    run = tmp_path / "run"
    shutil.copytree(Path(__file__).parent / "data" / "report-http", run)
    rundir = results.RunDir(run)
    for cell in list(results.iter_cells(run)):
        if not isinstance(cell, HttpCell) or cell.status != "ok" or cell.load != "closed":
            continue
        factor = 1.5 if (cell.build, cell.topology) == ("3.14t", "loops") else 0.5
        rundir.write_cell(
            cell.model_copy(
                update={
                    "cell_id": f"{cell.cell_id}__granian",
                    "server": "granian",
                    "samples": [x * factor for x in cell.samples],
                    "repetitions": [],
                }
            )
        )
    skipped = plan("3.14t", "inline", "workers", server="granian", skip_reason="no process workers here")
    rundir.write_cell(sweep.make_cell(CellProgress(skipped, "2026-11-01T10:00:00+00:00"), "synthetic-http"))
    return run


def test_the_verdict_answers_per_server_in_one_process_and_on_the_gil_build(tmp_path: Path) -> None:
    pytest.importorskip("scipy")
    from ftscale.bench.report.findings import verdicts
    from ftscale.bench.report.model import build_model

    model = build_model(results.load_run(with_servers(tmp_path)))
    assert set(model.servers) == {"uvicorn-h11", "granian"} and len(model.skipped) == 1
    found = {v.workload: v for v in verdicts(model)}
    v = next(iter(found.values()))
    assert {s.server for s in v.servers} == {"uvicorn-h11", "granian"}
    assert v.best.series.key.server == "granian" and v.best.series.key.topology == "loops"
    assert v.one_process is not None and v.one_process.choice.series.key.one_process
    assert v.gil_best is not None and model.free_threaded(v.gil_best.choice.build) is False
    assert v.reference.build == "3.14"  # the fixed reference: the GIL twin's best, whatever the server


def test_the_report_shows_the_server_dimension_and_the_skipped_cells(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    from ftscale.cli import main as ftscale_main

    run = with_servers(tmp_path)
    assert ftscale_main(["report", str(run)]) == 0
    text = (run / "report.md").read_text()
    assert "Across servers, the best unflagged point is 3.14t granian·inline·loops" in text
    assert "### Each server at its best" in text and "best in one process" in text
    skipped = text[text.index("## Skipped") :]
    assert "no process workers here" in skipped and "1 cell could not run" in skipped


def test_compare_matches_a_default_server_run_with_the_same_server_of_a_multi_server_run(
    tmp_path: Path,
) -> None:
    pytest.importorskip("scipy")
    from ftscale.bench.report.compare import compare_runs
    from ftscale.bench.report.model import build_model

    base = build_model(results.load_run(Path(__file__).parent / "data" / "report-http"))
    other = build_model(results.load_run(with_servers(tmp_path)))
    comparison = compare_runs(base, other)
    assert comparison.only_base == 0 and comparison.only_other > 0  # granian's points match nothing
    assert all(m.ratio.value == pytest.approx(1.0) for m in comparison.matches)  # uvicorn-h11's, unchanged
