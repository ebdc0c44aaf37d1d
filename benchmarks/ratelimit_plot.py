"""Starts per second of one rate-limited and one unlimited queue, drained by real workers.

    python -m benchmarks.ratelimit_plot [--redis redis://127.0.0.1:6379/11] [--out docs/rate-limits.png]

Two ``celery worker`` subprocesses (prefork, 2 processes each) consume both queues; the
limited queue (600/min, burst 1) starts with a backlog of 400 tasks and the unlimited one
gets 2,000 tasks in waves while the limited backlog drains. Each task writes its own start
time to a Redis list (an independent ledger), which is what the plot shows.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path

import redis
from celery import Celery

from tests.harness import WorkerProcess, unique, wait_for


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--out", default="docs/rate-limits.png")
    parser.add_argument("--limit", type=int, default=600, help="jobs per minute of the limited queue")
    options = parser.parse_args()

    client = redis.Redis.from_url(options.redis)
    limited, free, ledger = unique("limited"), unique("free"), unique("ledger")
    prefix = unique("plot") + ":"
    conf = {
        "broker_url": options.redis,
        "task_ignore_result": True,
        "jobs_state_prefix": prefix,
        "jobs_queue_rate_limits": {limited: options.limit},
    }
    env = {"JOBS_TEST_CONF": json.dumps(conf), "JOBS_TEST_LEDGER_URL": options.redis}
    app = Celery("plot", broker=options.redis, set_as_current=False)
    backlog = 400
    for _ in range(backlog):
        app.send_task("tests.record_start", args=[ledger, "limited"], queue=limited)
    try:
        with ExitStack() as stack:
            workers = [
                stack.enter_context(WorkerProcess(env, queues=f"{limited},{free}", concurrency=2))
                for _ in range(2)
            ]
            for worker in workers:
                worker.wait_ready()
            for _wave in range(4):
                for _ in range(500):
                    app.send_task("tests.record_start", args=[ledger, "free"], queue=free)
                time.sleep(8)  # load pacing: a wave every 8 s while the limited backlog drains
            wait_for(lambda: client.llen(ledger) >= backlog + 2000, timeout=120, interval=0.5)
        entries = [json.loads(raw) for raw in client.lrange(ledger, 0, -1)]
    finally:
        client.delete(ledger, limited, free)
        for key in client.scan_iter(match=prefix + "*"):
            client.delete(key)

    start = min(entry[0] for entry in entries)
    series = {tag: Counter(int(e[0] - start) for e in entries if e[1] == tag) for tag in ("limited", "free")}
    horizon = max(max(counter) for counter in series.values()) + 1
    limited_starts = sorted(e[0] for e in entries if e[1] == "limited")
    achieved = (len(limited_starts) - 1) / (limited_starts[-1] - limited_starts[0]) * 60

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(9, 4))
    seconds = list(range(horizon))
    axis.plot(seconds, [series["free"].get(s, 0) for s in seconds], label="unlimited queue", color="tab:blue")
    axis.plot(
        seconds,
        [series["limited"].get(s, 0) for s in seconds],
        label=f"limited queue ({options.limit}/min)",
        color="tab:red",
    )
    axis.axhline(options.limit / 60, color="tab:red", linestyle=":", label="the limit")
    axis.set_xlabel("seconds")
    axis.set_ylabel("task starts per second")
    axis.set_yscale("symlog", linthresh=20)
    axis.set_ylim(bottom=0)
    axis.set_title("Two workers x 2 processes on one Redis: one shared budget, no head-of-line blocking")
    axis.legend(loc="upper right")
    figure.tight_layout()
    Path(options.out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(options.out, dpi=110)
    print(f"limited: {len(limited_starts)} starts at {achieved:.1f}/min (limit {options.limit}/min)")
    print(f"unlimited: {sum(series['free'].values())} starts; plot written to {options.out}")


if __name__ == "__main__":
    main()
