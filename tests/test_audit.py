"""``ftscale audit``: a C extension built here that turns the GIL back on fails it and is named;
the example's real requirements pass; bad input is one line; the table and verdict read right."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ftscale.bench.app import audit_render, audit_verdict, audit_wheels
from ftscale.schema import (
    AppCheck,
    AuditBuild,
    AuditLoad,
    AuditMeasure,
    AuditModule,
    AuditReport,
    AuditRequirement,
)
from tests.conftest import requires_314t

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "orders"


def _audit(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ftscale", "audit", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.slow
@requires_314t
def test_an_extension_without_free_threading_support_fails_the_audit_and_is_named(
    tmp_path: Path, gil_project: Path
) -> None:
    report_file = tmp_path / "audit.json"
    proc = _audit(
        *["-r", str(gil_project / "requirements.txt"), "--builds", "3.14t"],
        *["--app", "gilapp:app", "--app-dir", str(gil_project)],
        *["--measure", "--request", "GET /answer", "--duration", "1", "--json", str(report_file)],
    )
    assert proc.returncode == 1, proc.stderr
    assert "importing gilfixture turns the GIL back on (enabled by gilfixture)" in proc.stdout
    assert "importing the app gilapp:app turns the GIL back on (enabled by gilfixture)" in proc.stdout
    report = AuditReport.model_validate_json(report_file.read_text())
    (build,) = report.builds
    assert not report.passed and build.free_threaded
    (requirement,) = build.requirements
    assert requirement.name == "gilfixture" and requirement.status == "wheel"
    assert requirement.wheel is not None and "cp314t" in requirement.wheel
    (module,) = build.modules
    assert module.module == "gilfixture" and module.gil_enabled and module.gil_reenabled_by == "gilfixture"
    # the short check: the GIL as the import leaves it (on) against PYTHON_GIL=0 (off)
    assert build.measure is not None and build.measure.error is None, build.measure
    assert build.measure.default is not None and build.measure.default.gil_enabled is True
    assert build.measure.gil_off is not None and build.measure.gil_off.gil_enabled is False
    assert build.measure.default.requests > 0 and build.measure.gil_off.requests > 0

    allowed = _audit(
        "-r", str(gil_project / "requirements.txt"), "--builds", "3.14t", "--allow", "gilfixture"
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "PASS with 1 allowed exception(s)" in allowed.stdout


@pytest.mark.slow
@requires_314t
def test_the_examples_real_requirements_pass(tmp_path: Path) -> None:
    report_file = tmp_path / "audit.json"
    proc = _audit(
        *["-r", str(EXAMPLE / "requirements.txt"), "--builds", "3.14t"],
        *["--app", "app:app", "--app-dir", str(EXAMPLE), "--json", str(report_file)],
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS: every requirement has a wheel and the GIL stays off" in proc.stdout
    (build,) = AuditReport.model_validate_json(report_file.read_text()).builds
    assert [r.name for r in build.requirements] == ["fastapi", "pydantic", "markupsafe"]
    assert all(r.status == "wheel" for r in build.requirements)
    assert {"pydantic_core", "markupsafe", "fastapi"} <= {m.module for m in build.modules}
    assert all(m.ok and not m.gil_enabled for m in build.modules)
    assert build.app is not None and build.app.ok and not build.app.gil_enabled


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--app-dir", "/"], "nothing to audit"),
        (["-r", "/no/such/requirements.txt"], "requirements file /no/such/requirements.txt: no such file"),
        (["--python", sys.executable, "-r", "x.txt"], "--python audits one environment as it is"),
        (["--python", "/no/python"], "not an executable"),
        (["-r", "REQ", "--measure"], "--measure needs the app"),
        (["-r", "REQ", "--builds", "4.0t"], "unknown build 4.0t"),
        (["-r", "REQ", "--app", "no-colon"], "want MODULE:ATTR"),
    ],
)
def test_bad_input_is_one_line(args: list[str], message: str) -> None:
    requirements = str(EXAMPLE / "requirements.txt")
    proc = _audit(*[requirements if a == "REQ" else a for a in args], timeout=60)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1 and message in lines[0], proc.stderr


# --- the verdict and the table, from models ---------------------------------------------------------


def _build(**fields: object) -> AuditBuild:
    base: dict[str, object] = {"build": "3.14t", "version": "3.14.7", "free_threaded": True, "python": "p"}
    return AuditBuild.model_validate({**base, **fields})


def test_the_verdict_counts_free_threaded_builds_and_honours_allow() -> None:
    build = _build(
        requirements=[
            AuditRequirement(requirement="orjson>=3", name="orjson", status="sdist-only", missing="orjson"),
            AuditRequirement(requirement="fastapi", name="fastapi", status="wheel", version="1"),
            AuditRequirement(requirement="svc", name="svc", status="no-wheel", missing="cffi"),
        ],
        modules=[
            AuditModule(
                module="yaml", distribution="pyyaml", ok=True, gil_enabled=True, gil_reenabled_by="yaml._yaml"
            ),
            AuditModule(module="fine", distribution="fine", ok=True, gil_enabled=False),
            AuditModule(module="needs_config", ok=False, error="ImportError: set X", gil_enabled=False),
        ],
    )
    judged = audit_verdict.judge(build, frozenset(), None)
    assert judged.problems == [
        "3.14t: orjson>=3: orjson has no wheel for this build; pip would build it from source",
        "3.14t: svc (needs cffi): cffi has no wheel for this build",
        "3.14t: importing yaml turns the GIL back on (enabled by yaml._yaml)",
    ]
    # --allow takes a requirement, the distribution without a wheel, a module or its distribution
    allowed = audit_verdict.judge(build, frozenset({"orjson", "cffi", "pyyaml"}), None)
    assert allowed.problems == [] and len(allowed.allowed) == 3
    twin = audit_verdict.judge(
        build.model_copy(update={"build": "3.14", "free_threaded": False}), frozenset(), None
    )
    assert twin.problems == []  # a GIL twin is there for contrast only


def test_an_app_that_does_not_import_or_brings_the_gil_back_fails() -> None:
    check = {"app": "a:app", "build": "3.14t", "py_gil_disabled": True}
    broken = _build(
        app=AppCheck(**check, ok=False, error="app 'a:app': module 'a' does not import", gil_enabled=False)
    )
    assert audit_verdict.judge(broken, frozenset(), "a:app").problems == [
        "3.14t: app 'a:app': module 'a' does not import"
    ]
    gil = _build(app=AppCheck(**check, ok=True, gil_enabled=True, gil_reenabled_by="ext._speedups"))
    assert audit_verdict.judge(gil, frozenset(), "a:app").problems == [
        "3.14t: importing the app a:app turns the GIL back on (enabled by ext._speedups)"
    ]
    assert audit_verdict.judge(gil, frozenset({"ext"}), "a:app").problems == []


def test_wheel_kinds() -> None:
    assert audit_render.wheel_kind("fastapi-0.1-py3-none-any.whl") == "pure Python"
    assert (
        audit_render.wheel_kind(
            "markupsafe-3.0.4-cp314-cp314t-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
        )
        == "cp314t"
    )
    assert audit_render.wheel_kind("cryptography-46-cp311-abi3-manylinux_2_28_x86_64.whl") == "abi3"
    assert audit_render.wheel_kind(None) == "installed"


def test_a_requirement_pip_cannot_resolve_is_classified(monkeypatch: pytest.MonkeyPatch) -> None:
    no_wheel = "ERROR: No matching distribution found for orjson\n"
    monkeypatch.setattr(audit_wheels, "_has_sdist", lambda python, name, build: "3.11.4")
    row = audit_wheels._failed("orjson>=3", no_wheel, Path("python"), "3.14t")
    assert (row.status, row.missing) == ("sdist-only", "orjson") and "3.11.4" in (row.detail or "")
    monkeypatch.setattr(audit_wheels, "_has_sdist", lambda python, name, build: None)
    row = audit_wheels._failed(
        "svc", "ERROR: No matching distribution found for cffi>=1\n", Path("python"), "3.14t"
    )
    assert (row.status, row.name, row.missing) == ("no-wheel", "svc", "cffi")
    row = audit_wheels._failed("svc", "ERROR: boom\nERROR: last words\n", Path("python"), "3.14t")
    assert (row.status, row.detail) == ("error", "ERROR: last words")


def test_the_measure_line_does_not_read_noise_as_a_cost() -> None:
    def load(gil: bool, rps: float) -> AuditLoad:
        return AuditLoad(
            python_gil="0" if not gil else "default", gil_enabled=gil, throughput_rps=rps, requests=9
        )

    both_off = AuditMeasure(
        threads=1,
        duration_s=3,
        generator="wrk",
        design="threadpool/single",
        default=load(False, 100.0),
        gil_off=load(False, 110.0),
        ratio=1.1,
    )
    line = audit_render._measure_line(both_off)
    assert "1.10x (the GIL was off in both" in line and "run-to-run variation" in line
    came_back = both_off.model_copy(update={"default": load(True, 50.0), "ratio": 2.2})
    line = audit_render._measure_line(came_back)
    assert line.endswith("PYTHON_GIL=0 110 req/s (GIL off): 2.20x")


COMMITTED_AUDITS = sorted((REPO / "results" / "audit").glob("*.json"))


@pytest.mark.parametrize("path", COMMITTED_AUDITS, ids=lambda p: p.stem)
def test_every_committed_audit_loads_and_its_table_is_rendered_from_it(path: Path) -> None:
    report = AuditReport.model_validate_json(path.read_text())
    assert report.builds
    assert path.with_suffix(".txt").read_text().rstrip("\n") == audit_render.render(report)
