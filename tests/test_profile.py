"""Profiles (--profile): parsing and folding perf script output, the bucket table on a real
excerpt, attribution, growth, and probing a perf that is missing or not permitted.

``tests/data/perf-script-excerpt.txt`` is real ``perf script`` output: samples picked from the
second half of recordings of ``tests/profile_cases.py`` (shared-attr, shared-items, cycles,
syscalls, event-loop, one-lock on 3.14t; pure on 3.14), recorded with the options of
:mod:`ftscale.bench.profile.perf`.
"""

from __future__ import annotations

import io
import os
import stat
import sys
from pathlib import Path

import pytest

from ftscale import schema
from ftscale.bench.profile import attribute, buckets, growth, perf, session, stacks
from ftscale.vocab import Bucket

DATA = Path(__file__).parent / "data" / "perf-script-excerpt.txt"
PY = sys.executable

# The excerpt's samples in order, each with the bucket of the mechanism it shows.
EXPECTED = [
    "python", "python", "lock-wait", "lock-wait",  # shared-attr, 3.14t
    "refcount", "refcount", "refcount",  # shared-items, 3.14t
    "gc", "gc", "gc", "alloc",  # cycles, 3.14t
    "kernel", "kernel", "kernel",  # syscalls, 3.14t
    "http", "http", "http", "kernel",  # event-loop, 3.14t
    "python", "gil", "gil",  # pure, 3.14 (GIL)
    "lock-fast", "lock-fast",  # one-lock, 3.14t
]  # fmt: skip


def excerpt() -> list[stacks.Sample]:
    with DATA.open() as fh:
        return list(stacks.parse(fh))


def gil_build(sample: stacks.Sample) -> bool:
    return any(f.dso.endswith("/python3.14") for f in sample.frames)


# --- parsing and folding -------------------------------------------------------------------------


def test_the_excerpt_parses_into_samples_with_their_call_chains() -> None:
    samples = excerpt()
    assert len(samples) == len(EXPECTED)
    assert all(s.event.startswith("cpu-clock") and s.period == 1001001 and s.frames for s in samples)
    assert all(s.comm.startswith("case-") for s in samples)
    assert all(s.tid != s.pid for s in samples)  # picked from the cases' own threads
    first = samples[0]
    assert first.frames[0].sym == "_PyEval_EvalFrameDefault" and first.frames[-1].python
    function = stacks.python_frame(first) or ""
    assert function.startswith("py::shared_attr:/") and function.endswith("/tests/profile_cases.py")
    assert any(f.kernel for s in samples for f in s.frames)
    # clone suffixes are gone: finish_task_switch.isra.0 reads finish_task_switch
    assert not any(".isra." in f.sym or "@@" in f.sym for s in samples for f in s.frames)


def test_every_excerpt_sample_lands_in_the_bucket_of_its_mechanism() -> None:
    got = [str(buckets.classify(s, gil=gil_build(s))) for s in excerpt()]
    assert got == EXPECTED


