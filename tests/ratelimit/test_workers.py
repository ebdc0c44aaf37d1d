"""Rate limits enforced by real worker subprocesses sharing one budget.

Tasks write their own start times to an independent ledger (a Redis list written by the
task body with redis-py, not by the code under test); the assertions read that ledger.
"""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery

from celery_jobs_ext.ratelimit import hold_capacity, slots_ahead
from tests.harness import PrivateRedis, WorkerProcess, unique, wait_for


class Ledger:
    def __init__(self, url: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.url = url
        self.key = unique("ledger")

    def entries(self) -> list[tuple[float, str, str, int]]:
        return [tuple(json.loads(raw)) for raw in self.client.lrange(self.key, 0, -1)]  # type: ignore[misc]

    def starts(self, tag: str) -> list[float]:
        return sorted(entry[0] for entry in self.entries() if entry[1] == tag)

    def count(self) -> int:
        return int(self.client.llen(self.key))

    def close(self) -> None:
        self.client.delete(self.key)


@pytest.fixture
def ledger(redis_url: str) -> Iterator[Ledger]:
    book = Ledger(redis_url)
    yield book
    book.close()


def worker_env(app: Celery, ledger: Ledger, **settings: Any) -> dict[str, str]:
    conf = {
        "broker_url": app.conf.broker_url,
        "jobs_state_prefix": app.conf.jobs_state_prefix,
        "task_acks_late": True,
        "task_ignore_result": True,
        # A SIGKILLed worker's unacknowledged messages come back after 20 s, swept every second.
        "broker_transport_options": {
            "visibility_timeout": 20,
            "unacked_restore_interval": 1,
            "unacked_restore_throttle": 1,
        },
        **settings,
    }
    return {"JOBS_TEST_CONF": json.dumps(conf), "JOBS_TEST_LEDGER_URL": ledger.url}


def publish(app: Celery, ledger: Ledger, queue: str, tag: str, count: int, seconds: float = 0.0) -> list[str]:
    ids = []
    for _ in range(count):
        result = app.send_task("tests.record_start", args=[ledger.key, tag, seconds], queue=queue)
        ids.append(result.id)
    return ids


def max_in_window(starts: list[float], window: float = 60.0) -> int:
    """The largest number of starts in any sliding window of ``window`` seconds."""
    best, left = 0, 0
    for right, moment in enumerate(starts):
        while moment - starts[left] >= window:
            left += 1
        best = max(best, right - left + 1)
    return best


def achieved_per_minute(starts: list[float]) -> float:
    return (len(starts) - 1) / (starts[-1] - starts[0]) * 60.0


def unacked_of(client: redis.Redis, queue: str) -> int:
    """Unacknowledged messages of one queue in kombu's Redis ``unacked`` hash (shared by all tests)."""
    return sum(json.loads(raw)[2] == queue for raw in client.hvals("unacked"))


def script_calls(state: PrivateRedis) -> int:
    """Scripts (rate-limit decisions and metrics writes) run so far on a state server of the test's own."""
    client = redis.Redis.from_url(state.url)
    try:
        return int(client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))
    finally:
        client.close()


#: Most scripts per start on a throttled queue shared by two workers: per slot, the winner's
#: decision and its next (refused) one, a refusal for the worker that lost the slot, and the
#: metrics writes (measured: about 4.3). Asking the store every 10 ms while holding would be
#: 20 or more per start; a loop that does not wait on the timer, thousands.
SCRIPTS_PER_START = 8


