"""Property tests: no input to a parser or a command argument gives a traceback or an unusable value.

Random strings (any Unicode, digit-heavy ones, numbers hundreds of digits long) go through
the rate parser (settings, CLI and stored overrides share it), the ``--fail-on`` parser, and
every argument of the operator commands, run in process against the real Redis.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from celery import Celery
from click.testing import Result
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from celery_jobs_ext.config import MAX_RATE_PER_MINUTE, MIN_RATE_PER_MINUTE, JobsConfig, parse_rate
from celery_jobs_ext.errors import ImproperlyConfigured, InvalidRate
from celery_jobs_ext.health import parse_threshold
from celery_jobs_ext.ratelimit import OVERRIDES_KEY
from celery_jobs_ext.state import get_state
from tests.operator.runner import invoke, strict_json

#: Texts an operator might paste: anything, digit runs with units, numbers in other scripts.
TEXTS = st.one_of(
    st.text(max_size=40),
    st.from_regex(r"\A\s?-?[0-9]{0,450}(\.[0-9]{0,30})?(e[0-9]{1,4})?\s?(/\s?[smhd]?)?\s?\Z"),
    st.text(alphabet=st.characters(categories=["Nd", "No", "Nl"]), min_size=1, max_size=6),
    st.sampled_from(["inf", "-inf", "nan", "NaN", "Infinity", "1" * 401, "9" * 5000, "0x10", "1_000", "²"]),
)
NUMBERS = st.one_of(st.integers(), st.floats(), st.integers(min_value=10**300, max_value=10**5000))
_FIXTURES = [HealthCheck.function_scoped_fixture]
PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=_FIXTURES)
COMMAND = settings(max_examples=40, deadline=None, suppress_health_check=_FIXTURES)


def usable(per_minute: float) -> bool:
    """A value a worker can space jobs by: none (0), or finite and within the documented bounds."""
    return per_minute == 0 or (
        math.isfinite(per_minute) and float(MIN_RATE_PER_MINUTE) <= per_minute <= MAX_RATE_PER_MINUTE
    )


def no_traceback(result: Result, *codes: int) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert result.exit_code in codes, (result.exit_code, result.stdout, result.stderr)
    assert "Traceback" not in result.stdout + result.stderr


@PROPERTY
@given(value=st.one_of(TEXTS, NUMBERS))
def test_parse_rate_returns_a_usable_rate_or_refuses_clearly(value: Any) -> None:
    try:
        per_minute = parse_rate(value)
    except InvalidRate as exc:
        assert isinstance(exc, ValueError) and "rate" in str(exc)
        assert len(str(exc)) < 300  # a 5,000-digit paste is not echoed back
        return
    assert usable(per_minute)
    assert parse_rate(repr(per_minute)) == per_minute  # what set_limit stores, a worker reads back


@PROPERTY
@given(text=TEXTS)
def test_parse_threshold_returns_a_finite_threshold_or_a_value_error(text: str) -> None:
    try:
        threshold = parse_threshold(text)
    except ValueError as exc:
        assert "--fail-on" in str(exc) and len(str(exc)) < 400
        return
    assert math.isfinite(threshold.value)


@PROPERTY
@given(value=st.one_of(TEXTS, NUMBERS))
def test_a_rate_setting_is_usable_or_a_config_error(value: Any, make_app: Callable[..., Celery]) -> None:
    app = make_app(jobs_queue_rate_limits={"q": value})
    try:
        limits = JobsConfig.from_app(app).queue_rate_limits
    except ImproperlyConfigured as exc:
        assert "jobs_queue_rate_limits" in str(exc)
        return
    assert all(usable(limit) for limit in limits.values())


@COMMAND
@given(queue=TEXTS, limit=TEXTS)
def test_ratelimit_set_stores_a_usable_override_or_exits_2(
    queue: str, limit: str, make_app: Callable[..., Celery]
) -> None:
    app = make_app()
    result = invoke(app, "jobs-ratelimit", "set", queue, limit)
    no_traceback(result, 0, 2)
    stored = get_state(app).hgetall_text(OVERRIDES_KEY)
    for text in stored.values():
        assert usable(parse_rate(text))
    shown = invoke(app, "jobs-ratelimit", "show", "--json")
    no_traceback(shown, 0)
    for row in strict_json(shown.stdout).values():
        assert usable(row["limit_per_minute"])
    no_traceback(invoke(app, "jobs-ratelimit", "unset", queue), 0, 2)


@COMMAND
@given(queue=TEXTS)
def test_ratelimit_show_any_queue_prints_strict_json(queue: str, make_app: Callable[..., Celery]) -> None:
    result = invoke(make_app(), "jobs-ratelimit", "show", "--json", "--queue", queue)
    no_traceback(result, 0, 2)
    if result.exit_code == 0:
        strict_json(result.stdout)


@COMMAND
@given(fail_on=TEXTS, queue=TEXTS)
def test_health_any_threshold_and_queue_exit_cleanly(
    fail_on: str, queue: str, make_app: Callable[..., Celery]
) -> None:
    result = invoke(make_app(), "jobs-health", "--json", "--queue", queue, "--fail-on", fail_on)
    no_traceback(result, 0, 1, 2)
    if result.exit_code in (0, 1):
        strict_json(result.stdout)


@COMMAND
@given(limit=TEXTS, queue=TEXTS, task_id=TEXTS)
def test_dlq_any_limit_queue_and_task_id_exit_cleanly(
    limit: str, queue: str, task_id: str, make_app: Callable[..., Celery], redis_url: str
) -> None:
    app = make_app(jobs_dead_letter_queue="dlq-properties", jobs_state_url=redis_url)
    listed = invoke(app, "jobs-dlq", "list", "--json", "--limit", limit, "--queue", queue)
    no_traceback(listed, 0, 2)
    if listed.exit_code == 0:
        assert strict_json(listed.stdout) == []
    replayed = invoke(app, "jobs-dlq", "replay", "--json", "--task-id", task_id, "--limit", limit)
    no_traceback(replayed, 2)  # nothing to replay: an unknown id, or a bad argument
    purged = invoke(app, "jobs-dlq", "purge", "-f", "-j", "--queue", queue)
    no_traceback(purged, 0, 2)
    if purged.exit_code == 0:
        assert strict_json(purged.stdout) == {"purged": 0}


@pytest.mark.parametrize("text", ["²", "١٢", "٣/s", "\uff150"])
def test_unicode_digits_are_refused_naming_the_character(text: str) -> None:
    with pytest.raises(InvalidRate, match="not an ASCII digit"):
        parse_rate(text)
