"""RateLimiter's API on both state backends: one budget, overrides, usage, reset."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from celery import Celery

from celery_jobs_ext import RateLimiter, RateLimitExceeded


@pytest.fixture(params=["redis", "sqlite"])
def app(request: pytest.FixtureRequest, make_app: Callable[..., Celery], tmp_path: Path) -> Celery:
    settings: dict[str, object] = {"jobs_queue_rate_limits": {"slow": 6, "fast": "10/s"}}
    if request.param == "sqlite":
        settings["jobs_state_url"] = f"sqlite:///{tmp_path}/state.db"
    return make_app(**settings)


def test_allow_takes_slots_until_the_budget_is_spent(app: Celery) -> None:
    limiter = RateLimiter(app)
    assert limiter.allow("slow") is True
    assert limiter.allow("slow") is False  # 6/min: the next slot is 10 s away
    assert limiter.allow("unlimited") is True
    assert limiter.allow("unlimited") is True


def test_two_limiters_share_one_budget(app: Celery) -> None:
    assert RateLimiter(app).allow("slow") is True
    assert RateLimiter(app).allow("slow") is False


def test_throttle_raises_with_the_time_until_the_next_slot(app: Celery) -> None:
    limiter = RateLimiter(app)
    limiter.throttle("slow")
    with pytest.raises(RateLimitExceeded) as error:
        limiter.throttle("slow")
    assert 9.0 < error.value.retry_after <= 10.0
    assert error.value.queue == "slow"
    assert "'slow'" in str(error.value) and "6 jobs per minute" in str(error.value)


def test_usage_counts_starts_in_the_last_minute_and_reset_forgets_them(app: Celery) -> None:
    limiter = RateLimiter(app)
    for _ in range(5):
        assert limiter.allow("fast", limit=60_000_000)
    limiter.allow("slow")
    limiter.allow("slow")
    assert limiter.usage_many(["fast", "slow", "other"]) == {"fast": 5, "slow": 1, "other": 0}
    limiter.reset("slow")
    assert limiter.usage("slow") == 0
    assert limiter.allow("slow") is True


def test_an_override_wins_over_the_setting_and_unset_restores_it(app: Celery) -> None:
    limiter = RateLimiter(app)
    assert limiter.effective_limit("slow") == (6.0, "config")
    assert limiter.effective_limit("other") == (0.0, "none")
    RateLimiter(app).set_limit("slow", "2/s")
    assert limiter.effective_limit("slow") == (120.0, "override")
    assert limiter.unset_limit("slow") is True
    assert limiter.effective_limit("slow") == (6.0, "config")
    with pytest.raises(ValueError):
        limiter.set_limit("slow", "lots")


def test_burst_lets_that_many_start_back_to_back(make_app: Callable[..., Celery]) -> None:
    app = make_app(jobs_queue_rate_limits={"q": 1}, jobs_rate_limit_burst=3)
    limiter = RateLimiter(app)
    assert [limiter.allow("q") for _ in range(5)] == [True, True, True, False, False]


def test_hold_capacity_follows_prefetch_and_the_budget_with_a_cap() -> None:
    from celery_jobs_ext.ratelimit import MAX_HOLD, hold_capacity

    assert hold_capacity(600, prefetch=8) == 30  # 3 s of a 10/s budget
    assert hold_capacity(6, prefetch=8) == 8  # never below the prefetch count
    assert hold_capacity(6_000_000, prefetch=8) == MAX_HOLD
