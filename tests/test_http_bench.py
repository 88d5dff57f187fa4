"""The HTTP bench end to end: real servers on 127.0.0.1, tiny durations, this interpreter."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from ftscale.bench import results
from ftscale.bench.http import arrivals, capacity
from ftscale.bench.http import run as http
from ftscale.bench.http.estimate import (
    ASSUMED_CAP_RPS,
    REPETITION_OVERHEAD_S,
    TOPOLOGY_OVERHEAD_S,
    load_seconds,
)
from ftscale.bench.http.loadgen import wrk_path
from ftscale.bench.http.matrix import default_threads, parse_cpus, split_cpus
from ftscale.bench.http.plan import plan_job
from ftscale.bench.http.real import RUN_ENV
from ftscale.schema import HttpCell
from ftscale.vocab import Flag
from tests.conftest import requires_free_threading

CPUS = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
# On a 2-core machine both sides must share the CPUs; the cells are flagged for it.
COMMON = [
    "--server-python",
    sys.executable,
    "--generator",
    "python",
    "--allow-shared-cpus",
    "--server-cpus",
    CPUS,
    "--client-cpus",
    CPUS,
    "--duration",
    "0.5",
    "--warmup",
    "0",
    "--repetitions",
    "1",
    "--designs",
    "threadpool/single",
    "--no-report",
]
REPO = Path(__file__).resolve().parent.parent


def _bench(
    tmp_path: Path, *args: str, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ftscale", "bench", "--results-dir", str(tmp_path), *COMMON, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def _servers(run_id: str) -> set[int]:
    """Server processes (and their children) that the bench started for ``run_id``."""
    found = set()
    for proc in psutil.process_iter():
        try:
            if proc.environ().get(RUN_ENV) == run_id:
                found.add(proc.pid)
        except psutil.Error:
            continue
    return found


@pytest.mark.slow
@requires_free_threading
def test_a_free_threaded_server_forced_to_keep_its_gil_is_flagged(tmp_path: Path) -> None:
    """The real service, its /info read the way the bench reads it: PYTHON_GIL=1 must show."""
    proc = _bench(
        tmp_path, "--run-id", "g", "--workloads", "nbody", "--threads", "1", "--size", "nbody=50",
        env={"PYTHON_GIL": "1"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (cell,) = results.load_run(tmp_path / "g").cells
    assert cell.status == "ok" and cell.info_before is not None
    assert cell.info_before.interpreter.py_gil_disabled and cell.info_before.gil_enabled
    assert Flag.GIL_ENABLED in cell.flags


@pytest.mark.e2e
@pytest.mark.slow
def test_quick_run_writes_a_loadable_run_directory(tmp_path: Path) -> None:
    proc = _bench(
        tmp_path,
        "--run-id",
        "r1",
        "--workloads",
        "nbody,rag_gateway",
        "--threads",
        "1,2",
        "--size",
        "nbody=200",
    )
    assert proc.returncode == 0, proc.stderr
    run = results.load_run(tmp_path / "r1")
    assert run.meta.kind == "http" and run.meta.finished is not None
    assert run.meta.generator is not None and run.meta.generator["name"] == "python"
    (build,) = run.meta.builds.values()
    assert (
        build.executable == sys.executable
        or Path(build.executable).resolve() == Path(sys.executable).resolve()
    )
    assert len(run.cells) == 4
    for cell in run.cells:
        assert cell.status == "ok", cell.error
        assert cell.samples[0] > 0 and cell.unit == "req/s"
        assert "server-and-client-share-cpus" in cell.flags
        rep = cell.repetitions[0]
        assert (rep.load.latency_ms["p50"] or 0) > 0 and (rep.rss_bytes or 0) > 10_000_000
        assert cell.info_before is not None and cell.info_before.mode == "threadpool"
    assert _servers("r1") == set()  # every server was stopped


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.skipif(wrk_path() is None, reason="wrk is not installed")
def test_wrk_generator(tmp_path: Path) -> None:
    proc = _bench(
        tmp_path,
        "--run-id",
        "w",
        "--workloads",
        "sha256_hash",
        "--threads",
        "1",
        "--size",
        "sha256_hash=256",
        "--generator",
        "wrk",
        "--duration",
        "1",
    )
    assert proc.returncode == 0, proc.stderr
    (cell,) = results.load_run(tmp_path / "w").cells
    assert cell.status == "ok" and cell.repetitions[0].load.requests > 0
    assert results.load_run(tmp_path / "w").meta.generator["name"] == "wrk"  # type: ignore[index]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workloads", "fibonacci"], "unknown workload 'fibonacci'; known:"),
        (["--threads", "0"], "thread counts must be 1 or more"),
        (["--threads", "two"], "thread counts must be integers"),
        (["--builds", "3.12"], "unknown build 3.12"),
        (["--size", "nbody=0"], "between 1 and"),
        (["--repetitions", "0"], "--repetitions must be 1 or more"),
        (["--resume", "nothing-here"], "cannot resume nothing-here"),
    ],
)
def test_bad_arguments_fail_in_one_line_before_anything_starts(
    tmp_path: Path, args: list[str], message: str
) -> None:
    argv = ["--results-dir", str(tmp_path), "--generator", "python", *args]
    if "--builds" not in args:
        argv += ["--server-python", sys.executable]
    proc = subprocess.run(
        [sys.executable, "-m", "ftscale", "bench", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_overlapping_cpus_need_consent(tmp_path: Path) -> None:
    with pytest.raises(http.UsageError, match="overlap"):
        argv = ["--results-dir", str(tmp_path), "--server-cpus", "0", "--client-cpus", "0"]
        plan_job(http.build_parser().parse_args(argv), argv)


def test_cpu_split_and_default_threads() -> None:
    assert split_cpus(range(16)) == (list(range(4, 16)), [0, 1, 2, 3])
    assert split_cpus([0, 1]) == ([1], [0])
    assert default_threads(12) == [1, 2, 4, 8, 12]
    assert default_threads(1) == [1]
    assert parse_cpus("0-2,5") == [0, 1, 2, 5]


@pytest.mark.e2e
@pytest.mark.slow
def test_an_interrupted_run_resumes_where_it_stopped(tmp_path: Path) -> None:
    run_id = f"k{os.getpid()}"  # unique on the machine: the server scan below is machine-wide
    cmd = [
        sys.executable,
        "-m",
        "ftscale",
        "bench",
        "--results-dir",
        str(tmp_path),
        *COMMON,
        "--run-id",
        run_id,
        "--workloads",
        "nbody",
        "--size",
        "nbody=100",
        "--threads",
        "1,2,3",
    ]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    cells = tmp_path / run_id / "cells"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (cells.exists() and any(cells.glob("*.json"))):
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "--resume" in err
    kept = {p.name: p.read_text() for p in cells.glob("*.json")}
    assert 1 <= len(kept) < 3
    assert _servers(run_id) == set()  # the interrupted cell's server was stopped too

    resumed = subprocess.run(
        [sys.executable, "-m", "ftscale", "bench", "--results-dir", str(tmp_path), "--resume", run_id],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr
    run = results.load_run(tmp_path / run_id)
    assert sorted(c.threads for c in run.cells) == [1, 2, 3]
    assert all(c.status == "ok" for c in run.cells)
    for name, text in kept.items():  # what was measured before is untouched
        assert (cells / name).read_text() == text


def _starved_run(
    tmp_path: Path, generator: str, client_cpus: list[int], hog_cpus: list[int], size: int = 1
) -> HttpCell:
    server_cpu = sorted(os.sched_getaffinity(0))[-1]
    hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(6 if hog_cpus else 0)]
    try:
        for index, hog in enumerate(hogs):
            os.sched_setaffinity(hog.pid, {hog_cpus[index % len(hog_cpus)]})
        argv = [
            "--results-dir", str(tmp_path), "--server-python", sys.executable, "--generator", generator,
            "--server-cpus", str(server_cpu), "--client-cpus", ",".join(map(str, client_cpus)),
            "--allow-shared-cpus", "--run-id", "s", "--workloads", "nbody", "--size", f"nbody={size}",
            "--threads", "1", "--duration", "1", "--warmup", "0", "--repetitions", "1",
            "--designs", "threadpool/single", "--no-report",
        ]  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-m", "ftscale", "bench", *argv],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    assert proc.returncode == 0, proc.stderr
    (cell,) = results.load_run(tmp_path / "s").cells
    assert isinstance(cell, HttpCell)
    return cell


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.serial  # pins busy loops to the CPUs
@pytest.mark.skipif(
    len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs: one for the server, one for the client"
)
@pytest.mark.parametrize("clients", [1, 2], ids=["1 client CPU", "2 client CPUs"])
def test_a_starved_generator_is_flagged(tmp_path: Path, clients: int) -> None:
    """Busy loops share a client CPU: the generator, not the server, sets the pace.

    The built-in generator runs one process per client CPU, each pinned to its CPU; the busy
    loops share the first client CPU only (the server has the other one to itself). With two
    client CPUs one generator process is starved and the other is not: the check must judge each
    process on its own, since their busy time summed over two CPUs would stay under a threshold
    scaled by the CPU count and the starvation would go unseen.
    """
    cpus = sorted(os.sched_getaffinity(0))
    cell = _starved_run(tmp_path, "python", cpus[:clients], cpus[:1])
    rep = cell.repetitions[0]
    assert Flag.GENERATOR_SATURATED in cell.flags, rep.model_dump_json()
    assert rep.load.generator_threads == clients
    assert (rep.load.generator_busy_max_pct or 0) >= 50


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.serial  # the generator must not be starved by the rest of the suite either
def test_an_unstarved_generator_is_not_flagged(tmp_path: Path) -> None:
    cpus = sorted(os.sched_getaffinity(0))
    # the server (about 10 ms a request) sets the pace: the generator mostly waits for answers
    cell = _starved_run(tmp_path, "python", cpus[:1], [], size=2000)
    assert Flag.GENERATOR_SATURATED not in cell.flags, cell.repetitions[0].model_dump_json()


def test_dry_run_prints_the_plan_and_its_estimate_and_measures_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The quick preset on one server CPU: 2 builds x 3 workloads x 1 thread count = 3 groups of 6
    designs, 3 repetitions each, then 10 confirmation rounds of 2 candidates per workload; each
    repetition costs the measured overhead of its way of starting, its warm-up and its load, as stated."""
    argv = ["--dry-run", "--server-cpus", "1", "--client-cpus", "0", "--results-dir", str(tmp_path)]
    if not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1")
    assert http.main(argv) == 0
    out = capsys.readouterr().out
    assert "preset quick: 3 groups, 18 cells" in out
    per_rep = REPETITION_OVERHEAD_S["fork"] + 0.5 + 1.0
    extra = sum(TOPOLOGY_OVERHEAD_S.get(t, 0.0) for t in ("gunicorn", "uvicorn-workers"))
    sweep = 3 * (6 * 3 * per_rep + 3 * extra)
    assert f"sweep {sweep:,.0f} s" in out
    # a candidate could be any of its build's designs: the GIL side's stock start and stop on average
    expected_extra = extra / 4
    assert f"confirmation {3 * 10 * (2 * per_rep + expected_extra):,.0f} s" in out
    assert list(tmp_path.iterdir()) == []


