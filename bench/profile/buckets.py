"""The symbol -> bucket table: which mechanism one CPU sample belongs to.

This is the one place that maps CPython's C symbols, Python frames and kernel frames to the
buckets of :class:`ftscale.vocab.Bucket`. ``tests/test_profile_buckets.py`` checks it against
real profiles of purpose-built cases (one shared object against private copies, one lock
against none, a GC-heavy loop, system calls, an event loop, a GIL build with two threads): in
each, the bucket of the mechanism at work is the largest or the one that grows with threads.

A sample is classified in three tiers; the first match wins:

1. **Whole stack** (:data:`STACK_RULES`): everything inside a garbage collection, including the
   frees, decrefs and page faults it causes, is ``gc``.
2. **C chain** (:data:`CHAIN_RULES`): the frames from the leaf up to, not including, the nearest
   eval loop or Python frame, i.e. what the current bytecode is doing. The rules are tried in
   table order, so a futex under ``take_gil`` is ``gil``, a ``sched_yield`` under
   ``_PyCriticalSection_BeginSlow`` is ``lock-wait`` and a page fault under ``_mi_malloc_generic``
   is ``alloc``. Frames above the eval loop are ignored, so a C extension that calls back into
   Python does not drag the callee into its bucket.
3. **Leaf** (:data:`LEAF_RULES` and the fall-through): refcount slow paths by their own symbol,
   then a kernel leaf is ``kernel``, then by the innermost Python function's file ``http``, then
   the interpreter's own code or a Python frame is ``python``, anything else ``other``.

Limits, measured on 3.14t: the atomic increment of a shared object's reference count is
inlined into its caller (``_PyList_GetItemRef`` self time doubles with a shared list), so
``refcount`` is a lower bound and the rest of the cost shows in ``python``; compare the same
cell across thread counts or against its GIL twin. ``take_gil`` is also called on free-threaded
builds, where it returns at once, so the ``gil`` rules apply only when the GIL is on. A thread
waiting for the GIL (or parked on a lock) is off-CPU and not sampled at all: that time is the
``idle`` part of a profile (``cpu-wait`` when the thread was runnable but preempted), computed
from its capacity and perf's context-switch records, not a rule here.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

from ftscale.bench.profile.stacks import Sample, python_frame
from ftscale.vocab import Bucket


@dataclass(frozen=True)
class Rule:
    bucket: Bucket
    pattern: re.Pattern[str]  # matched against whole normalised symbols
    why: str


def _rule(bucket: Bucket, alternatives: str, why: str) -> Rule:
    return Rule(bucket, re.compile(rf"^(?:{alternatives})$"), why)


STACK_RULES: tuple[Rule, ...] = (
    _rule(
        Bucket.GC,
        r"gc_collect_\w+|_PyGC_\w+|PyGC_Collect|_Py_RunGC|gc_collect_internal|deduce_unreachable\w*"
        r"|gc_visit_heaps\w*|_PyEval_StopTheWorld\w*|_PyEval_StartTheWorld\w*|stop_the_world|start_the_world"
        r"|collect_with_callback|gc_collect_region|py::collect:<built-in>",
        "gc_collect_main is the root of every automatic collection (<- _Py_HandlePending) on all builds; "
        "stop_the_world runs inside it on free-threaded builds",
    ),
)

CHAIN_RULES: tuple[Rule, ...] = (
    _rule(
        Bucket.GIL,
        r"take_gil|drop_gil|_PyEval_ReleaseLock|_PyEval_AcquireLock|_PyThread_cond_after|PyCOND_\w+"
        r"|PyMUTEX_\w+",
        "GIL hand-off (take_gil <- _PyThreadState_Attach, drop_gil <- _Py_HandlePending); applies only when "
        "the GIL is on",
    ),
    _rule(
        Bucket.GC,
        r"_PyThreadState_Suspend|tstate_wait_attach|park_detached_threads",
        "a thread parked because another thread stopped the world (free-threaded GC)",
    ),
    _rule(
        Bucket.LOCK_WAIT,
        r"_PyParkingLot_\w+|_PySemaphore_\w+|_PyEvent_\w+|PyEvent_Wait\w*|_PyMutex_LockSlow|PyMutex_Lock"
        r"|PyMutex_Unlock|_PyMutex_UnlockSlow|_PyRawMutex_\w+|_PyCriticalSection2?_\w*Slow\w*"
        r"|__sched_yield|sched_yield|sem_(?:timed|clock)?wait\w*|__new_sem_wait\w*|sem_post|do_futex_wait"
        r"|__futex_abstimed_wait\w*|__lll_lock_wait\w*|__lll_lock_wake\w*|pthread_cond_\w+"
        r"|__pthread_mutex_lock\w*|pthread_mutex_lock|___pthread_mutex_lock",
        "contended slow paths: _PyCriticalSection_BeginSlow -> PyMutex_Lock (out of line; the fast path is "
        "inline) -> __sched_yield spinning, then _PyParkingLot_Park / _PySemaphore_Wait / futex",
    ),
    _rule(
        Bucket.LOCK_FAST,
        r"_PyMutex_\w+|PyMutex_\w+|_PyCriticalSection\w*|PyCriticalSection\w*|_PySeqLock_\w+|_PyRWMutex_\w+"
        r"|_PyOnceFlag_\w+|_PyRecursiveMutex_\w+|lock_PyThread_\w+|rlock_\w+|PyThread_acquire_lock\w*"
        r"|PyThread_release_lock|acquire_timed|lock_acquire_parse_args",
        "the lock API without contention: _PyMutex_LockTimed under lock_PyThread_acquire_lock is on every "
        "threading.Lock.acquire; _PySeqLock_* guard the type cache",
    ),
    _rule(
        Bucket.ALLOC,
        r"_?mi_\w+|_PyObject_Malloc|_PyObject_Calloc|_PyObject_Realloc|_PyObject_Free|PyObject_Malloc"
        r"|PyObject_Calloc|PyObject_Realloc|PyObject_Free|_PyObject_Mi\w+|_PyMem_\w+|PyMem_\w+|pymalloc_\w+"
        r"|new_arena|arena_map_\w+|address_in_range|free_delayed|malloc|free|calloc|realloc|cfree"
        r"|_int_malloc|_int_free|_int_realloc|malloc_consolidate|__libc_\w*alloc|tcache_\w+|unlink_chunk",
        "mimalloc (_PyObject_MiMalloc, mi_free, _mi_malloc_generic) on free-threaded builds, pymalloc "
        "(_PyObject_Malloc/_Free) on GIL builds, libc malloc; page faults under them count here",
    ),
)

LEAF_RULES: tuple[Rule, ...] = (
    _rule(
        Bucket.REFCOUNT,
        r"_Py_DecRefShared\w*|_Py_IncRefShared\w*|_Py_MergeZeroLocalRefcount|_Py_ExplicitMergeRefcount"
        r"|_Py_brc_\w+|brc_\w+|merge_queued_objects|_Py_TryIncref\w*|_Py_TryIncRefShared\w*"
        r"|_PyObject_SetMaybeWeakref|_Py_TryXGetRef\w*|_PyObject_TryIncRef\w*",
        "free-threaded refcounting of objects another thread owns: _Py_DecRefShared, biased-refcount "
        "queueing and merging; self time only, since _Py_MergeZeroLocalRefcount goes on to deallocate",
    ),
)

# The eval loop: the C chain of a sample ends here.
_EVAL = re.compile(r"^(?:_PyEval_EvalFrameDefault|_PyEval_EvalFrame|py_trampoline_evaluator|_PyEval_Vector)$")

# Python files of the HTTP stack and the event loop (a sample's innermost Python function).
_HTTP_PACKAGES = (
    "asyncio|uvicorn|h11|starlette|anyio|fastapi|concurrent|email|http|urllib|sniffio|httptools|wsproto|h2"
    "|websockets|click"
)
_HTTP_FILE = re.compile(
    rf"/(?:{_HTTP_PACKAGES})/[^:]*$|/(?:selectors|socket|ssl|socketserver|selector_events)\.py$"
)
_INTERPRETER_DSO = ("python", "libpython")


# The service's own modules, wherever they run from: the environments reach ftscale through a
# stage of links (<cache>/code/<digest>/ftscale/server/...), a checkout has them in server/.
_SERVICE_FILE = re.compile(r"/ftscale/server/[^/]+\.py$")


def _service_dir() -> str | None:
    """The service package's directory as this process imports it (without importing it)."""
    spec = importlib.util.find_spec("ftscale.server")
    locations = spec.submodule_search_locations if spec is not None else None
    return str(Path(next(iter(locations))).resolve()) + "/" if locations else None


