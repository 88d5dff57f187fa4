"""The HTTP bench's group loop: the repetitions of a group's cells, in order, into cells.

The bench measures cells in *groups* (:class:`~ftscale.bench.http.cells.Group`): every cell of
one workload at one thread count. :func:`measure_group` measures the closed-loop cells with their
repetitions interleaved (repetition 1 of every cell, then repetition 2 …), so drift of the machine
(thermal, a noisy neighbour) spreads over every build and design alike instead of masquerading as
a difference between them; then the open-loop cells, at shares of each design's own closed-loop
median; then the searches for each design's capacity at a latency target
(:mod:`ftscale.bench.http.capacity`). :func:`measure_confirmation` measures a workload's
finalists in paired rounds. Each repetition runs on a fresh server (:mod:`.session`); a failure
fails that cell (with the error and the tail of the server's stderr) and the group goes on with
its other cells. Each cell is judged once, when it is made (:mod:`.judge`).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from ftscale.bench import results
from ftscale.bench.http import capacity, gencheck
from ftscale.bench.http.cells import CellSpec, Group, Settings, interleaved, rounds_order
from ftscale.bench.http.judge import NO_CPU_CONTEXT, CpuContext, judge_http, nodelay_info
from ftscale.bench.http.loadgen import LoadSpec
from ftscale.bench.http.profile import profiled_repetition
from ftscale.bench.http.session import (
    CellProgress,
    LoadGenerator,
    RepetitionFailed,
    ServerStarter,
    Session,
    guarded,
)
from ftscale.bench.profile.session import Profiler
from ftscale.schema import HttpCell, HttpRepetition, Selection


def gil_after(out: CellProgress) -> bool | None:
    """The GIL as the cell's servers left it: on after any repetition's load, else as /info last said."""
    if any(r.gil_came_back for r in out.reps):
        return True
    info = out.info_after or out.info_before
    return info.gil_enabled if info is not None else None


def sample(rep: HttpRepetition, plan: CellSpec) -> float:
    """A repetition's throughput in the cell's unit: requests, or a streaming cell's chunks, per second."""
    return (rep.load.chunks_per_s or 0.0) if plan.stream else rep.load.throughput_rps


def make_cell(out: CellProgress, run_id: str, cpus: CpuContext = NO_CPU_CONTEXT) -> HttpCell:
    """The cell ``out`` made, judged once (its flags: :func:`~ftscale.bench.http.judge.judge_http`)."""
    plan = out.plan
    nodelay = nodelay_info(out.info_after, out.info_before)
    common: dict[str, Any] = {
        "run_id": run_id,
        "cell_id": plan.key,
        "build": plan.build,
        "workload": plan.workload,
        "workload_class": plan.workload_class,
        "size": plan.size,
        "threads": plan.threads,
        "mode": plan.mode,
        "topology": plan.topology,
        "unit": plan.unit,
        "started": out.started,
        "finished": results.now(),
        "info_before": out.info_before,
        "info_after": out.info_after,
        "load": plan.load,
        "offered_rps": out.offered_rps,
        "offered_share": plan.offered_share,
        "slo": out.slo,
        "profile": out.profile,
        "server": plan.server,
        "runtime_threads": plan.runtime_threads if plan.runtime_threads != 1 else None,
        "tcp_nodelay": nodelay.tcp_nodelay if nodelay is not None else None,
        "stage": plan.stage,
        "selection": out.selection,
        "connections": plan.load_connections,
        "disturbed": out.disturbed,
    }
    if plan.skip_reason is not None:
        return HttpCell(**common, status="skipped", skip_reason=plan.skip_reason)
    if out.error is not None or not out.reps:
        return HttpCell(
            **common,
            status="failed",
            error=out.error or "no repetition was measured",
            stderr_tail=(out.stderr_tail or "")[-4000:] or None,
        )
    cell = HttpCell(
        **common,
        status="ok",
        samples=[sample(r, plan) for r in out.reps],
        repetitions=out.reps,
        gil_enabled=gil_after(out),
    )
    return cell.model_copy(update={"flags": judge_http(plan, cell, cpus)})


def repeat(
    plan: CellSpec,
    out: CellProgress,
    body: Callable[[Session, CellProgress], HttpRepetition | None],
    launcher: ServerStarter,
    settings: Settings,
    log: Callable[[str], None],
    round_index: int | None = None,
) -> None:
    """One repetition of ``plan`` on a fresh server, into ``out``; measured once more, at once,
    when the machine disturbed it (the disturbed one is kept in ``out.disturbed``)."""
    for attempt in range(2):
        if out.error is not None:
            return
        session = Session(plan, launcher, settings)
        try:
            rep = guarded(session, lambda s=session: body(s, out))  # type: ignore[misc]
        except RepetitionFailed as exc:
            out.error, out.stderr_tail = str(exc), exc.tail
            log(f"    {plan.key}: failed in {exc}")
            return
        if rep is None:
            return
        rep = rep.model_copy(update={**session.costs(), "round": round_index})
        disturbed = rep.interference is not None and rep.interference.disturbed
        if disturbed and attempt == 0 and settings.redo_disturbed:
            out.disturbed.append(rep)
            assert rep.interference is not None
            log(
                f"    {plan.key}: disturbed (other processes {rep.interference.foreign_cpu_pct:.0f} % of a "
                f"CPU, steal {rep.interference.steal_pct:.0f} %): measured again"
            )
            continue
        out.reps.append(rep)
        return


