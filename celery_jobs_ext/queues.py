"""Which queue a message was delivered from.

Rate limits, metrics and the dead-letter queue all key on the queue a task's message came
from, but a delivery names an exchange and a routing key, not a queue. On the default
exchange the routing key is the queue's name; otherwise the queue is the declared one bound
to that exchange with that key: the same key for a direct exchange, a matching pattern for
a topic exchange (``orders.*``, ``orders.#``), any key for a fanout exchange. One resolver,
so the three features always agree on a task's queue.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

__all__ = ["QueueResolver", "resolver_for", "topic_matches"]

#: Resolutions remembered per resolver; routing keys are few, but a hostile producer's need not be.
_MAX_REMEMBERED = 4096


@lru_cache(maxsize=1024)
def _words(key: str) -> tuple[str, ...]:
    return tuple(key.split("."))


def topic_matches(pattern: str, routing_key: str) -> bool:
    """AMQP topic matching: ``*`` is exactly one word, ``#`` zero or more."""
    words, key = _words(pattern), _words(routing_key)
    # reachable[j]: the pattern so far can consume the first j words of the key.
    reachable = [True] + [False] * len(key)
    for word in words:
        if word == "#":
            for j in range(1, len(key) + 1):
                reachable[j] = reachable[j] or reachable[j - 1]
        else:
            reachable = [False] + [
                reachable[j - 1] and (word == "*" or word == key[j - 1]) for j in range(1, len(key) + 1)
            ]
    return reachable[-1]


class QueueResolver:
    """Maps a delivery's exchange and routing key to the name of the queue it came from.

    Built from the declared queues, those the worker consumes from first, so that when
    two queues share a binding the one this worker reads wins. A delivery that matches
    no declared queue resolves to its routing key (or ``default`` without one).
    """

    def __init__(self, queues: Iterable[Any], default: str = "") -> None:
        self.default = default
        self._bindings: list[tuple[str, str, str, str]] = []  # exchange, type, key, queue
        seen: set[str] = set()
        for queue in queues:
            if queue.name in seen:
                continue
            seen.add(queue.name)
            exchange = queue.exchange
            name = exchange.name if exchange is not None else ""
            kind = (getattr(exchange, "type", None) or "direct") if name else "direct"
            self._bindings.append((name or "", kind, queue.routing_key or queue.name, queue.name))
        self._remembered: dict[tuple[str, str], str] = {}

    def __call__(self, delivery_info: Mapping[str, Any] | None) -> str:
        info = delivery_info or {}
        routing_key = info.get("routing_key") or ""
        exchange = info.get("exchange") or ""
        if not exchange:
            return str(routing_key) or self.default  # the default exchange: the key names the queue
        remembered = self._remembered.get((exchange, routing_key))
        if remembered is None:
            if len(self._remembered) >= _MAX_REMEMBERED:
                self._remembered.clear()
            remembered = self._remembered[(exchange, routing_key)] = self._resolve(exchange, routing_key)
        return remembered

    def _resolve(self, exchange: str, routing_key: str) -> str:
        for name, kind, key, queue in self._bindings:
            if name != exchange:
                continue
            if (
                kind == "fanout"
                or (kind == "topic" and topic_matches(key, routing_key))
                or key == routing_key
            ):
                return queue
        return routing_key or self.default


def resolver_for(app: Celery, consuming: Iterable[Any] = ()) -> QueueResolver:
    """A resolver for ``app``'s declared queues, ``consuming`` (a worker's queues) first."""
    declared = app.amqp.queues
    return QueueResolver(
        [*consuming, *declared.consume_from.values(), *declared.values()],
        default=app.conf.task_default_queue or "",
    )
