"""The workload registry: every workload runs, is deterministic, rejects bad sizes, and is thread-safe."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

import pytest
from ftscale.workloads import contention, registry

from ftscale import workloads
from tests.conftest import requires_free_threading

ALL = list(workloads.REGISTRY.values())
IDS = [w.name for w in ALL]


def test_registry_covers_every_class_and_the_required_kernels() -> None:
    classes = {w.workload_class for w in ALL}
    # every class but "app", which stands for a user's own app (ftscale app), not a workload
    assert classes == set(workloads.WorkloadClass) - {workloads.WorkloadClass.APP}
    assert len(list(workloads.by_class(workloads.WorkloadClass.PURE_PYTHON))) >= 2
    for name in (
        "json_roundtrip",
        "regex_parse",
        "sha256_hash",
        "numpy_matmul",
        "numpy_small",
        "pydantic_validate",
        "rag_gateway",
        "shared_counter",
    ):
        assert name in workloads.REGISTRY


@pytest.mark.parametrize("workload", ALL, ids=IDS)
def test_smoke_size_is_deterministic(workload: workloads.Workload) -> None:
    first = workload.compute(workload.smoke_size)
    assert isinstance(first, int)
    assert workload.compute(workload.smoke_size) == first
    assert workload.description and workload.size_meaning


@pytest.mark.parametrize("workload", ALL, ids=IDS)
def test_size_changes_the_checksum(workload: workloads.Workload) -> None:
    assert workload.compute(workload.smoke_size) != workload.compute(workload.smoke_size + 1)


@pytest.mark.parametrize("bad", [0, -1, 10**12])
def test_out_of_range_size_names_the_bound(bad: int) -> None:
    w = workloads.get("nbody")
    with pytest.raises(workloads.InvalidSize, match=rf"between {w.min_size} and {w.max_size}.*got {bad}"):
        w.check_size(bad)


@pytest.mark.parametrize("bad", ["10", 1.5, True, None])
def test_non_integer_size_is_rejected(bad: object) -> None:
    with pytest.raises(workloads.InvalidSize, match="must be an integer"):
        workloads.get("nbody").check_size(bad)


def test_unknown_workload_lists_the_known_ones() -> None:
    with pytest.raises(workloads.UnknownWorkload) as info:
        workloads.get("fibonacci")
    message = str(info.value)
    assert "fibonacci" in message
    assert all(name in message for name in workloads.REGISTRY)
    with pytest.raises(workloads.UnknownWorkload):
        workloads.select("nbody,nope")
    assert [w.name for w in workloads.select("nbody, sha256_hash")] == ["nbody", "sha256_hash"]
    assert workloads.select(None) == ALL


def test_register_refuses_duplicates_and_inconsistent_sizes() -> None:
    kwargs: dict[str, object] = dict(
        workload_class=workloads.WorkloadClass.PURE_PYTHON,
        size_meaning="n",
        default_size=10,
        max_size=100,
        smoke_size=1,
    )
    with pytest.raises(ValueError, match="registered twice"):
        registry.register(**kwargs)(workloads.get("nbody").compute)  # type: ignore[arg-type]
    kwargs["smoke_size"] = 1000

    def odd(n: int) -> int:
        return n

    with pytest.raises(ValueError, match="min <= smoke <= default <= max"):
        registry.register(**kwargs)(odd)  # type: ignore[arg-type]
    assert "odd" not in workloads.REGISTRY


def _fake_timed_workload(seconds_per_unit: float) -> tuple[workloads.Workload, Callable[[], float]]:
    now = [0.0]

    def compute(size: int) -> int:
        now[0] += size * seconds_per_unit
        return size

    w = workloads.Workload(
        name="fake",
        compute=compute,
        workload_class=workloads.WorkloadClass.PURE_PYTHON,
        size_meaning="units",
        default_size=10,
        min_size=1,
        max_size=10_000,
        smoke_size=1,
        description="fake",
    )
    return w, lambda: now[0]


def test_calibrate_finds_the_size_for_a_target_duration() -> None:
    w, clock = _fake_timed_workload(1e-4)  # 0.1 ms per unit
    assert workloads.calibrate(w, 0.010, clock=clock) == 100
    assert workloads.calibrate(w, 0.001, clock=clock) == 10
    assert workloads.calibrate(w, 100.0, clock=clock) == w.max_size  # clamped to the bound
    with pytest.raises(ValueError, match="positive"):
        workloads.calibrate(w, 0, clock=clock)


def _concurrently(func: Callable[[], int], threads: int) -> list[int]:
    barrier = threading.Barrier(threads)
    out: list[int] = [0] * threads
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            barrier.wait()
            out[i] = func()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    pool = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors
    return out


@requires_free_threading
@pytest.mark.parametrize("workload", ALL, ids=IDS)
def test_concurrent_checksums_match_sequential(workload: workloads.Workload) -> None:
    size = max(workload.smoke_size, workload.default_size // 20)
    expected = workload.compute(size)
    for _ in range(3):
        assert _concurrently(lambda: workload.compute(size), 8) == [expected] * 8


@requires_free_threading
def test_shared_counter_loses_no_update_under_contention() -> None:
    before = contention.table_total()
    _concurrently(lambda: contention.shared_counter(5_000), 8)
    assert contention.table_total() - before == 8 * 5_000


@pytest.mark.parametrize("workload", ALL, ids=IDS)
def test_sizes_have_a_cpu_budget_and_an_older_larger_bound(workload: workloads.Workload) -> None:
    assert workload.large_max_size is not None
    assert workload.default_size <= workload.max_size <= workload.large_max_size
    assert workload.size_limit() == workload.max_size
    assert workload.size_limit(allow_large=True) == workload.large_max_size
    assert workload.check_size(workload.max_size) == workload.max_size
    if workload.large_max_size > workload.max_size:
        with pytest.raises(workloads.InvalidSize, match="larger needs ftscale serve --allow-large-sizes"):
            workload.check_size(workload.max_size + 1)
        assert workload.check_size(workload.max_size + 1, allow_large=True) == workload.max_size + 1
    meaning = re.escape(workload.size_meaning)
    bound = rf"between {workload.min_size} and {workload.large_max_size} \({meaning}\); got"
    with pytest.raises(workloads.InvalidSize, match=bound):
        workload.check_size(workload.large_max_size + 1, allow_large=True)


def test_registration_refuses_a_large_bound_below_the_budget() -> None:
    with pytest.raises(ValueError, match="large max"):
        registry.register(
            workload_class=workloads.WorkloadClass.PURE_PYTHON,
            size_meaning="n",
            default_size=2,
            max_size=10,
            large_max_size=5,
            smoke_size=1,
        )(lambda n: n)
