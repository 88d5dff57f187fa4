"""Reading ``perf script`` output: samples with their call chains, and collapsed stacks.

The input is the text of ``perf script --no-inline -F comm,pid,tid,time,period,event,ip,sym,dso``
(:data:`ftscale.bench.profile.perf.SCRIPT_FIELDS`): per sample, one header line, then one
indented line per frame, leaf first, then a blank line::

    Thread-1 (work) 28842/28847 1639.153700:    1001001 cpu-clock:pppH:
    \t          1019b3 __sched_yield (/usr/lib/x86_64-linux-gnu/libc.so.6)
    \t           9d161 _PyEval_EvalFrameDefault (/x/bin/python3.14t)
    \t    7f6162b575a6 py::work:/tmp/case.py (/tmp/perf-18607.map)

With ``--show-switch-events``, context switches come as one line each
(``... 1639.15: PERF_RECORD_SWITCH OUT preempt``) and become frameless samples whose event is
:data:`SWITCH_IN`, :data:`SWITCH_OUT` (the thread slept) or :data:`SWITCH_PREEMPT`.

Python functions appear as ``py::<qualname>:<file>`` frames when the interpreter runs with its
perf trampoline (``PYTHONPERFSUPPORT=1``); with DWARF call graphs the chain reaches from the
leaf up to the innermost Python function and stops there (the trampoline has no unwind
information), which is what the bucket rules need. Thread names can contain spaces, and
symbols can contain spaces and parentheses, so the header is parsed from the right and a
frame's DSO is split off at its last `` (``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

# "<comm> <pid>/<tid> [<cpu>] [<time>:] [<period>] <event>[:<modifiers>]:"
_HEADER = re.compile(
    r"^(?P<comm>.*?)\s+(?P<pid>-?\d+)(?:/(?P<tid>-?\d+))?"
    r"(?:\s+\[\d+\])?"
    r"(?:\s+(?P<time>\d+\.\d+):)?"
    r"(?:\s+(?P<period>\d+))?"
    r"\s+(?P<event>[^\s:]+(?::\w*)?):\s*$"
)
# "<comm> <pid>/<tid> [<cpu>] <time>: PERF_RECORD_SWITCH OUT [preempt]" (perf script --show-switch-events)
_SWITCH = re.compile(
    r"^(?P<comm>.*?)\s+(?P<pid>-?\d+)/(?P<tid>-?\d+)\s+(?:\[\d+\]\s+)?(?P<time>\d+\.\d+):\s+"
    r"PERF_RECORD_SWITCH(?:_CPU_WIDE)?\s+(?P<dir>IN|OUT)\b(?P<preempt>\s+preempt)?"
)
SWITCH_IN, SWITCH_OUT, SWITCH_PREEMPT = "switch-in", "switch-out", "switch-out-preempt"
_FRAME = re.compile(r"^\s*(?P<addr>[0-9a-f]+)\s+(?P<rest>.*)$")
_OFFSET = re.compile(r"(\+0x[0-9a-f]+|@plt)$")
# Compiler clones and symbol versions: finish_task_switch.isra.0, pthread_cond_signal@@GLIBC_2.3.2
_SUFFIX = re.compile(r"(?:\.(?:isra|constprop|part|lto_priv)\.\d+|\.cold(?:\.\d+)?)+$|@@?[A-Z_]+[\d.]*$")
# The interpreter's own and third-party directories in a Python frame's file, shortened away.
_PY_PREFIX = re.compile(r"^.*/(?:site-packages|dist-packages|lib/python3\.\d+t?)/|^.*/(?=ftscale/)")
PY_PREFIX = "py::"
JIT = "[jit]"


@dataclass(frozen=True, slots=True)
class Frame:
    sym: str  # normalised symbol: no offset, no clone or version suffix
    dso: str

    @property
    def kernel(self) -> bool:
        return self.dso.startswith("[kernel") or self.dso.endswith(".ko")

    @property
    def python(self) -> bool:
        """A perf trampoline frame: one Python function."""
        return self.sym.startswith(PY_PREFIX)


@dataclass(frozen=True, slots=True)
class Sample:
    comm: str
    pid: int
    tid: int
    time: float  # seconds on perf's clock (CLOCK_MONOTONIC when recorded with -k mono)
    period: int  # nanoseconds of CPU time for cpu-clock
    event: str
    frames: tuple[Frame, ...]  # leaf first


def normalise(sym: str) -> str:
    """A C symbol without its compiler-clone or version suffix (Python frames are left alone)."""
    return sym if sym.startswith(PY_PREFIX) else _SUFFIX.sub("", sym)


def _frame(line: str) -> Frame | None:
    match = _FRAME.match(line)
    if match is None:
        return None
    rest = match["rest"].rstrip()
    dso = ""
    if rest.endswith(")"):
        cut = rest.rfind(" (")
        if cut >= 0:
            dso, rest = rest[cut + 2 : -1], rest[:cut]
    sym = _OFFSET.sub("", rest.strip()) or "[unknown]"
    if sym == "[unknown]" and dso.startswith("/tmp/perf-") and dso.endswith(".map"):
        sym = JIT  # a trampoline whose map file was already gone
    return Frame(normalise(sym), dso or "[unknown]")


def parse(lines: Iterable[str]) -> Iterator[Sample]:
    """Samples from ``perf script`` text; lines that are neither header nor frame are skipped."""
    head: re.Match[str] | None = None
    frames: list[Frame] = []

    def sample() -> Sample | None:
        if head is None:
            return None
        pid = int(head["pid"])
        return Sample(
            comm=head["comm"].strip(),
            pid=pid,
            tid=int(head["tid"] or pid),
            time=float(head["time"] or 0.0),
            period=int(head["period"] or 1),
            event=head["event"],
            frames=tuple(frames),
        )

    for raw in lines:
        line = raw.rstrip("\n")
        if not line.strip():
            done = sample()
            if done is not None:
                yield done
            head, frames = None, []
        elif line[0] in " \t":
            if head is not None and (frame := _frame(line)) is not None:
                frames.append(frame)
        else:  # a header; perf omits the blank line after a sample without a call chain
            done = sample()
            if done is not None:
                yield done
            head, frames = _HEADER.match(line), []
            switch = _SWITCH.match(line) if head is None else None
            if switch is not None:  # a context switch: an event without period or frames
                out = SWITCH_PREEMPT if switch["preempt"] else SWITCH_OUT
                event = SWITCH_IN if switch["dir"] == "IN" else out
                pid = int(switch["pid"])
                yield Sample(
                    comm=switch["comm"].strip(),
                    pid=pid,
                    tid=int(switch["tid"]),
                    time=float(switch["time"]),
                    period=0,
                    event=event,
                    frames=(),
                )
    done = sample()
    if done is not None:
        yield done


def python_frame(sample: Sample) -> str | None:
    """The innermost Python function of a sample (its ``py::`` frame nearest the leaf)."""
    return next((f.sym for f in sample.frames if f.python), None)


def short_python(sym: str) -> str:
    """``py::Handle._run:/…/lib/python3.14t/asyncio/events.py`` -> ``Handle._run (asyncio/events.py)``."""
    body = sym.removeprefix(PY_PREFIX)
    name, sep, path = body.partition(":")
    if not sep:
        return body
    return f"{name} ({_PY_PREFIX.sub('', path)})"


def frame_label(frame: Frame) -> str:
    """A frame as collapsed stacks and tables show it: Python frames shortened, kernel ones marked."""
    if frame.python:
        return "py:" + short_python(frame.sym)
    return frame.sym + ("_[k]" if frame.kernel else "")


def collapsed(sample: Sample) -> str:
    """One sample as a collapsed stack: ``thread;root;...;leaf``.

    The first element is the thread's name; ``;`` inside a name becomes ``:``.
    """
    names = [frame_label(f).replace(";", ":") for f in reversed(sample.frames)] or ["[unknown]"]
    thread = sample.comm.replace(" ", "_").replace(";", ":") or "?"
    return ";".join([thread, *names])


def fold(samples: Iterable[Sample]) -> Counter[str]:
    """Collapsed stacks with their sample counts, as stackcollapse-perf.pl writes them: flame-graph
    tools (flamegraph.pl, speedscope, inferno) read the file directly."""
    return Counter(collapsed(s) for s in samples)


def folded_text(stacks: Counter[str]) -> str:
    return "".join(f"{stack} {count}\n" for stack, count in sorted(stacks.items()))
