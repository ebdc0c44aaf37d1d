"""Rates: the one parser of a rate limit, for settings, the ``jobs-ratelimit`` command and overrides.

Imports nothing from the package but the errors, so the limiter and the settings share it.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from celery_jobs_ext.errors import InvalidRate

__all__ = ["MAX_RATE_PER_MINUTE", "MAX_RATE_TEXT", "MIN_RATE_PER_MINUTE", "RATE_FORMS", "parse_rate"]

#: The bounds of a rate limit, in jobs per minute (0 means no limit): at most 100,000 jobs
#: per second per queue, at least one job per day. Outside them a worker cannot space jobs
#: (an interval under 10 microseconds, or longer than a budget is worth keeping).
MAX_RATE_PER_MINUTE = 6_000_000
MIN_RATE_PER_MINUTE = Decimal(1) / Decimal(1440)
#: Longer rate texts are refused before parsing (no 5,000-digit numbers).
MAX_RATE_TEXT = 32
_RATE_TEXT = re.compile(r"([0-9]+(?:\.[0-9]+)?)(?:\s*/\s*([smh]))?", re.ASCII)
RATE_FORMS = "jobs per minute (50, 1.5) or a rate such as 10/s, 100/m, 1000/h; 0 means no limit"


def parse_rate(value: Any) -> float:
    """Jobs per minute from a number (already per minute) or a text: ``"50"``, ``"1.5"``, ``"10/s"``.

    The one rate parser: settings, the ``jobs-ratelimit`` command and the overrides a
    worker reads from the shared state all go through it, so nothing a worker reads can
    be a rate it cannot use. Texts are ASCII digits with an optional decimal part and an
    optional ``/s``, ``/m`` or ``/h``; the result is 0 (no limit) or finite, between
    :data:`MIN_RATE_PER_MINUTE` and :data:`MAX_RATE_PER_MINUTE`.

    Raises:
        InvalidRate: (a ``ValueError``) anything else; the message says why and what fits.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, str, Decimal)):
        raise InvalidRate(f"{_shown(value)} is not a rate: use {RATE_FORMS}.")
    if isinstance(value, str):
        text = value.strip()
        if len(text) > MAX_RATE_TEXT:
            raise InvalidRate(
                f"{_shown(value)} is not a rate: longer than {MAX_RATE_TEXT} characters; use {RATE_FORMS}."
            )
        foreign = next((char for char in text if not char.isascii() and char.isnumeric()), None)
        if foreign is not None:
            raise InvalidRate(
                f"{_shown(value)} is not a rate: {foreign!r} is not an ASCII digit; write digits as 0-9."
            )
        match = _RATE_TEXT.fullmatch(text)
        if match is None:
            raise InvalidRate(f"{_shown(value)} is not a rate: use {RATE_FORMS}.")
        number = Decimal(match.group(1))
        if match.group(2) == "s":
            number *= 60
        elif match.group(2) == "h":
            number /= 60
    else:
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidRate(f"{_shown(value)} is not a rate: it must be a finite number.")
        number = Decimal(value)
        if not number.is_finite():
            raise InvalidRate(f"{_shown(value)} is not a rate: it must be a finite number.")
    if number < 0:
        raise InvalidRate(f"{_shown(value)} is not a rate: it must not be negative (0 means no limit).")
    if number == 0:
        return 0.0
    if number > MAX_RATE_PER_MINUTE:
        raise InvalidRate(
            f"{_shown(value)} is above the largest rate limit, 100000/s "
            f"({MAX_RATE_PER_MINUTE:,} jobs per minute); use 0 for no limit."
        )
    if number < MIN_RATE_PER_MINUTE:
        raise InvalidRate(
            f"{_shown(value)} is below the smallest rate limit, one job per day (0.042/h); "
            "use 0 for no limit."
        )
    return float(number)


def _shown(value: Any) -> str:
    """``repr`` of a value, cut short: an error message must not echo a 5,000-digit paste."""
    try:
        text = repr(value)
    except ValueError:  # an int past sys.get_int_max_str_digits()
        return "a number too long to show"
    return text if len(text) <= 40 else text[:37] + "..."
