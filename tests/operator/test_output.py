"""Output conventions: one JSON writer, -j/--json everywhere, colour through click, exit codes."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from celery import Celery

from celery_jobs_ext.cli import to_json
from tests.harness import unique
from tests.operator.runner import conf_of, invoke, run_celery, run_in_terminal, strict_json

EVERY_COMMAND = [
    ["jobs-dlq", "stats"],
    ["jobs-dlq", "list"],
    ["jobs-dlq", "replay", "--all"],
    ["jobs-dlq", "purge", "-f"],
    ["jobs-ratelimit", "show"],
    ["jobs-ratelimit", "set", "payments", "10/s"],
    ["jobs-ratelimit", "unset", "payments"],
    ["jobs-health"],
]


@pytest.mark.parametrize("args", EVERY_COMMAND, ids=" ".join)
def test_every_command_takes_j_and_prints_one_document_of_the_one_writer(
    args: list[str], make_app: Callable[..., Celery], redis_url: str
) -> None:
    dlq = unique("dlq")
    app = make_app(
        jobs_dead_letter_queue=dlq, jobs_state_url=redis_url, jobs_queue_rate_limits={"payments": 60}
    )
    app._test_queues = [dlq]  # type: ignore[attr-defined]
    result = invoke(app, *args, "-j")
    assert result.exit_code == 0, result.stdout + result.stderr
    document = strict_json(result.stdout)
    assert result.stdout == to_json(document) + "\n"  # sorted keys, two-space indent, no NaN


def test_set_and_unset_report_the_effective_limit_in_json(make_app: Callable[..., Celery]) -> None:
    app = make_app(jobs_queue_rate_limits={"payments": 60})
    assert strict_json(invoke(app, "jobs-ratelimit", "set", "payments", "2/s", "-j").stdout) == {
        "queue": "payments",
        "limit_per_minute": 120.0,
        "source": "override",
    }
    assert strict_json(invoke(app, "jobs-ratelimit", "unset", "payments", "--json").stdout) == {
        "queue": "payments",
        "removed": True,
        "limit_per_minute": 60.0,
        "source": "config",
    }


def test_the_json_writer_refuses_to_write_nan_or_infinity() -> None:
    assert strict_json(to_json({"b": float("inf"), "a": [float("nan"), 1.5]})) == {
        "a": [None, 1.5],
        "b": None,
    }


def test_health_colours_a_terminal_unless_celery_no_color_or_no_color_says_not(
    make_app: Callable[..., Celery],
) -> None:
    app = make_app()
    conf = conf_of(app, result_backend=app.conf.result_backend)
    coloured = run_in_terminal(conf, "-A", "tests.workerapp", "jobs-health")
    assert "\x1b[" in coloured and "celery-jobs-ext health" in coloured
    plain = run_in_terminal(conf, "--no-color", "-A", "tests.workerapp", "jobs-health")
    assert "celery-jobs-ext health" in plain and "\x1b[" not in plain
    no_color = run_in_terminal(conf, "-A", "tests.workerapp", "jobs-health", env={"NO_COLOR": "1"})
    assert "celery-jobs-ext health" in no_color and "\x1b[" not in no_color


@pytest.mark.parametrize("args", [["jobs-ratelimit", "show"], ["jobs-health"], ["jobs-dlq", "stats"]])
def test_a_bad_setting_exits_78_naming_it_without_a_usage_banner(
    args: list[str], make_app: Callable[..., Celery]
) -> None:
    app = make_app()
    result = run_celery(
        conf_of(app, jobs_queue_rate_limits={"payments": "lots"}, jobs_dead_letter_queue="d"), *args
    )
    assert result.returncode == 78, result.stdout + result.stderr
    assert "jobs_queue_rate_limits" in result.stderr and "'lots' is not a rate" in result.stderr
    assert "Usage:" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["jobs-health"], ["jobs-ratelimit", "show"], ["jobs-dlq", "stats"]])
def test_a_command_without_an_app_says_to_give_one(args: list[str]) -> None:
    result = run_celery(None, *args)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "No Celery app given" in result.stderr and "-A" in result.stderr


HELPS = sorted({tuple(args[:2]) for args in EVERY_COMMAND} | {("jobs-dlq",), ("jobs-ratelimit",)})


@pytest.mark.parametrize("args", HELPS, ids=" ".join)
def test_every_help_lists_the_exit_codes(args: tuple[str, ...], make_app: Callable[..., Celery]) -> None:
    result = invoke(make_app(), *args, "--help")
    assert result.exit_code == 0, result.stderr
    assert "Exit codes:" in result.stdout
    for code in ("69", "78"):
        assert f"  {code}  " in result.stdout