def test_headers_with_spaces_symbols_with_parentheses_and_stackless_samples() -> None:
    text = (
        "Thread-1 (work) 28842/28847 3151.5:    1001001 cpu-clock:pppH: \n"
        "\t 1019b3 __sched_yield (/usr/lib/x86_64-linux-gnu/libc.so.6)\n"
        "\t 331000 PyMutex_Lock+0x20 (/x/bin/python3.14t)\n"
        "\t 332000 _PyCriticalSection_BeginSlow.cold (/x/bin/python3.14t)\n"
        "\t 9d161 _PyEval_EvalFrameDefault (/x/bin/python3.14t)\n"
        "\t 7f61 py::work:/tmp/a b (c).py (/tmp/perf-18607.map)\n"
        "w0 1/2 3151.6: 1001001 cpu-clock:pppH: \n"  # no blank line before it: stackless
        "w0 1/2 3151.7: 1001001 cpu-clock:pppH: \n"
        "\t 123456 pthread_cond_signal@@GLIBC_2.3.2 (/usr/lib/libc.so.6)\n"
        "\t 7f61 [unknown] (/tmp/perf-1.map)\n"
    )
    a, b, c = stacks.parse(io.StringIO(text))
    assert (a.comm, a.pid, a.tid, a.time) == ("Thread-1 (work)", 28842, 28847, 3151.5)
    assert [f.sym for f in a.frames] == [
        "__sched_yield", "PyMutex_Lock", "_PyCriticalSection_BeginSlow", "_PyEval_EvalFrameDefault",
        "py::work:/tmp/a b (c).py",
    ]  # fmt: skip
    assert a.frames[-1].dso == "/tmp/perf-18607.map"
    assert buckets.classify(a, gil=False) is Bucket.LOCK_WAIT
    assert b.frames == () and buckets.classify(b, gil=False) is Bucket.OTHER
    assert [f.sym for f in c.frames] == ["pthread_cond_signal", stacks.JIT]
    folded = stacks.fold([a])
    assert list(folded) == [
        "Thread-1_(work);py:work (/tmp/a b (c).py);_PyEval_EvalFrameDefault;_PyCriticalSection_BeginSlow;"
        "PyMutex_Lock;__sched_yield"
    ]


def test_collapsed_stacks_are_root_first_with_kernel_frames_marked() -> None:
    text = stacks.folded_text(stacks.fold(excerpt()))
    lines = text.splitlines()
    assert all(line.rsplit(" ", 1)[1].isdigit() for line in lines)
    assert sum(int(line.rsplit(" ", 1)[1]) for line in lines) == len(EXPECTED)
    kernel = next(line for line in lines if "read_zero_[k]" in line)
    assert kernel.startswith("case-0;py:syscalls (") and "os_pread;__libc_pread;" in kernel
    assert "py:StreamReader._wait_for_data (asyncio/streams.py)" in text  # interpreter path shortened


def test_the_gil_rules_apply_only_when_the_gil_is_on() -> None:
    take_gil = [s for s in excerpt() if any(f.sym == "take_gil" for f in s.frames)]
    assert take_gil
    assert all(buckets.classify(s, gil=True) is Bucket.GIL for s in take_gil)
    # take_gil is also called on free-threaded builds (it returns at once): never "gil" there
    assert all(buckets.classify(s, gil=False) is not Bucket.GIL for s in take_gil)


def test_call_sites_name_who_waited_and_where() -> None:
    sites = {
        buckets.call_site(s, buckets.classify(s, gil=gil_build(s)))
        for s in excerpt()
        if buckets.classify(s, gil=gil_build(s)) in buckets.CALL_SITE_BUCKETS
    }
    assert "lock-wait: _PyCriticalSection_BeginSlow <- _PyObject_TryGetInstanceAttribute" in sites
    assert "kernel: __libc_pread <- os_pread" in sites
    assert "gc: gc_collect_main <- _Py_HandlePending" in sites
    assert "gil: take_gil <- _PyThreadState_Attach" in sites


# --- attribution ---------------------------------------------------------------------------------


def _sample(time: float, leaf: str, tid: int = 2, dso: str = "/x/bin/python3.14t") -> stacks.Sample:
    frames = (stacks.Frame(leaf, dso), stacks.Frame("py::f:/app/x.py", "/tmp/perf-1.map"))
    return stacks.Sample("t", 1, tid, time, 1_000_000, "cpu-clock:pppH", frames)


def _profile_of(t: attribute.Tally, capacity: float, window: tuple[float, float]) -> schema.Profile:
    return attribute.profile_of(
        t, gil=False, capacity_cpus=capacity, window=window, command="perf record", call_graph="dwarf,8192",
        frequency_hz=999, work=500.0, work_unit="call", folded=None,
    )  # fmt: skip


