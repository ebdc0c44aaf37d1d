"""Profile a draining worker with py-spy: where the worker's time goes, per process.

    python -m benchmarks.profile_worker [--variant every] [--tasks 20000] [--broker redis://...]

Publishes a backlog of no-op tasks as ``benchmarks.throughput`` does, runs the
``celery worker`` (prefork, 2 processes) under ``py-spy record --subprocesses``, stops it
once the tail marker has run, and prints, for the main process (the consumer's event loop,
the throughput bottleneck) and for the pool processes, the share of samples that pass
through the extension's code, per function. Needs ``pip install py-spy`` (not a project
dependency) and permission to trace a child process.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import redis
from celery import Celery

from benchmarks import DEFAULT_REDIS
from benchmarks.throughput import VARIANTS
from tests.harness import ROOT, unique, wait_for

SHORT = {
    "plain": "plain Celery task",
    "defaults": "GuardedTask, defaults",
    "every": "GuardedTask, every feature on",
}


def record(variant: str, tasks: int, broker: str, ledger_url: str, rate: int, raw: str) -> None:
    """Drain ``tasks`` of ``variant`` under py-spy, writing folded stacks to ``raw``."""
    settings = VARIANTS[SHORT[variant]]
    queue, marks = unique("profile"), unique("marks")
    conf = {
        "broker_url": broker,
        "task_ignore_result": True,
        "jobs_state_prefix": unique("profile") + ":",
        **json.loads(json.dumps(settings["settings"]).replace("{queue}", queue)),
    }
    if not broker.startswith("redis"):
        conf["jobs_state_url"] = ledger_url
    app = Celery("profile", broker=broker, set_as_current=False)
    with app.producer_or_acquire() as producer:
        app.send_task("tests.mark_cpu", args=[marks], queue=queue, producer=producer)
        for _ in range(tasks):
            app.send_task(settings["task"], queue=queue, producer=producer)
        app.send_task("tests.mark_cpu", args=[marks], queue=queue, producer=producer)
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    env = dict(
        os.environ, JOBS_TEST_CONF=json.dumps(conf), JOBS_TEST_LEDGER_URL=ledger_url, PYTHONPATH=str(ROOT)
    )
    command = [
        py_spy, "record", "--subprocesses", "--rate", str(rate), "--format", "raw", "--output", raw, "--",
        sys.executable, "-m", "celery", "-A", "tests.workerapp", "worker", "-Q", queue, "-P", "prefork",
        "-c", "2", "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat",
    ]  # fmt: skip
    spy = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = redis.Redis.from_url(ledger_url)
    try:
        wait_for(lambda: client.llen(marks) >= 2, timeout=900, interval=0.05, message="the tail marker")
        (t0, c0), (t1, c1) = (json.loads(x) for x in client.lrange(marks, 0, -1))
        rate, cpu = tasks / (t1 - t0), (c1 - c0) / tasks * 1e6
        print(f"{SHORT[variant]}: {rate:,.0f} tasks/s under py-spy, {cpu:,.0f} µs worker CPU per task")
        children = Path(f"/proc/{spy.pid}/task/{spy.pid}/children").read_text().split()
        for pid in children:
            os.kill(int(pid), signal.SIGTERM)
        spy.wait(60)
    finally:
        if spy.poll() is None:
            spy.kill()
        client.delete(marks)
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)


def summarize(raw: str, top: int) -> None:
    """Per process kind: samples in total, and inclusive share of the extension's functions.

    Pool processes are told apart by their parent's frame (they share the main process's
    command line); start-up (imports) is left out.
    """
    totals: collections.Counter[str] = collections.Counter()
    inclusive: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for line in Path(raw).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "_find_and_load" in stack or stack.endswith("(threading.py:331)") or "Condition.wait (" in stack:
            continue  # start-up, and threads waiting (py-spy counts a timed wait as busy)
        parts = stack.split(";")
        frames = [re.sub(r":\d+\)$", ")", frame) for frame in parts if not frame.startswith("process ")]
        # A pool process's stack starts with its parent's "process" frame, then its own.
        kind = "pool processes" if sum(p.startswith("process ") for p in parts) > 1 else "main process"
        n = int(count)
        totals[kind] += n
        for frame in set(frames):
            if "celery_jobs_ext" in frame or frame.startswith("execute_command (redis/"):
                inclusive[kind][frame] += n
    for kind, total in sorted(totals.items()):
        print(f"\n{kind}: {total} samples (busy, start-up excluded); inclusive share:")
        for frame, n in inclusive[kind].most_common(top):
            print(f"  {n / total:6.1%}  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--variant", choices=sorted(SHORT), default="every")
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--broker", default=DEFAULT_REDIS)
    parser.add_argument("--ledger", default=DEFAULT_REDIS)
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--raw", default=None, help="keep the folded stacks here")
    parser.add_argument("--top", type=int, default=25)
    options = parser.parse_args()
    raw = options.raw or tempfile.mktemp(suffix=".folded")
    record(options.variant, options.tasks, options.broker, options.ledger, options.rate, raw)
    summarize(raw, options.top)
    print(f"\nfolded stacks: {raw}")


if __name__ == "__main__":
    main()
