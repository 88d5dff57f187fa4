"""The report of one run, as a :class:`~ftscale.bench.report.document.Document`.

The first screen answers the question: what the machine allowed, one paragraph per workload
class (which build and design wins, by how much, at what memory, with its caveats), one picture
(each build at its best design against the best GIL design, with memory beside it), and a compact
verdict table. The evidence follows: what was measured, open-loop capacity, streams (time to
first byte, gaps between chunks), how to read the report, small-multiple charts and tables per
workload, the free-threading overhead, failed cells, metadata. Every number is a field of the
model or a finding, formatted by :mod:`.fmt`; nothing is computed here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

from ftscale.bench.http import capacity as rules
from ftscale.bench.report import ceiling_report, charts, fmt, headline, labels, profiles, words
from ftscale.bench.report.document import Block, Bullets, Code, Document, Figure, Heading, Paragraph, Table
from ftscale.bench.report.findings import BuildBest, Choice, Verdict, verdicts
from ftscale.bench.report.model import Capacity, Finalist, RunModel, Series, server_of
from ftscale.bench.report.overhead import Overhead, ft_overheads
from ftscale.bench.report.stats import AmdahlFit, UslFit
from ftscale.schema import RunMeta
from ftscale.vocab import GENERATORS, TOPOLOGIES, TOPOLOGY_HELP, Generator, Topology

CI = "[CI]"
OWN = "ftscale's own"
KIND_NAMES = {"micro": "Micro (in-process)", "http": "HTTP"}


def app_run(meta: RunMeta) -> bool:
    """A run of a user's app (``ftscale app``): an HTTP run whose workload is the app."""
    return meta.config.get("command") == "app"


def gil_on_blocks(meta: RunMeta) -> list[Block]:
    """An app run whose free-threaded build served with the GIL on: said first, naming the module."""
    if not app_run(meta):
        return []
    on = sorted((name, b) for name, b in meta.builds.items() if b.py_gil_disabled and b.gil_enabled)
    return [
        Paragraph(
            f"Not the experiment asked for: {name} ran with the GIL on. Importing the app turned it back "
            f"on: {b.gil_reenabled_by or 'a module CPython did not name'} (an extension module that does "
            f"not declare free-threading support: no Py_mod_gil slot). Every {name} cell measures a "
            "free-threaded build running with the GIL, and is flagged GIL-on. Rebuild or replace that "
            "extension; PYTHON_GIL=0 forces the GIL off, at your own risk."
        )
        for name, b in on
    ]


def kind_name(meta: RunMeta) -> str:
    return "App (ftscale app, an HTTP run)" if app_run(meta) else KIND_NAMES[meta.kind]


