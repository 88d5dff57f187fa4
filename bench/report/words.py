"""The verdict in words: one sentence per workload, the caveats that apply, and the reading keys.

Every number in a sentence is a field of the model or of a finding, formatted by :mod:`.fmt`;
the wording is decided here once, and the report, the terminal summary and the README use it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ftscale.bench import intervals
from ftscale.bench.report import fmt, labels
from ftscale.bench.report.findings import BuildBest, Choice, Comparison, Verdict, disqualifying
from ftscale.bench.report.model import Capacity, Point, RunModel, Series


def where(choice: Choice) -> str:
    """``3.14t threadpool·single at 2 threads`` (HTTP) or ``3.14t at 2 threads`` (micro)."""
    design = choice.series.key.design
    kind = f" {design}" if choice.series.key.mode else ""
    n = choice.point.threads
    return f"{choice.build}{kind} at {n} thread{'s' if n != 1 else ''}"


def rate(choice: Choice) -> str:
    return f"{fmt.num(choice.point.throughput.value)} {choice.series.key.unit}"


def _flags(choice: Choice) -> str:
    return labels.flag_names(disqualifying(choice.point.flags))


def stream_clause(c: Comparison) -> str:
    """For streams: each side's p99 gap between chunks and p99 time to first byte ("" otherwise)."""
    if c.contender is None or c.reference is None:
        return ""
    mine, theirs = c.contender.point.stream, c.reference.point.stream
    if mine is None or theirs is None or not (mine.gap_samples and theirs.gap_samples):
        return ""
    ft, gil = c.free_threaded_build, c.gil_build
    return (
        f"; p99 gap between chunks {fmt.num(mine.gap_p99_ms)} ms ({ft}) against "
        f"{fmt.num(theirs.gap_p99_ms)} ms ({gil}), p99 time to first byte "
        f"{fmt.num(mine.ttfb_ms['p99'])} ms against {fmt.num(theirs.ttfb_ms['p99'])} ms"
    )


MEMORY_KIND = {"pages": "its distinct pages", "PSS": "PSS", "RSS": "RSS"}
GENERATOR_ADVICE = (
    "to lift it, use wrk (apt-get install wrk) if the built-in generator ran, give the generator more "
    "CPUs (--client-cpus), or make each request heavier (--size WORKLOAD=N)"
)


def evidence(c: Comparison) -> str:
    """What the ratio rests on: paired confirmation rounds, or an HTTP run's exploration medians
    (a micro run's medians need no saying: it has one stage)."""
    if c.stage == "confirmed" and c.paired is not None:
        return f", {c.paired.rounds} paired rounds"
    if c.stage == "explored":
        return ", exploration medians, not confirmed in paired rounds"
    return ""


