"""Percentiles for latency samples."""

from __future__ import annotations

from collections.abc import Sequence


def percentile_us(samples_ns: Sequence[int], fraction: float) -> float:
    """Nearest-rank percentile of nanosecond samples, in microseconds, 2 decimals."""
    ordered = sorted(samples_ns)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))
    return round(ordered[index] / 1000, 2)