SERVICE_DIR = _service_dir()


def is_http_function(sym: str) -> bool:
    """Whether a ``py::name:file`` frame belongs to the HTTP stack, the event loop or the service."""
    _, _, path = sym.removeprefix("py::").partition(":")
    if SERVICE_DIR and path.startswith(SERVICE_DIR):
        return True
    return bool(_HTTP_FILE.search(path) or _SERVICE_FILE.search(path))


def c_chain(sample: Sample) -> list[str]:
    """The C frames from the leaf up to (not including) the eval loop or a Python frame."""
    out = []
    for frame in sample.frames:
        if frame.python or _EVAL.match(frame.sym):
            break
        out.append(frame.sym)
    return out


def _first(rules: tuple[Rule, ...], symbols: list[str], gil: bool) -> Rule | None:
    for rule in rules:
        if rule.bucket is Bucket.GIL and not gil:
            continue
        if any(rule.pattern.match(s) for s in symbols):
            return rule
    return None


def classify(sample: Sample, gil: bool) -> Bucket:
    """The bucket of one sample. ``gil``: the process ran with the GIL on."""
    if not sample.frames:
        return Bucket.OTHER
    if _first(STACK_RULES, [f.sym for f in sample.frames], gil) is not None:
        return Bucket.GC
    chain = c_chain(sample)
    # A free-threaded thread that must park to re-attach is waiting for a stop-the-world pause.
    if (
        not gil
        and "_PyThreadState_Attach" in chain
        and any(s.startswith("_PyParkingLot_Park") for s in chain)
    ):
        return Bucket.GC
    rule = _first(CHAIN_RULES, chain, gil)
    if rule is not None:
        return rule.bucket
    leaf = sample.frames[0]
    for rule in LEAF_RULES:
        if rule.pattern.match(leaf.sym):
            return rule.bucket
    if leaf.kernel:
        return Bucket.KERNEL
    function = python_frame(sample)
    if function is not None and is_http_function(function):
        return Bucket.HTTP
    if (
        leaf.python
        or leaf.dso.rsplit("/", 1)[-1].startswith(_INTERPRETER_DSO)
        or leaf.dso.startswith("/tmp/perf-")
    ):
        return Bucket.PYTHON
    return Bucket.OTHER


