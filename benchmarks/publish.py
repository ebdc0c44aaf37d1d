"""Publish cost: ``apply_async`` calls per second, plain Celery task against GuardedTask.

    python -m benchmarks.publish [--tasks 5000] [--rounds 7] [--brokers redis,amqp]

GuardedTask masks ``argsrepr``/``kwargsrepr`` at publish, so this is where masking costs
the caller. Each call publishes one message with the typical payload of issue 15 (an id,
an API key, an order dict and a ``password`` keyword: about 300 bytes of arguments)
through the app's producer pool, as user code does. Three variants, interleaved every 100
calls: a plain task in an app without the extension, a plain task in an app where it is
installed, and a GuardedTask; the figure is the publishing process's CPU per call. The
queue is deleted afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import statistics
import time
import weakref
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from celery import Celery
from celery.signals import after_task_publish, before_task_publish

from benchmarks import DEFAULT_AMQP, DEFAULT_REDIS
from benchmarks.verdict import spread, verdict, verdict_at_most
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
NO_EXTENSION = "plain Celery task, app without the extension"
GUARDED = "GuardedTask (masks argsrepr)"
VARIANTS = (NO_EXTENSION, PLAIN, GUARDED)
#: Issue 15: a GuardedTask's publish adds at most this many µs of CPU to a plain one's.
MAX_ADDED_MICROS = 15.0
#: ... and keeps this share of a plain task's publish rate; plain tasks in an app with the
#: extension keep ``PLAIN_TARGET`` of those in an app without it.
GUARDED_TARGET = 0.97
PLAIN_TARGET = 0.99


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

    # An app no GuardedTask ever joined, published with the extension's process-wide publish
    # receivers disconnected (see _without_extension_receivers): as if it were never imported.
    bare = Celery(unique("publish-bare"), broker=broker, set_as_current=False)
    bare.conf.task_ignore_result = True

    @bare.task(name="bench.bare_publish")
    def bare_plain(*args: Any, **kwargs: Any) -> None:
        return None

    return app, {NO_EXTENSION: bare_plain, PLAIN: plain, GUARDED: guarded}


@dataclass
class PublishRounds:
    """Per round and variant: µs of this process's CPU and of wall clock per ``apply_async``."""

    cpu: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in VARIANTS})
    wall: dict[str, list[float]] = field(default_factory=lambda: {name: [] for name in VARIANTS})

    def added(self, name: str, baseline: str = PLAIN) -> list[float]:
        """CPU µs per call ``name`` adds to ``baseline``, round by round."""
        return [c - b for c, b in zip(self.cpu[name], self.cpu[baseline], strict=True)]

    def ratios(self, name: str, baseline: str = PLAIN) -> list[float]:
        """``name``'s publish rate (by CPU) over ``baseline``'s, round by round."""
        return [b / c for c, b in zip(self.cpu[name], self.cpu[baseline], strict=True)]


#: The publish signals Celery sends only while some receiver is connected.
PUBLISH_SIGNALS = (before_task_publish, after_task_publish)


@contextlib.contextmanager
def _without_extension_receivers() -> Iterator[None]:
    """Disconnect the extension's publish receivers for a while, as if it were never imported.

    Importing ``celery_jobs_ext`` connects receivers that run for every task of every app in
    the process (they return at once for apps and tasks they do not concern, but Celery
    sends the signal at all only when a receiver is connected), so the "app without the
    extension" baseline must not have them.
    """
    saved = {signal: list(signal.receivers) for signal in PUBLISH_SIGNALS}
    for signal in PUBLISH_SIGNALS:
        signal.receivers = [entry for entry in signal.receivers if not _is_ours(entry[1])]
        signal.sender_receivers_cache.clear()
    try:
        yield
    finally:
        for signal, receivers in saved.items():
            signal.receivers = receivers
            signal.sender_receivers_cache.clear()


