"""Building what has no wheel: ``ftscale audit`` and ``ftscale app`` with source-only requirements
and requirements that name a project by path or URL.

The fixtures are real source distributions built in the test (:mod:`tests.sdists`), served to
pip from a local ``--find-links`` folder and built offline by pip itself (``pip wheel``); the
C-extension ones are compiled by the build's own interpreter with the machine's C compiler.
The classes of a requirement (ships a wheel / builds, GIL off / builds, GIL on / does not
build) and what fails the audit are also checked on models, each rule against its inverse.
"""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from ftscale.bench import results
from ftscale.bench.app import audit_render, audit_verdict
from ftscale.bench.env import fromsource, provision
from ftscale.bench.env import project as projects
from ftscale.schema import AuditBuild, AuditDistribution, AuditModule, AuditReport, AuditRequirement
from ftscale.vocab import Flag
from tests import sdists
from tests.conftest import requires_314t
from tests.extension import compiler

REPO = Path(__file__).resolve().parent.parent
requires_cc = pytest.mark.skipif(
    compiler() is None, reason="needs a C compiler (gcc or cc) to build the C-extension fixtures"
)
CPUS = ",".join(str(c) for c in sorted(os.sched_getaffinity(0)))
KINDS = {
    "ftscale_purefix": "pure",
    "ftscale_noslot": "noslot",
    "ftscale_slot": "slot",
    "ftscale_raises": "raises",
    "ftscale_header": "header",
}