def measure_group(
    group: Group,
    run_id: str,
    launcher: ServerStarter,
    generator: LoadGenerator,
    settings: Settings,
    ceilings: dict[str, float],
    log: Callable[[str], None] = lambda _: None,
    profiler: Profiler | None = None,
    cpus: CpuContext = NO_CPU_CONTEXT,
) -> list[HttpCell]:
    """Measure every cell of ``group``: closed loop interleaved, then open loop, then the searches.

    With a ``profiler`` (``--profile``), each closed-loop cell then gets one more repetition on a
    fresh server under perf (:func:`ftscale.bench.http.profile.profiled_repetition`): it is the
    cell's ``profile``, never a sample. Never raises for a server or generator failure
    (KeyboardInterrupt does, after stopping the server of the repetition in flight).
    """
    outcomes = {p.key: CellProgress(p, results.now()) for p in group.plans}
    runnable = [p for p in group.plans if p.skip_reason is None]  # skipped plans start nothing
    closed = [p for p in runnable if p.load == "closed"]

    def run(plan: CellSpec, body: Callable[[Session, CellProgress], HttpRepetition | None]) -> None:
        repeat(plan, outcomes[plan.key], body, launcher, settings, log)

    def ceiling(plan: CellSpec, rate: float | None) -> float | None:
        connections = plan.connections * (settings.open_connections_factor if rate else 1)
        return gencheck.ceiling_for(ceilings, "open" if rate else "closed", connections, plan.request())

    for _, plan in interleaved(closed, settings.repetitions):
        run(plan, lambda s, out, p=plan: s.measure(generator, ceiling(p, None), None, out))  # type: ignore[misc]

    for plan in closed if profiler is not None else ():
        out = outcomes[plan.key]
        if out.error is not None or not out.reps or profiler is None:
            continue
        spec = LoadSpec(
            host="",
            port=0,
            **plan.request(),
            connections=plan.connections,
            duration_s=settings.duration_s,
            stream=plan.stream,
        )
        out.profile = profiled_repetition(
            plan.key,
            lambda env, p=plan: launcher.start(p, env=env),  # type: ignore[misc]
            generator,
            spec,
            settings.warmup_s,
            settings.start_timeout_s,
            profiler,
        )
        found = out.profile.error or f"{out.profile.samples} samples"
        log(f"    {plan.key}: profile {out.profile.status} ({found})")

    def peak(plan: CellSpec) -> float | None:
        base = next((p for p in closed if p.design == plan.design), None)
        done = outcomes[base.key] if base is not None else None
        if done is None or done.error is not None or not done.reps:
            return None
        return statistics.median(r.load.throughput_rps for r in done.reps)

    open_plans = [p for p in runnable if p.offered_share is not None]
    for _, plan in interleaved(open_plans, settings.repetitions):
        rps = peak(plan)
        if rps is None:
            outcomes[plan.key].error = "no closed-loop measurement of this design to set the rate from"
            continue
        rate = rps * (plan.offered_share or 0.0)
        outcomes[plan.key].offered_rps = rate
        run(plan, lambda s, out, p=plan, r=rate: s.measure(generator, ceiling(p, r), r, out))  # type: ignore[misc]

    for plan in (p for p in runnable if p.slo):
        rps = peak(plan)
        if rps is None or settings.slo_p99_ms is None:
            outcomes[plan.key].error = "no closed-loop measurement of this design to search from"
            continue

        def search(
            s: Session, out: CellProgress, p: CellSpec = plan, top: float = rps
        ) -> HttpRepetition | None:
            assert settings.slo_p99_ms is not None
            found, reps = capacity.search(
                lambda rate, seconds: s.measure(generator, ceiling(p, rate), rate, out, seconds),
                top,
                settings.slo_p99_ms,
                settings.duration_s,
                settings.slo_loads,
                settings.slo_min_samples,
            )
            out.slo = found
            out.offered_rps = found.capacity_rps
            out.reps.extend(reps)  # the loads of the step at the capacity (or of the lowest tried)
            return None

        run(plan, search)
    cells = [make_cell(outcomes[p.key], run_id, cpus) for p in group.plans]
    for cell in cells:
        if cell.status == "ok" and cell.load == "closed":
            median = statistics.median(cell.samples)
            log(f"    {cell.cell_id}: {median:,.1f} {cell.unit} {' '.join(cell.flags)}")
    return cells


def measure_confirmation(
    finalists: Sequence[tuple[CellSpec, Selection]],
    run_id: str,
    launcher: ServerStarter,
    generator: LoadGenerator,
    settings: Settings,
    ceilings: dict[str, float],
    log: Callable[[str], None] = lambda _: None,
    cpus: CpuContext = NO_CPU_CONTEXT,
) -> list[HttpCell]:
    """Measure the finalists in :attr:`Settings.rounds` rounds (:mod:`ftscale.bench.http.confirm`):
    each round measures every finalist once, on a fresh server, in rotating order; each
    repetition carries its round, so the reports pair them."""
    plans = [plan for plan, _ in finalists]
    outcomes = {plan.key: CellProgress(plan, results.now(), selection=why) for plan, why in finalists}

    def body(plan: CellSpec) -> Callable[[Session, CellProgress], HttpRepetition | None]:
        ceiling = gencheck.ceiling_for(ceilings, "closed", plan.connections, plan.request())
        return lambda s, out: s.measure(generator, ceiling, None, out)

    for r, order in rounds_order(len(plans), settings.rounds):
        for index in order:
            plan = plans[index]
            repeat(plan, outcomes[plan.key], body(plan), launcher, settings, log, round_index=r)
    cells = [make_cell(outcomes[p.key], run_id, cpus) for p in plans]
    for cell in cells:
        if cell.status == "ok":
            median = statistics.median(cell.samples)
            log(f"    {cell.cell_id}: {median:,.1f} {cell.unit} over {len(cell.samples)} rounds")
    return cells
