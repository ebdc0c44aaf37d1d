"""Production soak (issue #7): a mixed workload through real workers, faults on a schedule.

Each broker's run happens once per module (a module-scoped fixture) and every test below
checks one property of its report, so a failure names the property that broke. The default
suite runs about 1,500 tasks per broker with one of each fault; ``tox -e soak`` (``pytest
tests/soak -m soak_full``) runs 10,000 (``JOBS_SOAK_TASKS``). The report of every run is
written as JSON to ``JOBS_SOAK_REPORT_DIR`` (default: ``<tmp>/celery-jobs-ext-soak``);
docs/reliability.md quotes the last full runs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.harness import _redis_server_binary, missing
from tests.soak.harness import SoakSettings, in_flight_at_a_fault, soak_run

RUNS = [
    pytest.param(("redis", "default"), id="redis"),
    pytest.param(("amqp", "default"), id="rabbitmq"),
    pytest.param(
        ("redis", "full"), id="redis-full", marks=[pytest.mark.soak_full, pytest.mark.timeout(1200)]
    ),
    pytest.param(
        ("amqp", "full"), id="rabbitmq-full", marks=[pytest.mark.soak_full, pytest.mark.timeout(1200)]
    ),
]


def _report_dir() -> Path:
    path = Path(
        os.environ.get("JOBS_SOAK_REPORT_DIR") or Path(tempfile.gettempdir()) / "celery-jobs-ext-soak"
    )
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="module", params=RUNS)
def soak(
    request: pytest.FixtureRequest, redis_server: str | None, amqp_server: tuple[str | None, str]
) -> Iterator[dict[str, Any]]:
    """Run one soak (broker, size) and yield its report."""
    broker, size = request.param
    if redis_server is None:
        missing(os.environ.get("JOBS_TEST_REDIS_REASON") or "no Redis")
    assert redis_server is not None
    amqp_url = None
    if broker == "amqp":
        amqp_url, reason = amqp_server
        if amqp_url is None:
            missing(reason)
        if not shutil.which("rabbitmqctl"):
            missing("no rabbitmqctl: the RabbitMQ soak closes the broker's connections with it")
    elif _redis_server_binary() is None:
        missing("no redis-server binary: the Redis soak restarts a private one")
    if size == "full":
        settings = SoakSettings.full(broker, int(os.environ.get("JOBS_SOAK_TASKS", "10000")))
    else:
        settings = SoakSettings.default(broker)
    with soak_run(settings, redis_server, amqp_url) as run:
        report = run.run()
    path = _report_dir() / f"soak-{broker}-{size}.json"
    path.write_text(json.dumps(report, indent=2, default=str))
    print(f"\nsoak report: {path}")
    yield report


def _lost_in_flight_on_redis(soak: dict[str, Any]) -> bool:
    """Every lost task's last message went out within 1 s of a worker SIGKILL or of the Redis restart.

    Its last message: the harness's publish, or the retry its first attempt sent. Kombu's
    Redis transport loses a message it popped with BRPOP for a consumer that dies, or cannot
    record it as unacknowledged, before it is recorded (upstream, reproduced without this
    package for the SIGKILL: docs/reliability.md, "What the soak found", 2).
    """
    lost, details = soak["outcomes"]["lost"], soak["outcomes"]["lost_details"]
    return (
        soak["broker"] == "redis"
        and len(details) == len(lost)
        and all(in_flight_at_a_fault(soak["faults"], row["last_seen_at"]) for row in details)
    )


def test_every_task_ends_succeeded_or_dead_lettered_exactly_once(soak: dict[str, Any]) -> None:
    """None lost, none with two outcomes, dead letters with the right reason, queue and attempts."""
    outcomes = soak["outcomes"]
    assert not soak["unpublished"], "tasks the publisher could not send"
    assert outcomes["more_than_one_outcome"] == []
    assert outcomes["dead_letters_not_published"] == []
    assert outcomes["ran_to_success_twice"] == []
    assert outcomes["refused_at_publish"] > 0 and outcomes["not_refused"] == []
    assert outcomes["refused_reached_workers"] == []
    known = []
    if outcomes["lost"] and _lost_in_flight_on_redis(soak):
        known.append(
            f"{len(outcomes['lost'])} task(s) whose message went out as a worker was SIGKILLed or Redis "
            "restarted were lost by Kombu's Redis transport (docs/reliability.md: finding 2)"
        )
    else:
        assert outcomes["lost"] == [], outcomes["lost_details"]
    assert outcomes["wrong_outcome"] == []
    if known:
        pytest.xfail("; ".join(known))


def test_redeliveries_happen_only_where_acks_late_allows_them(soak: dict[str, Any]) -> None:
    """The SIGKILLed child's task runs again; extra runs stay within what was unacknowledged."""
    outcomes = soak["outcomes"]
    assert outcomes["victim_executions"] >= 2, "the task of the killed child was not run again"
    assert 1 <= outcomes["redeliveries"] <= outcomes["redelivery_bound"], outcomes["redelivery_samples"]


