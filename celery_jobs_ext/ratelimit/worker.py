"""The worker's gate: requests of a limited queue wait for a slot of the shared budget.

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
from typing import Any

from celery import bootsteps

from celery_jobs_ext.config import ConfigCache
from celery_jobs_ext.queues import QueueResolver, resolver_for
from celery_jobs_ext.ratelimit.gcra import Acquired, take_slots
from celery_jobs_ext.ratelimit.limiter import (
    BUDGET_KEY,
    OVERRIDE_REFRESH_SECONDS,
    STARTS_KEY,
    RateLimiter,
)
from celery_jobs_ext.state import execute_with_riders

#: How long a worker in ``wait`` mode waits before asking an unreachable state again.
UNAVAILABLE_RETRY_SECONDS = 1.0
#: At most one "queue throttled" line per queue per this many seconds (INFO).
THROTTLE_LOG_SECONDS = 30.0

logger = logging.getLogger("celery_jobs_ext.ratelimit")
#: Seconds of a queue's budget a worker may hold before it pauses consuming from the queue.
HOLD_SECONDS = 3.0
#: Upper bound of held requests per queue, whatever the rate.
MAX_HOLD = 200
#: A fast queue's worker takes the slots due in the next this many seconds in one round trip
#: and starts those jobs up to this early: the price of not asking once per job.
AHEAD_SECONDS = 0.05
#: Upper bound of slots taken in one round trip.
MAX_SLOTS_AHEAD = 32


def hold_capacity(per_minute: float, prefetch: int) -> int:
    """How many throttled requests of one queue a worker holds before pausing that queue."""
    return max(prefetch, 1, min(MAX_HOLD, math.ceil(per_minute / 60.0 * HOLD_SECONDS)))


def _redis_visibility_timeout(app: Any) -> float | None:
    """The Redis transport's ``visibility_timeout`` (seconds), or None for other brokers."""
    url = str(app.conf.broker_url or "")
    if not url.startswith(("redis", "rediss", "sentinel")):
        return None
    options = app.conf.broker_transport_options or {}
    return float(options.get("visibility_timeout", 3600))


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

    __slots__ = ("granted", "held", "logged_at", "paused", "scheduled", "slots", "slots_until", "want")

    def __init__(self) -> None:
        self.held: deque[Any] = deque()
        self.logged_at = -math.inf
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
        self._note_throttled(queue, gate, limit)
        return None

    def _note_throttled(self, queue: str, gate: _QueueGate, limit: float) -> None:
        """Say in the log that ``queue`` is at its limit: at most once per interval, at INFO.

        Without it a throttled queue looks like a stuck one: tasks wait and nothing says why.
        """
        now = time.monotonic()
        if now - gate.logged_at < THROTTLE_LOG_SECONDS:
            return
        gate.logged_at = now
        logger.info(
            "Rate limited: queue %r is at its limit of %g jobs a minute; %d message(s) held "
            "until its budget allows",
            queue,
            limit,
            len(gate.held),
        )

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
            batch = take_slots(
                self.limiter.state.batch(),
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
                self._note_throttled(queue, gate, limit or 0.0)
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
