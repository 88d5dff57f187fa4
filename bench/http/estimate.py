"""How long an HTTP run should take, from the bench's own estimates, and ``--dry-run``'s account.

Before anything is measured the bench knows only the plan: each repetition's overhead (a fresh
server's start and stop, by way of starting servers), its warm-up and load, what a stock
deployment adds, a capacity search at an assumed closed-loop median, the confirmation rounds,
the in-process pass and the fixed costs of a run. The engine uses :func:`group_seconds` for its
first ETA and the budget; :func:`dry_run` prints the whole plan and :func:`estimate_seconds`.
"""

from __future__ import annotations

from collections.abc import Sequence

from ftscale.bench.http import capacity, ceiling
from ftscale.bench.http.ceiling import CeilingGroup
from ftscale.bench.http.cells import Group, server_label
from ftscale.bench.http.confirm import ConfirmGroup
from ftscale.bench.http.plan import HttpPlan
from ftscale.bench.http.real import Request, request_of
from ftscale.vocab import Topology

# What one repetition costs besides its warm-up and load, before any was measured: the server's
# start (until /health answers) and stop, /info before and after, the usage and memory readings,
# the generator's and the probe's own start. Per way of starting servers (--server-start),
# measured on the 2-core development machine: forked from a zygote, the quick preset's 54
# exploration repetitions took 124 s and its 60 confirmation repetitions 112 s, each 1.5 s of
# warm-up and load (start and stop alone: 0.26 s, median of 114); spawned, 72 repetitions in
# 510 s with 2.5 s of each warm-up and load (results/20261126T012948Z-http-vm).
REPETITION_OVERHEAD_S = {"fork": 0.36, "spawn": 4.5}
# What a stock deployment adds to that (it starts and stops its workers its own way: uvicorn
# --workers spawns fresh interpreters, gunicorn's arbiter forks and reaps), measured the same way:
# start and stop took 2.81 s (uvicorn --workers) and 0.42 s (gunicorn) against ftscale's 0.26 s.
TOPOLOGY_OVERHEAD_S: dict[str, float] = {Topology.GUNICORN: 0.16, Topology.UVICORN_WORKERS: 2.55}
# What --dry-run assumes a design's closed-loop median to be when it estimates a capacity search,
# which cannot be known before the design is measured: about what the quick workloads reach on one
# thread of the development machine (nbody 80 req/s, results/20261126T012948Z-http-vm). A faster
# design's search is shorter (its steps reach 1,000 requests sooner).
ASSUMED_CAP_RPS = 80.0


def load_seconds(duration_s: float) -> float:
    """How long one load runs: as stated (wrk is stopped when it has run that long)."""
    return duration_s


def repetition_seconds(job: HttpPlan) -> float:
    """The estimate of one repetition: its overhead, its warm-up and its load."""
    overhead = REPETITION_OVERHEAD_S[job.server_start]
    return overhead + job.settings.warmup_s + load_seconds(job.settings.duration_s)


def twinned(builds: Sequence[str]) -> list[str]:
    """The builds of ``builds`` whose twin is in the run too (``3.14t`` and ``3.14``): each sends a
    candidate to every workload's confirmation rounds (by name, before any build is described)."""
    return [b for b in builds if (b.endswith("t") and b[:-1] in builds) or f"{b}t" in builds]


def paired_builds(builds: Sequence[str]) -> int:
    return len(twinned(builds))


def search_seconds(job: HttpPlan, shares: Sequence[float] = capacity.UPWARD) -> float:
    """The estimate of one capacity search (its server's start included), at
    :data:`ASSUMED_CAP_RPS`, trying ``shares`` of it."""
    settings = job.settings
    if settings.slo_p99_ms is None:
        return 0.0
    return REPETITION_OVERHEAD_S[job.server_start] + capacity.search_seconds(
        ASSUMED_CAP_RPS,
        settings.slo_p99_ms,
        settings.duration_s,
        settings.warmup_s,
        shares,
        settings.slo_loads,
        settings.slo_min_samples,
    )