def comparison_sentence(c: Comparison, memory: bool) -> str:
    """One comparison of a free-threaded build with its GIL twin's candidate design."""
    if c.contender is None or c.reference is None:
        missing = c.free_threaded_build if c.contender is None else c.gil_build
        return (
            f"{missing} has no measurement here that could be compared (none that is not "
            f"oversubscribed), so {c.free_threaded_build} and {c.gil_build} cannot be compared."
        )
    ratio = c.ratio
    assert ratio is not None
    interval = fmt.ratio(ratio)
    ft, gil = c.free_threaded_build, c.gil_build
    sides = f"{where(c.contender)}, {rate(c.contender)}, against {where(c.reference)}, {rate(c.reference)}"
    margin = f"{fmt.pct(c.margin, 0)}"
    if c.outcome == "generator-bound":
        head = (
            f"inconclusive for {ft} against {gil}: the load generator was the limit on both sides ({sides}), "
            f"so neither measured what its server can serve; {GENERATOR_ADVICE}"
        )
    elif c.outcome == "equivalent":
        head = (
            f"{ft} and {gil} are equivalent within {margin} ({sides}; {ft} ÷ {gil} {interval}{evidence(c)})"
        )
    elif c.outcome == "inconclusive":
        more = (
            f": about {c.rounds_needed} rounds would decide (--rounds {c.rounds_needed})"
            if c.rounds_needed
            else ""
        )
        need = "more rounds" if c.stage == "confirmed" else "more measurements"
        head = (
            f"inconclusive: need {need} ({sides}; {ft} ÷ {gil} {interval}{evidence(c)}); the interval "
            f"holds 1 and reaches beyond {margin}{more}"
        )
    elif c.outcome == "undetermined":
        head = f"{sides} (ratio {interval}): too few measurements to tell them apart"
    else:
        winner, loser = (
            (c.contender, c.reference) if c.outcome == "free-threaded" else (c.reference, c.contender)
        )
        factor = ratio.value if c.outcome == "free-threaded" else 1 / ratio.value
        if c.stage == "confirmed":
            lo, hi = intervals.equivalence_bounds(c.margin)
            small = ratio.has_interval and lo <= ratio.low and ratio.high <= hi
            head = (
                f"{where(winner)} wins: {fmt.fixed(factor)}{fmt.TIMES} {where(loser)} round for round "
                f"({ft} ÷ {gil} {interval}{evidence(c)}; medians over the rounds {rate(c.contender)} ({ft}) "
                f"and {rate(c.reference)} ({gil}))"
                + (f", a difference within the {margin} margin" if small else "")
            )
        else:
            head = (
                f"{where(winner)} wins: {rate(winner)}, {fmt.fixed(factor)}{fmt.TIMES} {where(loser)} "
                f"({rate(loser)}; {ft} ÷ {gil} {interval}{evidence(c)})"
            )
    head += stream_clause(c)
    if memory and math.isfinite(c.memory_ratio):
        mine, theirs = c.contender.point, c.reference.point
        if mine.memory_kind == theirs.memory_kind:
            head += (
                f"; server memory ({MEMORY_KIND[mine.memory_kind]}) {ft} {fmt.mib(mine.memory_bytes)}, "
                f"{gil} {fmt.mib(theirs.memory_bytes)}"
            )
        else:
            head += (
                f"; server memory {ft} {fmt.mib(mine.memory_bytes)} ({MEMORY_KIND[mine.memory_kind]}), "
                f"{gil} {fmt.mib(theirs.memory_bytes)} ({MEMORY_KIND[theirs.memory_kind]})"
            )
    if c.qualified:
        head += f". Qualified: one side has only flagged points ({labels.flag_names(c.qualified)})"
    return head[0].upper() + head[1:] + "."


def outcome_words(c: Comparison) -> str:
    """The outcome in a table cell: who wins, equivalent, or why not."""
    if c.outcome == "free-threaded":
        return f"{c.free_threaded_build} wins"
    if c.outcome == "gil":
        return f"{c.gil_build} wins"
    if c.outcome == "equivalent":
        return f"equivalent within {fmt.pct(c.margin, 0)}"
    if c.outcome == "inconclusive":
        return "inconclusive" + (f" (about {c.rounds_needed} rounds would decide)" if c.rounds_needed else "")
    if c.outcome == "generator-bound":
        return "inconclusive: the load generator was the limit"
    return "undetermined"


def fresh_servers_sentence(model: RunModel) -> str:
    """How each repetition's server started and what that cost (HTTP runs that recorded it)."""
    costs = model.repetition_overheads()
    if not costs:
        return ""
    starts = [
        r.server_start
        for c in model.run.cells
        for r in getattr(c, "repetitions", ())
        if getattr(r, "server_start", None)
    ]
    forked = sum(1 for s in starts if s == "fork")
    how = (
        "forked from a pre-imported parent of its build"
        if forked == len(starts)
        else f"forked from a pre-imported parent ({forked} of {len(starts)}) or started as a new interpreter"
    )
    median = intervals.median(costs)
    disturbed = sum(len(getattr(c, "disturbed", ())) for c in model.run.cells)
    redo = (
        f"; {fmt.count(disturbed, 'repetition')} disturbed by other processes or the hypervisor "
        "were measured again"
        if disturbed
        else ""
    )
    return (
        f"Each repetition ran on a fresh server, {how}: its start (until /health answered) and stop took "
        f"{fmt.num(median)} s (median of {len(costs)}; longest {fmt.num(max(costs))} s){redo}."
    )


