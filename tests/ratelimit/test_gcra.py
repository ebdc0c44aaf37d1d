"""The rate limiter's GCRA decision, run by each shared-state backend (Redis script, SQLite transaction).

Both must decide the same: the algorithm is one, written once per backend's language.
"""

from __future__ import annotations

import math
import multiprocessing

from celery_jobs_ext.ratelimit import acquire
from celery_jobs_ext.state import StateBackend, create_state
from tests.harness import wait_for


def test_gcra_spaces_jobs_by_the_interval(state: StateBackend) -> None:
    first = acquire(state, "budget", interval=10.0, burst=1)
    second = acquire(state, "budget", interval=10.0, burst=1)
    assert first.allowed and first.retry_after == 0
    assert not second.allowed
    assert 9.0 < second.retry_after <= 10.0


def test_gcra_allows_the_burst_back_to_back_then_refuses(state: StateBackend) -> None:
    results = [acquire(state, "burst", interval=10.0, burst=3).allowed for _ in range(5)]
    assert results == [True, True, True, False, False]


def test_gcra_takes_the_slots_due_within_ahead_up_to_most(state: StateBackend) -> None:
    first = acquire(state, "ahead", interval=1.0, burst=1, most=8, ahead=3.5)
    # After an idle period: the slot due now plus the three due within 3.5 s.
    assert first.allowed and first.granted == 4
    refused = acquire(state, "ahead", interval=1.0, burst=1, most=8, ahead=3.5)
    assert not refused.allowed and refused.granted == 0
    assert 3.0 < refused.retry_after <= 4.0  # the four slots taken moved the budget four intervals on


def test_gcra_never_takes_more_than_most(state: StateBackend) -> None:
    taken = acquire(state, "capped", interval=0.001, burst=1, most=5, ahead=10.0)
    assert taken.granted == 5
    assert acquire(state, "single", interval=0.001, burst=1).granted == 1


def test_a_refused_decision_consumes_nothing(state: StateBackend) -> None:
    acquire(state, "budget", interval=0.3, burst=1)
    for _ in range(20):
        acquire(state, "budget", interval=0.3, burst=1)
    # Had refusals moved the budget on, this would wait far longer than one interval.
    wait_for(lambda: acquire(state, "budget", interval=0.3, burst=1).allowed, timeout=2)


def _take(url: str, prefix: str, attempts: int, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    backend = create_state(url, prefix=prefix)
    allowed = sum(acquire(backend, "budget", interval=60.0, burst=5).allowed for _ in range(attempts))
    results.put(allowed)
    backend.close()


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


def test_gcra_counts_allowed_starts_per_second(state: StateBackend) -> None:
    before = math.floor(state.now())
    allowed = [acquire(state, "budget", interval=10.0, burst=3, count_key="starts").allowed for _ in range(5)]
    after = math.floor(state.now())
    assert allowed == [True, True, True, False, False]
    counts = state.get_counters([f"starts:{second}" for second in range(before, after + 1)])
    assert sum(counts) == 3
    acquire(state, "fast", interval=0.001, burst=1, count_key="starts", most=4, ahead=1.0)
    after = math.floor(state.now())
    counts = state.get_counters([f"starts:{second}" for second in range(before, after + 1)])
    assert sum(counts) == 7  # every slot taken ahead counts as a start
