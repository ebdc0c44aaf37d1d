"""Drain throughput of plain Celery against GuardedTask, side by side on one broker.

    python -m benchmarks.throughput [--tasks 20000] [--rounds 3] [--broker redis://127.0.0.1:6379/11]

Each variant drains the same number of no-op tasks through a real ``celery worker``
subprocess (prefork, 2 processes), with the messages published before the worker starts.
A marker task at the head and one at the tail write the time to Redis, so the figure is
tasks per second between the first and the last start. Variants run interleaved
(A B C A B C ...) so machine drift hits them equally; the ratio to plain Celery is taken
per round.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from typing import Any

import redis
from celery import Celery

from tests.harness import WorkerProcess, unique, wait_for

VARIANTS: dict[str, dict[str, Any]] = {
    "plain Celery task": {"task": "tests.plain_noop", "settings": {}},
    "GuardedTask, defaults": {"task": "tests.guarded_noop", "settings": {}},
    "GuardedTask, every feature on": {
        "task": "tests.guarded_noop",
        "settings": {
            "jobs_mask_secrets": True,
            "jobs_metrics": True,
            "jobs_timeout": 300,
            "jobs_dead_letter_queue": "bench-dead-letters",
            # far above the achieved rate: the decision runs for every task, never refuses
            "jobs_queue_rate_limits": {"{queue}": 6_000_000},
        },
    },
}


def drain(
    app: Celery, broker: str, ledger_url: str, task: str, settings: dict[str, Any], count: int
) -> float:
    queue = unique("bench")
    marks = unique("marks")
    resolved = json.loads(json.dumps(settings).replace("{queue}", queue))
    conf = {
        "broker_url": broker,
        "task_ignore_result": True,
        "jobs_state_prefix": unique("bench") + ":",
        **resolved,
    }
    if not broker.startswith("redis"):
        conf["jobs_state_url"] = ledger_url
    env = {"JOBS_TEST_CONF": json.dumps(conf), "JOBS_TEST_LEDGER_URL": ledger_url}
    with app.producer_or_acquire() as producer:
        app.send_task("tests.mark", args=[marks], queue=queue, producer=producer)
        for _ in range(count):
            app.send_task(task, queue=queue, producer=producer)
        app.send_task("tests.mark", args=[marks], queue=queue, producer=producer)
    client = redis.Redis.from_url(ledger_url)
    try:
        # Log level WARNING: per-task INFO lines would cost every variant the same, but a lot.
        with WorkerProcess(env, queues=queue, concurrency=2, extra_args=["--loglevel", "WARNING"]):
            wait_for(lambda: client.llen(marks) >= 2, timeout=600, interval=0.05, message="the tail marker")
        first, last = (float(x) for x in client.lrange(marks, 0, -1))
    finally:
        client.delete(marks)
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)
    return count / (last - first)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--broker", default=os.environ.get("JOBS_BENCH_BROKER", "redis://127.0.0.1:6379/11"))
    parser.add_argument("--ledger", default="redis://127.0.0.1:6379/11", help="Redis for markers and state")
    options = parser.parse_args()

    app = Celery("bench", broker=options.broker, set_as_current=False)
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_number in range(options.rounds):
        for name, variant in VARIANTS.items():
            rate = drain(
                app, options.broker, options.ledger, variant["task"], variant["settings"], options.tasks
            )
            rates[name].append(rate)
            print(f"round {round_number + 1}: {name}: {rate:,.0f} tasks/s", flush=True)

    plain = rates["plain Celery task"]
    broker = options.broker.split("://")[0]
    print(
        f"\n{options.tasks:,} no-op tasks x {options.rounds} rounds, broker {broker}, "
        f"prefork -c 2; Python {platform.python_version()}, {os.cpu_count()} cores\n"
    )
    print("| variant | tasks/s median | min | max | ratio to plain (median of rounds) |")
    print("|---|---:|---:|---:|---:|")
    for name, values in rates.items():
        ratios = [value / base for value, base in zip(values, plain, strict=True)]
        print(
            f"| {name} | {statistics.median(values):,.0f} | {min(values):,.0f} | {max(values):,.0f} "
            f"| {statistics.median(ratios):.1%} |"
        )


if __name__ == "__main__":
    main()