M, S = fmt.MINUS, fmt.SIGMA
STATISTICS_NOTES = (
    "Intervals: value [low, high], followed by the interval's real coverage when it is below 95 % "
    "(with 3 repetitions a median's range covers 75 %, a ratio of two medians 90 %); [n/a]: no interval "
    "(a single independent sample). A median's interval is the exact order-statistic interval; a ratio's "
    "is its exact counterpart for two samples with the same spread in percent. Fitted parameters "
    "carry a bootstrap interval marked 'nominal'.",
    "Two stages (HTTP runs): the sweep explores every design at every thread count and chooses each "
    "build's candidate by the highest lower bound of its median's interval (not the highest median, "
    "which rewards luck); confirmation rounds then measure the candidates once per round each, on fresh "
    "servers, in alternating order, and the verdict's ratio is the Hodges-Lehmann estimate of the "
    "per-round ratios with its Wilcoxon interval (exact coverage when the per-round differences are "
    "symmetric; the sign test's interval, exact without that, is beside it). Exploration numbers never "
    "enter the verdict's ratio.",
    "Words: 'wins' only when the ratio's interval excludes 1; 'equivalent' only when it lies within the "
    "margin (5 % unless --margin said otherwise: 1/1.05 to 1.05); otherwise 'inconclusive', with the "
    "rounds the observed spread suggests. 'The load generator was the limit': both sides were flagged "
    "generator-saturated, so neither measured its server. Bounds keep more decimals where "
    "needed, so an interval that excludes 1 never reads 1.00.",
    "Samples: an HTTP repetition runs on its own fresh server process, so repetitions are independent; "
    "a micro cell counts each pyperf worker process as one sample (the median of its values), since "
    "values from one process are not independent.",
    "S(N) = median throughput at N / median at 1 thread of the same series; efficiency = S(N)/N; "
    f"Karp-Flatt e(N) = (1/S {M} 1/N)/(1 {M} 1/N), the serial fraction the measurement implies.",
    f"Fits are least squares on the medians: Amdahl X(N) = λN/(1 + s(N{M}1)); USL X(N) = "
    f"λN/(1 + {S}(N{M}1) + κN(N{M}1)) with peak N* = √((1{M}{S})/κ); 'not identifiable' when the "
    "resampled fits do not converge. R² is undefined (—) when the throughput does not vary.",
)
HTTP_COLUMNS = (
    "n: independent samples (repetitions on fresh servers); CV: their coefficient of variation.",
    "p50/p99 ms: latency percentiles of all requests of the repetitions merged (how many requests in "
    "brackets); closed loop unless the section says open loop.",
    "/health p99: latency of a /health probe sent every 50 ms during the load; /health is answered on "
    "the event loop, so this is the loop's lag as a client sees it.",
    "CPU: server CPU time over wall time, 100 % = one CPU busy (summed over all server processes).",
    "Memory: the distinct physical pages the server's processes hold, each counted once (pages its "
    "worker processes share with their parent count once, as they do in memory); runs made before that "
    "was measured show PSS (shared pages divided between the processes that share them). Peak: the "
    "highest resident set, summed over the server's processes.",
    "Fresh servers: each repetition's server is forked from a pre-imported parent of its build (its "
    "worker processes and pool children forked from it in turn): a new process with its own memory, "
    "without the interpreter start and imports; the start (until /health answered) and stop each "
    "repetition cost are recorded.",
    "Connections: every design and thread count of a workload had the same connections open, so the "
    "thread axis changes the threads only.",
)
STREAM_COLUMNS = (
    "Streaming workloads: throughput is chunks per second (every stream of a cell has the same number "
    "of chunks); p50/p99 are of whole streams; time to first byte and gaps between chunks are in the "
    "Streams section.",
)
STREAMS_TEXT = (
    "Each stream is one request of the closed loop, so a cell holds as many concurrent streams as it "
    "has connections (16 per thread by default). The built-in generator times each stream's first byte "
    "of body (its first chunk: the response head is sent at once), counts its chunks and times the gap "
    "between consecutive chunks. Every chunk follows an upstream delay that the service awaits, so no "
    "gap is shorter than that delay: what a gap adds to it is the chunk's queueing and compute. "
    "Percentiles are of every stream (or gap) of the repetitions merged, their number in brackets. The "
    "verdict compares chunks per second at the same number of concurrent streams, and names each "
    "side's p99 gap and p99 time to first byte."
)
MICRO_COLUMNS = (
    "n: pyperf worker processes (each one sample); CV: their coefficient of variation.",
    "Throughput is workload calls per second: strong scaling splits a fixed number of calls between the "
    "threads, weak scaling gives each thread the same number.",
)


def unit_of(series: Sequence[Series]) -> str:
    units = sorted({s.key.unit for s in series})
    return units[0] if len(units) == 1 else "throughput"


def choice_label(choice: Choice) -> str:
    return f"{labels.series_label(choice.series.key)} @{choice.point.threads}"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()


# --- the answer ------------------------------------------------------------------------------


def answer_section(model: RunModel, found: Sequence[Verdict]) -> list[Block]:
    blocks: list[Block] = [Heading(2, "The answer")]
    if not found:
        return [*blocks, Paragraph("No successful cells: nothing to compare.")]
    limits = profiles.verdict_sentences(model)  # --profile: what limits scaling, per workload
    for v, line in zip(found, words.verdict_sentences(model, found), strict=True):
        blocks.append(Paragraph(f"{line} {limits[v.workload]}" if v.workload in limits else line))
    shared = words.common_caveats_sentence(model, found)
    if shared:
        blocks.append(Paragraph(shared))
    if any(v.builds for v in found):
        chart = charts.answer(found, unit_of(model.series))
        blocks.append(
            Figure(
                "answer.png",
                "Each build's candidate design against the GIL twin's: the paired ratio of the confirmation "
                "rounds where the run has them, else the exploration medians (interval whiskers); and "
                "server memory",
                chart.png,
                chart.legend_entries,
            )
        )
    return blocks


