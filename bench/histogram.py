"""Latency histograms that merge exactly: log-linear buckets in the manner of HdrHistogram.

A latency in microseconds ``v`` goes to bucket :func:`index_of` ``(v)``: below 2**SUB_BITS every
microsecond has its own bucket; above, each power of two is split into 2**(SUB_BITS-1) equal
buckets, so a bucket's width is at most 1/2**(SUB_BITS-1) of its value (0.8 % with
SUB_BITS = 8). Counts are kept sparse, as ``{bucket index: count}``, so histograms of
repetitions, of generator processes or of wrk threads merge by adding counts, and percentiles
and CDFs of the merged distribution are exact up to the bucket width. Pure Python: the
generator processes and the report both use it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping

SUB_BITS = 8


def index_of(value_us: int) -> int:
    """The bucket of a latency of ``value_us`` microseconds (values below 1 count as 1)."""
    v = max(1, int(value_us))
    shift = max(0, v.bit_length() - SUB_BITS)
    return (shift << (SUB_BITS - 1)) + (v >> shift) if shift else v


def bounds_of(index: int) -> tuple[int, int]:
    """The half-open range of microseconds ``[low, high)`` that bucket ``index`` holds."""
    if index < (1 << SUB_BITS):
        return index, index + 1
    shift = (index >> (SUB_BITS - 1)) - 1
    mantissa = index - (shift << (SUB_BITS - 1))  # in [2**(SUB_BITS-1), 2**SUB_BITS)
    low = mantissa << shift
    return low, low + (1 << shift)


def value_of(index: int) -> float:
    """A bucket's representative value in microseconds: the middle of its range."""
    low, high = bounds_of(index)
    return (low + high - 1) / 2 if high - low > 1 else float(low)


def from_latencies_s(latencies_s: Iterable[float]) -> dict[int, int]:
    """A histogram of latencies given in seconds."""
    counts: dict[int, int] = {}
    for seconds in latencies_s:
        key = index_of(round(seconds * 1e6))
        counts[key] = counts.get(key, 0) + 1
    return counts


def from_value_counts(pairs: Iterable[tuple[int, int]]) -> dict[int, int]:
    """A histogram of ``(microseconds, count)`` pairs (what wrk's per-microsecond table gives)."""
    counts: dict[int, int] = {}
    for value, count in pairs:
        if count > 0:
            key = index_of(value)
            counts[key] = counts.get(key, 0) + int(count)
    return counts


def merge(histograms: Iterable[Mapping[int, int]]) -> dict[int, int]:
    total: dict[int, int] = {}
    for histogram in histograms:
        for key, count in histogram.items():
            total[int(key)] = total.get(int(key), 0) + int(count)
    return total


def count(histogram: Mapping[int, int]) -> int:
    return sum(histogram.values())


def percentile_ms(histogram: Mapping[int, int], q: float) -> float:
    """The ``q``-th percentile (0-100) in milliseconds: the middle of the bucket that holds it.

    NaN for an empty histogram. Rank convention: the smallest value with at least q % of the
    samples at or below it (as HdrHistogram and wrk report it).
    """
    total = count(histogram)
    if total == 0:
        return math.nan
    rank = max(1, math.ceil(q / 100 * total))
    seen = 0
    for key in sorted(int(k) for k in histogram):
        seen += histogram[key]
        if seen >= rank:
            return value_of(key) / 1000
    return value_of(max(int(k) for k in histogram)) / 1000


def cdf_ms(histogram: Mapping[int, int]) -> list[tuple[float, float]]:
    """``(latency ms, share of requests at or below it)`` at every bucket, in order."""
    total = count(histogram)
    points: list[tuple[float, float]] = []
    seen = 0
    for key in sorted(int(k) for k in histogram):
        seen += histogram[key]
        points.append((bounds_of(key)[1] / 1000, seen / total))
    return points