def _against_reference(best: BuildBest, v: Verdict) -> str:
    """Where, how fast, and its ratio to the reference (with its flags, if it has any)."""
    relation = (
        "the reference"
        if best.choice.point is v.reference.point
        else f"{fmt.ratio(best.relative)} of the reference"
    )
    flags = "" if best.choice.clean else f"; flagged: {_flags(best.choice)}"
    return f"{where(best.choice)}, {rate(best.choice)} ({relation}{flags})"


def servers_sentence(v: Verdict) -> str:
    """Across servers: the best build, server and design, the best in one process, the best on a
    GIL build (each against the verdict's reference: the GIL twin's best, whatever its server)."""
    if not v.servers:
        return ""
    if v.best.clean:
        parts = [f"Across servers, the best unflagged point is {where(v.best)}, {rate(v.best)}"]
    else:
        parts = [
            f"Across servers, the fastest is {where(v.best)}, {rate(v.best)}, flagged ({_flags(v.best)})"
        ]
    if v.one_process is not None and v.one_process.choice.point is not v.best.point:
        parts.append(f"in one process, {_against_reference(v.one_process, v)}")
    if v.gil_best is not None and v.gil_best.choice.point is not v.best.point:
        parts.append(f"on a GIL build, {_against_reference(v.gil_best, v)}")
    return "; ".join(parts) + "."


def faster_but_flagged(choice: Choice) -> str:
    return f"{where(choice)} was faster ({rate(choice)}) but flagged ({_flags(choice)})"


def caveats(model: RunModel, v: Verdict) -> list[str]:
    """What limits what the verdict can say, most important first."""
    out: list[str] = []
    server = server_cpus(model)
    if model.meta.kind == "http" and server is not None and server < 2:
        out.append(
            f"the server had {server} CPU: this run shows single-core overhead, not scaling "
            "(speedups above 1 are not possible)"
        )
    elif server is not None and max(v.thread_counts, default=1) > server:
        out.append(f"points above {server} threads ran on {server} CPUs (oversubscribed)")
    if model.meta.config.get("shared_cpus"):
        out.append("server and load generator shared CPUs")
    flagged_points = [v.best_flagged] + [
        f for c in v.comparisons for f in (c.contender_flagged, c.reference_flagged)
    ]
    used = {id(x.point) for c in v.comparisons for x in (c.contender, c.reference) if x is not None}
    seen: set[int] = set(used)
    for flagged in flagged_points:
        if flagged is not None and id(flagged.point) not in seen:
            seen.add(id(flagged.point))
            out.append(faster_but_flagged(flagged))
    designs = {b: set(d) for b, d in v.designs.items()}
    every = set().union(*designs.values()) if designs else set()
    missing = {b: sorted(every - d) for b, d in designs.items() if every - d}
    if missing:
        out.append(
            "not measured: "
            + "; ".join(f"{b} with {', '.join(d)}" for b, d in sorted(missing.items()))
            + " (the preset gives each build its fair designs)"
        )
    return out


def verdict_sentences(model: RunModel, found: Sequence[Verdict]) -> list[str]:
    """One short paragraph per workload: the answer, then its caveats."""
    memory = model.meta.kind == "http"
    lines = []
    for v in found:
        scaling = f", {v.scaling} scaling" if v.scaling and model.meta.kind == "micro" else ""
        head = f"{labels.class_name(v.workload_class)} — {v.workload}{scaling}: "
        if v.comparisons:
            body = " ".join(comparison_sentence(c, memory) for c in v.comparisons)
        else:
            body = (
                f"the best measured is {where(v.best)}, {rate(v.best)} "
                "(no free-threaded build and GIL twin to compare)."
            )
        servers = servers_sentence(v)
        body += f" {servers}" if servers else ""
        shared = set(common_caveats(model, found))
        notes = [n for n in caveats(model, v) if n not in shared]
        tail = f" Caveats: {'; '.join(notes)}." if notes else ""
        lines.append(head + body + tail)
    return lines


def common_caveats(model: RunModel, found: Sequence[Verdict]) -> list[str]:
    """The caveats every workload's verdict shares, said once (with more than one workload)."""
    if len(found) < 2:
        return []
    each = [caveats(model, v) for v in found]
    return [note for note in each[0] if all(note in others for others in each[1:])]


def common_caveats_sentence(model: RunModel, found: Sequence[Verdict]) -> str:
    shared = common_caveats(model, found)
    return f"For every workload: {'; '.join(shared)}." if shared else ""


