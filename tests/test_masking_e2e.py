"""Planted secrets through a real worker: none reach its log, its events or stored exceptions."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
from celery import Celery

from tests.harness import WorkerProcess, unique, wait_for

DATA = Path(__file__).parent / "data" / "secrets_true_positives.json"


def planted() -> list[dict[str, str]]:
    cases = json.loads(DATA.read_text())["cases"]
    # Short "secrets" (a 6-letter password) could occur by chance in a log; the long ones can't.
    return [case for case in cases if len(case["secret"]) >= 12]


class EventRecorder:
    """Every task event the worker sends, captured by a real receiver on the broker."""

    def __init__(self, app: Celery) -> None:
        self.app = app
        self.events: list[dict[str, Any]] = []
        self.ready = threading.Event()
        self.receiver: Any = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        self.ready.wait(10)

    def _run(self) -> None:
        with self.app.connection_for_read() as connection:
            self.receiver = self.app.events.Receiver(connection, handlers={"*": self.events.append})
            self.ready.set()
            self.receiver.capture(limit=None, timeout=None, wakeup=False)

    def stop(self) -> None:
        if self.receiver is not None:
            self.receiver.should_stop = True
        self.thread.join(10)


def test_no_planted_secret_reaches_logs_events_or_stored_exceptions(
    make_app: Callable[..., Celery], redis_url: str
) -> None:
    app = make_app()
    queue = app.conf.task_default_queue
    conf = {
        "broker_url": redis_url,
        "result_backend": redis_url,
        "task_default_queue": queue,
        "jobs_state_prefix": app.conf.jobs_state_prefix,
        "worker_send_task_events": True,
        "task_send_sent_event": True,
    }
    cases = planted()
    recorder = EventRecorder(app)
    results: dict[str, list[Any]] = {"args": [], "log": [], "exception": [], "return": []}
    with WorkerProcess({"JOBS_TEST_CONF": json.dumps(conf)}, queues=queue, concurrency=2) as worker:
        worker.wait_ready()
        for case in cases:
            text = case["text"]
            results["args"].append(
                app.send_task("tests.leak_in_args", args=[text], kwargs={"password": case["secret"]})
            )
            results["log"].append(app.send_task("tests.leak_in_log", args=[text]))
            results["exception"].append(app.send_task("tests.leak_in_exception", args=[text]))
            results["return"].append(app.send_task("tests.leak_in_return", args=[text]))
        for result in [r for group in results.values() for r in group]:
            wait_for(result.ready, timeout=60, interval=0.05, message=f"task {result.id}")
        wait_for(
            lambda: sum(e.get("type") == "task-succeeded" for e in recorder.events) >= 3 * len(cases),
            timeout=30,
            message="task-succeeded events",
        )
        worker.stop()
        log = worker.output()
    recorder.stop()

    client = redis.Redis.from_url(redis_url)
    stored_failures = [
        client.get(f"celery-task-meta-{result.id}").decode() for result in results["exception"]
    ]
    assert "RuntimeError" in stored_failures[0] and "could not process" in stored_failures[0]
    assert "payload:" in log and "***" in log, "the log lines were written, masked"
    leaks = []
    for case in cases:
        secret = case["secret"]
        if secret in log:
            leaks.append(f"{case['label']} ({case['source']}) in the worker log")
        leaked = {e["type"] for e in recorder.events if secret in json.dumps(e)}
        if leaked:
            leaks.append(f"{case['label']} ({case['source']}) in task events {sorted(leaked)}")
        if any(secret in stored for stored in stored_failures):
            leaks.append(f"{case['label']} ({case['source']}) in a stored exception")
    assert not leaks, "\n".join(leaks)

    # The return value is the caller's data: stored as returned.
    first = results["return"][0]
    assert first.get(timeout=5) == cases[0]["text"]


def test_a_retried_message_keeps_its_masked_argsrepr(make_app: Callable[..., Celery], redis_url: str) -> None:
    from celery import Task

    from celery_jobs_ext import GuardedTask
    from tests.harness import in_process_worker

    app = make_app(jobs_retry_strategy="fixed", jobs_retry_base=30)
    parking = unique("parking")
    app._test_queues = [parking]  # type: ignore[attr-defined]
    secret = "ghp_" + "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8"

    @app.task(base=GuardedTask, bind=True, shared=False)
    def flaky(self: Task, token: str) -> None:
        raise self.retry(exc=ValueError(f"token {token} refused"), queue=parking)

    with in_process_worker(app):
        result = flaky.delay(secret)
        wait_for(lambda: redis.Redis.from_url(redis_url).llen(parking), timeout=20, message="retried message")
    message = json.loads(redis.Redis.from_url(redis_url).lindex(parking, 0))
    assert secret not in message["headers"]["argsrepr"]
    assert "***API_KEY***" in message["headers"]["argsrepr"]
    stored = redis.Redis.from_url(redis_url).get(f"celery-task-meta-{result.id}").decode()
    assert "RETRY" in stored and secret not in stored


def test_guarded_publish_masks_the_reprs_and_keeps_the_real_arguments_in_the_body(
    make_app: Callable[..., Celery], redis_url: str
) -> None:
    import base64

    from celery_jobs_ext import GuardedTask

    app = make_app()
    secret = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"

    @app.task(base=GuardedTask, shared=False, name="tests.publish_only")
    def publish_only(card: str, password: str = "") -> None: ...

    publish_only.delay(f"charge with {secret}", password="hunter2hunter2")
    raw = json.loads(redis.Redis.from_url(redis_url).lindex(app.conf.task_default_queue, 0))
    headers = raw["headers"]
    assert secret not in headers["argsrepr"] and "***API_KEY***" in headers["argsrepr"]
    assert "hunter2hunter2" not in headers["kwargsrepr"] and "***PASSWORD***" in headers["kwargsrepr"]
    args, kwargs, _ = json.loads(base64.b64decode(raw["body"]))
    assert args == [f"charge with {secret}"] and kwargs == {"password": "hunter2hunter2"}


def test_max_retries_exceeded_is_stored_masked(make_app: Callable[..., Celery], redis_url: str) -> None:
    from celery import Task

    from celery_jobs_ext import GuardedTask
    from tests.harness import in_process_worker

    app = make_app()
    secret = "xoxb-" + "123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx"

    @app.task(base=GuardedTask, bind=True, shared=False, max_retries=0)
    def give_up(self: Task, token: str) -> None:
        self.retry()

    with in_process_worker(app):
        result = give_up.delay(secret)
        wait_for(result.ready, timeout=20)
    stored = redis.Redis.from_url(redis_url).get(f"celery-task-meta-{result.id}").decode()
    assert "MaxRetriesExceededError" in stored
    assert secret not in stored


def test_a_token_cut_by_celerys_result_repr_is_masked_whole(
    make_app: Callable[..., Celery], redis_url: str
) -> None:
    """Celery cuts the result repr to 1024 characters before the log filter and the event see it:
    the token's known prefix still masks what is left of it."""
    app = make_app()
    queue = app.conf.task_default_queue
    conf = {
        "broker_url": redis_url,
        "result_backend": redis_url,
        "task_default_queue": queue,
        "jobs_state_prefix": app.conf.jobs_state_prefix,
        "worker_send_task_events": True,
    }
    token = "ghp_" + "aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5"
    recorder = EventRecorder(app)
    with WorkerProcess({"JOBS_TEST_CONF": json.dumps(conf)}, queues=queue, concurrency=1) as worker:
        worker.wait_ready()
        result = app.send_task("tests.leak_in_return_list", args=[["y" * 996, token]])
        wait_for(result.ready, timeout=60, message=f"task {result.id}")
        wait_for(
            lambda: any(e.get("type") == "task-succeeded" for e in recorder.events),
            timeout=30,
            message="task-succeeded event",
        )
        worker.stop()
        log = worker.output()
    recorder.stop()
    succeeded = [e for e in recorder.events if e.get("type") == "task-succeeded"]
    assert "succeeded in" in log and "***API_KEY***" in log
    assert token[:8] not in log, "a cut token's visible part stays out of the log"
    assert "***API_KEY***" in succeeded[0]["result"]
    assert token[:8] not in json.dumps(succeeded)


