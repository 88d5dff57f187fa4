"""Names for what the model holds: series labels and short flag names, shared by tables and charts."""

from __future__ import annotations

from ftscale.bench.report.model import SeriesKey
from ftscale.vocab import CLASS_NAMES, FLAGS, RunKind, WorkloadClass, flag_info

SEPARATOR = " · "


def sized(workload_class: str, size: int) -> str:
    """``", size 200"`` for a workload's heading; nothing for a user's app, which has no size."""
    return "" if workload_class == WorkloadClass.APP else f", size {size}"


def class_name(workload_class: str) -> str:
    """``pure-python`` -> ``Pure Python`` (a class this version does not know reads as it is)."""
    try:
        return CLASS_NAMES[WorkloadClass(workload_class)]
    except ValueError:
        return workload_class


def flag_short(flag: str) -> str:
    info = flag_info(flag)
    return info.short if info else flag


def flag_legend(kind: str) -> list[tuple[str, str]]:
    """(short name, meaning) of every flag that can occur in a run of ``kind``, in vocabulary order."""
    return [(info.short, info.meaning) for info in FLAGS.values() if RunKind(kind) in info.kinds]


def series_label(key: SeriesKey, with_build: bool = True) -> str:
    """``3.14t · threadpool · single`` (HTTP; ``3.14t · granian · threadpool · single`` in a run of
    several servers) or ``3.14t · strong`` (micro)."""
    parts = [key.build] if with_build else []
    parts += [p for p in (key.server, key.mode, key.topology, key.scaling) if p]
    return SEPARATOR.join(parts) or key.build


def flag_names(flags: tuple[str, ...]) -> str:
    return ", ".join(flag_short(f) for f in flags)
