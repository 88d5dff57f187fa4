"""Whether a soak's memory keeps rising: the RSS slope after a warm-up, whole and in its last half.

A service's RSS climbs while it warms up (imports on first use, pools and caches filling,
allocator arenas growing to the load's high-water mark) and then levels off; a leak keeps
climbing. :func:`trend` fits a least-squares line to the samples after ``warmup_s`` and to the
last half of them alone: a rise that has levelled off by the last half is warm-up, one that is
above :data:`LIMIT_PCT_PER_MIN` in both is a *steady rise*, the finding a soak fails on.

Percentages are of the mean RSS after the warm-up; MB are 10**6 bytes. Statistics only: no
formatting, no sampling (:mod:`server.soak` samples).
"""

from __future__ import annotations

from collections.abc import Sequence

from ftscale.schema import MemoryTrend

LIMIT_PCT_PER_MIN = 1.0
MB = 10**6
MIN_SAMPLES = 4  # per half: fewer cannot tell a slope from noise


def slope_per_s(points: Sequence[tuple[float, float]]) -> float:
    """The least-squares slope of ``points`` (x, y); 0 for fewer than two distinct x."""
    n = len(points)
    if n < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    if sxx == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx


def trend(
    samples: Sequence[tuple[float, int]], warmup_s: float, limit_pct_per_min: float = LIMIT_PCT_PER_MIN
) -> MemoryTrend | None:
    """The RSS trend of ``samples`` ([seconds, bytes]) after ``warmup_s``; None with too few samples."""
    after = [(float(t), float(rss)) for t, rss in samples if t >= warmup_s]
    if len(after) < 2 * MIN_SAMPLES:
        return None
    last_half = after[len(after) // 2 :]
    mean = sum(rss for _, rss in after) / len(after)
    whole = slope_per_s(after) * 60
    late = slope_per_s(last_half) * 60
    whole_pct, late_pct = whole / mean * 100, late / mean * 100
    return MemoryTrend(
        warmup_s=warmup_s,
        samples=len(after),
        mean_rss_bytes=round(mean, 1),
        slope_mb_per_min=round(whole / MB, 4),
        slope_pct_per_min=round(whole_pct, 4),
        last_half_slope_mb_per_min=round(late / MB, 4),
        last_half_slope_pct_per_min=round(late_pct, 4),
        limit_pct_per_min=limit_pct_per_min,
        steady_rise=whole_pct > limit_pct_per_min and late_pct > limit_pct_per_min,
    )
