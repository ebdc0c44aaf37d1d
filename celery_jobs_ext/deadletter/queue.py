"""The dead-letter queue's API: store a failed task's message, list, count, replay and purge.

:class:`DeadLetterQueue` works on the app's broker (see :mod:`.broker` for how entries
sit there) and keeps per-original-queue counts in the shared state.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from kombu.exceptions import OperationalError
from kombu.utils.json import dumps as json_dumps
from kombu.utils.url import maybe_sanitize_url

from celery_jobs_ext.config import ConfigCache
from celery_jobs_ext.deadletter.broker import _BrowsedQueue, _Entry, _queue_entity, _RedisList, _Source
from celery_jobs_ext.errors import (
    BrokerUnavailable,
    DeadLetterError,
    ImproperlyConfigured,
    StateUnavailable,
)
from celery_jobs_ext.headers import REPLAYED_FROM
from celery_jobs_ext.masking import mask_text, masked_reprs
from celery_jobs_ext.metrics import record
from celery_jobs_ext.state import get_state

if TYPE_CHECKING:
    from celery import Celery

logger = logging.getLogger("celery_jobs_ext.deadletter")

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
#: Header size limits: RabbitMQ refuses a header frame larger than its frame size.
_MAX_TRACEBACK = 8192
_MAX_EXCEPTION = 2048

#: Seconds :meth:`DeadLetterQueue.stats`, ``list``, ``replay`` and ``purge`` wait for a broker
#: that does not answer (connect, and each read or write) before raising BrokerUnavailable.
BROKER_TIMEOUT = 3.0


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
            BrokerUnavailable: the broker cannot be reached (or does not answer in time).
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
        self,
        task_id: str | None = None,
        queue: str | None = None,
        limit: int | None = None,
        progress: Callable[[int, int], None] | None = None,
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
            progress: called as ``progress(done, total)`` after each entry (for a long replay).

        Returns:
            The ids of the replayed tasks.

        Raises:
            DeadLetterError: the original queue does not exist on the broker (RabbitMQ).
            BrokerUnavailable: the broker cannot be reached (or does not answer in time).
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
                    if progress is not None:
                        progress(len(replayed), len(chosen))
            finally:
                self._count_removed(removed)
        return replayed

    def purge(self, queue: str | None = None, progress: Callable[[int], None] | None = None) -> int:
        """Delete entries (all, or those from one original queue); return how many.

        ``progress(done)`` is called after each entry removed one by one (``queue`` given).

        Raises:
            BrokerUnavailable: the broker cannot be reached (or does not answer in time).
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
                        if progress is not None:
                            progress(-removed[queue])
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
        # Bounded everywhere: a broker that accepts connections and never answers must not
        # hang an operator (Redis: socket timeouts; AMQP: the handshake and every frame).
        timeout = BROKER_TIMEOUT
        connection = self.app.connection_for_write(
            connect_timeout=timeout,
            transport_options={
                "socket_connect_timeout": timeout,
                "socket_timeout": timeout,
                "read_timeout": timeout,
                "write_timeout": timeout,
            },
        )
        try:
            errors = (OperationalError, OSError, *connection.connection_errors)
            try:
                connection.ensure_connection(
                    max_retries=1, interval_start=0, interval_step=0.5, interval_max=0.5, timeout=timeout
                )
            except errors as exc:
                raise BrokerUnavailable(
                    f"Broker {maybe_sanitize_url(connection.as_uri(include_password=True))} holding "
                    f"dead-letter queue {self.name!r} is unreachable: {exc}"
                ) from exc
            broker: Any
            if connection.transport.driver_type == "redis":
                broker = _RedisList(connection, self.name)
            else:
                broker = _BrowsedQueue(connection, self.name)
            try:
                yield broker
            except errors as exc:
                raise BrokerUnavailable(
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
