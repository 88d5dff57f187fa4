"""``python -m ftscale.bench.http.loadgen``: one load (or a /health probe) in this process, its
result printed as JSON; the orchestrator pins the process to the client CPUs.

Its generators are the vocabulary's (:data:`ftscale.vocab.GENERATORS`), each applied by its entry
in :data:`ftscale.bench.http.loadgen.RUNNERS`.
"""

from __future__ import annotations

import argparse
import sys

from ftscale.bench.http.loadgen import RUNNERS, probe_health
from ftscale.bench.http.loadgen.spec import add_spec_arguments, spec_from_args
from ftscale.vocab import Generator

HEALTH = "health"  # the /health probe instead of a load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ftscale.bench.http.loadgen", description="Apply one HTTP load."
    )
    parser.add_argument("what", choices=[*(str(g) for g in Generator), HEALTH])
    add_spec_arguments(parser)
    parser.add_argument("--threads", type=int, default=1, help="the generator's threads, where it has them")
    parser.add_argument("--interval", type=float, default=0.05, help="health probe interval (s)")
    args = parser.parse_args(argv)
    if args.what == HEALTH:
        probe = probe_health(args.host, args.port, args.duration, args.interval, args.path)
        print(probe.model_dump_json())
        return 0
    result = RUNNERS[Generator(args.what)].here(spec_from_args(args), args.threads)
    print(result.model_dump_json())
    return 0


if __name__ == "__main__":
    sys.exit(main())