def test_catch_and_finally_fire_exactly_as_often_as_the_outcomes_require(soak: dict[str, Any]) -> None:
    """finally_ once per pipeline, catch once per failed one, then only after a success."""
    callbacks = soak["callbacks"]
    assert callbacks["failing_pipelines"] > 0 and callbacks["chains"] > 0
    assert callbacks["wrong_count"] == 0, callbacks["wrong"]
    if callbacks.get("lost_in_flight"):
        pytest.xfail(
            f"{len(callbacks['lost_in_flight'])} callback message(s) sent as a worker was SIGKILLed or Redis "
            "restarted were lost by Kombu's Redis transport (docs/reliability.md: finding 2): "
            f"{callbacks['lost_in_flight']}"
        )


def test_health_json_equals_the_ledger_per_queue(soak: dict[str, Any]) -> None:
    """What an operator reads agrees with what happened (a dead worker's last counts excepted)."""
    health = soak["health"]
    assert health["returncode"] == 0, health["stderr_tail"]
    assert health["processing_back_to_zero"]["reached"], health["processing_back_to_zero"]
    assert health["mismatches"] == []


def test_no_planted_secret_reaches_logs_events_results_dead_letters_or_health(soak: dict[str, Any]) -> None:
    """Masking holds under load and faults, everywhere a secret could surface."""
    secrets = soak["secrets"]
    scanned = secrets["scanned"]
    assert scanned["events"] > 0 and scanned["dead_letter_entries"] > 0 and scanned["stored_results"] > 0
    assert secrets["leaks"] == {}


def test_rate_limited_queue_never_exceeds_its_limit_in_any_minute(soak: dict[str, Any]) -> None:
    """Through a burst, a killed worker and a broker fault: counted where the gate lets tasks start."""
    rate = soak["rate_limit"]
    assert rate["starts"] >= rate["executions"] > 0, "the gate's hand-overs were not recorded"
    assert rate["max_in_any_60s"] <= rate["allowed_in_any_60s"], rate


def test_worker_memory_stays_bounded(soak: dict[str, Any]) -> None:
    """No worker's main process grows from the first half of its life to the second."""
    memory = soak["memory"]
    assert memory["workers"], "no memory samples"
    assert memory["growth"] == []


#: What Celery 5.7.0 / Kombu 5.7.0 log when a Redis broker restart kills a worker (upstream bug,
#: reproduced without this package: docs/reliability.md, "What the soak found", 1).
KOMBU_RESTART_CRASH = "Unrecoverable error: AttributeError(\"'NoneType' object has no attribute 'hostname'\")"


def test_workers_survive_every_fault(soak: dict[str, Any]) -> None:
    """A worker may die only when the soak kills it."""
    exits = soak["unexpected_worker_exits"]
    if exits and all(any(KOMBU_RESTART_CRASH in line for line in e["errors"]) for e in exits):
        pytest.xfail(
            "Celery 5.7.0/Kombu 5.7.0 workers exit when their Redis broker restarts "
            "(upstream, reproduced with plain Celery; docs/reliability.md: finding 1); the soak restarts them"
        )
    assert exits == []


def test_soak_finishes_within_its_time_budget(soak: dict[str, Any]) -> None:
    """The issue's limit: 3 minutes for the default run, 10 for the full one (2-core machines)."""
    assert soak["durations"]["total"] < soak["settings"]["budget_seconds"], soak["durations"]
