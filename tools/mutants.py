"""Mutation testing of the numeric and decision core (``nox -s mutants``; not part of CI).

Two kinds of mutants: mutmut's, over the functions :data:`MUTATED` names (its syntactic operators;
survivors are explained in ``tests/mutants/equivalent.toml`` and listed in ``survivors.md``), and the
hand-written ones of ``tests/mutants/hand/`` (semantic mistakes: a rule applied to the other side,
the state before for the state after). The noxfile loads this file by path and calls :func:`run`
with the ``mutants`` session, whose venv has mutmut and the tests' packages.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import threading
import tomllib
from collections.abc import Iterable
from pathlib import Path

import nox

# --- mutation testing -----------------------------------------------------------------------------
# The functions whose mistakes change a number or a decision, per module (space-separated; "*": every
# function of the module; "Class.method" or "Class.*" for methods). This table is the one place to
# change what `nox -s mutants` covers; logging, progress display and process plumbing are left out.
MUTATED: dict[str, str] = {
    "bench/report/stats.py": "*",
    "bench/report/model.py": "*",
    "bench/report/findings.py": "*",
    "bench/report/overhead.py": "*",
    "bench/report/figures.py": "*",
    "bench/report/upgrade.py": "*",
    "bench/http/judge.py": "flags_for gil_came_back unbalanced error_count",
    "bench/http/session.py": "unit_deltas",
    "bench/http/cells.py": "interleaved",
    "bench/intervals.py": "*",
    "bench/http/capacity.py": "quantile_upper_rank upper_bound_ms judge interval search with_search_flags",
    "bench/http/gencheck.py": "generator_flags send_lag_over",
    "bench/results.py": "cell_id write_atomic write_json_atomic load_run",
    "ftscale/schema/files.py": "upgrade read_json load_model load_cell parse",
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
    "tests/test_intervals.py",
    "tests/test_capacity.py",
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
ROOT = Path(__file__).resolve().parent.parent
MUTANTS_DIR = ROOT / "tests" / "mutants"
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
    root = ROOT
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


def run(session: nox.Session) -> None:
    """``nox -s mutants``: hand-written mutants, then mutmut's (survivors.md), in its session's venv.

    ``-- --hand [NAME ...]`` runs the hand-written mutants of tests/mutants/hand/ only (or those
    named); ``-- --report`` rewrites survivors.md from the last mutmut run (after editing
    equivalent.toml). Other arguments go to ``mutmut run``.
    """
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
    python = str(Path(str(session.bin)) / "python")
    options = (
        "-x",
        "-q",
        "--no-header",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:xdist",
        "--hypothesis-profile=mutants",
    )
    command = [python, "-m", "pytest", *options, *tests]
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
