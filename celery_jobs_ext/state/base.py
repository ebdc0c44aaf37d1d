"""The small interface every shared-state backend implements.

Features share counters, rate-limit budgets, metric buckets and in-flight sets
across processes and hosts through this interface only; algorithm and storage
stay apart (the shape of Dramatiq's rate-limiter backends).

Every operation can be queued on a :class:`Batch` and sent with others in one
round trip: that is how a task's rate-limit decision and metrics writes share
the single round trip the hot path is allowed.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, NamedTuple

#: Seconds a per-second start counter (``acquire(count_key=...)``) is kept.
COUNT_TTL = 120


class Op(NamedTuple):
    """One queued operation: the backend method's name and its arguments."""

    name: str
    args: tuple[Any, ...]


class Acquired(NamedTuple):
    """The outcome of a rate-limit decision."""

    allowed: bool
    #: Seconds until a slot frees up (0.0 when allowed).
    retry_after: float
    #: Slots taken: 1, or more when asked for ``most`` slots due within ``ahead`` seconds.
    granted: int = 1
    #: True when the stored budget (or start counter) was unusable (not a number, not finite,
    #: absurdly far ahead) and was replaced: the decision is as if the queue had been idle.
    repaired: bool = False


class StateBackend(abc.ABC):
    """Counters with expiry, GCRA budgets, hash buckets and expiring sets.

    Keys are plain strings; the backend prepends its ``prefix`` so several
    apps (or tests) can share one store. Times come from the store's clock
    (Redis ``TIME``) where there is one, so hosts with skewed clocks agree.
    """

    def __init__(self, url: str, prefix: str = "jobs:") -> None:
        self.url = url
        self.prefix = prefix

    # -- operations: each is a single op sent through execute() ---------------

    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        """Add ``amount`` to a counter, create it with expiry ``ttl`` seconds; return the new value."""
        return int(self.execute([Op("incr", (key, amount, ttl))])[0])

    def get_counters(self, keys: Sequence[str]) -> list[int]:
        """Current values of counters (0 for a missing or expired one)."""
        return list(self.execute([Op("get_counters", (tuple(keys),))])[0])

    def hincr(self, key: str, fields: Mapping[str, float], ttl: float | None = None) -> None:
        """Add to several fields of a hash (a metrics bucket), which expires after ``ttl``."""
        self.execute([Op("hincr", (key, dict(fields), ttl))])

    def hgetall(self, keys: Sequence[str]) -> list[dict[str, float]]:
        """Fields of several hashes, in order; a missing hash is an empty dict."""
        return list(self.execute([Op("hgetall", (tuple(keys),))])[0])

    def add_member(self, key: str, member: str, ttl: float) -> None:
        """Add ``member`` to an expiring set; it drops out after ``ttl`` seconds unless re-added."""
        self.execute([Op("add_member", (key, member, ttl))])

    def remove_member(self, key: str, member: str) -> bool:
        """Remove ``member``; True when it was there."""
        return bool(self.execute([Op("remove_member", (key, member))])[0])

    def count_members(self, key: str) -> int:
        """Number of live members, reaping expired ones."""
        return int(self.execute([Op("count_members", (key,))])[0])

    def acquire(
        self,
        key: str,
        interval: float,
        burst: int = 1,
        count_key: str | None = None,
        most: int = 1,
        ahead: float = 0.0,
    ) -> Acquired:
        """Take a slot of a GCRA budget: one job per ``interval`` seconds, ``burst`` back to back.

        With ``most`` > 1, also take the following slots that fall due within ``ahead``
        seconds, up to ``most`` in all: a fast queue's worker then asks once per batch, not
        once per job, and starts a job at most ``ahead`` seconds before its slot.
        With ``count_key``, an allowed call also adds the slots taken to the per-second counter
        ``{count_key}:{second}`` (kept :data:`COUNT_TTL` seconds), in the same atomic step,
        so "starts in the last minute" costs no extra round trip.
        Returns ``Acquired(allowed, retry_after, granted, repaired)``; a refused call consumes
        nothing. A stored budget this method did not write (not a finite number, or further
        ahead than any limit allows) is replaced as if the queue had been idle
        (``repaired``): a bad value in the store must not stop a queue or a worker.
        """
        result: Acquired = self.execute([Op("acquire", (key, interval, burst, count_key, most, ahead))])[0]
        return result

    def hset(self, key: str, fields: Mapping[str, str]) -> None:
        """Set fields of a hash (no expiry): small settings shared by every worker."""
        self.execute([Op("hset", (key, dict(fields)))])

    def hdel(self, key: str, fields: Sequence[str]) -> int:
        """Delete fields of a hash; return how many existed."""
        return int(self.execute([Op("hdel", (key, tuple(fields)))])[0])

    def hgetall_text(self, key: str) -> dict[str, str]:
        """Fields of one hash set with :meth:`hset`, as text."""
        result: dict[str, str] = self.execute([Op("hgetall_text", (key,))])[0]
        return result

    def delete(self, keys: Iterable[str]) -> None:
        """Delete keys of any kind."""
        self.execute([Op("delete", (tuple(keys),))])

    def put_expiring(self, key: str, field: str, value: str, ttl: float) -> None:
        """Set one field of an expiring map: it drops out ``ttl`` seconds later unless put again.

        Each field expires on its own (worker heartbeats: one field per worker), by the
        store's clock; ``ttl <= 0`` removes the field at once (a clean shutdown).
        """
        self.execute([Op("put_expiring", (key, field, value, ttl))])

    def get_expiring(self, key: str) -> dict[str, str]:
        """The live fields of an expiring map with their values, reaping expired ones."""
        result: dict[str, str] = self.execute([Op("get_expiring", (key,))])[0]
        return result

    def batch(self) -> Batch:
        """Queue several operations and send them in one round trip."""
        return Batch(self)

    # -- what a backend implements -------------------------------------------

    @abc.abstractmethod
    def execute(self, ops: Sequence[Op]) -> list[Any]:
        """Run ``ops`` in one round trip (one pipeline or one transaction), results in order.

        Results have the types the single-op methods return (``int`` for
        ``incr``, :class:`Acquired` for ``acquire``, ``None`` for writes).

        Raises:
            StateUnavailable: the store cannot be reached; the message names
                ``jobs_state_url``.
        """

    @abc.abstractmethod
    def now(self) -> float:
        """Seconds since the epoch by the store's clock."""

    @abc.abstractmethod
    def ping(self) -> None:
        """Check the store answers and is writable; raise StateUnavailable if not."""

    @abc.abstractmethod
    def clear_prefix(self) -> int:
        """Delete every key under this backend's prefix (tests and ``reset``); return how many."""

    def close(self) -> None:  # noqa: B027 - optional for backends without connections
        """Release connections; the backend may be used again afterwards."""


