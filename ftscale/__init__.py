"""ftscale: does a FastAPI service scale on free-threaded CPython?

One distribution, one import name: ``ftscale.workloads`` (the workload registry),
``ftscale.server`` (the service under test), ``ftscale.bench`` (the harness: interpreters,
environments, the micro and HTTP benches, reports), and the neutral modules both sides read:
``ftscale.vocab``, ``ftscale.schema``, ``ftscale.buildfacts``. The command line is
:mod:`ftscale.cli`. Importing this package imports nothing else.
"""

from __future__ import annotations

__version__ = "0.2.0"
