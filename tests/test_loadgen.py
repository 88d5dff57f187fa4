"""The load generators' one table: every generator of the vocabulary has a runner and a command-line
choice, and ``--generator auto`` picks by what is installed, in the vocabulary's order."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ftscale.bench.http import loadgen
from ftscale.bench.http.loadgen import RUNNERS, LoadSpec, default_generator, installed
from ftscale.bench.http.loadgen.__main__ import main
from ftscale.schema import LoadResult
from ftscale.vocab import GENERATORS, Generator


def test_every_generator_of_the_vocabulary_has_a_runner() -> None:
    assert set(RUNNERS) == set(Generator) == set(GENERATORS)


@pytest.mark.parametrize("generator", list(Generator))
def test_the_command_line_offers_every_generator_of_the_vocabulary(
    generator: Generator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    applied: list[tuple[str, int]] = []

    def here(spec: LoadSpec, threads: int) -> LoadResult:
        applied.append((spec.path, threads))
        return LoadResult(
            generator=str(generator), requests=0, duration_s=1.0, throughput_rps=0.0, latency_ms={}
        )

    monkeypatch.setitem(RUNNERS, generator, replace(RUNNERS[generator], here=here))
    assert main([str(generator), "--port", "1", "--path", "/w", "--threads", "3"]) == 0
    assert applied == [("/w", 3)]
    assert LoadResult.model_validate_json(capsys.readouterr().out).generator == generator


def test_the_command_line_refuses_a_generator_outside_the_vocabulary() -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["ab", "--port", "1"])
    assert exit_.value.code == 2


@pytest.mark.parametrize("wrk_on_path", [True, False])
def test_auto_means_wrk_where_it_is_installed_else_the_built_in_one(
    wrk_on_path: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(loadgen.shutil, "which", lambda name: f"/usr/bin/{name}" if wrk_on_path else None)
    assert installed(Generator.WRK) is wrk_on_path
    assert installed(Generator.PYTHON)  # needs no program
    assert default_generator() == (Generator.WRK if wrk_on_path else Generator.PYTHON)
