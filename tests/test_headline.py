"""The headline preset and the in-process ceiling, the bench's side: thread counts, the estimate's
arithmetic, the in-process pass of an HTTP run, what a workload needs that an environment lacks,
and what a bundle made for the headline carries (the shares themselves: test_ceiling_share.py)."""

from __future__ import annotations

import argparse
import struct
from pathlib import Path
from typing import Any

import pytest

from ftscale import workloads
from ftscale.bench.bundle import make as bundle
from ftscale.bench.http import ceiling, memory
from ftscale.bench.http import run as http
from ftscale.bench.http.cells import Group
from ftscale.bench.http.estimate import (
    CALIBRATION_LOAD_S,
    REPETITION_OVERHEAD_S,
    REPORT_S,
    TOPOLOGY_OVERHEAD_S,
    ZYGOTE_S,
    estimate_seconds,
)
from ftscale.bench.http.matrix import quarter_threads
from ftscale.bench.http.options import PRESETS
from ftscale.bench.http.plan import HttpPlan, plan_job
from ftscale.vocab import Flag
from tests import synthetic

# --- which thread counts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cpus", "expected"),
    [(16, [1, 4, 8, 16]), (12, [1, 3, 6, 12]), (6, [1, 3, 6]), (2, [1, 2]), (1, [1])],
)
def test_the_headline_serves_at_1_a_quarter_a_half_and_all_of_the_server_cpus(
    cpus: int, expected: list[int]
) -> None:
    counts = quarter_threads(cpus)
    assert counts == expected
    assert counts[-1] == cpus  # N is explored, so the rule can choose it


def test_the_in_process_pass_covers_every_served_count_and_with_the_curve_the_powers_of_two() -> None:
    assert ceiling.thread_counts([1, 3, 6, 12], 12, curve=True) == (1, 2, 3, 4, 6, 8, 12)
    assert ceiling.thread_counts([1, 3, 6, 12], 12, curve=False) == (1, 3, 6, 12)


def plan(tmp_path: Path, *argv: str) -> HttpPlan:
    args = ["--results-dir", str(tmp_path), "--generator", "python", *argv]
    return plan_job(http.build_parser().parse_args(args), args)


# --- the estimate --------------------------------------------------------------------------------------


def per_rep(job: HttpPlan) -> float:
    return REPETITION_OVERHEAD_S["fork"] + job.settings.warmup_s + job.settings.duration_s


def test_the_headline_estimate_for_a_16_cpu_host_adds_up_part_by_part(tmp_path: Path) -> None:
    job = plan(tmp_path, "--preset", "headline", "--dry-run", "--cpus", "16")
    # 16 CPUs, one per core: 4 for the generator, 12 for the server
    assert job.server_cpus == list(range(4, 16)) and job.client_cpus == [0, 1, 2, 3]
    assert job.matrix.threads == [1, 3, 6, 12]
    assert job.ceiling_threads == (1, 2, 3, 4, 6, 8, 12)
    parts = estimate_seconds(job)
    designs = len(PRESETS["headline"].free_threaded_designs) + len(PRESETS["headline"].gil_designs)
    workloads_, builds = 2, 2
    assert parts["in-process"] == pytest.approx(workloads_ * builds * 7 * ceiling.CELL_S)
    stock = sum(TOPOLOGY_OVERHEAD_S.get(t, 0.0) for _, t in PRESETS["headline"].gil_designs)
    assert parts["sweep"] == pytest.approx(workloads_ * 4 * (designs * 2 * per_rep(job) + 2 * stock))
    gil = PRESETS["headline"].gil_designs
    assert parts["confirmation"] == pytest.approx(workloads_ * 10 * (2 * per_rep(job) + stock / len(gil)))
    loads = 2  # nbody at 2 x 12 connections, rag_gateway at 4 x 12
    assert parts["start"] == pytest.approx(builds * ZYGOTE_S + loads * CALIBRATION_LOAD_S)
    assert parts["report"] == REPORT_S
    assert sum(parts.values()) <= 8 * 60  # the preset's promise: one short window


def test_the_estimate_for_this_size_of_host_is_planned_on_that_host_not_this_one(tmp_path: Path) -> None:
    two = plan(tmp_path, "--preset", "headline", "--dry-run", "--cpus", "2")
    assert two.server_cpus == [1] and two.matrix.threads == [1] and two.ceiling_threads == (1,)
    parts = estimate_seconds(two)
    assert parts["in-process"] == pytest.approx(2 * 2 * 1 * ceiling.CELL_S)
    stock = sum(TOPOLOGY_OVERHEAD_S.get(t, 0.0) for _, t in PRESETS["headline"].gil_designs)
    assert parts["sweep"] == pytest.approx(2 * 1 * (6 * 2 * per_rep(two) + 2 * stock))
    sixteen = plan(tmp_path, "--preset", "headline", "--dry-run", "--cpus", "16")
    assert sum(estimate_seconds(sixteen).values()) > sum(parts.values())


def test_a_host_size_goes_with_the_dry_run_only(tmp_path: Path) -> None:
    with pytest.raises(http.UsageError, match="--dry-run only"):
        plan(tmp_path, "--preset", "headline", "--cpus", "16")
    with pytest.raises(http.UsageError, match="CPU count of 2 or more"):
        plan(tmp_path, "--dry-run", "--cpus", "1")


