"""Per-queue rate limits shared by every worker on every host, enforced inside the worker.

Celery's own ``rate_limit`` is per task type and per worker: four workers with ``10/m``
let 40 through. Here one budget per queue lives in the shared state and every worker
process draws from it with one atomic GCRA decision (a Lua script on Redis ``TIME``, or
one SQLite transaction): evenly spaced starts, ``jobs_rate_limit_burst`` back to back
after an idle period, never a fixed per-minute window that lets twice the limit through
around the minute boundary.

Enforcement sits in the worker's consumer, between receiving a message and handing it to
the pool (:class:`RateLimitStep` wraps ``consumer.on_task_request``, which both fresh
messages and ETA tasks reach). A request over the limit is held, unacknowledged, in the
consumer's timer until its slot comes, like Celery's own per-task buckets. Each held
request raises the worker's prefetch by one, so other queues keep flowing; once a queue
holds :func:`hold_capacity` requests (the worker's prefetch count, or three seconds of
the queue's budget if that is more) the worker stops consuming from it, and starts again
when half of them have run, so a throttled queue's unacknowledged messages stay bounded
however deep its backlog. (Not pausing at the first held request matters on Redis:
re-adding a queue waits out the transport's one-second ``BRPOP``.) Nothing is lost (the
broker redelivers unacknowledged messages), duplicated, retried or dead-lettered, and no
slot is reserved while waiting.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celery import bootsteps

from celery_jobs_ext.config import ConfigCache
from celery_jobs_ext.errors import InvalidRate
from celery_jobs_ext.errors import RateLimitExceeded as RateLimitExceeded
from celery_jobs_ext.queues import QueueResolver, resolver_for
from celery_jobs_ext.rates import parse_rate
from celery_jobs_ext.state import Acquired, StateBackend, execute_with_riders, get_state

if TYPE_CHECKING:
    from celery import Celery

logger = logging.getLogger(__name__)

#: Shared-state keys: the GCRA budget, the per-second start counters, run-time overrides.
BUDGET_KEY = "rl:budget:{queue}"
STARTS_KEY = "rl:starts:{queue}"
OVERRIDES_KEY = "rl:overrides"

#: How often a worker re-reads the run-time overrides (``jobs-ratelimit set``).
OVERRIDE_REFRESH_SECONDS = 2.0
#: How long a worker in ``wait`` mode waits before asking an unreachable state again.
UNAVAILABLE_RETRY_SECONDS = 1.0
#: At most one "state unreachable" warning per this many seconds.
WARNING_INTERVAL_SECONDS = 60.0
#: Seconds of a queue's budget a worker may hold before it pauses consuming from the queue.
HOLD_SECONDS = 3.0
#: Upper bound of held requests per queue, whatever the rate.
MAX_HOLD = 200
#: A fast queue's worker takes the slots due in the next this many seconds in one round trip
#: and starts those jobs up to this early: the price of not asking once per job.
AHEAD_SECONDS = 0.05
#: Upper bound of slots taken in one round trip.
MAX_SLOTS_AHEAD = 32


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


def hold_capacity(per_minute: float, prefetch: int) -> int:
    """How many throttled requests of one queue a worker holds before pausing that queue."""
    return max(prefetch, 1, min(MAX_HOLD, math.ceil(per_minute / 60.0 * HOLD_SECONDS)))


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
        result = self.state.acquire(
            BUDGET_KEY.format(queue=queue), 60.0 / per_minute, burst, count_key=STARTS_KEY.format(queue=queue)
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


def _redis_visibility_timeout(app: Any) -> float | None:
    """The Redis transport's ``visibility_timeout`` (seconds), or None for other brokers."""
    url = str(app.conf.broker_url or "")
    if not url.startswith(("redis", "rediss", "sentinel")):
        return None
    options = app.conf.broker_transport_options or {}
    return float(options.get("visibility_timeout", 3600))


def _per_minute(limit: float) -> str:
    return f"{limit:g}"


# -- the worker hook --------------------------------------------------------------


