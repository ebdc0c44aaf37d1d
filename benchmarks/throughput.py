"""Drain throughput of plain Celery against GuardedTask, side by side on one broker.

    python -m benchmarks.throughput [--tasks 20000] [--rounds 3] [--brokers redis,amqp]

Each variant drains the same number of no-op tasks through a real ``celery worker``
subprocess (prefork, 2 processes), with the messages published before the worker starts.
A marker task at the head and one at the tail write the time and the worker's CPU time
(main process plus pool processes, from ``/proc``) to Redis, so the figures are tasks per
second and CPU per task between the first and the last start. Variants run interleaved
(A B C A B C ...) so machine drift hits them equally; the ratio to plain Celery is taken
per round. On RabbitMQ the shared state is on Redis.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis
from celery import Celery

from benchmarks import DEFAULT_AMQP, DEFAULT_REDIS
from benchmarks.verdict import spread, verdict
from tests.harness import WorkerProcess, unique, wait_for

PLAIN = "plain Celery task"
NO_EXTENSION = "plain Celery task, app without the extension"
DEFAULTS = "GuardedTask, defaults"
EVERY = "GuardedTask, every feature on"
PLAIN_LIMITS = "plain Celery task, Celery time limits (soft 300 s, hard 310 s)"
VARIANTS: dict[str, dict[str, Any]] = {
    PLAIN: {"task": "tests.plain_noop", "settings": {}},
    # The same task in an app that never imports celery_jobs_ext (benchmarks/plainapp.py):
    # PLAIN runs in tests.workerapp, where GuardedTasks have installed the extension.
    NO_EXTENSION: {"task": "tests.plain_noop", "settings": {}, "app": "benchmarks.plainapp"},
    DEFAULTS: {"task": "tests.guarded_noop", "settings": {}},
    # What Celery's own time limits cost a plain task: the pool's timers per job, which
    # GuardedTask's timeout uses on prefork too (hard where the pool can kill).
    PLAIN_LIMITS: {
        "task": "tests.plain_noop",
        "settings": {"task_soft_time_limit": 300, "task_time_limit": 310},
    },
    EVERY: {
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


@dataclass
class Drain:
    """One variant's drain: tasks per second and worker CPU seconds per task."""

    rate: float
    cpu_per_task: float


@dataclass
class BrokerResult:
    """Every round of every variant on one broker."""

    broker: str
    tasks: int
    drains: dict[str, list[Drain]] = field(default_factory=dict)

    def ratios(self, name: str, baseline: str = PLAIN) -> list[float]:
        """Tasks/s of ``name`` over ``baseline``'s, round by round."""
        return [d.rate / p.rate for d, p in zip(self.drains[name], self.drains[baseline], strict=True)]

    def cpu_ratios(self, name: str, baseline: str = PLAIN) -> list[float]:
        """``baseline``'s worker CPU per task over ``name``'s, round by round.

        The throughput a variant would have if CPU were the only limit: 0.95 means it costs
        the worker 1/0.95 of the baseline's CPU per task. On a shared machine this is the
        steadier figure, since other jobs' load lengthens the wall clock, not our CPU time.
        """
        pairs = zip(self.drains[name], self.drains[baseline], strict=True)
        return [p.cpu_per_task / d.cpu_per_task for d, p in pairs]


#: The drain targets of issue 15: (variant, baseline, lowest ratio).
TARGETS = (
    (DEFAULTS, PLAIN, 0.97),
    (EVERY, PLAIN, 0.95),
    (PLAIN, NO_EXTENSION, 0.99),
)


