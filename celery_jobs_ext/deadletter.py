"""Dead-letter queue: a GuardedTask that fails for good is kept as a message in a broker queue.

When ``jobs_dead_letter_queue`` is set, the worker publishes the failed task's own message
(real body, original headers and properties) to that queue on the same broker, with
``dlq_*`` headers saying why. :class:`DeadLetterQueue` lists, counts, replays and purges
the entries; ``celery -A proj jobs-dlq …`` does the same from a shell.

Where the failure is seen: in the worker's main process, in the request's ``on_failure``,
which every pool calls with the final outcome (an exception, a retry, a hard time limit,
a lost child) and which decides whether the message is acknowledged. Dead-lettering
there, just before the acknowledgement, means a failed publish can keep the message
(``acks_late``), and a failure seen by both child and parent is stored by the parent only.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from celery import VERSION as CELERY_VERSION
from celery import signals
from celery.exceptions import (
    Ignore,
    MaxRetriesExceededError,
    Reject,
    Retry,
    SoftTimeLimitExceeded,
    Terminated,
    TimeLimitExceeded,
    WorkerLostError,
)
from celery.utils.saferepr import saferepr
from celery.worker.state import task_ready
from kombu.entity import Exchange, Queue
from kombu.exceptions import OperationalError
from kombu.serialization import dumps as serialize
from kombu.utils.json import dumps as json_dumps
from kombu.utils.url import maybe_sanitize_url

from celery_jobs_ext.config import ConfigCache
from celery_jobs_ext.errors import ImproperlyConfigured, JobsError, StateUnavailable
from celery_jobs_ext.masking import mask_text, masked_reprs
from celery_jobs_ext.metrics import record, unwrap_pool_exception
from celery_jobs_ext.queues import resolver_for
from celery_jobs_ext.state import get_state
from celery_jobs_ext.timeouts import JobTimeout

if TYPE_CHECKING:
    from celery import Celery
    from celery import Task as _TaskBase
    from celery.worker.request import Request as _RequestBase
else:
    _TaskBase = object
    _RequestBase = object

__all__ = [
    "REPLAYED_FROM",
    "DeadLetterBrokerUnavailable",
    "DeadLetterError",
    "DeadLetterQueue",
    "DeadLetterRequestMixin",
    "DeadLetterTaskMixin",
]

logger = logging.getLogger(__name__)

#: Header of a replayed message: the ``dlq_id`` of the entry it was replayed from.
REPLAYED_FROM = "dlq_replayed_from"
#: Set on an exception raised by ``retry()`` once the retries ran out.
RETRIES_EXHAUSTED = "jobs_retries_exhausted"

#: How long "this failure is already stored" is remembered (a message redelivered later
#: than this after its entry was written would be stored again).
_STORED_TTL = 7 * 24 * 3600
#: Claim a dead-letter entry and push it, atomically (Redis broker). Returns the claim's
#: holder: this entry's ``dlq_id`` when it was stored now, another's when it was stored before.
_CLAIM_AND_PUSH = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
  redis.call('LPUSH', KEYS[2], ARGV[3])
  return ARGV[1]
end
return redis.call('GET', KEYS[1])
"""
#: How long lost-worker counts of a requeued task are kept.
_LOST_TTL = 24 * 3600
#: Header size limits: RabbitMQ refuses a header frame larger than its frame size.
_MAX_TRACEBACK = 8192
_MAX_EXCEPTION = 2048

#: Request keys the worker adds to the message headers (rebuilding headers from a request).
_WORKER_KEYS = frozenset(
    {
        "properties",
        "reply_to",
        "correlation_id",
        "hostname",
        "delivery_info",
        "args",
        "kwargs",
        "is_eager",
        "loglevel",
        "logfile",
        "callbacks",
        "errbacks",
        "chain",
        "chord",
    }
)

#: Celery 5.7 records a hard time limit in ``Request.on_timeout`` too (see DeadLetterRequestMixin).
_ON_TIMEOUT_RECORDS_FAILURE = (CELERY_VERSION.major, CELERY_VERSION.minor) >= (5, 7)


class DeadLetterError(JobsError):
    """A dead-letter queue operation cannot be done; the message names the queue and what to do."""


class DeadLetterBrokerUnavailable(DeadLetterError):
    """The broker that holds the dead-letter queue cannot be reached."""


# -- the queue ------------------------------------------------------------------------


@dataclass
class _Entry:
    """One message in the dead-letter queue, as read from the broker."""

    headers: dict[str, Any]
    body: bytes
    content_type: str | None
    content_encoding: str | None
    properties: dict[str, Any]
    #: What removes it: the raw Redis list item, or the unacknowledged kombu message.
    handle: Any

    @property
    def task_id(self) -> str | None:
        return self.headers.get("id")

    @property
    def original_queue(self) -> str:
        return str(self.headers.get("original_queue") or "")

    @property
    def timestamp(self) -> str:
        return str(self.headers.get("dlq_timestamp") or "")


