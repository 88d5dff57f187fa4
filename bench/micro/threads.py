"""A persistent team of threads that run rounds of work together, released by a barrier.

The micro bench times *rounds*: in each round every thread of the team does its share of
workload calls, and the round ends when the last thread is done. The threads are created once,
outside the timed region, and wait on a barrier between rounds, so thread start-up is never
timed and all threads start a round together (the shape of CPython's ftscalingbench, with a
pool instead of fresh threads per measurement).

What is timed: from the first release to the end of the last round, read from one clock in
the calling thread. It includes the barrier hand-offs (tens of microseconds per round), which
is why a round should last milliseconds. What is not: creating and joining the threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

Clock = Callable[[], float]


class TeamError(RuntimeError):
    """A thread of the team raised; the message names the thread and the original error."""


def split_calls(total: int, threads: int) -> list[int]:
    """Share ``total`` calls between ``threads`` threads as evenly as integers allow.

    The first ``total % threads`` threads get one call more. Strong scaling keeps ``total``
    fixed as ``threads`` grows, so an uneven split is a real (and recorded) imbalance.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    if total < 0:
        raise ValueError(f"total calls must be >= 0, got {total}")
    base, extra = divmod(total, threads)
    return [base + (1 if i < extra else 0) for i in range(threads)]


class ThreadTeam:
    """``size`` threads; each round, thread ``i`` runs ``task(i)`` once.

    ``clock`` is read only in the calling thread, twice per :meth:`run`; tests pass a fake
    clock to check the arithmetic without timing anything.
    """

    def __init__(self, size: int, task: Callable[[int], object], clock: Clock | None = None) -> None:
        if size < 1:
            raise ValueError(f"a team needs at least one thread, got {size}")
        self.size = size
        self._task = task
        self._clock: Clock = clock if clock is not None else time.perf_counter
        # The calling thread is the extra party: it releases a round and waits for its end.
        self._start = threading.Barrier(size + 1)
        self._done = threading.Barrier(size + 1)
        self._stopping = False
        self._errors: list[tuple[int, BaseException]] = []
        self._threads = [
            threading.Thread(target=self._loop, args=(i,), name=f"ftscale-team-{i}", daemon=True)
            for i in range(size)
        ]
        for thread in self._threads:
            thread.start()

    def _loop(self, index: int) -> None:
        while True:
            try:
                self._start.wait()
            except threading.BrokenBarrierError:
                return
            if self._stopping:
                return
            try:
                self._task(index)
            except BaseException as exc:  # reported by run() in the calling thread
                self._errors.append((index, exc))
            try:
                self._done.wait()
            except threading.BrokenBarrierError:
                return

    def run(self, rounds: int) -> float:
        """Run ``rounds`` rounds back to back; return the elapsed clock time of all of them."""
        if rounds < 1:
            raise ValueError(f"rounds must be >= 1, got {rounds}")
        if self._stopping:
            raise RuntimeError("the team is closed")
        start, done = self._start, self._done
        t0 = self._clock()
        for _ in range(rounds):
            start.wait()
            done.wait()
        elapsed = self._clock() - t0
        if self._errors:
            index, exc = self._errors[0]
            self.close()
            raise TeamError(f"thread {index} of {self.size} failed: {exc!r}") from exc
        return elapsed

    def close(self) -> None:
        """Stop and join the threads; idempotent."""
        if self._stopping:
            return
        self._stopping = True
        try:
            self._start.wait(timeout=60)
        except threading.BrokenBarrierError:
            pass
        for thread in self._threads:
            thread.join(timeout=60)

    def __enter__(self) -> ThreadTeam:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
