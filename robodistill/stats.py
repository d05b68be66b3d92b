"""Small statistics shared by eval and the benches: success intervals and latency percentiles."""

from __future__ import annotations

import math

import numpy as np


def wilson_interval(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a success rate (sound at 0% and 100%, unlike the normal one)."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denom = 1 + z**2 / trials
    centre = (p + z**2 / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z**2 / (4 * trials**2)) / denom
    # At 0% or 100% the rounded bounds can miss p by ~1e-16; the interval always holds p.
    return max(0.0, min(p, centre - half)), min(1.0, max(p, centre + half))


def latency_summary(seconds: list[float] | np.ndarray) -> dict[str, float]:
    """Median, p99, max and mean of latencies, in milliseconds."""
    ms = np.asarray(seconds, dtype=np.float64) * 1e3
    if ms.size == 0:
        return {
            "p50_ms": float("nan"),
            "p99_ms": float("nan"),
            "max_ms": float("nan"),
            "mean_ms": float("nan"),
        }
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
        "mean_ms": float(ms.mean()),
    }
