"""ftscale's CPU workloads: import this package to fill the registry.

Each module registers its kernels with :func:`workloads.registry.register`; everything else
(server routes, micro bench, HTTP bench, CLI choices, tests) iterates :data:`REGISTRY`.
"""

from __future__ import annotations

from ftscale.vocab import WorkloadClass

# Import order is registry order: the order workloads appear in CLIs and reports.
from ftscale.workloads import (  # noqa: F401
    contention,
    gateway,
    numeric,
    orm,
    pure_python,
    stdlib,
    streaming,
    validation,
)
from ftscale.workloads.numeric import pin_blas_threads
from ftscale.workloads.registry import (
    REGISTRY,
    InvalidSize,
    StreamSpec,
    UnknownWorkload,
    Workload,
    by_class,
    calibrate,
    get,
    missing_here,
    optional_packages,
    select,
    streamed,
    unmet,
)

__all__ = [
    "REGISTRY",
    "InvalidSize",
    "StreamSpec",
    "UnknownWorkload",
    "Workload",
    "WorkloadClass",
    "by_class",
    "calibrate",
    "get",
    "missing_here",
    "optional_packages",
    "pin_blas_threads",
    "select",
    "streamed",
    "unmet",
]
