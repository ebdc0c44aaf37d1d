"""The small interface every shared-state backend implements.

Features share counters, metric buckets, small settings and expiring maps across
processes and hosts through a handful of storage primitives (the shape of Dramatiq's
rate-limiter backends: storage here, algorithms with the features). An algorithm that
must read and write in one atomic step (the rate limiter's GCRA) is a :class:`Script`
the feature owns: Lua for Redis, a Python function for one SQLite transaction.

:class:`Batch` is the one way operations reach a store: every primitive is declared
there once and queued as an :class:`Op`; a backend sends a batch in one round trip
(one pipeline, one transaction). The backend's single-operation methods are shorthands
for a batch of one. That is how a task's rate-limit decision and the metrics writes
riding along with it share the single round trip the hot path is allowed.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, Protocol

#: Every primitive, by name: :class:`Batch` declares each, each backend implements each
#: (``tests/state/test_contract.py`` checks both).
OPERATIONS = (
    "incr",
    "get_counters",
    "hincr",
    "hgetall",
    "hset",
    "hdel",
    "hgetall_text",
    "delete",
    "put_expiring",
    "get_expiring",
    "script",
)


class Op(NamedTuple):
    """One queued operation: a name from :data:`OPERATIONS` and its arguments."""

    name: str
    args: tuple[Any, ...]


class Transaction(Protocol):
    """What a :class:`Script`'s Python side sees: string values with expiry, inside one transaction.

    Keys are given without the backend's prefix; ``now`` is the store's clock.
    """

    now: float

    def get(self, key: str) -> str | None:
        """The value of ``key``, None when missing or expired."""

    def set(self, key: str, value: str, ttl: float) -> None:
        """Store ``value``, expiring ``ttl`` seconds from now."""

    def incr(self, key: str, amount: int, ttl: float | None) -> int:
        """Add to a counter (the same counters as :meth:`Batch.incr`); return the new value."""


@functools.cache
def digest(source: str) -> str:
    """A script's id on Redis: its SHA-1."""
    return hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 - Redis's script id


@dataclasses.dataclass(frozen=True)
class Script:
    """An atomic read-and-write algorithm, owned by the feature that uses it.

    ``lua`` runs on Redis as one script (``KEYS`` are the prefixed keys, ``ARGV`` the
    arguments); its raw reply goes through ``from_reply``. ``python`` runs the same
    algorithm inside one SQLite transaction and returns the result directly. Both must
    agree: the backends' contract tests run a script on both, and each feature tests its own.
    """

    name: str
    lua: str
    python: Callable[[Transaction, Sequence[str], Sequence[Any]], Any]
    from_reply: Callable[[Any], Any]
    #: The script's id on Redis, computed once.
    sha: str = dataclasses.field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "sha", digest(self.lua))


class Batch:
    """Operations queued for one round trip: every primitive of the interface, declared once.

    Use as ``with state.batch() as b: b.incr(...); b.hincr(...)`` or call
    :meth:`execute` yourself to get the results, in the order queued (the types the
    backend's single-operation methods return: ``int`` for ``incr``, ``None`` for writes).
    """

    __slots__ = ("backend", "ops")

    def __init__(self, backend: StateBackend) -> None:
        self.backend = backend
        self.ops: list[Op] = []

    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> Batch:
        """Add ``amount`` to a counter, created with expiry ``ttl`` seconds; gives the new value."""
        self.ops.append(Op("incr", (key, amount, ttl)))
        return self

    def get_counters(self, keys: Sequence[str]) -> Batch:
        """Current values of counters (0 for a missing or expired one)."""
        self.ops.append(Op("get_counters", (tuple(keys),)))
        return self

    def hincr(self, key: str, fields: Mapping[str, float], ttl: float | None = None) -> Batch:
        """Add to several fields of a hash (a metrics bucket), which expires ``ttl`` after creation."""
        self.ops.append(Op("hincr", (key, dict(fields), ttl)))
        return self

    def hgetall(self, keys: Sequence[str]) -> Batch:
        """Fields of several :meth:`hincr` hashes, in order, as numbers; a missing one is ``{}``."""
        self.ops.append(Op("hgetall", (tuple(keys),)))
        return self

    def hset(self, key: str, fields: Mapping[str, str]) -> Batch:
        """Set fields of a text hash (no expiry): small settings shared by every worker."""
        self.ops.append(Op("hset", (key, dict(fields))))
        return self

    def hdel(self, key: str, fields: Sequence[str]) -> Batch:
        """Delete fields of a text hash; gives how many existed."""
        self.ops.append(Op("hdel", (key, tuple(fields))))
        return self

    def hgetall_text(self, key: str) -> Batch:
        """Fields of one text hash set with :meth:`hset`."""
        self.ops.append(Op("hgetall_text", (key,)))
        return self

    def delete(self, keys: Iterable[str]) -> Batch:
        """Delete keys of any kind."""
        self.ops.append(Op("delete", (tuple(keys),)))
        return self

    def put_expiring(self, key: str, field: str, value: str, ttl: float) -> Batch:
        """Set one field of an expiring map: it drops out ``ttl`` seconds later unless put again.

        Each field expires on its own (worker heartbeats: one field per worker), by the
        store's clock; ``ttl <= 0`` removes the field at once (a clean shutdown).
        """
        self.ops.append(Op("put_expiring", (key, field, value, ttl)))
        return self

    def get_expiring(self, key: str) -> Batch:
        """The live fields of an expiring map with their values, reaping expired ones."""
        self.ops.append(Op("get_expiring", (key,)))
        return self

    def script(self, script: Script, keys: Sequence[str], args: Sequence[Any] = ()) -> Batch:
        """Run a feature's atomic :class:`Script` on ``keys``; gives what the script returns."""
        self.ops.append(Op("script", (script, tuple(keys), tuple(args))))
        return self

    def execute(self) -> list[Any]:
        """Send the queued operations in one round trip; results in the order they were queued."""
        ops, self.ops = self.ops, []
        if not ops:
            return []
        return self.backend.execute(ops)

    def __enter__(self) -> Batch:
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            self.execute()


