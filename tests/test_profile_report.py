"""The report's profile section: stacked bars, what limits scaling, links to collapsed stacks."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")  # the report extra

from ftscale import schema
from ftscale.bench import results
from ftscale.bench.report import profiles as report_profiles
from ftscale.bench.report import run_report
from ftscale.bench.report.document import Figure, Links
from ftscale.bench.report.markdown import render as render_markdown
from ftscale.bench.report.model import build_model
from tests.test_profile import profile

# --- the report ------------------------------------------------------------------------------------


def _run_with_profiles(tmp_path: Path, profiled: bool = True) -> Path:
    rundir = results.RunDir(tmp_path / "r")
    git = schema.Git(commit=None, dirty=None)
    rundir.write_meta(
        schema.RunMeta(run_id="r", kind="micro", created="now", host=results.collect_host(), git=git)
    )
    for build, ft in (("3.14", False), ("3.14t", True)):
        rundir.add_build(
            schema.Build(
                build=build,
                version="3.14.7",
                executable="/x",
                py_gil_disabled=ft,
                gil_enabled=not ft,
                config_args="",
            )
        )
    shapes = {
        ("3.14", 1): ({"python": 1000}, 0), ("3.14", 2): ({"python": 1000, "gil": 30}, 990),
        ("3.14t", 1): ({"python": 1000}, 10), ("3.14t", 2): ({"python": 1000, "lock-wait": 300}, 40),
    }  # fmt: skip
    for (build, n), (counts, idle) in shapes.items():
        cid = results.cell_id(build, "nbody", n, scaling="strong")
        prof = profile(counts, idle, 1000 * n, gil=build == "3.14").model_copy(
            update={"folded": f"profiles/{cid}.folded"}
        )
        rundir.write_cell(
            schema.MicroCell(
                run_id="r", cell_id=cid, build=build, workload="nbody", workload_class="pure-python",
                size=10, threads=n, scaling="strong", status="ok", unit="calls/s", samples=[100.0 * n] * 3,
                started="a", finished="b", profile=prof if profiled else None,
            )
        )  # fmt: skip
    return rundir.path


def test_the_report_shows_the_buckets_and_names_what_limits_scaling(tmp_path: Path) -> None:
    model = build_model(results.load_run(_run_with_profiles(tmp_path)))
    blocks = report_profiles.section(model)
    figures = [b for b in blocks if isinstance(b, Figure)]
    assert [f.name for f in figures] == ["nbody-10-profile.png"] and figures[0].png.startswith(b"\x89PNG")
    (links,) = [b for b in blocks if isinstance(b, Links)]
    assert ("3.14t · strong @2", "profiles/3.14t__nbody__-__-__strong__t002.folded") in links.items
    sentence = report_profiles.verdict_sentences(model)["nbody"]
    assert "3.14 · strong, idle grows most from 1 to 2 threads" in sentence
    assert "on this GIL build its threads waited for the GIL" in sentence
    assert (
        "3.14t · strong, lock-wait grows most" in sentence
        and "PyMutex_Lock <- _Py_brc_merge_refcounts" in sentence
    )
    text = render_markdown(run_report.build(model))
    assert "## What limits scaling: CPU profiles" in text
    assert "[3.14 · strong @1](profiles/3.14__nbody__-__-__strong__t001.folded)" in text
    assert text.index("what limits scaling (CPU profiles)") < text.index("## Scaling by workload")


def test_a_run_without_profiles_has_no_profile_section(tmp_path: Path) -> None:
    model = build_model(results.load_run(_run_with_profiles(tmp_path, profiled=False)))
    assert report_profiles.section(model) == [] and report_profiles.verdict_blocks(model) == []
    assert "CPU profiles" not in render_markdown(run_report.build(model))


@pytest.mark.parametrize(
    ("mode", "topology", "gil_named"),
    [
        ("threadpool", "single", True),
        ("inline", "loops", True),
        ("inline", "workers", False),
        ("inline", "gunicorn", False),
        ("inline", "uvicorn-workers", False),
        ("process", "single", False),
        (None, None, True),  # a micro run: the threads of one worker process
    ],
)
def test_the_gil_is_named_only_where_the_threads_share_one(
    tmp_path: Path, mode: str | None, topology: str | None, gil_named: bool
) -> None:
    """Worker processes (ftscale's own or a stock deployment's) and process-pool children each have
    their own GIL: their idle time is not a wait for each other's."""
    model = build_model(results.load_run(_run_with_profiles(tmp_path)))
    as_design = tuple(
        dataclasses.replace(s, key=dataclasses.replace(s.key, mode=mode, topology=topology))
        for s in model.series
    )
    model = dataclasses.replace(model, series=as_design)
    sentence = report_profiles.verdict_sentences(model)["nbody"]
    assert "idle grows most from 1 to 2 threads" in sentence
    assert ("waited for the GIL" in sentence) is gil_named
