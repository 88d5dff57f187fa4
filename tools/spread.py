"""Where keep-alive connections land: the measurement behind docs/servers-and-topologies.md.

    python -m tools.spread --topology workers --threads 4 --connections 8 --trials 100

Starts ``ftscale serve`` with the given topology (and ``--worker-balance``) on a free loopback
port, then, per trial, opens C keep-alive connections, asks ``/info`` on each which serving
unit answers (the worker's pid, or the loop's index), closes them and pauses, as a client
pool reconnecting would. Prints one JSON object: how often each split occurred (units sorted
by their connection count, most first) and in how many trials some unit got none. A client
of the service, not part of it: it only reads ``/info``.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

from ftscale.server.sockets import free_port
from ftscale.vocab import TOPOLOGIES, Topology, WorkerBalance
from tools.service import service_process

START_TIMEOUT_S = 60
PAUSE_S = 0.05


def _info(conn: http.client.HTTPConnection) -> dict[str, Any]:
    conn.request("GET", "/info")
    response = conn.getresponse()
    return dict(json.loads(response.read()))


@contextlib.contextmanager
def serving(args: Sequence[str]) -> Iterator[int]:
    """``ftscale serve ARGS`` on a free port until the block ends (then SIGTERM); yields the port."""
    port = free_port()
    with service_process(args, port) as proc:
        try:
            yield port
        finally:
            proc.terminate()
            proc.wait(60)


def trial(port: int, connections: int) -> list[int]:
    """Connections per serving unit for one set of keep-alive connections, most first."""
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=30) for _ in range(connections)]
    try:
        units = []
        for conn in conns:
            info = _info(conn)
            units.append(info["loop_index"] if info["loop_index"] is not None else info["pid"])
    finally:
        for conn in conns:
            conn.close()
    return sorted(Counter(units).values(), reverse=True)


def measure(topology: Topology, balance: str, threads: int, connections: int, trials: int) -> dict[str, Any]:
    args = ["--topology", topology, "--threads", str(threads), "--mode", "executor"]
    choice = TOPOLOGIES[topology].balance_choice  # the topology takes --worker-balance
    if choice and balance != WorkerBalance.ACCEPTOR:  # the default
        args += ["--worker-balance", balance]
    splits: Counter[str] = Counter()
    idle = 0
    with serving(args) as port:
        for _ in range(trials):
            counts = trial(port, connections)
            counts += [0] * (threads - len(counts))
            splits["+".join(map(str, counts))] += 1
            idle += 0 in counts
            time.sleep(PAUSE_S)
    return {
        "topology": str(topology),
        "worker_balance": balance if choice else None,
        "units": threads,
        "connections": connections,
        "trials": trials,
        "splits": dict(splits.most_common()),
        "trials_with_an_idle_unit": idle,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.spread", description=__doc__.split("\n")[0])
    parser.add_argument("--topology", type=Topology, choices=list(Topology), default=Topology.WORKERS)
    parser.add_argument(
        "--worker-balance", type=WorkerBalance, choices=list(WorkerBalance), default=WorkerBalance.ACCEPTOR
    )
    parser.add_argument("--threads", type=int, default=4, help="serving units")
    parser.add_argument("--connections", type=int, default=8, help="keep-alive connections per trial")
    parser.add_argument("--trials", type=int, default=100)
    args = parser.parse_args(argv)
    result = measure(args.topology, args.worker_balance, args.threads, args.connections, args.trials)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
