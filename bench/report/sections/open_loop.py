"""Open loop: latency at fixed offered rates, and each design's capacity at a latency target.

The capacity table reads the search's steps (:mod:`ftscale.bench.http.capacity` holds its rules,
quoted here in words for runs that searched with repeated steps).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ftscale.bench.http import capacity as rules
from ftscale.bench.report import charts, fmt, labels, words
from ftscale.bench.report.document import Block, Heading, Paragraph, Table
from ftscale.bench.report.model import Capacity, RunModel, Series
from ftscale.bench.report.sections.common import CI, figure, latency, slug
from ftscale.schema import RunMeta


def _rates_table(series: Sequence[Series]) -> Table:
    rows = tuple(
        (
            labels.series_label(s.key),
            str(p.threads),
            f"{fmt.num(100 * (s.key.offered_share or 0))} %",
            fmt.num(p.cell.offered_rps or math.nan),  # type: ignore[union-attr]
            fmt.estimate(p.throughput),
            fmt.num(p.latency_ms["p50"]),
            latency(p.latency_ms["p99"], p.latency_requests),
            str(p.errors),
            labels.flag_names(p.flags),
        )
        for s in series
        for p in s.points
    )
    header = ("Series", "Threads", "Offered", "req/s offered", f"Served {CI}", "p50 ms", "p99 ms (requests)")
    return Table((*header, "Errors", "Flags"), rows, "lrrrrrrrl")


def _at_capacity(c: Capacity) -> str:
    """The p99 at the capacity's step, with its upper bound where it has one."""
    at = c.at
    if at is None:
        return fmt.DASH
    bound = f" (≤ {fmt.num(at.p99_upper_ms)})" if math.isfinite(at.p99_upper_ms) else ""
    return fmt.num(at.p99_ms) + bound


def _capacity_rows(series: Sequence[Series]) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for s in series:
        for p in s.points:
            c = p.capacity
            if c is None:
                continue
            loads = {st.loads for st in c.steps}
            tried = str(len(c.steps)) + (
                f" {fmt.TIMES} {loads.pop()} loads" if len(loads) == 1 and c.repeated else ""
            )
            rows.append(
                (
                    labels.series_label(s.key),
                    str(p.threads),
                    fmt.num(c.target_ms),
                    fmt.capacity(c.low, c.high),
                    fmt.capacity(*c.per(c.cores)),
                    fmt.capacity(*c.per(c.memory_bytes / 2**30)),
                    _at_capacity(c),
                    words.step_failures(c),
                    tried,
                    labels.flag_names(p.flags),
                )
            )
    return rows


def _capacity_curves(series: Sequence[Series]) -> list[charts.CapacityCurve]:
    return [
        charts.CapacityCurve(
            panel=f"{labels.series_label(s.key, with_build=False)} @{p.threads}",
            build=s.key.build,
            capacity=p.capacity,
            note=f"{s.key.build}: {words.capacity_words(p.capacity)}",
        )
        for s in series
        for p in s.points
        if p.capacity is not None
    ]