def test_a_load_lasts_as_stated() -> None:
    assert [load_seconds(d) for d in (0.2, 1.0, 1.5, 2.4, 3.0)] == [0.2, 1.0, 1.5, 2.4, 3.0]


def test_dry_run_estimates_the_capacity_searches(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--slo-p99: each design's search costs its server's start and its steps' loads, at the assumed
    closed-loop median (not known before the design is measured), and the dry run says so."""
    if not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1")
    argv = ["--dry-run", "--server-cpus", "1", "--client-cpus", "0", "--results-dir", str(tmp_path)]
    argv += ["--workloads", "nbody", "--slo-p99", "50"]
    assert http.main(argv) == 0
    out = capsys.readouterr().out
    assert "preset quick: 1 groups, 12 cells" in out and "capacity searches: 6," in out
    assert "; open loop with poisson arrivals;" in out
    assert f"median of {ASSUMED_CAP_RPS:g} req/s (assumed" in out
    per_rep = REPETITION_OVERHEAD_S["fork"] + 0.5 + 1.0
    search = REPETITION_OVERHEAD_S["fork"] + capacity.search_seconds(ASSUMED_CAP_RPS, 50.0, 1.0, 0.5)
    assert search > 60 * 2  # minutes, not the seconds a single load per rate once took
    stock = 3 * sum(TOPOLOGY_OVERHEAD_S.values())
    assert f"sweep {6 * 3 * per_rep + stock + 6 * search:,.0f} s" in out
    assert list(tmp_path.iterdir()) == []


def test_arrivals_need_an_open_loop(tmp_path: Path) -> None:
    if not {0, 1} <= os.sched_getaffinity(0):
        pytest.skip("needs CPUs 0 and 1")
    argv = ["--results-dir", str(tmp_path), "--server-cpus", "1", "--client-cpus", "0"]
    argv += ["--arrivals", "uniform"]
    with pytest.raises(http.UsageError, match="--arrivals applies to the open loop"):
        plan_job(http.build_parser().parse_args(argv), argv)
    job = plan_job(http.build_parser().parse_args([*argv, "--load", "open"]), [*argv, "--load", "open"])
    assert job.settings.arrivals == "uniform" and job.settings.seed == arrivals.run_seed(job.run_dir.name)
