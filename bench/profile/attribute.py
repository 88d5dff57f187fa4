"""From samples to a cell's :class:`~ftscale.schema.Profile`: buckets, unused capacity, top entries.

Every kept sample lands in exactly one bucket (:func:`ftscale.bench.profile.buckets.classify`).
Off-CPU time is not sampled, so it is derived: the cell could have used ``capacity_cpus`` CPUs
for the whole window, and what its threads did not use is split by perf's context-switch
records into ``cpu_wait`` (its threads were preempted while runnable: the CPUs went to someone
else) and ``idle`` (the rest: its threads slept, e.g. a GIL build's second thread waiting for
the GIL, which shows up there, not in ``gil``). Both are counted in samples' worth of time so
that they stack with the buckets.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ftscale.bench.profile import buckets
from ftscale.bench.profile.stacks import (
    SWITCH_IN,
    SWITCH_OUT,
    SWITCH_PREEMPT,
    Sample,
    collapsed,
    frame_label,
    python_frame,
    short_python,
)
from ftscale.schema import Profile, ProfileEntry
from ftscale.vocab import Bucket

TOP = 12  # entries kept per detail list
NO_PYTHON = "no-python-frames"  # the trampoline was off: Python and HTTP time are not told apart
FEW_SAMPLES = "few-samples"  # under MIN_SAMPLES: shares are rough
MIN_SAMPLES = 200
PYTHON_FRAME_SHARE = 0.5  # below this share of samples with a Python frame, the trampoline was off


@dataclass
class Tally:
    """What the kept samples of one recording add up to."""

    samples: int = 0
    period_ns: int = 0
    with_python: int = 0
    first: float = float("inf")
    last: float = float("-inf")
    buckets: Counter[Bucket] = field(default_factory=Counter)
    functions: Counter[str] = field(default_factory=Counter)
    symbols: Counter[str] = field(default_factory=Counter)
    callers: Counter[str] = field(default_factory=Counter)
    stacks: Counter[str] = field(default_factory=Counter)
    pids: set[int] = field(default_factory=set)
    preempted: list[tuple[float, float]] = field(default_factory=list)  # (out, in) of the cell's threads

    @property
    def mean_period_ns(self) -> float:
        return self.period_ns / self.samples if self.samples else 0.0

    @property
    def span(self) -> tuple[float, float]:
        """From the first kept sample to one period after the last (perf's clock, seconds)."""
        if not self.samples:
            return 0.0, 0.0
        return self.first, self.last + self.mean_period_ns / 1e9


def tally(
    samples: Iterable[Sample],
    gil: bool,
    threads: Callable[[Sample], bool] = lambda s: True,
    window: tuple[float, float] | None = None,
) -> Tally:
    """Classify the on-CPU samples of the cell's ``threads`` inside ``window`` (default: all), and
    collect the intervals those threads spent preempted."""
    out = Tally()
    switched_out: dict[int, float] = {}
    for s in samples:
        out.pids.add(s.pid)
        if not threads(s):
            continue
        if s.event == SWITCH_PREEMPT:
            switched_out[s.tid] = s.time
            continue
        if s.event in (SWITCH_OUT, SWITCH_IN):
            begun = switched_out.pop(s.tid, None)
            if begun is not None and s.event == SWITCH_IN:
                out.preempted.append((begun, s.time))
            continue
        if not s.event.startswith("cpu-clock") or (window and not window[0] <= s.time <= window[1]):
            continue
        bucket = buckets.classify(s, gil)
        out.samples += 1
        out.period_ns += s.period
        out.first, out.last = min(out.first, s.time), max(out.last, s.time)
        out.buckets[bucket] += 1
        function = python_frame(s)
        if function is not None:
            out.with_python += 1
            out.functions[short_python(function)] += 1
        if s.frames:
            out.symbols[frame_label(s.frames[0])] += 1
        if bucket in buckets.CALL_SITE_BUCKETS:
            out.callers[_short_site(buckets.call_site(s, bucket))] += 1
        out.stacks[collapsed(s)] += 1
    out.preempted += [(begun, float("inf")) for begun in switched_out.values()]
    return out


def python_tids(samples: Iterable[Sample]) -> set[int]:
    """Threads with at least one sample in Python code (a perf trampoline frame)."""
    return {s.tid for s in samples if python_frame(s) is not None}


def _short_site(site: str) -> str:
    head, sep, caller = site.rpartition(" <- ")
    return f"{head}{sep}{short_python(caller)}" if caller.startswith("py::") else site


def _entries(counter: Counter[str]) -> list[ProfileEntry]:
    return [ProfileEntry(name=name, samples=n) for name, n in counter.most_common(TOP)]


def unused_samples(t: Tally, capacity_cpus: float, window: tuple[float, float]) -> tuple[int, int]:
    """Samples' worth of the capacity no kept thread used: (while they slept, while preempted)."""
    if not t.samples or t.mean_period_ns <= 0:
        return 0, 0
    start, end = window
    unused = max(0, round(capacity_cpus * (end - start) * 1e9 / t.mean_period_ns) - t.samples)
    preempted_s = sum(max(0.0, min(b, end) - max(a, start)) for a, b in t.preempted)
    cpu_wait = min(unused, round(preempted_s * 1e9 / t.mean_period_ns))
    return unused - cpu_wait, cpu_wait


def profile_of(
    t: Tally,
    *,
    gil: bool,
    capacity_cpus: float,
    window: tuple[float, float],
    command: str,
    call_graph: str,
    frequency_hz: int,
    work: float | None,
    work_unit: str,
    folded: str | None,
    flags: Iterable[str] = (),
) -> Profile:
    """The cell's profile from a tally; ``window`` is the span of wall time (perf's clock) it covers."""
    notes = list(flags)
    if t.samples and t.with_python < PYTHON_FRAME_SHARE * t.samples:
        notes.append(NO_PYTHON)
    if t.samples < MIN_SAMPLES:
        notes.append(FEW_SAMPLES)
    idle, cpu_wait = unused_samples(t, capacity_cpus, window)
    return Profile(
        status="ok",
        command=command,
        frequency_hz=frequency_hz,
        call_graph=call_graph,
        window_s=round(window[1] - window[0], 4),
        capacity_cpus=capacity_cpus,
        period_ns=round(t.mean_period_ns, 1),
        samples=t.samples,
        buckets={str(b): n for b, n in sorted(t.buckets.items(), key=lambda kv: (-kv[1], kv[0]))},
        idle=idle,
        cpu_wait=cpu_wait,
        gil=gil,
        functions=_entries(t.functions),
        symbols=_entries(t.symbols),
        callers=_entries(t.callers),
        work=work,
        work_unit=work_unit,
        folded=folded,
        flags=notes,
    )
