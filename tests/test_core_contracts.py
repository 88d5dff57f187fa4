"""The decision core at its edges: thresholds at their exact values, file formats, keys and messages.

Each test pins a behaviour a reader or a resumed run depends on and that a one-character slip would
change (mutation testing, ``nox -s mutants``, found them unguarded): a flag at exactly its threshold,
the bytes of a result file, a cell key, the HTTP detail of a report point, the progress of a download.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import math
import re
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import pytest

from ftscale import schema, workloads
from ftscale.bench import results
from ftscale.bench.env import provision
from ftscale.bench.env.provision import BuildSpec, Interpreter
from ftscale.bench.http.cells import CellSpec
from ftscale.bench.http.judge import flags_for
from ftscale.server.executors import Admission
from ftscale.vocab import Flag
from ftscale.workloads import registry
from tests import synthetic
from tests.test_provision import PAYLOAD, PIN, FakeWeb

# --- generator saturation and errors: the HTTP cell's own flags -------------------------------


def _flags(ceiling: float | None = None, **rep: Any) -> list[str]:
    reps = [synthetic.http_repetition(100.0, ceiling_rps=ceiling, **rep)] * 3
    return flags_for(PLAN, reps, None)


PLAN = CellSpec("3.14t", "nbody", "pure-python", 100, "threadpool", "single", 2, 4)


def test_the_generator_is_saturated_from_exactly_its_thresholds() -> None:
    saturated = str(Flag.GENERATOR_SATURATED)
    # judged on the busiest generator thread or process, whatever the number of client CPUs
    assert saturated in _flags(generator_busy_max_pct=50.0)
    assert saturated not in _flags(generator_busy_max_pct=49.9)
    assert saturated not in _flags(generator_busy_pct=180.0, generator_busy_max_pct=45.0)
    assert saturated not in _flags(generator_busy_max_pct=None)
    assert saturated in _flags(ceiling=125.0)  # 100 req/s is 80 % of the generator's ceiling
    assert saturated not in _flags(ceiling=126.0)
    assert saturated not in _flags(ceiling=None)


def test_failed_requests_are_flagged_by_name() -> None:
    assert _flags(errors={"503": 1}) == [str(Flag.ERRORS)]
    assert _flags() == []


# --- result files: keys, bytes, places ------------------------------------------------------------


def test_cell_ids_are_stable_and_file_name_safe() -> None:
    assert results.cell_id("3.14t", "nbody", 4) == "3.14t__nbody__-__-__-__t004"
    assert (
        results.cell_id("3.14", "nbody", 16, "threadpool", "single")
        == "3.14__nbody__threadpool__single__-__t016"
    )
    assert results.cell_id("3.14", "json_roundtrip", 2, scaling="weak", extra="Size=5") == (
        "3.14__json-roundtrip__-__-__weak__t002__Size-5"
    )
    assert results.cell_id("My Build", "a/b", 1) == "My-Build__a-b__-__-__-__t001"


def test_a_result_file_is_sorted_indented_json_ending_in_a_newline(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "cell.json"  # its folders are created
    results.write_json_atomic(path, {"b": [1], "a": 2})
    assert path.read_text() == '{\n "a": 2,\n "b": [\n  1\n ]\n}\n'


def test_load_run_reads_the_run_of_a_run_json_path(tmp_path: Path) -> None:
    run = synthetic.run([synthetic.micro_cell(1, [1.0])])
    directory = results.RunDir(tmp_path / "r")
    directory.write_meta(run.meta)
    directory.write_cell(run.cells[0])
    loaded = results.load_run(tmp_path / "r" / "run.json")
    assert loaded.path == tmp_path / "r" and loaded.meta == run.meta and loaded.cells == run.cells
    with pytest.raises(schema.ResultError, match="not a run directory"):
        results.load_run(tmp_path / "nothing")


def test_reading_a_result_names_the_file_and_the_problem(tmp_path: Path) -> None:
    missing, garbled, listed = tmp_path / "missing.json", tmp_path / "garbled.json", tmp_path / "listed.json"
    garbled.write_text("{")
    listed.write_text("[]")
    for path, message in ((missing, "no such file"), (garbled, "not valid JSON"), (listed, "a JSON object")):
        with pytest.raises(schema.ResultError, match=rf"^{re.escape(str(path))}: .*{message}"):
            schema.load_model(schema.RunMeta, path)
    old = tmp_path / "old.json"
    old.write_text(json.dumps({"schema_version": 99}))
    for load in (schema.load_cell, lambda path: schema.load_model(schema.RunMeta, path)):
        with pytest.raises(
            schema.ResultError, match=rf"^{re.escape(str(old))}: schema_version 99 is not supp"
        ):
            load(old)
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps({"schema_version": schema.SCHEMA_VERSION, "run_id": 1}))
    with pytest.raises(schema.ResultError, match=rf"^{re.escape(str(wrong))}: does not match .* more\)$"):
        schema.load_model(schema.RunMeta, wrong)


def test_a_version_1_file_is_upgraded_on_reading(tmp_path: Path) -> None:
    cell = synthetic.micro_cell(2, [1.0, 2.0])
    path = tmp_path / "cell.json"
    path.write_text(json.dumps({**cell.model_dump(mode="json"), "schema_version": 1}))
    assert schema.load_cell(path) == cell
    assert schema.parse(schema.HealthProbe, '{"p50": 1, "p99": 2, "samples": 3}', "x").samples == 3


# --- the report model's HTTP detail ---------------------------------------------------------------


def test_a_point_summarises_its_repetitions_as_medians() -> None:
    pytest.importorskip("scipy")
    from ftscale.bench.report.model import build_model

    reps = [
        synthetic.http_repetition(
            100.0,
            latency_ms={"p50": 1.0, "p90": 2.0, "p99": 9.0, "p99.9": None},
            errors={"503": 2, "timeout": 1},
            rss_bytes=10,
            pss_bytes=5,
            server_cpu_pct=150.0,
        ),
        synthetic.http_repetition(
            110.0,
            latency_ms={"p50": 3.0, "p90": 4.0, "p99": 5.0, "p99.9": math.inf},
            rss_bytes=30,
            pss_bytes=7,
            server_cpu_pct=None,
            health_latency_ms=None,
        ),
        synthetic.http_repetition(
            90.0, latency_ms={"p50": 2.0, "p90": 6.0, "p99": 7.0}, rss_bytes=20, pss_bytes=None
        ),
    ]
    (series,) = build_model(synthetic.run([synthetic.http_cell(1, reps)])).series
    (point,) = series.points
    assert (
        point.latency_ms["p50"] == 2.0 and point.latency_ms["p90"] == 4.0 and point.latency_ms["p99"] == 7.0
    )
    assert math.isnan(point.latency_ms["p99.9"])  # never measured (or infinite): no number, not zero
    assert (point.rss_bytes, point.pss_bytes, point.server_cpu_pct, point.health_p99_ms) == (
        20.0,
        6.0,
        125.0,
        1.0,
    )
    assert point.errors == 3 and Flag.ERRORS in point.flags
    assert series.key.unit == "req/s" and series.key.mode == "threadpool" and series.key.topology == "single"


def test_one_failed_request_is_flagged_and_none_is_not() -> None:
    pytest.importorskip("scipy")
    from ftscale.bench.report.model import build_model

    cells = [
        synthetic.http_cell(1, [synthetic.http_repetition(100.0, errors={"503": 1})]),
        synthetic.http_cell(2, [synthetic.http_repetition(200.0, errors={"503": 0})]),
    ]
    (series,) = build_model(synthetic.run(cells)).series
    assert [(p.errors, Flag.ERRORS in p.flags) for p in series.points] == [(1, True), (0, False)]


def test_series_are_one_per_mode_and_topology_in_the_vocabulary_order() -> None:
    pytest.importorskip("scipy")
    from ftscale.bench.report.model import build_model

    cells = [
        synthetic.http_cell(1, [synthetic.http_repetition(1.0)], mode=mode, topology=topology)
        for mode, topology in (
            ("process", "single"),
            ("threadpool", "workers"),
            ("threadpool", "loops"),
            ("executor", "single"),
            ("inline", "single"),
            ("threadpool", "single"),
        )
    ]
    model = build_model(synthetic.run(cells))
    assert [(s.key.mode, s.key.topology) for s in model.series] == [
        ("inline", "single"),
        ("threadpool", "single"),
        ("threadpool", "workers"),
        ("threadpool", "loops"),
        ("executor", "single"),
        ("process", "single"),
    ]


def test_series_and_workloads_in_report_order() -> None:
    pytest.importorskip("scipy")
    from ftscale.bench.report.model import build_model

    cells = [
        synthetic.micro_cell(1, [1.0], workload="b", workload_class="contention"),
        synthetic.micro_cell(1, [1.0], workload="a", workload_class="contention", size=200),
        synthetic.micro_cell(1, [1.0], workload="a", workload_class="contention", size=100),
        synthetic.micro_cell(1, [1.0], workload="z", scaling="weak"),
        synthetic.micro_cell(1, [1.0], workload="z", scaling="strong"),
    ]
    model = build_model(synthetic.run(cells))
    assert [(s.key.workload, s.key.size, s.key.scaling) for s in model.series] == [
        ("z", 100, "strong"),
        ("z", 100, "weak"),
        ("a", 100, "strong"),
        ("a", 200, "strong"),
        ("b", 100, "strong"),
    ]
    assert model.workloads() == [
        ("z", "pure-python", 100),
        ("a", "contention", 100),
        ("a", "contention", 200),
        ("b", "contention", 100),
    ]
    assert [(s.key.workload, s.key.size) for s in model.series_of("a", 200)] == [("a", 200)]
    assert model.series_of("a", 300) == [] and model.series_of("c", 100) == []


def test_flags_keep_the_vocabulary_order_with_unknown_ones_last() -> None:
    pytest.importorskip("scipy")
    from ftscale.bench.report.model import build_model

    reps = [synthetic.http_repetition(x, errors={"503": 1}) for x in (100.0, 120.0, 80.0)]
    cell = synthetic.http_cell(1, reps, flags=["zz-local-note", str(Flag.GENERATOR_SATURATED)])
    (series,) = build_model(synthetic.run([cell])).series
    assert series.points[0].flags == (Flag.GENERATOR_SATURATED, Flag.ERRORS, Flag.HIGH_CV, "zz-local-note")


def test_the_fitted_curve_spans_the_measured_threads() -> None:
    pytest.importorskip("scipy")
    from ftscale.bench.report.model import CURVE_POINTS, build_model

    law = {1: 100.0, 2: 190.0, 4: 340.0, 8: 520.0}
    (series,) = build_model(synthetic.run([synthetic.micro_cell(n, [x]) for n, x in law.items()])).series
    assert series.usl.status == "ok" and len(series.usl_curve) == CURVE_POINTS
    assert series.usl_curve[0][0] == 1.0 and series.usl_curve[-1][0] == 8.0
    fit = series.usl
    for n, x in series.usl_curve[:: CURVE_POINTS // 4]:
        assert x == pytest.approx(fit.lam * n / (1 + fit.sigma * (n - 1) + fit.kappa * n * (n - 1)))
    (short,) = build_model(synthetic.run([synthetic.micro_cell(n, [law[n]]) for n in (1, 2, 4)])).series
    assert short.usl.status == "too-few-points" and short.usl_curve == ()


# --- the workload registry -----------------------------------------------------------------------


def test_register_records_the_workload_as_declared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "REGISTRY", {})

    @registry.register(
        workload_class=workloads.WorkloadClass.CONTENTION,
        size_meaning="rows",
        default_size=5,
        max_size=5,
        smoke_size=5,
    )
    def demo(size: int) -> int:
        """Adds rows.

        More words.
        """
        return size

    def bare(size: int) -> int:
        return size

    registry.register(
        workload_class=workloads.WorkloadClass.MIXED_IO,
        size_meaning="n",
        default_size=2,
        max_size=3,
        smoke_size=1,
        min_size=1,
        io_wait_s=0.005,
    )(bare)
    assert registry.REGISTRY["demo"] == registry.Workload(
        name="demo",
        compute=demo,
        workload_class=workloads.WorkloadClass.CONTENTION,
        size_meaning="rows",
        default_size=5,
        min_size=1,
        max_size=5,
        smoke_size=5,
        description="Adds rows.",
        io_wait_s=0.0,
    )
    assert registry.REGISTRY["bare"].description == "bare" and registry.REGISTRY["bare"].io_wait_s == 0.005
    assert registry.REGISTRY["bare"].min_size == 1
    assert list(registry.by_class(workloads.WorkloadClass.MIXED_IO)) == [registry.REGISTRY["bare"]]
    with pytest.raises(registry.UnknownWorkload, match=r"^unknown workload 'x'; known: bare, demo$"):
        registry.get("x")


def test_sizes_may_be_equal_at_every_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "REGISTRY", {})
    for low, smoke, default, high in ((2, 2, 3, 4), (1, 2, 2, 4), (1, 2, 3, 3)):
        registry.register(
            workload_class=workloads.WorkloadClass.PURE_PYTHON,
            size_meaning="n",
            default_size=default,
            max_size=high,
            smoke_size=smoke,
            min_size=low,
        )(lambda size: size)
        registry.REGISTRY.clear()


# --- provisioning ------------------------------------------------------------------------------------


def test_configure_lines_and_cache_keys_are_exactly_these() -> None:
    common = ["--with-ensurepip=install", "--disable-test-modules"]
    assert BuildSpec("3.14").configure_args() == common
    assert BuildSpec("3.14t", optimized=True).configure_args() == [
        *common,
        "--enable-optimizations",
        "--with-lto",
        "--disable-gil",
    ]
    pin = provision.PINS["3.14"]
    for spec, kind in ((BuildSpec("3.14t"), "plain"), (BuildSpec("3.14t", optimized=True), "opt")):
        flags = hashlib.sha256(" ".join(spec.configure_args()).encode()).hexdigest()[:10]
        assert spec.key() == f"cpython-{pin.version}t-{kind}-{flags}-{pin.sha256[:12]}"
    assert BuildSpec("3.14").key().startswith(f"cpython-{pin.version}-plain-")
    assert BuildSpec("3.14t").executable_name() == "python3.14t"
    with pytest.raises(provision.ProvisionError, match=r"known: 3\.13, 3\.13t, 3\.14, 3\.14t$"):
        provision.parse_build("2.7")


class Download(io.BytesIO):
    """A response with a Content-Length header, as urllib gives."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.headers = {"Content-Length": str(len(data))}


