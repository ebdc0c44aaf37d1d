"""The rate limiter's algorithm: one GCRA decision per call, atomic on either backend.

GCRA (the generic cell rate algorithm): a job may start at ``now`` when
``now >= TAT - (burst - 1) * interval``; the theoretical arrival time (TAT) then moves
one interval on, and a refusal changes nothing. Evenly spaced starts, ``burst`` back to
back after an idle period, never a fixed window that lets twice the limit through around
its boundary.

The decision must read and write the budget in one atomic step across every worker, so
it is a :class:`~celery_jobs_ext.state.Script`: Lua on Redis (on Redis ``TIME``, so hosts
with skewed clocks share one clock), and the same steps in Python inside one SQLite
transaction. The shared state only stores; this module is where the algorithm lives.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

from celery_jobs_ext.state import Batch, Script, StateBackend, Transaction

#: Seconds a per-second start counter (``count_key``) is kept.
COUNT_TTL = 120


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


# KEYS[1]: the budget (the TAT as text); KEYS[2], when given: the start counters' base key.
# ARGV: interval, burst, count TTL, most, ahead. ARGV[4] > 1 also takes the next slots due
# by now + ARGV[5] seconds (at most ARGV[4]). A stored TAT that is not a finite number
# within (burst + most) days of now (or a start counter that is not an integer) was not
# written by this script: it is replaced, and the fourth reply says so, rather than failing
# every decision of the queue. (The counter key is built here from Redis TIME: on a cluster
# it shares the budget's hash slot only if the user's keys are tagged; not supported.)
_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local tolerance = (tonumber(ARGV[2]) - 1) * interval
local most = tonumber(ARGV[4])
local repaired = 0
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  local parsed = tonumber(stored)
  if parsed and parsed == parsed and parsed > -math.huge
      and parsed <= now + (tonumber(ARGV[2]) + most) * math.max(interval, 86400) then
    tat = parsed
  else
    repaired = 1
  end
end
if tat < now then tat = now end
local allow_at = tat - tolerance
if now < allow_at then
  return {0, tostring(allow_at - now), 0, repaired}
end
local granted = 1
if most > 1 then
  granted = math.min(most, math.floor((now + tonumber(ARGV[5]) - allow_at) / interval) + 1)
end
local new_tat = tat + granted * interval
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
if KEYS[2] then
  local counter = KEYS[2] .. ':' .. tostring(math.floor(now))
  local added = redis.pcall('INCRBY', counter, granted)
  if type(added) == 'table' and added.err then
    redis.call('SET', counter, granted)
    repaired = 1
  end
  redis.call('EXPIRE', counter, tonumber(ARGV[3]))
end
return {1, '0', granted, repaired}
"""


def _python(tx: Transaction, keys: Sequence[str], args: Sequence[Any]) -> Acquired:
    """The Lua script's steps, for SQLite: the same decision inside the batch's transaction."""
    interval, burst, count_ttl = float(args[0]), int(args[1]), int(args[2])
    most, ahead = int(args[3]), float(args[4])
    now = tx.now
    tat, repaired = now, False
    stored = tx.get(keys[0])
    if stored is not None:
        try:
            parsed = float(stored)
        except ValueError:
            parsed = math.nan
        if math.isfinite(parsed) and parsed <= now + (burst + most) * max(interval, 86400):
            tat = max(parsed, now)
        else:
            repaired = True
    allow_at = tat - (burst - 1) * interval
    if now < allow_at:
        return Acquired(False, allow_at - now, 0, repaired)
    granted = min(most, math.floor((now + ahead - allow_at) / interval) + 1) if most > 1 else 1
    new_tat = tat + granted * interval
    tx.set(keys[0], repr(new_tat), new_tat - now + 1.0)
    if len(keys) > 1:
        tx.incr(f"{keys[1]}:{math.floor(now)}", granted, count_ttl)
    return Acquired(True, 0.0, granted, repaired)


def _from_reply(raw: Any) -> Acquired:
    return Acquired(bool(int(raw[0])), float(raw[1]), int(raw[2]), bool(int(raw[3])))


GCRA = Script("gcra", _LUA, _python, _from_reply)


def take_slots(
    batch: Batch,
    key: str,
    interval: float,
    burst: int = 1,
    count_key: str | None = None,
    most: int = 1,
    ahead: float = 0.0,
) -> Batch:
    """Queue a decision on the budget ``key``: one job per ``interval`` seconds, ``burst`` back to back.

    With ``most`` > 1, also take the following slots that fall due within ``ahead``
    seconds, up to ``most`` in all: a fast queue's worker then asks once per batch, not
    once per job, and starts a job at most ``ahead`` seconds before its slot.
    With ``count_key``, an allowed call also adds the slots taken to the per-second counter
    ``{count_key}:{second}`` (kept :data:`COUNT_TTL` seconds), in the same atomic step,
    so "starts in the last minute" costs no extra round trip.
    The batch's result is an :class:`Acquired`; a refused call consumes nothing. A stored
    budget this algorithm did not write (not a finite number, or further ahead than any
    limit allows) is replaced as if the queue had been idle (``repaired``): a bad value in
    the store must not stop a queue or a worker.
    """
    keys = (key, count_key) if count_key else (key,)
    args = (repr(float(interval)), int(burst), COUNT_TTL, int(most), repr(float(ahead)))
    return batch.script(GCRA, keys, args)


def acquire(
    state: StateBackend,
    key: str,
    interval: float,
    burst: int = 1,
    count_key: str | None = None,
    most: int = 1,
    ahead: float = 0.0,
) -> Acquired:
    """:func:`take_slots` in a round trip of its own."""
    result: Acquired = take_slots(state.batch(), key, interval, burst, count_key, most, ahead).execute()[0]
    return result