def verdict_table(model: RunModel, found: Sequence[Verdict]) -> list[Block]:
    if not found:
        return []
    memory = model.meta.kind == "http"
    unit = unit_of(model.series)
    mixed = unit == "throughput"  # streams count chunks/s, other workloads req/s: each row says which
    header = (
        "Workload",
        "Build",
        "Candidate @threads",
        f"Median {unit} {CI}",
        *(["Unit"] if mixed else []),
        f"÷ GIL candidate {CI}",
        *(["Memory"] if memory else []),
        "Flags",
    )
    rows = []
    for v in found:
        for b in v.explored_builds or v.builds:
            p = b.choice.point
            rows.append(
                (
                    v.workload,
                    b.build,
                    f"{b.choice.series.key.design or fmt.DASH} @{p.threads}",
                    fmt.estimate(p.throughput),
                    *([b.choice.series.key.unit] if mixed else []),
                    "reference" if b.build == v.reference.build else fmt.ratio(b.relative),
                    *([fmt.mib(p.memory_bytes)] if memory else []),
                    labels.flag_names(p.flags),
                )
            )
    return [
        Heading(3, "Each build's candidate (exploration)"),
        Table(header, tuple(rows), "lllr" + ("l" if mixed else "") + "r" + ("r" if memory else "") + "l"),
        Paragraph(
            "Key: @N, at N threads (or N worker processes, or N event loops); candidate, the build's "
            "eligible point with the highest lower bound of its median (a point flagged to disqualify, or "
            "with more threads than server CPUs, is not eligible; where a build has no eligible point, its "
            "best-ranked one is shown with its flags); ÷ GIL candidate, its median over the reference's "
            "(the newest GIL twin's candidate), from the exploration"
            + ("; Memory, see 'How to read this report'" if memory else "")
            + ". Where the run has confirmation rounds, the verdict rests on them, not on these numbers."
        ),
    ]


def _round_values(finalist: Finalist) -> str:
    return ", ".join(fmt.num(finalist.by_round[r]) for r in sorted(finalist.by_round))


def confirmation_section(model: RunModel, found: Sequence[Verdict]) -> list[Block]:
    """The second stage: each comparison's candidates, how they were chosen, and their rounds."""
    if model.meta.kind != "http":
        return []
    comparisons = [(v, c) for v in found for c in v.comparisons]
    if not comparisons:
        return []
    heading = Heading(3, "Confirmation rounds")
    if not any(c.stage == "confirmed" for _, c in comparisons):
        bound = [v.workload for v, c in comparisons if c.outcome == "generator-bound"]
        why = (
            f" For {', '.join(bound)}, the load generator limited both candidates: nothing to confirm."
            if bound
            else ""
        )
        return [
            heading,
            Paragraph(
                "This run has no confirmation rounds (made before they existed, or with --rounds 0): its "
                "verdicts compare the exploration medians, and say so." + why
            ),
        ]
    rows = []
    details = []
    for v, c in comparisons:
        if c.stage != "confirmed" or c.paired is None or c.contender is None or c.reference is None:
            why = "the load generator limited both" if c.outcome == "generator-bound" else "not confirmed"
            rows.append((v.workload, f"{c.free_threaded_build} ÷ {c.gil_build}", "0", *[fmt.DASH] * 4, why))
            continue
        paired = c.paired
        rows.append(
            (
                v.workload,
                f"{choice_label(c.contender)} ÷ {choice_label(c.reference)}",
                str(paired.rounds),
                fmt.num(c.contender.point.throughput.value),
                fmt.num(c.reference.point.throughput.value),
                fmt.ratio(paired.ratio),
                fmt.ratio(paired.sign),
                words.outcome_words(c),
            )
        )
        confirmation = model.confirmation(v.workload, v.size)
        for build in (c.free_threaded_build, c.gil_build):
            finalist = confirmation.of_build(build) if confirmation else None
            if finalist is None:
                continue
            chosen = finalist.selection
            how = (
                f"chosen from {chosen.candidates} eligible points ({chosen.ineligible} not eligible) by "
                f"its lower bound {fmt.num(chosen.lower_bound)} (median {fmt.num(chosen.median)})"
                if chosen is not None
                else "chosen in the exploration"
            )
            details.append(
                f"{v.workload}, {build} {finalist.key.design} @{finalist.point.threads}: {how}; "
                f"per round: {_round_values(finalist)}"
            )
    unit = unit_of(model.series)
    header = ("Workload", "Candidates", "Rounds", f"FT {unit}", f"GIL {unit}", f"Paired ratio {CI}",
              f"Sign test {CI}", "Outcome")  # fmt: skip
    blocks: list[Block] = [
        heading,
        Paragraph(
            "Each build's candidate is its eligible exploration point with the highest lower bound of the "
            "median; the candidates are then measured once per round on fresh servers, the order "
            "alternating from round to round. The verdict's ratio rests on these rounds alone: paired "
            "ratio, the Hodges-Lehmann estimate of the per-round ratios with its Wilcoxon interval; sign "
            "test, the median per-round ratio with the interval that assumes nothing of their shape. FT "
            "and GIL: each candidate's median over the rounds."
        ),
        Table(header, tuple(rows), "llrrrrrl"),
    ]
    if details:
        blocks.append(Bullets(tuple(details)))
    return blocks


