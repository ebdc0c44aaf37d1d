"""How dead-letter entries sit on the broker, and what a stored entry is made from.

Redis: Kombu's list, read with LRANGE and removed by exact bytes. Any other transport
(RabbitMQ): browsed by fetching without acknowledging. :class:`_Source` is what
:meth:`~celery_jobs_ext.deadletter.DeadLetterQueue.store` takes from a worker request
or a kombu message.
"""

from __future__ import annotations

import builtins
import contextlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from kombu.entity import Exchange, Queue
from kombu.serialization import dumps as serialize

from celery_jobs_ext.queues import resolver_for

if TYPE_CHECKING:
    from celery import Celery

logger = logging.getLogger("celery_jobs_ext.deadletter")

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
