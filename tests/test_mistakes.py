"""Guards against six small, realistic mistakes that once passed every other test.

Each test here was run against its mistake planted in the code and failed; each names it:

1. S(N) taken against the lowest measured thread count instead of the series' own 1-thread point;
2. the GIL-on flag set on a GIL build (tests/test_sweep.py, ``test_a_gil_build_with_its_gil_is_not_flagged``,
   and the report model's own flag below);
3. the atomic write writing in place, so a failed write truncates the previous good file;
4. a cached source tarball reused without checking its sha256;
5. a workload's size bound made exclusive, so the documented maximum is refused;
6. the micro worker's per-call checksum check dropped, so a racy workload is timed, not failed.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ftscale import workloads
from ftscale.bench import results
from ftscale.bench.env import provision
from ftscale.vocab import Flag
from ftscale.workloads import registry
from tests import synthetic
from tests.test_provision import PAYLOAD, PIN, FakeWeb

ALL = list(workloads.REGISTRY.values())

# --- 1. a series without a 1-thread point has no baseline -------------------------------------


def test_a_series_measured_without_one_thread_has_no_speedup() -> None:
    pytest.importorskip("scipy")
    from ftscale.bench.report.model import build_model

    run = synthetic.run(
        [synthetic.micro_cell(2, [200.0, 202.0, 198.0]), synthetic.micro_cell(4, [400.0] * 3)]
    )
    (series,) = build_model(run).series
    assert [p.threads for p in series.points] == [2, 4]
    for point in series.points:
        # "no baseline", not S = 1.0 at 2 threads and 2.0 at 4
        assert math.isnan(point.speedup.value) and not point.speedup.has_interval
        assert math.isnan(point.efficiency.value) and math.isnan(point.karp_flatt)
    assert series.ideal == ()


def test_speedup_is_against_the_one_thread_point_whatever_the_cell_order() -> None:
    pytest.importorskip("scipy")
    from ftscale.bench.report.model import build_model

    cells = [
        synthetic.micro_cell(4, [300.0] * 3),
        synthetic.micro_cell(1, [100.0] * 3),
        synthetic.micro_cell(2, [180.0] * 3),
    ]
    (series,) = build_model(synthetic.run(cells)).series
    assert [(p.threads, p.speedup.value) for p in series.points] == [(1, 1.0), (2, 1.8), (4, 3.0)]
    assert series.ideal == ((1.0, 100.0), (2.0, 200.0), (4.0, 400.0))


# --- 2. the GIL-on flag belongs to free-threaded builds only -----------------------------------


def test_the_report_flags_the_gil_only_on_a_free_threaded_build() -> None:
    pytest.importorskip("scipy")
    from ftscale.bench.report.model import build_model

    cells = [
        synthetic.micro_cell(1, [100.0] * 3, build=name, gil_enabled=gil)
        for name, gil in (("3.14", True), ("3.14t", True), ("3.13t", False))
    ]
    model = build_model(synthetic.run(cells, builds=("3.14", "3.14t", "3.13t")))
    flagged = {s.key.build: Flag.GIL_ENABLED in s.points[0].flags for s in model.series}
    assert flagged == {"3.14": False, "3.14t": True, "3.13t": False}


# --- 3. a failed atomic write leaves the previous file whole ----------------------------------


def _fill_past(limit: int) -> dict[str, Any]:
    return {"cell": "new", "samples": [1.0] * limit}


def _file_size_limit(limit: int) -> Callable[[], None]:
    """Make writes past ``limit`` bytes fail (EFBIG), as a full disk or quota would; returns the undo."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.parametrize("where", ["write", "fsync"])
def test_a_write_that_fails_halfway_keeps_the_previous_file(
    where: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "cells" / "cell.json"
    results.write_json_atomic(path, {"cell": "old"})
    if where == "fsync":

        def no_space(fd: int) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(results.os, "fsync", no_space)
        with pytest.raises(OSError, match="No space"):
            results.write_json_atomic(path, _fill_past(4096))
    else:
        # Python ignores SIGXFSZ, so the write past the limit fails with EFBIG after writing part
        undo = _file_size_limit(4096)
        try:
            with pytest.raises(OSError):
                results.write_json_atomic(path, _fill_past(4096))
        finally:
            undo()
    assert json.loads(path.read_text()) == {"cell": "old"}
    assert sorted(p.name for p in path.parent.iterdir()) == ["cell.json"]  # no temporary file left


def test_an_atomic_write_replaces_the_file_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    results.write_json_atomic(path, {"v": 1})
    results.write_json_atomic(path, {"v": 2})
    assert json.loads(path.read_text()) == {"v": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["run.json"]


# --- 4. a cached tarball is reused only when its checksum matches -----------------------------


def test_a_truncated_tarball_in_the_cache_is_downloaded_again(tmp_path: Path) -> None:
    cached = tmp_path / f"Python-{PIN.version}.tar.xz"
    cached.write_bytes(PAYLOAD[: len(PAYLOAD) // 2])  # an interrupted download
    web = FakeWeb({"https://a.test": PAYLOAD})
    path = provision.fetch(PIN, tmp_path, ["https://a.test"], opener=web, log=lambda _: None)
    assert path == cached and path.read_bytes() == PAYLOAD
    assert web.asked == ["https://a.test"]


# --- 5. a workload's bounds are inclusive -----------------------------------------------------


@pytest.mark.parametrize("workload", ALL, ids=[w.name for w in ALL])
def test_the_documented_bounds_are_accepted_and_one_past_them_is_not(workload: workloads.Workload) -> None:
    assert workload.check_size(workload.max_size) == workload.max_size
    assert workload.check_size(workload.min_size) == workload.min_size
    for outside in (workload.max_size + 1, workload.min_size - 1):
        with pytest.raises(workloads.InvalidSize, match=f"got {outside}"):
            workload.check_size(outside)


# --- 6. the micro worker fails a cell whose workload changes its answer ------------------------


class FakeRunner:
    """pyperf's Runner as the worker uses it: one timed function, called with a loop count."""

    def __init__(self, loops: int) -> None:
        self.loops = loops
        self.timings: list[float] = []

    def bench_time_func(self, name: str, func: Callable[[int], float], metadata: Any = None) -> None:
        self.timings.append(func(self.loops))


def _worker_args(name: str) -> argparse.Namespace:
    return argparse.Namespace(
        worker=True,
        in_process=False,
        build="3.14t",
        workload=name,
        size=1,
        scaling="weak",
        threads=2,
        calls=3,
    )


def _register(monkeypatch: pytest.MonkeyPatch, name: str, compute: Callable[[int], int]) -> None:
    monkeypatch.setitem(registry.REGISTRY, name, synthetic.workload(name, compute))


def test_a_workload_whose_answer_changes_between_calls_fails_the_cell(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("pyperf")
    from ftscale.bench.micro import threads, worker

    calls = itertools.count()
    # right for the reference call and a few more, then one lost update, as a race would give
    _register(monkeypatch, "racy", lambda size: 41 if next(calls) == 5 else 42)
    runner = FakeRunner(loops=2)
    with pytest.raises(threads.TeamError) as failure:
        worker.cmd_worker(_worker_args("racy"), runner)  # type: ignore[arg-type]
    assert isinstance(failure.value.__cause__, worker.ChecksumMismatch)
    assert "racy(1) returned a different checksum" in str(failure.value)
    assert runner.timings == []

    _register(monkeypatch, "steady", lambda size: 42)
    assert worker.cmd_worker(_worker_args("steady"), runner) == 0  # type: ignore[arg-type]
    assert len(runner.timings) == 1 and runner.timings[0] > 0
