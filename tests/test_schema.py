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
