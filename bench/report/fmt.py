"""How numbers read in a report. Every function takes a number and returns text; NaN reads "—".

Throughputs keep about three significant figures (whole numbers from 100 up); intervals are
written ``value [low, high]``; an interval whose real coverage is below the nominal 95% (fewer
than 6 samples) carries its coverage, e.g. ``[990, 1010] 75%``; no interval reads ``[n/a]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from ftscale.bench.report.stats import CONFIDENCE, Estimate

DASH = "—"
# Symbols that ruff would take for look-alikes of ASCII letters if written literally.
TIMES = "\N{MULTIPLICATION SIGN}"
MINUS = "\N{MINUS SIGN}"
SIGMA = "\N{GREEK SMALL LETTER SIGMA}"
NO_INTERVAL = "[n/a]"


def num(x: float) -> str:
    """A measured quantity: integers from 100 up, else three significant figures."""
    if not math.isfinite(x):
        return DASH if math.isnan(x) else ("∞" if x > 0 else "-∞")
    if abs(x) >= 100:
        return f"{x:.0f}"
    if x == 0:
        return "0"
    return f"{x:#.3g}".rstrip(".")


def fixed(x: float, digits: int = 2) -> str:
    """Ratios and fractions: a fixed number of decimals."""
    return DASH if math.isnan(x) else f"{x:.{digits}f}"


def pct(x: float, digits: int = 1) -> str:
    """A fraction as a percentage: 0.052 → 5.2%."""
    return DASH if math.isnan(x) else f"{100 * x:.{digits}f}%"


def signed_pct(x: float, digits: int = 1) -> str:
    return DASH if math.isnan(x) else f"{100 * x:+.{digits}f}%"


def mib(n: float) -> str:
    """Bytes in MiB."""
    return DASH if math.isnan(n) else f"{num(n / 2**20)} MiB"


def sci(x: float) -> str:
    """Small model parameters (κ): three significant figures, exponent when needed."""
    return DASH if math.isnan(x) else f"{x:.3g}"


def _interval(e: Estimate, bound: Callable[[float], str], text: str) -> str:
    if not e.has_interval:
        return f"{text} {NO_INTERVAL}"
    note = f" {e.coverage:.0%}" if e.coverage < CONFIDENCE - 1e-9 else ""
    return f"{text} [{bound(e.low)}, {bound(e.high)}]{note}"


def estimate(e: Estimate) -> str:
    """A throughput with its interval."""
    return DASH if math.isnan(e.value) else _interval(e, num, num(e.value))


def ratio_digits(e: Estimate) -> int:
    """Decimals for a ratio's bounds: 2, or as many more as it takes (up to 6) for a bound that
    excludes 1 to stay on its side of 1 when rounded, so that such an interval never reads 1.00."""
    if not e.has_interval:
        return 2
    for digits in range(2, 7):
        low, high = round(e.low, digits), round(e.high, digits)
        if (e.low > 1) <= (low > 1) and (e.high < 1) <= (high < 1):
            return digits
    return 6


def ratio(e: Estimate) -> str:
    """A ratio (speedup, build against build) with its interval: ``3.08`` times sign ``[3.02, 3.14]``.

    A bound that excludes 1 keeps the decimals that show it: ``[1.004, 1.200]``, never ``[1.00, 1.20]``.
    """
    if math.isnan(e.value):
        return DASH
    if not e.has_interval:
        return f"{fixed(e.value)}{TIMES} {NO_INTERVAL}"
    digits = ratio_digits(e)
    note = f" {e.coverage:.0%}" if e.coverage < CONFIDENCE - 1e-9 else ""
    return f"{fixed(e.value)}{TIMES} [{e.low:.{digits}f}, {e.high:.{digits}f}]{note}"


def signed_pct_estimate(e: Estimate) -> str:
    return DASH if math.isnan(e.value) else _interval(e, signed_pct, signed_pct(e.value))


def capacity(low: float, high: float) -> str:
    """A capacity between the highest rate that passed and the lowest that failed: ``[64.2, 68.7)``;
    ``≥ 80.0`` when none failed (censored: the highest rate tried passed); ``< 10.0`` when none passed."""
    if math.isnan(low):
        return DASH if math.isnan(high) else f"< {num(high)}"
    if math.isnan(high):
        return f"≥ {num(low)}"
    return f"[{num(low)}, {num(high)})"


def count(n: int, noun: str) -> str:
    """``1 cell``, ``3 cells``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def yes_no(value: bool | None) -> str:
    return DASH if value is None else ("yes" if value else "no")


def cpu_list(cpus: list[int]) -> str:
    """CPU numbers as ranges: [0, 1, 2, 3, 8] → ``0-3,8``."""
    ranges: list[str] = []
    for cpu in sorted(set(cpus)):
        if ranges and ranges[-1].split("-")[-1] == str(cpu - 1):
            ranges[-1] = f"{ranges[-1].split('-')[0]}-{cpu}"
        else:
            ranges.append(str(cpu))
    return ",".join(ranges) or DASH
