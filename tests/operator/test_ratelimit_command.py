"""``celery jobs-ratelimit``: the inputs of issue 21, each refused or accepted as documented."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from celery import Celery

from celery_jobs_ext import RateLimiter
from celery_jobs_ext.ratelimit import OVERRIDES_KEY
from celery_jobs_ext.state import get_state
from tests.operator.runner import invoke, strict_json


@pytest.mark.parametrize(
    "limit",
    ["1" + "0" * 400 + "/s", "9" * 5000, "²", "99999999999999999999999999", "inf", "1e3", "0.001/h", "1,000"],
)
def test_an_unusable_limit_exits_2_with_a_message_and_stores_nothing(
    limit: str, make_app: Callable[..., Celery]
) -> None:
    app = make_app()
    result = invoke(app, "jobs-ratelimit", "set", "payments", limit)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "Invalid value for LIMIT" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr) < 800  # the paste is not echoed back in full
    assert get_state(app).hgetall_text(OVERRIDES_KEY) == {}


@pytest.mark.parametrize(
    ("limit", "per_minute", "shown"),
    [("1.5", 1.5, "1.5 jobs per minute"), ("50", 50.0, "50 jobs per minute"), ("2.5/s", 150.0, "150 jobs")],
)
def test_decimals_and_rates_are_accepted_as_the_settings_accept_them(
    limit: str, per_minute: float, shown: str, make_app: Callable[..., Celery]
) -> None:
    app = make_app(jobs_queue_rate_limits={"reports": limit})
    result = invoke(app, "jobs-ratelimit", "set", "payments", limit)
    assert result.exit_code == 0, result.stderr
    assert shown in result.stdout
    assert RateLimiter(app).effective_limit("payments") == (per_minute, "override")
    assert RateLimiter(app).configured_limit("reports") == per_minute
    rows = strict_json(invoke(app, "jobs-ratelimit", "show", "--json").stdout)
    assert rows["payments"]["limit_per_minute"] == per_minute


def test_the_largest_limit_is_shown_without_float_noise(make_app: Callable[..., Celery]) -> None:
    app = make_app()
    result = invoke(app, "jobs-ratelimit", "set", "payments", "100000/s")
    assert result.exit_code == 0, result.stderr
    assert "payments: 6,000,000 jobs per minute" in result.stdout
