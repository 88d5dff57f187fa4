"""A cell is judged once, when it is made, with everything the judging needs; reports read the flags.

Each rule is stated as a reader would and checked on both sides: the CPU context's flags (shared
CPUs, more threads than server CPUs) on the cell that has them and not on the one that does not;
noise judged on closed loops only; the micro judge's GIL and oversubscription rules on the side
they belong to; and the report reading a judged run's flags as written while upgrading a run
written before cells were judged once (the rules it used to apply at read time).
"""

from __future__ import annotations

import pytest

pytest.importorskip("scipy")  # the report extra (not installed on 3.14t)

from ftscale.bench.http import cell as sweep
from ftscale.bench.http.cells import CellSpec
from ftscale.bench.http.judge import CpuContext, judge_http
from ftscale.bench.http.session import CellProgress
from ftscale.bench.micro.judge import JUDGED_AT_MEASUREMENT, judge_micro
from ftscale.bench.report.model import build_model
from ftscale.bench.report.upgrade import flags_of
from ftscale.vocab import Flag
from tests import synthetic

STEADY = [100.0, 101.0, 99.0]
NOISY = [100.0, 130.0, 70.0]  # CV 0.3


def http(threads: int, samples: list[float], **fields: object) -> tuple[CellSpec, object]:
    spec = CellSpec("3.14t", "nbody", "pure-python", 100, "threadpool", "single", threads, 4)
    cell = synthetic.http_cell(threads, [synthetic.http_repetition(x) for x in samples])
    return spec, cell.model_copy(update=fields)


@pytest.mark.parametrize("shared", [True, False], ids=["shared", "apart"])
def test_shared_cpus_flag_exactly_the_cells_of_a_run_whose_server_and_generator_share_cpus(
    shared: bool,
) -> None:
    spec, cell = http(1, STEADY)
    flags = judge_http(spec, cell, CpuContext(server_cpus=4, shared=shared))  # type: ignore[arg-type]
    assert (str(Flag.SHARED_CPUS) in flags) is shared


@pytest.mark.parametrize(("threads", "flagged"), [(4, False), (5, True)], ids=["at-cpus", "over-cpus"])
def test_more_threads_than_server_cpus_flags_the_cell_and_as_many_does_not(
    threads: int, flagged: bool
) -> None:
    spec, cell = http(threads, STEADY)
    flags = judge_http(spec, cell, CpuContext(server_cpus=4))  # type: ignore[arg-type]
    assert (str(Flag.OVERSUBSCRIBED) in flags) is flagged


@pytest.mark.parametrize(("load", "flagged"), [("closed", True), ("open", False)])
def test_noise_is_judged_on_closed_loops_only(load: str, flagged: bool) -> None:
    spec, cell = http(1, NOISY, load=load)
    assert (str(Flag.HIGH_CV) in judge_http(spec, cell, CpuContext())) is flagged  # type: ignore[arg-type]
    _, steady = http(1, STEADY, load=load)
    assert str(Flag.HIGH_CV) not in judge_http(spec, steady, CpuContext())  # type: ignore[arg-type]


@pytest.mark.parametrize(("free_threaded", "flagged"), [(True, True), (False, False)], ids=["ft", "gil"])
def test_micro_gil_on_flags_a_free_threaded_build_only(free_threaded: bool, flagged: bool) -> None:
    cell = synthetic.micro_cell(1, STEADY, gil_enabled=True)
    assert (str(Flag.GIL_ENABLED) in judge_micro(cell, free_threaded, 4)) is flagged
    off = synthetic.micro_cell(1, STEADY, gil_enabled=False)
    assert str(Flag.GIL_ENABLED) not in judge_micro(off, free_threaded, 4)


@pytest.mark.parametrize(("cores", "flagged"), [(2, False), (1, True)], ids=["at-cores", "over-cores"])
def test_micro_threads_over_usable_cores_flag_the_cell(cores: int, flagged: bool) -> None:
    cell = synthetic.micro_cell(2, STEADY)
    assert (str(Flag.OVERSUBSCRIBED) in judge_micro(cell, True, cores)) is flagged


def test_a_cell_made_by_the_group_loop_carries_its_cpu_flags() -> None:
    """The flags are given when the cell is made (sweep.make_cell), not patched on afterwards."""
    spec = CellSpec("3.14t", "nbody", "pure-python", 100, "threadpool", "single", 3, 4)
    out = CellProgress(spec, synthetic.STAMP, reps=[synthetic.http_repetition(x) for x in STEADY])
    made = sweep.make_cell(out, "run", CpuContext(server_cpus=2, shared=True))
    assert {str(Flag.SHARED_CPUS), str(Flag.OVERSUBSCRIBED)} <= set(made.flags)
    alone = sweep.make_cell(out, "run", CpuContext(server_cpus=3, shared=False))
    assert not {str(Flag.SHARED_CPUS), str(Flag.OVERSUBSCRIBED)} & set(alone.flags)


@pytest.mark.parametrize("judged", [True, False], ids=["judged-run", "older-run"])
def test_the_report_reads_a_judged_runs_flags_and_upgrades_only_an_older_run(judged: bool) -> None:
    """A noisy cell without the flag: a judged run's flags are the bench's word (no second judge);
    a run written before judging once gets the read-time rules applied, as it always rendered."""
    cell = synthetic.micro_cell(1, NOISY, gil_enabled=True)
    run = synthetic.run([cell], config={"judge": JUDGED_AT_MEASUREMENT} if judged else {})
    expected = set() if judged else {str(Flag.GIL_ENABLED), str(Flag.HIGH_CV)}
    assert set(flags_of(cell, run.meta)) == expected
    point = build_model(run).series[0].points[0]
    assert set(point.flags) == expected