def test_every_http_run_has_an_in_process_pass_unless_it_cannot_or_is_told_not_to(tmp_path: Path) -> None:
    quick = plan(tmp_path, "--dry-run", "--cpus", "4")  # 1 generator CPU, 3 server CPUs
    assert quick.matrix.threads == [1, 2, 3] and quick.ceiling_threads == (1, 2, 3)
    assert plan(tmp_path, "--dry-run", "--no-ceiling").ceiling_threads == ()
    remote = plan(tmp_path, "--target", "http://127.0.0.1:9/", "--workloads", "nbody")
    assert remote.ceiling_threads == ()


# --- the pass inside an HTTP run ---------------------------------------------------------------------


def test_the_pass_measures_every_build_at_every_count_with_the_same_calls_per_round() -> None:
    (group,) = ceiling.groups(["nbody"], ["3.14t", "3.14"], {"nbody": 300}, (1, 2, 4))
    assert [(p.build, p.threads) for p in group.plans] == [
        ("3.14t", 1), ("3.14", 1), ("3.14t", 2), ("3.14", 2), ("3.14t", 4), ("3.14", 4)
    ]  # fmt: skip
    assert {p.calls for p in group.plans} == {4} and {p.scaling for p in group.plans} == {"strong"}
    assert {p.size for p in group.plans} == {300}  # the HTTP run's size, not the micro default
    assert all(k.endswith("__ceiling") for k in group.cell_keys)
    assert ceiling.groups(["nbody"], ["3.14"], {}, ()) == []


def test_a_design_at_n_threads_and_its_ceiling_run_on_the_same_first_n_server_cpus() -> None:
    assert ceiling.cpus_for([4, 5, 6, 7], 2) == [4, 5]
    assert ceiling.cpus_for([4, 5, 6, 7], 8) == [4, 5, 6, 7]
    cell = synthetic.micro_cell(4, [100.0], flags=[str(Flag.OVERSUBSCRIBED)])
    assert ceiling.as_ceiling(cell, [4, 5, 6, 7]).flags == []  # 4 threads on 4 CPUs: not oversubscribed
    moved = ceiling.as_ceiling(synthetic.micro_cell(4, [100.0]), [4, 5])
    assert moved.flags == [str(Flag.OVERSUBSCRIBED)] and moved.stage == "ceiling" and moved.cpus == [4, 5]


def test_each_workloads_pass_comes_before_its_first_group() -> None:
    groups: list[Any] = [Group("a", 1, ()), Group("a", 2, ()), Group("b", 1, ())]
    passes = [ceiling.CeilingGroup(w, ()) for w in ("a", "b")]
    out = http.with_ceilings(groups, passes)
    assert [(type(g).__name__, g.workload) for g in out] == [
        ("CeilingGroup", "a"), ("Group", "a"), ("Group", "a"), ("CeilingGroup", "b"), ("Group", "b")
    ]  # fmt: skip


# --- what an environment lacks -------------------------------------------------------------------------


def test_a_workload_needing_what_a_build_lacks_is_refused_in_one_line() -> None:
    lacking = {"the 3.14 environment": {"numpy": "not carried: the wheelhouse has no wheel of it"}}
    problem = workloads.unmet(["nbody", "numpy_small"], lacking)
    assert problem is not None and "\n" not in problem
    assert problem.startswith("workload numpy_small needs numpy, which the 3.14 environment does not have")
    assert workloads.unmet(["nbody", "rag_gateway"], lacking) is None  # they need nothing it lacks
    assert workloads.unmet(["numpy_small"], {"the 3.14 environment": {}}) is None


def test_only_the_numpy_workloads_need_numpy() -> None:
    assert workloads.optional_packages() == ("numpy",)
    assert sorted(w.name for w in workloads.REGISTRY.values() if w.needs) == ["numpy_matmul", "numpy_small"]


def test_resident_pages_are_read_from_the_present_bit_and_the_frame_bits() -> None:
    present, swapped = 1 << 63, 1 << 62
    entries = [present | 7, 0, swapped | 9, present | (1 << 54) | 3, present | 7]
    data = struct.pack(f"<{len(entries)}Q", *entries)
    assert memory.resident_frames(data) == [7, (1 << 54) | 3, 7]
    assert memory.resident_frames(struct.pack("<2Q", 0, swapped)) == []


# --- a bundle for the headline -----------------------------------------------------------------------


def bundle_args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    bundle.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_a_bundle_for_the_headline_carries_its_builds_and_the_default_server_alone() -> None:
    made = bundle.contents_of(bundle_args("--for", "headline"))
    assert sorted(made.builds) == ["3.14", "3.14t"] and made.servers == ("uvicorn-h11",)
    assert made.numpy is False and made.optional_packages() == set()
    assert "--preset headline" in bundle.host_command(made)
    same = bundle.contents_of(bundle_args("--builds", "3.14,3.14t", "--servers", "uvicorn", "--workloads",
                                          "nbody,rag_gateway"))  # fmt: skip
    assert same.optional_packages() == set()
    fast = bundle.contents_of(bundle_args("--for", "headline", "--servers", "uvicorn-fast"))
    assert fast.optional_packages() == {"uvloop", "httptools"}
    with_numpy = bundle.contents_of(bundle_args("--for", "headline", "--workloads", "nbody,numpy_small"))
    assert with_numpy.optional_packages() == {"numpy"}
    everything = bundle.contents_of(bundle_args())
    assert everything.numpy and {"granian", "hypercorn"} <= everything.optional_packages()
    with pytest.raises(bundle.UsageError, match="unknown server"):
        bundle.contents_of(bundle_args("--servers", "nginx"))
