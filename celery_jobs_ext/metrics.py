"""Per-queue task metrics, recorded by every worker into the shared state, read by ``jobs-health``.

What is counted, per delivery queue: ``started``, ``succeeded``, ``failed`` (for good: the
task will not run again), ``retried``, ``timed_out``, ``dead_lettered``, and the duration of
each finished run (``duration_sum`` / ``duration_count``). Each count goes to a per-minute
bucket (kept 25 hours), an hourly roll-up of the same buckets (so "the last 24 hours" is
about 140 hashes to read, not 1,440) and a lifetime total.

Where it is recorded: in the worker's main process, from the request's life-cycle
callbacks, as an outcome listener (:class:`MetricsListener`), which run in the parent for prefork and
in-process for solo and threads. A pool child killed mid-task therefore loses no count:
its parent sees the lost worker and records it.

The hot-path budget: recording a task costs a few dictionary updates in memory, never a
round trip. Increments are buffered per process and written in one batch by a background
thread every :data:`FLUSH_SECONDS` (a thread, not the consumer's timer, because a solo
worker runs its task on the consumer's loop and would stop heartbeating during a long
task). Where a rate limit already makes a round trip (per task, or per batch of slots), the
limiter sends pending increments with its decision (the recorder rides along in
:func:`~celery_jobs_ext.state.execute_with_riders`) once they are at least
:data:`PIGGYBACK_AFTER` old, so on a busy limited queue the writes ride along about twice a
second without costing another round trip, and without making every decision carry them.

The same thread writes a heartbeat every :data:`HEARTBEAT_SECONDS`: the worker's name, the
queues it consumes and its in-flight count per queue. It expires after
:data:`HEARTBEAT_TTL`, so a killed worker's in-flight tasks stop counting as processing.

Guarantees and limits:

- Counts lag by up to :data:`FLUSH_SECONDS`; ``processing`` by up to :data:`HEARTBEAT_SECONDS`.
- A failed write never fails a task: the counts stay buffered (at most 25 hours of minute
  buckets) for the next flush, and a warning is logged at most once a minute.
- A SIGKILLed worker main process loses at most one flush interval of counts.
- Minute buckets follow the worker's clock; hosts with skewed clocks shift counts between
  neighbouring minutes, which matters only at the edges of the 24-hour window.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from celery import bootsteps
from celery.signals import worker_process_shutdown

from celery_jobs_ext.config import ConfigCache
from celery_jobs_ext.extension import existing_extension, extension_for
from celery_jobs_ext.outcome import (
    FAILED,
    REJECTED,
    RETRYING,
    SUCCEEDED,
    OutcomeListener,
    RunOutcome,
    unwrap_pool_exception,
)
from celery_jobs_ext.queues import QueueResolver, resolver_for
from celery_jobs_ext.state import Batch, Op, execute_with_riders, get_state

if TYPE_CHECKING:
    from celery import Celery

__all__ = [
    "COUNTERS",
    "FIELDS",
    "MetricsListener",
    "MetricsStep",
    "Recorder",
    "execute_with_metrics",
    "last_24h_keys",
    "read_heartbeats",
    "record",
    "split_fields",
    "unwrap_pool_exception",
]

logger = logging.getLogger(__name__)

#: The events counted per queue; ``record()`` accepts these.
COUNTERS = ("started", "succeeded", "failed", "retried", "timed_out", "dead_lettered")
#: Every field a bucket holds: the counters plus the durations of finished runs.
FIELDS = (*COUNTERS, "duration_sum", "duration_count")

#: Shared-state keys. Bucket fields are ``"<field>:<queue>"``, so one hash holds every queue.
TOTALS_KEY = "metrics:total"
MINUTE_KEY = "metrics:minute:{minute}"
HOUR_KEY = "metrics:hour:{hour}"
WORKERS_KEY = "metrics:workers"

#: Minute buckets are kept 25 hours; hourly roll-ups long enough to cover their last minute + 24 h.
MINUTE_TTL = 25 * 3600
HOUR_TTL = 26 * 3600
#: How often the background thread writes buffered counts.
FLUSH_SECONDS = 1.0
#: Pending counts at least this old ride along with a rate-limit decision.
PIGGYBACK_AFTER = 0.5
#: How often a worker writes its heartbeat, and how long one stays live (three beats).
HEARTBEAT_SECONDS = 2.0
HEARTBEAT_TTL = 3 * HEARTBEAT_SECONDS
#: At most this many minutes of counts are kept while the shared state is unreachable.
MAX_BUFFERED_MINUTES = 25 * 60
#: At most one "could not write metrics" warning per this many seconds.
WARNING_INTERVAL_SECONDS = 60.0
#: An in-flight entry Celery no longer lists as active is dropped after this long (a safety net).
RECONCILE_GRACE_SECONDS = 5.0

_registry_lock = threading.Lock()
_apps_with_recorders: weakref.WeakSet[Any] = weakref.WeakSet()

#: Buffered increments: minute -> {(field, queue): amount}, and lifetime totals.
_Minutes = dict[int, dict[tuple[str, str], float]]
_Totals = dict[tuple[str, str], float]
_Taken = tuple[_Minutes, _Totals]


class Recorder:
    """One process's buffer of metric increments for one app, and its flusher thread.

    Thread-safe: prefork and solo call it from the consumer's thread, the threads pool from
    its worker threads, the flusher from its own.
    """

    def __init__(self, app: Celery) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._minutes: _Minutes = {}
        self._totals: _Totals = {}
        self._pending_since: float | None = None
        self._in_flight: dict[Any, tuple[str, float]] = {}
        self.queue_of: Callable[[Mapping[str, Any] | None], str] = QueueResolver(())
        self._hostname: str | None = None
        self._consumed: Callable[[], Iterable[str]] = tuple
        self._last_heartbeat = -math.inf
        self._last_warning = -math.inf
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    # -- the hot path: memory only ---------------------------------------------------

    def add(self, queue: str, fields: Mapping[str, float]) -> None:
        """Count ``fields`` (field name -> amount) for ``queue`` in this minute."""
        with self._lock:
            self._add(queue, fields)

    def task_started(self, request: Any, finished: bool = False) -> None:
        """The pool accepted a request: count it started, and in flight unless already ``finished``.

        Prefork can report the acceptance after the result ("ack received after set").
        """
        queue = self.queue_of(request.delivery_info)
        with self._lock:
            if not finished:
                self._in_flight[request] = (queue, time.monotonic())
            self._add(queue, {"started": 1})

    def task_finished(self, request: Any, outcome: tuple[str, ...], runtime: float | None = None) -> None:
        """A request ended with ``outcome`` (the counters to add; empty: it will run again)."""
        with self._lock:
            entry = self._in_flight.pop(request, None)
            queue = entry[0] if entry is not None else self.queue_of(request.delivery_info)
            if not outcome:
                return
            fields: dict[str, float] = dict.fromkeys(outcome, 1)
            if "succeeded" in outcome or "failed" in outcome:
                if runtime is None and entry is not None:
                    runtime = time.monotonic() - entry[1]
                if runtime is not None:
                    fields["duration_sum"] = float(runtime)
                    fields["duration_count"] = 1
            self._add(queue, fields)

    def _add(self, queue: str, fields: Mapping[str, float]) -> None:
        minute = int(time.time() // 60)
        bucket = self._minutes.get(minute)
        if bucket is None:
            bucket = self._minutes[minute] = {}
        totals = self._totals
        for field, amount in fields.items():
            key = (field, queue)
            bucket[key] = bucket.get(key, 0) + amount
            totals[key] = totals.get(key, 0) + amount
        if self._pending_since is None:
            self._pending_since = time.monotonic()

    # -- writing -----------------------------------------------------------------------

    def drain_into(self, batch: Batch) -> _Taken | None:
        """Move the buffered increments into ``batch`` (after its own operations).

        Returns what was taken, for :meth:`put_back` should the batch fail; None when
        nothing was pending.
        """
        taken = self._take()
        if taken is not None:
            batch.ops.extend(_increment_ops(*taken))
        return taken

    def put_back(self, taken: _Taken) -> None:
        """Return increments whose write failed to the buffer, for the next flush."""
        minutes, totals = taken
        oldest_useful = int(time.time() // 60) - MAX_BUFFERED_MINUTES
        with self._lock:
            for minute, fields in minutes.items():
                if minute <= oldest_useful:
                    continue  # already past its bucket's lifetime
                bucket = self._minutes.setdefault(minute, {})
                for key, amount in fields.items():
                    bucket[key] = bucket.get(key, 0) + amount
            for key, amount in totals.items():
                self._totals[key] = self._totals.get(key, 0) + amount
            for minute in sorted(self._minutes)[:-MAX_BUFFERED_MINUTES]:
                del self._minutes[minute]
            if self._pending_since is None and (self._minutes or self._totals):
                self._pending_since = time.monotonic()

    def ride_along(self, batch: Batch) -> _Taken | None:
        """Move pending increments into another feature's ``batch`` once they are due.

        Due means at least :data:`PIGGYBACK_AFTER` old, so a busy limited queue carries
        them about twice a second rather than with every decision. Returns what was taken
        (for :meth:`put_back`), or None.
        """
        since = self._pending_since
        if since is None or time.monotonic() - since < PIGGYBACK_AFTER:
            return None
        return self.drain_into(batch)

    def flush(self, final: bool = False) -> bool:
        """Write buffered increments, and the heartbeat when due, in one round trip.

        Never raises: a failure keeps the increments for the next flush. ``final`` also
        removes this worker's heartbeat (a clean shutdown). Returns True on success.
        """
        taken = self._take()
        ops = _increment_ops(*taken) if taken is not None else []
        beat = False
        if self._hostname is not None:
            if final:
                ops.append(Op("put_expiring", (WORKERS_KEY, self._hostname, "", 0)))
            elif time.monotonic() - self._last_heartbeat >= HEARTBEAT_SECONDS:
                ops.append(
                    Op("put_expiring", (WORKERS_KEY, self._hostname, self._heartbeat(), HEARTBEAT_TTL))
                )
                beat = True
        if not ops:
            return True
        try:
            get_state(self.app).execute(ops)
        except Exception as exc:  # a metrics write must never take the worker down
            if taken is not None:
                self.put_back(taken)
            self.warn(exc)
            return False
        if beat:
            self._last_heartbeat = time.monotonic()
        return True

    def _take(self) -> _Taken | None:
        with self._lock:
            if not self._minutes and not self._totals:
                return None
            taken = (self._minutes, self._totals)
            self._minutes, self._totals, self._pending_since = {}, {}, None
        return taken

    def warn(self, exc: BaseException) -> None:
        """Log a recording or writing problem, at most once a minute."""
        now = time.monotonic()
        if now - self._last_warning >= WARNING_INTERVAL_SECONDS:
            self._last_warning = now
            logger.warning(
                "Metrics: could not record or write task counts (%s); tasks are unaffected, "
                "counts stay buffered for the next attempt",
                exc,
            )

    # -- the worker's heartbeat ----------------------------------------------------

    def serve_worker(
        self, hostname: str, resolver: QueueResolver, consumed: Callable[[], Iterable[str]]
    ) -> None:
        """Act as this worker's recorder: map deliveries to queues and heartbeat as ``hostname``."""
        self.queue_of = resolver
        self._consumed = consumed
        self._hostname = hostname
        self._last_heartbeat = -math.inf

    def in_flight(self) -> dict[str, int]:
        """Requests accepted and not finished, per queue."""
        self._reconcile()
        counts: dict[str, int] = {}
        with self._lock:
            for queue, _ in self._in_flight.values():
                counts[queue] = counts.get(queue, 0) + 1
        return counts

    def _heartbeat(self) -> str:
        return json.dumps(
            {
                "hostname": self._hostname,
                "pid": os.getpid(),
                "queues": sorted(self._consumed()),
                "processing": self.in_flight(),
                "sent_at": time.time(),
            },
            sort_keys=True,
        )

    def _reconcile(self) -> None:
        """Drop in-flight entries Celery itself has finished with (a path no callback reported)."""
        from celery.worker.state import active_requests

        try:
            active = set(active_requests)
        except RuntimeError:  # changed size while another thread accepted a task: next time
            return
        limit = time.monotonic() - RECONCILE_GRACE_SECONDS
        with self._lock:
            for request in [r for r, (_, at) in self._in_flight.items() if at < limit and r not in active]:
                del self._in_flight[request]

    # -- the flusher thread ----------------------------------------------------------

    def ensure_flushing(self) -> None:
        """Start the background flusher of this process, once."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._stopping.clear()
            self._thread = threading.Thread(target=self._run, name="celery-jobs-ext-metrics", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            self.flush()
            if self._stopping.wait(FLUSH_SECONDS):
                return

    def close(self) -> None:
        """Stop the flusher, write what is left and remove the heartbeat (clean shutdown)."""
        thread = self._thread
        self._stopping.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(5.0)
        self._thread = None
        self.flush(final=True)
        self._hostname = None


def _increment_ops(minutes: _Minutes, totals: _Totals) -> list[Op]:
    """One ``hincr`` per minute bucket and per hour roll-up touched, and one for the totals."""
    ops: list[Op] = []
    hours: dict[int, dict[str, float]] = {}
    for minute, fields in sorted(minutes.items()):
        named = {f"{field}:{queue}": amount for (field, queue), amount in fields.items()}
        ops.append(Op("hincr", (MINUTE_KEY.format(minute=minute), named, MINUTE_TTL)))
        hour = hours.setdefault(minute // 60, {})
        for name, amount in named.items():
            hour[name] = hour.get(name, 0) + amount
    for number, named in hours.items():
        ops.append(Op("hincr", (HOUR_KEY.format(hour=number), named, HOUR_TTL)))
    if totals:
        named = {f"{field}:{queue}": amount for (field, queue), amount in totals.items()}
        ops.append(Op("hincr", (TOTALS_KEY, named, None)))
    return ops


# -- per process, per app --------------------------------------------------------------


def recorder_for(app: Celery, create: bool = True) -> Recorder | None:
    """This process's recorder for ``app``; None when ``create`` is False and there is none."""
    recorder = _existing_recorder(app)
    if recorder is None and create:
        extension = extension_for(app)
        with _registry_lock:
            recorder = extension.recorder
            if recorder is None:
                recorder = extension.recorder = Recorder(app)
                extension.riders.append(recorder)
                _apps_with_recorders.add(app)
    return recorder


