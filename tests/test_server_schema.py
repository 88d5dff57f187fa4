"""Schemathesis against the live service: every operation of its OpenAPI document, valid and
invalid inputs, every check (no 5xx, only documented statuses and headers, bodies that match
their schemas, invalid input refused, valid input accepted).

It computes many requests at the workloads' largest sizes, so it takes minutes: it is not part
of the default run (``-m "not schemathesis"`` in pyproject.toml); ``nox -s schema`` runs it, on
this interpreter and on 3.14t. Schemathesis runs as a separate process, a client of the
service, so none of its extension modules loads into the test process (or the server).
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
from collections.abc import Iterator

import pytest
from serving import Served, start, stop_cleanly

pytestmark = [
    pytest.mark.slow,
    pytest.mark.schemathesis,
    pytest.mark.skipif(
        importlib.util.find_spec("schemathesis") is None,
        reason="schemathesis is not installed (it is in the 'test' dependency group)",
    ),
]

EXAMPLES = 25  # per operation and phase
SEED = 20261126  # the same cases every run
# One call at a workload's largest size costs about 2 s of CPU; on a busy shared machine its wall
# time is a multiple of that. The check is for a service that hangs, not for its speed.
MAX_RESPONSE_S = 120


@pytest.fixture
def served() -> Iterator[Served]:
    with contextlib.ExitStack() as cleanup:
        yield start(cleanup, "--mode", "threadpool", "--threads", "2")


def test_schemathesis_finds_nothing(served: Served, tmp_path: object) -> None:
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"http://127.0.0.1:{served.port}/openapi.json",
        "--checks",
        "all",
        "--mode",
        "all",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        str(SEED),
        "--generation-database",
        "none",
        "--max-response-time",
        str(MAX_RESPONSE_S),
        "--request-timeout",
        str(MAX_RESPONSE_S + 30),
    ]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1800, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout.split("SUMMARY")[-1]
    stop_cleanly(served)