def capacity_where(series: Series, point: Point) -> str:
    """``3.14t inline·loops at 1 thread``: a latency-target cell, as its sentence names it."""
    n = point.threads
    return f"{series.key.build} {series.key.design} at {n} thread{'s' if n != 1 else ''}"


def capacity_words(c: Capacity, unit: str = "req/s") -> str:
    """A capacity in words: ``[64.2, 68.7) req/s``, ``≥ 80.0 req/s``, ``< 10.0 req/s``."""
    return f"{fmt.capacity(c.low, c.high)} {unit}"


STEP_FAILURES = {
    "errors": "errors",
    "not-served": "not served",
    "p99-over-target": "p99 over target",
    "too-few-samples": "too few samples",
}


def step_failures(c: Capacity) -> str:
    """Why the lowest failing rate failed, in words (old searches: not recorded)."""
    failing = c.failing
    if failing is None:
        return fmt.DASH
    return ", ".join(STEP_FAILURES.get(f, f) for f in failing.failures) or "not recorded"


def capacity_sentence(series: Sequence[Series]) -> str:
    """Per build, its design with the highest capacity at the target (by the interval's lower end),
    with the capacity per server core; a censored capacity reads "≥" and says why."""
    found = [(s, p, p.capacity) for s in series for p in s.points if p.capacity is not None]
    if not found:
        return ""
    target = found[0][2].target_ms
    repeated = all(c.repeated for _, _, c in found)
    how = "its 95 % upper confidence bound" if repeated else "one load's p99 per rate, before repeated steps"
    best: dict[str, tuple[Series, Point, Capacity]] = {}
    for s, p, c in found:
        low = c.low if math.isfinite(c.low) else -math.inf
        mine = best.get(s.key.build)
        if mine is None or low > (mine[2].low if math.isfinite(mine[2].low) else -math.inf):
            best[s.key.build] = (s, p, c)
    parts = []
    for build in sorted(best):
        s, p, c = best[build]
        part = f"{capacity_where(s, p)}, {capacity_words(c)}"
        if math.isfinite(c.low):
            part += f" ({fmt.capacity(*c.per(c.cores))} per server core)"
        if c.censored:
            part += ": censored, it passed at its closed-loop median, the highest rate tried"
        parts.append(part)
    return f"Capacity at p99 ≤ {fmt.num(target)} ms ({how}), each build's highest: " + "; ".join(parts) + "."


def server_cpus(model: RunModel) -> int | None:
    cpus = model.meta.config.get("server_cpus")
    return len(cpus) if isinstance(cpus, list) else None


def setup_sentence(model: RunModel) -> str:
    """What the machine allowed: CPUs on each side, what they make possible, clocks."""
    meta, host = model.meta, model.meta.host
    parts = [f"{host.cpu_model}, {host.logical_cores} logical CPUs"]
    if host.physical_cores:
        parts[0] += f" on {host.physical_cores} cores"
    if meta.kind == "http" and meta.config.get("server_cpus"):
        server, client = meta.config.get("server_cpus") or [], meta.config.get("client_cpus") or []
        if len(server) < 2:
            allow = (
                "with 1 server CPU, speedups above 1 are not possible: points above 1 thread oversubscribe it"
            )
        else:
            allow = f"scaling can be measured up to {len(server)} threads; a cell at N threads runs on N CPUs"
        sides = (
            f"server on CPUs {fmt.cpu_list(server)} ({len(server)}), load generator on {fmt.cpu_list(client)}"
        )
        parts.append(f"{sides} ({len(client)}): {allow}")
        if meta.config.get("shared_cpus"):
            parts.append("server and load generator share CPUs (every cell is flagged)")
    elif meta.kind == "micro":
        usable = meta.config.get("usable_cores")
        if isinstance(usable, int):
            parts.append(f"{usable} usable CPUs for the threads")
    clocks = [
        f"governor {host.governor}" if host.governor else "",
        f"boost {host.boost}" if host.boost else "",
    ]
    clocks = [c for c in clocks if c]
    parts.append(", ".join(clocks) if clocks else "CPU frequency governor and boost not exposed")
    return "Machine: " + "; ".join(parts) + "."