def _capacity_method(series: Sequence[Series], meta: RunMeta) -> str:
    """How the capacities of these series were searched, in words (old runs searched otherwise)."""
    found = [p.capacity for s in series for p in s.points if p.capacity is not None]
    if not (found and all(c.repeated for c in found)):
        return (
            "These capacities were searched before repeated steps: one load per rate, judged by its p99 "
            "point estimate, its throughput counting answers completed after the window too (so a rate "
            "was never judged unserved); they are shown as measured, with the interval the steps give."
        )
    settings = meta.config.get("settings")
    recorded = settings.get("arrivals") if isinstance(settings, dict) else None
    arrivals = "evenly spaced" if recorded == "uniform" else "Poisson"
    passing = [st.samples for c in found for st in c.steps if st.passed]
    rests = f" (every passing step here rests on at least {min(passing):,})" if passing else ""
    percents = [f"{100 * g:g}" for g in rules.GRID]
    shares = f"{', '.join(percents[:-1])} and {percents[-1]}"
    below = " and ".join(f"{100 * g:g} %" for g in rules.BELOW)
    level = f"{100 * rules.LEVEL:g}"
    return (
        f"Each rate tried (a step) is loaded at least {rules.MIN_LOADS} times in a row on the design's "
        f"server, each load after a warm-up at that rate, with {arrivals} arrivals from "
        f"recorded seeds, and more loads where the step had fewer than {rules.MIN_SAMPLES:,} "
        f"requests{rests}. A step passes when no request failed, "
        f"the answers completed inside the load windows are at least {100 * rules.SERVED_SHARE:g} % "
        f"of the requests due in them, and the p99's one-sided {level} % upper confidence bound (an exact "
        "binomial order statistic of the step's merged latency histograms; exact for independent "
        "latencies, optimistic for correlated ones) is at or under the target. The search tries "
        f"{shares} % of the design's closed-loop median upwards and stops at the first failure (below "
        f"the first: {below} downwards), then bisects {rules.REFINEMENTS} times between the highest "
        "pass and the lowest failure."
    )


def open_loop_section(model: RunModel) -> list[Block]:
    """Open-loop rates and the capacity at a latency target, where the run measured them."""
    open_series = [s for s in model.series if s.key.load == "open"]
    if not open_series:
        return []
    blocks: list[Block] = [
        Heading(2, "Open loop: latency at fixed rates, and capacity at a latency target"),
        Paragraph(
            "Requests are offered at a fixed rate (a share of the design's own closed-loop median) and each "
            "latency counts from the moment the request was due, not sent, so a server that falls behind "
            "shows it (no coordinated omission). Percentiles are of all requests of the repetitions merged."
        ),
    ]
    for workload, _wclass, size in model.workloads():
        mine = [s for s in open_series if s.key.workload == workload and s.key.size == size]
        rates = [s for s in mine if s.key.offered_share is not None]
        if rates:
            stem = slug(f"{workload}-{size}")
            blocks.append(Heading(3, f"{workload}: fixed rates"))
            blocks += figure(
                f"{stem}-open.png", f"{workload}: open-loop p99", charts.open_loop(rates, workload)
            )
            blocks.append(_rates_table(rates))
        searched = [s for s in mine if s.key.offered_share is None]
        capacity = _capacity_rows(searched)
        if capacity:
            header = ("Series", "Threads", "Target p99 ms", "Capacity req/s", "per core", "per GiB")
            stem = slug(f"{workload}-{size}")
            blocks += [
                Heading(3, f"{workload}: capacity at the latency target"),
                Paragraph(words.capacity_sentence(searched)),
                Table(
                    (*header, "p99 ms (bound)", "Failed by", "Rates", "Flags"),
                    tuple(capacity),
                    "lrrrrrrlrl",
                ),
                Paragraph(
                    "Capacity [passes, fails): the highest offered rate that passed, every lower rate tried "
                    "passing too, and the lowest rate that failed; the capacity lies between them. A rate "
                    "above a failure that passed does not count: the p99 is not assumed to grow with the "
                    "rate. ≥ X: no rate failed up to the design's closed-loop median, the highest rate "
                    "tried, so the capacity is censored: at least X. < X: even the lowest rate tried failed. "
                    "p99 ms (bound): at the capacity, with its upper confidence bound. Rates: how many "
                    "were tried, and the loads of each. "
                    "Failed by: why the lowest failing rate failed (failed requests, fewer answers inside "
                    "the windows than 97 % of the requests due, the p99's upper bound over the target). "
                    "Per core: over the CPUs the server was pinned to (its threads, at most the "
                    "server CPUs). Per GiB: over the server's memory (PSS) at the capacity rate."
                ),
                Paragraph(_capacity_method(searched, model.meta)),
            ]
            blocks += figure(
                f"{stem}-capacity.png",
                f"{workload}: p99 against the offered rate, the target and each capacity",
                charts.capacity(_capacity_curves(searched), workload),
            )
    return blocks
