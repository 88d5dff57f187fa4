"""ftscale's sessions: thin callers of the ``ftscale`` command.

    nox -s bench            quick HTTP scaling sweep, then its report  (ftscale bench)
    nox -s tests            the test suite, in parallel, on this interpreter and on 3.14t
    nox -s schema           schemathesis against the live service (minutes), on both
    nox -s soak             a soak of the service on 3.14t (60 s a design); figures to results/soak/
    nox -s micro -- --quick in-process pyperf scaling of every workload (ftscale micro)
    nox -s app -- M:A ...   your own ASGI app through the same sweep (ftscale app)
    nox -s audit -- -r F    your requirements on free-threaded builds (ftscale audit)
    nox -s interpreters     find or build CPython 3.13, 3.13t, 3.14, 3.14t (ftscale build)
    nox -s mutants          mutation testing of the numeric and decision core (not part of CI)

Each session installs the project (editable) with the extras it needs, from binary wheels only,
and passes its arguments through. Provisioned builds are linked into ``<cache>/ftscale/bin``,
which is put first on PATH here so that ``python="3.14t"`` finds them. A missing build is
skipped with its reason, or fails the run when ``CI`` is set (nox's default).
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
import shutil
import sys
import threading
import tomllib
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

import nox

nox.options.default_venv_backend = "venv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["bench"]


PROVISION = str(Path(__file__).parent / "bench" / "env" / "provision.py")


def _provision_module() -> ModuleType:
    """``bench/env/provision.py`` by path: standard library only, it runs in nox's own interpreter."""
    spec = importlib.util.spec_from_file_location("ftscale_provision", PROVISION)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it executes
    spec.loader.exec_module(module)
    return module


provision = _provision_module()
os.environ["PATH"] = f"{provision.bin_dir()}{os.pathsep}{os.environ.get('PATH', '')}"

HOST = f"{sys.version_info[0]}.{sys.version_info[1]}"
BUILDS = list(provision.BUILDS)
TEST_PYTHONS = list(dict.fromkeys([HOST, "3.14t"]))
PIP_BINARY_ONLY = "--only-binary=:all:"
PYPROJECT = nox.project.load_toml("pyproject.toml")


def install(session: nox.Session, extras: str, *groups: str) -> None:
    """The project (editable) with ``extras``, and dependency ``groups``, from wheels only."""
    session.install(PIP_BINARY_ONLY, "-e", f".[{extras}]", *nox.project.dependency_groups(PYPROJECT, *groups))


@nox.session(python=False)
def interpreters(session: nox.Session) -> None:
    """Find or build CPython 3.13, 3.13t, 3.14, 3.14t (or those named) and list them."""
    session.run(sys.executable, PROVISION, *session.posargs, external=True)


for _build in [*BUILDS, *([HOST] if HOST not in BUILDS else [])]:

    def _one(session: nox.Session, build: str = _build) -> None:
        if build in BUILDS:
            session.run(sys.executable, PROVISION, build, external=True)
        else:
            session.log(f"{build} is the host interpreter: nothing to provision")

    _one.__doc__ = f"find or build {_build} only"
    nox.session(name=f"interpreters-{_build}", python=False, default=False)(_one)


# What each test session selects (markers: pyproject.toml; applied in tests/conftest.py). The host
# interpreter's session runs every test; the 3.14t session what depends on the interpreter running
# it: the service, the servers, workloads, workers, the GIL, and every test marked freethreaded.
TESTS_ON_HOST = "not schemathesis"
TESTS_ON_FREE_THREADED = "not schemathesis and (freethreaded or not (host or sweep))"
NO_TESTS_SELECTED = 5  # pytest's exit status when a selection is empty