def drain(
    app: Celery,
    broker: str,
    ledger_url: str,
    task: str,
    settings: dict[str, Any],
    count: int,
    worker_app: str = "tests.workerapp",
) -> Drain:
    """Publish ``count`` tasks between two markers, start a worker, return its drain figures."""
    queue = unique("bench")
    marks = unique("marks")
    resolved = json.loads(json.dumps(settings).replace("{queue}", queue))
    conf = {
        "broker_url": broker,
        "task_ignore_result": True,
        "jobs_state_prefix": unique("bench") + ":",
        **resolved,
    }
    if not broker.startswith("redis") and worker_app == "tests.workerapp":
        conf["jobs_state_url"] = ledger_url
    env = {"JOBS_TEST_CONF": json.dumps(conf), "JOBS_TEST_LEDGER_URL": ledger_url}
    with app.producer_or_acquire() as producer:
        app.send_task("tests.mark_cpu", args=[marks], queue=queue, producer=producer)
        for _ in range(count):
            app.send_task(task, queue=queue, producer=producer)
        app.send_task("tests.mark_cpu", args=[marks], queue=queue, producer=producer)
    client = redis.Redis.from_url(ledger_url)
    try:
        # Log level WARNING: per-task INFO lines would cost every variant the same, but a lot.
        with WorkerProcess(
            env, queues=queue, concurrency=2, extra_args=["--loglevel", "WARNING"], app=worker_app
        ):
            wait_for(lambda: client.llen(marks) >= 2, timeout=900, interval=0.05, message="the tail marker")
        (first_time, first_cpu), (last_time, last_cpu) = (json.loads(x) for x in client.lrange(marks, 0, -1))
    finally:
        client.delete(marks)
        for key in client.scan_iter(match=conf["jobs_state_prefix"] + "*"):
            client.delete(key)
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)
    return Drain(rate=count / (last_time - first_time), cpu_per_task=(last_cpu - first_cpu) / count)


def run(
    broker: str, tasks: int, rounds: int, ledger_url: str = DEFAULT_REDIS, verbose: bool = True
) -> BrokerResult:
    """Drain every variant ``rounds`` times, interleaved, on ``broker``."""
    app = Celery("bench", broker=broker, set_as_current=False)
    result = BrokerResult(broker=broker.split("://")[0], tasks=tasks, drains={name: [] for name in VARIANTS})
    for round_number in range(rounds):
        for name, variant in VARIANTS.items():
            figures = drain(
                app,
                broker,
                ledger_url,
                variant["task"],
                variant["settings"],
                tasks,
                worker_app=variant.get("app", "tests.workerapp"),
            )
            result.drains[name].append(figures)
            if verbose:
                print(
                    f"  {result.broker} round {round_number + 1}: {name}: {figures.rate:,.0f} tasks/s, "
                    f"{figures.cpu_per_task * 1e6:,.0f} µs CPU/task",
                    flush=True,
                )
    return result


def render(results: list[BrokerResult]) -> str:
    """The Markdown tables: tasks/s and ratios, then worker CPU per task."""
    lines = [
        "| broker | variant | tasks/s median | min | max | ratio to plain, per round | ratio, median |",
        "|---|---|---:|---:|---:|---|---:|",
    ]
    for result in results:
        for name, drains in result.drains.items():
            rates = [d.rate for d in drains]
            ratios = result.ratios(name)
            lines.append(
                f"| {result.broker} | {name} | {statistics.median(rates):,.0f} | {min(rates):,.0f} "
                f"| {max(rates):,.0f} | {' / '.join(f'{r:.1%}' for r in ratios)} "
                f"| {statistics.median(ratios):.1%} |"
            )
    lines += [
        "",
        "| broker | variant | worker CPU µs/task, median | added to plain, per round | added, median |",
        "|---|---|---:|---|---:|",
    ]
    for result in results:
        plain = [d.cpu_per_task for d in result.drains[PLAIN]]
        for name, drains in result.drains.items():
            cpu = [d.cpu_per_task for d in drains]
            added = [(c - p) * 1e6 for c, p in zip(cpu, plain, strict=True)]
            lines.append(
                f"| {result.broker} | {name} | {statistics.median(cpu) * 1e6:,.0f} "
                f"| {' / '.join(f'{a:+,.0f}' for a in added)} | {statistics.median(added):+,.0f} |"
            )
    lines += [
        "",
        "| broker | target | figure | ratio per round | median [IQR] | verdict |",
        "|---|---|---|---|---|---|",
    ]
    for result in results:
        for name, baseline, target in TARGETS:
            for figure, ratios in (
                ("CPU per task (primary)", result.cpu_ratios(name, baseline)),
                ("tasks/s", result.ratios(name, baseline)),
            ):
                lines.append(
                    f"| {result.broker} | {name} ≥ {target:.0%} of {baseline} | {figure} "
                    f"| {' / '.join(f'{r:.1%}' for r in ratios)} | {spread(ratios)} "
                    f"| {verdict(ratios, target)} |"
                )
    return "\n".join(lines)


