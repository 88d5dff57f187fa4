"""Whether a soak's memory keeps rising: the RSS slope after a warm-up, whole and in its last half.

A service's RSS climbs while it warms up (imports on first use, pools and caches filling,
allocator arenas growing to the load's high-water mark) and then levels off; a leak keeps
climbing. :func:`trend` fits a least-squares line to the samples after ``warmup_s`` and to the
last half of them alone: a rise that has levelled off by the last half is warm-up, one that is
above :data:`LIMIT_PCT_PER_MIN` in both is a *steady rise*, the finding a soak fails on.

Percentages are of the mean RSS after the warm-up; MB are 10**6 bytes. Statistics only: no
formatting, no sampling (:mod:`tools.soak` samples).

    python -m ftscale.server.rss_trend results/soak/FILE.json ...

recomputes the ``memory`` field of soak result files from their own samples (after a change to
what the trend reports; the samples, the soak's verdict and every other figure stay as they are).
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


def minute_means_mb(points: Sequence[tuple[float, float]], start_s: float) -> list[float]:
    """The mean of ``points`` (seconds, bytes) in each minute from ``start_s``, in MB; a minute with
    fewer than half the samples of the fullest (the last, cut short) is left out."""
    minutes: dict[int, list[float]] = {}
    for t, rss in points:
        minutes.setdefault(int((t - start_s) // 60), []).append(rss)
    fullest = max((len(v) for v in minutes.values()), default=0)
    return [round(sum(v) / len(v) / MB, 1) for _, v in sorted(minutes.items()) if 2 * len(v) >= fullest]


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
        minute_means_mb=minute_means_mb(after, warmup_s),
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


def main(argv: Sequence[str] | None = None) -> int:
    import argparse
    import json
    from pathlib import Path

    from ftscale.schema import SoakResult

    parser = argparse.ArgumentParser(
        prog="python -m ftscale.server.rss_trend", description=__doc__.split("\n")[0]
    )
    parser.add_argument("files", nargs="+", type=Path, help="soak result files (results/soak/*.json)")
    args = parser.parse_args(argv)
    for path in args.files:
        result = SoakResult.model_validate_json(path.read_text())
        if result.rss_samples is None or result.memory is None:
            print(f"{path}: no samples or no trend: left as it is")
            continue
        memory = trend(result.rss_samples, result.memory.warmup_s, result.memory.limit_pct_per_min)
        updated = result.model_copy(update={"memory": memory})
        path.write_text(json.dumps(updated.model_dump(mode="json"), indent=2, sort_keys=True) + "\n")
        print(f"{path}: {memory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
