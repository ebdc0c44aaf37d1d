"""Run the demo: a real worker subprocess on an embedded broker, a few tasks, what happened.

python -m celery_jobs_ext.demo                    # nothing to install: files and SQLite
python -m celery_jobs_ext.demo --broker redis://127.0.0.1:6379/0 --state redis://127.0.0.1:6379/0
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m celery_jobs_ext.demo", description=__doc__)
    parser.add_argument("--broker", help="broker URL (default: Kombu's filesystem transport)")
    parser.add_argument("--state", help="jobs_state_url (default: a SQLite file)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder and worker log")
    options = parser.parse_args(argv)

    scratch = Path(tempfile.mkdtemp(prefix="celery-jobs-demo-"))
    os.environ["JOBS_DEMO_DIR"] = str(scratch)
    if options.broker:
        os.environ["JOBS_DEMO_BROKER"] = options.broker
        if not options.broker.startswith("filesystem"):
            # Results go where the broker is when it is a real server.
            os.environ.setdefault(
                "JOBS_DEMO_RESULTS", options.broker if options.broker.startswith("redis") else "rpc://"
            )
    if options.state:
        os.environ["JOBS_DEMO_STATE"] = options.state

    log_path = scratch / "worker.log"
    worker: subprocess.Popen[bytes] | None = None
    try:
        from celery_jobs_ext import ShellCommandNotAllowed, shell_task
        from celery_jobs_ext.demo.app import add, app, connect, flaky, plain_multiply, stamp

        shell = shell_task(app)
        print(f"broker: {_safe(app.conf.broker_url)}   state: {_safe(app.conf.jobs_state_url)}")
        print(f"worker log: {log_path}")
        worker = _start_worker(log_path)
        _watch(worker)

        print("\n1. A GuardedTask and a plain task, side by side in one worker")
        guarded = add.delay(2, 3)
        plain = plain_multiply.delay(4, 5)
        print(f"   demo.add(2, 3)            -> {guarded.get(timeout=60)}   (GuardedTask)")
        print(f"   demo.plain_multiply(4, 5) -> {plain.get(timeout=60)}   (plain Celery task)")

        print("\n2. Retries on the configured strategy (jobs_retry_strategy='fixed', base 1 s)")
        started = time.monotonic()
        result = flaky.delay(3).get(timeout=60)
        print(f"   demo.flaky(3) -> {result!r} after {time.monotonic() - started:.1f} s")

        print("\n3. The shell task runs whitelisted programs only (jobs_allowed_shell_commands)")
        output = shell.delay("echo 'hello from jobs.shell'").get(timeout=60)
        print(f"   jobs.shell('echo ...') -> {output['stdout'].strip()!r}")
        try:
            shell.delay("echo hi; rm -rf /")
        except ShellCommandNotAllowed as refused:
            print(f"   jobs.shell('echo hi; rm -rf /') refused before publishing:\n     {refused}")

        print("\n4. Secrets are masked in the worker's log (and events, stored errors)")
        connect.delay("postgres://app:s3cr3t-pa55@db/prod", "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc").get(
            timeout=60
        )
        line = _wait_for_line(log_path, "connecting to")
        print(f"   worker log: {line.split(']: ', 1)[-1].strip()}")

        print("\n5. A rate-limited queue (jobs_queue_rate_limits: jobs-demo-limited at 2/s)")
        stamps = [stamp.apply_async(queue="jobs-demo-limited") for _ in range(6)]
        quick = [stamp.apply_async() for _ in range(6)]
        limited_starts = sorted(result.get(timeout=60) for result in stamps)
        unlimited = sorted(result.get(timeout=60) for result in quick)
        print(
            "   limited queue, starts (s): "
            + ", ".join(f"{t - limited_starts[0]:.2f}" for t in limited_starts)
        )
        print(f"   unlimited queue: 6 starts within {unlimited[-1] - unlimited[0]:.2f} s, not held up")

        print("\n6. Fluent chaining: then / catch / finally_ on a chain (docs/chaining.md)")
        from celery_jobs_ext.demo.app import charge, report, reserve

        for order, card in (("order-1", "4242"), ("order-2", "declined:tok_" + "live_9f8e7d6c5b4a")):
            pipeline = reserve.s(order).chain([charge.s(card)])
            pipeline.then(report.s(f"{order}:then")).catch(report.s(f"{order}:catch"))
            pipeline.finally_(report.s(f"{order}:finally")).push()
        print(f"   order-1 then     <- {_wait_for_report(app, 'order-1:then')!r}")
        print(f"   order-1 finally_ <- {_wait_for_report(app, 'order-1:finally')['state']}")
        error = _wait_for_report(app, "order-2:catch")
        print(f"   order-2 catch    <- {error['exception_type']} in {error['task_name']}: {error['message']}")
        print(f"   order-2 finally_ <- {_wait_for_report(app, 'order-2:finally')['state']}")

        print("\n7. A task that fails for good lands in the dead-letter queue, then is replayed")
        from celery_jobs_ext import DeadLetterQueue
        from celery_jobs_ext.demo.app import DEMO_DIR, import_orders

        dlq = DeadLetterQueue(app)
        failed = import_orders.delay("2024-06")
        try:
            failed.get(timeout=60)
        except Exception as error:
            print(f"   demo.import_orders('2024-06') failed: {error!r}")
        entry = _wait_until(lambda: next((e for e in dlq.list() if e["task_id"] == failed.id), None))
        print(
            f"   {dlq.name} holds it: reason={entry['reason']!r}, attempts={entry['attempts']}, "
            f"from queue {entry['original_queue']!r}, at {entry['timestamp']}"
        )
        (DEMO_DIR / "feed-2024-06.csv").write_text("order,amount\n1,10\n")
        print(f"   feed file created; replaying: {dlq.replay(task_id=failed.id)}")
        outcome = _wait_until(lambda: app.AsyncResult(failed.id).state == "SUCCESS" and failed.id)
        print(f"   demo.import_orders[{outcome}] -> {app.AsyncResult(outcome).result!r}")
        left = [e["task"] for e in dlq.list()]
        print(f"   {dlq.name} no longer holds it; left there: {left} (step 6's declined charge)")
        print(f"   jobs-dlq purge: removed {dlq.purge()}, so the demo leaves nothing behind")

        print("\n8. The health report: what `celery -A celery_jobs_ext.demo.app jobs-health` prints")
        from celery_jobs_ext import health

        _wait_for_settled_metrics(app)
        table, _ = health.run(app, output_format="table")
        print("\n".join(f"   {line}" if line else "" for line in table.splitlines()))
    except BaseException as exc:  # show the worker's side of the story, keep it, then fail
        if worker is not None:
            _stop_worker(worker)
        log = log_path.read_text(errors="replace") if log_path.exists() else "(no worker log)"
        print(f"\ndemo failed: {exc!r}\n--- worker log ({log_path}) ---\n{log}", file=sys.stderr)
        print(f"demo failed; the worker's log is kept at {log_path}", file=sys.stderr)
        return 130 if isinstance(exc, KeyboardInterrupt) else 1
    _stop_worker(worker)
    if not options.keep:
        shutil.rmtree(scratch, ignore_errors=True)
    print("\nDone: every task finished." + (f" Scratch folder: {scratch}" if options.keep else ""))
    return 0


class WorkerDied(RuntimeError):
    """The demo's worker exited while the demo still needed it."""