def _nodelay(value: bool | None) -> str:
    return fmt.DASH if value is None else fmt.yes_no(value)


def servers_table(model: RunModel, found: Sequence[Verdict]) -> list[Block]:
    """A run of several servers: each server at its best, the best in one process and the best on a
    GIL build, per workload, against the same reference as the table above."""
    if not any(v.servers for v in found):
        return []
    unit = unit_of(model.series)
    rows = []
    for v in found:
        entries: list[tuple[str, BuildBest]] = [
            (s.server, BuildBest(s.choice.build, s.choice, s.relative)) for s in v.servers
        ]
        for what, extra in (("best in one process", v.one_process), ("best on a GIL build", v.gil_best)):
            if extra is not None:
                entries.append((what, extra))
        for what, b in entries:
            p = b.choice.point
            rows.append(
                (
                    v.workload,
                    what,
                    f"{b.build} {b.choice.series.key.design} @{p.threads}",
                    fmt.estimate(p.throughput),
                    "reference" if p is v.reference.point else fmt.ratio(b.relative),
                    fmt.mib(p.memory_bytes),
                    _nodelay(getattr(p.cell, "tcp_nodelay", None)),
                    labels.flag_names(p.flags),
                )
            )
    header = ("Workload", "Server", "Best build design @threads", f"Peak {unit} {CI}", f"÷ GIL best {CI}")
    return [
        Heading(3, "Each server at its best"),
        Table((*header, "Memory", "TCP_NODELAY", "Flags"), tuple(rows), "lllrrrll"),
        Paragraph(
            "Each server's best unflagged point over every build and design (where all are flagged, its "
            "fastest, with its flags); then the best design that "
            "serves from one process (one event loop, or event loops in threads: no worker processes, no "
            "process pool) and the best any GIL build reached. ÷ GIL best: against the same reference as "
            "above (the GIL twin's best design, whatever its server). TCP_NODELAY: whether the server's "
            "accepted connections had it, as the service read it from its own sockets (—: not read)."
        ),
    ]


def _whose(topology: Topology) -> str:
    """Whose design a topology is, as reports label it."""
    info = TOPOLOGIES[topology]
    if info.stock:
        return "a stock deployment, "
    return "" if info.units == "one" else f"{OWN}, "


def designs_section(model: RunModel, found: Sequence[Verdict]) -> list[Block]:
    if model.meta.kind != "http":
        return []
    designs: dict[str, set[str]] = {}
    for v in found:
        for build, names in v.designs.items():
            designs.setdefault(build, set()).update(names)
    if not designs:
        return []
    every = sorted(set().union(*designs.values()))
    rows = tuple(
        (b, ", ".join(sorted(d)), ", ".join(x for x in every if x not in d) or fmt.DASH)
        for b, d in sorted(designs.items())
    )
    topologies = sorted({t for names in designs.values() for d in names for t in d.split("·")[-1:]})
    known = [Topology(t) for t in topologies if t in {str(x) for x in Topology}]
    whose = [f"{t}: {_whose(t)}{TOPOLOGY_HELP[t]}" for t in known]
    blocks: list[Block] = [
        Heading(3, "What was measured"),
        Table(("Build", "Designs measured", "Not measured"), rows, "lll"),
    ]
    if whose:
        blocks += [Paragraph("Topologies:"), Bullets(tuple(whose))]
    return blocks