def _existing_recorder(app: Any) -> Recorder | None:
    """This process's recorder for ``app`` if there is one (hot path: creates nothing)."""
    extension = existing_extension(app)
    return extension.recorder if extension is not None else None


def _forget_recorders() -> None:
    """In a forked child: the parent's buffer, lock and thread are not ours."""
    global _registry_lock
    _registry_lock = threading.Lock()
    for app in list(_apps_with_recorders):
        extension = existing_extension(app)
        if extension is not None:
            extension.riders = [rider for rider in extension.riders if rider is not extension.recorder]
            extension.recorder = None
    _apps_with_recorders.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_recorders)


def _close_all() -> None:
    for app in list(_apps_with_recorders):
        recorder = _existing_recorder(app)
        if recorder is not None:
            recorder.close()


@worker_process_shutdown.connect(weak=False, dispatch_uid="celery_jobs_ext.metrics.flush_child")
def _flush_pool_process(**kwargs: Any) -> None:
    """Write what a pool process recorded with :func:`record` before it exits.

    Pool processes leave through ``os._exit``, so ``atexit`` does not run there.
    Celery logs and swallows exceptions raised here; :meth:`Recorder.flush` raises none.
    """
    _close_all()


atexit.register(_close_all)


def record(app: Celery, queue: str, field: str, amount: float = 1) -> None:
    """Count an event the request hooks do not see, such as a task being dead-lettered.

    Buffered like every other count and written within :data:`FLUSH_SECONDS`; safe from
    any process (a pool process starts its own flusher). A no-op when ``jobs_metrics`` is
    False. Never raises for a state problem.

    Arguments:
        app: the task's app.
        queue: the queue the task came from (its original queue).
        field: one of :data:`COUNTERS`, e.g. ``"dead_lettered"``.
        amount: how much to add.

    Raises:
        ValueError: ``field`` is not one of :data:`COUNTERS`.
    """
    if field not in COUNTERS:
        raise ValueError(f"Unknown metric {field!r}: expected one of {', '.join(COUNTERS)}")
    if not ConfigCache.get(app).metrics:
        return
    recorder = recorder_for(app)
    assert recorder is not None  # created on demand
    recorder.add(queue, {field: amount})
    recorder.ensure_flushing()


