"""HTTP scaling bench: builds x workloads x modes x topologies x threads, one server per cell.

``nox -s bench`` runs the quick preset (3.14 and 3.14t; nbody, sha256_hash, rag_gateway;
threadpool/single; 1..N threads); ``--full`` covers every build, workload, mode and topology.
The machine's CPUs are split: the server is pinned to most of them, the load generator and
the /health probe to the rest (``--server-cpus`` / ``--client-cpus``), and both are recorded.
Each cell is written to ``results/<run-id>/cells/`` as soon as it is measured; ``--resume``
finishes an interrupted run and Ctrl-C keeps what was measured. ``--target URL`` drives a
server started elsewhere instead.

What it does not do: it does not tune the kernel, isolate CPUs or fix clock frequencies; the
report shows the affinity and the per-cell variation so a reader can judge the noise.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import workloads
from bench import envs, provision, results
from bench.loadgen import LoadResult, LoadSpec, wrk_path, wrk_version
from bench.procs import INTERRUPTS, ServerError, ServerProcess, free_port, http_json, run_pinned, stop_all
from bench.sweep import Plan, Settings, measure, pending

MODES = ("inline", "threadpool", "executor", "process")
TOPOLOGIES = ("single", "workers", "loops")
QUICK_BUILDS = ("3.14", "3.14t")
RUN_ENV = "FTSCALE_RUN_ID"  # set in every server's environment: which run started it
QUICK_WORKLOADS = ("nbody", "sha256_hash", "rag_gateway")
# --full: every mode on one process, and the multi-process / multi-loop topologies with the
# modes that make sense there (one CPU-bound request at a time per worker or loop).
FULL_COMBOS = (
    ("inline", "single"),
    ("threadpool", "single"),
    ("executor", "single"),
    ("process", "single"),
    ("inline", "workers"),
    ("threadpool", "workers"),
    ("inline", "loops"),
    ("threadpool", "loops"),
)


class UsageError(Exception):
    """Bad command-line input: reported in one line before anything starts."""


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def parse_cpus(text: str) -> list[int]:
    """``"0-3,8"`` -> [0, 1, 2, 3, 8]."""
    cpus: list[int] = []
    for part in _csv(text):
        lo, _, hi = part.partition("-")
        try:
            first, last = int(lo), int(hi or lo)
        except ValueError:
            raise UsageError(f"bad CPU list {text!r}: use e.g. 0-3,8") from None
        cpus.extend(range(first, last + 1))
    return sorted(set(cpus))


def parse_threads(text: str) -> list[int]:
    try:
        counts = sorted({int(t) for t in _csv(text)})
    except ValueError:
        raise UsageError(f"thread counts must be integers, got {text!r}") from None
    if not counts or counts[0] < 1:
        raise UsageError(f"thread counts must be 1 or more, got {text!r}")
    return counts


def split_cpus(available: Sequence[int], client_share: float = 0.25) -> tuple[list[int], list[int]]:
    """Default split: the client gets the first quarter of the CPUs (at least one), the server the rest."""
    cpus = sorted(available)
    if len(cpus) < 2:
        raise UsageError("the HTTP bench needs at least 2 CPUs to keep server and load generator apart")
    n_client = max(1, int(len(cpus) * client_share))
    return cpus[n_client:], cpus[:n_client]


def default_threads(server_cpus: int) -> list[int]:
    """1, 2, 4, ... up to the server's CPUs, and at least [1, 2]."""
    counts, n = [], 1
    while n <= max(2, server_cpus):
        counts.append(n)
        n *= 2
    if server_cpus > 2 and counts[-1] != server_cpus:
        counts.append(server_cpus)
    return counts


def connections_for(threads: int, io_wait_s: float) -> int:
    """Enough requests in flight to keep N threads busy: 2N, 4N when requests mostly wait.

    Both stay within the service's default admission limit (pool + 4 x pool), so a default
    run measures throughput, not 503s; ``--connections`` can push past it on purpose.
    """
    return max(4, 4 * threads) if io_wait_s else max(4, 2 * threads)


