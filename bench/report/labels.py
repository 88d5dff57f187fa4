"""Names for what the model holds: series labels and short flag names, shared by tables and charts."""

from __future__ import annotations

from bench.report.model import SeriesKey
from bench.results import FLAG_ERRORS, FLAG_GENERATOR_SATURATED, FLAG_GIL_ENABLED, FLAG_HIGH_CV

SEPARATOR = " · "

FLAG_NAMES = {
    FLAG_GIL_ENABLED: "GIL-on",
    FLAG_GENERATOR_SATURATED: "gen-saturated",
    FLAG_ERRORS: "errors",
    FLAG_HIGH_CV: "CV>5%",
}

FLAG_MEANINGS = {
    FLAG_GIL_ENABLED: "the free-threaded build ran with the GIL enabled (an extension re-enabled it)",
    FLAG_GENERATOR_SATURATED: (
        "the load generator was saturated: the throughput is a lower bound on what the server can do"
    ),
    FLAG_ERRORS: "some requests failed (HTTP errors or timeouts)",
    FLAG_HIGH_CV: "the repetitions vary by more than 5% (coefficient of variation)",
}


def series_label(key: SeriesKey, with_build: bool = True) -> str:
    """``3.14t · threadpool · single`` (HTTP) or ``3.14t · strong`` (micro)."""
    parts = [key.build] if with_build else []
    parts += [p for p in (key.mode, key.topology, key.scaling) if p]
    return SEPARATOR.join(parts) or key.build


def flag_names(flags: tuple[str, ...]) -> str:
    return ", ".join(FLAG_NAMES.get(f, f) for f in flags)
