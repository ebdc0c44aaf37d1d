"""A pipeline whose tasks run on a worker without celery_jobs_ext still keeps every promise.

That worker rebuilds the pipeline from the message as ordinary signatures, and, not knowing
the adapters, Celery there sends them as tasks with the failed task's id to the callback's
queue, where a worker with the extension builds the same error description from the result
backend.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

from celery import Celery
from kombu.utils.json import dumps

from celery_jobs_ext import JobSignature
from tests.canvas.recording import Calls, Recorders
from tests.harness import ROOT, WorkerProcess, in_process_worker, unique

SECRET = "s3cr3t-pa55w0rd-value"


def test_pipeline_on_a_worker_without_the_extension_fires_then_catch_and_finally(
    make_app: Callable[..., Celery], redis_url: str, calls: Calls
) -> None:
    app = make_app(result_extended=True)
    plain_queue, callbacks = unique("plain"), unique("callbacks")
    app._test_queues = [plain_queue, callbacks]  # type: ignore[attr-defined]
    rec = Recorders(app, calls)
    conf = {
        "broker_url": redis_url,
        "result_backend": redis_url,
        "result_extended": True,
        "task_default_queue": plain_queue,
    }

    def pipeline(fails: bool) -> JobSignature:
        second = (
            JobSignature("plain.fail", (f"password={SECRET}",)) if fails else JobSignature("plain.double")
        )
        return (
            JobSignature("plain.double", (21,), app=app)
            .chain([second])
            .on_queue(plain_queue)
            .then(rec.record.s("then").set(queue=callbacks))
            .catch(rec.record.s("catch").set(queue=callbacks))
            .finally_(rec.record.s("finally").set(queue=callbacks))
        )

    with (
        WorkerProcess(
            {"JOBS_TEST_CONF": json.dumps(conf)}, queues=plain_queue, app="tests.canvas.plainapp"
        ) as worker,
        in_process_worker(app, queues=[callbacks]),
    ):
        worker.wait_ready()
        known = app.send_task("plain.registered", queue=plain_queue).get(timeout=30)
        ok = pipeline(False).push()
        failed = pipeline(True).push()
        assert ok.get(timeout=30) == 84
        [error] = calls.wait("catch", timeout=30)
        calls.wait("finally", 2, timeout=30)
        calls.wait("then", timeout=30)
        rec.settle(callbacks)
    assert "jobs.catch" not in known and "jobs.finally" not in known and "plain.fail" in known
    assert calls.of("then") == [84]
    assert error == {
        "task_id": failed.id,
        "task_name": "plain.fail",
        "exception_type": "RuntimeError",
        "message": "password=***PASSWORD*** after 42",
        "attempts": 1,
        "queue": plain_queue,
    }
    outcomes = {outcome["task_id"]: outcome for outcome in calls.of("finally")}
    assert outcomes[ok.id] == {"state": "SUCCESS", "result": 84, "error": None, "task_id": ok.id}
    assert outcomes[failed.id] == {"state": "FAILURE", "result": None, "error": error, "task_id": failed.id}
    assert len(calls.of("catch")) == 1


def test_a_process_without_the_extension_rebuilds_a_pipeline_as_plain_signatures(
    make_app: Callable[..., Celery],
) -> None:
    app = make_app()
    sig = (
        JobSignature("a", (1,), app=app)
        .chain([JobSignature("b"), JobSignature("c")])
        .then(JobSignature("d"))
        .catch(JobSignature("e"))
        .finally_(JobSignature("f"))
        .timeout(30)
    )
    program = (
        "import json, sys\n"
        "from celery.canvas import Signature, _chain\n"
        "data = json.load(sys.stdin)\n"
        "sig = Signature.from_dict(data)\n"
        "assert type(sig) is _chain and json.loads(json.dumps(sig)) == data, sig\n"
        "assert all(type(step) is Signature for step in sig.tasks)\n"
        "assert 'celery_jobs_ext' not in sys.modules\n"
        "print(json.dumps(sig))\n"
    )
    rebuilt = subprocess.run(
        [sys.executable, "-c", program],
        input=dumps(sig),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    assert json.loads(rebuilt.stdout) == json.loads(dumps(sig))
