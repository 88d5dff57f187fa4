"""Scaling by workload: charts, a table per series with its Amdahl and USL fits, and the
free-threading overhead at 1 thread."""

from __future__ import annotations

import math
from collections.abc import Sequence

from ftscale.bench.report import charts, fmt, labels
from ftscale.bench.report.document import Block, Heading, Paragraph, Table
from ftscale.bench.report.model import RunModel, Series
from ftscale.bench.report.overhead import Overhead
from ftscale.bench.report.sections.common import CI, figure, latency, slug
from ftscale.bench.report.stats import AmdahlFit, UslFit

S = fmt.SIGMA


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
                latency(p.latency_ms["p99"], p.latency_requests),
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


def scaling_section(model: RunModel, overheads: Sequence[Overhead]) -> list[Block]:
    http = model.meta.kind == "http"
    blocks: list[Block] = [Heading(2, "Scaling by workload")]
    for workload, wclass, size in model.workloads():
        closed = [s for s in model.series_of(workload, size) if s.key.load == "closed"]
        if not closed:
            continue
        stem = slug(f"{workload}-{size}")
        blocks.append(Heading(3, f"{workload} ({labels.class_name(wclass)}{labels.sized(wclass, size)})"))
        blocks += figure(
            f"{stem}-scaling.png", f"{workload}: throughput by design", charts.scaling(closed, workload)
        )
        if http:
            latency = charts.latency_cdf(closed, workload)
            blocks += figure(f"{stem}-latency.png", f"{workload}: latency distribution", latency)
            blocks += figure(
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
