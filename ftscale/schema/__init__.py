"""Every shape that crosses a process boundary or lands in a file, declared once.

One module a family: :mod:`~ftscale.schema.machine` (builds, hosts), :mod:`~ftscale.schema.service`
(``/info``, soaks), :mod:`~ftscale.schema.audit` (a user's app and requirements),
:mod:`~ftscale.schema.load` (request mixes, load results), :mod:`~ftscale.schema.cells` (cells and
their repetitions), :mod:`~ftscale.schema.run` (``run.json``) and :mod:`~ftscale.schema.files`
(reading files). Import the names from here: ``from ftscale.schema import HttpCell``.

- The service's ``GET /info`` (:class:`Info`), read by the HTTP bench;
- a load generator's result (:class:`LoadResult`) and its /health probe (:class:`HealthProbe`),
  printed as JSON by the generator process and read by the bench;
- the micro worker's metadata (:class:`MicroWorkerMeta`), written into its pyperf file;
- a run (:class:`RunMeta`, ``run.json``) and its cells (:class:`HttpCell`, :class:`MicroCell`,
  ``cells/<cell-id>.json``), each repetition a typed model too, and a profiled cell's
  :class:`Profile` (``--profile``; its collapsed stacks beside it in ``profiles/<cell-id>.folded``).

Every reader validates with these models, so a renamed field fails loudly where it is read
instead of silently dropping a flag. Files are read through :func:`load_model`, which upgrades
older formats first.

Format history (bump SCHEMA_VERSION and teach :func:`upgrade` the old shape):
  1 (2026-11): first version; repetitions and /info were untyped dictionaries.
  2 (2026-11): typed repetitions (HTTP and micro), typed /info; cells carry ``kind``-specific
     models. Version 1 files are upgraded on read: their dictionaries already had these fields.
  3 (2026-12): HTTP cells of two stages (``stage``: exploration, or confirmation rounds of the
     finalists with the ``selection`` that chose them), the offered ``connections``, repetitions
     disturbed and measured again; each repetition's server start and stop times, machine
     interference, memory as the tree's distinct pages and its confirmation ``round``. Only
     fields were added: version 2 files are read as they are.
  4 (2026-12): an HTTP run's in-process pass (its ceiling): micro cells inside an HTTP run with
     ``stage`` "ceiling" and the server ``cpus`` they were pinned to; the open loop's arrivals,
     their seeds and the requests due and answered inside the window; repeated capacity steps
     with the p99's upper bound and the capacity as an interval. Only fields were added:
     version 3 files are read as they are.
  (2026-12, no new version): ``run.json``'s ``config``, ``generator`` and ``slots`` are typed
     (:class:`RunConfig`, :class:`RunGenerator`, :class:`Slot`); the files are written as before.
  5 (2026-12): an HTTP repetition keeps the load generator's result whole under ``load`` (a
     :class:`LoadResult`) instead of flat copies of its fields; files of versions 1 to 4 are
     upgraded on read (their flat fields nested, see ``FLAT_LOAD_FIELDS``).
"""

from __future__ import annotations

from ftscale.schema.audit import (
    AppCheck,
    AuditBuild,
    AuditDistribution,
    AuditLoad,
    AuditMeasure,
    AuditModule,
    AuditOutcome,
    AuditReport,
    AuditRequirement,
    ModuleCheck,
)
from ftscale.schema.base import (
    SCHEMA_VERSION,
    Model,
    ResultError,
)
from ftscale.schema.cells import (
    CELL,
    FLAT_LOAD_FIELDS,
    Cell,
    HttpCell,
    HttpRepetition,
    Interference,
    MicroCell,
    MicroRepetition,
    MicroWorkerMeta,
    Profile,
    ProfileEntry,
    Selection,
    SloSearch,
    SloStep,
    StepFailure,
)
from ftscale.schema.files import (
    load_cell,
    load_model,
    parse,
    read_json,
    upgrade,
)
from ftscale.schema.load import (
    PERCENTILES,
    Expect,
    HealthProbe,
    LoadMix,
    LoadRequest,
    LoadResult,
    MixRequest,
    RequestMix,
)
from ftscale.schema.machine import (
    Build,
    BuildFacts,
    Git,
    Host,
)
from ftscale.schema.run import (
    Given,
    RunConfig,
    RunGenerator,
    RunMeta,
    Slot,
)
from ftscale.schema.service import (
    Info,
    LimitInForce,
    MemoryTrend,
    ServerSettings,
    ServiceCounters,
    SoakResult,
)

__all__ = [
    "CELL",
    "FLAT_LOAD_FIELDS",
    "PERCENTILES",
    "SCHEMA_VERSION",
    "AppCheck",
    "AuditBuild",
    "AuditDistribution",
    "AuditLoad",
    "AuditMeasure",
    "AuditModule",
    "AuditOutcome",
    "AuditReport",
    "AuditRequirement",
    "Build",
    "BuildFacts",
    "Cell",
    "Expect",
    "Git",
    "Given",
    "HealthProbe",
    "Host",
    "HttpCell",
    "HttpRepetition",
    "Info",
    "Interference",
    "LimitInForce",
    "LoadMix",
    "LoadRequest",
    "LoadResult",
    "MemoryTrend",
    "MicroCell",
    "MicroRepetition",
    "MicroWorkerMeta",
    "MixRequest",
    "Model",
    "ModuleCheck",
    "Profile",
    "ProfileEntry",
    "RequestMix",
    "ResultError",
    "RunConfig",
    "RunGenerator",
    "RunMeta",
    "Selection",
    "ServerSettings",
    "ServiceCounters",
    "SloSearch",
    "SloStep",
    "Slot",
    "SoakResult",
    "StepFailure",
    "load_cell",
    "load_model",
    "parse",
    "read_json",
    "upgrade",
]