class _RedisList:
    """The queue as Kombu keeps it on Redis: a list, newest entry first (LPUSH).

    Read with LRANGE, so listing consumes nothing; an entry is removed with LREM of its
    exact bytes, so exactly that entry goes, whatever else happens to the list meanwhile.
    """

    def __init__(self, connection: Any, name: str) -> None:
        self.channel = connection.default_channel
        self.client = self.channel.client
        self.name = name
        # Kombu prefixes only some commands with ``global_keyprefix``; LRANGE/LREM are not among them.
        self.key = getattr(self.client, "global_keyprefix", "") + name

    def count(self) -> int:
        return int(self.client.llen(self.name))

    def entries(self) -> builtins.list[_Entry]:
        entries = []
        for raw in self.client.lrange(self.key, 0, -1):
            try:
                message = self.channel.Message(json.loads(raw), channel=self.channel)
            except (ValueError, KeyError, TypeError):
                logger.warning("Skipping an unreadable item in dead-letter queue %r", self.name)
                continue
            entries.append(_entry_from_message(message, raw))
        return entries

    def remove(self, entry: _Entry) -> bool:
        return int(self.client.lrem(self.key, 1, entry.handle)) > 0

    def purge(self) -> int:
        return int(self.channel.queue_purge(self.name) or 0)

    def close(self) -> None:
        pass


class _BrowsedQueue:
    """The queue on any other transport (RabbitMQ): browsed by fetching without acknowledging.

    AMQP has no way to read a queue without taking its messages, so every message is
    fetched unacknowledged, the ones removed are acknowledged, and the rest are given
    back (requeued, in the order they were fetched) when the browse ends. RabbitMQ puts
    requeued messages back where they were. While a browse runs, its messages are
    invisible to others; if the browsing process dies, the broker requeues them.
    """

    def __init__(self, connection: Any, name: str) -> None:
        self.connection = connection
        self.channel = connection.channel()
        self.name = name
        self.queue: Any = _queue_entity(name)(self.channel)
        self.fetched: builtins.list[Any] = []

    def count(self) -> int:
        try:
            _, count, _ = self.queue.queue_declare(passive=True)
        except self.connection.channel_errors:
            self.channel = self.connection.channel()  # the error closed it
            self.queue = _queue_entity(self.name)(self.channel)
            return 0
        return int(count or 0)

    def entries(self) -> builtins.list[_Entry]:
        if not self.count():
            return []
        entries = []
        while True:
            message = self.queue.get(no_ack=False)
            if message is None:
                break
            self.fetched.append(message)
            entries.append(_entry_from_message(message, message))
        entries.sort(key=lambda entry: entry.timestamp, reverse=True)
        return entries

    def remove(self, entry: _Entry) -> bool:
        entry.handle.ack()
        return True

    def purge(self) -> int:
        if not self.count():
            return 0
        return int(self.queue.purge() or 0)

    def close(self) -> None:
        try:
            for message in self.fetched:
                if not message.acknowledged:
                    message.requeue()
        finally:
            self.fetched = []
            with contextlib.suppress(Exception):
                self.channel.close()


def _queue_entity(name: str) -> Any:
    """The dead-letter queue: durable, on the default exchange, so nothing routes to it by accident."""
    return Queue(name, Exchange(""), routing_key=name, durable=True)  # type: ignore[no-untyped-call]


def _entry_from_message(message: Any, handle: Any) -> _Entry:
    body = message.body
    if isinstance(body, str):
        body = body.encode(message.content_encoding or "utf-8")
    return _Entry(
        headers=dict(message.headers or {}),
        body=bytes(body or b""),
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        properties=dict(message.properties or {}),
        handle=handle,
    )


