"""numpy kernels: one that spends its time in BLAS (GIL released), one dominated by Python overhead.

numpy is imported when one of these runs, not when the registry is filled: the service and the
benches need it only for these two workloads (a bundle or an environment without a numpy
workload does without it). BLAS must run single-threaded for the thread counts to mean
anything: the first use in a process pins it (:func:`numpy_pinned`), and the server and the
benches also call :func:`pin_blas_threads` at start-up.
"""

from __future__ import annotations

import threading
from types import ModuleType
from typing import Any

from ftscale.vocab import WorkloadClass
from ftscale.workloads.checksum import fold_floats
from ftscale.workloads.registry import register


def pin_blas_threads() -> dict[str, object]:
    """Limit BLAS/OpenMP pools to one thread for this process; return what was limited."""
    from threadpoolctl import threadpool_info, threadpool_limits

    threadpool_limits(limits=1)
    return {
        "blas": [{k: p.get(k) for k in ("internal_api", "num_threads", "version")} for p in threadpool_info()]
    }


_pinned: list[bool] = []
_pin_lock = threading.Lock()


def numpy_pinned() -> ModuleType:
    """numpy, imported on first use, with BLAS pinned to one thread in this process."""
    import numpy

    if not _pinned:
        with _pin_lock:
            if not _pinned:
                pin_blas_threads()
                _pinned.append(True)
    return numpy


@register(
    workload_class=WorkloadClass.C_RELEASES_GIL,
    size_meaning="matrix dimension n (cost grows as n cubed)",
    default_size=240,
    max_size=3_000,
    large_max_size=4_096,
    smoke_size=4,
    needs=("numpy",),
)
def numpy_matmul(n: int) -> int:
    """Multiply two n-by-n float64 matrices with BLAS (GIL released inside the kernel)."""
    np: Any = numpy_pinned()
    # Small integers in float64: every partial sum is exact, so the checksum does not depend
    # on the BLAS kernel's summation order.
    a = (np.arange(n * n, dtype=np.float64).reshape(n, n) % 7) - 3
    b = (np.arange(n * n, dtype=np.float64).reshape(n, n).T % 5) - 2
    c = a @ b
    return fold_floats(float(c.sum()), float(np.trace(c)), float(c[0, -1]))


@register(
    workload_class=WorkloadClass.C_HOLDS_GIL,
    size_meaning="operations on 16-element arrays",
    default_size=1_500,
    max_size=280_000,
    large_max_size=10_000_000,
    smoke_size=5,
    needs=("numpy",),
)
def numpy_small(ops: int) -> int:
    """Many numpy operations on tiny arrays, where per-call Python overhead dominates."""
    np: Any = numpy_pinned()
    a = np.arange(16, dtype=np.float64)
    acc = 0.0
    for i in range(ops):
        a = (a * 1.5 + i) % 97.0
        acc += float(a.max()) - float(a.min())
    return fold_floats(acc, float(a.sum()))
