"""Retry strategies: how long a GuardedTask waits before its next attempt.

``none`` leaves Celery's own delay (``default_retry_delay``) alone; ``fixed``
waits ``jobs_retry_base`` seconds; ``exponential`` waits
``base * multiplier ** (n - 1)`` capped at ``jobs_retry_max``, with full jitter
(a uniform draw between 0 and that delay) when ``jobs_retry_jitter`` is on, so
a burst of failures does not come back as a burst of retries.
"""

from __future__ import annotations

import random

from celery_jobs_ext.config import JobsConfig


def retry_countdown(config: JobsConfig, attempt: int, rng: random.Random | None = None) -> float | None:
    """Seconds to wait before retry number ``attempt`` (1 for the first retry).

    Arguments:
        config: the app's validated settings.
        attempt: which retry this is, counted from 1.
        rng: source of jitter; the module's generator when omitted.

    Returns:
        The countdown, or None under the ``none`` strategy (Celery decides).
    """
    strategy = config.retry_strategy
    if strategy == "none":
        return None
    if strategy == "fixed":
        return float(config.retry_base)
    exponent = max(attempt, 1) - 1
    try:
        delay = config.retry_base * config.retry_multiplier**exponent
    except OverflowError:
        delay = float(config.retry_max)
    delay = min(delay, float(config.retry_max))
    if config.retry_jitter:
        delay = (rng or random).uniform(0.0, delay)
    return delay