class _QueueGate:
    """One queue's state in a worker: held requests, the pause, and slots taken ahead.

    Slots ahead: a queue whose limit allows more than one job per :data:`AHEAD_SECONDS`
    takes up to ``want`` slots per round trip and hands them out locally until they are
    used or :data:`AHEAD_SECONDS` old. ``want`` starts at 1, doubles while every batch is
    used up in time, and drops to what was used when slots expire, so a worker that sees
    a queue's jobs only now and then takes one slot at a time and wastes none of the budget
    that other workers share.
    """

    __slots__ = ("granted", "held", "paused", "scheduled", "slots", "slots_until", "want")

    def __init__(self) -> None:
        self.held: deque[Any] = deque()
        self.paused = False
        self.scheduled = False
        self.slots = 0
        self.slots_until = -math.inf
        self.granted = 0
        self.want = 1

    def take_slot(self, now: float) -> bool:
        """Use a slot taken ahead, if one is left and fresh."""
        if self.slots and now < self.slots_until:
            self.slots -= 1
            return True
        return False

    def next_batch(self, cap: int) -> int:
        """How many slots to ask for next, from how the last batch went."""
        if self.granted:
            used = self.granted - self.slots
            self.want = min(cap, self.want * 2) if self.slots == 0 else max(1, used)
        self.slots = 0
        return max(1, min(self.want, cap))


def slots_ahead(per_minute: float) -> int:
    """The most slots one round trip takes for a queue limited to ``per_minute`` jobs."""
    return max(1, min(MAX_SLOTS_AHEAD, math.floor(per_minute / 60.0 * AHEAD_SECONDS)))