class StateBackend(abc.ABC):
    """Counters with expiry, numeric and text hashes, expiring maps and feature scripts.

    Keys are plain strings; the backend prepends its ``prefix`` so several
    apps (or tests) can share one store. Times come from the store's clock
    (Redis ``TIME``) where there is one, so hosts with skewed clocks agree.
    The single-operation methods below are a :class:`Batch` of one, documented there.
    """

    def __init__(self, url: str, prefix: str = "jobs:") -> None:
        self.url = url
        self.prefix = prefix

    def batch(self) -> Batch:
        """Queue several operations and send them in one round trip."""
        return Batch(self)

    def _one(self, batch: Batch) -> Any:
        return self.execute(batch.ops)[0]

    def incr(self, key: str, amount: int = 1, ttl: float | None = None) -> int:
        return int(self._one(self.batch().incr(key, amount, ttl)))

    def get_counters(self, keys: Sequence[str]) -> list[int]:
        return list(self._one(self.batch().get_counters(keys)))

    def hincr(self, key: str, fields: Mapping[str, float], ttl: float | None = None) -> None:
        self._one(self.batch().hincr(key, fields, ttl))

    def hgetall(self, keys: Sequence[str]) -> list[dict[str, float]]:
        return list(self._one(self.batch().hgetall(keys)))

    def hset(self, key: str, fields: Mapping[str, str]) -> None:
        self._one(self.batch().hset(key, fields))

    def hdel(self, key: str, fields: Sequence[str]) -> int:
        return int(self._one(self.batch().hdel(key, fields)))

    def hgetall_text(self, key: str) -> dict[str, str]:
        return dict(self._one(self.batch().hgetall_text(key)))

    def delete(self, keys: Iterable[str]) -> None:
        self._one(self.batch().delete(keys))

    def put_expiring(self, key: str, field: str, value: str, ttl: float) -> None:
        self._one(self.batch().put_expiring(key, field, value, ttl))

    def get_expiring(self, key: str) -> dict[str, str]:
        return dict(self._one(self.batch().get_expiring(key)))

    def script(self, script: Script, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        return self._one(self.batch().script(script, keys, args))

    # -- what a backend implements -------------------------------------------

    @abc.abstractmethod
    def execute(self, ops: Sequence[Op]) -> list[Any]:
        """Run ``ops`` in one round trip (one pipeline or one transaction), results in order.

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


def handlers(backend: object, prefix: str) -> dict[str, Callable[..., Any]]:
    """The backend's method ``{prefix}{name}`` for each of :data:`OPERATIONS`, looked up once.

    Raises:
        TypeError: the backend lacks one (a new primitive not implemented everywhere).
    """
    table = {}
    for name in OPERATIONS:
        method = getattr(backend, prefix + name, None)
        if method is None:
            raise TypeError(f"{type(backend).__name__} does not implement the state primitive {name!r}")
        table[name] = method
    return table
