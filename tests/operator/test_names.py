"""Queue names and flags: empty names refused, unknown names warned about, conflicting flags refused."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from celery import Celery

from celery_jobs_ext.ratelimit import OVERRIDES_KEY
from celery_jobs_ext.state import get_state
from tests.operator.runner import invoke, strict_json


@pytest.mark.parametrize(
    "args",
    [
        ["jobs-ratelimit", "set", "", "10/s"],
        ["jobs-ratelimit", "set", "   ", "10/s"],
        ["jobs-ratelimit", "set", "pay\nments", "10/s"],
        ["jobs-ratelimit", "unset", ""],
        ["jobs-ratelimit", "show", "--queue", ""],
        ["jobs-health", "--queue", ""],
        ["jobs-dlq", "list", "--queue", ""],
        ["jobs-dlq", "replay", "--task-id", ""],
        ["jobs-dlq", "purge", "--yes", "--queue", ""],
    ],
)
def test_an_empty_or_control_character_name_is_a_usage_error(
    args: list[str], make_app: Callable[..., Celery]
) -> None:
    app = make_app(jobs_dead_letter_queue="dlq-names")
    result = invoke(app, *args)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "must not be empty" in result.stderr or "control character" in result.stderr
    assert get_state(app).hgetall_text(OVERRIDES_KEY) == {}


def test_setting_a_limit_on_an_unknown_queue_warns_on_stderr(make_app: Callable[..., Celery]) -> None:
    app = make_app(jobs_queue_rate_limits={"payments": 60})
    result = invoke(app, "jobs-ratelimit", "set", "paymnets", "10/s")
    assert result.exit_code == 0, result.stderr
    assert "knows queue 'paymnets' (a typo?)" in result.stderr and "payments" in result.stderr
    known = invoke(app, "jobs-ratelimit", "set", "payments", "10/s")
    assert known.exit_code == 0 and "Warning" not in known.stderr


def test_health_check_on_an_unknown_queue_fails_instead_of_reporting_zeros(
    make_app: Callable[..., Celery],
) -> None:
    app = make_app()
    typo = invoke(app, "jobs-health", "--queue", "typo", "--fail-on", "pending>1000")
    assert typo.exit_code == 1, typo.stdout + typo.stderr
    assert "queue 'typo' is unknown" in typo.stderr

    unchecked = invoke(app, "jobs-health", "--json", "--queue", "typo")
    assert unchecked.exit_code == 0 and "knows queue 'typo'" in unchecked.stderr
    assert list(strict_json(unchecked.stdout)["queues"]) == ["typo"]

    known = invoke(app, "jobs-health", "--queue", app.conf.task_default_queue, "--fail-on", "pending>1000")
    assert known.exit_code == 0, known.stderr
    assert "Warning" not in known.stderr


@pytest.mark.parametrize("fmt", ["prometheus", "table"])
def test_json_and_another_format_conflict(fmt: str, make_app: Callable[..., Celery]) -> None:
    result = invoke(make_app(), "jobs-health", "--json", "--format", fmt)
    assert result.exit_code == 2
    assert f"--json and --format {fmt} conflict" in result.stderr
    agreeing = invoke(make_app(), "jobs-health", "--json", "--format", "json")
    assert agreeing.exit_code == 0 and strict_json(agreeing.stdout)["queues"]
