"""Write the synthetic run directories the report tests read: ``report-micro/`` and ``report-http/``.

Synthetic fixtures, not measurements: every throughput follows a known formula (Amdahl, USL,
linear, flat), so the expected speedups, fits and overheads are analytic. Each cell's repetitions
are the formula's value times (0.99, 1.00, 1.01) unless a test needs otherwise; with three
samples the median is the formula's value and every bootstrap interval of a ratio of medians is
exactly ``[r * 0.99/1.01, r * 1.01/0.99]`` (each bound has more than 2.5% of the mass).

Regenerate after a schema change with ``python tests/data/make_report_fixtures.py``;
``tests/test_report_fixtures.py`` fails while the checked-in files differ from this script's output.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

from ftscale import schema
from ftscale.bench import histogram, results
from ftscale.schema.files import nest_flat_loads
from ftscale.vocab import Flag

HERE = Path(__file__).resolve().parent
NOTE = "synthetic test fixture, not a measurement"
SPREAD = (0.99, 1.0, 1.01)
CREATED = "2026-11-01T10:00:00+00:00"
FINISHED = "2026-11-01T11:00:00+00:00"
MIB = 2**20
Law = Callable[[float], float]
Scaling = Literal["strong", "weak"]


def amdahl(lam: float, s: float) -> Law:
    return lambda n: lam * n / (1 + s * (n - 1))


def usl(lam: float, sigma: float, kappa: float) -> Law:
    return lambda n: lam * n / (1 + sigma * (n - 1) + kappa * n * (n - 1))


def linear(lam: float) -> Law:
    return lambda n: lam * n


def flat(x: float) -> Law:
    return lambda n: x


def _host() -> schema.Host:
    return schema.Host(
        hostname="synthetic-host",
        platform="Linux-6.1-x86_64-with-glibc2.36",
        machine="x86_64",
        cpu_model="Synthetic CPU @ 3.0GHz",
        logical_cores=16,
        affinity=list(range(16)),
        memory_bytes=64 * 2**30,
    )


def _builds() -> dict[str, schema.Build]:
    packages = {"numpy": "2.3.4", "pydantic": "2.12.3"}
    return {
        "3.14": schema.Build(
            build="3.14",
            version="3.14.0",
            executable="/opt/python/3.14/bin/python3.14",
            py_gil_disabled=False,
            gil_enabled=True,
            config_args="--enable-optimizations --with-lto",
            compiler="GCC 12.2.0",
            packages=packages,
        ),
        "3.14t": schema.Build(
            build="3.14t",
            version="3.14.0",
            executable="/opt/python/3.14t/bin/python3.14t",
            py_gil_disabled=True,
            gil_enabled=False,
            config_args="--disable-gil --enable-optimizations --with-lto",
            compiler="GCC 12.2.0",
            packages=packages,
        ),
    }


def _meta(run_id: str, kind: str, config: dict[str, Any], generator: dict[str, Any] | None) -> schema.RunMeta:
    return schema.RunMeta(
        run_id=run_id,
        kind=kind,
        created=CREATED,
        finished=FINISHED,
        host=_host(),
        git=schema.Git(commit="0123456789abcdef0123456789abcdef01234567", dirty=False),
        config=config,
        builds=_builds(),
        generator=generator,
        notes=[NOTE],
    )


def _samples(value: float, spread: tuple[float, ...]) -> list[float]:
    return [round(value * f, 4) for f in spread]


def _cell(
    run_id: str,
    kind: str,
    build: str,
    workload: str,
    wclass: str,
    size: int,
    threads: int,
    samples: list[float],
    *,
    mode: str | None = None,
    topology: str | None = None,
    scaling: Scaling | None = None,
    repetitions: list[dict[str, Any]] | None = None,
    flags: list[str] | None = None,
    gil_enabled: bool | None = None,
    **extra: Any,
) -> results.AnyCell:
    unit = extra.pop("unit", "calls/s" if kind == "micro" else "req/s")
    share = extra.get("offered_share")
    suffix = None
    if extra.get("load") == "open":
        suffix = "slo" if "slo" in extra else f"open{round(share * 100):03d}"
    return schema.CELL.validate_python(
        dict(
            run_id=run_id,
            cell_id=results.cell_id(build, workload, threads, mode, topology, scaling, extra=suffix),
            kind=kind,
            build=build,
            workload=workload,
            workload_class=wclass,
            size=size,
            threads=threads,
            mode=mode,
            topology=topology,
            scaling=scaling,
            status="ok",
            unit=unit,
            samples=samples,
            # written flat as formats 1 to 4 had them, nested under "load" as the reader does
            repetitions=nest_flat_loads(repetitions or []) if kind == "http" else repetitions or [],
            flags=flags or [],
            gil_enabled=(build == "3.14") if gil_enabled is None else gil_enabled,
            started=CREATED,
            finished=FINISHED,
            **extra,
        )
    )


def micro_run() -> tuple[schema.RunMeta, list[results.AnyCell]]:
    run_id = "synthetic-micro"
    threads = (1, 2, 4, 8, 16)
    config = {"threads": list(threads), "repetitions": 3, "scaling": ["strong", "weak"]}
    cells = []
    series: list[tuple[str, str, str, int, Scaling, Law, tuple[int, ...]]] = [
        # (build, workload, class, size, scaling, law, thread counts)
        ("3.14t", "loop", "pure-python", 1000, "strong", amdahl(1000, 0.1), threads),
        ("3.14", "loop", "pure-python", 1000, "strong", flat(1250), threads),
        ("3.14t", "loop", "pure-python", 1000, "weak", linear(1000), (1, 2, 4)),
        ("3.14t", "crc", "c-releases-gil", 1000, "strong", linear(2000), threads),
        ("3.14", "crc", "c-releases-gil", 1000, "strong", linear(2200), threads),
        ("3.14t", "dictstorm", "contention", 100, "strong", usl(500, 0.05, 0.02), threads),
        ("3.14", "dictstorm", "contention", 100, "strong", flat(600), threads),
    ]
    for build, workload, wclass, size, scaling, law, counts in series:
        for n in counts:
            spread: tuple[float, ...] = SPREAD
            gil: bool | None = None
            if (build, workload, scaling, n) == ("3.14t", "loop", "strong", 16):
                spread = (0.9, 1.0, 1.1)  # CV 10%: flagged
            if (build, workload, n) == ("3.14", "dictstorm", 1):
                spread = (1.0,)  # one repetition: no interval
            if (build, workload, n) == ("3.14t", "crc", 8):
                gil = True  # the GIL came back on: flagged
            cells.append(
                _cell(
                    run_id,
                    "micro",
                    build,
                    workload,
                    wclass,
                    size,
                    n,
                    _samples(law(n), spread),
                    scaling=scaling,
                    gil_enabled=gil,
                )
            )
    failed = schema.MicroCell(
        run_id=run_id,
        cell_id=results.cell_id("3.14t", "crc", 32, scaling="strong"),
        kind="micro",
        build="3.14t",
        workload="crc",
        workload_class="c-releases-gil",
        size=1000,
        threads=32,
        scaling="strong",
        status="failed",
        error="worker exited with status -9",
        stderr_tail="Traceback (most recent call last):\nMemoryError",
        unit="calls/s",
        started=CREATED,
        finished=FINISHED,
    )
    cells.append(failed)
    return _meta(run_id, "micro", config, None), cells


CONNECTIONS = 64


def _histogram(p50_ms: float, requests: int) -> dict[int, int]:
    """A latency histogram around ``p50_ms``: 40 % at 0.5-1x, 40 % at 1-1.5x, the rest out to 3x."""
    shape = ((0.6, 0.1), (0.9, 0.3), (1.1, 0.3), (1.4, 0.2), (1.9, 0.08), (2.9, 0.02))
    return histogram.from_value_counts((round(p50_ms * 1000 * f), round(requests * w)) for f, w in shape)


def _repetition(
    rps: float,
    threads: int,
    rss: float,
    pss: float | None,
    errors: dict[str, int],
    units: dict[str, int] | None = None,
    p50_ms: float | None = None,
    offered: float | None = None,
) -> dict[str, Any]:
    p50 = p50_ms or CONNECTIONS / rps * 1000  # Little's law for a closed loop of 64 connections
    requests = round(rps * 10)
    return {
        "latency_histogram": _histogram(p50, requests),
        "units": units,
        "peak_rss_bytes": round(rss * 1.2),
        "offered_rps": offered,
        "throughput_rps": rps,
        "latency_ms": {
            "p50": round(p50, 4),
            "p90": round(1.5 * p50, 4),
            "p99": round(2 * p50, 4),
            "p99.9": round(3 * p50, 4),
        },
        "errors": errors,
        "server_cpu_pct": 95.0 * threads,
        "rss_bytes": round(rss),
        "pss_bytes": None if pss is None else round(pss),
        "health_latency_ms": {"p50": 1.0, "p99": 5.0 * threads, "samples": 200},
        "server_processes": 1,
        "generator_cpu_pct": 40.0,
        "generator_busy_pct": 30.0,
        "ceiling_rps": 50000.0,
        "requests": requests,
        "duration_s": 10.0,
    }


CHUNKS = 32  # chunks per stream of the synthetic streaming workload


def _two_values(common_ms: float, tail_ms: float, n: int) -> dict[int, int]:
    """A histogram with 90 % of ``n`` at ``common_ms`` and 10 % at ``tail_ms``: p50 and p99 are those."""
    return histogram.from_value_counts(
        [(round(common_ms * 1000), n - n // 10), (round(tail_ms * 1000), n // 10)]
    )


def _stream_repetition(
    chunks_per_s: float, threads: int, rss: float, ttfb_p99: float, gap_p99: float
) -> dict[str, Any]:
    """A streaming repetition: ``CHUNKS`` chunks a stream, first byte at 12 ms and gaps at 10.5 ms (p50)."""
    streams_per_s = chunks_per_s / CHUNKS
    rep = _repetition(streams_per_s, threads, rss, 0.6 * rss, {}, None, p50_ms=CHUNKS * 10.5)
    streams = rep["requests"]
    return {
        **rep,
        "chunks": streams * CHUNKS,
        "chunks_per_s": chunks_per_s,
        "ttfb_ms": {"p50": 12.0, "p90": 12.0, "p99": ttfb_p99, "p99.9": ttfb_p99},
        "ttfb_histogram": _two_values(12.0, ttfb_p99, streams),
        "gap_histogram": _two_values(10.5, gap_p99, streams * (CHUNKS - 1)),
        "gap_p99_ms": gap_p99,
        "generator": "python",
    }


def data_layer_and_stream_cells(run_id: str, threads: tuple[int, ...]) -> list[results.AnyCell]:
    """``pages`` (a synchronous data layer) and ``tokens`` (a stream), on the designs ``loop`` has.

    pages: 3.14 inline/workers linear 300·N req/s, 3.14t threadpool/single Amdahl λ = 380, s = 0.02.
    tokens (chunks/s): 3.14 inline/workers linear 1500·N, 3.14t threadpool/single Amdahl λ = 1400,
    s = 0.1; p99 first byte 12 + 2N ms (3.14) and 14 + 3N ms (3.14t); p99 gap 11 + N ms and 12 + 2N ms.
    """
    cells: list[results.AnyCell] = []
    pages: list[tuple[str, str, str, Law, float]] = [
        ("3.14", "inline", "workers", linear(300), 0.6),
        ("3.14t", "threadpool", "single", amdahl(380, 0.02), 1.0),
    ]
    for build, mode, topology, law, pss_share in pages:
        for n in threads:
            rss = (80 * n if topology == "workers" else 90) * MIB
            samples = _samples(law(n), SPREAD)
            reps = [_repetition(x, n, rss, pss_share * rss, {}) for x in samples]
            cells.append(
                _cell(run_id, "http", build, "pages", "blocking-io", 100, n, samples, mode=mode,
                      topology=topology, repetitions=reps)
            )  # fmt: skip
    tokens: list[tuple[str, str, str, Law, Law, Law]] = [
        ("3.14", "inline", "workers", linear(1500), lambda n: 12 + 2 * n, lambda n: 11 + n),
        ("3.14t", "threadpool", "single", amdahl(1400, 0.1), lambda n: 14 + 3 * n, lambda n: 12 + 2 * n),
    ]
    for build, mode, topology, law, ttfb, gap in tokens:
        for n in threads:
            rss = (60 * n if topology == "workers" else 70) * MIB
            samples = _samples(law(n), SPREAD)
            reps = [_stream_repetition(x, n, rss, ttfb(n), gap(n)) for x in samples]
            cells.append(
                _cell(run_id, "http", build, "tokens", "streaming", CHUNKS, n, samples, mode=mode,
                      topology=topology, repetitions=reps, unit="chunks/s")
            )  # fmt: skip
    return cells


def http_run() -> tuple[schema.RunMeta, list[results.AnyCell]]:
    run_id = "synthetic-http"
    threads = (1, 2, 4, 8)
    config = {
        "threads": list(threads),
        "repetitions": 3,
        "duration_s": 10,
        "connections": CONNECTIONS,
        "preset": "synthetic",
        "server_cpus": list(range(4, 16)),
        "client_cpus": [0, 1, 2, 3],
        "shared_cpus": False,
    }
    generator = {"name": "wrk", "version": "4.2.0", "connections": CONNECTIONS, "duration_s": 10}
    series: list[tuple[str, str, str, Law, Law, float | None]] = [
        # (build, mode, topology, law, RSS in MiB as a function of N, PSS share or None)
        ("3.14", "threadpool", "single", flat(900), lambda n: 60, None),
        ("3.14t", "threadpool", "single", amdahl(800, 0.2), lambda n: 70, None),
        ("3.14", "inline", "workers", linear(850), lambda n: 60 * n, 0.6),
        ("3.14t", "inline", "workers", linear(700), lambda n: 70 * n, 0.6),
        ("3.14t", "inline", "loops", linear(900), lambda n: 75 + 5 * n, None),
    ]
    cells = []
    for build, mode, topology, law, rss_mib, pss_share in series:
        for n in threads:
            rss = rss_mib(n) * MIB
            pss = None if pss_share is None else pss_share * rss
            samples = _samples(law(n), SPREAD)
            flags: list[str] = []
            errors: list[dict[str, int]] = [{}, {}, {}]
            if (build, topology, n) == ("3.14t", "workers", 8):
                flags.append(str(Flag.GENERATOR_SATURATED))
            if (build, mode, n) == ("3.14t", "threadpool", 8):
                errors[1] = {"503": 12}  # no flag in the file: the report derives it
            units = None
            if topology != "single":
                # even shares, except 3.14 workers at 4, where one worker sat idle (flagged by the bench)
                share = (
                    [0.5, 0.5, 0.0, 0.0] if (build, topology, n) == ("3.14", "workers", 4) else [1 / n] * n
                )
                units = {f"unit {i}": round(10 * law(n) * s) for i, s in enumerate(share)}
                if max(share) > 1.5 / n:
                    flags.append(str(Flag.UNBALANCED))
            reps = [_repetition(s, n, rss, pss, e, units) for s, e in zip(samples, errors, strict=True)]
            cells.append(
                _cell(
                    run_id,
                    "http",
                    build,
                    "loop",
                    "pure-python",
                    1000,
                    n,
                    samples,
                    mode=mode,
                    topology=topology,
                    repetitions=reps,
                    flags=flags,
                )
            )
    for build, topology, law, mib in (
        ("3.14t", "loops", linear(900), 115),
        ("3.14", "workers", linear(850), 480),
    ):
        peak = law(8)
        for share, p50 in ((0.5, 3.0), (0.9, 9.0)):
            offered = share * peak
            reps = [
                _repetition(offered * f, 8, mib * MIB, 0.6 * mib * MIB, {}, None, p50 * f, offered)
                for f in SPREAD
            ]
            rates = [r["throughput_rps"] for r in reps]
            cell = _cell(run_id, "http", build, "loop", "pure-python", 1000, 8, rates, mode="inline",
                         topology=topology, repetitions=reps, load="open", offered_share=share,
                         offered_rps=offered)  # fmt: skip
            cells.append(cell)
        # The latency-target search, repeated steps of 5 loads of 2 s: 3.14t on two loops passes 50 %
        # and 70 % of its peak, fails 85 % (its generator lagging there), then passes 77.5 % and fails
        # 81.25 %; 3.14 in workers passes every rate up to its peak: a censored capacity.
        shares = (
            ((0.5, 4.0), (0.7, 6.0), (0.85, 14.0), (0.775, 8.0), (0.8125, 12.0))
            if topology == "loops"
            else ((0.5, 3.0), (0.7, 4.0), (0.85, 5.0), (1.0, 7.0))
        )
        steps = []
        for share, p99 in shares:
            rate, passed = share * peak, p99 < 10.0
            steps.append(
                {
                    "offered_rps": rate,
                    "achieved_rps": rate if passed else 0.98 * rate,
                    "p99_ms": p99,
                    "errors": 0,
                    "met": passed,
                    "loads": 5,
                    "duration_s": 2.0,
                    "due": round(10 * rate),
                    "completed": round(10 * rate * (1 if passed else 0.98)),
                    "samples": round(10 * rate),
                    "p50_ms": p99 / 3,
                    "p99_upper_ms": round(1.05 * p99, 4),
                    "coverage": 0.9512,
                    "send_lag_p99_ms": 0.6 if share != 0.85 or passed else 0.9,
                    "failures": [] if passed else ["p99-over-target"],
                    "flags": [str(Flag.SEND_LAG)] if (topology, share) == ("loops", 0.85) else [],
                }
            )
        met = [st["offered_rps"] for st in steps if st["met"]]
        failed_at = [st["offered_rps"] for st in steps if not st["met"]]
        capacity = max(met)
        reps = [
            _repetition(capacity * f, 8, mib * MIB, 0.6 * mib * MIB, {}, None, 2.5, capacity)
            for f in (0.99, 1.0, 1.0, 1.0, 1.01)
        ]
        cells.append(
            _cell(
                run_id,
                "http",
                build,
                "loop",
                "pure-python",
                1000,
                8,
                [r["throughput_rps"] for r in reps],
                mode="inline",
                topology=topology,
                repetitions=reps,
                load="open",
                offered_rps=capacity,
                flags=[str(Flag.SEND_LAG)] if topology == "loops" else [],
                slo={
                    "target_p99_ms": 10.0,
                    "steps": steps,
                    "capacity_rps": capacity,
                    "method": "repeated-steps",
                    "cap_rps": peak,
                    "failing_rps": min(failed_at) if failed_at else None,
                    "censored": not failed_at,
                    "level": 0.95,
                },
            )
        )
    cells += data_layer_and_stream_cells(run_id, threads)
    failed = schema.HttpCell(
        run_id=run_id,
        cell_id=results.cell_id("3.14t", "loop", 1, "process", "single"),
        kind="http",
        build="3.14t",
        workload="loop",
        workload_class="pure-python",
        size=1000,
        threads=1,
        mode="process",
        topology="single",
        status="failed",
        error="health: server did not become ready within 30 s",
        stderr_tail="INFO:     Started server process [4242]\nRuntimeError: cannot fork",
        unit="req/s",
        started=CREATED,
        finished=FINISHED,
    )
    cells.append(failed)
    return _meta(run_id, "http", config, generator), cells


def write_fixtures(root: Path = HERE) -> list[Path]:
    """(Re)write ``report-micro/`` and ``report-http/`` under ``root``; return the run directories."""
    written = []
    for name, (meta, cells) in (("report-micro", micro_run()), ("report-http", http_run())):
        path = root / name
        if path.exists():
            shutil.rmtree(path)
        run_dir = results.RunDir(path)
        run_dir.write_meta(meta)
        for cell in cells:
            run_dir.write_cell(cell)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_fixtures():
        print(path)