def test_unused_capacity_is_idle_when_the_threads_slept() -> None:
    # 1 s of samples at 1 kHz from one thread, with two threads of capacity: half is unused
    samples = [_sample(i / 1000, "_PyEval_EvalFrameDefault") for i in range(1000)]
    samples.append(_sample(0.5, "_PyEval_EvalFrameDefault", tid=1))  # the main thread: not the cell's
    t = attribute.tally(samples, gil=False, threads=session.worker_threads)
    assert t.samples == 1000 and t.span == pytest.approx((0.0, 1.0))
    prof = _profile_of(t, 2.0, t.span)
    assert (
        prof.samples == 1000 and prof.idle == 1000 and prof.cpu_wait == 0 and prof.buckets == {"python": 1000}
    )
    assert prof.window_s == 1.0 and prof.functions == [
        schema.ProfileEntry(name="f (/app/x.py)", samples=1000)
    ]
    assert prof.flags == []


def test_threads_that_never_ran_python_are_told_apart() -> None:
    spinning = stacks.Sample(
        "python",
        1,
        3,
        0.1,
        1_000_000,
        "cpu-clock",
        (stacks.Frame("blas_thread_server", "/x/libopenblas.so"),),
    )
    team = _sample(0.1, "_PyEval_EvalFrameDefault")
    assert attribute.python_tids([spinning, team, spinning]) == {2}


def _switch(time: float, event: str, tid: int = 2) -> stacks.Sample:
    return stacks.Sample("t", 1, tid, time, 0, event, ())


def test_unused_capacity_is_cpu_wait_while_the_threads_were_preempted() -> None:
    # on CPU 0.0-0.5 s; preempted 0.5-0.8 s (runnable: another process had the CPU); asleep 0.8-1.0 s
    samples = [_sample(i / 1000, "_PyEval_EvalFrameDefault") for i in range(500)]
    samples += [_switch(0.5, stacks.SWITCH_PREEMPT), _switch(0.8, stacks.SWITCH_IN)]
    samples += [_switch(0.8, stacks.SWITCH_OUT), _switch(1.5, stacks.SWITCH_IN)]
    samples += [_switch(0.1, stacks.SWITCH_PREEMPT, tid=1), _switch(0.9, stacks.SWITCH_IN, tid=1)]  # not kept
    t = attribute.tally(samples, gil=False, threads=session.worker_threads)
    prof = _profile_of(t, 1.0, (0.0, 1.0))
    assert (prof.samples, prof.cpu_wait, prof.idle) == (500, 300, 200)
    # a window inside the preemption counts only its own part
    assert _profile_of(t, 1.0, (0.0, 0.6)).cpu_wait == 100


def test_switch_records_parse_as_frameless_events() -> None:
    text = (
        "python3.14  3266/3266   3654.979225: PERF_RECORD_SWITCH OUT        \n"
        "python3.14  3266/3267   3654.984031: PERF_RECORD_SWITCH OUT preempt\n"
        "python3.14  3266/3267   3654.992074: PERF_RECORD_SWITCH IN         \n"
    )
    events = [(s.tid, s.time, s.event, s.frames) for s in stacks.parse(io.StringIO(text))]
    assert events == [
        (3266, 3654.979225, stacks.SWITCH_OUT, ()),
        (3267, 3654.984031, stacks.SWITCH_PREEMPT, ()),
        (3267, 3654.992074, stacks.SWITCH_IN, ()),
    ]


def test_a_profile_without_python_frames_or_with_few_samples_says_so() -> None:
    bare = stacks.Sample("t", 1, 2, 0.0, 1_000_000, "cpu-clock", (stacks.Frame("main", "/usr/bin/x"),))
    t = attribute.tally([bare] * 10, gil=False)
    prof = attribute.profile_of(
        t, gil=False, capacity_cpus=1.0, window=(0.0, 0.01), command="", call_graph="fp", frequency_hz=999,
        work=None, work_unit="", folded=None, flags=[perf.FP_STACKS],
    )  # fmt: skip
    assert prof.flags == [perf.FP_STACKS, attribute.NO_PYTHON, attribute.FEW_SAMPLES]
    assert prof.buckets == {"other": 10}


