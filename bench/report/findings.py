"""What a run says, in the terms a reader decides by: verdicts, and the cost of free threading.

The verdict answers, per workload, *should this service move to the free-threaded build, and how
should it be served?* by fixed rules:

- **One fixed reference:** the GIL twin's best measured design (the highest peak median among
  its series, at whatever thread count that peak was). A free-threaded build is compared with
  that, never with a GIL design that cannot scale by construction.
- **The contender:** the free-threaded build's own best measured design.
- **Flags disqualify:** a point flagged for a saturated generator, errors, the GIL back on, a
  coefficient of variation over 5 % or idle serving units (see :mod:`ftscale.vocab`) cannot win
  unqualified. The best unflagged point of each build is chosen; a flagged point that would have
  been faster is kept as a caveat.
- **Ties are ties:** when the interval of contender ÷ reference contains 1, the verdict is "no
  significant difference", whatever the point estimate says.
- **Memory** is weighed by PSS (shared pages split between processes), RSS where PSS is absent.
- **Servers** (a run of several HTTP servers): the server is part of the design, so the best
  point is the best build, server and design; the reference is the GIL twin's best whatever its
  server. Each server at its best, the best design that serves from *one process* (no worker
  processes, no process pool) and the best a *GIL build* reached are kept beside the verdict,
  each relative to the same reference.

Also here: the *single-thread overhead* of each free-threaded build against its GIL twin (same
major.minor version), at 1 thread with the same workload, size, design and scaling. Nothing here
formats text; :mod:`.words` writes the sentences.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from ftscale.bench.report import stats
from ftscale.bench.report.model import Point, RunModel, Series, SeriesKey, class_rank
from ftscale.bench.report.stats import Estimate
from ftscale.schema import RunMeta
from ftscale.vocab import flag_info


@dataclass(frozen=True)
class Choice:
    series: Series
    point: Point

    @property
    def clean(self) -> bool:
        """No flag that disqualifies a point from winning unqualified."""
        return not disqualifying(self.point.flags)

    @property
    def build(self) -> str:
        return self.series.key.build


def disqualifying(flags: Sequence[str]) -> tuple[str, ...]:
    found = []
    for flag in flags:
        info = flag_info(flag)
        if info is not None and info.disqualifies:
            found.append(flag)
    return tuple(found)


def best_choice(series: Sequence[Series]) -> Choice:
    """The highest peak median among ``series`` (fewest threads on a tie), flagged or not."""
    top = max(series, key=lambda s: (s.peak.throughput.value, -s.peak.threads))
    return Choice(top, top.peak)


def best_clean(series: Sequence[Series]) -> tuple[Choice | None, Choice | None]:
    """(the best unflagged point, the best point overall when it is flagged and faster)."""
    points = [Choice(s, p) for s in series for p in s.points]
    if not points:
        return None, None

    def rank(c: Choice) -> tuple[float, int]:
        return (c.point.throughput.value, -c.point.threads)

    clean = [c for c in points if c.clean]
    best = max(clean, key=rank) if clean else None
    overall = max(points, key=rank)
    faster_flagged = overall if not overall.clean and (best is None or rank(overall) > rank(best)) else None
    return best, faster_flagged


@dataclass(frozen=True)
class Comparison:
    """A free-threaded build's best design against its GIL twin's best design, for one workload."""

    free_threaded_build: str
    gil_build: str
    contender: Choice | None  # the free-threaded build's best unflagged point
    reference: Choice | None  # the GIL twin's best unflagged point
    contender_flagged: Choice | None  # a faster but flagged point of the free-threaded build
    reference_flagged: Choice | None
    ratio: Estimate | None  # contender / reference
    outcome: str  # "free-threaded", "gil", "tie", "undetermined"
    memory_ratio: float  # contender / reference memory (PSS, else RSS); NaN when unknown
    # Flags of a contender or reference that had to be taken flagged (its build has no unflagged
    # point): the comparison stands only with these qualifications.
    qualified: tuple[str, ...] = ()


@dataclass(frozen=True)
class BuildBest:
    """A build's best unflagged point (its fastest flagged one if it has none), against the reference."""

    build: str
    choice: Choice
    relative: Estimate  # its median / the reference's median