@nox.session(python=TEST_PYTHONS, requires=["interpreters-{python}"])
def tests(session: nox.Session) -> None:
    """Run the test suite (on this interpreter, and what depends on it on the free-threaded 3.14t).

    In parallel (pytest-xdist, one test module per worker), then the tests marked serial alone, each
    part with its 15 slowest tests. Arguments replace all that: ``-- tests/test_x.py -x`` runs
    those, as pytest is told (add ``-n auto`` for workers).
    """
    install(
        session,
        "bench,report,server,servers,worker,numpy"
        if session.python == HOST
        else "bench,server,servers,worker,numpy",
        "test",
    )
    session.run("python", "-m", "ftscale.buildfacts", "--import-check")
    if session.posargs:
        session.run("python", "-m", "pytest", *session.posargs)
        return
    scope = TESTS_ON_HOST if session.python == HOST else TESTS_ON_FREE_THREADED
    ok = [0, NO_TESTS_SELECTED]
    parallel = ("-n", "auto", "--dist", "loadfile", "-m", f"({scope}) and not serial")
    session.run("python", "-m", "pytest", *parallel, "--durations=15", success_codes=ok)
    serial = ("-p", "no:xdist", "-m", f"({scope}) and serial")
    session.run("python", "-m", "pytest", *serial, "--durations=15", success_codes=ok)


@nox.session(python=TEST_PYTHONS, requires=["interpreters-{python}"], default=False)
def schema(session: nox.Session) -> None:
    """Schemathesis against the live service: every operation, valid and invalid input, every check."""
    install(session, "bench,server", "test")
    session.run(
        "python",
        "-m",
        "pytest",
        "-m",
        "schemathesis",
        "tests/test_server_schema.py",
        *session.posargs,
    )


@nox.session(python="3.14t", requires=["interpreters-3.14t"], default=False)
def soak(session: nox.Session) -> None:
    """Good, bad and idle clients against 3.14t's designs (60 s each); figures to results/soak/."""
    install(session, "server")
    session.run("python", "-m", "ftscale.server.soak", *session.posargs)


@nox.session(default=False)
def lint(session: nox.Session) -> None:
    """ruff and mypy over the project."""
    install(session, "all,worker", "lint")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # mypy does not follow the editable install's import hook: it checks a tree of links laid
    # out as the installed package is (ftscale/ with bench/, server/, workloads/ inside it).
    root = Path(__file__).parent.resolve()
    stage = Path(session.create_tmp()).resolve() / "typecheck"
    package = stage / "ftscale"
    package.mkdir(parents=True, exist_ok=True)
    links = {p.name: p for p in (root / "ftscale").iterdir() if p.suffix in (".py", ".typed")}
    links.update({name: root / name for name in ("bench", "server", "workloads")})
    for name, target in links.items():
        (package / name).unlink(missing_ok=True)
        (package / name).symlink_to(target)
    config = str(root / "pyproject.toml")
    with session.chdir(stage):
        session.run("mypy", "--config-file", config, "-p", "ftscale")
    session.run("mypy", "--config-file", config, "noxfile.py")


@nox.session
def bench(session: nox.Session) -> None:
    """HTTP scaling sweep: quick by default (fair designs on 3.14 and 3.14t), --full for everything."""
    install(session, "bench,report")
    session.run("ftscale", "bench", *session.posargs)


@nox.session(default=False)
def app(session: nox.Session) -> None:
    """Your own ASGI app through the HTTP sweep: -- MODULE:ATTR --requests FILE (ftscale app)."""
    install(session, "bench,report")
    session.run("ftscale", "app", *session.posargs)


@nox.session(default=False)
def audit(session: nox.Session) -> None:
    """Your requirements on free-threaded builds: wheels, imports, the GIL (ftscale audit)."""
    install(session, "bench")
    session.run("ftscale", "audit", *session.posargs)


@nox.session(default=False)
def micro(session: nox.Session) -> None:
    """In-process pyperf scaling of every workload at 1..N threads (--quick for a fast pass)."""
    install(session, "bench,report")
    session.run("ftscale", "micro", *session.posargs)


for _build in BUILDS:
    for _name in ("bench", "micro"):

        def _per_build(session: nox.Session, command: str = _name, build: str = _build) -> None:
            install(session, "bench,report")
            args = list(session.posargs)
            if "--builds" not in args:
                args = ["--builds", build, *args]
            session.run("ftscale", command, *args)

        _per_build.__doc__ = f"{_name} on {_build} only"
        nox.session(name=f"{_name}-{_build}", default=False)(_per_build)


@nox.session(default=False)
def report(session: nox.Session) -> None:
    """Re-render reports of run directories (default: every run under results/)."""
    install(session, "report")
    session.run("ftscale", "report", *session.posargs)


