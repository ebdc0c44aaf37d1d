"""Micro-benchmarks of the extension's primitives, in microseconds per call.

    python -m benchmarks.micro [--redis redis://127.0.0.1:6379/11] [--amqp amqp://...] [--scale 1.0]

Median of several ``timeit`` repeats; the figures go in docs/performance.md. ``--scale``
multiplies every call count (0.1 for a quick check).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import timeit
from collections.abc import Callable
from typing import Any

from celery import Celery
from kombu import Queue

from benchmarks import DEFAULT_AMQP, DEFAULT_REDIS
from celery_jobs_ext import ConfigCache, install
from celery_jobs_ext.state import get_state
from tests.harness import unique

Rows = list[tuple[str, float]]
_scale = 1.0


def measure(func: Callable[[], object], number: int, repeat: int = 7) -> float:
    """Median µs per call over ``repeat`` runs of ``number`` calls (times ``--scale``)."""
    number = max(1, int(number * _scale))
    func()  # warm up: caches, connections, compiled patterns
    times = timeit.repeat(func, number=number, repeat=repeat)
    return statistics.median(times) / number * 1e6


# -- payloads ---------------------------------------------------------------------------

CLEAN_1K = repr(
    {
        "task": "proj.tasks.process_payment",
        "host": "worker-03.eu-west-1.internal",
        "version": "5.7.0",
        "id": "4f8c2d1e-9b7a-4c3e-8f21-0a6b5c4d3e2f",
        "items": [{"sku": f"SKU-{i:05d}", "qty": i % 7, "note": "ordinary text"} for i in range(9)],
    }
)[:1024]
SECRETS = (
    " Authorization: Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    " password=hunter2hunter2 key=AKIAIOSFODNN7EXAMPLE"
)
#: 1 KB with three secrets (a JWT in a Bearer header, a password field, an AWS key id).
SECRET_1K = (CLEAN_1K[: 1024 - len(SECRETS)] + SECRETS)[:1024]
CLEAN_100K = CLEAN_1K * 100
#: 100 KB with the three secrets once, in the middle: a large payload that leaks one header.
SECRET_100K = CLEAN_1K * 50 + SECRET_1K + CLEAN_1K * 49
#: 100 KB with three secrets in every KB (300 in all): the worst case.
DENSE_100K = SECRET_1K * 100


def masking_rows() -> Rows:
    from celery_jobs_ext.masking import mask_text

    return [
        ("mask_text, 1 KB without secrets", measure(lambda: mask_text(CLEAN_1K), 20_000)),
        ("mask_text, 1 KB with 3 secrets", measure(lambda: mask_text(SECRET_1K), 5_000)),
        ("mask_text, 100 KB without secrets", measure(lambda: mask_text(CLEAN_100K), 100)),
        ("mask_text, 100 KB with 3 secrets", measure(lambda: mask_text(SECRET_100K), 100)),
        ("mask_text, 100 KB with 300 secrets", measure(lambda: mask_text(DENSE_100K), 20)),
    ]


def repr_rows(app: Celery) -> Rows:
    """A message's argsrepr and kwargsrepr for the typical payload of benchmarks/publish.py."""
    from celery.utils.saferepr import saferepr

    from benchmarks.publish import ARGS, KWARGS
    from celery_jobs_ext.masking import mask_repr
    from celery_jobs_ext.masking.worker import masked_reprs

    return [
        (
            "argsrepr + kwargsrepr: Celery's saferepr (plain task)",
            measure(lambda: (saferepr(ARGS, 1024, maxlevels=3), saferepr(KWARGS, 1024, maxlevels=3)), 3_000),
        ),
        (
            "argsrepr + kwargsrepr: mask_repr (the whole structure)",
            measure(lambda: (mask_repr(ARGS, None, 1024, 3), mask_repr(KWARGS, None, 1024, 3)), 3_000),
        ),
        (
            "argsrepr + kwargsrepr: masked_reprs (GuardedTask.apply_async)",
            measure(lambda: masked_reprs(app, ARGS, KWARGS, None), 3_000),
        ),
    ]


def shell_rows() -> Rows:
    from celery_jobs_ext.shell import run_command, validate_command

    command = "grep -E 'ERROR|WARN' /var/log/app.log"

    def run_true(sandbox: str) -> Callable[[], object]:
        return lambda: run_command(["/bin/true"], env={}, search_path="/usr/bin:/bin", sandbox=sandbox)

    return [
        (
            f"validate_command({command!r}, ['grep'])",
            measure(lambda: validate_command(command, ["grep"]), 5_000),
        ),
        # the helper process and the program: milliseconds; the kernel sandbox adds its plan,
        # a TMPDIR, the Landlock ruleset and a fork instead of a vfork (docs/security.md)
        ("run_command(['/bin/true']), sandbox off", measure(run_true("off"), 20, repeat=5)),
        ("run_command(['/bin/true']), sandbox auto", measure(run_true("auto"), 20, repeat=5)),
    ]


