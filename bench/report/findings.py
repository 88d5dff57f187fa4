"""What a run says, in the terms a reader decides by: verdicts, and the cost of free threading.

The verdict answers, per workload, *should this service move to the free-threaded build, and how
should it be served?* by fixed rules, in two stages:

- **Exploration chooses, it does not judge.** Each build's *candidate* is its eligible point with
  the highest lower confidence bound of the median (not the highest median: that rewards the
  luckiest of many noisy designs). Eligible: no flag that disqualifies (see :mod:`ftscale.vocab`:
  a saturated generator, errors, the GIL back on, idle or hogging serving units, Nagle on) and no
  more threads than the server had CPUs (an oversubscribed point is shown, never chosen). A
  build with no eligible point is represented by its best flagged one, and the comparison is
  *qualified* by that point's flags.
- **Confirmation judges.** An HTTP run measures the candidates of every free-threaded build and
  its GIL twin again in paired rounds (:mod:`ftscale.bench.http.confirm`); the ratio and its
  interval come from those rounds alone (Hodges-Lehmann of the per-round log-ratios, Wilcoxon
  interval with its exact coverage). A run without them (micro runs, runs made before, or
  ``--rounds 0``) compares the exploration medians, and says so.
- **Words match the evidence** (:func:`ftscale.bench.intervals.decide`): a build *wins* only when
  the interval excludes 1; the two are *equivalent* only when the interval lies within the margin
  (``--margin``, 5 % by default); otherwise the comparison is *inconclusive*, with the rounds the
  observed spread suggests. When the load generator limited both sides, the outcome is
  *generator-bound*: neither side's capacity was measured.
- **One fixed reference:** the GIL twin's candidate. A free-threaded build is compared with that,
  never with a GIL design that cannot scale by construction.
- **Memory** is weighed by the server's distinct pages (each page its processes hold counted
  once), PSS in runs made before that was measured, RSS where neither is.
- **Servers** (a run of several HTTP servers): the server is part of the design. Each server at
  its best, the best design that serves from *one process* and the best a *GIL build* reached
  are kept beside the verdict, each relative to the same reference (exploration medians: these
  are descriptive, only the twins' comparison is confirmed).

The *single-thread overhead* of each free-threaded build against its GIL twin, and which build
is whose twin, are :mod:`.overhead`'s. Nothing here formats text; :mod:`.words` writes the
sentences.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from ftscale.bench import intervals
from ftscale.bench.report import stats
from ftscale.bench.report.model import Confirmation, Finalist, Point, RunModel, Series, class_rank
from ftscale.bench.report.overhead import gil_twin
from ftscale.bench.report.stats import Estimate
from ftscale.vocab import Flag, flag_info


@dataclass(frozen=True)
class Choice:
    series: Series
    point: Point

    @property
    def clean(self) -> bool:
        """Eligible to win unqualified: no disqualifying flag, and not oversubscribed."""
        return not disqualifying(self.point.flags) and not self.oversubscribed

    @property
    def oversubscribed(self) -> bool:
        return str(Flag.OVERSUBSCRIBED) in self.point.flags

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


def lower_bound(point: Point) -> float:
    """The median's lower confidence bound (the median itself when it has no interval)."""
    estimate = point.throughput
    return estimate.low if estimate.has_interval else estimate.value


def rank(c: Choice) -> tuple[float, float, int]:
    """How candidates are ranked: lower confidence bound, then median, then fewer threads.

    The same rule the bench uses to choose what to confirm (:func:`ftscale.bench.http.confirm.candidate`).
    """
    return (lower_bound(c.point), c.point.throughput.value, -c.point.threads)


def best_clean(series: Sequence[Series]) -> tuple[Choice | None, Choice | None]:
    """(the eligible candidate, a point that is flagged or oversubscribed and ranks above it).

    With no eligible point the second is the best-ranked point that is not oversubscribed
    (flags and all); an oversubscribed point is never returned as a stand-in.
    """
    points = [Choice(s, p) for s in series for p in s.points]
    if not points:
        return None, None
    clean = [c for c in points if c.clean]
    best = max(clean, key=rank) if clean else None
    fitting = [c for c in points if not c.oversubscribed]
    if not fitting:  # only oversubscribed points: nothing that could carry a comparison
        return None, None
    overall = max(fitting, key=rank)
    faster_flagged = overall if not overall.clean and (best is None or rank(overall) > rank(best)) else None
    return best, faster_flagged