class RateLimitStep(bootsteps.StartStopStep):
    """Consumer bootstep: gate GuardedTask requests of rate-limited queues on the shared budget.

    It wraps ``consumer.on_task_request`` when the consumer is built, before Celery creates
    its task strategies (which capture that callable), so every request on its way to the
    pool passes through :meth:`gate`: fresh messages, and ETA tasks when their time comes.
    """

    label = "celery-jobs-ext rate limits"
    requires = ("celery.worker.consumer.tasks:Tasks",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.consumer = parent
        self.limiter = RateLimiter(parent.app)
        self.gates: dict[str, _QueueGate] = {}
        self.limits: dict[str, float] = {}
        self.burst = 1
        self.on_error = "allow"
        self._resolve = QueueResolver(())
        self._down_until = -math.inf
        self._visibility_timeout: float | None = None
        self._refresh_timer: Any = None
        self.handle: Callable[[Any], Any] = parent.on_task_request
        parent.on_task_request = self.gate

    # -- life cycle ------------------------------------------------------------

    def start(self, parent: Any) -> None:
        config = ConfigCache.get(parent.app)
        self.burst = config.rate_limit_burst
        self.on_error = config.rate_limit_on_error
        self.gates.clear()
        self._visibility_timeout = _redis_visibility_timeout(parent.app)
        self._resolve = resolver_for(parent.app)
        self._refresh_limits()
        self._refresh_timer = parent.timer.call_repeatedly(OVERRIDE_REFRESH_SECONDS, self._refresh_limits)

    def stop(self, parent: Any) -> None:
        # Held requests are never acked: the broker gives their messages back.
        if self._refresh_timer is not None:
            self._refresh_timer.cancel()
            self._refresh_timer = None
        self.gates.clear()

    def _refresh_limits(self) -> None:
        """Timer callback: configured limits plus the run-time overrides from the state.

        While the state is failing, the last known overrides stay in force.
        """
        config = ConfigCache.get(self.consumer.app)
        limits = dict(config.queue_rate_limits)
        if time.monotonic() < self._down_until:
            limits.update({q: v for q, v in self.limits.items() if q not in limits})
            self.limits = limits
            return
        try:
            for queue, limit in self.limiter.overrides().items():
                if limit > 0:
                    limits[queue] = limit
                else:
                    limits.pop(queue, None)
        except Exception as exc:  # never let a timer callback take the consumer down
            self._down_until = time.monotonic() + UNAVAILABLE_RETRY_SECONDS
            self._warn(exc)
            limits.update({q: v for q, v in self.limits.items() if q not in limits})
        self.limits = limits

    # -- the gate ----------------------------------------------------------------

    def queue_of(self, request: Any) -> str:
        """The queue a request's message came from (see :mod:`celery_jobs_ext.queues`)."""
        return self._resolve(request.delivery_info)

    def gate(self, request: Any) -> Any:
        """Hand ``request`` to the pool now, or hold it until its queue's budget allows."""
        if not self.limits or not getattr(request.task, "jobs_guarded", False):
            return self.handle(request)
        queue = self.queue_of(request)
        limit = self.limits.get(queue)
        if not limit:
            return self.handle(request)
        gate = self.gates.get(queue)
        if gate is None:
            gate = self.gates[queue] = _QueueGate()
        if gate.held:  # keep arrival order: others are already waiting
            self._hold(queue, gate, request, limit)
            return None
        retry_after = self._decide(queue, gate, limit)
        if retry_after is None:
            return self.handle(request)
        self._hold(queue, gate, request, limit)
        self._schedule(queue, gate, retry_after)
        return None

    def _decide(self, queue: str, gate: _QueueGate, limit: float) -> float | None:
        """None when a slot was taken; else seconds to wait.

        A slot taken ahead costs nothing; otherwise one round trip asks for the next batch.
        After a failure the state is left alone for a second and the
        ``jobs_rate_limit_on_error`` policy applies locally: a store that hangs
        must not block the event loop once per task.
        """
        now = time.monotonic()
        if gate.take_slot(now):
            return None
        if now < self._down_until:
            return None if self.on_error == "allow" else UNAVAILABLE_RETRY_SECONDS
        most = gate.next_batch(slots_ahead(limit))
        try:
            # One round trip: the decision, plus any metric increments due to be written.
            batch = self.limiter.state.batch().acquire(
                BUDGET_KEY.format(queue=queue),
                60.0 / limit,
                self.burst,
                count_key=STARTS_KEY.format(queue=queue),
                most=most,
                ahead=AHEAD_SECONDS,
            )
            result: Acquired = execute_with_riders(self.consumer.app, batch)[0]
        except Exception as exc:  # StateUnavailable, or anything else: never crash the consumer
            gate.granted = 0  # nothing was taken: not a batch used up
            self._down_until = time.monotonic() + UNAVAILABLE_RETRY_SECONDS
            self._warn(exc)
            return None if self.on_error == "allow" else UNAVAILABLE_RETRY_SECONDS
        self.limiter.note_repaired(queue, result)
        if not result.allowed:
            gate.granted = 0
            return max(result.retry_after, 0.001)
        gate.granted = result.granted
        gate.slots = result.granted - 1
        gate.slots_until = now + AHEAD_SECONDS
        return None

    def _hold(self, queue: str, gate: _QueueGate, request: Any, limit: float) -> None:
        gate.held.append(request)
        # One more prefetch slot per held request, so other queues keep flowing.
        self.consumer.qos.increment_eventually()
        if not gate.paused and len(gate.held) >= self._capacity(limit):
            self._pause(queue, gate)

    def _capacity(self, limit: float) -> int:
        capacity = hold_capacity(limit, int(self.consumer.initial_prefetch_count or 0))
        if self._visibility_timeout is not None and limit > 0:
            # On Redis an unacked message comes back after visibility_timeout: never hold
            # more than half of that timeout's worth of budget, or a held task would run twice.
            capacity = min(capacity, max(1, math.floor(self._visibility_timeout / 2 * limit / 60.0)))
        return capacity

    def _schedule(self, queue: str, gate: _QueueGate, delay: float) -> None:
        if not gate.scheduled:
            gate.scheduled = True
            self.consumer.timer.call_after(delay, self._release, (queue,), priority=5)

    def _release(self, queue: str) -> None:
        """Timer callback: start held requests while the budget allows, then wait again."""
        gate = self.gates.get(queue)
        if gate is None:
            return
        gate.scheduled = False
        while gate.held:
            limit = self.limits.get(queue)
            retry_after = self._decide(queue, gate, limit) if limit else None
            if retry_after is not None:
                self._schedule(queue, gate, retry_after)
                return
            request = gate.held.popleft()
            self.consumer.qos.decrement_eventually()
            self.handle(request)
            if gate.paused and len(gate.held) <= self._capacity(limit or 0) // 2:
                self._resume(queue, gate)
        if gate.paused:
            self._resume(queue, gate)

    def _pause(self, queue: str, gate: _QueueGate) -> None:
        consumer = self.consumer.task_consumer
        if consumer is not None and consumer.consuming_from(queue):
            consumer.cancel_by_queue(queue)
            gate.paused = True

    def _resume(self, queue: str, gate: _QueueGate) -> None:
        gate.paused = False
        consumer = self.consumer.task_consumer
        declared = self.consumer.app.amqp.queues.consume_from.get(queue)
        if consumer is not None and declared is not None and not consumer.consuming_from(queue):
            consumer.add_queue(declared)
            consumer.consume()

    def _warn(self, exc: Exception) -> None:
        self.limiter.warnings.warn(
            "unavailable",
            "Rate limits: shared state unavailable (%s); jobs_rate_limit_on_error=%r: %s until it is back",
            exc,
            self.on_error,
            "starting tasks without limits" if self.on_error == "allow" else "holding rate-limited tasks",
        )