def _run(
    command: str, *args: str, cwd: Path = REPO, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ftscale", command, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, (proc.returncode, proc.stderr)
    return lines[0]


@pytest.fixture(scope="module")
def links(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of the fixtures' source distributions, as ``--find-links`` serves them."""
    folder = tmp_path_factory.mktemp("links")
    for name, kind in KINDS.items():
        sdists.sdist(folder, name, kind)
    return folder


def _project(folder: Path, links: Path, *names: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return sdists.requirements(folder, list(names), links)


def _report(path: Path) -> tuple[AuditReport, AuditBuild]:
    report = AuditReport.model_validate_json(path.read_text())
    (build,) = report.builds
    return report, build


def _rows(build: AuditBuild) -> dict[str, AuditRequirement]:
    return {r.name: r for r in build.requirements}


# --- the audit, end to end ----------------------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.slow
@requires_314t
@requires_cc
def test_a_pure_python_and_a_slotted_extension_build_from_source_and_pass(
    tmp_path: Path, links: Path
) -> None:
    requirements = _project(tmp_path / "p", links, "ftscale_purefix", "ftscale_slot")
    proc = _run("audit", "-r", str(requirements), "--builds", "3.14t", "--json", str(tmp_path / "a.json"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "  ftscale_purefix==0.1  0.1 (built from source, pure Python)" in proc.stdout
    assert "PASS: every requirement has a wheel or builds from source" in proc.stdout
    report, build = _report(tmp_path / "a.json")
    assert report.build_from_source and report.passed
    rows = _rows(build)
    pure, slot = rows["ftscale-purefix"], rows["ftscale-slot"]
    assert (pure.status, pure.outcome, pure.built) == ("built", "built-gil-off", ["ftscale-purefix"])
    assert pure.wheel is not None and pure.wheel.endswith("-py3-none-any.whl")
    assert (slot.status, slot.outcome) == ("built", "built-gil-off")
    assert slot.wheel is not None and "cp314t" in slot.wheel
    dists = {d.name: d for d in build.distributions}
    assert dists["ftscale-slot"].built and dists["ftscale-slot"].extensions == ["ftscale_slot._speedups"]
    modules = {m.module: m for m in build.modules}
    # the extension module imported alone, like any other module: it keeps the GIL off
    assert modules["ftscale_slot._speedups"].ok and not modules["ftscale_slot._speedups"].gil_enabled
    assert (
        "builds from source, the GIL stays off (2): ftscale_purefix==0.1 (pure Python), ftscale_slot==0.1"
        in (proc.stdout)
    )


@pytest.mark.e2e
@pytest.mark.slow
@requires_314t
@requires_cc
def test_an_extension_without_the_slot_fails_and_is_named_by_its_extension_module(
    tmp_path: Path, links: Path
) -> None:
    requirements = _project(tmp_path / "p", links, "ftscale_noslot")
    proc = _run("audit", "-r", str(requirements), "--builds", "3.14t", "--json", str(tmp_path / "a.json"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report, build = _report(tmp_path / "a.json")
    row = _rows(build)["ftscale-noslot"]
    assert (row.status, row.outcome, row.gil_reenabled_by) == (
        "built",
        "built-gil-on",
        "ftscale_noslot._speedups",
    )
    assert "3.14t: importing ftscale_noslot turns the GIL back on (enabled by ftscale_noslot._speedups)" in (
        report.problems
    )
    top = next(m for m in build.modules if m.module == "ftscale_noslot")
    # The package silences CPython's warning: only the verbose mode's list could name the module.
    assert top.gil_enabled and top.gil_warning is None and top.gil_modules == ["ftscale_noslot._speedups"]
    assert "      ftscale_noslot==0.1: the GIL turned on by ftscale_noslot._speedups\n" in proc.stdout
    allowed = _run("audit", "-r", str(requirements), "--builds", "3.14t", "--allow", "ftscale_noslot")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr  # it was the only problem


@pytest.mark.e2e
@pytest.mark.slow
@requires_314t
def test_a_build_that_fails_is_one_line_and_a_failure_and_leaves_no_environment(
    tmp_path: Path, links: Path
) -> None:
    requirements = _project(tmp_path / "p", links, "ftscale_raises", "ftscale_purefix")
    proc = _run("audit", "-r", str(requirements), "--builds", "3.14t", "--json", str(tmp_path / "a.json"))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    why = "its build failed: RuntimeError: this fixture refuses to build"
    assert f"  ftscale_raises==0.1   DOES NOT BUILD  {why}\n" in proc.stdout
    report, build = _report(tmp_path / "a.json")
    assert report.problems == [f"3.14t: ftscale_raises==0.1: does not build from source: {why}"]
    rows = _rows(build)
    assert (rows["ftscale-raises"].status, rows["ftscale-raises"].outcome) == ("unbuilt", "does-not-build")
    assert rows["ftscale-purefix"].outcome == "built-gil-off"  # the rest is still audited
    project = projects.from_arguments([requirements], None)
    assert not projects.env_dir("3.14t", project).exists()  # never left half made


@pytest.mark.e2e
@pytest.mark.slow
@requires_314t
def test_no_build_reproduces_the_old_table(tmp_path: Path, links: Path) -> None:
    requirements = _project(tmp_path / "p", links, "ftscale_purefix")
    proc = _run(
        "audit",
        "-r",
        str(requirements),
        "--builds",
        "3.14t",
        "--no-build",
        "--json",
        str(tmp_path / "a.json"),
    )
    assert proc.returncode == 1, proc.stderr
    report, build = _report(tmp_path / "a.json")
    assert not report.build_from_source
    assert proc.stdout == (
        f"ftscale audit of {requirements}\n\n"
        f"3.14t (CPython {build.version}, free-threaded)\n"
        "  requirement           wheel\n"
        "  ftscale_purefix==0.1  NO WHEEL  no distribution\n\n"
        "FAIL: 1 problem(s) on free-threaded builds:\n"
        "  - 3.14t: ftscale_purefix==0.1: ftscale-purefix has no wheel for this build\n"
    )
    assert "building" not in proc.stderr


# --- requirements naming a project by path or URL ---------------------------------------------------


def _listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.e2e
@pytest.mark.slow
@requires_314t
def test_an_editable_project_is_built_from_a_copy_and_its_folder_is_left_alone(tmp_path: Path) -> None:
    project = sdists.write_project(tmp_path / "svc", "ftscale_localproj", "pure")
    before = _listing(project)
    (tmp_path / "requirements.txt").write_text(f"-e {project}\n")
    proc = _run(
        "audit", "-r", str(tmp_path / "requirements.txt"), "--builds", "3.14t", "--json", str(tmp_path / "a")
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # its backend writes build/ and an egg-info where it builds, as setuptools does: not here
    assert _listing(project) == before
    _, build = _report(tmp_path / "a")
    (row,) = build.requirements
    assert (row.requirement, row.name, row.status) == (f"-e {project}", "ftscale-localproj", "built")
    assert {m.module for m in build.modules} == {"ftscale_localproj"}  # imported, not skipped


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def url_404() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/svc-1.0.tar.gz"
    server.shutdown()
    server.server_close()


@pytest.mark.e2e
@pytest.mark.slow
@requires_314t
def test_a_url_requirement_that_cannot_be_fetched_is_one_line_and_a_failure(
    tmp_path: Path, url_404: str
) -> None:
    (tmp_path / "requirements.txt").write_text(f"{url_404}\n")
    proc = _run("audit", "-r", str(tmp_path / "requirements.txt"), "--builds", "3.14t")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    why = f"could not download it: HTTP error 404 for {url_404}"
    problem = f"  - 3.14t: {url_404}: does not build from source: {why}"
    assert problem in proc.stdout.splitlines()
    assert "Traceback" not in proc.stdout + proc.stderr and "ERROR:" not in proc.stdout + proc.stderr


@pytest.mark.parametrize("command", ["audit", "app"])
@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "-e .",
            "requirement '-e .' (REQ): HERE is not a Python project (it has no pyproject.toml or setup.py)",
        ),
        ("./missing", "requirement './missing' (REQ): HERE/missing does not exist"),
        ("file:///no/such/svc.tar.gz", "/no/such/svc.tar.gz does not exist"),
    ],
)
def test_a_reference_to_no_project_is_one_line(tmp_path: Path, command: str, line: str, message: str) -> None:
    """``-e .`` outside a project is bad input, never skipped: paths are taken from the current
    folder, as pip takes them."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"fastapi\n{line}\n")
    args = ["-r", str(requirements), "--builds", "3.14t"]
    if command == "app":
        args = [
            "app:app",
            "--app-dir",
            str(tmp_path),
            "--request",
            "GET /",
            "--results-dir",
            str(tmp_path),
            *args,
        ]
    proc = _run(command, *args, cwd=tmp_path, timeout=120)
    expected = message.replace("REQ", str(requirements)).replace("HERE", str(tmp_path))
    assert expected in _one_line(proc)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["requirements.txt"]  # nothing written


@pytest.mark.parametrize("command", ["audit", "app"])
def test_no_build_refuses_a_project_to_build(tmp_path: Path, command: str) -> None:
    project = sdists.write_project(tmp_path / "svc", "ftscale_localproj", "pure")
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(f"-e {project}\n")
    args = ["-r", str(requirements), "--no-build", "--builds", "3.14t"]
    if command == "app":
        args = [
            "app:app",
            "--app-dir",
            str(tmp_path),
            "--request",
            "GET /",
            "--results-dir",
            str(tmp_path),
            *args,
        ]
    line = _one_line(_run(command, *args, timeout=120))
    assert f"requirement '-e {project}'" in line and "--no-build forbids building" in line


# --- the builder, alone -----------------------------------------------------------------------------


def _builder(tmp_path: Path, links: Path, timeout_s: float = 60) -> fromsource.Builder:
    python = provision.linked("3.14t")
    assert python is not None
    options = ["--no-index", "--find-links", str(links)]
    return fromsource.Builder(python, "3.14t", tmp_path / "built", timeout_s, options, log=lambda _: None)


@pytest.mark.e2e
@pytest.mark.slow
@requires_314t
@requires_cc
def test_a_missing_system_header_is_named(tmp_path: Path, links: Path) -> None:
    made = _builder(tmp_path, links)
    with pytest.raises(fromsource.BuildFailed) as failed:
        made.requirement("ftscale_header==0.1")
    assert str(failed.value) == (
        "ftscale_header does not build from source on 3.14t: needs the C header ftscale_no_such_header.h "
        "(a system development package)"
    )
    assert made.wheels() == []


@pytest.mark.e2e
@pytest.mark.slow
@requires_314t
def test_a_build_past_its_time_limit_is_killed_with_its_processes(tmp_path: Path) -> None:
    pid_file = tmp_path / "pid"
    sdists.sdist(tmp_path / "links", "ftscale_sleeps", "sleeps", pid_file)
    made = _builder(tmp_path, tmp_path / "links", timeout_s=8)
    started = time.monotonic()
    with pytest.raises(fromsource.BuildFailed, match=r"did not build within 8 s \(--build-timeout\)"):
        made.requirement("ftscale_sleeps==0.1")
    assert time.monotonic() - started < 60
    backend = int(pid_file.read_text())  # the build backend, a grandchild of pip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{backend}") and not _zombie(backend):
        time.sleep(0.1)
    assert not os.path.exists(f"/proc/{backend}") or _zombie(backend)
    assert made.wheels() == []
    with pytest.raises(fromsource.BuildFailed):  # remembered: not tried again
        made.requirement("ftscale_sleeps==0.1")
    assert time.monotonic() - started < 60


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except OSError:
        return False


@pytest.mark.parametrize(
    ("output", "piece"),
    [
        ("error: can't find Rust compiler\n", "needs a Rust toolchain (rustc and cargo)"),
        ("Cargo, the Rust package manager, is not installed or is not on PATH.", "needs a Rust toolchain"),
        ("error: command 'g++' failed: No such file or directory\n", "needs a C++ compiler"),
        ("error: command 'x86_64-linux-gnu-gcc' failed: No such file or directory\n", "needs a C compiler"),
        ("ERROR: Unknown compiler(s): [['cc'], ['gcc'], ['clang']]\n", "needs a C compiler"),
        (
            "src/x.c:1:10: fatal error: libpq-fe.h: No such file or directory\n",
            "needs the C header libpq-fe.h",
        ),
        ("/usr/bin/ld: cannot find -lssl: No such file or directory\n", "needs the system library libssl"),
        (
            "Package 'libffi' was not found in the pkg-config search path.\n",
            "needs the system library libffi",
        ),
        (
            "  Traceback (most recent call last):\n  ValueError: bad version\n  [end of output]\n",
            "its build failed: ValueError: bad version",
        ),
    ],
)
def test_what_a_failed_build_lacked_is_read_from_its_output(output: str, piece: str) -> None:
    assert fromsource.missing_piece(output).startswith(piece)


# --- the classes and the verdict, on models ---------------------------------------------------------------


def _built_build(culprit_owner: str) -> AuditBuild:
    """A build where ``ext`` was built from source and ``ext`` imports with the GIL on, because of a
    module of ``culprit_owner``."""
    culprit = "ext._speedups" if culprit_owner == "ext" else "yaml._yaml"
    return AuditBuild(
        build="3.14t",
        version="3.14.7",
        free_threaded=True,
        python="p",
        requirements=[
            AuditRequirement(
                requirement="ext",
                name="ext",
                status="built",
                version="1",
                built=["ext"],
                wheel="ext-1-cp314-cp314t-linux_x86_64.whl",
            ),
            AuditRequirement(requirement="fastapi", name="fastapi", status="wheel", version="1"),
            AuditRequirement(
                requirement="bad", name="bad", status="unbuilt", missing="bad", detail="needs a C compiler"
            ),
        ],
        distributions=[AuditDistribution(name="ext", version="1", built=True, extensions=["ext._speedups"])],
        modules=[
            AuditModule(
                module="ext",
                distribution="ext",
                ok=True,
                gil_enabled=True,
                gil_reenabled_by=culprit,
                gil_modules=[culprit],
            )
        ],
    )


@pytest.mark.parametrize(("owner", "outcome"), [("ext", "built-gil-on"), ("yaml", "built-gil-off")])
def test_a_built_requirement_turns_the_gil_on_only_by_its_own_extension(owner: str, outcome: str) -> None:
    """The GIL came back during the import of a built package: it is the package's class only when the
    module that did it is one of its own extension modules (else the other module is named on its own)."""
    judged = audit_verdict.judge(_built_build(owner), frozenset(), None, classes=True)
    row = _rows(judged)["ext"]
    assert row.outcome == outcome
    assert row.gil_reenabled_by == ("ext._speedups" if owner == "ext" else None)


def test_what_does_not_build_fails_a_free_threaded_build_only_and_allow_excuses_it() -> None:
    build = _built_build("ext")
    judged = audit_verdict.judge(build, frozenset(), None, classes=True)
    assert "3.14t: bad: does not build from source: needs a C compiler" in judged.problems
    assert {r.name: r.outcome for r in judged.requirements} == {
        "ext": "built-gil-on",
        "fastapi": "wheel",
        "bad": "does-not-build",
    }
    assert audit_verdict.judge(build, frozenset({"bad", "ext"}), None, classes=True).problems == []
    twin = build.model_copy(update={"build": "3.14", "free_threaded": False})
    assert audit_verdict.judge(twin, frozenset(), None, classes=True).problems == []
    # without building (--no-build), no classes: the old table
    assert all(r.outcome is None for r in audit_verdict.judge(build, frozenset(), None).requirements)


def test_a_built_package_is_one_problem_per_module_that_turned_the_gil_on() -> None:
    """Every extension module of a built distribution is imported alone; the modules of its package
    that turned the GIL on through the same module are one problem, not one each. A wheel's modules
    stay one problem each, as before building existed."""
    modules = [
        AuditModule(
            module=name, distribution="ext", ok=True, gil_enabled=True, gil_reenabled_by="ext._speedups"
        )
        for name in ("ext", "ext._other", "ext._speedups")
    ]
    build = _built_build("ext").model_copy(update={"modules": modules})
    gil = [p for p in audit_verdict.judge(build, frozenset(), None, classes=True).problems if "GIL" in p]
    assert gil == ["3.14t: importing ext turns the GIL back on (enabled by ext._speedups)"]
    wheel = build.model_copy(update={"distributions": [AuditDistribution(name="ext", version="1")]})
    assert len([p for p in audit_verdict.judge(wheel, frozenset(), None).problems if "GIL" in p]) == 3


def test_the_table_lists_the_four_classes() -> None:
    judged = audit_verdict.judge(_built_build("ext"), frozenset(), None, classes=True)
    lines = audit_render.class_lines(judged)
    assert lines == [
        "  requirements by class:",
        "    ships a wheel for this build (1): fastapi",
        "    builds from source, the GIL stays off: none",
        "    builds from source, turns the GIL on (1):",
        "      ext: the GIL turned on by ext._speedups",
        "    does not build here (1):",
        "      bad: needs a C compiler",
    ]
    assert audit_render.class_lines(audit_verdict.judge(_built_build("ext"), frozenset(), None)) == []


# --- references parsed ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "target", "local", "extras"),
    [
        ("-e .", "HERE", True, ""),
        ("--editable=./svc[dev]", "HERE/svc", True, "[dev]"),
        ("./dist/svc-1.0.tar.gz", "HERE/dist/svc-1.0.tar.gz", True, ""),
        ("file:///srv/svc", "/srv/svc", True, ""),
        ("svc @ file:///srv/svc", "/srv/svc", True, ""),
        (
            "svc[x] @ https://example.invalid/svc-1.0.tar.gz",
            "https://example.invalid/svc-1.0.tar.gz",
            False,
            "[x]",
        ),
        ("git+https://example.invalid/svc.git@v1", "git+https://example.invalid/svc.git@v1", False, ""),
        (
            "-e git+https://example.invalid/svc.git#egg=svc",
            "git+https://example.invalid/svc.git#egg=svc",
            False,
            "",
        ),
    ],
)
def test_requirements_naming_a_place_are_references(
    tmp_path: Path, line: str, target: str, local: bool, extras: str
) -> None:
    ref = projects.reference(line, tmp_path)
    assert ref is not None
    assert (ref.target, ref.local, ref.extras) == (target.replace("HERE", str(tmp_path)), local, extras)


@pytest.mark.parametrize(
    "line", ["fastapi>=0.115", "pydantic[email]==2.9 ; python_version >= '3.11'", "uvicorn"]
)
def test_requirements_by_name_are_not_references(line: str) -> None:
    assert projects.reference(line) is None


def test_continued_lines_and_hashes_are_one_requirement(tmp_path: Path) -> None:
    (tmp_path / "requirements.txt").write_text(
        "fastapi==0.115.0 \\\n    --hash=sha256:aaa \\\n    --hash=sha256:bbb\n-e ./svc\n--no-binary :none:\n"
    )
    project = projects.find([], None, tmp_path)
    assert projects.requirement_lines(project) == ["fastapi==0.115.0", "-e ./svc"]


# --- ftscale app ----------------------------------------------------------------------------------------

NOSLOT_APP = '''"""An app whose import turns the GIL back on: it imports ftscale_noslot."""

import json

import ftscale_noslot


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    body = json.dumps({"answer": ftscale_noslot.answer()}).encode()
    headers = [(b"content-type", b"application/json")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
'''


@pytest.mark.e2e
@pytest.mark.slow
@requires_314t
@requires_cc
def test_the_app_builds_a_source_only_requirement_and_names_the_module_that_turned_the_gil_on(
    tmp_path: Path, links: Path
) -> None:
    folder = tmp_path / "svc"
    _project(folder, links, "ftscale_noslot")
    (folder / "noslotapp.py").write_text(NOSLOT_APP)
    proc = _run(
        *["app", "noslotapp:app", "--app-dir", str(folder), "--request", "GET /answer"],
        *["--results-dir", str(tmp_path / "r"), "--run-id", "n", "--no-report"],
        *"--builds 3.14t --designs single --threads 1 --repetitions 1 --duration 0.5 --warmup 0".split(),
        *["--generator", "python", "--allow-shared-cpus", "--server-cpus", CPUS, "--client-cpus", CPUS],
    )
    assert proc.returncode == 0, proc.stderr
    run = results.load_run(tmp_path / "r" / "n")
    record = run.meta.builds["3.14t"]
    assert record.gil_enabled and record.gil_reenabled_by == "ftscale_noslot._speedups"
    assert any(
        n.startswith("3.14t: built from source for its environment") and "ftscale-noslot 0.1 (cp314t)" in n
        for n in run.meta.notes
    )
    (cell,) = run.cells
    assert cell.status == "ok" and Flag.GIL_ENABLED in cell.flags


def test_the_app_report_opens_with_the_module_that_turned_the_gil_on() -> None:
    pytest.importorskip("scipy")  # the report extra
    from ftscale.bench.report import run_report
    from ftscale.schema import Git, RunMeta

    facts = {"version": "3.14.7", "executable": "p", "config_args": ""}
    builds = {
        "3.14t": {
            **facts,
            "build": "3.14t",
            "py_gil_disabled": True,
            "gil_enabled": True,
            "gil_reenabled_by": "ext._speedups",
        },
        "3.14": {**facts, "build": "3.14", "py_gil_disabled": False, "gil_enabled": True},
    }
    meta = RunMeta.model_validate(
        {
            "run_id": "a",
            "kind": "http",
            "created": "c",
            "host": results.collect_host().model_dump(),
            "git": Git(commit=None, dirty=None).model_dump(),
            "config": {"command": "app"},
            "builds": builds,
        }
    )
    (block,) = run_report.gil_on_blocks(meta)
    assert "3.14t ran with the GIL on" in block.text and "ext._speedups" in block.text
    assert run_report.gil_on_blocks(meta.model_copy(update={"config": {"command": "bench"}})) == []
    off = {**builds, "3.14t": {**builds["3.14t"], "gil_enabled": False, "gil_reenabled_by": None}}
    gil_off = RunMeta.model_validate({**meta.model_dump(), "builds": off}).builds
    assert run_report.gil_on_blocks(meta.model_copy(update={"builds": gil_off})) == []


def test_a_mix_file_reaching_outside_its_folder_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_text("not yours")
    mix = tmp_path / "mix" / "requests.json"
    mix.parent.mkdir()
    mix.write_text('{"requests": [{"path": "/a", "body_file": "../secret.txt"}]}')
    (tmp_path / "app.py").write_text("app = None\n")
    args = [
        "app:app",
        "--app-dir",
        str(tmp_path),
        "--requests",
        str(mix),
        "--results-dir",
        str(tmp_path / "r"),
    ]
    line = _one_line(_run("app", *args, "--builds", "3.14t", timeout=120))
    assert (
        "body_file ../secret.txt is outside the mix file's folder" in line and "--allow-outside-files" in line
    )
    assert not (tmp_path / "r").exists()
