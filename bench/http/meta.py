"""An HTTP run's ``run.json`` metadata: the host, the plan, the generator and its ceilings.

Written once, before the first cell (a resumed run keeps what it wrote): everything a report
needs to say what was measured and how, from the file alone. A user's app adds its own config
and notes (:class:`~ftscale.bench.http.plan.AppSource`).
"""

from __future__ import annotations

import sys
from dataclasses import asdict

from ftscale.bench import results
from ftscale.bench.http.loadgen import wrk_version
from ftscale.bench.http.plan import HttpPlan
from ftscale.bench.micro.judge import JUDGED_AT_MEASUREMENT
from ftscale.schema import Build, RunConfig, RunGenerator, RunMeta
from ftscale.vocab import Generator


def run_meta(job: HttpPlan, ceilings: dict[str, float], builds: dict[str, Build]) -> RunMeta:
    """The run's metadata, with a user's app's config and notes where it serves one."""
    meta = bench_meta(job, ceilings)
    app = job.app
    if app is None:
        return meta
    config = {**meta.config, "command": app.command, "app": app.config}
    return meta.model_copy(update={"config": config, "notes": [*meta.notes, *app.notes(builds)]})


def bench_meta(job: HttpPlan, ceilings: dict[str, float]) -> RunMeta:
    return RunMeta(
        run_id=job.run_dir.name,
        kind="http",
        created=results.now(),
        host=results.collect_host(),
        git=results.collect_git(),
        config=RunConfig(
            argv=job.argv,
            preset=job.preset,
            server_cpus=job.server_cpus,
            client_cpus=job.client_cpus,
            shared_cpus=job.shared_cpus,
            server_pinning="a cell at N threads runs on the first N server CPUs",
            settings=asdict(job.settings),
            margin=job.margin,
            server_start=job.server_start,
            connections={name: job.matrix.connections_of(name) for name in job.matrix.workloads},
            matrix={
                "builds": job.matrix.builds,
                "workloads": job.matrix.workloads,
                "free_threaded_designs": [list(d) for d in job.matrix.free_threaded_designs],
                "gil_designs": [list(d) for d in job.matrix.gil_designs],
                "threads": job.matrix.threads,
                "sizes": job.matrix.sizes,
                "open_shares": list(job.matrix.open_shares),
                "slo_p99_ms": job.settings.slo_p99_ms,
                "servers": list(job.matrix.servers),
                "runtime_threads": list(job.matrix.runtime_threads),
            },
            target=job.target,
            judge=JUDGED_AT_MEASUREMENT,  # every cell's flags were judged when it was made
        ),
        generator=RunGenerator(
            name=str(job.generator),
            version=wrk_version() if job.generator == Generator.WRK else sys.version.split()[0],
            cpus=job.client_cpus,
            loop="closed" if not job.matrix.open_shares and not job.matrix.slo else "closed and open",
            open_loop=(
                f"built-in generator, one process per client CPU; {job.settings.arrivals} arrivals from "
                f"seeds derived from the run's ({job.settings.seed}); latency from the due time; "
                "throughput counts answers completed inside the window"
            ),
            streams=(
                "built-in generator: it times each stream's first byte and the gaps between its chunks"
                if job.stream_generator == Generator.PYTHON
                else "wrk, as asked: it counts the chunks but cannot time the first byte or the gaps"
            ),
            connections=job.matrix.connections
            or (
                "4 x threads (min 8)"
                if job.matrix.app
                else "2 x threads (min 4); 4 x threads for I/O workloads; 16 x threads (min 16) for streams"
            ),
            ceilings=ceilings,
            ceiling_method="per load kind and connections, against a trivial server on the server CPUs",
        ),
    )