Outcome = Literal["free-threaded", "gil", "equivalent", "inconclusive", "generator-bound", "undetermined"]
OUTCOME_OF: dict[intervals.Decision, Outcome] = {
    "higher": "free-threaded",
    "lower": "gil",
    "equivalent": "equivalent",
    "inconclusive": "inconclusive",
    "undetermined": "undetermined",
}


@dataclass(frozen=True)
class Comparison:
    """A free-threaded build's candidate design against its GIL twin's, for one workload.

    ``contender`` and ``reference`` are the points the ratio compares: the confirmation rounds of
    each candidate where the run has them (``confirmed``), else the exploration points.
    ``explored_contender``/``explored_reference`` are the exploration candidates either way.
    """

    free_threaded_build: str
    gil_build: str
    contender: Choice | None  # the free-threaded build's candidate
    reference: Choice | None  # the GIL twin's candidate
    contender_flagged: Choice | None  # a flagged point of the free-threaded build that ranked higher
    reference_flagged: Choice | None
    ratio: Estimate | None  # contender / reference
    outcome: Outcome
    memory_ratio: float  # contender / reference memory (see Point.memory_bytes); NaN when unknown
    # Flags of a contender or reference that had to be taken flagged (its build has no eligible
    # point): the comparison stands only with these qualifications.
    qualified: tuple[str, ...] = ()
    confirmed: bool = False  # the ratio rests on paired confirmation rounds
    # An HTTP run's exploration medians stand in for rounds it did not measure ("explored"); a
    # micro run has no second stage ("measured").
    stage: Literal["confirmed", "explored", "measured"] = "measured"
    paired: intervals.Paired | None = None  # those rounds' analysis
    rounds_needed: int | None = None  # inconclusive: rounds the observed spread suggests
    margin: float = intervals.DEFAULT_MARGIN
    explored_contender: Choice | None = None
    explored_reference: Choice | None = None


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
    builds: tuple[BuildBest, ...]  # every build's candidate against the reference (confirmed where it was)
    servers: tuple[ServerBest, ...] = ()  # each server at its best (a run of several servers)
    # Unflagged where possible, else the fastest with its flags:
    one_process: BuildBest | None = None  # the best design served by one process, any build
    gil_best: BuildBest | None = None  # the best a GIL build reached, any server and design
    explored_builds: tuple[BuildBest, ...] = ()  # every build's exploration candidate, for the tables


def outcome_of(ratio: Estimate | None, margin: float, generator_bound: bool = False) -> Outcome:
    """The outcome a ratio's interval allows (:func:`ftscale.bench.intervals.decide`); generator-bound
    whatever the interval when the load generator limited both sides."""
    if generator_bound:
        return "generator-bound"
    return OUTCOME_OF[intervals.decide(ratio, margin)]


def _memory_ratio(a: Choice | None, b: Choice | None) -> float:
    if a is None or b is None:
        return math.nan
    top, bottom = a.point.memory_bytes, b.point.memory_bytes
    return top / bottom if math.isfinite(top) and math.isfinite(bottom) and bottom > 0 else math.nan


def _generator_bound(*choices: Choice | None) -> bool:
    saturated = str(Flag.GENERATOR_SATURATED)
    return all(c is not None and saturated in c.point.flags for c in choices)


def _confirmed_pair(
    confirmation: Confirmation | None, free_threaded: str, gil: str
) -> tuple[Finalist, Finalist] | None:
    if confirmation is None:
        return None
    mine, theirs = confirmation.of_build(free_threaded), confirmation.of_build(gil)
    if mine is None or theirs is None or len(set(mine.by_round) & set(theirs.by_round)) < 2:
        return None
    return mine, theirs


