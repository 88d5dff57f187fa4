"""The answer and its evidence: the verdict sentences and picture, each build's candidate, the rounds.

The answer (one paragraph per workload, with what limits scaling where the run was profiled, and
one picture), the table of each build's exploration candidate, and the confirmation rounds that
the verdict's ratio rests on, with how each candidate was chosen.
"""

from __future__ import annotations

from collections.abc import Sequence

from ftscale.bench.report import charts, fmt, labels, profiles, words
from ftscale.bench.report.document import Block, Bullets, Figure, Heading, Paragraph, Table
from ftscale.bench.report.findings import Verdict
from ftscale.bench.report.model import Finalist, RunModel
from ftscale.bench.report.sections.common import CI, choice_label, unit_of


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
    header = (
        "Workload",
        "Candidates",
        "Rounds",
        f"FT {unit}",
        f"GIL {unit}",
        f"Paired ratio {CI}",
        f"Sign test {CI}",
        "Outcome",
    )
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
