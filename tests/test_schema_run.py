"""``run.json``'s typed config, generator and slots: committed runs read and write back unchanged."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ftscale import schema
from ftscale.bench import results

REPO = Path(__file__).resolve().parent.parent
RUN_FILES = sorted(
    [
        *REPO.glob("results/*/run.json"),
        *REPO.glob("tests/data/**/run.json"),
        *REPO.glob("examples/**/run.json"),
    ]
)


def _written(meta: schema.RunMeta) -> dict[str, Any]:
    """What ``RunDir.write_meta`` writes, decoded again."""
    return json.loads(json.dumps(meta.model_dump(mode="json"), indent=1, sort_keys=True))


def test_there_are_run_files_to_check() -> None:
    assert len(RUN_FILES) >= 10


@pytest.mark.parametrize("path", RUN_FILES, ids=lambda p: str(p.parent.relative_to(REPO)))
def test_a_committed_run_record_writes_back_its_config_generator_and_slots_unchanged(path: Path) -> None:
    raw = json.loads(path.read_text())
    meta = schema.load_model(schema.RunMeta, path)
    assert isinstance(meta.config, schema.RunConfig)
    assert all(isinstance(slot, schema.Slot) for slot in meta.slots)
    written = _written(meta)
    for key in ("config", "generator", "slots"):
        assert written[key] == raw.get(key, {"config": {}, "generator": None, "slots": []}[key]), key


@pytest.mark.parametrize("path", sorted(REPO.glob("results/*/cells/*.json")), ids=lambda p: p.name)
def test_every_committed_cell_loads_and_writes_back_what_it_read(path: Path) -> None:
    cell = schema.load_cell(path)
    again = schema.CELL.validate_python(json.loads(json.dumps(cell.model_dump(mode="json"))))
    assert again == cell


def _meta(**changes: Any) -> schema.RunMeta:
    host = results.collect_host()
    return schema.RunMeta(
        run_id="r", kind="http", created="now", host=host, git=schema.Git(commit=None, dirty=None), **changes
    )


def test_a_config_key_given_as_null_is_written_and_one_not_given_is_not() -> None:
    config = _written(_meta(config=schema.RunConfig(target=None, server_cpus=[0, 1])))["config"]
    assert config == {"target": None, "server_cpus": [0, 1]}


def test_an_unknown_config_key_is_an_error() -> None:
    with pytest.raises(ValueError, match="server_cpu"):
        schema.RunConfig.model_validate({"server_cpu": [0]})


def test_a_config_reads_as_a_mapping_of_the_keys_it_was_given() -> None:
    config = schema.RunConfig(argv=["--quick"], target=None)
    assert dict(config) == {"argv": ["--quick"], "target": None}
    assert config.get("server_cpus", "absent") == "absent" and config.get("target", "absent") is None
    assert "target" in config and "preset" not in config
    with pytest.raises(KeyError):
        config["preset"]


def test_a_copy_with_a_config_as_a_dict_is_validated_into_a_typed_config() -> None:
    meta = _meta(config=schema.RunConfig(argv=[]))
    copied = meta.model_copy(update={"config": {**meta.config, "command": "app"}})
    assert isinstance(copied.config, schema.RunConfig) and copied.config.command == "app"
    assert _written(copied)["config"] == {"argv": [], "command": "app"}
    with pytest.raises(ValueError, match="commands"):
        meta.model_copy(update={"config": {"commands": "app"}})


def test_a_slot_lacking_a_field_is_an_error() -> None:
    with pytest.raises(ValueError, match="complete"):
        schema.Slot.model_validate(
            {"started": "a", "finished": "b", "host": "h", "cells_measured": 1, "cells_failed": 0}
        )
