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
import time
from pathlib import Path


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

    from celery_jobs_ext import ShellCommandNotAllowed, shell_task
    from celery_jobs_ext.demo.app import add, app, connect, flaky, plain_multiply, stamp

    shell = shell_task(app)

    print(f"broker: {_safe(app.conf.broker_url)}   state: {_safe(app.conf.jobs_state_url)}")
    log_path = scratch / "worker.log"
    worker = _start_worker(log_path)
    try:
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
    except Exception as exc:  # show the worker's side of the story, then fail
        print(f"\ndemo failed: {exc!r}\n--- worker log ---\n{log_path.read_text(errors='replace')}")
        return 1
    finally:
        _stop_worker(worker)
        if not options.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    print("\nDone: every task finished." + (f" Scratch folder: {scratch}" if options.keep else ""))
    return 0


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


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
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