def confirmation_seconds(job: HttpPlan) -> float:
    """The estimate of one workload's confirmation rounds. Which design each build sends is not
    known before its exploration: a stock deployment's own start and stop is counted as the
    average over the designs of that kind of build (any of them may be its candidate)."""
    per_rep = repetition_seconds(job)
    extra = 0.0
    for build in twinned(job.matrix.builds):
        designs = job.matrix.designs(build.endswith("t"))
        extra += sum(TOPOLOGY_OVERHEAD_S.get(t, 0.0) for _, t in designs) / max(1, len(designs))
    return job.settings.rounds * (paired_builds(job.matrix.builds) * per_rep + extra)


def group_seconds(job: HttpPlan, group: Group | ConfirmGroup | CeilingGroup) -> float:
    """The bench's estimate of one group's duration before any has been measured."""
    if isinstance(group, CeilingGroup):
        return len(group.plans) * ceiling.CELL_S
    per_rep = repetition_seconds(job)
    if isinstance(group, ConfirmGroup):
        return confirmation_seconds(job)
    plans = [p for p in group.plans if p.skip_reason is None]
    measured = [p for p in plans if p.load == "closed" or p.offered_share]
    reps = job.settings.repetitions * len(measured)
    reps += sum(1 for p in plans if p.load == "closed") if job.profile else 0
    stock = job.settings.repetitions * sum(TOPOLOGY_OVERHEAD_S.get(p.topology, 0.0) for p in measured)
    return reps * per_rep + stock + sum(1 for p in plans if p.slo) * search_seconds(job)


def calibration_loads(
    job: HttpPlan, groups: Sequence[Group | ConfirmGroup | CeilingGroup]
) -> list[tuple[str, int, Request]]:
    """Every (load kind, connection count, request) a cell will use: what the ceilings are measured for."""
    found: set[tuple[str, int, Request]] = set()
    factor = job.settings.open_connections_factor
    for group in groups:
        for plan in group.plans if not isinstance(group, CeilingGroup) else ():
            open_loop = plan.load == "open"
            kind, connections = (
                ("open", plan.connections * factor) if open_loop else ("closed", plan.connections)
            )
            found.add((kind, connections, request_of(plan)))
    return sorted(found)


# Fixed costs of a run besides its cells, before any was measured (the 2-core development machine,
# environments already made): a zygote per build, one calibration load per load kind and
# connection count, and the report (charts for three workloads).
ZYGOTE_S = 1.0
CALIBRATION_LOAD_S = 1.3
REPORT_S = 5.0


def ceiling_groups(job: HttpPlan) -> list[CeilingGroup]:
    """The in-process pass of every workload (none where the job has no pass)."""
    return ceiling.groups(job.matrix.workloads, job.matrix.builds, job.matrix.sizes, job.ceiling_threads)


def estimate_seconds(job: HttpPlan) -> dict[str, float]:
    """The run's duration by part, from the bench's own estimates (environments already made)."""
    explore = job.matrix.groups({b: b.endswith("t") for b in job.matrix.builds})
    confirmation = len(job.matrix.workloads) if job.settings.rounds >= 2 else 0
    per_confirmation = confirmation_seconds(job)
    return {
        "in-process": sum(group_seconds(job, g) for g in ceiling_groups(job)),
        "sweep": sum(group_seconds(job, g) for g in explore),
        "confirmation": confirmation * per_confirmation,
        "start": len(job.matrix.builds) * (ZYGOTE_S if job.server_start == "fork" else 0.0)
        + CALIBRATION_LOAD_S * len(calibration_loads(job, explore)),
        "report": REPORT_S,
    }


