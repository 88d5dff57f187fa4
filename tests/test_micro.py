"""The micro bench: the thread team's arithmetic on a fake clock, argument errors, the console
summary, Ctrl-C and --resume with a fake cell runner, and one real run on this interpreter."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pyperf
import pytest

from ftscale import schema, workloads
from ftscale.bench import results
from ftscale.bench.env import venv as envs
from ftscale.bench.micro import run as micro
from ftscale.bench.micro import summary as microsummary
from ftscale.bench.micro import threads, worker
from ftscale.bench.micro.cell import MicroCellSpec, PyperfSettings, cell_from_benchmark, worker_command
from ftscale.bench.micro.worker import calls_per_thread
from ftscale.vocab import Flag

REPO = Path(__file__).resolve().parent.parent
PY = sys.executable

FT_BUILD = schema.Build(
    build="3.14t", version="3.14.7", executable="/opt/py/3.14t", py_gil_disabled=True, gil_enabled=False,
    config_args="--disable-gil",
)  # fmt: skip
GIL_BUILD = FT_BUILD.model_copy(update={"build": "3.14", "py_gil_disabled": False, "gil_enabled": True})


# --- the thread team, on a fake clock -------------------------------------------------------------


def worker_meta(plan: MicroCellSpec, gil: bool) -> dict[str, Any]:
    """The metadata the micro worker writes for ``plan``, built from the real model."""
    return worker.metadata(
        schema.MicroWorkerMeta(
            build=plan.build, py_gil_disabled=1, gil_enabled=int(gil), threads=plan.threads,
            scaling=plan.scaling, workload=plan.workload, workload_class=plan.workload_class, size=plan.size,
            size_meaning="n", calls_per_round=plan.calls_per_round, calls_per_thread="1", io_wait="none",
            cpu_affinity="0", usable_cores=1, value="seconds per round",
        )
    )  # fmt: skip


def test_team_times_every_round_between_two_clock_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = iter([100.0, 101.0])  # a third read would raise StopIteration
    monkeypatch.setattr(time, "perf_counter", lambda: next(reads))
    calls = [0, 0, 0]

    def task(index: int) -> None:
        calls[index] += 1

    with threads.ThreadTeam(3, task) as team:
        elapsed = team.run(8)
    assert elapsed == 1.0
    assert calls == [8, 8, 8]


def test_fake_clock_to_throughput_strong_and_weak() -> None:
    ticks = iter([5.0, 6.0, 20.0, 22.0])
    with threads.ThreadTeam(2, lambda i: None, clock=lambda: next(ticks)) as team:
        strong_value = team.run(8) / 8  # pyperf divides a value's time by its loops
        weak_value = team.run(4) / 4
    assert (strong_value, weak_value) == (0.125, 0.5)

    strong = MicroCellSpec("3.14t", "nbody", "pure-python", 10, "strong", 2, 4)  # 4 calls per round in all
    weak = MicroCellSpec("3.14t", "nbody", "pure-python", 10, "weak", 2, 3)  # 3 calls on each thread
    assert (strong.shares, weak.shares) == ([2, 2], [3, 3])
    calibration = pyperf.Run(
        [], warmups=[(1, 0.3), (8, 0.125)], metadata={"name": strong.name, "calibrate_loops": 8},
        collect_metadata=False,
    )  # fmt: skip
    measured = pyperf.Run(
        [strong_value, strong_value * 2], warmups=[(8, 0.2)],
        metadata={"name": strong.name, "loops": 8, **worker_meta(strong, gil=False)}, collect_metadata=False,
    )  # fmt: skip
    cell = cell_from_benchmark(strong, pyperf.Benchmark([calibration, measured]), "r", FT_BUILD, "a", "b")
    assert cell.samples == [32.0, 16.0]  # 4 calls / 0.125 s, 4 calls / 0.25 s; warm-ups left out
    assert [r.seconds_per_round for r in cell.repetitions] == [0.125, 0.25]
    assert {r.loops for r in cell.repetitions} == {8}
    assert (cell.status, cell.unit, cell.flags, cell.gil_enabled) == ("ok", "calls/s", [], False)

    run = pyperf.Run([weak_value], metadata={"name": weak.name, "loops": 4, **worker_meta(weak, gil=True)},
                     collect_metadata=False)  # fmt: skip
    cell = cell_from_benchmark(weak, pyperf.Benchmark([run]), "r", FT_BUILD, "a", "b", usable_cores=1)
    assert cell.samples == [12.0]  # 2 threads x 3 calls / 0.5 s
    assert cell.flags == [Flag.GIL_ENABLED, "threads-over-usable-cores"]


def test_team_threads_persist_across_rounds_and_errors_surface() -> None:
    seen: dict[int, set[int]] = {0: set(), 1: set()}

    def task(index: int) -> None:
        seen[index].add(threading.get_ident())

    with threads.ThreadTeam(2, task) as team:
        team.run(3)
        team.run(2)
    assert all(len(ids) == 1 for ids in seen.values()) and seen[0] != seen[1]

    def broken(index: int) -> None:
        if index == 1:
            raise ValueError("boom")

    team = threads.ThreadTeam(2, broken)
    with pytest.raises(threads.TeamError, match="thread 1 of 2 failed: ValueError"):
        team.run(1)
    assert not any(t.name.startswith("ftscale-team-") and t.is_alive() for t in threading.enumerate())


def test_calls_are_split_for_strong_and_repeated_for_weak() -> None:
    assert threads.split_calls(5, 2) == [3, 2]
    assert threads.split_calls(4, 4) == [1, 1, 1, 1]
    assert calls_per_thread("weak", 2, 3) == [2, 2, 2]
    assert micro.default_threads(2) == [1, 2]
    assert micro.default_threads(6) == [1, 2, 4, 6]
    assert micro.default_strong_calls([1, 2, 4]) == 4
    assert micro.default_strong_calls([1, 3, 4]) == 12
    assert micro.default_strong_calls([1, 7, 8]) == 8  # lcm 56 is too many calls per round
    assert micro.parse_duration("1ms") == 0.001 and micro.parse_duration("0.5s") == 0.5


def test_worker_command_names_the_cell_and_forwards_pyperf_settings(tmp_path: Path) -> None:
    plan = MicroCellSpec("3.14", "nbody", "pure-python", 200, "weak", 2, 1)
    cmd = worker_command(Path("/py"), plan, PyperfSettings(processes=1, min_time=0.01), tmp_path / "o.json")
    assert cmd[:3] == ["/py", "-m", "ftscale.bench.micro.worker"]
    assert cmd[cmd.index("--threads") + 1] == "2" and cmd[cmd.index("--scaling") + 1] == "weak"
    assert cmd[cmd.index("--processes") + 1] == "1" and "--values" not in cmd and "--in-process" not in cmd
    quick = worker_command(Path("/py"), plan, PyperfSettings(in_process=True), tmp_path / "o.json")
    assert "--in-process" in quick
    assert plan.name == "nbody/weak/t2" and plan.key == "3.14__nbody__-__-__weak__t002"


# --- argument errors: one line, non-zero, nothing written ------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--workloads", "nbody,nope"], "unknown workload 'nope'"),
        (["--threads", "0"], "thread counts must be 1 or more"),
        (["--threads", "-2"], "thread counts must be 1 or more"),
        (["--threads", "1,two"], "thread counts must be integers"),
        (["--builds", "3.12"], "unknown build 3.12; known: 3.13, 3.13t, 3.14, 3.14t"),
        (["--scaling", "medium"], "unknown scaling mode medium"),
        (["--size-target", "fast"], "--size-target wants a duration"),
        (["--python", "/no/such/python"], "not an executable"),
        (["--python", PY, "--builds", "3.14"], "exclude each other"),
        (["--processes", "0"], "--processes must be 1 or more"),
        (["--threads", "1,4", "--strong-calls", "2"], "leaves threads idle at 4 threads"),
        (["--bogus"], "unrecognized arguments: --bogus"),
        (["--resume", "missing-run"], "cannot resume missing-run"),
    ],
)
def test_bad_arguments_fail_on_one_line_before_writing(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out_dir = tmp_path / "results"
    assert micro.main([*argv, "--results-dir", str(out_dir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("ftscale micro: error: ") and err.count("\n") == 1, err
    assert message in err
    assert not out_dir.exists()


def test_a_build_that_cannot_be_provisioned_fails_before_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def prepare(builds: list[str], **kw: Any) -> dict[str, schema.Build]:
        raise envs.EnvError("build 3.13t is not provisioned;\nrun: nox -s interpreters -- 3.13t")

    monkeypatch.setattr(envs, "prepare", prepare)
    assert micro.main(["--builds", "3.13t", "--results-dir", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert err == "ftscale micro: error: build 3.13t is not provisioned; run: nox -s interpreters -- 3.13t\n"
    assert not (tmp_path / "r").exists()


def test_an_existing_run_directory_is_not_overwritten(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r1").mkdir()
    assert micro.main(["--python", PY, "--run-id", "r1", "--results-dir", str(tmp_path)]) == 2
    assert "already exists; use --resume r1" in capsys.readouterr().err
    assert list((tmp_path / "r1").iterdir()) == []


# --- summary ---------------------------------------------------------------------------------------


def _cell(build: str, scaling: str, n: int, samples: list[float]) -> schema.MicroCell:
    return schema.MicroCell(
        run_id="r", cell_id=results.cell_id(build, "nbody", n, scaling=scaling), build=build,
        workload="nbody", workload_class="pure-python", size=10, threads=n, scaling=scaling,  # type: ignore[arg-type]
        status="ok", unit="calls/s", samples=samples, started="a", finished="b",
    )  # fmt: skip


def test_summary_is_a_ratio_of_medians_read_from_files(tmp_path: Path) -> None:
    meta = schema.RunMeta(
        run_id="r", kind="micro", created="a", host=results.collect_host(),
        git=schema.Git(commit=None, dirty=None), config={"workloads": ["nbody"]},
        builds={"3.14": GIL_BUILD, "3.14t": FT_BUILD},
    )  # fmt: skip
    cells = (
        _cell("3.14", "strong", 1, [90.0, 100.0, 110.0]),
        _cell("3.14", "strong", 2, [100.0, 100.0, 100.0]),
        _cell("3.14t", "strong", 1, [80.0, 79.0, 81.0]),
        _cell("3.14t", "strong", 2, [150.0, 140.0, 160.0]),
        _cell("3.14t", "weak", 1, [10.0]),
        _cell("3.14t", "weak", 2, [15.0]),
    )
    rows = microsummary.summarise(results.Run(tmp_path, meta, cells))
    assert [(r.build, r.twin) for r in rows] == [("3.14", None), ("3.14t", "3.14")]
    gil, ft = rows
    assert gil.scaling == (microsummary.Scaling("strong", 2, 1.0),) and gil.overhead is None
    assert ft.scaling == (
        microsummary.Scaling("strong", 2, 150.0 / 80.0),
        microsummary.Scaling("weak", 2, 1.5),
    )
    assert ft.scaling[1].efficiency == 0.75
    assert ft.overhead == 100.0 / 80.0 - 1.0  # the 3.14t 1-thread time is 25% longer
    text = "\n".join(microsummary.format_summary(rows))
    assert "S(2)=1.88  94%" in text and "+25% time vs 3.14" in text


# --- Ctrl-C and --resume, with a fake cell runner --------------------------------------------------


def test_interrupted_run_keeps_whole_cells_and_resume_finishes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    measured: list[str] = []
    stop_at: list[int] = [3]

    def fake_measure(plan: MicroCellSpec, python: Path, settings: Any, run_id: str, build: schema.Build,
                     scratch: Path) -> tuple[schema.MicroCell, Any]:  # fmt: skip
        if len(measured) + 1 == stop_at[0]:
            raise KeyboardInterrupt
        measured.append(plan.key)
        run = pyperf.Run(
            [0.25],
            metadata={"name": plan.name, "loops": 1, **worker_meta(plan, gil=False)},
            collect_metadata=False,
        )
        bench = pyperf.Benchmark([run])
        return cell_from_benchmark(plan, bench, run_id, build, "a", "b"), bench

    monkeypatch.setattr(micro, "measure", fake_measure)
    monkeypatch.setattr(envs, "describe", lambda label, python: GIL_BUILD)
    argv = ["--python", f"a={PY}", "--python", f"b={PY}", "--workloads", "nbody", "--threads", "1,2",
            "--smoke", "--run-id", "r", "--results-dir", str(tmp_path), "--no-report"]  # fmt: skip
    assert micro.main(argv) == 130
    assert "interrupted" in capsys.readouterr().err
    run = results.load_run(tmp_path / "r")
    assert [c.cell_id for c in run.cells] == sorted(measured) and len(measured) == 2
    assert run.meta.finished is None and set(run.meta.builds) == {"a", "b"}
    assert sorted(p.name for p in (tmp_path / "r").rglob("*") if p.is_file()) == [
        "a.json", "a__nbody__-__-__strong__t001.json",
        "b.json", "b__nbody__-__-__strong__t001.json", "run.json",
    ]  # fmt: skip

    first = list(measured)
    stop_at[0] = 0
    assert micro.main(["--resume", "r", "--results-dir", str(tmp_path), "--no-report"]) == 0
    assert measured[:2] == first and len(measured) == 8 and len(set(measured)) == 8
    run = results.load_run(tmp_path / "r")
    assert len(run.ok_cells()) == 8 and run.meta.finished is not None
    suite = pyperf.BenchmarkSuite.load(str(tmp_path / "r" / "pyperf" / "b.json"))
    assert len(suite.get_benchmark_names()) == 4
    # 0.25 s per round: strong rounds are 2 calls (lcm of 1, 2), weak rounds 1 call per thread
    assert all(c.samples == [(2 if c.scaling == "strong" else c.threads) / 0.25] for c in run.cells)


# --- a real quick run on this interpreter ----------------------------------------------------------

REAL_WORKLOADS = ["nbody", "sha256_hash"]
NAMES = {f"{w}/{s}/t{n}" for w in REAL_WORKLOADS for s in ("strong", "weak") for n in (1, 2)}


@pytest.fixture(scope="module")
def real_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("micro")
    argv = [
        "--python", f"host-a={PY}", "--python", f"host-b={PY}", "--workloads", ",".join(REAL_WORKLOADS),
        "--threads", "1,2", "--smoke", "--processes", "1", "--values", "2", "--warmups", "0",
        "--min-time", "0.002", "--run-id", "real", "--results-dir", str(root), "--no-report",
    ]  # fmt: skip
    assert micro.main(argv) == 0
    return root / "real"


@pytest.mark.slow
@pytest.mark.e2e
def test_real_run_writes_pyperf_files_and_cells_that_agree(real_run: Path) -> None:
    run = results.load_run(real_run)
    assert run.meta.kind == "micro" and set(run.meta.builds) == {"host-a", "host-b"}
    assert run.meta.config["sizes"] == {w: workloads.get(w).smoke_size for w in REAL_WORKLOADS}
    assert len(run.cells) == 16 and all(c.status == "ok" for c in run.cells)
    for build in ("host-a", "host-b"):
        suite = pyperf.BenchmarkSuite.load(str(real_run / "pyperf" / f"{build}.json"))
        assert set(suite.get_benchmark_names()) == NAMES
        for bench in suite.get_benchmarks():
            meta = bench.get_metadata()
            workload, scaling, threads_ = bench.get_name().split("/")
            assert meta["ftscale_build"] == build and meta["ftscale_scaling"] == scaling
            assert meta["ftscale_threads"] == int(threads_[1:]) and meta["ftscale_workload"] == workload
            assert meta["ftscale_py_gil_disabled"] in (0, 1) and "ftscale_gil_enabled" in meta
            calls = meta["ftscale_calls_per_round"]
            cell = next(c for c in run.cells if c.build == build and c.workload == workload
                        and c.scaling == scaling and c.threads == int(threads_[1:]))  # fmt: skip
            assert cell.samples == [calls / v for v in bench.get_values()]
            assert len(cell.samples) == 2 and all(s > 0 for s in cell.samples)


@pytest.mark.slow
@pytest.mark.e2e
def test_pyperf_compare_to_reads_two_builds(real_run: Path) -> None:
    files = [str(real_run / "pyperf" / f"{b}.json") for b in ("host-a", "host-b")]
    proc = subprocess.run(
        [PY, "-m", "pyperf", "compare_to", *files], capture_output=True, text=True, check=False, cwd=REPO
    )
    assert proc.returncode == 0, proc.stderr
    assert "nbody/strong/t2" in proc.stdout


@pytest.mark.slow
@pytest.mark.e2e
def test_summary_reads_the_run(real_run: Path) -> None:
    out = "\n".join(micro.summary_lines(real_run))
    assert "sha256_hash" in out and "S(2)=" in out
    assert json.loads((real_run / "run.json").read_text())["finished"]


@pytest.mark.slow
def test_in_process_cell_measures_without_pyperf_workers(tmp_path: Path) -> None:
    argv = [
        "--python", PY, "--workloads", "sha256_hash", "--threads", "2", "--scaling", "weak", "--smoke",
        "--in-process", "--processes", "1", "--values", "2", "--min-time", "0.002", "--run-id", "ip",
        "--results-dir", str(tmp_path), "--no-report",
    ]  # fmt: skip
    assert micro.main(argv) == 0
    (cell,) = results.load_run(tmp_path / "ip").cells
    assert cell.status == "ok" and len(cell.samples) == 2 and cell.threads == 2
    assert results.load_run(tmp_path / "ip").meta.config["pyperf"]["in_process"] is True
