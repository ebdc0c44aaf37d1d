"""``celery jobs-health`` against a real prefork worker, real Redis and real RabbitMQ.

A known workload runs on a worker subprocess; every number the command prints (JSON, table,
Prometheus) is checked against it. The command itself runs as a subprocess, as a user runs it.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Callable
from typing import Any

import redis
from celery import Celery
from prometheus_client.parser import text_string_to_metric_families

from celery_jobs_ext.health import build_report
from celery_jobs_ext.metrics import HEARTBEAT_TTL
from celery_jobs_ext.ratelimit import RateLimiter
from tests.harness import WorkerProcess, free_port, unique, wait_for
from tests.health.cli import run_health, worker_conf

JOB = "tests.health.job"


def _queues(*names: str) -> dict[str, dict[str, str]]:
    """``task_queues`` as JSON-friendly settings (Celery builds kombu queues from them)."""
    return {name: {"exchange": name, "routing_key": name} for name in names}


def _table_rows(text: str, names: list[str]) -> dict[str, list[str]]:
    rows = {}
    for line in text.splitlines():
        cells = re.split(r"\s{2,}", line.strip())
        if cells and cells[0] in names:
            rows[cells[0]] = cells
    return rows


def _prometheus(text: str) -> dict[tuple[str, str], float]:
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            label = sample.labels.get("queue") or sample.labels.get("worker") or ""
            samples[(sample.name, label)] = sample.value
    return samples


def test_known_workload_is_reported_exactly_in_json_table_and_prometheus(
    make_app: Callable[..., Celery], redis_url: str
) -> None:
    default, high, limited, idle = (unique(name) for name in ("default", "high", "limited", "idle"))
    settings: dict[str, Any] = {
        "task_default_queue": default,
        "task_queues": _queues(default, high, limited, idle),
        "jobs_queue_rate_limits": {limited: 600},
        "jobs_retry_strategy": "exponential",
        "jobs_retry_base": 30,
        "jobs_timeout": 300,
    }
    app = make_app(**settings)
    app._test_queues = [high, limited, idle]  # type: ignore[attr-defined]
    conf = worker_conf(app, **settings)

    # Waiting on a queue no worker consumes: 4 plain messages and 3 with a priority, which
    # the Redis transport keeps in a second list ("<queue>\x06\x169").
    for _ in range(4):
        app.send_task(JOB, queue=idle)
    for _ in range(3):
        app.send_task(JOB, queue=idle, priority=9)
    assert redis.Redis.from_url(redis_url).llen(idle) == 4

    with WorkerProcess({"JOBS_TEST_CONF": json.dumps(conf)}, queues=f"{default},{high},{limited}") as worker:
        worker.wait_ready()
        for _ in range(30):
            app.send_task(JOB, args=["ok", 0.02], queue=default)
        for _ in range(10):
            app.send_task(JOB, args=["fail", 0.02], queue=default)
        for _ in range(5):
            app.send_task(JOB, queue=high)
        for _ in range(4):
            app.send_task(JOB, queue=limited)
        for _ in range(2):
            app.send_task(JOB, args=["retry_once"], queue=limited)

        def settled() -> dict[str, Any] | None:
            report = build_report(app)
            status = {name: report["queues"][name]["status"] for name in (default, high, limited)}
            done = (
                status[default]["completed"] == 30
                and status[default]["failed"] == 10
                and status[high]["completed"] == 5
                and status[limited]["completed"] == 6
                and report["workers"]
            )
            return report if done else None

        wait_for(settled, timeout=60, interval=0.2, message="the workload to be counted")
        RateLimiter(app).set_limit(high, 1200)  # a run-time override: shown with its source

        result = run_health(conf, "--json")
        assert result.returncode == 0, result.stderr
        report = json.loads(result.stdout)

        assert report["config"] == {
            "retry_strategy": "exponential",
            "retry_base": 30,
            "retry_multiplier": 2.0,
            "retry_max": 3600,
            "job_timeout": 300,
            "dead_letter_queue": None,
            "rate_limits": {high: 1200, limited: 600},
        }
        assert set(report["queues"]) == {default, high, limited, idle}
        queues = report["queues"]
        assert queues[default]["status"] == {"pending": 0, "processing": 0, "completed": 30, "failed": 10}
        assert queues[default]["rate_limit"] == {"current": None, "max": None, "percentage": None}
        recent = queues[default]["last_24h"]
        assert (recent["executions"], recent["success_rate"], recent["failure_rate"]) == (40, 75.0, 25.0)
        # Each run sleeps 0.02 s: the average is at least that, and in seconds (not milliseconds).
        assert 0.02 <= recent["avg_duration_seconds"] < 20

        assert queues[high]["status"] == {"pending": 0, "processing": 0, "completed": 5, "failed": 0}
        assert queues[high]["rate_limit"] == {"current": 0, "max": 1200, "percentage": 0.0}
        assert queues[high]["last_24h"]["executions"] == 5
        assert queues[high]["last_24h"]["success_rate"] == 100.0
        assert queues[high]["last_24h"]["failure_rate"] == 0.0

        # 4 plain runs + 2 that retried once: 8 starts went through the rate limiter.
        assert queues[limited]["status"] == {"pending": 0, "processing": 0, "completed": 6, "failed": 0}
        assert queues[limited]["rate_limit"] == {"current": 8, "max": 600, "percentage": 1.3}
        assert queues[limited]["last_24h"]["executions"] == 6

        assert queues[idle]["status"] == {"pending": 7, "processing": 0, "completed": 0, "failed": 0}
        assert queues[idle]["last_24h"] == {
            "executions": 0,
            "success_rate": None,
            "failure_rate": None,
            "avg_duration_seconds": None,
        }
        details = report["queue_details"]
        assert details[default]["lifetime"] == {
            "started": 40,
            "succeeded": 30,
            "failed": 10,
            "retried": 0,
            "timed_out": 0,
            "dead_lettered": 0,
        }
        assert details[limited]["lifetime"]["started"] == 8
        assert details[limited]["lifetime"]["retried"] == 2
        assert details[limited]["rate_limit_source"] == "config"
        assert details[high]["rate_limit_source"] == "override"
        assert details[default]["rate_limit_source"] == "none"
        [(hostname, seen)] = report["workers"].items()
        assert hostname.startswith(worker.name)
        assert seen["queues"] == sorted([default, high, limited])
        assert seen["processing"] == 0
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", report["generated_at"])

        table = run_health(conf)
        assert table.returncode == 0, table.stderr
        assert "\033[" not in table.stdout  # not a TTY: no colour
        rows = _table_rows(table.stdout, [default, high, limited, idle])
        assert rows[default][1:5] == ["0", "0", "30", "10"]
        assert rows[default][5] == "no limit"
        assert rows[default][6:9] == ["40", "75.0%", "25.0%"]
        assert rows[limited][1:5] == ["0", "0", "6", "0"]
        assert rows[limited][5] == "[..........] 8/600 1.3%"
        assert rows[limited][6:9] == ["6", "100.0%", "0.0%"]
        assert rows[high][5] == "[..........] 0/1,200 0.0%"
        assert rows[idle][1:5] == ["7", "0", "0", "0"]
        assert rows[idle][6:] == ["0", "-", "-", "-"]
        assert "Workers (1 alive)" in table.stdout

        prometheus = run_health(conf, "--format", "prometheus")
        assert prometheus.returncode == 0, prometheus.stderr
        assert "# HELP celery_jobs_pending " in prometheus.stdout
        assert "# TYPE celery_jobs_completed_total counter" in prometheus.stdout
        samples = _prometheus(prometheus.stdout)
        assert samples[("celery_jobs_pending", idle)] == 7
        assert samples[("celery_jobs_pending", default)] == 0
        assert samples[("celery_jobs_processing", default)] == 0
        assert samples[("celery_jobs_completed_total", default)] == 30
        assert samples[("celery_jobs_failed_total", default)] == 10
        assert samples[("celery_jobs_completed_total", high)] == 5
        assert samples[("celery_jobs_completed_total", limited)] == 6
        assert samples[("celery_jobs_retried_total", limited)] == 2
        assert samples[("celery_jobs_started_total", limited)] == 8
        assert samples[("celery_jobs_rate_limit_current", limited)] == 8
        assert samples[("celery_jobs_rate_limit_max", limited)] == 600
        assert samples[("celery_jobs_rate_limit_max", high)] == 1200
        assert ("celery_jobs_rate_limit_max", default) not in samples
        assert samples[("celery_jobs_last_24h_executions", default)] == 40
        assert samples[("celery_jobs_last_24h_failure_rate_percent", default)] == 25.0
        assert samples[("celery_jobs_last_24h_success_rate_percent", high)] == 100.0
        assert ("celery_jobs_last_24h_success_rate_percent", idle) not in samples  # null, not 0
        assert samples[("celery_jobs_workers", "")] == 1

        only = run_health(conf, "--json", "--queue", high)
        assert list(json.loads(only.stdout)["queues"]) == [high]

        crossed = run_health(conf, "--fail-on", "failure_rate>10", "--fail-on", "pending>1000")
        assert crossed.returncode == 1
        assert f"failure_rate>10 on queue '{default}': 25" in crossed.stderr
        assert crossed.stdout.startswith("celery-jobs-ext health")  # the report is still printed
        healthy = run_health(conf, "--json", "--fail-on", "failure_rate>30", "--fail-on", "pending>=8")
        assert healthy.returncode == 0, healthy.stderr
        bad = run_health(conf, "--fail-on", "happiness<3")
        assert bad.returncode == 2 and "unknown metric 'happiness'" in bad.stderr


def test_processing_drops_a_killed_child_at_once_and_a_killed_worker_when_its_heartbeat_expires(
    make_app: Callable[..., Celery],
) -> None:
    app = make_app()
    queue = app.conf.task_default_queue
    conf = worker_conf(app, task_default_queue=queue)

    def status() -> dict[str, Any]:
        report = build_report(app)
        return {**report["queues"][queue]["status"], "workers": len(report["workers"])}

    with WorkerProcess({"JOBS_TEST_CONF": json.dumps(conf)}, queues=queue, concurrency=2) as worker:
        worker.wait_ready()
        app.send_task(JOB, args=["ok", 120], queue=queue)
        app.send_task(JOB, args=["ok", 120], queue=queue)
        wait_for(lambda: status()["processing"] == 2, timeout=20, interval=0.1, message="2 in flight")

        # A pool child dies mid-task: its parent records the loss, nothing is lost or left in flight.
        os.kill(worker.children()[0], signal.SIGKILL)
        wait_for(
            lambda: status() == {"pending": 0, "processing": 1, "completed": 0, "failed": 1, "workers": 1},
            timeout=15,
            interval=0.1,
            message="the lost child counted as failed",
        )

        worker.kill()  # SIGKILL the whole worker: nobody reports its last task
        wait_for(
            lambda: status() == {"pending": 0, "processing": 0, "completed": 0, "failed": 1, "workers": 0},
            timeout=HEARTBEAT_TTL + 5,
            interval=0.2,
            message="the dead worker's heartbeat to expire",
        )


def test_pending_on_rabbitmq_is_the_passive_declare_count(
    make_app: Callable[..., Celery], amqp_url: str, redis_url: str
) -> None:
    app = make_app(broker=amqp_url, jobs_state_url=redis_url)
    queue = app.conf.task_default_queue
    never_declared = unique("never-declared")
    for _ in range(5):
        app.send_task(JOB, queue=queue)

    wait_for(
        lambda: build_report(app)["queues"][queue]["status"]["pending"] == 5,
        timeout=10,
        message="RabbitMQ to count 5 ready messages",
    )
    assert build_report(app, queue=never_declared)["queues"][never_declared]["status"]["pending"] == 0

    conf = worker_conf(app, jobs_state_url=redis_url, task_default_queue=queue)
    result = run_health(conf, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["queues"][queue]["status"]["pending"] == 5


def test_unreachable_broker_exits_69_instead_of_waiting(redis_url: str) -> None:
    conf = {"broker_url": f"redis://127.0.0.1:{free_port()}/0", "jobs_state_url": redis_url}
    # A deadline, not a timing claim: Celery's own broker retries would wait far longer.
    result = run_health(conf, "--json", timeout=20)
    assert result.returncode == 69, result.stdout + result.stderr
    assert "Broker redis://127.0.0.1:" in result.stderr and "unreachable" in result.stderr
    assert result.stdout == ""


def test_unreachable_state_exits_69_naming_the_setting_without_its_password(redis_url: str) -> None:
    conf = {"broker_url": redis_url, "jobs_state_url": f"redis://:hunter2@127.0.0.1:{free_port()}/0"}
    result = run_health(conf, timeout=20)
    assert result.returncode == 69, result.stdout + result.stderr
    assert "jobs_state_url" in result.stderr
    assert "hunter2" not in result.stderr
