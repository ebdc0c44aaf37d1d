"""Publish cost: ``apply_async`` calls per second, plain Celery task against GuardedTask.

    python -m benchmarks.publish [--tasks 5000] [--rounds 3] [--brokers redis,amqp]

GuardedTask masks ``argsrepr``/``kwargsrepr`` at publish, so this is where masking costs
the caller. Each call publishes one message with a typical small payload (an id, an API
key and an order dict: about 300 bytes of arguments) through the app's producer pool, as
user code does. Variants run interleaved per round; the queue is deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from typing import Any

from celery import Celery

from benchmarks import DEFAULT_AMQP, DEFAULT_REDIS
from celery_jobs_ext import GuardedTask
from tests.harness import unique

ARGS = (
    42,
    "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
    {
        "order": {"id": "ord_1N3xYz", "amount": 1999, "currency": "eur"},
        "customer": "cus_9s6XKzkNRiz8i3",
        "note": "deliver to the back door, ring twice",
        "items": [{"sku": f"SKU-{i:05d}", "qty": i} for i in range(4)],
    },
)
KWARGS = {"password": "hunter2hunter2", "retry": True}

PLAIN = "plain Celery task"
GUARDED = "GuardedTask (masks argsrepr)"


def _app(broker: str, state_url: str) -> tuple[Celery, dict[str, Any]]:
    app = Celery(unique("publish"), broker=broker, set_as_current=False)
    app.conf.task_ignore_result = True
    app.conf.jobs_state_url = state_url

    @app.task(name="bench.plain_publish")
    def plain(*args: Any, **kwargs: Any) -> None:
        return None

    @app.task(base=GuardedTask, name="bench.guarded_publish")
    def guarded(*args: Any, **kwargs: Any) -> None:
        return None

    return app, {PLAIN: plain, GUARDED: guarded}


def run(broker: str, tasks: int, rounds: int, state_url: str = DEFAULT_REDIS) -> dict[str, list[float]]:
    """Calls per second of each variant, ``rounds`` interleaved rounds of ``tasks`` calls."""
    app, variants = _app(broker, state_url)
    queue = unique("publish")
    rates: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for task in variants.values():  # warm up: connections, queue declaration, config cache
            task.apply_async(ARGS, KWARGS, queue=queue)
        for _ in range(rounds):
            for name, task in variants.items():
                started = time.perf_counter()
                for _ in range(tasks):
                    task.apply_async(ARGS, KWARGS, queue=queue)
                rates[name].append(tasks / (time.perf_counter() - started))
    finally:
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)
    return rates


def render(results: dict[str, dict[str, list[float]]], tasks: int) -> str:
    """Markdown: calls/s per broker and variant, and the cost per call over plain."""
    lines = [
        "| broker | variant | apply_async/s median | min | max | µs per call | added µs per call |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for broker, rates in results.items():
        plain_us = 1e6 / statistics.median(rates[PLAIN])
        for name, values in rates.items():
            micros = 1e6 / statistics.median(values)
            lines.append(
                f"| {broker} | {name} | {statistics.median(values):,.0f} | {min(values):,.0f} "
                f"| {max(values):,.0f} | {micros:,.0f} | {micros - plain_us:+,.0f} |"
            )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=5_000, help="apply_async calls per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--brokers", default="redis,amqp", help="comma-separated: redis, amqp")
    parser.add_argument("--redis", default=DEFAULT_REDIS)
    parser.add_argument("--amqp", default=DEFAULT_AMQP)
    options = parser.parse_args()
    urls = {"redis": options.redis, "amqp": options.amqp}
    results = {
        name: run(urls[name], options.tasks, options.rounds, state_url=options.redis)
        for name in options.brokers.split(",")
    }
    print(f"Python {platform.python_version()}, {os.cpu_count()} cores\n")
    print(render(results, options.tasks))


if __name__ == "__main__":
    main()
