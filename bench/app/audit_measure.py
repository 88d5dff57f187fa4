"""``ftscale audit --measure``: what the GIL that came back costs the app, from one short closed-loop
load as the imports leave the GIL and one with ``PYTHON_GIL=0``, each on a fresh server. One load
each, not a benchmark (``ftscale app`` is)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ftscale.schema import AuditLoad, AuditMeasure
from ftscale.vocab import APP_PREFIX

if TYPE_CHECKING:
    from ftscale.bench.app.audit_plan import AuditPlan


def measure(build: str, python: Path, plan: AuditPlan, log: Callable[[str], None]) -> AuditMeasure:
    """The app as the imports leave the GIL, then with ``PYTHON_GIL=0``: one short load each."""
    from ftscale.bench.http import plan as http_plan
    from ftscale.bench.http.cells import AppRequests, CellSpec, Settings
    from ftscale.bench.http.matrix import app_connections, split_cpus
    from ftscale.bench.http.procs import ServerError
    from ftscale.bench.http.real import Launcher, SubprocessGenerator
    from ftscale.bench.http.session import CellProgress, Session

    assert plan.app is not None and plan.mix is not None
    available = sorted(os.sched_getaffinity(0))
    server, client = split_cpus(available) if len(available) > 1 else (available, available)
    threads = plan.threads or max(1, min(4, len(server)))
    # wrk where its program is installed, as the HTTP bench defaults to; else the built-in client.
    generator = SubprocessGenerator(http_plan.choose_generator("auto"), client)
    result = AuditMeasure(
        threads=threads, duration_s=plan.duration_s, generator=generator.name, design="threadpool/single"
    )
    with tempfile.TemporaryDirectory(prefix="ftscale-audit-") as scratch:
        mix_file = Path(scratch) / "requests.json"
        mix_file.write_text(plan.mix.model_dump_json())
        cell = CellSpec(
            build=build,
            workload=plan.app,
            workload_class="app",
            size=0,
            mode="threadpool",
            topology="single",
            threads=threads,
            connections=app_connections(threads),
            app=AppRequests(str(mix_file)),
        )
        launcher = Launcher(
            pythons={build: python},
            cpus=server,
            run_id="audit",
            extra=("--app", plan.app, "--app-dir", str(plan.app_dir)),
            prefix=APP_PREFIX,
        )
        settings = Settings(duration_s=plan.duration_s, warmup_s=1.0, repetitions=1)
        loads: dict[str, AuditLoad] = {}
        for label in ("default", "0"):
            log(f"  {build}: measuring the app with PYTHON_GIL={'unset' if label == 'default' else label}")
            # An empty PYTHON_GIL is no setting: the GIL as the imports leave it.
            env = {"PYTHON_GIL": "" if label == "default" else label}
            session = Session(cell, _WithEnv(launcher, env), settings)
            out = CellProgress(plan=cell, started="")
            try:
                with session:
                    rep = session.measure(generator, None, None, out)
            except (ServerError, RuntimeError, OSError, ValueError) as exc:
                return result.model_copy(update={"error": f"{session.state}: {exc}"})
            loads[label] = AuditLoad(
                python_gil="default" if label == "default" else "0",
                gil_enabled=out.info_before.gil_enabled if out.info_before else None,
                throughput_rps=rep.load.throughput_rps,
                requests=rep.load.requests,
                errors=rep.load.errors,
                latency_ms=rep.load.latency_ms,
            )
    default, off = loads["default"], loads["0"]
    ratio = off.throughput_rps / default.throughput_rps if default.throughput_rps > 0 else None
    return result.model_copy(update={"default": default, "gil_off": off, "ratio": ratio})


class _WithEnv:
    """A launcher whose servers all get ``env`` added to theirs."""

    def __init__(self, launcher: Any, env: dict[str, str]) -> None:
        self.launcher, self.env = launcher, env

    def start(self, plan: Any, env: Mapping[str, str] | None = None) -> Any:
        return self.launcher.start(plan, {**self.env, **(env or {})})