def _is_ours(receiver: Any) -> bool:
    function = receiver() if isinstance(receiver, weakref.ReferenceType) else receiver
    return getattr(function, "__module__", "").startswith("celery_jobs_ext")


def run(broker: str, tasks: int, rounds: int, state_url: str = DEFAULT_REDIS) -> PublishRounds:
    """``rounds`` interleaved rounds of ``tasks`` calls per variant, in batches of 100.

    The variants alternate every 100 calls (A B C A B C ...), so a burst of load from
    another job on the machine hits each of them alike; the figure is this process's CPU
    time, which other jobs lengthen far less than the wall clock.
    """
    _, variants = _app(broker, state_url)
    queue = unique("publish")
    result = PublishRounds()
    batch = min(100, tasks)
    try:
        for task in variants.values():  # warm up: connections, queue declaration, config cache
            for _ in range(20):
                task.apply_async(ARGS, KWARGS, queue=queue)
        for _ in range(rounds):
            cpu = dict.fromkeys(variants, 0.0)
            wall = dict.fromkeys(variants, 0.0)
            for _ in range(max(tasks // batch, 1)):
                for name, task in variants.items():
                    bare = name == NO_EXTENSION
                    with _without_extension_receivers() if bare else contextlib.nullcontext():
                        cpu_start, wall_start = time.process_time(), time.perf_counter()
                        for _ in range(batch):
                            task.apply_async(ARGS, KWARGS, queue=queue)
                        cpu[name] += time.process_time() - cpu_start
                        wall[name] += time.perf_counter() - wall_start
            calls = max(tasks // batch, 1) * batch
            for name in variants:
                result.cpu[name].append(cpu[name] / calls * 1e6)
                result.wall[name].append(wall[name] / calls * 1e6)
    finally:
        for each in {task.app for task in variants.values()}:
            with each.connection_for_write() as connection:
                connection.default_channel.queue_delete(queue)
    return result


def render(results: dict[str, PublishRounds], tasks: int) -> str:
    """Markdown: µs per call per broker and variant (CPU and wall), and the cost over plain."""
    lines = [
        "| broker | variant | CPU µs per call, median [IQR] | wall µs per call, median "
        "| added CPU µs per call vs plain, per round | rate (CPU) vs plain, median [IQR] |",
        "|---|---|---:|---:|---|---:|",
    ]
    for broker, rounds in results.items():
        for name in VARIANTS:
            added = rounds.added(name)
            lines.append(
                f"| {broker} | {name} | {spread(rounds.cpu[name], percent=False)} "
                f"| {statistics.median(rounds.wall[name]):,.0f} "
                f"| {' / '.join(f'{a:+.1f}' for a in added)} | {spread(rounds.ratios(name))} |"
            )
    return "\n".join(lines)


def verdict_lines(results: dict[str, PublishRounds]) -> list[str]:
    """The publish targets of issue 15, one line each per broker."""
    lines = []
    for broker, rounds in results.items():
        added = rounds.added(GUARDED)
        lines.append(
            f"publish, {broker}: GuardedTask adds ≤ {MAX_ADDED_MICROS:.0f} µs CPU per call: "
            f"{spread(added, percent=False)} µs → {verdict_at_most(added, MAX_ADDED_MICROS)}"
        )
        ratios = rounds.ratios(GUARDED)
        lines.append(
            f"publish, {broker}: GuardedTask ≥ {GUARDED_TARGET:.0%} of plain's rate: "
            f"{spread(ratios)} → {verdict(ratios, GUARDED_TARGET)}"
        )
        ratios = rounds.ratios(PLAIN, NO_EXTENSION)
        lines.append(
            f"publish, {broker}: plain task, extension installed ≥ {PLAIN_TARGET:.0%} of no extension: "
            f"{spread(ratios)} → {verdict(ratios, PLAIN_TARGET)}"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=5_000, help="apply_async calls per variant and round")
    parser.add_argument("--rounds", type=int, default=7)
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
    print()
    print("\n".join(verdict_lines(results)))


if __name__ == "__main__":
    main()
