"""The demo's embedded broker under load: nothing lost, duplicated or unreadable."""

from __future__ import annotations

import collections
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import WorkerProcess, wait_for

MESSAGES = 20_000


@contextlib.contextmanager
def busy_cpu(cores: int) -> Iterator[None]:
    """Keep ``cores`` cores busy with spinning processes, as a build or a browser would."""
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(cores)]
    try:
        yield
    finally:
        for burner in burners:
            burner.kill()
            burner.wait()


def consumed(records: Path) -> list[int]:
    numbers: list[int] = []
    for path in records.glob("*.txt"):
        numbers += [int(line) for line in path.read_text().split()]
    return numbers


@pytest.fixture
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("JOBS_EMBEDDED_DIR", str(tmp_path))
    for name in [name for name in sys.modules if name == "tests.embeddedapp"]:
        del sys.modules[name]
    return tmp_path


def test_twenty_thousand_messages_through_two_workers_on_a_busy_cpu_arrive_once_each(embedded: Path) -> None:
    from tests.embeddedapp import RECORDS, record

    env = {"JOBS_EMBEDDED_DIR": str(embedded)}
    with busy_cpu(os.cpu_count() or 2):
        workers = [
            WorkerProcess(env, queues="embedded", pool="solo", concurrency=1, app="tests.embeddedapp")
            for _ in range(2)
        ]
        try:
            for worker in workers:
                worker.wait_ready(timeout=120)
            # Published while both workers consume: a consumer meets files as they are written.
            for number in range(MESSAGES):
                record.delay(number)

            def all_consumed() -> bool:
                for worker in workers:
                    assert worker.process.poll() is None, f"a worker exited:\n{worker.output()}"
                return len(consumed(RECORDS)) >= MESSAGES

            wait_for(all_consumed, timeout=600, interval=0.5, message=f"{MESSAGES} messages consumed")
        finally:
            logs = [worker.output() for worker in workers]
            codes = [worker.stop() for worker in workers]

    numbers = consumed(RECORDS)
    duplicated = [n for n, count in collections.Counter(numbers).items() if count > 1]
    assert not duplicated, f"{len(duplicated)} messages consumed twice, e.g. {duplicated[:5]}"
    assert sorted(numbers) == list(range(MESSAGES))
    assert len(list(RECORDS.glob("*.txt"))) == 2, "both workers consumed"
    for log in logs:
        assert "Unrecoverable error" not in log and "JSONDecodeError" not in log, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
    assert codes == [0, 0]
    leftovers = [p.name for p in (embedded / "broker" / "messages").iterdir() if p.name.endswith(".msg")]
    assert leftovers == []