# --- mutation testing -----------------------------------------------------------------------------
# The functions whose mistakes change a number or a decision, per module (space-separated; "*": every
# function of the module; "Class.method" or "Class.*" for methods). This table is the one place to
# change what `nox -s mutants` covers; logging, progress display and process plumbing are left out.
MUTATED: dict[str, str] = {
    "bench/report/stats.py": "*",
    "bench/report/model.py": "*",
    "bench/report/findings.py": "*",
    "bench/http/cell.py": "flags_for gil_came_back unbalanced unit_deltas interleaved",
    "bench/results.py": "cell_id write_atomic write_json_atomic load_run",
    "ftscale/schema.py": "upgrade read_json load_model load_cell parse",
    "bench/env/provision.py": "parse_build BuildSpec.* fetch _download _sha256 find_existing",
    "workloads/registry.py": "Workload.check_size register get select by_class",
    "server/executors.py": "Admission.*",
    "bench/micro/worker.py": "calls_per_thread cmd_worker",
}
# The fast tests that guard them; for each mutant mutmut runs those of them that reach its function.
MUTANT_TESTS = (
    "tests/test_report_stats.py",
    "tests/test_stats_properties.py",
    "tests/test_model_properties.py",
    "tests/test_findings.py",
    "tests/test_verdict_rules.py",
    "tests/test_cell_rules.py",
    "tests/test_mistakes.py",
    "tests/test_core_contracts.py",
    "tests/test_sweep.py",
    "tests/test_schema.py",
    "tests/test_provision.py",
    "tests/test_workloads.py",
    "tests/test_server_app.py::test_admission_counts_running_and_queued",
    "tests/test_micro.py",
)
MUTANTS_REQUIRED_SCORE = 0.90
MUTANTS_DIR = Path(__file__).parent / "tests" / "mutants"
METHOD = "\u01c1"  # mutmut names a method's mutants x<METHOD>Class<METHOD>method__mutmut_<n>
DETECTED = {"killed", "timeout", "segfault", "caught by type check"}  # mutmut's words for "a test noticed"


def _mutant_module(path: str) -> str:
    """``bench/report/stats.py`` -> ``ftscale.bench.report.stats`` (the installed name)."""
    dotted = path.removesuffix(".py").replace("/", ".")
    return dotted if dotted.startswith("ftscale.") else f"ftscale.{dotted}"


def _mutant_patterns() -> list[str]:
    """mutmut's names for the mutants of :data:`MUTATED`."""
    patterns = []
    for path, functions in MUTATED.items():
        module = _mutant_module(path)
        for function in functions.split():
            cls, _, method = function.rpartition(".")
            if function == "*":
                patterns.append(f"{module}.x*")
            elif cls:
                patterns.append(f"{module}.x{METHOD}{cls}{METHOD}{method}__mutmut_*")
            else:
                patterns.append(f"{module}.x_{function}__mutmut_*")
    return patterns


def _stage_installed_layout(stage: Path) -> None:
    """A copy of the project laid out as installed (``ftscale/bench`` ...), with its tests.

    Tests run from the copy's root import ``ftscale`` from it (the current directory comes first on
    ``sys.path``), not the editable install: so a mutant planted in the copy is what they test.
    """
    root = Path(__file__).parent
    shutil.rmtree(stage, ignore_errors=True)
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", "mutants")
    shutil.copytree(root / "ftscale", stage / "ftscale", ignore=skip)
    for name in ("bench", "server", "workloads"):
        shutil.copytree(root / name, stage / "ftscale" / name, ignore=skip)
    for name in ("tests", "results"):  # test_schema reads the committed runs
        shutil.copytree(root / name, stage / name, ignore=skip)
    shutil.copy2(root / "pyproject.toml", stage / "pyproject.toml")


