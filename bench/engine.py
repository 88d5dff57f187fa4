"""The one run engine of both benches: run directories, resume, budgets, signals, progress, exit codes.

A bench (``ftscale micro``, ``ftscale bench``) validates its arguments into a list of *steps*
(:class:`Step`: a cell, or a group of cells measured together), prepares its interpreters, and
hands the steps to :func:`sweep` with a function that measures one step into its cells. The
engine does everything else, the same way for both:

- **Run directories.** A new run gets ``<results>/<run-id>/``; ``--resume RUN_ID`` re-reads the
  run's own saved arguments (with this invocation's run options) and measures only the cells
  not yet measured successfully. Every cell is written atomically as soon as it is measured.
- **Budgets.** ``--budget 9m`` counts from the start of the command (preparing environments
  included) and stops before the next cell that would not fit, using the cell times measured so
  far in this run, earlier slots included (or the bench's estimate before the first), and exits 0
  with "N of M cells done; resume with …". A budget that leaves no room for a single cell is
  bad input (exit status 2): resuming with it again would never progress. Each invocation is
  recorded as a *slot* in ``run.json``; a run finished over several slots is one run.
- **Signals.** SIGINT and SIGTERM stop the run the same way: children stopped, cells kept, exit
  status 130. A signal that arrives while a child is being started and recorded is held until
  the child is on the books (:meth:`Interrupts.held`), so no child is orphaned.
- **Progress.** On a terminal, a progress bar with an ETA from measured cell times; otherwise
  one plain line per cell.
- **Exit status.** 0 when every cell planned for this invocation was measured (or the budget
  ran out cleanly), 1 when a cell failed (its failure is in its cell file), 2 for bad input,
  130 when interrupted.
- **The report** is rendered at the end, with a short summary on the terminal; a report that
  cannot be rendered is reported and the measurements are kept.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as _dt
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

from ftscale.bench import results
from ftscale.bench.options import strip_run_options
from ftscale.errors import UsageError, guard
from ftscale.schema import ResultError, Slot

# --- signals ----------------------------------------------------------------------------------


class Interrupts:
    """SIGINT/SIGTERM as KeyboardInterrupt, except while held: then raised when released."""

    def __init__(self) -> None:
        self.holding = 0
        self.pending = False

    def handler(self, signum: int, frame: object) -> None:
        if self.holding:
            self.pending = True
            return
        raise KeyboardInterrupt

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        self.holding += 1
        try:
            yield
        finally:
            self.holding -= 1
            if self.pending and not self.holding:
                self.pending = False
                raise KeyboardInterrupt

    def install(self) -> None:
        """Make SIGINT and SIGTERM stop the calling program the same way, through this object."""
        signal.signal(signal.SIGINT, self.handler)
        signal.signal(signal.SIGTERM, self.handler)


INTERRUPTS = Interrupts()


class Stoppable(Protocol):
    def stop(self, timeout_s: float = ...) -> object: ...


_LIVE: set[Stoppable] = set()


def track(child: Stoppable) -> None:
    """Put a started child on the books: an interrupted run stops it."""
    _LIVE.add(child)


def untrack(child: Stoppable) -> None:
    _LIVE.discard(child)


def stop_all() -> None:
    """Stop every child still on the books (on Ctrl-C or SIGTERM)."""
    for child in list(_LIVE):
        with contextlib.suppress(Exception):
            child.stop(timeout_s=5)
        _LIVE.discard(child)


# --- run directories ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunPlace:
    path: Path
    resuming: bool


def open_run(
    args: argparse.Namespace,
    kind: str,
    reparse: Callable[[list[str]], argparse.Namespace],
    command: str | None = None,
) -> tuple[argparse.Namespace, RunPlace]:
    """Where this run lives; for ``--resume``, the run's own arguments with this call's run options.

    Raises :class:`UsageError` for a run that cannot be resumed (missing, another kind, or made
    by another ``command``: ``bench`` and ``app`` both make HTTP runs) or a new run whose
    directory already exists. Writes nothing.
    """
    results_dir: Path = args.results_dir or results.default_results_dir()
    if args.resume:
        path = results_dir / args.resume
        try:
            meta = results.RunDir(path).read_meta()
        except ResultError as exc:
            raise UsageError(f"cannot resume {args.resume}: {exc}") from None
        if meta.kind != kind:
            raise UsageError(f"cannot resume {args.resume}: it is a {meta.kind} run, not {kind}")
        made_by = str(meta.config.get("command") or ("bench" if meta.kind == "http" else meta.kind))
        if command is not None and made_by != command:
            raise UsageError(
                f"cannot resume {args.resume}: it is an 'ftscale {made_by}' run; "
                f"resume it with: ftscale {made_by} --resume {args.resume}"
            )
        saved = [str(a) for a in meta.config.get("argv", [])]
        resumed = reparse(strip_run_options(saved))
        for name in ("resume", "results_dir", "no_report", "budget"):
            setattr(resumed, name, getattr(args, name))
        resumed.run_id = args.resume
        return resumed, RunPlace(path, True)
    run_id = args.run_id or results.new_run_id(kind)
    if not all(c.isalnum() or c in "._-" for c in run_id) or run_id.startswith((".", "-")):
        raise UsageError(f"--run-id {run_id!r}: use letters, digits, '.', '-' and '_'")
    path = results_dir / run_id
    if path.exists():
        raise UsageError(f"{path} already exists; use --resume {run_id} to finish it")
    return args, RunPlace(path, False)


# --- progress ---------------------------------------------------------------------------------


class Progress:
    """One line per cell; on a terminal, a bar with an ETA from the measured cell times.

    ``measured`` seeds the cell times with those of cells measured earlier in the run (an
    earlier slot), so a resumed run's budget and ETA start from real times, not the estimate.
    """

    def __init__(
        self, total: int, estimate_s: float, tty: bool | None = None, measured: Sequence[float] = ()
    ) -> None:
        self.total = total
        self.estimate_s = estimate_s
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.times: list[float] = list(measured)
        self._bar: object | None = None
        self._task: object | None = None

    def expected_cell_s(self) -> float:
        """The next cell's expected duration: the mean measured so far, else the bench's estimate."""
        return sum(self.times) / len(self.times) if self.times else self.estimate_s

    def eta_s(self, remaining: int) -> float:
        return remaining * self.expected_cell_s()

    def __enter__(self) -> Progress:
        if self.tty:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA {task.fields[eta]}"),
            )
            bar.__enter__()
            self._bar = bar
            self._task = bar.add_task("sweep", total=self.total, eta=_clock(self.eta_s(self.total)))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(None, None, None)  # type: ignore[attr-defined]
            self._bar = None

    def say(self, line: str) -> None:
        if self._bar is not None:  # plain text: a bracket in a label or an error is not markup
            self._bar.console.print(line, markup=False, highlight=False)  # type: ignore[attr-defined]
        else:
            print(line, flush=True)

    def begin(self, label: str) -> None:
        if self._bar is not None:
            self._bar.update(self._task, description=label)  # type: ignore[attr-defined]

    def end(self, seconds: float, done: int) -> None:
        self.times.append(seconds)
        if self._bar is not None:
            eta = _clock(self.eta_s(self.total - done))
            self._bar.update(self._task, completed=done, eta=eta)  # type: ignore[attr-defined]


def _clock(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


# --- the sweep --------------------------------------------------------------------------------


class Step(Protocol):
    """One step of a sweep: it measures (and writes) the cells named by ``cell_keys``."""

    @property
    def cell_keys(self) -> tuple[str, ...]: ...


S = TypeVar("S", bound=Step)


@dataclass(frozen=True)
class SweepOutcome(Generic[S]):
    """What one invocation of :func:`sweep` did, and the steps it left for a later one."""

    planned: int  # steps of the whole run
    measured: int  # cells measured in this invocation (ok, failed or skipped)
    failed: int
    left: tuple[S, ...]  # steps not measured in this invocation because the budget ran out
    cell_keys: frozenset[str] = frozenset()  # every cell of the whole run
    next_cell_s: float = 0.0  # when the budget ran out: the next step's expected duration
    budget_left_s: float = 0.0  # ... and what was left of the budget

    @property
    def complete(self) -> bool:
        return not self.left


def sweep(
    rundir: results.RunDir,
    steps: Sequence[S],
    measure: Callable[[S], Sequence[results.AnyCell]],
    label: Callable[[S], str],
    estimate_s: float,
    budget_s: float | None = None,
    clock: Callable[[], float] | None = None,
    tty: bool | None = None,
    started: float | None = None,
) -> SweepOutcome[S]:
    """Measure every step whose cells are not all measured successfully; write cells as they come.

    ``estimate_s`` is the bench's guess of one cell's duration, used for the ETA and the budget
    until a cell of the run has been measured. With ``budget_s``, a cell is started only if the
    time spent since ``started`` (a ``clock()`` reading taken when the command began; default:
    now) plus the expected cell time fits.
    """
    clock = clock or time.monotonic  # looked up per call: a test's fake clock reaches every caller
    done = rundir.done()
    todo = [p for p in steps if not set(p.cell_keys) <= done]
    every = frozenset(k for p in steps for k in p.cell_keys)
    started = clock() if started is None else started
    failed = measured = 0
    progress = Progress(len(todo), estimate_s, tty, measured=earlier_cell_seconds(rundir))
    print(f"run {rundir.path}: {len(todo)} of {len(steps)} cells to measure", flush=True)
    with progress:
        for index, step in enumerate(todo):
            left_s = None if budget_s is None else budget_s - (clock() - started)
            if left_s is not None and progress.expected_cell_s() > left_s:
                return SweepOutcome(
                    planned=len(steps),
                    measured=measured,
                    failed=failed,
                    left=tuple(todo[index:]),
                    cell_keys=every,
                    next_cell_s=progress.expected_cell_s(),
                    budget_left_s=left_s,
                )
            text = f"[{index + 1}/{len(todo)}] {label(step)}"
            progress.begin(text)
            t0 = clock()
            cells = measure(step)
            for cell in cells:
                rundir.write_cell(cell)
                measured += 1
                where = f"{text} {cell.cell_id}" if len(cells) > 1 else text
                if cell.status == "ok":
                    progress.say(f"{where}: {describe(cell)}")
                elif cell.status == "skipped":  # cannot run on this build: not a failure
                    progress.say(f"{where}: skipped, {cell.skip_reason}")
                else:
                    failed += 1
                    progress.say(f"{where}: FAILED {cell.error}")
            progress.end(clock() - t0, index + 1)
    return SweepOutcome(planned=len(steps), measured=measured, failed=failed, left=(), cell_keys=every)


def earlier_cell_seconds(rundir: results.RunDir) -> list[float]:
    """How long each cell already in the run took (from its own timestamps, to the second)."""
    seconds = []
    for cell in results.iter_cells(rundir.path):
        try:
            took = _dt.datetime.fromisoformat(cell.finished) - _dt.datetime.fromisoformat(cell.started)
        except ValueError:
            continue
        if took.total_seconds() >= 0:
            seconds.append(took.total_seconds())
    return seconds


def describe(cell: results.AnyCell) -> str:
    """One line for a measured cell: its median and its flags."""
    median = sorted(cell.samples)[len(cell.samples) // 2] if cell.samples else float("nan")
    flags = f" [{' '.join(cell.flags)}]" if cell.flags else ""
    return f"{median:,.1f} {cell.unit} ({len(cell.samples)} samples){flags}"


def finish(
    rundir: results.RunDir,
    outcome: SweepOutcome[S],
    slot_started: str,
    resume_command: str,
    no_report: bool,
    summary: Callable[[Path], list[str]] | None = None,
) -> int:
    """Record the slot, say what is left, render the report; the exit status.

    ``resume_command`` starts with ``ftscale``; where ``$FTSCALE_COMMAND`` names the command
    otherwise (a bundle's launcher), the hint says that instead.

    0 when the run is complete or the budget ran out after measuring something, 1 when a cell
    failed. A budget that left no room for a single cell raises :class:`UsageError` (exit status
    2): the same budget would never progress. The slot is recorded either way.
    """
    meta = rundir.read_meta()
    slot = Slot(
        started=slot_started,
        finished=results.now(),
        host=results.collect_host().hostname,
        cells_measured=outcome.measured,
        cells_failed=outcome.failed,
        complete=outcome.complete,
    )
    changes: dict[str, object] = {"slots": [*meta.slots, slot]}
    if outcome.complete:
        changes["finished"] = results.now()
    rundir.update_meta(**changes)
    done = len(rundir.done() & outcome.cell_keys)
    command = os.environ.get("FTSCALE_COMMAND")
    if command and resume_command.startswith("ftscale "):
        resume_command = f"{command} {resume_command.removeprefix('ftscale ')}"
    if outcome.complete:
        print(
            f"done: {outcome.measured} cells measured, {outcome.failed} failed -> {rundir.path}", flush=True
        )
    elif outcome.measured == 0:
        raise UsageError(
            f"budget too small: the next cell is expected to take about {outcome.next_cell_s:.0f} s "
            f"and {max(0.0, outcome.budget_left_s):.0f} s of the budget were left; "
            f"{done} of {len(outcome.cell_keys)} cells done; resume with a larger --budget: {resume_command}"
        )
    else:
        print(
            f"budget reached: {done} of {len(outcome.cell_keys)} cells done; resume with: {resume_command}",
            flush=True,
        )
    if summary is not None:
        with contextlib.suppress(Exception):
            for line in summary(rundir.path):
                print(line, flush=True)
    if not no_report:
        render_report(rundir.path)
    return 1 if outcome.failed else 0


def render_report(run_dir: Path) -> None:
    """Render the run's report when the report dependencies are here; say so when they are not."""
    try:
        from ftscale.bench.report.render import render_run
    except ImportError as exc:
        print(
            f"report: not rendered here ({exc.name} is not installed); "
            f"render it with: ftscale report {run_dir}"
        )
        return
    from ftscale.bench.report.render import summary

    try:
        paths = render_run(run_dir)
        lines = summary(run_dir)
    except Exception as exc:  # the measurements are kept; the report can be rendered later
        print(f"report: not rendered ({type(exc).__name__}: {exc}); retry with: ftscale report {run_dir}")
        return
    print()
    for line in lines:
        print(line, flush=True)
    for path in paths:
        print(f"report: {path}", flush=True)


# --- entry point ------------------------------------------------------------------------------


def main_guard(prog: str, body: Callable[[], int]) -> int:
    """Run a command with the engine's signal handling, and exit statuses by :func:`ftscale.errors.guard`.

    Every child process (servers, workers, generators, their pools) gets PYTHONSAFEPATH=1: run
    from a checkout, ``python -m ftscale...`` would otherwise import the checkout's ``ftscale/``
    folder (which holds only the root package) ahead of the installed package.
    """
    os.environ["PYTHONSAFEPATH"] = "1"
    INTERRUPTS.install()
    try:
        return guard(prog, body)
    except KeyboardInterrupt:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second signal must not cut the clean-up short
            signal.signal(signum, signal.SIG_IGN)
        stop_all()
        print("\ninterrupted: the cells measured so far are kept; finish with --resume", file=sys.stderr)
        return 130
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL)
