"""One contract, two backends: Redis and SQLite must behave the same."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from celery_jobs_ext.errors import StateUnavailable
from celery_jobs_ext.state import OPERATIONS, Batch, Script, StateBackend, Transaction, create_state
from tests.harness import unique, wait_for


def _count_writes(tx: Transaction, keys: Sequence[str], args: Sequence[Any]) -> int:
    written = int(tx.get(keys[0]) or 0) + 1
    tx.set(keys[0], str(written), float(args[0]))
    tx.incr(f"{keys[0]}:writes", 1, float(args[0]))
    return written


#: A feature-owned script as the rate limiter's GCRA is one: a read, a write and a counter.
COUNT_WRITES = Script(
    "count-writes",
    """
local written = tonumber(redis.call('GET', KEYS[1]) or '0') + 1
redis.call('SET', KEYS[1], tostring(written), 'PX', math.floor(ARGV[1] * 1000))
redis.call('INCRBY', KEYS[1] .. ':writes', 1)
redis.call('EXPIRE', KEYS[1] .. ':writes', ARGV[1])
return written
""",
    _count_writes,
    int,
)

ECHO_TWICE = Script(
    "echo-twice",
    "return {ARGV[1], ARGV[1]}",
    lambda tx, keys, args: [str(args[0]), str(args[0])],
    lambda raw: [value.decode() if isinstance(value, bytes) else value for value in raw],
)


def test_counter_increments_and_reads_back(state: StateBackend) -> None:
    assert state.incr("c") == 1
    assert state.incr("c", 5) == 6
    assert state.get_counters(["c", "missing"]) == [6, 0]


def test_counter_expires_after_its_ttl(state: StateBackend) -> None:
    state.incr("short", 3, ttl=0.2)
    assert state.get_counters(["short"]) == [3]
    wait_for(lambda: state.get_counters(["short"]) == [0], timeout=5, message="counter expiry")
    assert state.incr("short", 1, ttl=10) == 1


def test_hash_fields_add_up_and_keep_integers(state: StateBackend) -> None:
    state.hincr("bucket", {"started": 1, "duration": 0.25}, ttl=60)
    state.hincr("bucket", {"started": 2, "duration": 0.5, "failed": 1}, ttl=60)
    assert state.hgetall(["bucket", "none"]) == [{"started": 3, "duration": 0.75, "failed": 1}, {}]


def test_hash_expires_as_a_whole(state: StateBackend) -> None:
    state.hincr("bucket", {"a": 1}, ttl=0.2)
    wait_for(lambda: state.hgetall(["bucket"]) == [{}], timeout=5, message="hash expiry")


def test_batch_runs_all_operations_in_order(state: StateBackend) -> None:
    batch = state.batch()
    batch.incr("a", 2).script(ECHO_TWICE, ["s"], ["x"]).hincr("h", {"x": 1}).hset("t", {"f": "v"})
    batch.get_counters(["a"]).hgetall_text("t").get_expiring("w").hdel("t", ["f"])
    assert batch.execute() == [2, ["x", "x"], None, None, [2], {"f": "v"}, {}, 1]


def test_every_primitive_is_in_the_batch_and_in_each_backend(state: StateBackend) -> None:
    for name in OPERATIONS:
        assert callable(getattr(Batch, name)) and callable(getattr(StateBackend, name)), name
    public = {name for name in vars(Batch) if not name.startswith("_")} - {"execute", "backend", "ops"}
    assert public == set(OPERATIONS)


def test_a_feature_script_reads_and_writes_atomically_with_the_stores_clock(state: StateBackend) -> None:
    assert state.script(COUNT_WRITES, ["k"], [30]) == 1
    assert state.script(COUNT_WRITES, ["k"], [30]) == 2
    assert state.get_counters(["k:writes"]) == [2]


def test_delete_and_clear_prefix_remove_only_own_keys(state: StateBackend, state_url: str) -> None:
    other = create_state(state_url, prefix=unique("other") + ":")
    try:
        other.incr("keep")
        state.incr("a")
        state.hincr("h", {"x": 1})
        state.script(COUNT_WRITES, ["s"], [60])
        state.delete(["a"])
        assert state.get_counters(["a"]) == [0]
        state.clear_prefix()
        assert state.hgetall(["h"]) == [{}]
        assert state.script(COUNT_WRITES, ["s"], [60]) == 1  # the stored value went too
        assert other.get_counters(["keep"]) == [1]
    finally:
        other.clear_prefix()
        other.close()


def test_now_is_close_to_the_wall_clock(state: StateBackend) -> None:
    import time

    assert abs(state.now() - time.time()) < 5


def _hammer(url: str, prefix: str, count: int) -> None:
    backend = create_state(url, prefix=prefix)
    for _ in range(count):
        backend.incr("shared")
    backend.close()


def test_concurrent_processes_lose_no_increment(state: StateBackend, state_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hammer, args=(state_url, state.prefix, 300)) for _ in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    assert state.get_counters(["shared"]) == [1200]


def test_unreachable_redis_raises_state_unavailable_naming_the_setting() -> None:
    backend = create_state("redis://:hunter2@127.0.0.1:1/0")
    with pytest.raises(StateUnavailable) as error:
        backend.ping()
    message = str(error.value)
    assert "jobs_state_url" in message
    assert "hunter2" not in message


def test_unwritable_sqlite_raises_state_unavailable_naming_the_setting(tmp_path: Path) -> None:
    backend = create_state(f"sqlite:///{tmp_path}/no/such/dir/state.db")
    with pytest.raises(StateUnavailable, match="jobs_state_url"):
        backend.ping()
    if os.geteuid() != 0:  # root can write anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        with pytest.raises(StateUnavailable, match="jobs_state_url"):
            create_state(f"sqlite:///{locked}/state.db").ping()


def test_redis_reloads_scripts_it_forgot_without_applying_twice(redis_url: str) -> None:
    import redis

    backend = create_state(redis_url, prefix=unique("noscript") + ":")
    try:
        backend.incr("c")
        redis.Redis.from_url(redis_url).script_flush()
        assert backend.incr("c") == 2
        redis.Redis.from_url(redis_url).script_flush()
        results = backend.batch().incr("c").incr("c").script(COUNT_WRITES, ["k"], [30]).execute()
        assert results == [3, 4, 1]
        assert backend.get_counters(["c", "k:writes"]) == [4, 1]
    finally:
        backend.clear_prefix()


def test_hash_settings_set_read_and_delete(state: StateBackend) -> None:
    state.hset("overrides", {"default": "50", "fast": "600"})
    state.hset("overrides", {"default": "60"})
    assert state.hgetall_text("overrides") == {"default": "60", "fast": "600"}
    assert state.hdel("overrides", ["fast", "missing"]) == 1
    assert state.hgetall_text("overrides") == {"default": "60"}
    assert state.hgetall_text("none") == {}


def test_expiring_map_fields_expire_one_by_one(state: StateBackend) -> None:
    state.put_expiring("workers", "a", '{"queues": ["x"]}', ttl=60)
    state.put_expiring("workers", "b|odd", "value|with|bars", ttl=0.3)
    assert state.get_expiring("workers") == {"a": '{"queues": ["x"]}', "b|odd": "value|with|bars"}
    wait_for(lambda: state.get_expiring("workers") == {"a": '{"queues": ["x"]}'}, timeout=5)
    state.put_expiring("workers", "a", "renewed", ttl=60)
    assert state.get_expiring("workers") == {"a": "renewed"}
    assert state.get_expiring("none") == {}


def test_expiring_map_field_put_with_zero_ttl_is_removed_at_once(state: StateBackend) -> None:
    state.put_expiring("workers", "a", "1", ttl=60)
    state.put_expiring("workers", "b", "2", ttl=60)
    state.put_expiring("workers", "a", "", ttl=0)
    assert state.get_expiring("workers") == {"b": "2"}


def test_expiring_map_in_a_batch_with_other_operations(state: StateBackend) -> None:
    writes = (
        state.batch()
        .hincr("bucket", {"started:q": 2, "duration_sum:q": 0.5}, ttl=60)
        .put_expiring("workers", "w1", "{}", ttl=60)
        .execute()
    )
    assert writes == [None, None]
    reads = state.batch().get_expiring("workers").hgetall(["bucket"]).execute()
    assert reads == [{"w1": "{}"}, [{"started:q": 2, "duration_sum:q": 0.5}]]
    state.clear_prefix()
    assert state.get_expiring("workers") == {}


def test_redis_batch_reads_its_own_writes_after_scripts_are_forgotten(redis_url: str) -> None:
    import redis

    backend = create_state(redis_url, prefix=unique("noscript-read") + ":")
    try:
        backend.incr("c")
        redis.Redis.from_url(redis_url).script_flush()
        results = backend.batch().incr("c", 5).get_counters(["c"]).execute()
        assert results == [6, [6]]
    finally:
        backend.clear_prefix()


def test_redis_errors_other_than_connection_errors_become_state_unavailable(redis_url: str) -> None:
    import redis

    backend = create_state(redis_url, prefix=unique("wrongtype") + ":")
    try:
        redis.Redis.from_url(redis_url).set(backend.prefix + "bucket", "not a hash")
        with pytest.raises(StateUnavailable, match="jobs_state_url"):
            backend.hincr("bucket", {"x": 1})
    finally:
        backend.clear_prefix()
