"""One contract, two backends: Redis and SQLite must behave the same."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from celery_jobs_ext.errors import StateUnavailable
from celery_jobs_ext.state import StateBackend, create_state
from tests.harness import unique, wait_for


@pytest.fixture(params=["redis", "sqlite"])
def state_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "redis":
        return str(request.getfixturevalue("redis_url"))
    return f"sqlite:///{tmp_path}/state.db"


@pytest.fixture
def state(state_url: str) -> Iterator[StateBackend]:
    backend = create_state(state_url, prefix=unique("contract") + ":")
    yield backend
    backend.clear_prefix()
    backend.close()


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


def test_expiring_set_counts_live_members_and_reaps_the_rest(state: StateBackend) -> None:
    state.add_member("inflight", "task-1", ttl=60)
    state.add_member("inflight", "task-2", ttl=0.2)
    assert state.count_members("inflight") == 2
    wait_for(lambda: state.count_members("inflight") == 1, timeout=5, message="member expiry")
    assert state.remove_member("inflight", "task-1") is True
    assert state.remove_member("inflight", "task-1") is False
    assert state.count_members("inflight") == 0


def test_acquire_spaces_jobs_by_the_interval(state: StateBackend) -> None:
    first = state.acquire("budget", interval=10.0, burst=1)
    second = state.acquire("budget", interval=10.0, burst=1)
    assert first.allowed and first.retry_after == 0
    assert not second.allowed
    assert 9.0 < second.retry_after <= 10.0


def test_acquire_allows_the_burst_back_to_back_then_refuses(state: StateBackend) -> None:
    results = [state.acquire("burst", interval=10.0, burst=3).allowed for _ in range(5)]
    assert results == [True, True, True, False, False]


def test_acquire_takes_the_slots_due_within_ahead_up_to_most(state: StateBackend) -> None:
    first = state.acquire("ahead", interval=1.0, burst=1, most=8, ahead=3.5)
    # After an idle period: the slot due now plus the three due within 3.5 s.
    assert first.allowed and first.granted == 4
    refused = state.acquire("ahead", interval=1.0, burst=1, most=8, ahead=3.5)
    assert not refused.allowed and refused.granted == 0
    assert 3.0 < refused.retry_after <= 4.0  # the four slots taken moved the budget four intervals on


def test_acquire_never_takes_more_than_most(state: StateBackend) -> None:
    taken = state.acquire("capped", interval=0.001, burst=1, most=5, ahead=10.0)
    assert taken.granted == 5
    assert state.acquire("single", interval=0.001, burst=1).granted == 1


def test_a_refused_acquire_consumes_nothing(state: StateBackend) -> None:
    state.acquire("budget", interval=0.3, burst=1)
    for _ in range(20):
        state.acquire("budget", interval=0.3, burst=1)
    # Had refusals moved the budget on, this would wait far longer than one interval.
    wait_for(lambda: state.acquire("budget", interval=0.3, burst=1).allowed, timeout=2)


def test_batch_runs_all_operations_in_order(state: StateBackend) -> None:
    batch = state.batch()
    batch.incr("a", 2).acquire("b", 1.0, 1).hincr("h", {"x": 1}).count_members("m").get_counters(["a"])
    results = batch.execute()
    assert results[0] == 2
    assert results[1].allowed is True
    assert results[2] is None
    assert results[3] == 0
    assert results[4] == [2]


def test_delete_and_clear_prefix_remove_only_own_keys(state: StateBackend, state_url: str) -> None:
    other = create_state(state_url, prefix=unique("other") + ":")
    try:
        other.incr("keep")
        state.incr("a")
        state.hincr("h", {"x": 1})
        state.add_member("s", "m", ttl=60)
        state.delete(["a"])
        assert state.get_counters(["a"]) == [0]
        state.clear_prefix()
        assert state.hgetall(["h"]) == [{}]
        assert state.count_members("s") == 0
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


def _take(url: str, prefix: str, attempts: int, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    backend = create_state(url, prefix=prefix)
    allowed = sum(backend.acquire("budget", interval=60.0, burst=5).allowed for _ in range(attempts))
    results.put(allowed)
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


def test_concurrent_processes_share_one_budget(state: StateBackend, state_url: str) -> None:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    workers = [context.Process(target=_take, args=(state_url, state.prefix, 20, results)) for _ in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(60)
        assert process.exitcode == 0
    # burst 5, one more per minute: across all processes exactly 5 start now.
    assert sum(results.get(timeout=5) for _ in workers) == 5


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
        results = backend.batch().incr("c").incr("c").acquire("b", 10.0, 1).execute()
        assert results[:2] == [3, 4] and results[2].allowed
        assert backend.get_counters(["c"]) == [4]
    finally:
        backend.clear_prefix()


def test_acquire_counts_allowed_starts_per_second(state: StateBackend) -> None:
    import math

    before = math.floor(state.now())
    allowed = [state.acquire("budget", interval=10.0, burst=3, count_key="starts").allowed for _ in range(5)]
    after = math.floor(state.now())
    assert allowed == [True, True, True, False, False]
    counts = state.get_counters([f"starts:{second}" for second in range(before, after + 1)])
    assert sum(counts) == 3
    state.acquire("fast", interval=0.001, burst=1, count_key="starts", most=4, ahead=1.0)
    after = math.floor(state.now())
    counts = state.get_counters([f"starts:{second}" for second in range(before, after + 1)])
    assert sum(counts) == 7  # every slot taken ahead counts as a start


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