@dataclass(frozen=True)
class Matrix:
    builds: list[str]
    workloads: list[str]
    combos: list[tuple[str, str]]
    threads: list[int]
    sizes: dict[str, int]
    connections: int | None

    def plans(self) -> list[Plan]:
        return [
            self.plan(build, name, mode, topology, n)
            for build in self.builds
            for name in self.workloads
            for mode, topology in self.combos
            for n in self.threads
        ]

    def plan(self, build: str, name: str, mode: str, topology: str, threads: int) -> Plan:
        """One cell of this matrix (or of a remote server's own configuration)."""
        w = workloads.get(name)
        return Plan(
            build=build,
            workload=name,
            workload_class=w.workload_class.value,
            size=self.sizes.get(name, w.default_size),
            mode=mode,
            topology=topology,
            threads=threads,
            connections=self.connections or connections_for(threads, w.io_wait_s),
        )


# --- real servers and generators --------------------------------------------------------------


class Launcher:
    def __init__(
        self, pythons: dict[str, Path], cpus: list[int], run_id: str, extra: Sequence[str] = ()
    ) -> None:
        self.pythons, self.cpus, self.run_id, self.extra = pythons, cpus, run_id, list(extra)

    def start(self, plan: Plan) -> ServerProcess:
        port = free_port()
        cmd = [
            str(self.pythons[plan.build]),
            "-m",
            "server",
            "--mode",
            plan.mode,
            "--topology",
            plan.topology,
            "--threads",
            str(plan.threads),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
            *self.extra,
        ]
        return ServerProcess(cmd, "127.0.0.1", port, self.cpus, results.REPO_ROOT, {RUN_ENV: self.run_id})


