"""Keyed rate-limit options: validated with errors naming the task, and a call's budget."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from celery import Celery

from celery_jobs_ext import GuardedTask
from celery_jobs_ext.errors import ImproperlyConfigured
from celery_jobs_ext.rate_keys import keyed_limit_of, keyed_limits
from tests.harness import WorkerProcess, unique


def test_each_key_value_has_its_own_budget_and_a_list_of_names_makes_one_key(
    make_app: Callable[..., Celery],
) -> None:
    app = make_app()

    @app.task(
        base=GuardedTask,
        shared=False,
        name=unique("pay"),
        rate_limit_key="customer_id",
        rate_limit_per_key="10/m",
    )
    def pay(customer_id: str, amount: int = 1) -> None: ...

    @app.task(
        base=GuardedTask,
        shared=False,
        name=unique("call"),
        rate_limit_key=["region", "account"],
        rate_limit_per_key=5,
    )
    def call(region: str, account: str = "main", **extra: object) -> None: ...

    limits = keyed_limits(app)
    one, two = limits[pay.name], limits[call.name]
    assert one.per_minute == 10 and one.names == ("customer_id",)
    assert one.budget_of(["alice"], {}) == one.budget_of([], {"customer_id": "alice", "amount": 5})
    assert one.budget_of(["alice"], {}) != one.budget_of(["bob"], {})
    assert "alice" not in (one.budget_of(["alice"], {}) or "")  # a digest, not the value
    assert one.budget_of([], {}) is None  # arguments that do not fit: not held, it fails by itself
    assert two.budget_of(["eu"], {}) == two.budget_of([], {"region": "eu", "account": "main"})
    assert two.budget_of(["eu", "other"], {}) != two.budget_of(["eu"], {})


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"rate_limit_key": "customer_id"}, "needs rate_limit_per_key"),
        ({"rate_limit_per_key": "10/m"}, "needs rate_limit_key"),
        (
            {"rate_limit_key": "customer", "rate_limit_per_key": "10/m"},
            "'customer', which is not an argument",
        ),
        ({"rate_limit_key": [], "rate_limit_per_key": "10/m"}, "rate_limit_key = [] is invalid"),
        ({"rate_limit_key": "customer_id", "rate_limit_per_key": "lots"}, "rate_limit_per_key = 'lots'"),
        ({"rate_limit_key": "customer_id", "rate_limit_per_key": 0}, "must be above 0"),
    ],
)
def test_a_bad_keyed_limit_names_the_task_and_the_option(
    make_app: Callable[..., Celery], options: dict[str, object], expected: str
) -> None:
    app = make_app()
    name = unique("bad")

    @app.task(base=GuardedTask, shared=False, name=name, **options)
    def bad(customer_id: str) -> None: ...

    with pytest.raises(ImproperlyConfigured) as caught:
        keyed_limit_of(bad)
    assert f"Task {name}" in str(caught.value) and expected in str(caught.value)


def test_a_worker_refuses_to_start_with_a_key_that_is_not_an_argument(redis_url: str) -> None:
    conf = {"broker_url": redis_url}
    env = {"JOBS_TEST_CONF": json.dumps(conf)}
    with WorkerProcess(env, queues="never-used", pool="solo", app="tests.ratelimit.badkeyapp") as worker:
        assert worker.process.wait(60) != 0
        output = worker.output()
    assert "Task tests.bad_key: rate_limit_key names 'customer', which is not an argument" in output
