"""The workload registry: every workload runs, is deterministic, rejects bad sizes, and is thread-safe."""

from __future__ import annotations

import contextlib
import json
import random
import re
import threading
import zlib
from collections.abc import Callable
from pathlib import Path

import pytest

from ftscale import workloads
from ftscale.workloads import contention, orm, registry, streaming
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
        "orm_orders",
        "stream_tokens",
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


def test_nbody_uses_private_masses_and_nbody_shared_the_modules_own() -> None:
    """The two differ only in whether the mass objects are shared between threads."""
    from ftscale.workloads import pure_python

    module_masses = [m for _, _, m in pure_python._BODIES]
    private, shared = pure_python.private_masses(), pure_python.shared_masses()
    assert private == shared == module_masses
    assert all(p is not m for p, m in zip(private, module_masses, strict=True))
    assert all(s is m for s, m in zip(shared, module_masses, strict=True))
    assert workloads.get("nbody").compute(50) == workloads.get("nbody_shared").compute(50)


# -- the synchronous data layer (sqlite3 + ORM mapping + pydantic) --------------------------------


def test_orm_database_holds_the_seeded_rows() -> None:
    conn = orm.connection()
    counts = {
        table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("customers", "products", "orders", "order_lines")
    }
    assert counts == {
        "customers": orm.CUSTOMERS,
        "products": orm.PRODUCTS,
        "orders": orm.ORDERS,
        "order_lines": orm.LINES,
    }
    assert sum(counts.values()) > 300_000
    plan = " ".join(str(row) for row in conn.execute("EXPLAIN QUERY PLAN " + orm.PAGE_QUERY, (1, 10)))
    assert "SCAN" not in plan.replace("SCAN l", ""), plan  # every join by primary key, no table scan


def test_orm_page_returns_size_lines_mapped_and_validated() -> None:
    for size in (1, 37, 500, orm.LINES):
        orders = orm.page(size)
        assert sum(len(o.lines) for o in orders) == size
        assert all(isinstance(o, orm.OrderOut) for o in orders)
    first, *_ = orm.page(3)
    assert first.customer.email.endswith("@example.com") and first.lines[0].product.sku.startswith("SKU-")


def test_orm_maps_each_row_once_through_an_identity_map() -> None:
    orders = orm.page(400)
    ids = [o.id for o in orders]
    assert len(ids) == len(set(ids)) and ids == sorted(ids)  # one model per order, in key order
    lines = [line.id for o in orders for line in o.lines]
    assert lines == list(range(lines[0], lines[0] + 400))  # one page, keyset-paginated


def test_orm_gives_each_thread_its_own_connection() -> None:
    mine = orm.connection()
    assert orm.connection() is mine  # kept for the thread's life
    seen: list[object] = []  # the objects, not their ids: an id is reused once one is freed
    lock = threading.Lock()

    def other() -> int:
        conn = orm.connection()
        with lock:
            seen.append(conn)
        return orm.orm_orders(5)

    assert _concurrently(other, 4) == [orm.orm_orders(5)] * 4
    assert len({id(c) for c in seen}) == 4 and all(c is not mine for c in seen)


def test_orm_rebuilds_a_database_with_other_contents(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(orm, "CUSTOMERS", 40)
    monkeypatch.setattr(orm, "PRODUCTS", 10)
    monkeypatch.setattr(orm, "ORDERS", 60)
    tables = dict(orm._rows(random.Random(orm.SEED)))
    lines = len(tables["order_lines"])
    monkeypatch.setattr(orm, "LINES", lines)
    monkeypatch.setattr(orm, "DIGEST", orm.rows_digest(iter(tables.items())))
    monkeypatch.setattr(orm, "CONTENTS", "a smaller test database")
    path = tmp_path / "db.sqlite3"
    path.write_bytes(b"not a database")
    assert orm.database(path) == path
    with contextlib.closing(orm.sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT value FROM meta").fetchone() == ("a smaller test database",)
        assert conn.execute("SELECT count(*) FROM order_lines").fetchone() == (lines,)
    before = path.stat().st_mtime_ns
    orm.database(path)
    assert path.stat().st_mtime_ns == before  # the right contents: left alone
    assert not list(path.parent.glob("*.building"))


def test_orm_refuses_to_build_from_a_generator_that_draws_other_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(orm, "ORDERS", 7)  # the seeded draws change; DIGEST does not
    monkeypatch.setattr(orm, "CONTENTS", "changed without updating DIGEST")
    with pytest.raises(RuntimeError, match="must update DIGEST"):
        orm.database(tmp_path / "db.sqlite3")
    assert not (tmp_path / "db.sqlite3").exists() and not list(tmp_path.glob("*.building"))


# -- the streaming gateway ---------------------------------------------------------------------


def test_stream_tokens_compute_is_every_chunk_folded() -> None:
    workload = workloads.get("stream_tokens")
    assert workload.stream is not None and workload.stream.delay_s > 0
    assert [w.name for w in workloads.streamed()] == ["stream_tokens"]
    size = 5
    checksum = 0
    for index in range(size):
        checksum = zlib.crc32(workload.stream.chunk(size, index), checksum)
    assert workload.compute(size) == checksum


def test_each_chunk_is_one_server_sent_event_of_an_openai_style_chunk() -> None:
    size = 4
    events = [streaming.chunk(size, i) for i in range(size)]
    assert events == [streaming.chunk(size, i) for i in reversed(range(size))][::-1]  # order-free
    for index, event in enumerate(events):
        assert event.startswith(b"data: ") and event.endswith(b"\n\n") and event.count(b"\n\n") == 1
        body = json.loads(event[len(b"data: ") :])
        (choice,) = body["choices"]
        assert body["object"] == "chat.completion.chunk"
        assert len(choice["logprobs"]["content"]) == streaming.TOKENS_PER_CHUNK
        for token in choice["logprobs"]["content"]:
            assert len(token["top_logprobs"]) == streaming.TOP_LOGPROBS
            assert token["logprob"] == max(t["logprob"] for t in token["top_logprobs"]) <= 0
        assert choice["finish_reason"] == ("stop" if index == size - 1 else None)


def test_the_gateway_redacts_and_masks_before_sending() -> None:
    text = " mail bob.smith@example.com or 5551234, the password is damn secret."
    assert streaming._filtered(text) == " mail [redacted] or [redacted], the *** is *** ***"


def test_what_the_service_awaits_besides_the_compute_is_named() -> None:
    assert workloads.get("rag_gateway").waits() == "5 ms simulated I/O wait"
    assert workloads.get("stream_tokens").waits() == "10 ms upstream delay before each chunk"
    assert workloads.get("orm_orders").waits() is None  # its reads are real I/O, part of the call
    assert workloads.get("nbody").waits() is None