def verdict_lines(results: list[BrokerResult]) -> list[str]:
    """One line per drain target and broker, decided on CPU per task."""
    return [
        f"drain, {result.broker}: {name} ≥ {target:.0%} of {baseline} (CPU per task): "
        f"{spread(result.cpu_ratios(name, baseline))} → {verdict(result.cpu_ratios(name, baseline), target)}"
        for result in results
        for name, baseline, target in TARGETS
    ]


def plot(results: list[BrokerResult], out: str) -> None:
    """A PNG of each guarded variant's per-round ratio to plain Celery, per broker."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    guarded = [name for name in VARIANTS if name != PLAIN]  # and plain with time limits
    figure, axis = plt.subplots(figsize=(8, 4))
    width = 0.8 / max(len(guarded), 1)
    colors = ("tab:blue", "tab:grey", "tab:orange", "tab:green")
    for i, name in enumerate(guarded):
        for b, result in enumerate(results):
            ratios = [r * 100 for r in result.ratios(name)]
            x = b + (i - (len(guarded) - 1) / 2) * width
            axis.bar(
                x,
                statistics.median(ratios),
                width * 0.9,
                color=colors[i % len(colors)],
                alpha=0.6,
                label=name if b == 0 else None,
            )
            axis.scatter([x] * len(ratios), ratios, color="black", s=12, zorder=3)
    axis.axhline(100, color="grey", linewidth=1)
    axis.axhline(90, color="tab:red", linestyle=":", label="target, every feature on (90%)")
    axis.axhline(97, color="tab:purple", linestyle="--", label="target, defaults (97%)")
    axis.set_xticks(
        range(len(results)),
        [f"{r.broker}\n{r.tasks:,} tasks x {len(r.drains[PLAIN])} rounds" for r in results],
        fontsize=8,
    )
    axis.set_ylabel("drain throughput, % of plain Celery")
    lowest = min(r * 100 for result in results for name in guarded for r in result.ratios(name))
    highest = max(r * 100 for result in results for name in guarded for r in result.ratios(name))
    axis.set_ylim(min(80, lowest - 5), max(110, highest + 5))
    axis.set_title(f"No-op tasks, prefork -c 2, {os.cpu_count()} cores: bars median, dots rounds")
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.18), ncol=2, fontsize=8)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=110, bbox_inches="tight")
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=20_000, help="no-op tasks per variant and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--brokers", default="redis,amqp", help="comma-separated: redis, amqp")
    parser.add_argument("--redis", default=DEFAULT_REDIS, help="Redis broker, and the ledger and state")
    parser.add_argument("--amqp", default=DEFAULT_AMQP)
    parser.add_argument("--plot", default=None, help="write the ratio plot (PNG) here")
    options = parser.parse_args()

    urls = {"redis": options.redis, "amqp": options.amqp}
    results = [
        run(urls[name.strip()], options.tasks, options.rounds, ledger_url=options.redis)
        for name in options.brokers.split(",")
    ]
    print(f"\nPython {platform.python_version()}, {os.cpu_count()} cores, prefork -c 2\n")
    print(render(results))
    if options.plot:
        plot(results, options.plot)


if __name__ == "__main__":
    main()
