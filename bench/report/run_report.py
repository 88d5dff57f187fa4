"""The report of one run, as a :class:`~bench.report.document.Document`.

In order: verdict, scaling tables per workload (with fits and the free-threading overhead),
charts, failed cells, metadata. Every number is a field of the model, formatted by
:mod:`bench.report.fmt`; nothing is computed here.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence

from ftscale.bench.report import charts, fmt, labels, profiles
from ftscale.bench.report.document import Block, Bullets, Code, Document, Figure, Heading, Paragraph, Table
from ftscale.bench.report.findings import Choice, Overhead, Verdict, ft_overheads, verdicts
from ftscale.bench.report.model import RunModel, Series
from ftscale.bench.report.stats import AmdahlFit, UslFit

from ftscale.schema import RunMeta

CI = "[95% CI]"
KIND_NAMES = {"micro": "Micro (in-process)", "http": "HTTP"}

M, S = fmt.MINUS, fmt.SIGMA
READING_NOTES = (
    "median [95% CI]: the median of the repetitions with its exact order-statistic interval; below 6 "
    "repetitions no interval reaches 95%, so the range of the repetitions is shown with its real "
    "coverage after it (e.g. 75% for 3 repetitions); [n/a]: a single repetition, no interval.",
    "S(N) = median throughput at N / median throughput at 1 thread of the same series, with a "
    "percentile-bootstrap interval ([n/a] below 3 repetitions a side); efficiency = S(N)/N; "
    f"Karp-Flatt e(N) = (1/S {M} 1/N)/(1 {M} 1/N), the serial fraction the measurement implies.",
    f"Fits are least squares on the medians: Amdahl X(N) = λN/(1 + s(N{M}1)); USL X(N) = "
    f"λN/(1 + {S}(N{M}1) + κN(N{M}1)) with peak N* = √((1{M}{S})/κ). R² is undefined (—) when the "
    "throughput does not vary.",
)


def unit_of(series: Sequence[Series]) -> str:
    units = sorted({s.key.unit for s in series})
    return units[0] if len(units) == 1 else "throughput"


def choice_label(choice: Choice) -> str:
    return f"{labels.series_label(choice.series.key)} @{choice.point.threads}"


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-").lower()


# --- verdict ----------------------------------------------------------------------------------


def _choice_cells(choice: Choice | None, memory: bool) -> list[str]:
    if choice is None:
        return ["none in this run", "", "", *([""] if memory else []), ""]
    p = choice.point
    cells = [choice_label(choice), fmt.estimate(p.throughput), fmt.ratio(p.speedup)]
    if memory:
        cells.append(fmt.mib(p.rss_bytes))
    return [*cells, labels.flag_names(p.flags)]


def _verdict_row(v: Verdict, memory: bool) -> tuple[str, ...]:
    workload = v.workload if v.scaling in (None, "strong") else f"{v.workload} ({v.scaling} scaling)"
    advantage = fmt.ratio(v.advantage) if v.advantage is not None else ""
    return (
        v.workload_class,
        workload,
        *_choice_cells(v.best, memory),
        *_choice_cells(v.alternative, memory),
        advantage,
    )


def verdict_section(model: RunModel, found: Sequence[Verdict]) -> list[Block]:
    unit = unit_of(model.series)
    memory = model.meta.kind == "http"
    blocks: list[Block] = [
        Heading(2, "Verdict"),
        Paragraph(
            "For each workload: the combination (build · mode · topology, or build · scaling in process) "
            "and thread count with the highest median throughput, with its speedup over its own 1-thread "
            f"point{' and its server memory' if memory else ''}, next to the best combination on the other "
            "kind of build (GIL if the best is free-threaded, free-threaded if it is a GIL build), and the "
            "ratio of the two peaks."
        ),
    ]
    if not found:
        return [*blocks, Paragraph("No successful cells: nothing to compare.")]
    side = [f"Peak {unit} {CI}", f"S(N) {CI}", *(["RSS"] if memory else []), "Flags"]
    header = ("Class", "Workload", "Best", *side, "Other kind's best", *side, f"Best ÷ other {CI}")
    side_align = "rr" + ("r" if memory else "") + "l"
    align = "ll" + "l" + side_align + "l" + side_align + "r"
    return [*blocks, Table(header, tuple(_verdict_row(v, memory) for v in found), align)]


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
    return (
        f"USL: {fmt.SIGMA} = {fmt.fixed(fit.sigma, 4)}, κ = {fmt.sci(fit.kappa)}, {peak}, "
        f"R² = {fmt.fixed(fit.r_squared, 3)}"
    )


def series_table(series: Series, http: bool) -> Table:
    header = [
        "Threads",
        "n",
        f"Median {series.key.unit} {CI}",
        f"S(N) {CI}",
        "Efficiency",
        "Karp-Flatt",
        "CV",
    ]
    align = "rrrrrrr"
    if http:
        header += ["p50 ms", "p99 ms", "Health p99 ms", "Server CPU", "RSS"]
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
            row += [
                fmt.num(p.latency_ms["p50"]),
                fmt.num(p.latency_ms["p99"]),
                fmt.num(p.health_p99_ms),
                fmt.pct(p.server_cpu_pct / 100, 0),
                fmt.mib(p.rss_bytes),
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
    blocks: list[Block] = [
        Heading(2, "Scaling by workload"),
        Bullets(READING_NOTES),
        Paragraph("Flags:"),
        Bullets(tuple(f"{short}: {meaning}" for short, meaning in labels.flag_legend(model.meta.kind))),
    ]
    for workload, wclass, size in model.workloads():
        blocks.append(Heading(3, f"{workload} ({wclass}, size {size})"))
        for s in model.series_of(workload, size):
            blocks += [Heading(4, labels.series_label(s.key)), series_table(s, http)]
            fits = f"{_amdahl_text(s.amdahl)}. {_usl_text(s.usl, s.max_threads)}."
            if not any(p.threads == 1 for p in s.points):
                fits += " No 1-thread cell: speedup, efficiency and Karp-Flatt are undefined."
            blocks.append(Paragraph(fits))
        mine = [o for o in overheads if (o.key.workload, o.key.size) == (workload, size)]
        blocks.append(Heading(4, "Free-threading overhead at 1 thread"))
        if mine:
            blocks += [
                Paragraph(
                    "Throughput of the free-threaded build over its GIL twin, both at 1 thread. Time per "
                    "call: how much longer each call takes on the free-threaded build "
                    f"(GIL ÷ free-threaded {fmt.MINUS} 1)."
                ),
                _overhead_table(mine),
            ]
        else:
            blocks.append(
                Paragraph("No pair of a free-threaded build and its GIL twin measured at 1 thread.")
            )
    return blocks


# --- charts -----------------------------------------------------------------------------------


def chart_section(model: RunModel) -> list[Block]:
    blocks: list[Block] = [Heading(2, "Charts")]
    if not model.series:
        return [*blocks, Paragraph("No successful cells: no charts.")]
    xlabel = charts.HTTP_X if model.meta.kind == "http" else charts.MICRO_X
    for workload, _wclass, size in model.workloads():
        series = model.series_of(workload, size)
        stem = slug(f"{workload}-{size}")
        blocks += [
            Heading(3, f"{workload} (size {size})"),
            Figure(
                f"{stem}-scaling.png",
                f"{workload}: throughput and efficiency",
                charts.scaling(series, workload, xlabel),
            ),
        ]
        if model.meta.kind == "http":
            blocks.append(
                Figure(f"{stem}-latency.png", f"{workload}: latency", charts.latency(series, workload))
            )
            if any(math.isfinite(p.rss_bytes) for s in series for p in s.points):
                blocks.append(
                    Figure(
                        f"{stem}-memory.png", f"{workload}: server memory", charts.memory(series, workload)
                    )
                )
    return blocks


# --- failures and metadata --------------------------------------------------------------------


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
    meta, host = model.meta, model.meta.host
    ok = sum(len(s.points) for s in model.series)
    return (
        f"{KIND_NAMES[meta.kind]} run {meta.run_id} on {host.hostname} ({host.cpu_model}, "
        f"{host.logical_cores} logical cores, {len(host.affinity)} in the affinity mask); "
        f"builds: {', '.join(sorted(meta.builds)) or fmt.DASH}; "
        f"{ok} cells measured, {len(model.failed)} failed; created {meta.created}. "
        "Every number below is read or derived from the run's result files."
    )


def build(model: RunModel) -> Document:
    """The whole report of one run."""
    title = f"ftscale {model.meta.kind} report: {model.meta.run_id}"
    blocks: list[Block] = [Heading(1, title), Paragraph(_summary(model))]
    if model.meta.notes:
        blocks.append(Bullets(tuple(f"Note: {n}" for n in model.meta.notes)))
    blocks += verdict_section(model, verdicts(model))
    blocks += profiles.verdict_blocks(model)  # --profile: what limits scaling, one sentence per workload
    blocks += scaling_section(model, ft_overheads(model))
    blocks += chart_section(model)
    blocks += profiles.section(model)  # --profile: where the CPU time went
    blocks += failed_section(model)
    blocks += metadata_blocks(model.meta)
    return Document(title, tuple(blocks))
