"""The one JSON writer of every command and report; imports nothing from the package.

Its own module so the health report and the commands share it without importing each
other (health once imported cli for it, and cli imports health).
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["to_json"]


def to_json(data: Any) -> str:
    """The one JSON writer of every command: standard JSON, keys sorted, two-space indent.

    Standard means no ``Infinity`` or ``NaN`` (``allow_nan=False``): a number that is not
    finite is written as ``null`` (none should reach here; parsers refuse them first).
    """
    return json.dumps(_finite(data), indent=2, sort_keys=True, allow_nan=False, default=str)


def _finite(data: Any) -> Any:
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {key: _finite(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [_finite(item) for item in data]
    return data
