"""The audit's exit rule: a free-threaded build that could not be audited fails it; its GIL twin,
shown for contrast, never does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ftscale.bench.app import audit
from ftscale.bench.app.audit_plan import AuditPlan
from ftscale.schema import AuditBuild


def _plan() -> AuditPlan:
    project: Any = type("P", (), {"source": "requirements.txt"})()
    return AuditPlan(
        builds=["3.14", "3.14t"],
        project=project,
        python=None,
        app=None,
        app_dir=Path("."),
        allow=frozenset(),
        mix=None,
        measure=False,
        duration_s=1.0,
        threads=None,
        json_path=None,
    )


def _record(build: str, error: str | None) -> AuditBuild:
    return AuditBuild(
        build=build, version="3.14.7", free_threaded=build.endswith("t"), python="p", error=error
    )


@pytest.mark.parametrize(("broken", "passed"), [(None, True), ("3.14t", False), ("3.14", True)])
def test_an_environment_that_could_not_be_made_fails_only_a_free_threaded_build(
    monkeypatch: pytest.MonkeyPatch, broken: str | None, passed: bool
) -> None:
    monkeypatch.setattr(audit.envs, "provisioned", lambda builds, log: None)
    monkeypatch.setattr(
        audit,
        "audit_build",
        lambda b, plan, log: _record(b, "could not create the environment" if b == broken else None),
    )
    report = audit.audit(_plan(), log=lambda _: None)
    assert report.passed is passed
    assert any("could not create" in p for p in report.problems) is (not passed)