def dry_run(job: HttpPlan) -> int:
    """What the run would measure and how long it should take, from the bench's own estimates."""
    groups = job.matrix.groups({b: b.endswith("t") for b in job.matrix.builds})
    cells = sum(len(g.plans) for g in groups)
    skipped = [p for g in groups for p in g.plans if p.skip_reason]
    parts = estimate_seconds(job)
    seconds = sum(parts.values())
    print(f"preset {job.preset}: {len(groups)} groups, {cells} cells ({len(skipped)} skipped)")
    print(f"  builds {', '.join(job.matrix.builds)}; workloads {', '.join(job.matrix.workloads)}")
    for kind, designs in (
        ("free-threaded", job.matrix.free_threaded_designs),
        ("GIL", job.matrix.gil_designs),
    ):
        print(f"  {kind} designs: {', '.join(f'{mode}/{topology}' for mode, topology in designs)}")
    variants = [server_label(s, n) for s, n in job.matrix.server_variants()]
    print(
        f"  servers: {', '.join(variants)} (each runs every design; packages are checked when "
        "the environments are made)"
    )
    for build, server, mode, topology, why in sorted(
        {(p.build, p.server_label, p.mode, p.topology, p.skip_reason or "") for p in skipped}
    ):
        print(f"  skipped: {build} {server} {mode}/{topology}: {why}")
    print(f"  threads {job.matrix.threads} (server CPUs {job.server_cpus}, client CPUs {job.client_cpus})")
    connections = sorted({job.matrix.connections_of(w) for w in job.matrix.workloads})
    print(f"  connections: {', '.join(map(str, connections))} (the same at every thread count of a workload)")
    load = "closed" + (
        f"; open at {', '.join(f'{s:.0%}' for s in job.matrix.open_shares)}" if job.matrix.open_shares else ""
    )
    if job.matrix.slo:
        load += f"; capacity at p99 <= {job.settings.slo_p99_ms:g} ms"
    if job.matrix.open_shares or job.matrix.slo:
        load += f"; open loop with {job.settings.arrivals} arrivals"
    print(f"  load: {load}; {job.settings.repetitions} repetitions of {job.settings.duration_s:g} s")
    searches = sum(1 for g in groups for p in g.plans if p.slo and not p.skip_reason)
    if searches:
        print(
            f"  capacity searches: {searches}, each up to {len(capacity.UPWARD)} rates of at least "
            f"{job.settings.slo_loads} loads with {job.settings.slo_min_samples:,} requests per rate; "
            f"about {search_seconds(job) / 60:.1f} min each at a closed-loop median of {ASSUMED_CAP_RPS:g} "
            f"req/s (assumed: not known before the design is measured), "
            f"{search_seconds(job, capacity.DOWNWARD) / 60:.1f} min where half of it fails and the search "
            "goes lower; a slower design takes longer"
        )
    if job.settings.rounds >= 2:
        print(
            f"  confirmation: {job.settings.rounds} paired rounds of each build's finalist per workload; "
            f"equivalent within {job.margin:.0%}"
        )
    print(
        f"  fresh servers: {job.server_start} ({REPETITION_OVERHEAD_S[job.server_start]:g} s a repetition "
        "besides its warm-up and load)"
    )
    passes = ceiling_groups(job)
    if passes:
        cells = sum(len(g.plans) for g in passes)
        print(
            f"  in process (the ceiling): threads {list(job.ceiling_threads)}, {cells} pyperf cells on the "
            f"server CPUs, one process each ({ceiling.CELL_S:g} s a cell)"
        )
    if job.hypothetical_cpus:
        print(f"  planned for a host of {job.hypothetical_cpus} CPUs (one per core), not this machine")
    print(
        f"estimated duration: {_clock(seconds)} ({seconds:,.0f} s: in process {parts['in-process']:,.0f} s, "
        f"sweep {parts['sweep']:,.0f} s, "
        f"confirmation {parts['confirmation']:,.0f} s, zygotes and calibration {parts['start']:,.0f} s, "
        f"report {parts['report']:,.0f} s), with the environments already made"
    )
    return 0


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"