def _stage_for_mutmut(stage: Path) -> None:
    """The installed layout (:func:`_stage_installed_layout`) with mutmut's settings.

    mutmut names a mutant after its file's path and expects the tests to import it under that
    name; the checkout's ``bench/`` is imported as ``ftscale.bench``, so the copy puts it there.
    """
    _stage_installed_layout(stage)

    def listed(values: Iterable[str]) -> str:
        return "".join(f"\n    {v}" for v in values)

    # the same Hypothesis examples for every mutant; slow tests start real processes: left out
    pytest_args = ("--hypothesis-profile=mutants", "-p", "no:cacheprovider", "-m", "not slow")
    (stage / "setup.cfg").write_text(
        "[mutmut]\nsource_paths = ftscale\nalso_copy = results\n"
        f"only_mutate ={listed('ftscale/' + p.removeprefix('ftscale/') for p in MUTATED)}\n"
        f"pytest_add_cli_args_test_selection ={listed(MUTANT_TESTS)}\n"
        f"pytest_add_cli_args ={listed(pytest_args)}\n"
    )


def _mutant_diffs(stage: Path, names: list[str]) -> dict[str, str]:
    """Each mutant's diff against its original function, read from mutmut's mutated files.

    mutmut writes every mutant beside the original as ``<mangled>__mutmut_<n>`` and
    ``<mangled>__mutmut_orig``; reading them here costs nothing, where ``mutmut show`` would
    start a process per mutant.
    """
    import ast
    import difflib
    import textwrap

    sources: dict[str, dict[str, str]] = {}
    diffs = {}
    for name in names:
        module, _, mangled = name.rpartition(".")
        if module not in sources:
            path = stage / "mutants" / Path(*module.split(".")).with_suffix(".py")
            text = path.read_text()
            lines = text.splitlines(keepends=True)
            sources[module] = {
                node.name: textwrap.dedent("".join(lines[node.lineno - 1 : node.end_lineno]))
                for node in ast.walk(ast.parse(text))
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and "__mutmut_" in node.name
            }
        functions = sources[module]
        original = re.sub(r"__mutmut_\d+$", "__mutmut_orig", mangled)
        before = functions[original].replace(original, _function_of(name).rpartition(".")[2])
        after = functions[mangled].replace(mangled, _function_of(name).rpartition(".")[2])
        diffs[name] = "".join(
            difflib.unified_diff(before.splitlines(True), after.splitlines(True), "original", "mutant", n=1)
        )
    return diffs


def _changed_lines(diff: str) -> str:
    """A mutant's changed lines, stripped, joined by " / ": how an explanation finds its mutant."""
    lines = diff.splitlines()[2:]
    return " / ".join(line[1:].strip() for line in lines if line[:1] in "+-" and line[1:].strip())


def _function_of(name: str) -> str:
    """``m.x_fetch__mutmut_3`` -> ``m.fetch``; ``m.xǁAǁenter__mutmut_1`` -> ``m.A.enter``."""
    module, _, mangled = name.rpartition(".")
    mangled = re.sub(r"__mutmut_(\d+|orig)$", "", mangled)
    function = (
        mangled[2:] if mangled.startswith("x_") else mangled.removeprefix("x" + METHOD).replace(METHOD, ".")
    )
    return f"{module}.{function}"


@nox.session(default=False, python=HOST)
def mutants(session: nox.Session) -> None:
    """Mutation testing of the decision core: hand-written mutants, then mutmut's (survivors.md).

    ``-- --hand [NAME ...]`` runs the hand-written mutants of tests/mutants/hand/ only (or those
    named); ``-- --report`` rewrites survivors.md from the last mutmut run (after editing
    equivalent.toml). Other arguments go to ``mutmut run``.
    """
    install(session, "bench,report,server,worker", "test", "mutants")
    if "--hand" in session.posargs:
        _hand_mutants(session, [a for a in session.posargs if a != "--hand"])
        return
    report_only = "--report" in session.posargs  # after editing equivalent.toml: no new run
    if not report_only:
        _hand_mutants(session, [])
    stage = Path(session.create_tmp()).resolve() / "mutmut"
    patterns = _mutant_patterns()
    jobs = str(os.cpu_count() or 1)
    if not report_only:
        _stage_for_mutmut(stage)
    with session.chdir(stage):
        if not report_only:
            # property tests after the examples: most mutants fail an example first, and -x stops there
            env = {"FTSCALE_EXAMPLES_FIRST": "1"}
            session.run("mutmut", "run", "--max-children", jobs, *patterns, *session.posargs, env=env)
        listing = str(session.run("mutmut", "results", "--all", "true", silent=True) or "")
    statuses = {}
    for line in listing.splitlines():
        name, sep, status = line.strip().partition(": ")
        if sep and any(fnmatch.fnmatchcase(name, p) for p in patterns):
            statuses[name] = status
    diffs = _mutant_diffs(stage, sorted(n for n, s in statuses.items() if s not in DETECTED))
    explained = tomllib.loads((MUTANTS_DIR / "equivalent.toml").read_text()).get("equivalent", [])
    reasons = {(e["function"], e["change"]): e["why"] for e in explained}
    report, score, unexplained = _mutants_report(statuses, diffs, reasons)
    (MUTANTS_DIR / "survivors.md").write_text(report)
    session.log(f"{score:.1%} of {len(statuses)} mutants killed; {len(unexplained)} survivors unexplained")
    session.log(f"survivors: {MUTANTS_DIR / 'survivors.md'}")
    if score < MUTANTS_REQUIRED_SCORE or unexplained:
        session.error(
            f"kill the survivors or explain them in tests/mutants/equivalent.toml: {score:.1%} killed "
            f"(at least {MUTANTS_REQUIRED_SCORE:.0%} wanted), {len(unexplained)} unexplained"
        )


