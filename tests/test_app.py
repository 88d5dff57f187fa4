"""``ftscale app``: a user's app through the HTTP bench, on 3.14t, with smoke sizes.

The example (``examples/orders``) end to end, an app whose C extension turns the GIL back on,
answers that are not what the mix expects, and every kind of bad input: one line, exit status
2, nothing written. The environments are real (pip, wheels only); each is made once and reused.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ftscale.bench import results
from ftscale.bench.env import project as projects
from ftscale.errors import UsageError
from ftscale.schema import Git, LoadMix, RunMeta
from ftscale.vocab import Flag, WorkloadClass
from tests.conftest import requires_314t

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "orders"
CPUS = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
SMOKE = [
    *"--builds 3.14t --threads 1 --repetitions 1 --duration 0.5 --warmup 0 --generator python".split(),
    *["--allow-shared-cpus", "--server-cpus", CPUS, "--client-cpus", CPUS],
]
EXAMPLE_APP = ["app:app", "--app-dir", str(EXAMPLE)]
REPORTS = all(importlib.util.find_spec(m) for m in ("matplotlib", "scipy"))


def _app(results_dir: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ftscale", "app", "--results-dir", str(results_dir), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, (proc.returncode, proc.stderr)
    return lines[0]


# --- end to end --------------------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.slow
@requires_314t
def test_the_example_app_gives_a_run_directory_and_a_report(tmp_path: Path) -> None:
    proc = _app(
        tmp_path,
        *EXAMPLE_APP,
        *["--requests", str(EXAMPLE / "requests.toml"), "--designs", "single,loops", "--run-id", "ex"],
        *SMOKE,
    )
    assert proc.returncode == 0, proc.stderr
    run = results.load_run(tmp_path / "ex")
    assert run.meta.kind == "http" and run.meta.config["command"] == "app"
    assert run.meta.config["app"]["spec"] == "app:app"
    assert (
        run.meta.config["app"]["requests"]
        == "score an order 60 %, render an invoice 30 %, look an order up 10 %"
    )
    build = run.meta.builds["3.14t"]
    assert build.py_gil_disabled and not build.gil_enabled and build.gil_reenabled_by is None
    assert {"fastapi", "markupsafe", "uvicorn"} <= set(build.packages)
    assert sorted(c.topology for c in run.cells) == ["loops", "single"]
    for cell in run.cells:
        assert cell.status == "ok", cell.error
        assert (
            cell.workload == "app:app"
            and cell.workload_class == WorkloadClass.APP
            and cell.mode == "threadpool"
        )
        assert cell.info_before is not None and cell.info_before.app == "app:app"
        assert Flag.GIL_ENABLED not in cell.flags and Flag.ERRORS not in cell.flags
        rep = cell.repetitions[0]
        assert rep.load.requests > 0 and rep.load.errors == {}
        assert rep.units is not None and sum(rep.units.values()) >= rep.load.requests  # the app counted them
    sent = LoadMix.model_validate_json((tmp_path / "ex" / "requests.json").read_text())
    assert [r.path for r in sent.requests] == ["/score", "/invoice", "/orders/1042"]
    if REPORTS:
        report = (tmp_path / "ex" / "report.md").read_text()
        assert report.startswith("# ftscale app report: ex") and "### app:app (Your app)" in report
    else:
        assert "report: not rendered here" in proc.stdout


@pytest.mark.e2e
@pytest.mark.slow
@requires_314t
def test_cells_where_the_gil_came_back_are_flagged_with_the_module(tmp_path: Path, gil_project: Path) -> None:
    app = ["gilapp:app", "--app-dir", str(gil_project), "--request", "GET /answer"]
    proc = _app(tmp_path, *app, "--designs", "single", "--run-id", "gil", "--no-report", *SMOKE)
    assert proc.returncode == 0, proc.stderr
    assert "importing gilapp:app turned the GIL back on (gilfixture)" in proc.stdout
    run = results.load_run(tmp_path / "gil")
    assert run.meta.builds["3.14t"].gil_enabled and run.meta.builds["3.14t"].gil_reenabled_by == "gilfixture"
    assert any("turned the GIL back on (gilfixture)" in note for note in run.meta.notes)
    (cell,) = run.cells
    assert cell.status == "ok" and Flag.GIL_ENABLED in cell.flags
    assert cell.info_before is not None and cell.info_before.gil_enabled
    assert cell.info_before.gil_reenabled_by == "gilfixture"


@pytest.mark.e2e
@pytest.mark.slow
@requires_314t
def test_an_answer_that_is_not_what_the_mix_expects_fails_the_cell(tmp_path: Path) -> None:
    mix = tmp_path / "mix.json"
    (tmp_path / "order.json").write_bytes((EXAMPLE / "order.json").read_bytes())  # inside the mix's folder
    score = {"name": "score", "method": "POST", "path": "/score", "body_file": "order.json"}
    mix.write_text(json.dumps({"requests": [{**score, "headers": {"X-API-Key": "wrong-key"}}]}))
    args = ["--requests", str(mix), "--run-id", "bad", "--no-report", "--designs", "single"]
    proc = _app(tmp_path / "r", *EXAMPLE_APP, *args, *SMOKE)
    assert proc.returncode == 1, proc.stderr
    (cell,) = results.load_run(tmp_path / "r" / "bad").cells
    assert cell.status == "failed" and cell.error is not None
    assert cell.error.startswith("check: score answered 401") and "expected status 200" in cell.error


# --- bad input -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([*EXAMPLE_APP, "--requests", "MIX"], "requests.0.bogus: Extra inputs are not permitted"),
        ([*EXAMPLE_APP, "--request", "POST /score @nowhere.json"], "body_file"),
        ([*EXAMPLE_APP], "no requests: give a request mix"),
        (["not a spec", "--request", "GET /"], "want MODULE:ATTR"),
        (["app:app", "--app-dir", "/no/such/dir", "--request", "GET /"], "not a directory"),
        ([*EXAMPLE_APP, "--request", "GET /", "--designs", "process/single"], "does not apply to your app"),
        ([*EXAMPLE_APP, "--request", "GET /", "-r", "/no/requirements.txt"], "no such file"),
        ([*EXAMPLE_APP, "--request", "GET /", "--builds", "3.12"], "unknown build 3.12"),
        (["--request", "GET /"], "which app?"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path, args: list[str], message: str) -> None:
    mix = tmp_path / "mix.json"
    mix.write_text('{"requests": [{"path": "/score", "bogus": 1}]}')
    results_dir = tmp_path / "results"
    proc = _app(results_dir, *[str(mix) if a == "MIX" else a for a in args], *SMOKE[2:], timeout=120)
    assert message in _one_line(proc)
    assert not results_dir.exists() or list(results_dir.iterdir()) == []


@pytest.mark.slow
@requires_314t
@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_such_module:app", "module 'no_such_module' does not import: ModuleNotFoundError"),
        (
            "app:RiskModel",
            "app 'app:RiskModel' is not an ASGI app (its type is type) (a class, not an app made from it) "
            "(in 3.14t's environment)",
        ),
    ],
)
def test_an_app_that_cannot_be_served_is_one_line(tmp_path: Path, spec: str, message: str) -> None:
    proc = _app(tmp_path, spec, "--app-dir", str(EXAMPLE), "--request", "GET /", *SMOKE)
    assert message in _one_line(proc)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.e2e
@pytest.mark.slow
@pytest.mark.skipif(not projects.provision.linked("3.14"), reason="3.14 is not provisioned")
def test_a_requirement_without_a_wheel_for_a_build_is_one_line(tmp_path: Path, gil_project: Path) -> None:
    """The extension's only wheel is for 3.14t: on 3.14, pip finds no distribution for it, and no
    source to build it from (exit status 1: the machine cannot make it), or, with --no-build, no
    wheel (exit status 2)."""
    args = ["gilapp:app", "--app-dir", str(gil_project), "--request", "GET /answer", *SMOKE]
    proc = _app(tmp_path, *[("3.14" if a == "3.14t" else a) for a in args])
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and lines[-1] == (
        "ftscale app: error: gilfixture does not build from source on 3.14: no distribution of gilfixture "
        "to build from"
    ), proc.stderr
    proc = _app(tmp_path, *[("3.14" if a == "3.14t" else a) for a in args], "--no-build")
    assert _one_line(proc) == (
        "ftscale app: error: requirement gilfixture has no wheel for 3.14 (--no-build: ftscale installs "
        "binary wheels only; 'ftscale audit' shows which builds have one)"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_bench_cannot_resume_an_app_run(tmp_path: Path) -> None:
    meta = RunMeta(
        run_id="a",
        kind="http",
        created=results.now(),
        host=results.collect_host(),
        git=Git(commit=None, dirty=None),
        config={"command": "app", "argv": ["app:app"]},
    )
    results.RunDir(tmp_path / "a").write_meta(meta)
    proc = subprocess.run(
        [sys.executable, "-m", "ftscale", "bench", "--results-dir", str(tmp_path), "--resume", "a"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "it is an 'ftscale app' run; resume it with: ftscale app --resume a" in _one_line(proc)


# --- the project's requirements ------------------------------------------------------------------------


def test_requirements_come_from_files_pyproject_or_the_project_folder(tmp_path: Path) -> None:
    (tmp_path / "base.txt").write_text("pydantic>=2.9  # validation\n")
    (tmp_path / "requirements.txt").write_text(
        "-r base.txt\n--find-links ./wheels\nfastapi>=0.115\n\n# none\n"
    )
    (tmp_path / "wheels").mkdir()
    found = projects.find([], None, tmp_path)
    assert found.files == ((tmp_path / "requirements.txt").resolve(),)
    assert projects.requirement_lines(found) == ["fastapi>=0.115", "pydantic>=2.9"]
    # where the file says wheels come from, relative to the file: each requirement alone needs it
    assert projects.pip_options(found) == ["--find-links", str((tmp_path / "wheels").resolve())]
    digest = found.digest
    (tmp_path / "base.txt").write_text("pydantic>=2.10\n")  # an included file changed: a new environment
    assert projects.find([], None, tmp_path).digest != digest
    (tmp_path / "requirements.txt").unlink()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndependencies = ["markupsafe>=3"]\n')
    assert projects.find([], None, tmp_path).requirements == ("markupsafe>=3",)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\ndynamic = ["dependencies"]\n')
    with pytest.raises(UsageError, match="dependencies are dynamic"):
        projects.find([], tmp_path / "pyproject.toml", tmp_path)


@pytest.mark.parametrize(
    ("stderr", "line"),
    [
        (
            "ERROR: Could not find a version that satisfies the requirement orjson>=3 (from versions: none)\n"
            "ERROR: No matching distribution found for orjson>=3\n",
            "requirement orjson>=3 has no wheel for 3.13t",
        ),
        (
            "ERROR: Cannot install a==1 and b==2 because these package versions have conflicting "
            "dependencies.\n",
            "the requirements conflict on 3.13t: Cannot install a==1 and b==2",
        ),
        ("ERROR: Invalid requirement: 'fast api'\n", "Invalid requirement: 'fast api' (for 3.13t)"),
        ("ERROR: something else entirely\n", None),
    ],
)
def test_pip_failures_are_explained_in_one_line(stderr: str, line: str | None) -> None:
    found = projects.explain(stderr, "3.13t")
    assert found == line if line is None else found is not None and found.startswith(line)


def test_an_apps_headings_name_no_size() -> None:
    pytest.importorskip("scipy")  # the report extra (not installed on 3.14t)
    from ftscale.bench.report import labels

    assert labels.sized(str(WorkloadClass.APP), 0) == ""
    assert labels.sized(str(WorkloadClass.PURE_PYTHON), 200) == ", size 200"