class DeadLetterQueue:
    """The dead-letter queue of an app (``jobs_dead_letter_queue``), on the app's broker.

    Counts agree because each comes from one place: ``stats()["total"]`` is the broker's
    own length of the queue; ``by_queue`` (entries per original queue) is kept in the
    shared state, incremented when an entry is stored and decremented when one is replayed
    or purged. When the two disagree (a process died between publishing an entry and
    counting it, or someone edited the queue), ``stats()`` recounts from the messages
    themselves and repairs the shared counts.

    Arguments:
        app: the Celery app whose broker and settings to use.
        name: the queue; ``jobs_dead_letter_queue`` when omitted.

    Raises:
        ImproperlyConfigured: no name given and ``jobs_dead_letter_queue`` is not set.
    """

    def __init__(self, app: Celery, name: str | None = None) -> None:
        self.app = app
        self.config = ConfigCache.get(app)
        name = name or self.config.dead_letter_queue
        if not name:
            raise ImproperlyConfigured(
                "Setting jobs_dead_letter_queue is not set: set it to a queue name "
                "(for example 'dead-letter') to keep tasks that fail for good."
            )
        self.name = name
        self._counts_key = f"dlq:{name}:queues"

    # -- writing -------------------------------------------------------------------

    def store(
        self,
        request_or_message: Any,
        reason: str,
        attempts: int,
        *,
        exception: str | None = None,
        traceback: str | None = None,
    ) -> bool:
        """Publish a failed task's message to the dead-letter queue, once.

        The worker calls this; call it yourself to dead-letter a message your own code
        gave up on.

        Arguments:
            request_or_message: the worker's request (``celery.worker.request.Request``)
                or a kombu message holding a Celery task (protocol 2).
            reason: why, for ``dlq_reason`` (``Max retries exceeded``, ``Worker lost``…).
            attempts: how many times the task ran, for ``dlq_attempts``.
            exception: ``"Type: message"`` of the error (masked here).
            traceback: the error's traceback text (masked here).

        Returns:
            True when published; False when this failure was already stored (the same
            task, the same replay generation), which makes a redelivered message that
            fails again not count twice.

        Raises:
            kombu.exceptions.OperationalError: the broker could not be reached within
                the connection's retry policy (``task_publish_retry_policy``).
        """
        source = _Source.of(self.app, request_or_message)
        task_id = str(source.headers.get("id"))
        generation = str(source.headers.get(REPLAYED_FROM) or "-")
        mask = self._masker()
        headers = {
            key: value
            for key, value in source.headers.items()
            if not (key.startswith("dlq_") and key != REPLAYED_FROM) and key != "redelivered"
        }
        argsrepr, kwargsrepr = headers.get("argsrepr"), headers.get("kwargsrepr")
        if not isinstance(argsrepr, str) or not isinstance(kwargsrepr, str):
            argsrepr, kwargsrepr = masked_reprs(self.app, *source.arguments(), self.config.mask_keys)
        original_queue = source.original_queue(self.app)
        headers.update(
            argsrepr=mask(argsrepr),
            kwargsrepr=mask(kwargsrepr),
            dlq_id=uuid.uuid4().hex,
            dlq_reason=mask(reason),
            dlq_timestamp=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            dlq_attempts=int(attempts),
            original_queue=original_queue,
            dlq_exception=_tail(mask(exception or ""), _MAX_EXCEPTION),
            dlq_traceback=_tail(mask(traceback or ""), _MAX_TRACEBACK),
        )
        if source.priority is not None:
            headers["original_priority"] = source.priority

        if self._on_redis_broker():
            # The claim lives with the entry, written by one script on the broker: whatever a
            # restart or an unreachable state loses, it loses both or neither (issue #20).
            if not self._claim_and_push(source, headers, self.claim_key(task_id, generation)):
                logger.info(
                    "Task %s is already in dead-letter queue %r; not stored again", task_id, self.name
                )
                return False
        elif not self._claim_in_state_and_publish(source, headers, task_id, generation):
            return False
        record(self.app, original_queue, "dead_lettered")
        try:
            get_state(self.app).hincr(self._counts_key, {original_queue: 1})
        except StateUnavailable as exc:
            logger.warning("Task %s dead-lettered but not counted (stats() will recount): %s", task_id, exc)
        return True

    def claim_key(self, task_id: str, generation: str = "-") -> str:
        """The key, on a Redis broker, that says this failure of the task is stored.

        ``generation`` is the ``dlq_id`` a replayed message came from (``-`` for the
        original), so a replay that fails again is stored again.
        """
        return f"{self.config.state_prefix}dlq:{self.name}:claimed:{task_id}:{generation}"

    def is_claimed(self, task_id: str, generation: str = "-") -> bool:
        """Whether this failure of the task is already stored (the claim, wherever it lives).

        Raises:
            redis.exceptions.ConnectionError: the broker (Redis) is unreachable.
            StateUnavailable: the shared state (other brokers) is unreachable.
        """
        if self._on_redis_broker():
            with self.app.producer_or_acquire() as producer:
                client = producer.channel.client
                prefix = getattr(client, "global_keyprefix", "")
                return bool(client.exists(prefix + self.claim_key(task_id, generation)))
        return get_state(self.app).get_counters([self._state_claim_key(task_id, generation)])[0] > 0

    def _state_claim_key(self, task_id: str, generation: str) -> str:
        return f"dlq:{self.name}:stored:{task_id}:{generation}"

    def _on_redis_broker(self) -> bool:
        with self.app.connection_for_write() as connection:
            return bool(connection.transport.driver_type == "redis")

    def _claim_and_push(self, source: _Source, headers: dict[str, Any], claim_key: str) -> bool:
        """Redis broker: claim the entry and push it in one atomic script; False if claimed before.

        Retried under ``task_publish_retry_policy`` like a publish. The claim holds the
        entry's ``dlq_id``, so a retry after a reply lost on the way back (the script ran)
        recognises its own claim instead of reporting a duplicate.
        """
        with self.app.producer_or_acquire() as producer:

            def run() -> bool:
                channel = producer.channel
                client = channel.client
                prefix = getattr(client, "global_keyprefix", "")
                message = channel.prepare_message(
                    source.body,
                    None,
                    source.content_type,
                    source.content_encoding,
                    dict(headers),
                    {"delivery_mode": 2, **source.properties},
                )
                channel._inplace_augment_message(message, "", self.name)
                queue_key = channel._q_for_pri(self.name, channel._get_message_priority(message))
                claimed_by = client.eval(
                    _CLAIM_AND_PUSH,
                    2,
                    prefix + claim_key,
                    prefix + queue_key,
                    headers["dlq_id"],
                    _STORED_TTL,
                    json_dumps(message),  # type: ignore[no-untyped-call]
                )
                if isinstance(claimed_by, bytes):
                    claimed_by = claimed_by.decode()
                return bool(claimed_by == headers["dlq_id"])

            policy = dict(self.app.conf.task_publish_retry_policy or {})
            connection = producer.connection
            try:
                return bool(connection.ensure(producer, run, **policy)())
            except connection.connection_errors as exc:  # as a publish reports it
                raise OperationalError(str(exc)) from exc

    def _claim_in_state_and_publish(
        self, source: _Source, headers: dict[str, Any], task_id: str, generation: str
    ) -> bool:
        """Other brokers: claim in the shared state, then publish; False if claimed before.

        A state that cannot be reached lets the entry through without the duplicate check:
        better a duplicate entry than a lost one.
        """
        stored_key = self._state_claim_key(task_id, generation)
        state = None
        claimed = False
        try:
            state = get_state(self.app)
            # Claim the entry atomically before publishing: a message the broker redelivered
            # while its first run was still failing (RabbitMQ requeues at once when a
            # connection drops) can fail in two workers at the same moment.
            if state.incr(stored_key, 1, ttl=_STORED_TTL) > 1:
                logger.info(
                    "Task %s is already in dead-letter queue %r; not stored again", task_id, self.name
                )
                return False
            claimed = True
        except StateUnavailable as exc:
            logger.warning("Storing task %s without the duplicate check: %s", task_id, exc)
        try:
            self._publish(
                source.body,
                routing_key=self.name,
                headers=headers,
                content_type=source.content_type,
                content_encoding=source.content_encoding,
                properties=source.properties,
                declare=[_queue_entity(self.name)],
            )
        except BaseException:
            if claimed and state is not None:  # not stored: let the next attempt store it
                with contextlib.suppress(StateUnavailable):
                    state.incr(stored_key, -1, ttl=_STORED_TTL)
            raise
        return True

    def _publish(
        self,
        body: bytes,
        *,
        routing_key: str,
        headers: dict[str, Any],
        content_type: str | None,
        content_encoding: str | None,
        properties: dict[str, Any],
        declare: builtins.list[Any],
    ) -> None:
        with self.app.producer_or_acquire() as producer:
            producer.publish(
                body,
                exchange="",
                routing_key=routing_key,
                headers=headers,
                content_type=content_type,
                content_encoding=content_encoding,
                delivery_mode=2,
                declare=declare,
                retry=True,
                retry_policy=self.app.conf.task_publish_retry_policy,
                **properties,
            )

    # -- reading -------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """``{"total": n, "by_queue": {original queue: n}}``; ``total`` is the broker's count.

        Raises:
            DeadLetterBrokerUnavailable: the broker cannot be reached.
            StateUnavailable: the shared state cannot be reached.
        """
        state = get_state(self.app)
        with self._broker() as broker:
            total = broker.count()
            counts = state.hgetall([self._counts_key])[0]
            by_queue = {queue: int(n) for queue, n in counts.items() if n > 0}
            if sum(by_queue.values()) != total or any(n < 0 for n in counts.values()):
                entries = broker.entries()
                by_queue = {}
                for entry in entries:
                    by_queue[entry.original_queue] = by_queue.get(entry.original_queue, 0) + 1
                total = len(entries)
                with state.batch() as batch:
                    batch.delete([self._counts_key])
                    if by_queue:
                        batch.hincr(self._counts_key, by_queue)
        return {"total": total, "by_queue": dict(sorted(by_queue.items()))}

    def list(self, limit: int | None = 50, queue: str | None = None) -> builtins.list[dict[str, Any]]:
        """Entries, newest first, without consuming them; every text field masked.

        Arguments:
            limit: at most this many (None: all).
            queue: only tasks that came from this original queue.

        Returns:
            One dict per entry: ``task_id``, ``task``, ``reason``, ``timestamp``,
            ``attempts``, ``original_queue``, ``exception``, ``traceback``, ``args``,
            ``kwargs`` (the masked reprs), ``dlq_id``, ``replayed_from``.
        """
        mask = self._masker()
        with self._broker() as broker:
            entries = [entry for entry in broker.entries() if queue is None or entry.original_queue == queue]
        return [_describe(entry, mask) for entry in entries[: _limit(limit)]]

    # -- acting --------------------------------------------------------------------

    def replay(
        self, task_id: str | None = None, queue: str | None = None, limit: int | None = None
    ) -> builtins.list[str]:
        """Publish entries back to their original queues, then remove them; oldest first.

        The replayed message is the original task (same id, so its result and any
        waiting caller see the new outcome) as a fresh attempt: ``retries`` reset to 0,
        no ``eta`` or ``expires``, and a ``dlq_replayed_from`` header naming the entry.
        Each entry is removed only after its message is published, so a crash in between
        leaves a duplicate, never a loss.

        Arguments:
            task_id: only this task.
            queue: only tasks that came from this original queue.
            limit: at most this many (None: all that match).

        Returns:
            The ids of the replayed tasks.

        Raises:
            DeadLetterError: the original queue does not exist on the broker (RabbitMQ).
            DeadLetterBrokerUnavailable: the broker cannot be reached.
        """
        replayed: builtins.list[str] = []
        removed: dict[str, int] = {}
        with self._broker() as broker:
            try:
                chosen = [
                    entry
                    for entry in reversed(broker.entries())
                    if (task_id is None or entry.task_id == task_id)
                    and (queue is None or entry.original_queue == queue)
                ][: _limit(limit)]
                checked: set[str] = set()
                for entry in chosen:
                    target = entry.original_queue or self.app.conf.task_default_queue
                    if target not in checked:
                        self._check_queue_exists(broker, target)
                        checked.add(target)
                    self._publish_replay(entry, target)
                    if broker.remove(entry):
                        removed[entry.original_queue] = removed.get(entry.original_queue, 0) - 1
                    replayed.append(str(entry.task_id))
            finally:
                self._count_removed(removed)
        return replayed

    def purge(self, queue: str | None = None) -> int:
        """Delete entries (all, or those from one original queue); return how many.

        Raises:
            DeadLetterBrokerUnavailable: the broker cannot be reached.
        """
        with self._broker() as broker:
            if queue is None:
                purged = int(broker.purge())
                get_state(self.app).delete([self._counts_key])
                return purged
            removed: dict[str, int] = {}
            try:
                for entry in broker.entries():
                    if entry.original_queue == queue and broker.remove(entry):
                        removed[queue] = removed.get(queue, 0) - 1
            finally:
                self._count_removed(removed)
            return -removed.get(queue, 0)

    # -- helpers -------------------------------------------------------------------

    def _masker(self) -> Callable[[str], str]:
        if not self.config.mask_secrets:
            return lambda text: text
        keys = self.config.mask_keys
        return lambda text: mask_text(text, keys)

    def _count_removed(self, removed: dict[str, int]) -> None:
        if removed:
            try:
                get_state(self.app).hincr(self._counts_key, removed)
            except StateUnavailable as exc:
                logger.warning("Dead-letter counts not updated (stats() will recount): %s", exc)

    def _check_queue_exists(self, broker: Any, queue: str) -> None:
        """On AMQP a message published to a missing queue is dropped: refuse before removing anything."""
        if not isinstance(broker, _BrowsedQueue) or queue in self.app.amqp.queues:
            return
        channel = broker.connection.channel()
        try:
            channel.queue_declare(queue=queue, passive=True)
        except broker.connection.channel_errors:
            raise DeadLetterError(
                f"Cannot replay to queue {queue!r}: it does not exist on the broker. Start a worker "
                f"consuming it (celery worker -Q {queue}) or declare it, then replay again."
            ) from None
        finally:
            with contextlib.suppress(Exception):
                channel.close()

    def _publish_replay(self, entry: _Entry, queue: str) -> None:
        headers = {
            key: value
            for key, value in entry.headers.items()
            if not key.startswith("dlq_")
            and key not in ("original_queue", "original_priority", "redelivered")
        }
        headers.update(retries=0, eta=None, expires=None)
        headers[REPLAYED_FROM] = entry.headers.get("dlq_id")
        properties = {
            key: entry.properties[key] for key in ("correlation_id", "reply_to") if entry.properties.get(key)
        }
        priority = entry.headers.get("original_priority")
        if priority is not None:
            properties["priority"] = priority
        declare = [self.app.amqp.queues[queue]] if queue in self.app.amqp.queues else []
        self._publish(
            entry.body,
            routing_key=queue,
            headers=headers,
            content_type=entry.content_type,
            content_encoding=entry.content_encoding,
            properties=properties,
            declare=declare,
        )

    @contextlib.contextmanager
    def _broker(self) -> Iterator[Any]:
        connection = self.app.connection_for_write()
        try:
            errors = (OperationalError, OSError, *connection.connection_errors)
            try:
                connection.ensure_connection(
                    max_retries=1, interval_start=0, interval_step=0.5, interval_max=0.5
                )
            except errors as exc:
                raise DeadLetterBrokerUnavailable(
                    f"Broker {maybe_sanitize_url(connection.as_uri())} holding dead-letter queue "
                    f"{self.name!r} is unreachable: {exc}"
                ) from exc
            broker: Any
            if connection.transport.driver_type == "redis":
                broker = _RedisList(connection, self.name)
            else:
                broker = _BrowsedQueue(connection, self.name)
            try:
                yield broker
            except errors as exc:
                raise DeadLetterBrokerUnavailable(
                    f"Lost the broker while working on dead-letter queue {self.name!r}: {exc}"
                ) from exc
            finally:
                broker.close()
        finally:
            connection.release()


def _limit(limit: int | None) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise ValueError(f"limit must be a whole number >= 0 or None, not {limit!r}")
    return limit


def _tail(text: str, size: int) -> str:
    """The last ``size`` characters: the end of a traceback is the part that says what failed."""
    return text if len(text) <= size else "…" + text[-(size - 1) :]


def _describe(entry: _Entry, mask: Callable[[str], str]) -> dict[str, Any]:
    headers = entry.headers

    def text(key: str) -> str:
        value = headers.get(key)
        return mask(value if isinstance(value, str) else "" if value is None else str(value))

    return {
        "task_id": entry.task_id,
        "task": headers.get("task"),
        "reason": text("dlq_reason"),
        "timestamp": entry.timestamp,
        "attempts": headers.get("dlq_attempts"),
        "original_queue": entry.original_queue,
        "exception": text("dlq_exception"),
        "traceback": text("dlq_traceback"),
        "args": text("argsrepr"),
        "kwargs": text("kwargsrepr"),
        "dlq_id": headers.get("dlq_id"),
        "replayed_from": headers.get(REPLAYED_FROM),
    }


@dataclass
class _Source:
    """What :meth:`DeadLetterQueue.store` needs from a worker request or a kombu message."""

    headers: dict[str, Any]
    body: bytes
    content_type: str | None
    content_encoding: str | None
    properties: dict[str, Any]
    delivery_info: dict[str, Any]
    priority: Any
    arguments: Callable[[], tuple[Any, Any]]

    @classmethod
    def of(cls, app: Celery, obj: Any) -> _Source:
        message = getattr(obj, "message", None) if hasattr(obj, "request_dict") else obj
        if message is None or not hasattr(message, "headers"):
            raise TypeError(f"store() needs a worker request or a kombu message, not {type(obj).__name__}")
        headers = dict(message.headers or {})
        if hasattr(obj, "request_dict"):  # a worker request: body and headers as the worker decoded them
            if "id" not in headers or "task" not in headers:  # protocol 1, converted by the worker
                headers = {k: v for k, v in obj.request_dict.items() if k not in _WORKER_KEYS}
            body, content_type, content_encoding = obj.body, obj.content_type, obj.content_encoding
            delivery_info = dict(obj.delivery_info or {})

            def arguments() -> tuple[Any, Any]:
                return obj.args, obj.kwargs

        else:
            body, content_type = message.body, message.content_type
            content_encoding = message.content_encoding
            delivery_info = dict(message.delivery_info or {})

            def arguments() -> tuple[Any, Any]:
                decoded = message.decode()
                return (decoded[0], decoded[1]) if isinstance(decoded, (list, tuple)) else ((), {})

        if content_type is None:  # a body the worker already decoded
            content_type, content_encoding, body = serialize(body, serializer="json")  # type: ignore[no-untyped-call]
        if isinstance(body, str):
            body = body.encode(content_encoding or "utf-8")
        raw_properties = dict(getattr(message, "properties", None) or {})
        properties = {
            key: raw_properties[key] for key in ("correlation_id", "reply_to") if raw_properties.get(key)
        }
        return cls(
            headers=headers,
            body=bytes(body),
            content_type=content_type,
            content_encoding=content_encoding,
            properties=properties,
            delivery_info=delivery_info,
            priority=delivery_info.get("priority", raw_properties.get("priority")),
            arguments=arguments,
        )

    def original_queue(self, app: Celery) -> str:
        """The queue the task was consumed from, found from where it was routed."""
        return resolver_for(app)(self.delivery_info)


# -- worker hooks ---------------------------------------------------------------------


class DeadLetterTaskMixin(_TaskBase):
    """GuardedTask's dead-letter hooks (task side)."""

    def retry(self, *args: Any, **kwargs: Any) -> Any:
        """Celery's retry; an exception it raises because the retries ran out is marked so.

        ``retry(exc=e)`` past ``max_retries`` re-raises ``e`` itself, which the worker could
        not tell apart from a first failure. The mark travels with the pickled exception
        to the worker's main process, where it becomes ``dlq_reason = Max retries exceeded``.
        """
        try:
            return super().retry(*args, **kwargs)
        except (Retry, Reject):
            raise
        except Exception as exc:
            with contextlib.suppress(Exception):  # an exception that refuses attributes
                setattr(exc, RETRIES_EXHAUSTED, True)
            raise


