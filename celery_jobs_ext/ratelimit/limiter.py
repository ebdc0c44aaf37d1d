"""The cluster-wide budget of each queue: limits, overrides, decisions and usage.

:class:`RateLimiter` is what operators and the health report use (``jobs-ratelimit``,
``allow``/``throttle`` in code); the worker's gate is :mod:`.worker`, the algorithm
:mod:`.gcra`.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

from celery_jobs_ext.config import ConfigCache
from celery_jobs_ext.errors import InvalidRate, RateLimitExceeded
from celery_jobs_ext.ratelimit.gcra import Acquired, acquire
from celery_jobs_ext.rates import parse_rate
from celery_jobs_ext.state import StateBackend, get_state

if TYPE_CHECKING:
    from celery import Celery

logger = logging.getLogger("celery_jobs_ext.ratelimit")

#: Shared-state keys: the GCRA budget, the per-second start counters, run-time overrides.
BUDGET_KEY = "rl:budget:{queue}"
STARTS_KEY = "rl:starts:{queue}"
OVERRIDES_KEY = "rl:overrides"

#: How often a worker re-reads the run-time overrides (``jobs-ratelimit set``).
OVERRIDE_REFRESH_SECONDS = 2.0
#: At most one "state unreachable" warning per this many seconds.
WARNING_INTERVAL_SECONDS = 60.0


class _Warnings:
    """At most one warning per key per :data:`WARNING_INTERVAL_SECONDS`.

    A bad value in the shared state is read again every couple of seconds by every worker:
    one line a minute says it, a line per read would bury everything else in the log.
    """

    def __init__(self) -> None:
        self._last: dict[str, float] = {}

    def warn(self, key: str, message: str, *args: Any) -> None:
        now = time.monotonic()
        if now - self._last.get(key, -math.inf) >= WARNING_INTERVAL_SECONDS:
            self._last[key] = now
            logger.warning(message, *args)


#: One per process: every limiter and worker step of a process shares the interval.
_WARNINGS = _Warnings()


def _cut(value: object, size: int = 40) -> str:
    text = str(value)
    return text if len(text) <= size else text[: size - 3] + "..."


class RateLimiter:
    """The cluster-wide budget of each queue, in jobs per minute.

    The limit of a queue is a run-time override (``set_limit``, the ``jobs-ratelimit``
    command) if one is stored, else ``jobs_queue_rate_limits``; 0 or missing: no limit.
    """

    def __init__(self, app: Celery, state: StateBackend | None = None) -> None:
        self.app = app
        self._state = state
        self._overrides: dict[str, float] = {}
        self._overrides_read = -math.inf
        self.warnings = _WARNINGS

    @property
    def state(self) -> StateBackend:
        return self._state if self._state is not None else get_state(self.app)

    # -- limits -----------------------------------------------------------------

    def configured_limit(self, queue: str) -> float:
        """Jobs per minute from ``jobs_queue_rate_limits`` (0: none)."""
        return ConfigCache.get(self.app).queue_rate_limits.get(queue, 0.0)

    def overrides(self, max_age: float = 0.0) -> dict[str, float]:
        """Run-time overrides from the shared state, re-read when older than ``max_age`` seconds."""
        now = time.monotonic()
        if now - self._overrides_read >= max_age:
            raw = self.state.hgetall_text(OVERRIDES_KEY)
            overrides: dict[str, float] = {}
            for queue, text in raw.items():
                try:
                    overrides[queue] = parse_rate(text)
                except InvalidRate as exc:
                    # Never trust the store: a value written by hand, by an older version or by
                    # anything else is ignored, and the configured limit applies.
                    self.warnings.warn(
                        f"override:{queue}",
                        "Rate limits: ignoring the stored override of queue %r: %s The configured "
                        "limit applies; fix it with: celery jobs-ratelimit set|unset %s",
                        _cut(queue),
                        exc,
                        _cut(queue),
                    )
            self._overrides = overrides
            self._overrides_read = now
        return self._overrides

    def note_repaired(self, queue: str, result: Acquired) -> None:
        """Log (once per interval) that ``queue``'s stored budget was unusable and was replaced."""
        if result.repaired:
            self.warnings.warn(
                f"budget:{queue}",
                "Rate limits: the stored budget of queue %r was not usable and was reset "
                "(as if the queue had been idle); the limit applies from now on.",
                _cut(queue),
            )

    def effective_limit(self, queue: str, max_age: float = 0.0) -> tuple[float, str]:
        """``(jobs per minute, source)``, source being ``override``, ``config`` or ``none``."""
        override = self.overrides(max_age).get(queue)
        if override is not None:
            return override, "override"
        configured = self.configured_limit(queue)
        return configured, "config" if configured else "none"

    def set_limit(self, queue: str, limit: Any) -> float:
        """Store a run-time limit every worker picks up within a few seconds; 0 means unlimited.

        Raises:
            InvalidRate: (a ``ValueError``) ``limit`` is not a rate :func:`parse_rate` accepts.
            ValueError: ``queue`` is empty.
        """
        if not isinstance(queue, str) or not queue.strip():
            raise ValueError(f"queue must be a non-empty name, not {queue!r}")
        per_minute = parse_rate(limit)
        self.state.hset(OVERRIDES_KEY, {queue: repr(per_minute)})
        self._overrides_read = -math.inf
        return per_minute

    def unset_limit(self, queue: str) -> bool:
        """Drop the run-time limit of ``queue`` (back to the configured one); True if one was set."""
        self._overrides_read = -math.inf
        return self.state.hdel(OVERRIDES_KEY, [queue]) > 0

    # -- decisions --------------------------------------------------------------

    def allow(self, queue: str, limit: float | None = None) -> bool:
        """Take a slot for one job on ``queue`` if the limit allows it now; True when taken."""
        return self._acquire(queue, limit)[0]

    def throttle(self, queue: str, limit: float | None = None) -> None:
        """Take a slot, or raise :class:`RateLimitExceeded` with ``retry_after`` seconds."""
        allowed, retry_after, per_minute = self._acquire(queue, limit)
        if not allowed:
            raise RateLimitExceeded(queue, per_minute, retry_after)

    def _acquire(self, queue: str, limit: float | None) -> tuple[bool, float, float]:
        # Overrides are re-read at most every few seconds, as the workers do: one round trip
        # per decision, not two.
        per_minute = (
            self.effective_limit(queue, max_age=OVERRIDE_REFRESH_SECONDS)[0]
            if limit is None
            else float(limit)
        )
        if per_minute <= 0:
            return True, 0.0, 0.0
        burst = ConfigCache.get(self.app).rate_limit_burst
        result = acquire(
            self.state,
            BUDGET_KEY.format(queue=queue),
            60.0 / per_minute,
            burst,
            count_key=STARTS_KEY.format(queue=queue),
        )
        self.note_repaired(queue, result)
        return result.allowed, result.retry_after, per_minute

    def usage(self, queue: str) -> int:
        """Slots taken on ``queue`` in the last 60 seconds (by the shared state's clock).

        That is jobs started, plus on a fast queue the few slots a worker took ahead and
        had not used yet (or let expire).
        """
        return self.usage_many([queue])[queue]

    def usage_many(self, queues: list[str]) -> dict[str, int]:
        """:meth:`usage` of several queues in one round trip (plus one for the clock)."""
        now = math.floor(self.state.now())
        seconds = range(now - 59, now + 1)
        keys = [f"{STARTS_KEY.format(queue=queue)}:{second}" for queue in queues for second in seconds]
        counts = self.state.get_counters(keys) if keys else []
        return {queue: sum(counts[i * 60 : (i + 1) * 60]) for i, queue in enumerate(queues)}

    def reset(self, queue: str) -> None:
        """Forget the budget and the start counts of ``queue`` (the next job starts at once)."""
        now = math.floor(self.state.now())
        starts = STARTS_KEY.format(queue=queue)
        self.state.delete(
            [BUDGET_KEY.format(queue=queue)] + [f"{starts}:{s}" for s in range(now - 120, now + 2)]
        )