class RemoteServer:
    """A server started elsewhere (``--target``): measured from outside only."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme != "http" or not parts.hostname:
            raise UsageError(f"--target must be an http:// URL, got {url!r}")
        self.host, self.port = parts.hostname, parts.port or 80
        self.url = url.rstrip("/")

    def start(self, plan: Plan) -> RemoteServer:
        return self

    def wait_healthy(self, timeout_s: float) -> None:
        try:
            http_json(f"{self.url}/health", timeout=timeout_s)
        except (OSError, ValueError) as exc:
            raise ServerError(f"{self.url}/health: {exc}") from None

    def alive(self) -> bool:
        return True

    def info(self) -> dict[str, Any]:
        return http_json(f"{self.url}/info")

    def usage(self) -> None:
        return None

    def stderr_tail(self, limit: int = 4000) -> str:
        return ""

    def stop(self, timeout_s: float = 15.0) -> dict[str, Any]:
        return {"remote": True}


class SubprocessGenerator:
    """Runs each load (and the /health probe) in its own process pinned to the client CPUs."""

    def __init__(self, name: str, cpus: list[int]) -> None:
        self.name, self.client_cpus = name, cpus
        self.cpus = len(cpus)

    def _cmd(self, what: str, spec: LoadSpec) -> list[str]:
        return [
            sys.executable,
            "-m",
            "bench.loadgen",
            what,
            "--host",
            spec.host,
            "--port",
            str(spec.port),
            "--path",
            spec.path,
            "--method",
            spec.method,
            "--body",
            spec.body.decode(),
            "--connections",
            str(spec.connections),
            "--duration",
            str(spec.duration_s),
            "--threads",
            str(self.cpus),
        ]

    def load(self, spec: LoadSpec, probe_health: bool) -> tuple[LoadResult, dict[str, Any] | None]:
        probe = None
        if probe_health:
            probe = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.loadgen",
                    "health",
                    "--host",
                    spec.host,
                    "--port",
                    str(spec.port),
                    "--duration",
                    str(spec.duration_s),
                ],
                cwd=results.REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            os.sched_setaffinity(probe.pid, set(self.client_cpus))
        try:
            out = run_pinned(
                self._cmd(self.name, spec), self.client_cpus, spec.duration_s + 90, results.REPO_ROOT
            )
        finally:
            health = None
            if probe is not None:
                probe_out, _ = probe.communicate(timeout=spec.duration_s + 60)
                health = json.loads(probe_out) if probe.returncode == 0 and probe_out else None
        return LoadResult.from_dict(json.loads(out)), health


# --- command line -------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.http", description=__doc__.split("\n\n")[0])
    p.add_argument("--full", action="store_true", help="every build, workload, mode and topology")
    p.add_argument("--builds", help=f"comma-separated, of {', '.join(provision.BUILDS)} (quick: 3.14,3.14t)")
    p.add_argument("--workloads", help=f"comma-separated (quick: {','.join(QUICK_WORKLOADS)}; full: all)")
    p.add_argument("--modes", help=f"comma-separated, of {', '.join(MODES)} (quick: threadpool)")
    p.add_argument("--topologies", help=f"comma-separated, of {', '.join(TOPOLOGIES)} (quick: single)")
    p.add_argument("--threads", help="comma-separated counts (default: 1, 2, 4 ... up to the server CPUs)")
    p.add_argument(
        "--size", action="append", default=[], metavar="WORKLOAD=N", help="override a workload's size"
    )
    p.add_argument("--duration", type=float, default=3.0, help="seconds per repetition (default 3)")
    p.add_argument("--warmup", type=float, default=1.0, help="warm-up seconds per cell (default 1)")
    p.add_argument("--repetitions", type=int, default=3, help="repetitions per cell (default 3, minimum 1)")
    p.add_argument("--connections", type=int, help="connections per load (default: 2 x threads, min 4)")
    p.add_argument(
        "--generator",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load generator (auto: wrk when installed, else the built-in one)",
    )
    p.add_argument(
        "--server-cpus", help="CPUs for the server, e.g. 2-15 (default: all but the first quarter)"
    )
    p.add_argument(
        "--client-cpus", help="CPUs for the load generator (default: the first quarter, at least 1)"
    )
    p.add_argument(
        "--allow-shared-cpus",
        action="store_true",
        help="let server and client CPUs overlap (every cell is then flagged)",
    )
    p.add_argument("--target", help="drive a server already running at this URL instead of starting one")
    p.add_argument(
        "--server-python",
        type=Path,
        metavar="PATH",
        help="run the server with this interpreter (its environment as it is) instead of provisioned builds",
    )
    results.add_run_arguments(p, "http")
    return p


@dataclass(frozen=True)
class Job:
    run_dir: Path
    matrix: Matrix
    settings: Settings
    server_cpus: list[int]
    client_cpus: list[int]
    generator: str
    target: str | None
    shared_cpus: bool
    server_python: Path | None


def _choose(
    given: str | None,
    quick: Sequence[str],
    full: Sequence[str],
    known: Sequence[str],
    what: str,
    use_full: bool,
) -> list[str]:
    names = _csv(given) if given else list(full if use_full else quick)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UsageError(f"unknown {what} {', '.join(unknown)}; known: {', '.join(known)}")
    return names


def plan_job(args: argparse.Namespace) -> Job:
    """Validate every argument and work out the whole job before anything starts."""
    if args.repetitions < 1:
        raise UsageError("--repetitions must be 1 or more")
    if args.duration <= 0 or args.warmup < 0:
        raise UsageError("--duration must be positive and --warmup not negative")
    if args.connections is not None and args.connections < 1:
        raise UsageError("--connections must be 1 or more")
    if args.resume:
        run_dir = args.results_dir / args.resume
        try:
            meta = results.RunDir(run_dir).read_meta()
        except results.ResultError as exc:
            raise UsageError(f"cannot resume {args.resume}: {exc}") from None
        saved = meta.config["argv"]
        resume = args.resume
        args = build_parser().parse_args([*saved, "--results-dir", str(args.results_dir)])
        args.resume = resume
    if args.server_python:
        if not os.access(args.server_python, os.X_OK):
            raise UsageError(f"--server-python {args.server_python}: not an executable")
        builds = [envs.describe("server-python", args.server_python).build]
    else:
        builds = _choose(args.builds, QUICK_BUILDS, provision.BUILDS, provision.BUILDS, "build", args.full)
    try:
        names = (
            [w.name for w in workloads.select(args.workloads)]
            if args.workloads
            else (list(workloads.REGISTRY) if args.full else list(QUICK_WORKLOADS))
        )
    except workloads.UnknownWorkload as exc:
        raise UsageError(str(exc)) from None
    if args.modes or args.topologies or not args.full:
        modes = _choose(args.modes, ["threadpool"], MODES, MODES, "mode", args.full)
        tops = _choose(args.topologies, ["single"], TOPOLOGIES, TOPOLOGIES, "topology", args.full)
        combos = [(m, t) for t in tops for m in modes]
    else:
        combos = list(FULL_COMBOS)
    sizes: dict[str, int] = {}
    for item in args.size:
        name, _, value = item.partition("=")
        try:
            sizes[name] = workloads.get(name).check_size(int(value))
        except (workloads.UnknownWorkload, workloads.InvalidSize) as exc:
            raise UsageError(str(exc)) from None
        except ValueError:
            raise UsageError(f"--size wants WORKLOAD=N, got {item!r}") from None
    available = sorted(os.sched_getaffinity(0))
    if args.server_cpus or args.client_cpus:
        default_server, default_client = split_cpus(available)
        server = parse_cpus(args.server_cpus) if args.server_cpus else default_server
        client = parse_cpus(args.client_cpus) if args.client_cpus else default_client
    else:
        server, client = split_cpus(available)
    outside = sorted(set(server + client) - set(available))
    if outside:
        raise UsageError(f"CPUs {outside} are not available to this process (available: {available})")
    shared = bool(set(server) & set(client))
    if shared and not args.allow_shared_cpus:
        raise UsageError(
            f"server CPUs {server} and client CPUs {client} overlap; pass --allow-shared-cpus to accept"
        )
    threads = parse_threads(args.threads) if args.threads else default_threads(len(server))
    generator = args.generator
    if generator == "auto":
        generator = "wrk" if wrk_path() else "python"
    elif generator == "wrk" and not wrk_path():
        raise UsageError(
            "--generator wrk: wrk is not installed (apt-get install wrk), or use --generator python"
        )
    run_id = args.resume or args.run_id or results.new_run_id("http")
    run_dir = args.results_dir / run_id
    if not args.resume and run_dir.exists():
        raise UsageError(f"{run_dir} already exists; use --resume {run_id} to finish it")
    return Job(
        run_dir=run_dir,
        matrix=Matrix(builds, names, combos, threads, sizes, args.connections),
        settings=Settings(
            duration_s=args.duration,
            warmup_s=args.warmup,
            repetitions=args.repetitions,
            ceiling_s=min(1.0, args.duration),
        ),
        server_cpus=server,
        client_cpus=client,
        generator=generator,
        target=args.target,
        shared_cpus=shared,
        server_python=args.server_python,
    )


def _remote_plans(job: Job, server: RemoteServer) -> list[Plan]:
    info = server.info()
    build = info.get("python", {}).get("build", "remote")
    mode, topology, threads = str(info.get("mode")), str(info.get("topology")), int(info.get("threads", 1))
    return [job.matrix.plan(build, name, mode, topology, threads) for name in job.matrix.workloads]


def cmd_run(args: argparse.Namespace, argv: list[str]) -> int:
    job = plan_job(args)
    rundir = results.RunDir(job.run_dir)
    remote = RemoteServer(job.target) if job.target else None
    if not rundir.meta_path.exists():
        generator_info = {
            "name": job.generator,
            "version": wrk_version() if job.generator == "wrk" else sys.version.split()[0],
            "cpus": job.client_cpus,
            "loop": "closed",
            "connections": job.matrix.connections or "2 x threads (min 4); 4 x threads for I/O workloads",
        }
        rundir.write_meta(
            results.RunMeta(
                run_id=job.run_dir.name,
                kind="http",
                created=results.now(),
                host=results.collect_host(),
                git=results.collect_git(),
                config={
                    "argv": [a for a in argv if a not in ("--resume",)],
                    "server_cpus": job.server_cpus,
                    "client_cpus": job.client_cpus,
                    "shared_cpus": job.shared_cpus,
                    "settings": asdict(job.settings),
                    "matrix": {
                        "builds": job.matrix.builds,
                        "workloads": job.matrix.workloads,
                        "combos": job.matrix.combos,
                        "threads": job.matrix.threads,
                        "sizes": job.matrix.sizes,
                    },
                    "target": job.target,
                },
                generator=generator_info,
            )
        )
    if remote is not None:
        plans = _remote_plans(job, remote)
        launcher: Any = remote
    elif job.server_python is not None:
        build = job.matrix.builds[0]
        rundir.add_build(envs.describe(build, job.server_python))
        plans = job.matrix.plans()
        launcher = Launcher({build: job.server_python}, job.server_cpus, job.run_dir.name)
    else:
        print(f"preparing builds {', '.join(job.matrix.builds)}", flush=True)
        described = envs.prepare(job.matrix.builds, log=lambda m: print(m, flush=True))
        for info in described.values():
            rundir.add_build(info)
        plans = job.matrix.plans()
        launcher = Launcher(
            {b: envs.env_python(b) for b in job.matrix.builds}, job.server_cpus, job.run_dir.name
        )
    todo = pending(plans, rundir.done())
    generator = SubprocessGenerator(job.generator, job.client_cpus)
    print(
        f"run {job.run_dir}: {len(todo)} of {len(plans)} cells to measure; server CPUs {job.server_cpus}, "
        f"client CPUs {job.client_cpus}, generator {job.generator}",
        flush=True,
    )
    failed = _sweep(todo, rundir, job, launcher, generator)
    rundir.update_meta(finished=results.now())
    print(f"done: {len(todo) - failed} cells measured, {failed} failed -> {job.run_dir}", flush=True)
    if not args.no_report:
        render_report(job.run_dir)
    return 0


def _sweep(
    todo: list[Plan], rundir: results.RunDir, job: Job, launcher: Any, generator: SubprocessGenerator
) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    per_cell = (
        2.0
        + job.settings.ceiling_s
        + job.settings.warmup_s
        + job.settings.repetitions * (job.settings.duration_s + 0.5)
    )
    failed = 0
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:.0f}/{task.total:.0f} s"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        transient=False,
    ) as progress:

        def say(line: str) -> None:  # plain text: a bracket in a label or an error is not markup
            progress.console.print(line, markup=False, highlight=False)

        task = progress.add_task("sweep", total=per_cell * len(todo))
        for index, plan in enumerate(todo, 1):
            where = f"{plan.mode}/{plan.topology} t={plan.threads}"
            label = f"[{index}/{len(todo)}] {plan.build} {plan.workload} {where}"
            progress.update(task, description=label)
            started = time.monotonic()
            cell = measure(plan, job.run_dir.name, launcher, generator, job.settings, log=say)
            if job.shared_cpus and cell.status == "ok":
                cell = cell.model_copy(update={"flags": [*cell.flags, "server-and-client-share-cpus"]})
            rundir.write_cell(cell)
            if cell.status == "ok":
                median = sorted(cell.samples)[len(cell.samples) // 2]
                say(f"{label}: {median:,.1f} req/s {' '.join(cell.flags)}")
            else:
                failed += 1
                say(f"{label}: FAILED {cell.error}")
            progress.update(task, advance=max(per_cell, time.monotonic() - started))
    return failed


def render_report(run_dir: Path) -> None:
    try:
        from bench.report import render_run
    except ImportError:  # the report group is not installed in this environment
        print("report: bench.report is not available here; run: nox -s report", flush=True)
        return
    for path in render_run(run_dir):
        print(f"report: {path}", flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    INTERRUPTS.install()  # SIGTERM stops a run the way Ctrl-C does: servers stopped, cells kept
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return cmd_run(args, argv)
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (envs.EnvError, provision.ProvisionError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second signal must not cut the clean-up short
            signal.signal(signum, signal.SIG_IGN)
        stop_all()
        print("\ninterrupted: the cells measured so far are kept; finish with --resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