def execute_with_metrics(app: Celery, batch: Batch) -> list[Any]:
    """The old name of :func:`celery_jobs_ext.state.execute_with_riders` (metrics is one rider)."""
    return execute_with_riders(app, batch)


# -- the worker hooks -------------------------------------------------------------------


class MetricsStep(bootsteps.StartStopStep):
    """Consumer bootstep: make this process the worker's recorder, start flushing and heartbeats.

    Finishes in ``shutdown`` (called after the pool has stopped, so tasks that complete
    during a warm shutdown are counted), not in ``stop``, which also runs when the
    consumer reconnects to the broker.
    """

    label = "celery-jobs-ext metrics"

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.recorder: Recorder | None = None

    def start(self, parent: Any) -> None:
        app = parent.app
        if not ConfigCache.get(app).metrics:
            return
        queues = app.amqp.queues
        recorder = recorder_for(app)
        assert recorder is not None
        recorder.serve_worker(parent.hostname, resolver_for(app), lambda: list(queues.consume_from or ()))
        recorder.ensure_flushing()
        self.recorder = recorder

    def shutdown(self, parent: Any) -> None:
        recorder, self.recorder = self.recorder, None
        if recorder is not None:
            recorder.close()


def outcome_counters(outcome: RunOutcome) -> tuple[str, ...]:
    """The counters a run's outcome adds.

    Failed means "for good": a run whose message goes back to the queue, or that Celery
    re-sends as a retry, will run again and is not a failure yet.
    """
    timed_out = ("timed_out",) if outcome.timed_out else ()
    if outcome.kind == SUCCEEDED:
        return ("succeeded",)
    if outcome.kind == RETRYING:
        return ("retried", *timed_out)
    if outcome.kind == FAILED:
        return ("failed", *timed_out)
    if outcome.kind == REJECTED:
        return timed_out
    return ()  # ignored on purpose