def _mutants_report(
    statuses: dict[str, str], diffs: dict[str, str], reasons: dict[tuple[str, str], str]
) -> tuple[str, float, list[str]]:
    """survivors.md (the score per module, then every survivor with its diff and why it lives),
    the share of mutants killed, and the survivors nobody explained."""
    why = {n: reasons.get((_function_of(n), _changed_lines(d))) for n, d in diffs.items()}
    unexplained = [n for n, w in why.items() if w is None]
    lines = [
        "# Surviving mutants",
        "",
        "Written by `nox -s mutants` (mutmut, over the functions its `MUTATED` table names); each",
        "survivor's explanation comes from `tests/mutants/equivalent.toml`.",
        "",
        "| module | mutants | killed | survived, explained | survived, unexplained | killed |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    totals = [0, 0, 0, 0]
    for path in MUTATED:
        names = [n for n in statuses if n.rpartition(".")[0] == _mutant_module(path)]
        killed = sum(statuses[n] in DETECTED for n in names)
        explained = sum(why.get(n) is not None for n in names)
        row = [len(names), killed, explained, len(names) - killed - explained]
        totals = [a + b for a, b in zip(totals, row)]
        lines.append(f"| `{path}` | {' | '.join(map(str, row))} | {killed / max(1, len(names)):.1%} |")
    score = totals[1] / max(1, totals[0])
    lines.append(f"| **all** | {' | '.join(map(str, totals))} | **{score:.1%}** |")
    for title, names in (("Unexplained", unexplained), ("Explained", [n for n in why if why[n] is not None])):
        if names:
            lines += ["", f"## {title}", ""]
        for name in names:
            lines += [f"### `{name}` ({statuses[name]})", ""]
            lines += [why[name] or "", ""] if why[name] else []
            lines += ["```diff", diffs[name].strip(), "```", ""]
    return "\n".join(lines).rstrip() + "\n", score, unexplained


# --- hand-written mutants ---------------------------------------------------------------------------
# mutmut's operators are syntactic (a flipped constant, a changed string); the mistakes that mislead
# a reader are semantic: a rule applied to the other side, the state before the load for the state
# after it, any for all, a guard dropped. Each file of tests/mutants/hand/ plants one such mistake
# (``file``: the module as the checkout has it; ``old``: text that occurs exactly once in it; ``new``:
# its replacement) and names the ``tests`` that must fail with it (pytest node ids). A mutant that
# none of them fails survives, and fails the session.
HAND_MUTANTS_DIR = MUTANTS_DIR / "hand"
PYTEST_EXIT_TESTS_FAILED = 1


def _hand_mutant_specs(names: list[str]) -> list[tuple[str, dict[str, object]]]:
    """(name, spec) of every hand-written mutant, or of those ``names`` (file stems) picks."""
    found = {path.stem: tomllib.loads(path.read_text()) for path in sorted(HAND_MUTANTS_DIR.glob("*.toml"))}
    unknown = sorted(set(names) - set(found))
    if unknown:
        raise ValueError(f"no such hand-written mutant: {', '.join(unknown)}; known: {', '.join(found)}")
    return [(name, spec) for name, spec in found.items() if not names or name in names]


def _pytest_in(session: nox.Session, stage: Path, tests: Iterable[str]) -> tuple[int, str]:
    """Run ``tests`` with the venv's pytest in ``stage``: its exit status and the end of its output.

    No bytecode is written: a mutant of the same size as the original, planted within the same
    second, would otherwise be run from the other one's cached bytecode.
    """
    import subprocess

    env = {k: v for k, v in os.environ.items() if k != "PYTHONSAFEPATH"}  # the stage must come first
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    command = [
        str(Path(str(session.bin)) / "python"), "-m", "pytest", "-x", "-q", "--no-header",
        "-p", "no:cacheprovider", "-p", "no:xdist", "--hypothesis-profile=mutants", *tests,
    ]  # fmt: skip
    proc = subprocess.run(command, cwd=stage, env=env, capture_output=True, text=True, check=False)
    return proc.returncode, (proc.stdout + proc.stderr)[-3000:]


def _hand_mutant_run(session: nox.Session, stage: Path, name: str, spec: dict[str, object]) -> str:
    """Plant one mutant in ``stage``, run its tests, put the original back: killed, survived, or
    why the mutant could not be judged."""
    target = stage / _installed_path(str(spec["file"]))
    original = target.read_text()
    old, new = str(spec["old"]), str(spec["new"])
    if original.count(old) != 1:
        return f"broken: its old text occurs {original.count(old)} times in {spec['file']}"
    target.write_text(original.replace(old, new))
    try:
        status, output = _pytest_in(session, stage, spec["tests"])  # type: ignore[arg-type]
    finally:
        target.write_text(original)
    if status == PYTEST_EXIT_TESTS_FAILED:
        return "killed"
    if status == 0:
        return "survived"
    return f"broken: pytest exit status {status} (no such test, or the mutant does not import)\n{output}"


def _hand_mutants(session: nox.Session, names: list[str]) -> None:
    """Plant each hand-written mutant in a copy of the tree and run the tests it names; fail the
    session if any survives, or if a mutant no longer applies (its ``old`` text is gone).

    One copy per CPU, each judging one mutant at a time.
    """
    import concurrent.futures

    specs = _hand_mutant_specs(names)
    stages = [Path(session.create_tmp()).resolve() / f"hand-mutants-{i}" for i in range(os.cpu_count() or 1)]
    probe = "import ftscale.bench, pathlib; print(pathlib.Path(ftscale.bench.__file__).resolve())"
    for stage in stages:
        _stage_installed_layout(stage)
        with session.chdir(stage):
            where = str(session.run("python", "-c", probe, silent=True, env={"PYTHONSAFEPATH": ""}) or "")
        if not where.strip().startswith(str(stage)):
            session.error(f"the staged tree is not what the tests import ({where}): mutants test nothing")
    tests = sorted({t for _, spec in specs for t in spec["tests"]})  # type: ignore[attr-defined]
    status, output = _pytest_in(session, stages[0], tests)
    if status != 0:
        session.error(f"the named tests fail without any mutant; fix them first:\n{output}")
    free: list[Path] = list(stages)
    lock = threading.Lock()

    def judge(item: tuple[str, dict[str, object]]) -> tuple[str, str]:
        with lock:
            stage = free.pop()
        try:
            return item[0], _hand_mutant_run(session, stage, *item)
        finally:
            with lock:
                free.append(stage)

    verdicts: dict[str, str] = {}
    with concurrent.futures.ThreadPoolExecutor(len(stages)) as pool:
        for name, verdict in pool.map(judge, specs):
            verdicts[name] = verdict
            mistake = "" if verdict == "killed" else f": {dict(specs)[name]['mistake']}"
            session.log(f"{verdict.split(chr(10))[0]:<10} {name}{mistake}")
    killed = sum(v == "killed" for v in verdicts.values())
    session.log(f"hand-written mutants: {killed} of {len(specs)} killed")
    if killed < len(specs):
        session.error("; ".join(f"{n} {v}" for n, v in verdicts.items() if v != "killed"))


def _installed_path(path: str) -> str:
    """``bench/http/cell.py`` -> ``ftscale/bench/http/cell.py`` (where the staged tree has it)."""
    return path if path.startswith("ftscale/") else f"ftscale/{path}"
