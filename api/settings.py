"""Numeric settings read from the environment, refused at start-up when they make no sense."""

from __future__ import annotations

import math
from collections.abc import Mapping


def positive_number(environ: Mapping[str, str], name: str, default: float, unit: str) -> float:
    """``environ[name]`` as a positive, finite number (``default`` when unset)."""
    raw = environ.get(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{name} must be a positive number of {unit}, not {raw!r}")
    return value