def config_rows(app: Celery) -> Rows:
    ConfigCache.get(app)
    return [
        ("ConfigCache.get(app)", measure(lambda: ConfigCache.get(app), 1_000_000)),
        ("ConfigCache.get() (current app)", measure(ConfigCache.get, 1_000_000)),
    ]


class _Request:
    """What the metrics recorder reads from a Celery request."""

    delivery_info = {"exchange": "", "routing_key": "payments"}


def recording_rows() -> Rows:
    """The metrics hot path in the worker's main process: memory only, per task."""
    from celery_jobs_ext.metrics import Recorder

    app = Celery(unique("recording"), set_as_current=False)
    recorder = Recorder(app)
    request = _Request()

    def one_task() -> None:
        recorder.task_started(request)
        recorder.task_finished(request, ("succeeded",), 0.001)

    return [("metrics: record one task (started + succeeded), memory only", measure(one_task, 50_000))]


class _Pool:
    """Where a request hands itself to the pool: nowhere, here."""

    def apply_async(self, *args: object, **kwargs: object) -> None:
        return None


def _worker_app(**settings: object) -> tuple[Celery, dict[str, object]]:
    """An app with a plain and a guarded no-op, as a worker has them (metrics recorder on)."""
    from celery_jobs_ext import GuardedTask
    from celery_jobs_ext.metrics import recorder_for

    app = Celery(unique("worker"), broker="memory://", set_as_current=False)
    app.conf.update(task_ignore_result=True, jobs_state_url="sqlite:///:memory:", **settings)

    @app.task(name="bench.plain", shared=False)
    def plain() -> None:
        return None

    @app.task(base=GuardedTask, name="bench.guarded", shared=False)
    def guarded() -> None:
        return None

    app.finalize()
    recorder_for(app)
    return app, {"plain": plain, "guarded": guarded}


def request_rows() -> Rows:
    """Per task in the worker's main process (the throughput bottleneck of prefork): the
    request built from a message, accepted by the pool and finished, as Celery calls them;
    and per task in the pool process: Celery's tracer running the task."""
    from celery.app.trace import build_tracer
    from celery.utils.imports import symbol_by_name
    from celery.worker.request import create_request_cls
    from kombu.message import Message

    rows: Rows = []
    variants = {
        "defaults": {},
        "every feature on": {"jobs_timeout": 300, "jobs_dead_letter_queue": unique("dlq")},
    }
    for label, settings in variants.items():
        app, tasks = _worker_app(**settings)
        for kind, task in tasks.items():
            if kind == "plain" and label != "defaults":
                continue
            headers, properties, body, _ = app.amqp.as_task_v2(unique("id"), task.name, args=(), kwargs={})
            message = Message(
                body=body,
                headers=headers,
                content_type="application/json",
                content_encoding="utf-8",
                delivery_info={"exchange": "", "routing_key": "celery"},
                **properties,
            )
            base = task.Request if isinstance(task.Request, type) else symbol_by_name(task.Request)
            request_cls = create_request_cls(base, task, _Pool(), "bench@host", None, app=app)

            def lifecycle(
                cls: Any = request_cls, task: Any = task, message: Message = message, app: Celery = app
            ) -> None:
                request = cls(
                    message,
                    on_ack=_noop,
                    hostname="bench@host",
                    eventer=None,
                    app=app,
                    connection_errors=(),
                    task=task,
                    body=DECODED,
                    decoded=True,
                )
                request.execute_using_pool(_Pool())
                request.on_accepted(123, time.monotonic())
                request.on_success((False, None, 0.0001))

            tracer = build_tracer(task.name, task, app=app)
            context = {"id": unique("id"), "delivery_info": {"routing_key": "celery"}, **headers}

            def traced(tracer: Any = tracer, context: dict[str, Any] = context) -> None:
                tracer(context["id"], (), {}, context)

            name = "plain Celery task" if kind == "plain" else f"GuardedTask, {label}"
            rows.append((f"worker main process: one request's life, {name}", measure(lifecycle, 20_000)))
            rows.append((f"pool process: Celery's tracer runs the task, {name}", measure(traced, 20_000)))
    return rows