# --- scaling tables ---------------------------------------------------------------------------


def _amdahl_text(fit: AmdahlFit) -> str:
    if fit.status == "too-few-points":
        return f"Amdahl: too few points ({fit.points}; needs 3)"
    if fit.status == "failed":
        return "Amdahl: the fit did not converge"
    return f"Amdahl: s = {fmt.fixed(fit.serial_fraction, 3)}, R² = {fmt.fixed(fit.r_squared, 3)}"


def _usl_text(fit: UslFit, max_threads: int) -> str:
    if fit.status == "too-few-points":
        return f"USL: too few points ({fit.points}; needs 4)"
    if fit.status == "failed":
        return "USL: the fit did not converge"
    if math.isinf(fit.peak_threads):
        peak = "no peak"
    elif fit.peak_threads > max_threads:
        peak = f"N* = {fmt.num(fit.peak_threads)} (beyond the measured {max_threads})"
    else:
        peak = f"N* = {fmt.num(fit.peak_threads)}"
    text = f"USL: {S} = {fmt.fixed(fit.sigma, 4)}, κ = {fmt.sci(fit.kappa)}, {peak}"
    if fit.identifiable is False:
        text += f" ({S}, κ and N* not identifiable from these samples)"
    elif fit.sigma_ci is not None and fit.kappa_ci is not None and fit.peak_ci is not None:
        text += (
            f"; intervals {S} [{fmt.fixed(fit.sigma_ci.low, 4)}, {fmt.fixed(fit.sigma_ci.high, 4)}], "
            f"κ [{fmt.sci(fit.kappa_ci.low)}, {fmt.sci(fit.kappa_ci.high)}], "
            f"N* [{fmt.num(fit.peak_ci.low)}, {fmt.num(fit.peak_ci.high)}] (bootstrap, nominal 95 %)"
        )
    return f"{text}, R² = {fmt.fixed(fit.r_squared, 3)}"


def _latency(point_ms: float, requests: int) -> str:
    return fmt.DASH if math.isnan(point_ms) else f"{fmt.num(point_ms)} ({requests:,})"


def series_table(series: Series, http: bool) -> Table:
    header = ["Threads", "n", f"Median {series.key.unit} {CI}", f"S(N) {CI}", "Eff.", "K-F", "CV"]
    align = "rrrrrrr"
    if http:
        header += ["p50 ms", "p99 ms (requests)", "/health p99", "CPU", "Memory (peak)"]
        align += "rrrrr"
    header.append("Flags")
    rows = []
    for p in series.points:
        row = [
            str(p.threads),
            str(p.n_samples),
            fmt.estimate(p.throughput),
            fmt.ratio(p.speedup),
            fmt.fixed(p.efficiency.value),
            fmt.fixed(p.karp_flatt, 3),
            fmt.pct(p.cv),
        ]
        if http:
            peak = f" ({fmt.mib(p.peak_rss_bytes)})" if math.isfinite(p.peak_rss_bytes) else ""
            row += [
                fmt.num(p.latency_ms["p50"]),
                _latency(p.latency_ms["p99"], p.latency_requests),
                fmt.num(p.health_p99_ms),
                fmt.pct(p.server_cpu_pct / 100, 0),
                fmt.mib(p.memory_bytes) + peak,
            ]
        row.append(labels.flag_names(p.flags))
        rows.append(tuple(row))
    return Table(tuple(header), tuple(rows), align + "l")


def _overhead_table(rows: Sequence[Overhead]) -> Table:
    header = (
        "Series",
        "GIL twin",
        f"Free-threaded {CI}",
        f"GIL {CI}",
        f"Free-threaded ÷ GIL {CI}",
        f"Time per call {CI}",
    )
    return Table(
        header,
        tuple(
            (
                labels.series_label(o.key),
                o.gil_build,
                fmt.estimate(o.free_threaded.throughput),
                fmt.estimate(o.gil.throughput),
                fmt.ratio(o.ratio),
                fmt.signed_pct_estimate(o.time_overhead),
            )
            for o in rows
        ),
        "llrrrr",
    )


