"""Shared state on Redis: every write is one atomic Lua script, every batch one pipeline.

Times come from Redis ``TIME`` inside the scripts, so workers on hosts with
skewed clocks still share one budget and one expiry clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import redis
from kombu.utils.url import maybe_sanitize_url
from redis.backoff import NoBackoff
from redis.retry import Retry

from celery_jobs_ext.errors import StateUnavailable
from celery_jobs_ext.state.base import Op, Script, StateBackend, digest, handlers

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

# An expiring map: one hash, each value stored as "<expiry by Redis TIME>|<value>"; readers
# drop (and delete) the expired fields, and the whole hash expires with its last field.
_PUT_EXPIRING = (
    _NOW
    + """
local ttl = tonumber(ARGV[3])
if ttl <= 0 then
  return redis.call('HDEL', KEYS[1], ARGV[1])
end
redis.call('HSET', KEYS[1], ARGV[1], string.format('%.3f', now + ttl) .. '|' .. ARGV[2])
if redis.call('PTTL', KEYS[1]) < ttl * 1000 then
  redis.call('PEXPIRE', KEYS[1], math.ceil(ttl * 1000))
end
return 1
"""
)

_GET_EXPIRING = (
    _NOW
    + """
local all = redis.call('HGETALL', KEYS[1])
local live = {}
for i = 1, #all, 2 do
  local stored = all[i + 1]
  local bar = string.find(stored, '|', 1, true)
  local expires = bar and tonumber(string.sub(stored, 1, bar - 1)) or 0
  if expires <= now then
    redis.call('HDEL', KEYS[1], all[i])
  else
    live[#live + 1] = all[i]
    live[#live + 1] = string.sub(stored, bar + 1)
  end
end
return live
"""
)

#: Every error redis-py raises for a store that cannot serve us now: down, read-only
#: after a failover, out of memory, busy, or answering garbage. All become StateUnavailable,
#: which callers on the worker's hot path know how to survive.
_CONNECTION_ERRORS = (redis.exceptions.RedisError, ValueError)
#: Plain reads a batch may hold; re-sent after scripts Redis had forgotten are re-run.
_READS = frozenset({"MGET", "HGETALL"})


def _ms(ttl: float | None) -> str:
    return "" if ttl is None else str(max(1, int(ttl * 1000)))


def _text(raw: Any) -> str:
    # "replace": bytes that are not UTF-8 (written by something else) must not raise here.
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)


def _number(raw: Any) -> float:
    value = float(raw)
    return int(value) if value.is_integer() else value


class RedisState(StateBackend):
    """:class:`StateBackend` on one Redis database, through one connection pool per process.

    Commands are sent raw (``EVALSHA`` with locally computed digests) rather than
    through redis-py's ``Script`` objects: a pipeline holding those asks Redis
    ``SCRIPT EXISTS`` on every execute, a second round trip on the hot path.
    """

    def __init__(self, url: str, prefix: str = "jobs:", timeout: float | None = None) -> None:
        super().__init__(url, prefix)
        if timeout is None:
            self.client = redis.Redis.from_url(
                url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=30
            )
        else:  # an operator command: one attempt, bounded
            self.client = redis.Redis.from_url(
                url,
                socket_connect_timeout=timeout,
                socket_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
            )
        #: Script sources by digest: ours, and each feature script once it has been used.
        self._scripts: dict[str, str] = {}
        self._incr = self._known(_INCR)
        self._hincr = self._known(_HINCR)
        self._put_expiring = self._known(_PUT_EXPIRING)
        self._get_expiring = self._known(_GET_EXPIRING)
        #: Scripts this process has sent ``SCRIPT LOAD`` for.
        self._loaded: set[str] = set()
        self._queue = handlers(self, "_queue_")

    def _known(self, source: str) -> str:
        """Remember a script's source (to load it again after NOSCRIPT); return its digest."""
        sha = digest(source)
        self._scripts[sha] = source
        return sha

    def _unavailable(self, exc: Exception) -> StateUnavailable:
        return StateUnavailable(
            f"Shared state at jobs_state_url={maybe_sanitize_url(self.url)} is unreachable or "
            f"refused the command: {exc.__class__.__name__}: {exc}"
        )

    def execute(self, ops: Sequence[Op]) -> list[Any]:
        commands: list[tuple[Any, ...]] = []
        spans: list[tuple[int, Callable[[list[Any]], Any]]] = []
        for op in ops:
            before = len(commands)
            post = self._queue[op.name](commands, *op.args)
            spans.append((len(commands) - before, post))
        try:
            raw = self._send(commands)
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc) from exc
        results: list[Any] = []
        position = 0
        for count, post in spans:
            results.append(post(raw[position : position + count]))
            position += count
        return results

    def _send(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """One round trip, in order.

        A script Redis forgot (restart, ``SCRIPT FLUSH``) fails with NOSCRIPT and
        nothing else: the scripts are loaded and the failed ones re-run, then the
        batch's later plain reads are sent again so they see those writes.
        """
        if not commands:
            return []
        if len(commands) == 1:
            try:
                replies: list[Any] = [self.client.execute_command(*commands[0])]  # type: ignore[no-untyped-call]
            except redis.exceptions.NoScriptError as exc:
                replies = [exc]
        else:
            pipe = self.client.pipeline(transaction=False)
            for command in commands:
                pipe.execute_command(*command)  # type: ignore[no-untyped-call]
            replies = pipe.execute(raise_on_error=False)
        forgotten = False
        for index, reply in enumerate(replies):
            if isinstance(reply, redis.exceptions.NoScriptError):
                if not forgotten:
                    forgotten = True
                    for source in list(self._scripts.values()):
                        self.client.script_load(source)  # type: ignore[no-untyped-call]
                replies[index] = self.client.execute_command(*commands[index])  # type: ignore[no-untyped-call]
            elif forgotten and commands[index][0] in _READS:
                # Re-read after the re-run writes, so the batch still reads its own writes.
                replies[index] = self.client.execute_command(*commands[index])  # type: ignore[no-untyped-call]
            elif isinstance(reply, Exception):
                raise reply
        return replies

    def _evalsha(self, commands: list[Any], sha: str, keys: int, *keys_then_args: Any) -> None:
        """Append a script call; the first time this process sends a script, load it in the same trip.

        Loading ahead keeps a fresh process from meeting NOSCRIPT (and its re-sent reads);
        a Redis that forgets scripts later (restart, ``SCRIPT FLUSH``) still goes through
        :meth:`_send`'s reload.
        """
        if sha not in self._loaded:
            self._loaded.add(sha)
            commands.append(("SCRIPT", "LOAD", self._scripts[sha]))
        commands.append(("EVALSHA", sha, keys, *keys_then_args))

    # Each _queue_* appends its commands and returns how to read their replies (the last one's).

    def _queue_incr(self, commands: list[Any], key: str, amount: int, ttl: float | None) -> Any:
        self._evalsha(commands, self._incr, 1, self.prefix + key, amount, _ms(ttl))
        return lambda raw: int(raw[-1])

    def _queue_get_counters(self, commands: list[Any], keys: tuple[str, ...]) -> Any:
        if not keys:
            return lambda raw: []
        commands.append(("MGET", *[self.prefix + key for key in keys]))
        return lambda raw: [int(float(v)) if v is not None else 0 for v in raw[0]]

    def _queue_hincr(self, commands: list[Any], key: str, fields: dict[str, float], ttl: float | None) -> Any:
        args: list[Any] = [_ms(ttl)]
        for name, amount in fields.items():
            args += [name, repr(float(amount)) if isinstance(amount, float) else int(amount)]
        self._evalsha(commands, self._hincr, 1, self.prefix + key, *args)
        return lambda raw: None

    def _queue_hgetall(self, commands: list[Any], keys: tuple[str, ...]) -> Any:
        for key in keys:
            commands.append(("HGETALL", self.prefix + key))
        return lambda raw: [{_text(k): _number(v) for k, v in h.items()} for h in raw]

    def _queue_script(
        self, commands: list[Any], script: Script, keys: tuple[str, ...], args: tuple[Any, ...]
    ) -> Any:
        sha = script.sha
        if sha not in self._scripts:
            self._scripts[sha] = script.lua
        prefix = self.prefix
        self._evalsha(commands, sha, len(keys), *[prefix + key for key in keys], *args)
        return lambda raw: script.from_reply(raw[-1])

    def _queue_hset(self, commands: list[Any], key: str, fields: dict[str, str]) -> Any:
        if fields:
            commands.append(("HSET", self.prefix + key, *[x for pair in fields.items() for x in pair]))
        return lambda raw: None

    def _queue_hdel(self, commands: list[Any], key: str, fields: tuple[str, ...]) -> Any:
        if not fields:
            return lambda raw: 0
        commands.append(("HDEL", self.prefix + key, *fields))
        return lambda raw: int(raw[0])

    def _queue_hgetall_text(self, commands: list[Any], key: str) -> Any:
        commands.append(("HGETALL", self.prefix + key))
        return lambda raw: {_text(k): _text(v) for k, v in raw[0].items()}

    def _queue_delete(self, commands: list[Any], keys: tuple[str, ...]) -> Any:
        if keys:
            commands.append(("DEL", *[self.prefix + key for key in keys]))
        return lambda raw: None

    def _queue_put_expiring(self, commands: list[Any], key: str, field: str, value: str, ttl: float) -> Any:
        self._evalsha(commands, self._put_expiring, 1, self.prefix + key, field, value, repr(float(ttl)))
        return lambda raw: None

    def _queue_get_expiring(self, commands: list[Any], key: str) -> Any:
        self._evalsha(commands, self._get_expiring, 1, self.prefix + key)

        def read(raw: list[Any]) -> dict[str, str]:
            flat = raw[-1]
            return {_text(flat[i]): _text(flat[i + 1]) for i in range(0, len(flat), 2)}

        return read

    def now(self) -> float:
        try:
            seconds, micros = self.client.time()
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc) from exc
        return float(seconds) + float(micros) / 1_000_000

    def ping(self) -> None:
        try:
            self.client.ping()
        except _CONNECTION_ERRORS as exc:
            raise self._unavailable(exc) from exc

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