#: A no-op task's decoded message body: args, kwargs, embedded canvas.
DECODED = ((), {}, {"callbacks": None, "errbacks": None, "chain": None, "chord": None})


def _noop(*args: object, **kwargs: object) -> None:
    return None


def state_rows(name: str, url: str) -> Rows:
    """One round trip's worth of each shared-state operation on one backend."""
    from celery_jobs_ext.metrics import Recorder
    from celery_jobs_ext.ratelimit import RateLimiter, acquire, take_slots

    prefix = unique("bench") + ":"
    app = Celery(unique("state"), set_as_current=False)
    app.conf.update(
        jobs_state_url=url, jobs_state_prefix=prefix, jobs_queue_rate_limits={"payments": 6_000_000}
    )
    install(app)
    state = get_state(app)
    limiter = RateLimiter(app, state)
    recorder = Recorder(app)
    queues = ("payments", "emails", "reports")
    fields = {"started": 1, "succeeded": 1, "duration_sum": 0.0123, "duration_count": 1}

    def metrics_flush() -> None:
        for queue in queues:
            recorder.add(queue, fields)
        recorder.flush()

    def batch() -> None:
        take_slots(state.batch(), "b", 0.0001, 1).hincr("h", {"started": 1, "duration": 0.1}, 60).execute()

    try:
        return [
            (f"{name}: ping (one round trip, the floor)", measure(state.ping, 2000)),
            (f"{name}: incr", measure(lambda: state.incr("c", 1, 60), 2000)),
            (
                f"{name}: ratelimit.acquire (raw GCRA decision)",
                measure(lambda: acquire(state, "b", 0.0001, 1), 2000),
            ),
            (
                f"{name}: RateLimiter.allow(queue, limit) (given limit)",
                measure(lambda: limiter.allow("payments", 6_000_000), 2000),
            ),
            (
                f"{name}: RateLimiter(app).allow(queue) (configured limit)",
                measure(lambda: limiter.allow("payments"), 2000),
            ),
            (f"{name}: batch acquire + hincr", measure(batch, 2000)),
            (f"{name}: metrics flush, 3 queues x 4 fields", measure(metrics_flush, 1000)),
        ]
    finally:
        state.clear_prefix()


def health_rows(broker: str, label: str, state_url: str) -> Rows:
    """``build_report`` for 20 queues, 5 of them rate-limited, with a few metrics recorded."""
    from celery_jobs_ext.health import build_report
    from celery_jobs_ext.metrics import Recorder

    prefix = unique("bench") + ":"
    names = [unique(f"q{i:02d}") for i in range(20)]
    app = Celery(unique("health"), broker=broker, set_as_current=False)
    app.conf.update(
        jobs_state_url=state_url,
        jobs_state_prefix=prefix,
        task_queues=[Queue(name) for name in names],
        jobs_queue_rate_limits=dict.fromkeys(names[:5], 600),
    )
    install(app)
    recorder = Recorder(app)
    for name in names:
        recorder.add(
            name, {"started": 3, "succeeded": 2, "failed": 1, "duration_sum": 0.3, "duration_count": 3}
        )
    recorder.flush()
    try:
        return [(f"health.build_report, 20 queues, {label}", measure(lambda: build_report(app), 50))]
    finally:
        get_state(app).clear_prefix()


def run(redis_url: str, amqp_url: str | None, scale: float = 1.0) -> Rows:
    """Every micro-benchmark, in table order."""
    global _scale
    _scale = scale
    app = Celery("bench", broker=redis_url, set_as_current=True)
    install(app)
    rows = (
        config_rows(app) + masking_rows() + repr_rows(app) + shell_rows() + recording_rows() + request_rows()
    )
    with tempfile.TemporaryDirectory() as folder:
        rows += state_rows("Redis", redis_url)
        rows += state_rows("SQLite", f"sqlite:///{folder}/bench.db")
        rows += health_rows(redis_url, "Redis broker + state", redis_url)
        if amqp_url:
            rows += health_rows(amqp_url, "RabbitMQ broker, Redis state", redis_url)
    return rows


def render(rows: Rows) -> str:
    lines = ["| primitive | µs per call (median) |", "|---|---:|"]
    lines += [f"| {name} | {micros:,.2f} |" for name, micros in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    parser.add_argument("--amqp", default=DEFAULT_AMQP, help="'' to skip the RabbitMQ health report")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every call count")
    options = parser.parse_args()
    rows = run(options.redis, options.amqp or None, options.scale)
    print(f"Python {platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}\n")
    print(render(rows))


if __name__ == "__main__":
    main()