def test_a_download_shows_its_size_and_progress_by_tens(tmp_path: Path) -> None:
    data = bytes(range(256)) * 256 * 20  # 1.25 MiB: twenty reads of 64 KiB, 5% each
    pin = provision.Pin("3.14", "3.14.99", hashlib.sha256(data).hexdigest())
    lines: list[str] = []

    def opener(url: str) -> IO[bytes]:
        return Download(data)

    nested = tmp_path / "a" / "b"
    assert (
        provision.fetch(pin, nested, ["https://a.test/x"], opener=opener, log=lines.append).read_bytes()
        == data
    )
    assert lines == ["  downloading https://a.test/x (1.3 MB)", *(f"{p:7d}%" for p in range(0, 101, 10))]


def test_a_source_that_fails_is_logged_and_every_failure_is_reported(tmp_path: Path) -> None:
    lines: list[str] = []
    with pytest.raises(
        provision.ProvisionError, match=r"a\.test: unreachable; https://b\.test: unreachable$"
    ):
        provision.fetch(
            PIN, tmp_path, ["https://a.test", "https://b.test"], opener=FakeWeb({}), log=lines.append
        )
    assert lines == [
        "  https://a.test: unavailable (unreachable); trying the next source",
        "  https://b.test: unavailable (unreachable); trying the next source",
    ]
    assert list(tmp_path.iterdir()) == []  # no partial file left
    web = FakeWeb({"https://a.test": PAYLOAD})
    assert (
        provision.fetch(PIN, tmp_path, ["https://a.test"], opener=web, log=lines.append).read_bytes()
        == PAYLOAD
    )
    assert lines[-1] == "  downloading https://a.test"  # no Content-Length: no size, no percentages


