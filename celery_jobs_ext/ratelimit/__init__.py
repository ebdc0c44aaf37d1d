"""Per-queue rate limits shared by every worker on every host, enforced inside the worker.

Celery's own ``rate_limit`` is per task type and per worker: four workers with ``10/m``
let 40 through. Here one budget per queue lives in the shared state and every worker
process draws from it with one atomic GCRA decision (:mod:`.gcra`: a Lua script on Redis
``TIME``, or one SQLite transaction): evenly spaced starts, ``jobs_rate_limit_burst`` back
to back after an idle period, never a fixed per-minute window that lets twice the limit
through around the minute boundary.

- :mod:`.gcra`: the algorithm, as a script the shared state runs atomically.
- :mod:`.limiter`: :class:`RateLimiter`, limits, run-time overrides, decisions and usage.
- :mod:`.worker`: :class:`RateLimitStep`, the consumer bootstep that holds a limited
  queue's requests until their slot comes.
"""

from __future__ import annotations

from celery_jobs_ext.errors import RateLimitExceeded
from celery_jobs_ext.ratelimit.gcra import COUNT_TTL, GCRA, Acquired, acquire, take_slots
from celery_jobs_ext.ratelimit.limiter import (
    BUDGET_KEY,
    OVERRIDE_REFRESH_SECONDS,
    OVERRIDES_KEY,
    STARTS_KEY,
    WARNING_INTERVAL_SECONDS,
    RateLimiter,
)
from celery_jobs_ext.ratelimit.worker import (
    AHEAD_SECONDS,
    HOLD_SECONDS,
    MAX_HOLD,
    MAX_SLOTS_AHEAD,
    UNAVAILABLE_RETRY_SECONDS,
    RateLimitStep,
    hold_capacity,
    slots_ahead,
)

__all__ = [
    "AHEAD_SECONDS",
    "BUDGET_KEY",
    "COUNT_TTL",
    "GCRA",
    "HOLD_SECONDS",
    "MAX_HOLD",
    "MAX_SLOTS_AHEAD",
    "OVERRIDES_KEY",
    "OVERRIDE_REFRESH_SECONDS",
    "STARTS_KEY",
    "UNAVAILABLE_RETRY_SECONDS",
    "WARNING_INTERVAL_SECONDS",
    "Acquired",
    "RateLimitExceeded",
    "RateLimitStep",
    "RateLimiter",
    "acquire",
    "hold_capacity",
    "slots_ahead",
    "take_slots",
]
