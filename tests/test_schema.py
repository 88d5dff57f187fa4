"""The result schema: every committed run still loads, and the shapes are enforced where read."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ftscale import schema
from ftscale.bench import results

REPO = Path(__file__).resolve().parent.parent
COMMITTED = results.find_runs(REPO / "results")


def test_there_are_committed_runs() -> None:
    assert len(COMMITTED) >= 6


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.name)
def test_every_committed_run_loads_at_the_current_version(path: Path) -> None:
    run = results.load_run(path)
    assert run.meta.schema_version == schema.SCHEMA_VERSION
    assert run.cells and all(c.schema_version == schema.SCHEMA_VERSION for c in run.cells)
    for cell in run.cells:
        if isinstance(cell, schema.HttpCell) and cell.status == "ok":
            assert cell.info_before is not None and cell.info_before.interpreter.build
            assert len(cell.repetitions) == len(cell.samples)


def test_an_unknown_field_is_an_error_that_names_the_file(tmp_path: Path) -> None:
    source = next(p for p in COMMITTED if "http" in p.name)
    cell = sorted((source / "cells").glob("*.json"))[0]
    data = json.loads(cell.read_text())
    data["repetitions"][0]["throughput"] = data["repetitions"][0].pop("throughput_rps")
    bad = tmp_path / "cell.json"
    bad.write_text(json.dumps(data))
    with pytest.raises(schema.ResultError, match=r"cell.json: .*repetitions\.0"):
        schema.load_cell(bad)


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "run.json"
    bad.write_text(json.dumps({"schema_version": schema.SCHEMA_VERSION + 1}))
    with pytest.raises(schema.ResultError, match="schema_version"):
        schema.load_model(schema.RunMeta, bad)


def test_a_generator_answer_of_the_wrong_shape_is_refused() -> None:
    with pytest.raises(ValueError, match="the wrk generator: unexpected shape"):
        schema.parse(schema.LoadResult, '{"generator": "wrk", "requests": 1}', "the wrk generator")


def _format_4_http(data: dict[str, object]) -> bool:
    return data["schema_version"] == 4 and data["kind"] == "http" and bool(data["repetitions"])


def test_a_format_4_repetition_gets_its_flat_load_fields_nested_and_a_format_5_one_is_left_alone(
    tmp_path: Path,
) -> None:
    cells = (c for run in COMMITTED if "http" in run.name for c in sorted((run / "cells").glob("*.json")))
    path = next(c for c in cells if _format_4_http(json.loads(c.read_text())))
    flat = json.loads(path.read_text())
    assert "load" not in flat["repetitions"][0]  # committed before format 5
    cell = schema.load_cell(path)
    assert isinstance(cell, schema.HttpCell)
    first = flat["repetitions"][0]
    assert cell.repetitions[0].load.throughput_rps == first["throughput_rps"]
    assert cell.repetitions[0].load.latency_ms == first["latency_ms"]
    assert (
        cell.repetitions[0].server_cpu_pct == first["server_cpu_pct"]
    )  # the server's own stay where they were
    # written back at format 5, it reads the same, and a nested repetition is not nested again
    again = tmp_path / "cell.json"
    again.write_text(cell.model_dump_json())
    assert (
        json.loads(again.read_text())["repetitions"][0]["load"]["throughput_rps"] == first["throughput_rps"]
    )
    assert schema.load_cell(again) == cell
