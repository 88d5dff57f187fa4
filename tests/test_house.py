"""The shape of the tree: small modules, one of each shared helper, the top level the design card gives.

The import layers are import-linter contracts (``pyproject.toml``), checked by ``nox -s lint``;
what is checked here needs nothing but the standard library and the files.
"""

from __future__ import annotations

import ast
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
MAX_LINES = 450
# Where the project's own code lives (tests/ and the committed results are not modules to split).
CODE = ("ftscale", "bench", "server", "workloads", "tools", "examples")
# The design card's top level, and what every checkout has beside it.
DESIGN_CARD = {"server", "workloads", "bench", "results", "noxfile.py", "pyproject.toml"}
TOP_LEVEL = DESIGN_CARD | {"ftscale", "tests", "docs", "examples", "tools", "README.md", ".ci", ".gitignore"}


def _modules() -> Iterator[Path]:
    yield REPO / "noxfile.py"
    for folder in CODE:
        yield from sorted((REPO / folder).rglob("*.py"))


def _relative(path: Path) -> str:
    return str(path.relative_to(REPO))


def test_there_are_modules_to_check() -> None:
    assert len(list(_modules())) > 100


def test_no_module_outside_tests_is_over_450_lines() -> None:
    sizes = {_relative(p): len(p.read_text().splitlines()) for p in _modules()}
    over = {path: lines for path, lines in sorted(sizes.items()) if lines > MAX_LINES}
    assert not over, f"modules over {MAX_LINES} lines (split them at their seams): " + ", ".join(
        f"{path} ({lines})" for path, lines in over.items()
    )


def _definitions(name: str) -> list[str]:
    """Where a function or class ``name`` is defined at a module's top level or in a class."""
    found = []
    for path in _modules():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and node.name == name:
                found.append(f"{_relative(path)}:{node.lineno}")
    return found


def test_one_free_port() -> None:
    places = _definitions("free_port")
    assert len(places) == 1, (
        f"free_port is defined {len(places)} times (one, in ftscale/server/sockets.py): {places}"
    )


def _catches(handler: ast.ExceptHandler) -> set[str]:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return {k.id if isinstance(k, ast.Name) else ast.unparse(k) for k in kinds if k is not None}


def test_one_error_guard() -> None:
    """Only ftscale.errors.guard turns both UsageError and SetupError into exit statuses."""
    guards = []
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Try):
                caught = set().union(*(_catches(h) for h in node.handlers)) if node.handlers else set()
                if {"UsageError", "SetupError"} <= caught:
                    guards.append(f"{_relative(path)}:{node.lineno}")
    assert len(guards) == 1 and guards[0].startswith("ftscale/errors.py:"), guards


def test_no_fmt_skip_outside_tests() -> None:
    """Records are built with keyword arguments, laid out by the formatter: no ``# fmt: skip`` crutch."""
    marker = "# fmt: skip"
    skipped = [
        f"{_relative(p)}:{n}"
        for p in _modules()
        for n, line in enumerate(p.read_text().splitlines(), 1)
        if line.rstrip().endswith(marker)
    ]
    assert not skipped, f"{len(skipped)} '{marker}' lines: " + ", ".join(skipped)


def _tracked_top_level() -> set[str]:
    try:
        listed = subprocess.run(
            ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip("not a git checkout: no tracked files to list")
    return {line.split("/", 1)[0] for line in listed.splitlines() if line}


def test_the_top_level_is_the_design_cards() -> None:
    extra = _tracked_top_level() - TOP_LEVEL
    assert not extra, f"tracked at the top level beyond the design card's folders: {sorted(extra)}"


def test_every_hand_written_mutant_still_plants_its_mistake() -> None:
    """A mutant whose text no longer occurs exactly once in its module plants nothing: it would be
    reported as not judged by ``nox -s mutants`` only when someone runs it, so it is checked here."""
    import tomllib

    stale = []
    for path in sorted((REPO / "tests" / "mutants" / "hand").glob("*.toml")):
        spec = tomllib.loads(path.read_text())
        target = REPO / str(spec["file"])
        count = target.read_text().count(str(spec["old"]).strip("\n")) if target.is_file() else 0
        files = {str(t).split("::")[0] for t in spec["tests"]}
        if count != 1 or not all((REPO / f).is_file() for f in files):
            stale.append(f"{path.name}: {spec['file']} holds its text {count} times; tests {sorted(files)}")
    assert not stale, "\n".join(stale)


def _defined(tree: ast.Module) -> set[str]:
    """Top-level functions and classes of a module, and ``Class.method`` for each method."""
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            names.update(f"{node.name}.{f.name}" for f in node.body if isinstance(f, ast.FunctionDef))
    return names


def test_every_equivalent_mutant_names_a_function_under_mutation() -> None:
    """An explanation in equivalent.toml is matched to a survivor by its function: one naming a
    function that moved (or went) explains nothing, and the survivor it was for fails the session."""
    import tomllib

    tree = ast.parse((REPO / "tools" / "mutants.py").read_text())
    (mutated,) = [
        ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", None) == "MUTATED"
    ]
    installed = {"ftscale.bench.": "bench/", "ftscale.server.": "server/", "ftscale.workloads.": "workloads/"}
    stale = []
    for entry in tomllib.loads((REPO / "tests" / "mutants" / "equivalent.toml").read_text())["equivalent"]:
        dotted = str(entry["function"])
        prefix = next((p for p in installed if dotted.startswith(p)), "ftscale.")
        rest = dotted.removeprefix(prefix).split(".")
        # the module is the longest run of the dotted name that is a file; the rest is the function
        found = [
            (i, REPO / f"{installed.get(prefix, 'ftscale/')}{'/'.join(rest[:i])}.py")
            for i in range(len(rest), 0, -1)
        ]
        module = next(((i, path) for i, path in found if path.is_file()), None)
        if module is None:
            stale.append(f"{dotted}: no such module")
            continue
        i, path = module
        function, relative = ".".join(rest[i:]), _relative(path)
        covered = mutated.get(relative, "").split()
        if function not in _defined(ast.parse(path.read_text())):
            stale.append(f"{dotted}: {relative} defines no {function}")
        elif "*" not in covered and function not in covered and f"{function.split('.')[0]}.*" not in covered:
            stale.append(f"{dotted}: not in MUTATED (tools/mutants.py)")
    assert not stale, "\n".join(stale)