# --- growth --------------------------------------------------------------------------------------


def profile(buckets_: dict[str, int], idle: int, work: float | None, gil: bool = False) -> schema.Profile:
    return schema.Profile(
        status="ok", samples=sum(buckets_.values()), buckets=buckets_, idle=idle, work=work,
        work_unit="call", period_ns=1e6, gil=gil, window_s=1.0, capacity_cpus=1.0,
        callers=[schema.ProfileEntry(name="lock-wait: PyMutex_Lock <- _Py_brc_merge_refcounts", samples=5)],
    )  # fmt: skip


def test_a_gil_build_loses_its_second_thread_to_idle() -> None:
    one = growth.breakdown(profile({"python": 1000}, 0, 1000, gil=True), 1)
    two = growth.breakdown(profile({"python": 1000, "gil": 20}, 1000, 1000, gil=True), 2)
    assert one is not None and two is not None
    limit = growth.limiting([two, one])
    assert limit is not None and limit.bucket == "idle" and limit.low.threads == 1
    assert limit.growth == pytest.approx(1.0)  # twice the capacity per call: efficiency 1/2
    assert sum(limit.growths.values()) == pytest.approx(two.total / one.total - 1)


def test_contention_is_named_and_flat_costs_name_nothing() -> None:
    one = growth.breakdown(profile({"python": 900, "lock-wait": 10}, 50, 1000), 1)
    two = growth.breakdown(profile({"python": 1900, "lock-wait": 400}, 100, 2000), 2)
    ideal = growth.breakdown(profile({"python": 1800, "lock-wait": 20}, 100, 2000), 2)
    assert one is not None and two is not None and ideal is not None
    limit = growth.limiting([one, two])
    assert limit is not None and limit.bucket == "lock-wait"
    assert growth.limiting([one, ideal]) is None
    assert growth.limiting([one]) is None


def test_without_work_shares_are_compared() -> None:
    one = growth.breakdown(profile({"python": 100}, 0, None), 1)
    two = growth.breakdown(profile({"python": 50, "refcount": 50}, 0, None), 2)
    assert one is not None and two is not None and not one.per_work
    limit = growth.limiting([one, two])
    assert limit is not None and limit.bucket == "refcount" and limit.growth == pytest.approx(0.5)
    assert growth.breakdown(schema.Profile(status="failed", error="x"), 1) is None


# --- perf missing or not permitted ---------------------------------------------------------------


PARANOID_MESSAGE = """Error:
Access to performance monitoring and observability operations is limited.
Consider adjusting /proc/sys/kernel/perf_event_paranoid setting to open
access to performance monitoring and observability operations for processes
without CAP_PERFMON, CAP_SYS_PTRACE or CAP_SYS_ADMIN Linux capability.
perf_event_paranoid setting is 3:
"""