def test_each_interpreter_is_probed_once_and_a_rejected_one_stops_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    real = tmp_path / "python3.14t"
    real.touch()
    (tmp_path / "link").symlink_to(real)
    old, good = tmp_path / "python3.13", tmp_path / "other-python3.13"
    unwanted = tmp_path / "python3.14"
    found = {
        real: ("3.14t", "3.14.7"),
        tmp_path / "link": ("3.14t", "3.14.7"),
        unwanted: ("3.14", "3.14.7"),
        old: ("3.13", "3.13.0"),
        good: ("3.13", "3.13.5"),
    }
    monkeypatch.setattr(provision, "candidates", lambda env=None: iter((p, "pyenv") for p in found))
    probed: list[tuple[Path, str]] = []

    def probe(path: Path, origin: str) -> Interpreter:
        probed.append((path, origin))
        build, version = found[path]
        return Interpreter(path, {"build": build, "version": version, "implementation": "cpython"}, origin)

    usable, rejected = provision.find_existing(["3.13", "3.14t"], probe_fn=probe)
    assert probed == [(real, "pyenv"), (unwanted, "pyenv"), (old, "pyenv"), (good, "pyenv")]
    assert {b: i.executable for b, i in usable.items()} == {"3.14t": real, "3.13": good}
    assert [r.executable for r in rejected] == [old]