_stopping = threading.Event()


def _watch(worker: subprocess.Popen[bytes]) -> None:
    """Fail the demo at once if its worker dies, instead of after a result's timeout."""

    def died(signum: int, frame: Any) -> None:
        raise WorkerDied(f"the demo's worker exited with code {worker.returncode}")

    def wait() -> None:
        worker.wait()
        if not _stopping.is_set():
            os.kill(os.getpid(), signal.SIGUSR1)

    signal.signal(signal.SIGUSR1, died)
    threading.Thread(target=wait, name="demo-worker-watch", daemon=True).start()


def _start_worker(log_path: Path) -> subprocess.Popen[bytes]:
    log = open(log_path, "wb")  # noqa: SIM115 - the worker keeps writing after we return
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_jobs_ext.demo.app",
            "worker",
            "-Q",
            "jobs-demo,jobs-demo-limited",
            "-c",
            "2",
            "--loglevel",
            "INFO",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )


def _wait_for_line(path: Path, needle: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in path.read_text(errors="replace").splitlines():
            if needle in line:
                return line
        time.sleep(0.05)
    return f"(no line with {needle!r} in the worker log)"


def _wait_for_report(app: Any, label: str, timeout: float = 30.0) -> Any:
    """What demo.report received under ``label``, once it has run."""
    import json

    from celery_jobs_ext.state import get_state

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stored = get_state(app).hgetall_text(f"demo-report:{label}")
        if stored:
            return json.loads(stored["json"])
        time.sleep(0.05)
    raise TimeoutError(f"no report {label!r} within {timeout} s")


def _wait_for_settled_metrics(app: Any, timeout: float = 30.0) -> None:
    """Wait until nothing runs and the counts stop moving (workers write them every second)."""
    from celery_jobs_ext.health import build_report

    def snapshot() -> Any:
        report = build_report(app)
        return {name: queue["status"] for name, queue in report["queues"].items()}, report["workers"].keys()

    deadline = time.monotonic() + timeout
    previous = snapshot()
    while time.monotonic() < deadline:
        time.sleep(1.2)
        current = snapshot()
        idle = all(status["processing"] == 0 for status in current[0].values())
        if current == previous and idle and current[1]:
            return
        previous = current


def _wait_until(predicate: Any, timeout: float = 30.0) -> Any:
    """The first truthy value of ``predicate()``, polled until ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"condition not met within {timeout} s")


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    _stopping.set()
    worker.send_signal(signal.SIGTERM)
    try:
        worker.wait(30)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()


def _safe(url: object) -> str:
    from kombu.utils.url import maybe_sanitize_url

    return str(maybe_sanitize_url(str(url)))


if __name__ == "__main__":
    sys.exit(main())