def reading_section(model: RunModel) -> list[Block]:
    http = model.meta.kind == "http"
    streamed = any(p.stream is not None for s in model.series for p in s.points)
    return [
        Heading(2, "How to read this report"),
        Bullets(STATISTICS_NOTES),
        Paragraph("Columns:"),
        Bullets((HTTP_COLUMNS + (STREAM_COLUMNS if streamed else ())) if http else MICRO_COLUMNS),
        Paragraph("Flags that can occur in this kind of run:"),
        Bullets(tuple(f"{short}: {meaning}" for short, meaning in labels.flag_legend(model.meta.kind))),
    ]


def _figure(name: str, caption: str, chart: charts.Chart | None) -> list[Block]:
    return [] if chart is None else [Figure(name, caption, chart.png, chart.legend_entries)]


def scaling_section(model: RunModel, overheads: Sequence[Overhead]) -> list[Block]:
    http = model.meta.kind == "http"
    blocks: list[Block] = [Heading(2, "Scaling by workload")]
    for workload, wclass, size in model.workloads():
        closed = [s for s in model.series_of(workload, size) if s.key.load == "closed"]
        if not closed:
            continue
        stem = slug(f"{workload}-{size}")
        blocks.append(Heading(3, f"{workload} ({labels.class_name(wclass)}{labels.sized(wclass, size)})"))
        blocks += _figure(
            f"{stem}-scaling.png", f"{workload}: throughput by design", charts.scaling(closed, workload)
        )
        if http:
            latency = charts.latency_cdf(closed, workload)
            blocks += _figure(f"{stem}-latency.png", f"{workload}: latency distribution", latency)
            blocks += _figure(
                f"{stem}-memory.png", f"{workload}: server memory", charts.memory(closed, workload)
            )
        for s in closed:
            blocks += [Heading(4, labels.series_label(s.key)), series_table(s, http)]
            fits = f"{_amdahl_text(s.amdahl)}. {_usl_text(s.usl, s.max_threads)}."
            if not any(p.threads == 1 for p in s.points):
                fits += " No 1-thread cell: speedup, efficiency and Karp-Flatt are undefined."
            blocks.append(Paragraph(fits))
        mine = [o for o in overheads if (o.key.workload, o.key.size) == (workload, size)]
        if mine:
            blocks += [
                Heading(4, "Free-threading overhead at 1 thread"),
                Paragraph(
                    "Throughput of the free-threaded build over its GIL twin, both at 1 thread. Time per "
                    "call: how much longer each call takes on the free-threaded build "
                    f"(GIL ÷ free-threaded {fmt.MINUS} 1)."
                ),
                _overhead_table(mine),
            ]
    return blocks