class Batch:
    """Operations queued for one round trip; mirrors the backend's methods.

    Use as ``with state.batch() as b: b.incr(...); b.hincr(...)`` or call
    :meth:`execute` yourself to get the results.
    """

    def __init__(self, backend: StateBackend) -> None:
        self.backend = backend
        self.ops: list[Op] = []

    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> Batch:
        self.ops.append(Op("incr", (key, amount, ttl)))
        return self

    def get_counters(self, keys: Sequence[str]) -> Batch:
        self.ops.append(Op("get_counters", (tuple(keys),)))
        return self

    def hincr(self, key: str, fields: Mapping[str, float], ttl: float | None = None) -> Batch:
        self.ops.append(Op("hincr", (key, dict(fields), ttl)))
        return self

    def hgetall(self, keys: Sequence[str]) -> Batch:
        self.ops.append(Op("hgetall", (tuple(keys),)))
        return self

    def add_member(self, key: str, member: str, ttl: float) -> Batch:
        self.ops.append(Op("add_member", (key, member, ttl)))
        return self

    def remove_member(self, key: str, member: str) -> Batch:
        self.ops.append(Op("remove_member", (key, member)))
        return self

    def count_members(self, key: str) -> Batch:
        self.ops.append(Op("count_members", (key,)))
        return self

    def acquire(
        self,
        key: str,
        interval: float,
        burst: int = 1,
        count_key: str | None = None,
        most: int = 1,
        ahead: float = 0.0,
    ) -> Batch:
        self.ops.append(Op("acquire", (key, interval, burst, count_key, most, ahead)))
        return self

    def delete(self, keys: Iterable[str]) -> Batch:
        self.ops.append(Op("delete", (tuple(keys),)))
        return self

    def put_expiring(self, key: str, field: str, value: str, ttl: float) -> Batch:
        self.ops.append(Op("put_expiring", (key, field, value, ttl)))
        return self

    def get_expiring(self, key: str) -> Batch:
        self.ops.append(Op("get_expiring", (key,)))
        return self

    def execute(self) -> list[Any]:
        """Send the queued operations; results in the order they were queued."""
        ops, self.ops = self.ops, []
        if not ops:
            return []
        return self.backend.execute(ops)

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self.execute()
