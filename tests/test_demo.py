"""The demo README tells users to run must work: embedded by default, and on a real broker."""

from __future__ import annotations

import subprocess
import sys

from tests.harness import ROOT


def run_demo(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "celery_jobs_ext.demo", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_demo_runs_on_the_embedded_broker_with_no_server() -> None:
    result = run_demo()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "demo.add(2, 3)            -> 5" in result.stdout
    assert "succeeded on attempt 3" in result.stdout
    assert "refused before publishing" in result.stdout
    assert "api_key=***API_KEY***" in result.stdout and "s3cr3t-pa55" not in result.stdout
    assert "limited queue, starts (s): 0.00," in result.stdout
    assert "Done: every task finished." in result.stdout


def test_demo_runs_on_redis_when_pointed_at_it(redis_url: str) -> None:
    result = run_demo("--broker", redis_url, "--state", redis_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Done: every task finished." in result.stdout