def test_a_returned_container_under_a_secret_key_is_masked_in_the_log_and_the_event(
    make_app: Callable[..., Celery], redis_url: str
) -> None:
    """Red-team round 2: ``{'auth': ('bob', S)}`` returned by a task reached the worker's
    "succeeded in" line and the task-succeeded event, its key's mask ending at the first quote."""
    app = make_app()
    queue = app.conf.task_default_queue
    conf = {
        "broker_url": redis_url,
        "result_backend": redis_url,
        "task_default_queue": queue,
        "jobs_state_prefix": app.conf.jobs_state_prefix,
        "worker_send_task_events": True,
    }
    secret = "Zq8!wRt5mK2x"
    recorder = EventRecorder(app)
    with WorkerProcess({"JOBS_TEST_CONF": json.dumps(conf)}, queues=queue, concurrency=1) as worker:
        worker.wait_ready()
        returned = {"auth": ["bob", secret], "token": {"access_token": secret, "expires_in": 3600}}
        result = app.send_task("tests.leak_in_return_list", args=[returned])
        wait_for(result.ready, timeout=60, message=f"task {result.id}")
        wait_for(
            lambda: any(e.get("type") == "task-succeeded" for e in recorder.events),
            timeout=30,
            message="task-succeeded event",
        )
        worker.stop()
        log = worker.output()
    recorder.stop()
    succeeded = [e for e in recorder.events if e.get("type") == "task-succeeded"]
    assert "succeeded in" in log and "'auth': ['bob', '***TOKEN***']" in log
    assert secret not in log
    assert "'access_token': '***TOKEN***'" in succeeded[0]["result"]
    assert secret not in json.dumps(succeeded)