# Buckets whose samples are named by call site; Python and HTTP time is named by function instead.
CALL_SITE_BUCKETS = frozenset(Bucket) - {Bucket.PYTHON, Bucket.HTTP, Bucket.IDLE, Bucket.CPU_WAIT}


def call_site(sample: Sample, bucket: Bucket) -> str:
    """``bucket: mechanism frame <- the frame that called it``, for one sample of ``bucket``.

    For the chain and stack rules, the outermost frame that matched and its caller
    (``lock-wait: _PyCriticalSection_BeginSlow <- _PyObject_StoreInstanceAttribute``); for the
    kernel, the user-space frame that entered it; otherwise the leaf. This turns "lock-wait 44 %"
    into something a reader can act on.
    """
    frames = [f.sym for f in sample.frames]
    if not frames:
        return f"{bucket}: ?"
    if bucket is Bucket.KERNEL:
        scope, index = frames, next((i for i, f in enumerate(sample.frames) if not f.kernel), 0)
    else:
        rules = [r for r in (*STACK_RULES, *CHAIN_RULES, *LEAF_RULES) if r.bucket is bucket]
        chain = c_chain(sample)
        in_chain = [i for i, sym in enumerate(chain) if any(r.pattern.match(sym) for r in rules)]
        in_stack = [i for i, sym in enumerate(frames) if any(r.pattern.match(sym) for r in rules)]
        scope, hits = (chain, in_chain) if in_chain else (frames, in_stack)
        index = max(hits) if hits else 0
    caller = scope[index + 1] if index + 1 < len(scope) else python_frame(sample) or "?"
    return f"{bucket}: {scope[index]} <- {caller}"
