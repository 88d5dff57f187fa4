"""wrk as a load generator: closed loop only, its Lua hook (``wrk_report.lua``) printing a JSON
summary; its threads' scheduler times read while it runs.

wrk's Lua hook sees only whole responses: for a streamed load it counts the events but cannot time
the first byte or the gaps between them, so the bench prefers the built-in generator for streams.
A request mix is cycled through by the hook (:func:`ftscale.bench.http.mix.lua_table`).
"""

from __future__ import annotations

import json
import math
import os
import resource
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ftscale.bench import histogram
from ftscale.bench.http import mix as mixes
from ftscale.bench.http.loadgen.spec import PERCENTILES, LoadSpec
from ftscale.schema import LoadResult
from ftscale.vocab import Generator

WRK_SAMPLE_S = 0.2  # how often wrk's threads' busy times are read
WRK_SCRIPT = Path(__file__).parents[1] / "wrk_report.lua"  # in bench/http/, the package data there


def wrk_path() -> str | None:
    return shutil.which("wrk")


def wrk_version() -> str | None:
    exe = wrk_path()
    if exe is None:
        return None
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, check=False)
    return (out.stdout or out.stderr).splitlines()[0].strip() if (out.stdout or out.stderr) else "wrk"


def _task_schedstat(pid: int) -> dict[int, float]:
    """Seconds each thread of ``pid`` has been running or waiting for a CPU, where Linux tells."""
    found: dict[int, float] = {}
    for path in Path(f"/proc/{pid}/task").glob("*/schedstat"):
        try:
            on_cpu, waiting, _ = path.read_text().split()
        except (OSError, ValueError):
            continue
        found[int(path.parent.name)] = (int(on_cpu) + int(waiting)) / 1e9
    return found


def _wrk_process(
    cmd: list[str], env: dict[str, str], spec: LoadSpec, cpus: Sequence[int] = ()
) -> tuple[str, str, int, float, dict[int, tuple[float, float]], float]:
    """Run wrk; (stdout, stderr, exit status, its CPU seconds, its threads' busy times, start).

    wrk takes its duration in whole seconds: it is given more, and stopped with SIGINT (on which
    it stops its threads and reports what it measured, with the time it really ran) when
    ``spec.duration_s`` has passed.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    seen: dict[int, tuple[float, float]] = {}  # thread -> (its busy seconds, when read)
    pin = (lambda: os.sched_setaffinity(0, set(cpus))) if cpus else None
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=pin
    ) as proc:
        stop_at = started + spec.duration_s

        def sample() -> None:  # beside communicate(): wrk's output can be larger than a pipe holds
            interrupted = False
            while proc.poll() is None:
                now = time.monotonic()
                for tid, busy_s in _task_schedstat(proc.pid).items():
                    seen[tid] = (busy_s, now)  # a thread that has ended keeps its last reading
                if not interrupted and now >= stop_at:
                    proc.send_signal(signal.SIGINT)
                    interrupted = True
                until_stop = stop_at - time.monotonic()
                time.sleep(min(WRK_SAMPLE_S, until_stop) if until_stop > 0 else 0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            out, err = proc.communicate(timeout=spec.duration_s + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        sampler.join()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return out, err, proc.returncode, cpu, seen, started


def wrk_seconds(duration_s: float) -> int:
    """The whole seconds wrk is told to run for a load of ``duration_s``: more than that, since it
    is stopped with SIGINT at ``duration_s`` (:func:`_wrk_process`)."""
    return math.ceil(duration_s) + 1


def run_wrk(spec: LoadSpec, threads: int = 1, cpus: Sequence[int] = ()) -> LoadResult:
    """Apply ``spec`` with wrk (closed loop); its Lua hook prints a JSON summary.

    While wrk runs, each of its threads' scheduler times are read every 0.2 s, so the busiest
    thread's share of the wall time is known: a wrk thread that is always running or waiting for
    a CPU, not for the server, sets the pace itself. With ``cpus``, wrk is pinned to them from
    its start (its threads inherit it).
    """
    exe = wrk_path()
    if exe is None:
        raise RuntimeError("wrk is not installed")
    if spec.rate:
        raise ValueError("wrk runs closed-loop only; use the python generator for an open loop")
    url = f"http://{spec.host}:{spec.port}{spec.path}"
    n_threads = max(1, min(threads, spec.connections))
    cmd = [
        exe,
        f"-t{n_threads}",
        f"-c{spec.connections}",
        f"-d{wrk_seconds(spec.duration_s)}s",
        f"--timeout={round(spec.timeout_s)}s",
        "-s",
        str(WRK_SCRIPT),
        url,
    ]
    env = {
        **os.environ,
        "FTSCALE_METHOD": spec.method,
        "FTSCALE_BODY": spec.body.decode(),
        "FTSCALE_STREAM": "1" if spec.stream else "",
    }
    expected: set[str] | None = None
    with tempfile.TemporaryDirectory(prefix="ftscale-wrk-") as scratch:
        if spec.mix_file:  # the hook cycles through the mix, read from a Lua table
            load_mix = mixes.read_load_mix(spec.mix_file)
            expected = mixes.expected_statuses(load_mix)
            lua = Path(scratch) / "mix.lua"
            lua.write_text(mixes.lua_table(load_mix))
            env["FTSCALE_MIX"] = str(lua)
        out, err, returncode, cpu, seen, started = _wrk_process(cmd, env, spec, cpus)
    line = next((ln for ln in out.splitlines() if ln.startswith("FTSCALE_JSON ")), None)
    if returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed (exit {returncode}): {(err or out).strip()[-400:]}")
    data = json.loads(line.removeprefix("FTSCALE_JSON "))
    duration = data["duration_us"] / 1e6
    statuses: dict[str, int] = {str(k): int(v) for k, v in data["statuses"].items()}
    errors = mixes.statuses_to_errors(statuses, expected)
    ok = sum(n for s, n in statuses.items() if s not in errors)
    for kind in ("connect", "read", "write", "timeout"):
        if data["socket_errors"].get(kind):
            errors[f"socket-{kind}"] = int(data["socket_errors"][kind])
    busy = [100 * s / (at - started) for s, at in seen.values() if at - started > 0.5]
    counts = histogram.from_value_counts((int(v), int(c)) for v, c in data["latency_counts"])
    streamed: dict[str, Any] = {}
    if spec.stream:  # events counted in the whole bodies; no first byte, no gaps
        chunks = int(data.get("chunks", 0))
        streamed = {"chunks": chunks, "chunks_per_s": chunks / duration if duration > 0 else 0.0}
    return LoadResult(
        generator=str(Generator.WRK),
        requests=ok,
        duration_s=round(duration, 4),
        throughput_rps=ok / duration if duration > 0 else 0.0,
        latency_ms={k: round(float(data["latency_us"][k]) / 1e3, 4) for k in PERCENTILES},
        errors=errors,
        generator_cpu_pct=round(100 * cpu / duration, 1) if duration > 0 else 0.0,
        generator_cpus=n_threads,
        generator_busy_pct=round(sum(busy), 1) if busy else None,
        generator_busy_max_pct=round(max(busy), 1) if busy else None,
        generator_threads=n_threads,
        latency_histogram=counts,
        **streamed,
    )
