"""Small helpers the benchmark scripts share (import as `bench.stats`; the repo root is on sys.path)."""

from __future__ import annotations


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile by rank (0.99: the value 99% of samples are below), NaN for no samples."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