@dataclass(frozen=True)
class ServerBest:
    """One HTTP server's best unflagged point over every build and design (else its fastest,
    flagged), relative to the reference."""

    server: str
    choice: Choice
    relative: Estimate


@dataclass(frozen=True)
class Verdict:
    workload_class: str
    workload: str
    size: int
    scaling: str | None
    best: Choice  # the best unflagged point of the run for this workload (any build)
    best_flagged: Choice | None  # a faster point that is flagged
    comparisons: tuple[Comparison, ...]  # newest free-threaded build first
    designs: dict[str, tuple[str, ...]]  # build -> designs measured for this workload
    thread_counts: tuple[int, ...]
    reference: Choice  # the newest GIL twin's best design (the run's best when there is no pair)
    builds: tuple[BuildBest, ...]  # every build at its best, relative to the reference
    servers: tuple[ServerBest, ...] = ()  # each server at its best (a run of several servers)
    # Unflagged where possible, else the fastest with its flags:
    one_process: BuildBest | None = None  # the best design served by one process, any build
    gil_best: BuildBest | None = None  # the best a GIL build reached, any server and design


def _outcome(ratio: Estimate | None) -> str:
    if ratio is None or math.isnan(ratio.value):
        return "undetermined"
    if ratio.has_interval and ratio.contains(1.0):
        return "tie"
    if not ratio.has_interval:
        return "undetermined"
    return "free-threaded" if ratio.value > 1 else "gil"


def _memory_ratio(a: Choice | None, b: Choice | None) -> float:
    if a is None or b is None:
        return math.nan
    top, bottom = a.point.memory_bytes, b.point.memory_bytes
    return top / bottom if math.isfinite(top) and math.isfinite(bottom) and bottom > 0 else math.nan


def compare_twins(series: Sequence[Series], free_threaded: str, gil: str) -> Comparison:
    mine = [s for s in series if s.key.build == free_threaded]
    theirs = [s for s in series if s.key.build == gil]
    contender, contender_flagged = best_clean(mine)
    reference, reference_flagged = best_clean(theirs)
    qualified: list[str] = []
    if contender is None and contender_flagged is not None:  # every point flagged: qualified only
        contender, contender_flagged = contender_flagged, None
        qualified += disqualifying(contender.point.flags)
    if reference is None and reference_flagged is not None:
        reference, reference_flagged = reference_flagged, None
        qualified += disqualifying(reference.point.flags)
    ratio = None
    if contender is not None and reference is not None:
        ratio = stats.ratio_of_medians(contender.point.samples, reference.point.samples)
    return Comparison(
        free_threaded,
        gil,
        contender,
        reference,
        contender_flagged,
        reference_flagged,
        ratio,
        _outcome(ratio),
        _memory_ratio(contender, reference),
        tuple(dict.fromkeys(qualified)),
    )


