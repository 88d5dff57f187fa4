"""What one load is (:class:`LoadSpec`), how its latencies are summed up, and its command line.

A :class:`LoadSpec` is the same for every generator; :func:`spec_argv` and :func:`spec_from_args`
carry it across to a generator process (``python -m ftscale.bench.http.loadgen``) and back.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from ftscale.bench import histogram
from ftscale.vocab import Arrival

PERCENTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p99.9": 99.9}


@dataclass(frozen=True)
class LoadSpec:
    """One load to apply: where, what, how hard, how long."""

    host: str
    port: int
    path: str
    method: str = "POST"
    body: bytes = b""
    connections: int = 4
    duration_s: float = 3.0
    rate: float | None = None  # requests/s for an open loop; None = closed loop
    timeout_s: float = 30.0
    stream: bool = False  # responses are server-sent event streams: time and count their events
    mix_file: str | None = None  # a resolved request mix (LoadMix JSON) sent instead of path/method/body
    sequence: int = 0  # which of a mix's seeded request sequences this process draws (one per process)
    health_path: str = "/health"  # where the /health probe goes (a user's app: under its reserved prefix)
    arrivals: str = str(Arrival.POISSON)  # open loop: when requests are due (ftscale.vocab.Arrival)
    seed: int = 0  # open loop: the seed of the schedule (one per load; each process derives its own)
    phase: float = 0.0  # open loop, uniform arrivals: the schedule's offset, as a share of the gap


def percentiles_ms(counts: dict[int, int]) -> dict[str, float | None]:
    """p50 ... p99.9 of a latency histogram, in milliseconds (None when it is empty)."""
    if not histogram.count(counts):
        return {k: None for k in PERCENTILES}
    return {k: round(histogram.percentile_ms(counts, q), 4) for k, q in PERCENTILES.items()}


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options a :class:`LoadSpec` is read from (:func:`spec_from_args`)."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/health")
    parser.add_argument("--method", default="POST")
    parser.add_argument("--body", default="")
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--duration", type=float, default=3.0)
    parser.add_argument("--rate", type=float, default=None)
    parser.add_argument("--arrivals", choices=[str(a) for a in Arrival], default=str(Arrival.POISSON))
    parser.add_argument("--seed", type=int, default=0, help="open loop: the seed of the arrival schedule")
    parser.add_argument("--phase", type=float, default=0.0, help="uniform arrivals: offset, share of a gap")
    parser.add_argument("--stream", action="store_true", help="responses are event streams: time them")
    parser.add_argument("--mix", default=None, help="a resolved request mix (LoadMix JSON) to send instead")
    parser.add_argument("--sequence", type=int, default=0, help="which seeded sequence of the mix to draw")


def spec_from_args(args: argparse.Namespace) -> LoadSpec:
    """The load that :func:`add_spec_arguments`' options describe."""
    return LoadSpec(
        host=args.host,
        port=args.port,
        path=args.path,
        method=args.method,
        body=args.body.encode(),
        connections=args.connections,
        duration_s=args.duration,
        rate=args.rate,
        arrivals=args.arrivals,
        seed=args.seed,
        phase=args.phase,
        mix_file=args.mix,
        sequence=args.sequence,
        stream=args.stream,
    )


def spec_argv(spec: LoadSpec) -> list[str]:
    """``spec`` as :func:`add_spec_arguments`' options (its timeout and health path stay the defaults)."""
    argv = ["--host", spec.host, "--port", str(spec.port), "--path", spec.path, "--method", spec.method]
    argv += ["--body", spec.body.decode(), "--connections", str(spec.connections)]
    argv += ["--duration", str(spec.duration_s)]
    if spec.rate:
        argv += ["--rate", str(spec.rate), "--arrivals", spec.arrivals, "--seed", str(spec.seed)]
        argv += ["--phase", str(spec.phase)] if spec.phase else []
    if spec.mix_file:
        argv += ["--mix", spec.mix_file, "--sequence", str(spec.sequence)]
    if spec.stream:
        argv.append("--stream")
    return argv