# --- admission control and the micro worker ----------------------------------------------------------


def test_leaving_frees_exactly_one_place() -> None:
    admission = Admission(pool_size=2, queue_limit=1)
    for _ in range(3):
        admission.enter()
    admission.leave()
    assert admission.in_flight == 2
    admission.enter()
    assert admission.in_flight == 3


class RecordingRunner:
    """pyperf's Runner as the worker uses it, recording what it was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Callable[[int], float], Any]] = []

    def bench_time_func(self, name: str, func: Callable[[int], float], metadata: Any = None) -> None:
        self.calls.append((name, func, metadata))
        if metadata is not None:  # a measuring process: time two rounds
            func(2)


def test_the_worker_names_its_benchmark_and_measures_with_its_metadata(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pytest.importorskip("pyperf")
    from ftscale.bench.micro import worker

    sizes: list[int] = []

    def compute(size: int) -> int:
        sizes.append(size)
        return size * 7

    monkeypatch.setitem(registry.REGISTRY, "demo", synthetic.workload("demo", compute, max_size=9))
    args = dict(build="3.14t", workload="demo", size=3, scaling="strong", threads=2, calls=4)
    manager = RecordingRunner()
    assert worker.cmd_worker(argparse.Namespace(worker=False, in_process=False, **args), manager) == 0  # type: ignore[arg-type]
    assert [(name, func) for name, func, _ in manager.calls] == [("demo/strong/t2", worker._never_called)]
    assert sizes == []  # the manager never computes
    measuring = RecordingRunner()
    assert worker.cmd_worker(argparse.Namespace(worker=False, in_process=True, **args), measuring) == 0  # type: ignore[arg-type]
    ((name, _, metadata),) = measuring.calls
    assert name == "demo/strong/t2"
    assert metadata["ftscale_threads"] == 2 and metadata["ftscale_calls_per_thread"] == "2,2"
    assert sizes == [3] * (1 + 2 * 4)  # the reference, then two rounds of four calls
    with pytest.raises(ValueError, match=r"^unknown scaling mode 'medium'; known: strong, weak$"):
        worker.calls_per_thread("medium", 4, 2)


def test_failed_cells_and_cells_without_samples_are_listed_apart() -> None:
    pytest.importorskip("scipy")
    from ftscale.bench.report.model import build_model

    ok = synthetic.micro_cell(1, [100.0])
    failed = synthetic.micro_cell(2, [50.0]).model_copy(update={"status": "failed", "error": "boom"})
    empty = synthetic.micro_cell(4, [])
    model = build_model(synthetic.run([ok, failed, empty]))
    assert [[p.cell for p in s.points] for s in model.series] == [[ok]]
    assert model.failed == (failed, empty)
