"""Shared state on Redis: every write is one atomic Lua script, every batch one pipeline.

Times come from Redis ``TIME`` inside the scripts, so workers on hosts with
skewed clocks still share one budget and one expiry clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis
from kombu.utils.url import maybe_sanitize_url

from celery_jobs_ext.errors import StateUnavailable
from celery_jobs_ext.state.base import Acquired, Op, StateBackend

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

_INCR = """
local v = redis.call('INCRBY', KEYS[1], ARGV[1])
if ARGV[2] ~= '' and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return v
"""

_HINCR = """
for i = 2, #ARGV, 2 do
  if string.find(ARGV[i + 1], '[.eE]') then
    redis.call('HINCRBYFLOAT', KEYS[1], ARGV[i], ARGV[i + 1])
  else
    redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
  end
end
if ARGV[1] ~= '' and redis.call('PTTL', KEYS[1]) == -1 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return 1
"""

# GCRA: a job may start at ``now`` when now >= TAT - (burst - 1) * interval; the
# theoretical arrival time then moves one interval on. A refusal changes nothing.
_ACQUIRE = (
    _NOW
    + """
local interval = tonumber(ARGV[1])
local tolerance = (tonumber(ARGV[2]) - 1) * interval
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return {0, tostring(allow_at - now)}
end
local new_tat = tat + interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return {1, '0'}
"""
)

_ADD_MEMBER = (
    _NOW
    + """
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl * 1000 then
  redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000))
end
return 1
"""
)

_COUNT_MEMBERS = (
    _NOW
    + """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
return redis.call('ZCARD', KEYS[1])
"""
)

_CONNECTION_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def _ms(ttl: float | None) -> str:
    return "" if ttl is None else str(max(1, int(ttl * 1000)))


def _number(raw: Any) -> float:
    value = float(raw)
    return int(value) if value.is_integer() else value


class RedisState(StateBackend):
    """:class:`StateBackend` on one Redis database, through one connection pool per process."""

    def __init__(self, url: str, prefix: str = "jobs:") -> None:
        super().__init__(url, prefix)
        self.client = redis.Redis.from_url(
            url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
        )
        register = self.client.register_script
        self._incr = register(_INCR)
        self._hincr = register(_HINCR)
        self._acquire = register(_ACQUIRE)
        self._add_member = register(_ADD_MEMBER)
        self._count_members = register(_COUNT_MEMBERS)

    def _unavailable(self, exc: Exception) -> StateUnavailable:
        return StateUnavailable(
            f"Shared state at jobs_state_url={maybe_sanitize_url(self.url)} is unreachable: {exc}"
        )

    def execute(self, ops: Sequence[Op]) -> list[Any]:
        pipe = self.client.pipeline(transaction=False)
        spans: list[tuple[int, Callable[[list[Any]], Any]]] = []
        for op in ops:
            queue = getattr(self, "_queue_" + op.name)
            before = len(pipe)
            post = queue(pipe, *op.args)
            spans.append((len(pipe) - before, post))
        try:
            raw = pipe.execute()
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc) from exc
        results: list[Any] = []
        position = 0
        for count, post in spans:
            results.append(post(raw[position : position + count]))
            position += count
        return results

    # Each _queue_* puts its commands on the pipeline and returns how to read their replies.

    def _queue_incr(self, pipe: Any, key: str, amount: int, ttl: float | None) -> Any:
        self._incr(keys=[self.prefix + key], args=[amount, _ms(ttl)], client=pipe)
        return lambda raw: int(raw[0])

    def _queue_get_counters(self, pipe: Any, keys: tuple[str, ...]) -> Any:
        if not keys:
            return lambda raw: []
        pipe.mget([self.prefix + key for key in keys])
        return lambda raw: [int(float(v)) if v is not None else 0 for v in raw[0]]

    def _queue_hincr(self, pipe: Any, key: str, fields: dict[str, float], ttl: float | None) -> Any:
        args: list[Any] = [_ms(ttl)]
        for name, amount in fields.items():
            args += [name, repr(float(amount)) if isinstance(amount, float) else int(amount)]
        self._hincr(keys=[self.prefix + key], args=args, client=pipe)
        return lambda raw: None

    def _queue_hgetall(self, pipe: Any, keys: tuple[str, ...]) -> Any:
        for key in keys:
            pipe.hgetall(self.prefix + key)
        return lambda raw: [{k.decode(): _number(v) for k, v in h.items()} for h in raw]

    def _queue_add_member(self, pipe: Any, key: str, member: str, ttl: float) -> Any:
        self._add_member(keys=[self.prefix + key], args=[member, ttl], client=pipe)
        return lambda raw: None

    def _queue_remove_member(self, pipe: Any, key: str, member: str) -> Any:
        pipe.zrem(self.prefix + key, member)
        return lambda raw: bool(raw[0])

    def _queue_count_members(self, pipe: Any, key: str) -> Any:
        self._count_members(keys=[self.prefix + key], args=[], client=pipe)
        return lambda raw: int(raw[0])

    def _queue_acquire(self, pipe: Any, key: str, interval: float, burst: int) -> Any:
        self._acquire(keys=[self.prefix + key], args=[repr(float(interval)), int(burst)], client=pipe)
        return lambda raw: Acquired(bool(int(raw[0][0])), float(raw[0][1]))

    def _queue_delete(self, pipe: Any, keys: tuple[str, ...]) -> Any:
        if keys:
            pipe.delete(*[self.prefix + key for key in keys])
        return lambda raw: None

    def now(self) -> float:
        try:
            seconds, micros = self.client.time()
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc) from exc
        return seconds + micros / 1_000_000

    def ping(self) -> None:
        try:
            self.client.ping()
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc) from exc
        except redis.exceptions.RedisError as exc:
            raise StateUnavailable(
                f"Shared state at jobs_state_url={maybe_sanitize_url(self.url)} refused: {exc}"
            ) from exc

    def clear_prefix(self) -> int:
        deleted = 0
        try:
            for batch in _chunks(self.client.scan_iter(match=self.prefix + "*", count=500), 500):
                deleted += self.client.delete(*batch)
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc) from exc
        return deleted

    def close(self) -> None:
        self.client.connection_pool.disconnect()


def _chunks(items: Any, size: int) -> Any:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