def _rates_table(series: Sequence[Series]) -> Table:
    rows = tuple(
        (
            labels.series_label(s.key),
            str(p.threads),
            f"{fmt.num(100 * (s.key.offered_share or 0))} %",
            fmt.num(p.cell.offered_rps or math.nan),  # type: ignore[union-attr]
            fmt.estimate(p.throughput),
            fmt.num(p.latency_ms["p50"]),
            _latency(p.latency_ms["p99"], p.latency_requests),
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
            f"{labels.series_label(s.key, with_build=False)} @{p.threads}",
            s.key.build,
            p.capacity,
            f"{s.key.build}: {words.capacity_words(p.capacity)}",
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
            blocks += _figure(
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
            blocks += _figure(
                f"{stem}-capacity.png",
                f"{workload}: p99 against the offered rate, the target and each capacity",
                charts.capacity(_capacity_curves(searched), workload),
            )
    return blocks


def _streams_table(series: Sequence[Series]) -> Table:
    rows = []
    for s in series:
        for p in s.points:
            if p.stream is None:
                continue
            rows.append(
                (
                    labels.series_label(s.key),
                    str(p.threads),
                    fmt.estimate(p.throughput),
                    fmt.num(p.stream.streams_per_s),
                    fmt.num(p.stream.ttfb_ms["p50"]),
                    _latency(p.stream.ttfb_ms["p99"], p.stream.ttfb_samples),
                    _latency(p.stream.gap_p99_ms, p.stream.gap_samples),
                    labels.flag_names(p.flags),
                )
            )
    header = (
        "Series", "Threads", f"chunks/s {CI}", "streams/s", "First byte p50 ms",
        "First byte p99 ms (streams)", "Gap p99 ms (gaps)", "Flags",
    )  # fmt: skip
    return Table(header, tuple(rows), "lrrrrrrl")


def streaming_section(model: RunModel) -> list[Block]:
    """Time to first byte, chunks per second and gaps between chunks of each streamed workload."""
    streamed = [
        s for s in model.series if s.key.load == "closed" and any(p.stream is not None for p in s.points)
    ]
    if not streamed:
        return []
    blocks: list[Block] = [
        Heading(2, "Streams: chunks per second, time to first byte, gaps between chunks"),
        Paragraph(STREAMS_TEXT),
    ]
    generators = {g for s in streamed for p in s.points if p.stream for g in p.stream.generators}
    known = [Generator(g) for g in generators if g in GENERATORS]
    blind = sorted(g for g in known if not GENERATORS[g].streams)  # counted chunks, timed nothing
    if blind:
        blocks.append(
            Paragraph(
                f"Some loads were applied by {' and '.join(blind)}, which sees whole responses only: it "
                "counted their chunks but could not time the first byte or the gaps "
                f"({fmt.DASH} where nothing was timed)."
            )
        )
    for workload, _wclass, size in model.workloads():
        mine = [s for s in streamed if (s.key.workload, s.key.size) == (workload, size)]
        if not mine:
            continue
        stem = slug(f"{workload}-{size}")
        blocks.append(Heading(3, f"{workload} (size {size})"))
        blocks += _figure(
            f"{stem}-streams.png",
            f"{workload}: gaps between chunks and time to first byte",
            charts.streams(mine, workload),
        )
        blocks.append(_streams_table(mine))
    return blocks


# --- failures and metadata --------------------------------------------------------------------


def skipped_section(model: RunModel) -> list[Block]:
    """Designs a server could not run on a build: nothing was started for them."""
    if not model.skipped:
        return []
    groups: dict[tuple[str, str, str, str], int] = {}
    for c in model.skipped:
        design = "·".join(x for x in (c.mode, c.topology) if x)
        key = (c.build, server_of(c) or fmt.DASH, design, c.skip_reason or fmt.DASH)
        groups[key] = groups.get(key, 0) + 1
    rows = tuple((*key[:3], str(n), key[3]) for key, n in sorted(groups.items()))
    return [
        Heading(2, "Skipped cells"),
        Paragraph(
            f"{fmt.count(len(model.skipped), 'cell')} could not run on their build and were not started "
            "(not failures):"
        ),
        Table(("Build", "Server", "Design", "Cells", "Why"), rows, "lllrl"),
    ]


def failed_section(model: RunModel) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Failed cells")]
    if not model.failed:
        return [*blocks, Paragraph("None.")]
    rows = tuple(
        (
            c.build,
            c.workload,
            c.mode or "",
            c.topology or "",
            c.scaling or "",
            str(c.threads),
            c.error or ("no samples" if c.status == "ok" else ""),
        )
        for c in model.failed
    )
    blocks.append(
        Table(("Build", "Workload", "Mode", "Topology", "Scaling", "Threads", "Error"), rows, "lllllrl")
    )
    for c in model.failed:
        if c.stderr_tail:
            blocks += [Paragraph(f"stderr of {c.cell_id} (tail):"), Code(c.stderr_tail)]
    return blocks


def _json(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def metadata_blocks(meta: RunMeta, level: int = 2) -> list[Block]:
    """Machine, builds, packages, load generator, git and config of one run."""
    host = meta.host
    machine = (
        ("Host", host.hostname),
        ("Platform", host.platform),
        ("Machine", host.machine),
        ("CPU model", host.cpu_model),
        ("Logical cores", str(host.logical_cores)),
        ("Affinity", f"{fmt.cpu_list(host.affinity)} ({len(host.affinity)} CPUs)"),
        ("Memory", fmt.mib(float(host.memory_bytes)) if host.memory_bytes is not None else fmt.DASH),
    )
    blocks: list[Block] = [
        Heading(level, "Metadata"),
        Heading(level + 1, "Machine"),
        Table(("Field", "Value"), machine, "ll"),
        Heading(level + 1, "Builds"),
    ]
    builds = [meta.builds[name] for name in sorted(meta.builds)]
    if builds:
        blocks.append(
            Table(
                (
                    "Build",
                    "Version",
                    "Free-threaded build",
                    "GIL at run time",
                    "GIL re-enabled by",
                    "Configure arguments",
                    "Compiler",
                    "Executable",
                ),
                tuple(
                    (
                        b.build,
                        b.version,
                        fmt.yes_no(b.py_gil_disabled),
                        "on" if b.gil_enabled else "off",
                        b.gil_reenabled_by or fmt.DASH,
                        b.config_args or fmt.DASH,
                        b.compiler or fmt.DASH,
                        b.executable,
                    )
                    for b in builds
                ),
                "llllllll",
            )
        )
        packages = sorted({p for b in builds for p in b.packages})
        if packages:
            blocks += [
                Heading(level + 1, "Packages"),
                Table(
                    ("Package", *(b.build for b in builds)),
                    tuple((p, *(b.packages.get(p, fmt.DASH) for b in builds)) for p in packages),
                ),
            ]
    else:
        blocks.append(Paragraph("No build records in run.json."))
    if meta.generator is not None:
        blocks += [
            Heading(level + 1, "Load generator"),
            Table(("Field", "Value"), tuple((k, _json(v)) for k, v in sorted(meta.generator.items())), "ll"),
        ]
    run_rows = (
        ("Run id", meta.run_id),
        ("Kind", meta.kind),
        ("Schema version", str(meta.schema_version)),
        ("Created", meta.created),
        ("Finished", meta.finished or fmt.DASH),
        ("Git commit", meta.git.commit or fmt.DASH),
        ("Uncommitted changes", fmt.yes_no(meta.git.dirty)),
    )
    blocks += [Heading(level + 1, "Run"), Table(("Field", "Value"), run_rows, "ll")]
    blocks += [Heading(level + 1, "Config"), Code(json.dumps(meta.config, indent=1, sort_keys=True))]
    return blocks


def _summary(model: RunModel) -> str:
    meta = model.meta
    ok = sum(len(s.points) for s in model.series)
    builds = ", ".join(sorted(meta.builds)) or fmt.DASH
    preset = meta.config.get("preset")
    measured = f"preset {preset}; " if preset else ""
    return (
        f"{kind_name(meta)} run {meta.run_id} on {meta.host.hostname}, created {meta.created}: "
        f"{measured}builds {builds}; {ok} cells measured, {len(model.failed)} failed"
        + (f", {len(model.skipped)} skipped" if model.skipped else "")
        + (f"; servers {', '.join(model.servers)}" if len(model.servers) > 1 else "")
        + ". "
        "Every number is read or derived from the run's result files."
    )


def build(model: RunModel) -> Document:
    """The whole report of one run."""
    title = f"ftscale {'app' if app_run(model.meta) else model.meta.kind} report: {model.meta.run_id}"
    found = verdicts(model)
    blocks: list[Block] = [
        Heading(1, title),
        *gil_on_blocks(model.meta),
        *headline.first_screen(model, found),  # --preset headline: the answer before anything else
        Paragraph(_summary(model)),
        Paragraph(words.setup_sentence(model)),
    ]
    servers = words.fresh_servers_sentence(model)
    if servers:
        blocks.append(Paragraph(servers))
    if model.meta.notes:
        blocks.append(Bullets(tuple(f"Note: {n}" for n in model.meta.notes)))
    blocks += answer_section(model, found)
    blocks += verdict_table(model, found)
    blocks += confirmation_section(model, found)
    blocks += servers_table(model, found)
    blocks += designs_section(model, found)
    blocks += ceiling_report.section(model, with_shares=not headline.headline_run(model))
    blocks += open_loop_section(model)
    blocks += streaming_section(model)
    blocks += reading_section(model)
    blocks += scaling_section(model, ft_overheads(model))
    blocks += profiles.section(model)  # --profile: where the CPU time went
    blocks += failed_section(model)
    blocks += skipped_section(model)
    blocks += metadata_blocks(model.meta)
    return Document(title, tuple(blocks))