class MetricsListener(OutcomeListener):
    """Counts each run's start and outcome into this process's :class:`Recorder`.

    Listed after the dead-letter listener in ``GuardedRequest.outcome_listeners``: it
    hears the final outcome (a dead-lettered lost worker is a failure, a requeued one
    is not). Recording never gets in a task's way.
    """

    def after_accept(self, request: Any) -> None:
        recorder = _existing_recorder(request.app)
        if recorder is not None:
            try:
                recorder.task_started(request, finished=request.outcome is not None)
            except Exception as exc:
                recorder.warn(exc)

    def after_outcome(self, request: Any, outcome: RunOutcome) -> None:
        recorder = _existing_recorder(request.app)
        if recorder is not None:
            try:
                recorder.task_finished(request, outcome_counters(outcome), outcome.runtime)
            except Exception as exc:
                recorder.warn(exc)


# -- reading (the health report) ------------------------------------------------------------


def last_24h_keys(now: float) -> list[str]:
    """Bucket keys that together cover the 1,440 minutes up to ``now``, with no overlap.

    Minute buckets for the partial hours at both ends, hourly roll-ups in between:
    at most 59 + 60 minute keys and 24 hour keys instead of 1,440 reads.
    """
    current = int(now // 60)
    first = current - 1439
    first_full_hour = -(-first // 60)  # ceil
    current_hour = current // 60
    if first_full_hour >= current_hour:
        return [MINUTE_KEY.format(minute=m) for m in range(first, current + 1)]
    keys = [MINUTE_KEY.format(minute=m) for m in range(first, first_full_hour * 60)]
    keys += [HOUR_KEY.format(hour=h) for h in range(first_full_hour, current_hour)]
    keys += [MINUTE_KEY.format(minute=m) for m in range(current_hour * 60, current + 1)]
    return keys


def split_fields(hashes: Iterable[Mapping[str, float]]) -> dict[str, dict[str, float]]:
    """Sum bucket hashes into ``{queue: {field: amount}}``."""
    result: dict[str, dict[str, float]] = {}
    for fields in hashes:
        for name, amount in fields.items():
            field, _, queue = name.partition(":")
            per_queue = result.setdefault(queue, {})
            per_queue[field] = per_queue.get(field, 0) + amount
    return result


def read_heartbeats(raw: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Live workers' heartbeats, by hostname (unreadable ones skipped)."""
    workers: dict[str, dict[str, Any]] = {}
    for hostname, value in raw.items():
        try:
            beat = json.loads(value)
        except ValueError:
            continue
        if isinstance(beat, dict):
            workers[hostname] = beat
    return workers