def test_two_workers_share_one_budget_and_other_queues_keep_flowing(
    make_app: Callable[..., Celery], ledger: Ledger, redis_url: str, private_state: PrivateRedis
) -> None:
    app = make_app()
    limited, free = unique("limited"), unique("free")
    app._test_queues = [limited, free]  # type: ignore[attr-defined]
    limit, burst, backlog = 600, 1, 400
    env = worker_env(app, ledger, jobs_queue_rate_limits={limited: limit}, jobs_state_url=private_state.url)
    publish(app, ledger, limited, "limited", backlog)  # a deep backlog before any worker starts
    client = redis.Redis.from_url(redis_url)
    with ExitStack() as stack:
        workers = [
            stack.enter_context(WorkerProcess(env, queues=f"{limited},{free}", concurrency=2))
            for _ in range(2)
        ]
        for worker in workers:
            worker.wait_ready()
        wait_for(lambda: len(ledger.starts("limited")) >= 20, timeout=30, message="limited queue running")
        publish(app, ledger, free, "free", 200)
        unacked_peak = 0

        def all_done() -> bool:
            nonlocal unacked_peak
            unacked_peak = max(unacked_peak, unacked_of(client, limited))
            return ledger.count() >= backlog + 200

        wait_for(all_done, timeout=120, interval=0.2, message="every task to start")
        outputs = [worker.output() for worker in workers]
    scripts = script_calls(private_state)
    # A throttled queue says so in the worker's log, naming the queue and its limit, at most
    # once per interval per queue (the backlog lasts about 40 s: one or two lines a worker);
    # the free queue never does.
    line = f"Rate limited: queue {limited!r} is at its limit of 600 jobs a minute;"
    assert any(line in output for output in outputs), outputs[0][-2000:]
    assert all(output.count(line) <= 3 for output in outputs)
    assert not any(f"queue {free!r} is at its limit" in output for output in outputs)

    limited_starts, free_starts = ledger.starts("limited"), ledger.starts("free")
    assert len(limited_starts) == backlog and len(free_starts) == 200
    assert max_in_window(limited_starts) <= limit + burst
    assert achieved_per_minute(limited_starts) <= limit * 1.02
    assert achieved_per_minute(limited_starts) >= 0.97 * limit, achieved_per_minute(limited_starts)
    # The free queue was not stuck behind the throttled one: all 200 ran while the
    # limited backlog (40 s of budget) was still far from done.
    assert free_starts[-1] < limited_starts[len(limited_starts) // 2]
    # Throttled consumers wait on timers for their slot, not by asking the store again and again.
    assert scripts < SCRIPTS_PER_START * backlog, scripts
    # Unacknowledged messages are bounded per worker by its prefetch (2 processes x 4) plus
    # what it may hold (hold_capacity: 3 s of budget), not by the 400-message backlog.
    assert unacked_peak <= 2 * (2 * 4 + hold_capacity(limit, 8)), unacked_peak


def test_a_worker_killed_while_holding_throttled_tasks_loses_none(
    make_app: Callable[..., Celery], ledger: Ledger
) -> None:
    app = make_app()
    limited = unique("limited")
    app._test_queues = [limited]  # type: ignore[attr-defined]
    env = worker_env(app, ledger, jobs_queue_rate_limits={limited: 1200})
    ids = publish(app, ledger, limited, "limited", 150)
    with WorkerProcess(env, queues=limited) as survivor:
        victim = WorkerProcess(env, queues=limited)
        survivor.wait_ready()
        victim.wait_ready()
        wait_for(lambda: ledger.count() >= 30, timeout=30, message="some tasks started")
        victim.kill(signal.SIGKILL)
        victim.stop()
        # Messages the victim held come back after the visibility timeout (20 s here).
        wait_for(
            lambda: {e[2] for e in ledger.entries()} >= set(ids),
            timeout=90,
            interval=0.2,
            message="every task to run, the victim's after redelivery",
        )
    executions = [entry[2] for entry in ledger.entries()]
    assert set(executions) == set(ids), "every task ran"
    # A task the victim was running (at most its 2 processes' worth) may run again: acks_late.
    assert len(executions) - len(ids) <= 2


@pytest.mark.parametrize("mode", ["allow", "wait"])
def test_workers_ride_out_a_state_outage_and_limit_again_afterwards(
    make_app: Callable[..., Celery], ledger: Ledger, mode: str, private_redis: Callable[..., PrivateRedis]
) -> None:
    state = private_redis()
    try:
        app = make_app()
        limited = unique("limited")
        app._test_queues = [limited]  # type: ignore[attr-defined]
        limit = 600
        env = worker_env(
            app,
            ledger,
            jobs_queue_rate_limits={limited: limit},
            jobs_state_url=state.url,
            jobs_rate_limit_on_error=mode,
        )
        publish(app, ledger, limited, "limited", 300)
        with WorkerProcess(env, queues=limited, concurrency=2) as worker:
            worker.wait_ready()
            wait_for(lambda: ledger.count() >= 20, timeout=30, message="limited queue running")
            state.halt()
            outage_start = time.time()
            wait_for(lambda: time.time() - outage_start >= 5, timeout=10, interval=0.1)
            outage_end = time.time()
            state.start()
            recovered = time.time()
            wait_for(lambda: ledger.count() >= 300 or time.time() - recovered > 8, timeout=15, interval=0.2)
            log = worker.output()
        starts = ledger.starts("limited")
        after = [t for t in starts if recovered + 1 < t < recovered + 8]
        assert "shared state unavailable" in log
        if mode == "allow":
            # Unlimited while the state is down: more start than the limit would have let
            # through in the whole outage (the queue may drain in a fraction of a second).
            during = [t for t in starts if outage_start < t < outage_end]
            allowed_by_limit = limit / 60 * (outage_end - outage_start)
            assert len(during) > allowed_by_limit, "tasks kept starting during the outage"
        else:
            during = [t for t in starts if outage_start + 0.5 < t < outage_end]
            assert len(during) <= 4, "tasks waited during the outage"
        # After recovery the limit holds again (the budget restarted empty on the new server).
        if len(after) > 2:
            assert achieved_per_minute(after) <= limit * 1.1
    finally:
        state.stop()


def _drain_fast_queue(
    app: Celery, ledger: Ledger, state: PrivateRedis, limit: float, backlog: int
) -> tuple[list[float], int]:
    """Drain ``backlog`` tasks of a queue limited to ``limit``/min through two workers.

    Returns the ledger's start times and how many scripts (decisions and metrics writes)
    the workers ran on the state's own server.
    """
    fast = unique("fast")
    app._test_queues = [fast]  # type: ignore[attr-defined]
    env = worker_env(app, ledger, jobs_queue_rate_limits={fast: limit}, jobs_state_url=state.url)
    publish(app, ledger, fast, "fast", backlog)
    with ExitStack() as stack:
        workers = [stack.enter_context(WorkerProcess(env, queues=fast, concurrency=2)) for _ in range(2)]
        for worker in workers:
            worker.wait_ready()
        wait_for(lambda: ledger.count() >= backlog, timeout=60, interval=0.2, message="every task to start")
    return ledger.starts("fast"), script_calls(state)


@pytest.fixture
def private_state(private_redis: Callable[..., PrivateRedis]) -> PrivateRedis:
    """A state store on its own server, so its command counts are one test's alone."""
    return private_redis()


def test_a_fast_queue_at_its_limit_keeps_it_while_taking_slots_ahead(
    make_app: Callable[..., Celery], ledger: Ledger, private_state: PrivateRedis
) -> None:
    limit, backlog = 6000, 600  # 100 a second: slots are taken up to 5 at a time
    starts, _ = _drain_fast_queue(make_app(), ledger, private_state, limit, backlog)
    assert len(starts) == backlog
    # A slot is used at most AHEAD_SECONDS early: the rate holds within a batch.
    assert len(starts) - 1 <= limit / 60 * (starts[-1] - starts[0]) + 2 * slots_ahead(limit)


def test_a_queue_far_under_its_limit_costs_far_fewer_round_trips_than_jobs(
    make_app: Callable[..., Celery], ledger: Ledger, private_state: PrivateRedis
) -> None:
    backlog = 1000
    starts, scripts = _drain_fast_queue(make_app(), ledger, private_state, 6_000_000, backlog)
    assert len(starts) == backlog
    # Every job is still decided on the shared budget, but up to 32 per round trip
    # (metrics flushes are in the count too).
    assert scripts < backlog / 4, scripts


def test_sqlite_state_shares_one_budget_across_worker_processes(
    make_app: Callable[..., Celery], ledger: Ledger, tmp_path: Path
) -> None:
    app = make_app()
    limited = unique("limited")
    app._test_queues = [limited]  # type: ignore[attr-defined]
    limit = 1200
    env = worker_env(
        app, ledger, jobs_queue_rate_limits={limited: limit}, jobs_state_url=f"sqlite:///{tmp_path}/state.db"
    )
    publish(app, ledger, limited, "limited", 200)
    with ExitStack() as stack:
        workers = [stack.enter_context(WorkerProcess(env, queues=limited, concurrency=2)) for _ in range(2)]
        for worker in workers:
            worker.wait_ready()
        wait_for(lambda: ledger.count() >= 200, timeout=60, interval=0.2, message="every task to start")
    starts = ledger.starts("limited")
    assert max_in_window(starts, 10.0) <= limit / 6 + 1
    assert 0.95 * limit <= achieved_per_minute(starts) <= limit * 1.02