def compare_twins(
    series: Sequence[Series],
    free_threaded: str,
    gil: str,
    confirmation: Confirmation | None = None,
    margin: float = intervals.DEFAULT_MARGIN,
    http: bool = False,
) -> Comparison:
    """The free-threaded build's candidate against its GIL twin's (see the module docstring)."""
    mine = [s for s in series if s.key.build == free_threaded]
    theirs = [s for s in series if s.key.build == gil]
    contender, contender_flagged = best_clean(mine)
    reference, reference_flagged = best_clean(theirs)
    qualified: list[str] = []
    if contender is None and contender_flagged is not None:  # no eligible point: qualified only
        contender, contender_flagged = contender_flagged, None
        qualified += disqualifying(contender.point.flags)
    if reference is None and reference_flagged is not None:
        reference, reference_flagged = reference_flagged, None
        qualified += disqualifying(reference.point.flags)
    explored = (contender, reference)
    bound = _generator_bound(contender, reference)
    pair = _confirmed_pair(confirmation, free_threaded, gil)
    paired: intervals.Paired | None = None
    ratio = None
    if pair is not None:
        ours, ref = pair
        rounds = sorted(set(ours.by_round) & set(ref.by_round))
        paired = intervals.paired_ratio([ours.by_round[r] for r in rounds], [ref.by_round[r] for r in rounds])
        ratio = paired.ratio
        contender, reference = Choice(ours.series, ours.point), Choice(ref.series, ref.point)
        qualified = [
            *qualified,
            *(f for c in (contender, reference) for f in disqualifying(c.point.flags)),
        ]
        bound = bound or _generator_bound(contender, reference)
    elif contender is not None and reference is not None:
        ratio = stats.ratio_of_medians(contender.point.samples, reference.point.samples)
    outcome = outcome_of(ratio, margin, bound)
    needed = None
    if outcome == "inconclusive" and paired is not None:
        needed = intervals.rounds_needed(paired, margin)
    return Comparison(
        free_threaded_build=free_threaded,
        gil_build=gil,
        contender=contender,
        reference=reference,
        contender_flagged=contender_flagged,
        reference_flagged=reference_flagged,
        ratio=ratio,
        outcome=outcome,
        memory_ratio=_memory_ratio(contender, reference),
        qualified=tuple(dict.fromkeys(qualified)),
        confirmed=pair is not None,
        stage="confirmed" if pair is not None else ("explored" if http else "measured"),
        paired=paired,
        rounds_needed=needed,
        margin=margin,
        explored_contender=explored[0],
        explored_reference=explored[1],
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
        confirmation = model.confirmation(workload, size) if scaling is None else None
        margin = margin_of(model)
        for build in sorted({s.key.build for s in series}, key=_version_key, reverse=True):
            twin = gil_twin(model.meta, build)
            if twin is not None and any(s.key.build == twin for s in series):
                pairs.append(
                    compare_twins(series, build, twin, confirmation, margin, http=model.meta.kind == "http")
                )
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
        gil_series = [s for s in series if model.free_threaded(s.key.build) is False]
        result.append(
            Verdict(
                workload_class=wclass,
                workload=workload,
                size=size,
                scaling=scaling,
                best=best,
                best_flagged=best_flagged,
                comparisons=tuple(pairs),
                designs={b: tuple(d) for b, d in designs.items()},
                thread_counts=tuple(sorted({p.threads for s in series for p in s.points})),
                reference=reference,
                builds=_confirmed_builds(per_build, pairs),
                servers=tuple(servers),
                one_process=_best_of([s for s in series if s.key.one_process], reference),
                gil_best=_best_of(gil_series, reference),
                explored_builds=tuple(per_build),
            )
        )
    return tuple(result)


def _confirmed_builds(explored: Sequence[BuildBest], pairs: Sequence[Comparison]) -> tuple[BuildBest, ...]:
    """Each build's row: its confirmation rounds against its twin's where the pair was confirmed
    (the reference exactly 1), else its exploration candidate."""
    confirmed: dict[str, BuildBest] = {}
    for c in pairs:
        if c.confirmed and c.contender is not None and c.reference is not None and c.ratio is not None:
            confirmed[c.free_threaded_build] = BuildBest(c.free_threaded_build, c.contender, c.ratio)
            confirmed.setdefault(c.gil_build, BuildBest(c.gil_build, c.reference, stats.exact(1.0)))
    return tuple(confirmed.get(b.build, b) for b in explored)


def margin_of(model: RunModel) -> float:
    """The run's equivalence margin (``--margin``; the default for runs made before it)."""
    margin = model.meta.config.get("margin")
    return float(margin) if isinstance(margin, int | float) and 0 < margin < 1 else intervals.DEFAULT_MARGIN


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