def verdicts(model: RunModel) -> tuple[Verdict, ...]:
    """One verdict per workload (and scaling kind), from the closed-loop series only."""
    groups: dict[tuple[str, str, int, str | None], list[Series]] = {}
    for s in model.series:
        if s.key.load != "closed" or s.key.scaling == "weak":
            continue
        groups.setdefault((s.key.workload_class, s.key.workload, s.key.size, s.key.scaling), []).append(s)
    result = []
    for (wclass, workload, size, scaling), series in sorted(
        groups.items(), key=lambda kv: (class_rank(kv[0][0]), kv[0][1], kv[0][2], kv[0][3] or "")
    ):
        best, best_flagged = best_clean(series)
        if best is None:  # every point is flagged: the fastest is shown, with its flags
            best, best_flagged = best_choice(series), None
        pairs = []
        for build in sorted({s.key.build for s in series}, key=_version_key, reverse=True):
            twin = gil_twin(model.meta, build)
            if twin is not None and any(s.key.build == twin for s in series):
                pairs.append(compare_twins(series, build, twin))
        reference = next((c.reference for c in pairs if c.reference is not None), best)
        per_build = []
        for build in sorted({s.key.build for s in series}, key=_version_key):
            mine, flagged = best_clean([s for s in series if s.key.build == build])
            mine = mine or flagged  # every point of this build flagged: its fastest, with its flags
            if mine is not None:
                per_build.append(BuildBest(build, mine, _relative(mine, reference)))
        servers = []
        for server in model.servers if len(model.servers) > 1 else ():
            at_best = _best_of([s for s in series if s.key.server == server], reference)
            if at_best is not None:
                servers.append(ServerBest(server, at_best.choice, at_best.relative))
        designs: dict[str, list[str]] = {}  # mode·topology: which server ran what is the servers' table
        for s in series:
            design = dataclasses.replace(s.key, server=None).design
            if design not in designs.setdefault(s.key.build, []):
                designs[s.key.build].append(design)
        threads = tuple(sorted({p.threads for s in series for p in s.points}))
        result.append(
            Verdict(
                wclass,
                workload,
                size,
                scaling,
                best,
                best_flagged,
                tuple(pairs),
                {b: tuple(d) for b, d in designs.items()},
                threads,
                reference,
                tuple(per_build),
                tuple(servers),
                _best_of([s for s in series if s.key.one_process], reference),
                _best_of([s for s in series if model.free_threaded(s.key.build) is False], reference),
            )
        )
    return tuple(result)


def _relative(choice: Choice, reference: Choice) -> Estimate:
    return stats.ratio_of_medians(choice.point.samples, reference.point.samples)


def _best_of(series: Sequence[Series], reference: Choice) -> BuildBest | None:
    """The best unflagged point of ``series`` (else its fastest, flagged), relative to the reference."""
    best, flagged = best_clean(series)
    choice = best or flagged
    return None if choice is None else BuildBest(choice.build, choice, _relative(choice, reference))


def _version_key(build: str) -> tuple[int, ...]:
    """``3.14t`` -> (3, 14, 1): newer versions later, a free-threaded build after its twin."""
    numbers = [int(n) for n in re.findall(r"\d+", build)[:2]]
    return (*numbers, 1 if build.endswith("t") else 0)


@dataclass(frozen=True)
class Overhead:
    """A free-threaded build against its GIL twin at 1 thread."""

    key: SeriesKey  # the free-threaded series
    gil_build: str
    free_threaded: Point
    gil: Point
    ratio: Estimate  # free-threaded / GIL throughput
    time_overhead: Estimate  # extra time per call on the free-threaded build: GIL/FT - 1


def _minor(version: str) -> str | None:
    match = re.match(r"(\d+)\.(\d+)", version)
    return f"{match[1]}.{match[2]}" if match else None


def gil_twin(meta: RunMeta, build: str) -> str | None:
    """The GIL build of the same major.minor as free-threaded ``build``, if the run has one."""
    record = meta.builds.get(build)
    if record is None or not record.py_gil_disabled or _minor(record.version) is None:
        return None
    twins = sorted(
        name
        for name, other in meta.builds.items()
        if not other.py_gil_disabled and _minor(other.version) == _minor(record.version)
    )
    return twins[0] if twins else None


def _one_thread(series: Series) -> Point | None:
    return next((p for p in series.points if p.threads == 1), None)


def ft_overheads(model: RunModel) -> tuple[Overhead, ...]:
    by_key = {s.key: s for s in model.series}
    result = []
    for s in model.series:
        if s.key.load != "closed":
            continue
        twin = gil_twin(model.meta, s.key.build)
        if twin is None:
            continue
        other = by_key.get(dataclasses.replace(s.key, build=twin))
        ft_point = _one_thread(s)
        gil_point = _one_thread(other) if other is not None else None
        if ft_point is None or gil_point is None:
            continue
        ratio = stats.ratio_of_medians(ft_point.samples, gil_point.samples)
        result.append(Overhead(s.key, twin, ft_point, gil_point, ratio, stats.slowdown(ratio)))
    return tuple(result)
