"""Fresh servers per repetition made cheap: forked from a pre-imported parent, measured honestly.

End to end against the real service (this interpreter's environment), and the pieces that keep
a forked server's figures comparable: its CPU over the window its readings span, its memory as
the distinct pages of its own processes, the machine's interference around each load.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from ftscale.bench.http import interference, memory, zygote
from ftscale.bench.http.procs import ServerProcess, Usage, free_port
from ftscale.bench.http.session import Window, server_cpu_pct
from ftscale.server import lifeline

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def parent() -> object:
    os.environ["PYTHONSAFEPATH"] = "1"
    made = zygote.Zygote(Path(sys.executable), sorted(os.sched_getaffinity(0)))
    assert made.ready, made.why
    yield made
    made.stop()


def serve(parent: zygote.Zygote, *design: str) -> ServerProcess:
    port = free_port()
    args = [*design, "--port", str(port), "--start-method", "fork", "--log-level", "warning"]
    server = ServerProcess(args, "127.0.0.1", port, None, Path.cwd(), zygote=parent)
    server.wait_healthy(60)
    return server


def work(port: int, n: int = 6) -> None:
    for _ in range(n):
        body = b'{"size": 20}'
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/work/nbody", data=body, headers={"Content-Type": "application/json"}
        )
        urllib.request.urlopen(request, timeout=30).read()


@pytest.mark.parametrize(
    "design",
    [
        ("--mode", "threadpool"),
        ("--mode", "process"),
        ("--mode", "inline", "--topology", "workers", "--threads", "2"),
    ],
)
def test_a_forked_server_serves_records_its_costs_and_leaves_nothing(
    parent: zygote.Zygote, design: tuple[str, ...]
) -> None:
    server = serve(parent, *design)
    work(server.port)
    info = server.info()
    assert info.config.start_method == "fork" and info.pid in server.pids()
    tree = server.pids()
    result = server.stop()
    assert result["exit_code"] == 0 and result["clean"]
    assert server.start_s is not None and server.stop_s is not None
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE for pid in tree
    )


def test_forked_workers_and_pool_children_do_not_hold_the_port(parent: zygote.Zygote) -> None:
    server = serve(parent, "--mode", "inline", "--topology", "workers", "--threads", "2")
    port = server.port
    children = server.pids()[1:]
    listening = [
        c.pid
        for c in psutil.net_connections("tcp")
        if c.laddr and c.laddr.port == port and c.status == "LISTEN"
    ]
    assert listening and all(pid not in children for pid in listening if pid is not None)
    server.stop()


def test_a_server_whose_environment_changes_interpreter_start_is_not_forked() -> None:
    assert zygote.forkable({"FTSCALE_RUN_ID": "x"})
    assert not zygote.forkable(
        {"PYTHONPERFSUPPORT": "1"} if os.environ.get("PYTHONPERFSUPPORT") != "1" else {}
    )
    same = {"PYTHON_GIL": os.environ["PYTHON_GIL"]} if "PYTHON_GIL" in os.environ else {}
    assert zygote.forkable(same)


def test_children_start_by_fork_only_while_the_process_has_one_thread() -> None:
    assert lifeline.os_threads() >= 1
    import threading

    stop = threading.Event()
    helper = threading.Thread(target=stop.wait)
    helper.start()
    try:
        assert lifeline.start_context("fork").get_start_method() == "spawn"
    finally:
        stop.set()
        helper.join()
    assert lifeline.start_context("spawn").get_start_method() == "spawn"


def test_memory_counts_a_page_shared_by_two_processes_once() -> None:
    pid = os.fork()
    if pid == 0:
        time.sleep(5)
        os._exit(0)
    try:
        time.sleep(0.2)
        mine, child = memory.unique_bytes([os.getpid()]), memory.unique_bytes([pid])
        both = memory.unique_bytes([os.getpid(), pid])
        if both is None or mine is None or child is None:
            pytest.skip("page frame numbers are not readable here (not root)")
        # the child's pages are its parent's, copy-on-write: counted once, not twice
        shared = mine + child - both
        assert shared > 0.2 * child
        rss = psutil.Process().memory_info().rss + psutil.Process(pid).memory_info().rss
        assert both < rss
    finally:
        os.kill(pid, 9)
        os.waitpid(pid, 0)


def test_server_cpu_is_over_the_window_its_readings_span() -> None:
    before, after = Usage(10.0, 1, None, 1), Usage(11.07, 1, None, 1)
    # the load ran 1.0 s, the readings spanned 1.07 s (the generator's start and end): one busy CPU
    assert server_cpu_pct(Window(before, after, 1.07)) == 100.0
    assert server_cpu_pct(Window(before, None, 1.07)) is None


def test_interference_counts_what_others_ran_on_our_cpus() -> None:
    before = interference.CpuTicks({0: 0, 1: 0, 2: 0}, {0: 0, 1: 0, 2: 0})
    hz = interference.TICKS_PER_S
    # 2 s on CPUs 0 and 1: 3 CPU-seconds busy, 2.5 of them ours, 0.1 s stolen; CPU 2 is not ours
    after = interference.CpuTicks({0: 2 * hz, 1: hz, 2: 2 * hz}, {0: round(0.1 * hz), 1: 0, 2: hz})
    found = interference.measure(before, after, [0, 1], 2.0, accounted_cpu_s=2.5)
    assert found is not None and found.foreign_cpu_pct == 25.0 and found.steal_pct == 2.5
    assert found.disturbed  # 25 % of a CPU is over the 10 % limit
    quiet = interference.measure(before, after, [0, 1], 2.0, accounted_cpu_s=2.9)
    assert quiet is not None and not quiet.disturbed
    assert interference.measure(None, after, [0, 1], 2.0, 1.0) is None


def test_a_cpu_shared_by_server_and_generator_is_counted_once() -> None:
    before = interference.CpuTicks({0: 0, 1: 0}, {0: 0, 1: 0})
    hz = interference.TICKS_PER_S
    # 1 s: both CPUs fully busy with the server and the generator that share them (--allow-shared-cpus)
    after = interference.CpuTicks({0: hz, 1: hz}, {0: 0, 1: 0})
    shared = interference.measure(before, after, [0, 1, 0, 1], 1.0, accounted_cpu_s=2.0)
    assert shared is not None and shared.cpus == [0, 1]
    assert shared.foreign_cpu_pct == 0.0 and not shared.disturbed


@pytest.mark.parametrize("topology", ["gunicorn", "uvicorn-workers"])
def test_the_stock_deployments_serve_and_count_each_worker(parent: zygote.Zygote, topology: str) -> None:
    server = serve(parent, "--mode", "inline", "--topology", topology, "--threads", "2")
    try:
        before = server.info().unit_requests or {}
        work(server.port, 8)
        info = server.info()
        assert info.topology == topology and info.unit_kind == "process"
        assert info.balance == "kernel: one listening socket shared by every worker"
        after = info.unit_requests or {}
        assert set(after) == {"worker 0", "worker 1"}
        assert sum(after.values()) - sum(before.values()) == 8
        assert len(server.pids()) >= 3  # the supervisor and its two workers
    finally:
        result = server.stop()
    assert result["exit_code"] == 0 and result["clean"]


def test_a_stock_deployment_refuses_a_server_it_does_not_run() -> None:
    from ftscale.engines import topology_reason
    from ftscale.vocab import HttpServer, Topology

    assert topology_reason(HttpServer.UVICORN_H11, Topology.GUNICORN, free_threaded=False) is None
    assert topology_reason(HttpServer.UVICORN_FAST, Topology.UVICORN_WORKERS, free_threaded=True) is None
    reason = topology_reason(HttpServer.HYPERCORN, Topology.GUNICORN, free_threaded=False)
    assert reason is not None and "uvicorn" in reason


@pytest.fixture(scope="module")
def trivial() -> object:
    port = free_port()
    cmd = [sys.executable, "-m", "ftscale.bench.http.trivial", "--port", str(port), "--processes", "1"]
    server = ServerProcess(cmd, "127.0.0.1", port, None, Path.cwd())
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).read()
            break
        except OSError:
            time.sleep(0.05)
    yield port
    server.stop(timeout_s=5)


@pytest.mark.serial  # a wall-clock bound
@pytest.mark.parametrize("seconds", [0.5, 1.5])
def test_a_load_runs_as_long_as_stated(trivial: int, seconds: float) -> None:
    from ftscale.bench.http.loadgen import LoadSpec, run_python, run_wrk, wrk_path

    spec = LoadSpec(host="127.0.0.1", port=trivial, path="/", method="GET", connections=2, duration_s=seconds)
    assert run_python(spec).duration_s == pytest.approx(seconds, abs=0.05)
    if wrk_path() is None:
        pytest.skip("wrk is not installed")
    began = time.monotonic()
    result = run_wrk(spec)
    # wrk takes whole seconds: stopped when the stated time has passed (give or take a loaded scheduler)
    assert result.duration_s == pytest.approx(seconds, abs=0.25)
    assert time.monotonic() - began < seconds + 0.8
