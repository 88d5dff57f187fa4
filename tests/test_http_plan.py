"""The HTTP bench's plan reads the vocabulary: designs as typed values, generators by what they need.

Each rule on both sides: ``auto`` takes wrk exactly where its program is on PATH, a generator named
but not installed is bad input naming the program, and designs parsed from ``--designs`` are
:class:`~ftscale.bench.http.options.Design` values whose label is how they are written.
"""

from __future__ import annotations

import pytest

from ftscale.bench.http import plan
from ftscale.bench.http.options import Design, parse_designs
from ftscale.errors import UsageError
from ftscale.vocab import GENERATORS, Generator


@pytest.mark.parametrize("installed", [True, False], ids=["wrk-installed", "wrk-missing"])
def test_auto_takes_wrk_exactly_where_its_program_is_on_path(
    monkeypatch: pytest.MonkeyPatch, installed: bool
) -> None:
    wanted = GENERATORS[Generator.WRK].executable
    monkeypatch.setattr(
        plan.shutil, "which", lambda name: f"/usr/bin/{name}" if installed and name == wanted else None
    )
    assert plan.choose_generator("auto") is (Generator.WRK if installed else Generator.PYTHON)


def test_a_named_generator_that_is_not_installed_is_bad_input_naming_its_program(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(plan.shutil, "which", lambda name: None)
    with pytest.raises(UsageError, match="--generator wrk: wrk is not installed"):
        plan.choose_generator("wrk")
    assert plan.choose_generator("python") is Generator.PYTHON  # needs no program


def test_designs_are_typed_values_with_their_label() -> None:
    ft, gil = parse_designs("threadpool/single,gil:inline/workers")
    assert ft == (Design("threadpool", "single"),)
    assert gil == (Design("threadpool", "single"), Design("inline", "workers"))
    assert [d.label for d in gil] == ["threadpool/single", "inline/workers"]
    assert all(isinstance(d, Design) for d in (*ft, *gil))