@dataclass
class _Failure:
    """A failure for good, waiting for Celery's acknowledgement decision."""

    reason: str
    attempts: int
    exception: BaseException
    exc_info: Any
    worker_lost: bool


class DeadLetterRequestMixin(_RequestBase):
    """GuardedTask's dead-letter hooks (worker request side, in the worker's main process).

    ``on_failure`` decides whether a failure is for good; the entry is published when
    Celery acknowledges the message (``acks_late``), so a failed publish can requeue it
    instead, or right after ``on_failure`` when the message was acknowledged at start.
    A ``reject(requeue=True)`` from Celery means the task will run again: nothing is stored.
    """

    _jobs_failure: _Failure | None = None
    _jobs_dead_lettered = False

    _jobs_settled: bool | None = None

    def revoked(self) -> bool:
        """Celery's check before it runs a request, which also skips a copy whose outcome is settled.

        Celery's request class (``create_request_cls``) replaces ``execute_using_pool``
        without calling a base class, so the skip goes where Celery skips revoked tasks:
        a True here makes the worker drop the request unrun. Checked once per request.
        """
        if super().revoked():
            return True
        if self._jobs_settled is None:
            self._jobs_settled = self._jobs_outcome_already_settled()
        return self._jobs_settled

    def _jobs_outcome_already_settled(self) -> bool:
        """A redelivered copy of a task that already has its outcome is acknowledged, not run.

        The broker hands a message out again when its acknowledgement was lost (a broker
        restart, a worker that died after the outcome): running it again could give a task
        that was dead-lettered a success, or a task that succeeded a dead-letter entry. Only
        redelivered messages are checked (one lookup each, in the worker's main process):
        the dead-letter claim, which lives with the entries on a Redis broker, then
        the result backend's stored success (Celery's own check for a lost worker).
        """
        headers = getattr(self._message, "headers", None) or {}
        if not ((self.delivery_info or {}).get("redelivered") or headers.get("redelivered")):
            return False
        task = self.task
        if not getattr(task, "jobs_guarded", False):
            return False
        outcome = ""
        try:
            if ConfigCache.get(task.app).dead_letter_queue:
                generation = str(self._request_dict.get(REPLAYED_FROM) or "-")
                if DeadLetterQueue(task.app).is_claimed(str(self.id), generation):
                    outcome = "dead-lettered"
            if not outcome and self._success_was_stored():
                outcome = "success"
        except Exception as exc:  # cannot tell: run it, as Celery would
            logger.warning("Task %s[%s] redelivered; cannot check its outcome: %r", task.name, self.id, exc)
            return False
        if not outcome:
            return False
        logger.warning(
            "Task %s[%s] redelivered after its outcome (%s) was recorded: acknowledged, not run again",
            task.name,
            self.id,
            outcome,
        )
        task_ready(self)
        self.acknowledge()
        return True

    def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> Any:
        exc = unwrap_pool_exception(exc_info.exception)
        if _ON_TIMEOUT_RECORDS_FAILURE and isinstance(exc, TimeLimitExceeded) and not return_ok:
            # Celery 5.7 reports a hard time limit twice: billiard's error callback lands here
            # (mark_as_failure, task_failure, task-failed), then Request.on_timeout does it
            # all again and also calls Task.on_failure. Let on_timeout be the one.
            return_ok, send_failed_event = True, False
        self._jobs_failure = self._jobs_failure_for_good(exc, exc_info)
        try:
            return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
        finally:
            failure, self._jobs_failure = self._jobs_failure, None
            if failure is not None:
                # Celery took no acknowledgement decision here: the message was acknowledged
                # when the task started (acks_late off), so there is nothing left to hold.
                self._jobs_dead_letter(failure, holding_message=False)

    def on_timeout(self, soft: bool, timeout: float) -> Any:
        result = super().on_timeout(soft, timeout)
        if not soft and not self._jobs_dead_lettered and not self.__dict__.get("_jobs_requeued"):
            # Billiard reports a hard limit through on_failure first; this covers a pool that does not.
            failure = self._jobs_failure_for_good(TimeLimitExceeded(timeout), None)
            if failure is not None:
                self._jobs_dead_letter(failure, holding_message=False)
        return result

    def acknowledge(self) -> Any:
        failure = self._jobs_failure
        if failure is not None and not self.acknowledged:
            self._jobs_failure = None
            if not self._jobs_dead_letter(failure, holding_message=True):
                return super().reject(requeue=True)
        return super().acknowledge()

    def reject(self, requeue: bool = False) -> Any:
        failure = self._jobs_failure
        if failure is not None and not self.acknowledged:
            self._jobs_failure = None
            if requeue:
                if (
                    failure.worker_lost
                    and self._jobs_losses_exhausted(failure)
                    and self._jobs_dead_letter(failure, holding_message=True)
                ):
                    super().acknowledge()
                    self._jobs_record_failure(failure)
                    return None
                self._jobs_requeued = True
            elif not self._jobs_dead_letter(failure, holding_message=True):
                requeue = True
        elif requeue:
            self._jobs_requeued = True
        return super().reject(requeue=requeue)

    # -- decisions -----------------------------------------------------------------

    def _jobs_failure_for_good(self, exc: BaseException, exc_info: Any) -> _Failure | None:
        """The failure to dead-letter, or None: not for good, not guarded, or no DLQ set."""
        task = self.task
        if not getattr(task, "jobs_guarded", False):
            return None
        try:
            if not ConfigCache.get(task.app).dead_letter_queue:
                return None
        except ImproperlyConfigured:
            return None
        if isinstance(exc, (Retry, Ignore, Terminated)):
            return None
        if isinstance(exc, (SystemExit, KeyboardInterrupt)):
            if getattr(self, "_already_cancelled", False) or getattr(self, "_already_revoked", False):
                return None  # the worker killed it on purpose (revoke): not a failure
            exc = WorkerLostError(f"Worker exited prematurely: {exc!r}")
        if isinstance(exc, Reject) and exc.requeue:
            return None
        worker_lost = isinstance(exc, WorkerLostError)
        retries = int(self._request_dict.get("retries") or 0)
        if worker_lost:
            success_was_stored = getattr(self, "_success_was_stored", None)
            if success_was_stored is not None and success_was_stored():
                return None  # it succeeded, then its process died: Celery keeps the success
            max_retries = task.max_retries
            if getattr(task, "retry_on_worker_lost", False) and (
                max_retries is None or retries < max_retries
            ):
                return None  # Celery sends it again as a retry
        return _Failure(
            reason=_reason(exc, float(getattr(self, "jobs_timeout", 0) or 0)),
            attempts=retries + 1,
            exception=exc,
            exc_info=exc_info,
            worker_lost=worker_lost,
        )

    def _jobs_losses_exhausted(self, failure: _Failure) -> bool:
        """With ``reject_on_worker_lost`` Celery requeues a lost task forever: stop at ``max_retries``.

        Each loss counts as an attempt (in the shared state, per task id): the task is
        requeued while losses <= ``max_retries``, then dead-lettered. ``max_retries=None``
        keeps Celery's requeue-forever behaviour.
        """
        max_retries = self.task.max_retries
        if max_retries is None:
            return False
        generation = self._request_dict.get(REPLAYED_FROM) or "-"
        name = ConfigCache.get(self.task.app).dead_letter_queue
        try:
            losses = get_state(self.task.app).incr(
                f"dlq:{name}:lost:{self.id}:{generation}", 1, ttl=_LOST_TTL
            )
        except StateUnavailable as exc:
            logger.warning(
                "Task %s[%s]: cannot count lost workers, requeueing: %s", self.task.name, self.id, exc
            )
            return False
        failure.attempts = int(self._request_dict.get("retries") or 0) + losses
        return bool(losses > max_retries)

    def _jobs_dead_letter(self, failure: _Failure, holding_message: bool) -> bool:
        """Store the failure once per request; False if the broker refused it."""
        if self._jobs_dead_lettered:
            return True
        task = self.task
        try:
            DeadLetterQueue(task.app).store(
                self,
                failure.reason,
                failure.attempts,
                exception=_exception_text(failure.exception),
                traceback=getattr(failure.exc_info, "traceback", None) or "",
            )
        except Exception as exc:
            what = (
                "The message is requeued, so nothing is lost."
                if holding_message
                else "The message was acknowledged when the task started: the failure is only in "
                "the result backend and this log."
            )
            logger.error(
                "Task %s[%s] failed for good (%s) but could not be dead-lettered to %r: %r. %s",
                task.name,
                self.id,
                failure.reason,
                ConfigCache.get(task.app).dead_letter_queue,
                exc,
                what,
            )
            return False
        self._jobs_dead_lettered = True
        return True

    def _jobs_record_failure(self, failure: _Failure) -> None:
        """Record a failure Celery thought it had requeued (the lost-worker limit was reached)."""
        exc, exc_info = failure.exception, failure.exc_info
        self.task.backend.mark_as_failure(self.id, exc, request=self._context, store_result=self.store_errors)
        self.task.request_stack.push(self._context)
        try:
            signals.task_failure.send(
                sender=self.task,
                task_id=self.id,
                exception=exc,
                args=self.args,
                kwargs=self.kwargs,
                traceback=getattr(exc_info, "traceback", None),
                einfo=exc_info,
            )
        finally:
            self.task.request_stack.pop()
        self.send_event("task-failed", exception=saferepr(exc), traceback=getattr(exc_info, "traceback", ""))


def _type_name(exc: BaseException) -> str:
    return str(getattr(exc, "exc_cls_name", None) or type(exc).__name__)  # UnpickleableExceptionWrapper


def _exception_text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = saferepr(exc)
    return f"{_type_name(exc)}: {text}" if text else _type_name(exc)


def _reason(exc: BaseException, timeout: float) -> str:
    """``dlq_reason``: the timeout, the retries, the lost worker, or the exception's class."""
    if isinstance(exc, JobTimeout):
        return f"Timed out after {exc.seconds or timeout:g} s"
    if isinstance(exc, TimeLimitExceeded):
        if timeout:
            return f"Timed out after {timeout:g} s"
        return f"Time limit exceeded ({exc.args[0] if exc.args else '?'} s)"
    if isinstance(exc, MaxRetriesExceededError) or getattr(exc, RETRIES_EXHAUSTED, False):
        return "Max retries exceeded"
    if isinstance(exc, SoftTimeLimitExceeded):
        return "Soft time limit exceeded"
    if isinstance(exc, WorkerLostError):
        return "Worker lost"
    if isinstance(exc, Reject):
        return "Rejected"
    return _type_name(exc)