def fake_perf(directory: Path) -> Path:
    """A ``perf`` that runs, but refuses to record as a kernel with perf_event_paranoid set does."""
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / "perf"
    script.write_text(
        "#!/bin/sh\n"
        'case "$1" in\n'
        "  --version) echo 'perf version 6.1' ;;\n"
        "  version) echo 'libdw-dwarf-unwind: [ on  ]' ;;\n"
        f"  *) printf '%s' '{PARANOID_MESSAGE}' >&2; exit 255 ;;\n"
        "esac\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return directory


def test_perf_missing_is_one_line_with_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    found = perf.probe()
    assert isinstance(found, perf.Unavailable) and found.reason.startswith("perf not found: install it")


def test_perf_not_permitted_is_one_line_with_how_to_enable_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", f"{fake_perf(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}")
    found = perf.probe()
    assert isinstance(found, perf.Unavailable)
    assert found.reason.startswith("perf not permitted (perf_event_paranoid=")
    assert "sysctl kernel.perf_event_paranoid=1" in found.reason and "\n" not in found.reason


# --- the bucket rules, each on a stack built for it ------------------------------------------------

PY_DSO, LIBC, KERNEL, MAP = (
    "/x/bin/python3.14t",
    "/usr/lib/x86_64-linux-gnu/libc.so.6",
    "[kernel.kallsyms]",
    "/tmp/perf-1.map",
)
KERNEL_WAIT = (("futex_wait", KERNEL), ("do_syscall_64", KERNEL), ("entry_SYSCALL_64_after_hwframe", KERNEL))
USER_WAIT = (("__futex_abstimed_wait_common", LIBC), ("sem_clockwait", LIBC))
ACQUIRE = (("PyThread_acquire_lock_timed", PY_DSO), ("lock_PyThread_acquire_lock", PY_DSO))


def stack(*frames: tuple[str, str]) -> stacks.Sample:
    """A sample of the given frames, leaf first."""
    return stacks.Sample(
        "t", 1, 2, 0.0, 1_000_000, "cpu-clock:pppH", tuple(stacks.Frame(s, d) for s, d in frames)
    )


@pytest.mark.parametrize("leaf", ["kernel", "libc"])
@pytest.mark.parametrize(
    "handler",
    ["/app/signals.py", "/venv/lib/python3.14t/site-packages/uvicorn/server.py"],
    ids=["app", "uvicorn"],
)
@pytest.mark.parametrize("gil", [False, True])
def test_a_sample_inside_a_lock_wait_is_the_wait_whatever_python_frame_ran_it(
    leaf: str, handler: str, gil: bool
) -> None:
    """A signal handler (here one of the app's, or uvicorn's) blocked on a lock: the sample is the
    wait, not the kernel it sleeps in, nor the handler's Python frame or the HTTP stack it is in."""
    wait = (*KERNEL_WAIT, *USER_WAIT) if leaf == "kernel" else USER_WAIT
    sample = stack(
        *wait, *ACQUIRE, ("_PyEval_EvalFrameDefault", PY_DSO), (f"py::handle_exit:{handler}", MAP),
        ("_PyEval_EvalFrameDefault", PY_DSO), ("py::serve:/app/main.py", MAP),
    )  # fmt: skip
    assert buckets.classify(sample, gil=gil) is Bucket.LOCK_WAIT
    assert (
        buckets.call_site(sample, Bucket.LOCK_WAIT)
        == "lock-wait: sem_clockwait <- PyThread_acquire_lock_timed"
    )


def test_frames_above_the_eval_loop_are_ignored() -> None:
    """A C extension that waited on a lock and called back into Python: the callback's own work is
    Python, whether the chain stops at the eval loop or at the callback's Python frame."""
    above = (
        ("callback_trampoline", "/app/ext.so"),
        ("_PyMutex_LockSlow", PY_DSO),
        ("_PyParkingLot_Park", PY_DSO),
    )
    at_eval = stack(
        ("PyObject_GetAttr", PY_DSO), ("_PyEval_EvalFrameDefault", PY_DSO), ("PyObject_Call", PY_DSO), *above
    )
    at_frame = stack(
        ("PyObject_GetAttr", PY_DSO), ("py::callback:/app/x.py", MAP), ("PyObject_Call", PY_DSO), *above
    )
    for sample in (at_eval, at_frame):
        assert buckets.c_chain(sample) == ["PyObject_GetAttr"]
        assert buckets.classify(sample, gil=False) is Bucket.PYTHON
    # the GIL taken above the eval loop is not this sample's either
    gil_above = stack(
        ("PyObject_GetAttr", PY_DSO), ("_PyEval_EvalFrameDefault", PY_DSO), ("take_gil", PY_DSO)
    )
    assert buckets.classify(gil_above, gil=True) is Bucket.PYTHON
    # ... while below it, it is
    gil_below = stack(("take_gil", PY_DSO), ("_PyEval_EvalFrameDefault", PY_DSO))
    assert buckets.classify(gil_below, gil=True) is Bucket.GIL
