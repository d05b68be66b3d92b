"""Formatting numbers into table cells the same way everywhere in the report.

Missing values (None, NaN, absent keys) print as an en dash rather than failing: result files
from older producers may lack a field.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

MISSING = "–"


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float):
        return None
    return None if math.isnan(x) or math.isinf(x) else float(x)


def pct(x: Any) -> str:
    """0.973 -> '97.3%', 1.0 -> '100%'."""
    v = _number(x)
    if v is None:
        return MISSING
    text = f"{100 * v:.1f}".removesuffix(".0")
    return f"{text}%"


def success(rate: Any, ci: Sequence[Any] | None) -> str:
    """Success with its 95% interval: '97% (91.5–99%)'."""
    if _number(rate) is None:
        return MISSING
    if not ci or len(ci) != 2:
        return pct(rate)
    return f"{pct(rate)} ({pct(ci[0]).rstrip('%')}–{pct(ci[1])})"


def ms(x: Any) -> str:
    """Milliseconds with about three significant digits: 0.0797, 4.12, 91.6, 1470."""
    v = _number(x)
    if v is None:
        return MISSING
    if abs(v) >= 100:
        return f"{v:.0f}"
    return f"{v:.3g}"


def ratio(x: Any) -> str:
    """A ratio of latencies: '0.97×' (below 1: faster than the reference)."""
    v = _number(x)
    return MISSING if v is None else f"{v:.3g}×"


def num(x: Any, digits: int = 3) -> str:
    """A plain number with ``digits`` significant digits (integers as they are)."""
    if isinstance(x, int) and not isinstance(x, bool):
        return str(x)
    v = _number(x)
    if v is None:
        return MISSING
    if v.is_integer() and abs(v) < 1e12:
        return str(int(v))  # 3000.0 -> '3000', not '3e+03'
    return f"{v:.{digits}g}"


def get(data: Any, *keys: Any) -> Any:
    """``data[k1][k2]...`` or None when any step is missing."""
    for key in keys:
        try:
            data = data[key]
        except (KeyError, IndexError, TypeError):
            return None
    return data
