"""The checked-in synthetic runs are exactly what tests/data/make_report_fixtures.py writes."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

DATA = Path(__file__).parent / "data"


def _generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("make_report_fixtures", DATA / "make_report_fixtures.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.json"))}


def test_fixtures_are_current(tmp_path: Path) -> None:
    written = _generator().write_fixtures(tmp_path)
    assert [p.name for p in written] == ["report-micro", "report-http"]
    for run in written:
        assert _files(run) == _files(DATA / run.name), "regenerate: python tests/data/make_report_fixtures.py"


def test_fixtures_say_they_are_synthetic() -> None:
    for run in ("report-micro", "report-http"):
        assert '"synthetic test fixture, not a measurement"' in (DATA / run / "run.json").read_text()
