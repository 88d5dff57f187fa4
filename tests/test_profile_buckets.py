"""The bucket table against real profiles: purpose-built cases recorded under perf on 3.14t and 3.14.

Each case in ``tests/profile_cases.py`` puts one mechanism to work; recorded the way the benches
record a cell, the bucket of that mechanism must be the largest, or the one whose cost per
iteration grows most from 1 to 2 threads. Skipped, with the reason, where perf cannot record
or a build is missing. A free-threaded 2-thread case needs its threads on two CPUs at once: when
other processes preempted them for much of the run (perf's context-switch records say so), it
is skipped rather than judged.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ftscale import schema
from ftscale.bench.env import provision
from ftscale.bench.profile import growth, perf, session
from ftscale.vocab import Bucket

# Recorded alone: a free-threaded case preempted by other processes is skipped, not judged.
pytestmark = pytest.mark.serial

CASES = Path(__file__).parent / "profile_cases.py"
SECONDS = 0.6  # per recording: about 600 samples per busy thread at 999 Hz
PREEMPTED = 0.15  # share of a 2-thread run's capacity spent preempted that voids a free-threaded run


def skip_if_preempted(prof: schema.Profile) -> None:
    """Skip when other processes kept a free-threaded run's threads from running side by side.

    On a free-threaded build the cases' threads are preempted only by other processes; on a GIL
    build, handing the GIL over preempts them too, so that is not a sign of other load there.
    """
    share = prof.cpu_wait / max(1, prof.samples + prof.idle + prof.cpu_wait)
    if not prof.gil and share > PREEMPTED:
        pytest.skip(f"the machine is busy: its 2 threads were preempted for {share:.0%} of the run")


@dataclass(frozen=True)
class Case:
    name: str
    build: str
    expected: Bucket
    threads: tuple[int, ...]  # one count: the expected bucket is the largest; two: it grows most

    @property
    def id(self) -> str:
        return f"{self.name}-{self.build}"


CHECKS = (
    Case("cycles", "3.14t", Bucket.GC, (2,)),
    Case("cycles", "3.14", Bucket.GC, (1,)),
    Case("syscalls", "3.14t", Bucket.KERNEL, (1,)),
    Case("event-loop", "3.14t", Bucket.HTTP, (1,)),
    Case("shared-items", "3.14t", Bucket.REFCOUNT, (2,)),
    Case("shared-attr", "3.14t", Bucket.LOCK_WAIT, (1, 2)),
    Case("one-lock", "3.14t", Bucket.LOCK_WAIT, (1, 2)),
    Case("pure", "3.14", Bucket.IDLE, (1, 2)),
)


@pytest.fixture(scope="module")
def profiler(tmp_path_factory: pytest.TempPathFactory) -> Iterator[session.Profiler]:
    found = perf.probe()
    if isinstance(found, perf.Unavailable):
        pytest.skip(found.reason)
    yield session.Profiler(found, tmp_path_factory.mktemp("profiles"))


def record(profiler: session.Profiler, case: Case, threads: int) -> schema.Profile:
    python = provision.linked(case.build)
    if python is None:
        pytest.skip(f"build {case.build} is not provisioned (nox -s interpreters -- {case.build})")
    prof = profiler.launch(
        f"{case.id}-t{threads}",
        [str(python), str(CASES), case.name, str(threads), str(SECONDS)],
        gil=not case.build.endswith("t"),
        capacity_cpus=threads,
        work=lambda out: float(json.loads(out)["iterations"]),
        work_unit="iteration",
    )
    assert prof.status == "ok", prof.error
    assert "no-python-frames" not in prof.flags  # the trampoline was on
    if case.expected is Bucket.KERNEL and perf.NO_KERNEL in prof.flags:
        pytest.skip("perf samples user space only here (perf_event_paranoid): no kernel bucket")
    return prof


def on_cpu_largest(prof: schema.Profile, exclude: tuple[str, ...] = ()) -> str:
    return max((b for b in prof.buckets if b not in exclude), key=lambda b: prof.buckets[b])


@pytest.mark.slow
@pytest.mark.parametrize("case", CHECKS, ids=lambda c: c.id)
def test_the_bucket_of_each_mechanism_shows_it(profiler: session.Profiler, case: Case) -> None:
    profiles = [record(profiler, case, n) for n in case.threads]
    if len(profiles) == 1:
        (prof,) = profiles
        # Python code surrounds every mechanism: the refcount case is judged among the rest
        exclude = ("python",) if case.expected is Bucket.REFCOUNT else ()
        assert on_cpu_largest(prof, exclude) == case.expected, prof.buckets
        return
    low, high = profiles
    skip_if_preempted(high)
    one, two = growth.breakdown(low, 1), growth.breakdown(high, 2)
    assert one is not None and two is not None
    change = growth.growths(one, two)
    change.pop(str(Bucket.CPU_WAIT), None)  # other processes' doing, not the case's
    if case.expected is not Bucket.IDLE:
        change.pop(str(Bucket.IDLE), None)  # a waiter may spin or sleep: judged on what ran
    assert max(change, key=lambda b: change[b]) == case.expected, change


@pytest.mark.slow
def test_private_copies_do_not_grow_the_lock_buckets(profiler: session.Profiler) -> None:
    """The control for shared-attr: the same writes to objects of each thread's own."""
    case = Case("private-attr", "3.14t", Bucket.PYTHON, (1, 2))
    low, high = (record(profiler, case, n) for n in case.threads)
    skip_if_preempted(high)
    one, two = growth.breakdown(low, 1), growth.breakdown(high, 2)
    assert one is not None and two is not None
    change = growth.growths(one, two)
    assert change.get(str(Bucket.LOCK_WAIT), 0.0) < growth.MIN_GROWTH, change
