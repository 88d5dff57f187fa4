"""Purpose-built cases for the profile bucket table: each puts one mechanism to work.

``python profile_cases.py CASE THREADS SECONDS`` runs CASE on THREADS threads for about SECONDS
and prints the iterations done, as JSON. Standard library only: it runs on a bare build.
``tests/test_profile_buckets.py`` records each under perf and checks that the bucket of its
mechanism is the largest, or the one that grows most with threads.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
import time
from collections.abc import Callable


class Box:
    x = 0


SHARED_BOX = Box()
SHARED_ITEMS = [object() for _ in range(64)]  # owned by the main thread: others pay shared refcounts
SHARED_LOCK = threading.Lock()


def shared_attr(deadline: float) -> int:
    """Every thread writes one attribute of one object: its per-object lock is contended."""
    box, n = SHARED_BOX, 0
    while time.perf_counter() < deadline:
        for _ in range(1000):
            box.x += 1
        n += 1000
    return n


def private_attr(deadline: float) -> int:
    """The same on an object of the thread's own: no contention (the control for shared_attr)."""
    box, n = Box(), 0
    while time.perf_counter() < deadline:
        for _ in range(1000):
            box.x += 1
        n += 1000
    return n


def shared_items(deadline: float) -> int:
    """Every thread reads the items of a list the main thread made: shared reference counts."""
    items, n = SHARED_ITEMS, 0
    while time.perf_counter() < deadline:
        for _ in range(20):
            for i in range(64):
                v = items[i]  # noqa: F841 - the read is the work
        n += 1280
    return n


def one_lock(deadline: float) -> int:
    """Every thread takes one shared threading.Lock."""
    lock, n = SHARED_LOCK, 0
    while time.perf_counter() < deadline:
        for _ in range(1000):
            with lock:
                n += 1
    return n


def cycles(deadline: float) -> int:
    """Reference cycles: the cyclic garbage collector runs all the time."""

    class Node:
        __slots__ = ("a", "b")

    n = 0
    while time.perf_counter() < deadline:
        for _ in range(1000):
            x, y = Node(), Node()
            x.a, y.a = y, x
            x.b, y.b = [x, y], {"x": x}
        n += 1000
    return n


def syscalls(deadline: float) -> int:
    """System calls with little Python around them: the kernel does the work."""
    fd, n = os.open("/dev/zero", os.O_RDONLY), 0
    try:
        while time.perf_counter() < deadline:
            for _ in range(100):
                os.pread(fd, 65536, 0)
            n += 100
    finally:
        os.close(fd)
    return n


def pure(deadline: float) -> int:
    """Arithmetic in a Python loop: the interpreter only (on a GIL build, threads take turns)."""
    n = 0
    while time.perf_counter() < deadline:
        total = 0
        for i in range(1000):
            total += i * i
        n += 1000
    return n


def event_loop(deadline: float) -> int:
    """An asyncio echo server and its clients on one loop: event-loop and stream machinery."""

    async def main() -> int:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while line := await reader.readline():
                writer.write(line)
                await writer.drain()
            writer.close()

        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]

        async def client() -> int:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            done = 0
            while time.perf_counter() < deadline:
                writer.write(b"GET / HTTP/1.1\r\n")
                await writer.drain()
                await reader.readline()
                done += 1
            writer.close()
            return done

        counts = await asyncio.gather(*(client() for _ in range(4)))
        server.close()
        return sum(counts)

    return asyncio.run(main())


CASES: dict[str, Callable[[float], int]] = {
    f.__name__.replace("_", "-"): f
    for f in (shared_attr, private_attr, shared_items, one_lock, cycles, syscalls, pure, event_loop)
}


def main(argv: list[str]) -> int:
    case, threads, seconds = CASES[argv[0]], int(argv[1]), float(argv[2])
    counts = [0] * threads
    start = threading.Barrier(threads + 1)

    def run(index: int) -> None:
        start.wait()
        counts[index] = case(time.perf_counter() + seconds)

    team = [threading.Thread(target=run, args=(i,), name=f"case-{i}") for i in range(threads)]
    for thread in team:
        thread.start()
    start.wait()
    for thread in team:
        thread.join()
    print(json.dumps({"iterations": sum(counts)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
