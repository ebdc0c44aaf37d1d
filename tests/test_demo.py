"""The demo README tells users to run must work: embedded by default, and on a real broker."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.harness import ROOT, free_port


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
    # Six starts at 2/s (burst 1) span about 2.5 s; without the limit they would all start at
    # once. A lower bound a busy machine cannot break, only a limiter that does not hold.
    starts = re.search(r"limited queue, starts \(s\): ([0-9., ]+)", result.stdout)
    assert starts, result.stdout
    offsets = [float(offset) for offset in starts.group(1).split(",")]
    assert len(offsets) == 6 and offsets[-1] >= 1.5, offsets
    assert "Done: every task finished." in result.stdout
    assert "worker log: " in result.stdout


def test_demo_that_fails_exits_non_zero_and_keeps_its_worker_log(tmp_path: Path) -> None:
    nobody_listens = f"redis://127.0.0.1:{free_port()}/0"
    result = run_demo("--broker", nobody_listens, "--state", f"sqlite:///{tmp_path / 'state.db'}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Done:" not in result.stdout
    kept = re.search(r"the worker's log is kept at (\S+)", result.stderr)
    assert kept, result.stderr
    log = Path(kept.group(1))
    try:
        assert log.is_file() and f"worker log: {log}" in result.stdout
        assert "demo failed: " in result.stderr
    finally:
        shutil.rmtree(log.parent, ignore_errors=True)


def test_demo_runs_on_redis_when_pointed_at_it(redis_url: str) -> None:
    result = run_demo("--broker", redis_url, "--state", redis_url)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Done: every task finished." in result.stdout
