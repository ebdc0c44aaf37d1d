"""celery jobs-ratelimit: set, show and unset limits that running workers pick up."""

from __future__ import annotations

import itertools
import json
import subprocess
import time
from collections.abc import Callable

from celery import Celery

from celery_jobs_ext import GuardedTask, RateLimiter
from tests.harness import in_process_worker, wait_for
from tests.operator.runner import run_celery


def jobs_ratelimit(app: Celery, *args: str) -> subprocess.CompletedProcess[str]:
    conf = {
        "broker_url": app.conf.broker_url,
        "jobs_state_prefix": app.conf.jobs_state_prefix,
        "jobs_queue_rate_limits": dict(app.conf.get("jobs_queue_rate_limits") or {}),
    }
    return run_celery(conf, "jobs-ratelimit", *args)


def test_set_show_and_unset_round_trip_through_the_shared_state(make_app: Callable[..., Celery]) -> None:
    app = make_app(jobs_queue_rate_limits={"emails": "10/s"})
    done = jobs_ratelimit(app, "set", "reports", "100/h")
    assert done.returncode == 0, done.stderr
    assert "reports: 1.67 jobs per minute (override" in done.stdout
    assert RateLimiter(app).effective_limit("reports") == (100 / 60, "override")

    shown = jobs_ratelimit(app, "show", "--json")
    assert json.loads(shown.stdout) == {
        "emails": {"limit_per_minute": 600.0, "source": "config", "started_last_60s": 0},
        "reports": {"limit_per_minute": 100 / 60, "source": "override", "started_last_60s": 0},
    }
    assert "reports" in jobs_ratelimit(app, "show").stdout

    removed = jobs_ratelimit(app, "unset", "reports")
    assert "override removed; now no limit" in removed.stdout
    assert RateLimiter(app).effective_limit("reports") == (0.0, "none")


def test_a_bad_limit_is_a_usage_error_naming_the_argument(make_app: Callable[..., Celery]) -> None:
    app = make_app()
    done = jobs_ratelimit(app, "set", "reports", "lots")
    assert done.returncode == 2
    assert "LIMIT" in done.stderr and "10/s" in done.stderr


def test_a_running_worker_picks_up_a_new_limit_within_seconds(make_app: Callable[..., Celery]) -> None:
    app = make_app()
    starts: list[float] = []

    @app.task(base=GuardedTask, shared=False)
    def job() -> None:
        starts.append(time.time())

    with in_process_worker(app, pool="threads", concurrency=4):
        job.delay().get(timeout=20)  # the worker runs, unlimited
        assert jobs_ratelimit(app, "set", app.conf.task_default_queue, "60").returncode == 0
        # Workers re-read overrides every 2 s; a few seconds later the limit holds.
        wait_for(lambda: time.time() - starts[0] > 3, timeout=10, interval=0.1)
        del starts[:]
        results = [job.delay() for _ in range(3)]
        for result in results:
            result.get(timeout=30)
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert len(starts) == 3 and all(gap > 0.9 for gap in gaps), gaps
