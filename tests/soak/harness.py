"""Production soak: a mixed workload through real ``celery worker`` subprocesses, with faults.

One :class:`Soak` run publishes a workload of GuardedTasks over four queues to two worker
subprocesses (2 prefork children each), injects faults on a wall-clock schedule (SIGKILL a
pool child mid-task, SIGKILL a whole worker and start a new one, restart the broker's Redis
or close every RabbitMQ connection, burst-publish into the rate-limited queue), waits for
the work to drain, and then compares what the code under test reports (dead-letter queue,
``celery jobs-health --json``) with an independent ledger the tasks write themselves
(``tests/soak/app.py``). It returns a JSON-ready report; ``tests/soak/test_soak.py``
asserts on it, and docs/reliability.md quotes the last full runs.

Where things live:

- the ledger and the result backend: the tests' Redis database (127.0.0.1:6379/11 by
  default), which no fault touches;
- Redis run: broker and shared state on a private ``redis-server`` with append-only-file
  persistence, which the soak restarts (a production Redis keeps its data across a restart;
  one without persistence would lose every queued message, which no client can make up for);
- RabbitMQ run: broker on a virtual host of its own (so ``close_all_connections`` hits only
  this run), shared state on the tests' Redis database.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import random
import secrets as secrets_module
import shutil
import signal
import string
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis
from celery import Celery

from celery_jobs_ext import ShellCommandNotAllowed, shell_task
from celery_jobs_ext.health import build_report
from celery_jobs_ext.metrics import FLUSH_SECONDS
from celery_jobs_ext.ratelimit import RateLimiter
from celery_jobs_ext.state import get_state
from tests.harness import (
    ROOT,
    PrivateRedis,
    WorkerProcess,
    _redis_server_binary,
    redis_db_url,
    unique,
    wait_for,
)
from tests.soak import app as soak_app

CELERY = str(Path(sys.executable).with_name("celery"))
APP_MODULE = "tests.soak.app"

#: The four queues' roles (names get a unique suffix per run).
LIMITED, FLAKY, RETRY, PIPELINE = "limited", "flaky", "retry", "pipeline"

#: Share of the published task ids per kind (the rest are pipeline steps).
SHARE_LIMITED = 0.20  # of which BURST_SHARE is published at once by the burst fault
BURST_SHARE = 0.30
SHARE_FLAKY = 0.30  # of which DECLINED_SHARE fail for good
DECLINED_SHARE = 0.05
SHARE_SLOW = 0.01  # on the flaky queue: 0.3 s of work, candidates for the kills
SHARE_TIMEOUT = 0.004  # on the flaky queue; one in five ignores its timeout (hard kill)
SHARE_RETRY = 0.25
SHARE_SHELL = 0.002  # allowed shell commands (plus half as many refused ones)
PIPELINE_FAILS = 0.10  # share of pipelines with a failing step
CHAIN_SHARE = 0.25  # share of pipelines that are two-step chains

#: Expected dead-letter reasons.
REASON_DECLINED = "ChargeDeclined"
REASON_STEP = "StepFailed"
REASON_TIMEOUT = "Timed out after 1 s"

#: Prefork children per worker and Celery's default prefetch multiplier.
CONCURRENCY = 2
PREFETCH_MULTIPLIER = 4


@dataclass
class SoakSettings:
    """What one soak run does; ``default`` and ``full`` are the two sizes the tests use."""

    broker: str  # "redis" or "amqp"
    tasks: int
    rate_limit: int  # jobs per minute on the limited queue
    publish_seconds: float  # the steady workload is spread over this long
    budget_seconds: float  # the limit for the whole run
    drain_seconds: float  # how long to wait for the work to finish after publishing
    visibility_timeout: int = 20  # Redis: a killed worker's messages come back after this
    outage_seconds: float = 2.0  # Redis restart: how long the server stays down
    seed: int = 7

    @classmethod
    def default(cls, broker: str) -> SoakSettings:
        """The default suite's run: about 1,500 tasks, one of each fault, about 70 s.

        The limited queue gets 300 tasks at 300 a minute, so it runs at its limit for a
        whole minute: the 60-second window check has something to check.
        """
        return cls(
            broker, tasks=1500, rate_limit=300, publish_seconds=25, budget_seconds=180, drain_seconds=90
        )

    @classmethod
    def full(cls, broker: str, tasks: int = 10_000) -> SoakSettings:
        """``tox -e soak``: 10,000 tasks published over about 170 s, about 4 minutes per broker."""
        return cls(
            broker,
            tasks=tasks,
            rate_limit=600,
            publish_seconds=max(25.0, tasks / 60),
            budget_seconds=600,
            drain_seconds=240,
        )


# -- planted secrets ----------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets_module.choice(alphabet) for _ in range(length))


@dataclass(frozen=True)
class Secrets:
    """Fake credentials, fresh per run, planted in arguments, exception messages and logs."""

    jwt: str
    stripe: str
    aws: str
    password: str

    @classmethod
    def plant(cls) -> Secrets:
        header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = _b64url(json.dumps({"sub": f"soak-{uuid.uuid4().hex}", "iat": int(time.time())}).encode())
        signature = _b64url(os.urandom(32))
        return cls(
            jwt=f"{header}.{claims}.{signature}",
            stripe="sk_live_" + _random(string.ascii_letters + string.digits, 24),
            aws="AKIA" + _random(string.ascii_uppercase + string.digits, 16),
            password=f"Pw-{secrets_module.token_hex(8)}!",
        )

    def needles(self) -> dict[str, str]:
        """The random part of each secret: finding any of them anywhere is a leak."""
        _, claims, signature = self.jwt.split(".")
        return {
            "jwt claims": claims,
            "jwt signature": signature,
            "stripe key": self.stripe[len("sk_live_") :],
            "aws key id": self.aws[len("AKIA") :],
            "password": self.password[3:-1],
        }

    def found_in(self, text: str) -> list[str]:
        return [label for label, needle in self.needles().items() if needle in text]

    def payload(self) -> dict[str, str]:
        """Keyword arguments carrying every secret, under the names real code gives them."""
        return {
            "password": self.password,
            "api_key": self.stripe,
            "aws_access_key_id": self.aws,
            "authorization": f"Bearer {self.jwt}",
        }

    def note(self) -> str:
        return f"order for Authorization: Bearer {self.jwt} password={self.password}"


def in_flight_at_a_fault(faults: list[dict[str, Any]], moment: float) -> bool:
    """Whether ``moment`` (seconds into the run) lies within a second of a worker SIGKILL or of
    the Redis outage: the window in which Kombu's Redis transport loses a message a dying
    consumer popped (docs/reliability.md, finding 2)."""
    windows = [(f["killed_at_seconds"], f["reaped_at_seconds"]) for f in faults if "killed_at_seconds" in f]
    windows += [(f["down_from_seconds"], f["down_to_seconds"]) for f in faults if "down_from_seconds" in f]
    return any(begin - 1 <= moment <= end + 1 for begin, end in windows)


# -- servers ------------------------------------------------------------------------------


class RabbitVhost:
    """A RabbitMQ virtual host for one run, so closing "all" connections closes only ours."""

    def __init__(self, amqp_url: str) -> None:
        self.rabbitmqctl = shutil.which("rabbitmqctl") or ""
        parts = urlsplit(amqp_url)
        self.user = parts.username or "guest"
        self.name = unique("soak")
        self._ctl("add_vhost", self.name)
        self._ctl("set_permissions", "-p", self.name, self.user, ".*", ".*", ".*")
        self.url = f"{parts.scheme}://{parts.netloc}/{self.name}"

    def _ctl(self, *args: str) -> str:
        done = subprocess.run(
            [self.rabbitmqctl, "-q", *args], capture_output=True, text=True, timeout=60, check=True
        )
        return done.stdout

    def messages(self, queues: list[str]) -> int:
        """Ready plus unacknowledged messages in ``queues``."""
        out = self._ctl("list_queues", "-p", self.name, "name", "messages", "--no-table-headers")
        rows = (line.split() for line in out.splitlines())
        return sum(int(row[-1]) for row in rows if len(row) == 2 and row[0] in queues and row[-1].isdigit())

    def unacknowledged(self) -> int:
        out = self._ctl(
            "list_queues", "-p", self.name, "name", "messages_unacknowledged", "--no-table-headers"
        )
        return sum(
            int(line.split()[-1]) for line in out.splitlines() if line.strip() and line.split()[-1].isdigit()
        )

    def close_all_connections(self) -> None:
        self._ctl("close_all_connections", "--vhost", self.name, "soak fault: broker connections closed")

    def delete(self) -> None:
        with contextlib.suppress(Exception):
            self._ctl("delete_vhost", self.name)


# -- background watchers ------------------------------------------------------------------


class EventWatch:
    """Every task event the workers send, scanned for planted secrets as it arrives.

    A real receiver on the broker (``app.events.Receiver``), reconnecting when a fault
    closes its connection; events sent while it is disconnected are not seen (events are
    not durable), which the report counts as reconnects.
    """

    def __init__(self, app: Celery, planted: Secrets) -> None:
        self.app = app
        self.planted = planted
        self.counts: Counter[str] = Counter()
        self.leaks: list[dict[str, Any]] = []  # the first few
        self.leak_count = 0
        self.reconnects = 0
        self.ready = threading.Event()
        self._stop = threading.Event()
        self._receiver: Any = None
        self._thread = threading.Thread(target=self._run, name="soak-events", daemon=True)
        self._thread.start()
        self.ready.wait(20)

    def _on_event(self, event: dict[str, Any]) -> None:
        self.counts[str(event.get("type"))] += 1
        found = self.planted.found_in(json.dumps(event, default=str))
        if found:
            self.leak_count += 1
            if len(self.leaks) < 20:
                self.leaks.append({"type": event.get("type"), "uuid": event.get("uuid"), "secrets": found})

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with self.app.connection_for_read() as connection:
                    self._receiver = self.app.events.Receiver(connection, handlers={"*": self._on_event})
                    self.ready.set()
                    self._receiver.capture(limit=None, timeout=None, wakeup=False)
            except Exception:
                if self._stop.is_set():
                    return
                self.reconnects += 1
                self._stop.wait(0.5)  # back off before reconnecting

    def stop(self) -> None:
        self._stop.set()
        if self._receiver is not None:
            self._receiver.should_stop = True
        self._thread.join(10)


def rss_kb(pid: int) -> int:
    """Resident set size of a process, from /proc (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class MemoryWatch:
    """Samples the RSS of every live worker (main process and pool children) once a second."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.workers: dict[str, WorkerProcess] = {}
        self.samples: dict[str, list[tuple[float, int, int]]] = defaultdict(list)
        self.pids: dict[str, set[int]] = defaultdict(set)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-memory", daemon=True)
        self._thread.start()

    def add(self, name: str, worker: WorkerProcess) -> None:
        with self._lock:
            self.workers[name] = worker

    def remove(self, name: str) -> None:
        with self._lock:
            self.workers.pop(name, None)

    def sample(self) -> None:
        with self._lock:
            workers = list(self.workers.items())
        for name, worker in workers:
            if worker.process.poll() is not None:
                continue
            children = worker.children()
            main = rss_kb(worker.process.pid)
            if not main:
                continue
            self.pids[name].update([worker.process.pid, *children])
            total_children = sum(rss_kb(pid) for pid in children)
            self.samples[name].append((time.monotonic() - self.started, main, total_children))

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.sample()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


# -- the workload -------------------------------------------------------------------------


@dataclass
class Expected:
    """A published task id and what a correct system does with it."""

    task_id: str
    kind: str
    queue: str
    dead_reason: str | None = None  # None: it must succeed
    executions: int = 1  # executions a fault-free run takes
    pipeline: str | None = None
    published_at: float | None = None  # seconds into the run


@dataclass
class Pipeline:
    """A ``then``/``catch``/``finally_`` pipeline: one step, or a two-step chain."""

    key: str
    steps: list[str]
    fail_at: int | None

    @property
    def ending_step(self) -> str:
        """The step whose outcome ends the pipeline: the failing one, or the last."""
        return self.steps[self.fail_at] if self.fail_at is not None else self.steps[-1]


@dataclass
class Unit:
    """One thing the publisher sends: a task or a pipeline (its ids and expectations)."""

    expected: list[Expected]
    send: Callable[[], Any]
    pipeline: Pipeline | None = None


def max_in_window(starts: list[float], window: float = 60.0) -> int:
    """The largest number of starts in any sliding window of ``window`` seconds."""
    return busiest_window(starts, window)[0]


def busiest_window(starts: list[float], window: float = 60.0) -> tuple[int, int]:
    """(most starts in any sliding window of ``window`` seconds, index of that window's first start)."""
    best, first, left = 0, 0, 0
    for right, moment in enumerate(starts):
        while moment - starts[left] >= window:
            left += 1
        if right - left + 1 > best:
            best, first = right - left + 1, left
    return best, first


def _share(total: int, share: float, minimum: int = 1) -> int:
    return max(minimum, round(total * share))


# -- the run ------------------------------------------------------------------------------


class Soak:
    """One soak run: servers, workers, workload, faults, then the ledger and the checks."""

    def __init__(self, settings: SoakSettings, redis_base: str, amqp_url: str | None = None) -> None:
        self.settings = settings
        self.rng = random.Random(settings.seed)
        self.secrets = Secrets.plant()
        self.run_id = unique("soak")
        self.queues = {role: f"{role}-{self.run_id}" for role in (LIMITED, FLAKY, RETRY, PIPELINE)}
        self.dlq = f"dlq-{self.run_id}"
        # The tests' database (conftest.TEST_DB): ledger, result backend, RabbitMQ run's state.
        self.main_redis_url = redis_db_url(redis_base, int(os.environ.get("JOBS_TEST_REDIS_DB", "11")))
        self.ledger_prefix = f"{self.run_id}:ledger:"
        self.ledger: redis.Redis = redis.Redis.from_url(
            self.main_redis_url, socket_timeout=30, decode_responses=True
        )
        self.expected: dict[str, Expected] = {}
        self.pipelines: dict[str, Pipeline] = {}
        self.shell_ids: list[str] = []
        self.refused: list[str] = []
        self.not_refused: list[str] = []  # shell commands that should have been refused at publish
        self.publish_errors: list[str] = []
        self.unpublished: list[str] = []
        self.faults: list[dict[str, Any]] = []
        self.durations: dict[str, float] = {}
        self.workers: list[tuple[str, WorkerProcess]] = []
        self.finished_workers: list[tuple[str, WorkerProcess]] = []
        self.kill_windows: list[tuple[float, float, set[int]]] = []  # (from, to, pids), wall clock
        self.unexpected_exits: list[dict[str, Any]] = []
        self.last_fault_wall: float | None = None  # wall clock of the last fault injected
        self.started_at = time.monotonic()
        self.started_wall = time.time()
        self.redis_server: PrivateRedis | None = None
        self.vhost: RabbitVhost | None = None
        self._lock = threading.Lock()

        if settings.broker == "redis":
            binary = _redis_server_binary()
            assert binary, "no redis-server binary"
            # Persistent, as production brokers are: a restart of a Redis without it empties
            # the broker, every queued message gone, which no Celery setting can make up for.
            self.redis_server = PrivateRedis(binary, persistent=True)
            broker_url = f"{self.redis_server.url}/0"
            state_url = broker_url
        else:
            assert amqp_url is not None
            self.vhost = RabbitVhost(amqp_url)
            broker_url = self.vhost.url
            state_url = self.main_redis_url
        self.broker_url = broker_url
        self.conf = self._conf(broker_url, state_url)
        self.app = soak_app.build_app(self.conf)
        self.limiter = RateLimiter(self.app)
        self.usage_peak = 0
        self._usage_sampled = -1.0
        self.env = {
            "JOBS_SOAK_CONF": json.dumps(self.conf),
            "JOBS_SOAK_LEDGER_URL": self.main_redis_url,
            "JOBS_SOAK_LEDGER_PREFIX": self.ledger_prefix,
        }

    # -- configuration ------------------------------------------------------------

    def _conf(self, broker_url: str, state_url: str) -> dict[str, Any]:
        queues = list(self.queues.values())
        conf: dict[str, Any] = {
            "broker_url": broker_url,
            "result_backend": self.main_redis_url,
            "result_expires": 3600,
            "task_queues": {name: {"exchange": name, "routing_key": name} for name in queues},
            "task_default_queue": self.queues[FLAKY],
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            # A task running when the RabbitMQ connection drops is redelivered at once; without
            # this it runs twice to success (tests/test_connection_loss.py). Celery 6's default.
            "worker_cancel_long_running_tasks_on_connection_loss": True,
            "worker_prefetch_multiplier": PREFETCH_MULTIPLIER,
            "worker_send_task_events": True,
            "broker_connection_retry_on_startup": True,
            "task_publish_retry_policy": {
                "max_retries": 20,
                "interval_start": 0,
                "interval_step": 0.2,
                "interval_max": 0.5,
            },
            "jobs_state_url": state_url,
            "jobs_state_prefix": f"{self.run_id}:",
            "jobs_dead_letter_queue": self.dlq,
            "jobs_queue_rate_limits": {self.queues[LIMITED]: self.settings.rate_limit},
            # "allow" (the default) starts held tasks unlimited while the state is down:
            # a Redis restart would then break the limit by design.
            "jobs_rate_limit_on_error": "wait",
            "jobs_timeout_grace": 1,
            "jobs_retry_strategy": "fixed",
            "jobs_retry_base": 1,
            # redis-cli listed bare runs read-only commands only: the ledger's write is pinned
            "jobs_allowed_shell_commands": ["echo", *self._shell_patterns()],
            "jobs_shell_allowed_env": ["API_TOKEN"],
        }
        if self.settings.broker == "redis":
            conf["broker_transport_options"] = {
                "visibility_timeout": self.settings.visibility_timeout,
                "unacked_restore_interval": 1,
                "unacked_restore_throttle": 1,
            }
        return conf

    def key(self, name: str) -> str:
        return f"{self.ledger_prefix}{name}"

    # -- workload -------------------------------------------------------------------

    def plan(self) -> tuple[list[Unit], list[Unit]]:
        """The steady workload (shuffled) and the burst for the rate-limited queue."""
        total = self.settings.tasks
        n_limited = _share(total, SHARE_LIMITED)
        n_burst = _share(n_limited, BURST_SHARE)
        n_flaky = _share(total, SHARE_FLAKY)
        n_slow = _share(total, SHARE_SLOW)
        n_timeout = _share(total, SHARE_TIMEOUT, minimum=3)
        n_hard = max(1, n_timeout // 5)
        n_retry = _share(total, SHARE_RETRY)
        n_shell = _share(total, SHARE_SHELL, minimum=4)
        n_refused = max(2, n_shell // 2)
        used = n_limited + n_flaky + n_slow + n_timeout + n_retry + n_shell + 1  # +1: the kill victim
        n_steps = max(4, total - used)

        steady: list[Unit] = []
        burst = [self._work_unit(LIMITED) for _ in range(n_burst)]
        steady += [self._work_unit(LIMITED) for _ in range(n_limited - n_burst)]
        declined = set(self.rng.sample(range(n_flaky), _share(n_flaky, DECLINED_SHARE)))
        steady += [self._flaky_unit(number in declined) for number in range(n_flaky)]
        steady += [self._work_unit(FLAKY, seconds=0.3) for _ in range(n_slow)]
        steady += [self._timeout_unit(hard=number < n_hard) for number in range(n_timeout)]
        steady += [self._retry_unit() for _ in range(n_retry)]
        steady += [self._shell_unit() for _ in range(n_shell)]
        steady += [self._refused_unit(number) for number in range(n_refused)]
        while n_steps > 0:
            chain = n_steps >= 2 and self.rng.random() < CHAIN_SHARE
            unit = self._pipeline_unit(2 if chain else 1)
            steady.append(unit)
            n_steps -= len(unit.expected)
        self.rng.shuffle(steady)
        return steady, burst

    def _options(self, role: str) -> dict[str, Any]:
        return {"queue": self.queues[role], "task_id": str(uuid.uuid4())}

    def _work_unit(self, role: str, seconds: float = 0.0) -> Unit:
        options = self._options(role)
        expected = Expected(options["task_id"], "slow" if seconds else "work", self.queues[role])
        task = self.app.tasks["soak.work"]
        args = (self.secrets.note(), seconds)
        return Unit([expected], lambda: task.apply_async(args, self.secrets.payload(), **options))

    def _flaky_unit(self, declined: bool) -> Unit:
        options = self._options(FLAKY)
        reason = REASON_DECLINED if declined else None
        expected = Expected(options["task_id"], "flaky", self.queues[FLAKY], dead_reason=reason)
        task = self.app.tasks["soak.flaky"]
        card = f"4111-1111-1111-{self.rng.randrange(10000):04d}"
        return Unit([expected], lambda: task.apply_async((card, declined), self.secrets.payload(), **options))

    def _timeout_unit(self, hard: bool) -> Unit:
        options = self._options(FLAKY)
        kind = "timeout_hard" if hard else "timeout"
        expected = Expected(options["task_id"], kind, self.queues[FLAKY], dead_reason=REASON_TIMEOUT)
        task = self.app.tasks["soak.timeout"]
        return Unit([expected], lambda: task.apply_async((hard,), self.secrets.payload(), **options))

    def _retry_unit(self) -> Unit:
        options = self._options(RETRY)
        expected = Expected(options["task_id"], "retry", self.queues[RETRY], executions=2)
        task = self.app.tasks["soak.retry"]
        return Unit(
            [expected], lambda: task.apply_async((self.secrets.note(),), self.secrets.payload(), **options)
        )

    def _ledger_command(self, task_id: str) -> str | None:
        """The redis-cli command that counts a shell run in the ledger (None without redis-cli)."""
        ledger = urlsplit(self.main_redis_url)
        if shutil.which("redis-cli", path="/usr/local/bin:/usr/bin:/bin") and not ledger.password:
            database = ledger.path.strip("/") or "0"
            return (
                f"redis-cli -h {ledger.hostname} -p {ledger.port or 6379} -n {database} "
                f"HINCRBY {self.key(soak_app.SHELL)} {task_id} 1"
            )
        return None

    def _shell_patterns(self) -> list[str]:
        """The entry pinning exactly the ledger's command shape, any task id in its place."""
        command = self._ledger_command("*")
        return [command] if command else []

    def _shell_command(self, task_id: str) -> str:
        return self._ledger_command(task_id) or f"echo {task_id}"

    def _shell_unit(self) -> Unit:
        options = self._options(RETRY)
        task_id = options["task_id"]
        expected = Expected(task_id, "shell", self.queues[RETRY])
        self.shell_ids.append(task_id)
        command = self._shell_command(task_id)
        env = {"API_TOKEN": self.secrets.stripe}
        return Unit([expected], lambda: shell_task(self.app).apply_async((command,), {"env": env}, **options))

    def _refused_unit(self, number: int) -> Unit:
        commands = [
            f"{self._shell_command('x')}; rm -rf /tmp/soak",
            "sh -c 'echo hi'",
            "echo $(cat /etc/passwd)",
            "cat /etc/shadow",
            "echo hi | tee /tmp/soak",
        ]
        command = commands[number % len(commands)]
        options = self._options(RETRY)

        def send() -> None:
            try:
                shell_task(self.app).apply_async((command,), **options)
            except ShellCommandNotAllowed:
                with self._lock:
                    self.refused.append(options["task_id"])
                return
            with self._lock:
                self.not_refused.append(command)

        return Unit([], send)

    def _pipeline_unit(self, steps: int) -> Unit:
        key = unique("pipe")
        queue = self.queues[PIPELINE]
        fails = self.rng.random() < PIPELINE_FAILS
        fail_at = self.rng.randrange(steps) if fails else None
        ids = [str(uuid.uuid4()) for _ in range(steps)]
        pipeline = Pipeline(key, ids, fail_at)
        step = self.app.tasks["soak.step"]
        payload = self.secrets.payload()
        sigs = [
            (
                step.s(None, key, 0, fail_at == 0, **payload)
                if index == 0
                else step.s(key, index, fail_at == index, **payload)
            )
            .set(task_id=ids[index])
            .on_queue(queue)
            for index in range(steps)
        ]
        head: Any = sigs[0] if steps == 1 else sigs[0].chain(sigs[1:]).on_queue(queue)
        on_then = self.app.tasks["soak.on_then"].s(key).on_queue(queue)
        on_catch = self.app.tasks["soak.on_catch"].s(key).on_queue(queue)
        on_finally = self.app.tasks["soak.on_finally"].s(key).on_queue(queue)
        sig = head.then(on_then).catch(on_catch).finally_(on_finally)
        expected = []
        for index, task_id in enumerate(ids):
            if fail_at is not None and index > fail_at:
                continue  # never runs: the chain stopped at the failing step
            reason = REASON_STEP if index == fail_at else None
            expected.append(Expected(task_id, "step", queue, dead_reason=reason, pipeline=key))
        push_options = {"task_id": ids[-1]} if steps > 1 else {}
        return Unit(expected, lambda: sig.push(**push_options), pipeline=pipeline)

    def publish(self, unit: Unit) -> bool:
        """Publish a unit; on a broker error publish the same ids again (what a careful producer does)."""
        with self._lock:
            for expected in unit.expected:
                self.expected[expected.task_id] = expected
            if unit.pipeline is not None:
                self.pipelines[unit.pipeline.key] = unit.pipeline
        deadline = time.monotonic() + 60
        while True:
            try:
                unit.send()
                moment = round(time.monotonic() - self.started_at, 2)
                for expected in unit.expected:
                    expected.published_at = moment
                return True
            except Exception as exc:
                with self._lock:
                    self.publish_errors.append(f"{type(exc).__name__}: {exc}"[:200])
                if time.monotonic() > deadline:
                    with self._lock:
                        self.unpublished += [expected.task_id for expected in unit.expected]
                    return False
                time.sleep(0.5)  # back off, then send the same ids again

    # -- workers --------------------------------------------------------------------

    def start_worker(self) -> WorkerProcess:
        name = unique("soak-worker")
        worker = WorkerProcess(
            self.env,
            queues=",".join(self.queues.values()),
            concurrency=CONCURRENCY,
            name=name,
            app=APP_MODULE,
        )
        self.workers.append((name, worker))
        return worker

    def sample_usage(self) -> None:
        """Once a second: the limiter's own count of starts in the last 60 s (its peak is reported)."""
        now = time.monotonic()
        if now - self._usage_sampled < 1.0:
            return
        self._usage_sampled = now
        with contextlib.suppress(Exception):  # the state may be down (the Redis restart)
            self.usage_peak = max(self.usage_peak, self.limiter.usage(self.queues[LIMITED]))

    def supervise(self, memory: MemoryWatch) -> None:
        """Restart a worker that exited on its own, as systemd or Kubernetes would, and record it.

        A worker that dies by itself is a finding; replacing it lets the rest of the run
        (and of its checks) go on, as it would in production.
        """
        self.sample_usage()
        for name, worker in list(self.workers):
            if worker.process.poll() is None:
                continue
            output = worker.output()
            errors = [line for line in output.splitlines() if "CRITICAL" in line or "Unrecoverable" in line]
            self.unexpected_exits.append(
                {
                    "worker": name,
                    "at_seconds": round(time.monotonic() - self.started_at, 1),
                    "returncode": worker.process.returncode,
                    "errors": errors[-3:],
                    "unacked_before": self.unacknowledged_or_zero(),
                }
            )
            # Its unflushed counts die with it (since the last flush that reached the state).
            pids = set(memory.pids[name]) | {worker.process.pid}
            since = self.last_fault_wall or time.time() - 10
            self.kill_windows.append((since - FLUSH_SECONDS - 1.0, time.time(), pids))
            memory.remove(name)
            self.workers.remove((name, worker))
            self.finished_workers.append((name, worker))
            replacement = self.start_worker()
            replacement.wait_ready(timeout=60)
            memory.add(self.workers[-1][0], replacement)

    def wait_until(self, moment: float, memory: MemoryWatch) -> None:
        """Sleep until ``moment`` (monotonic), supervising the workers meanwhile."""
        while True:
            self.supervise(memory)
            left = moment - time.monotonic()
            if left <= 0:
                return
            time.sleep(min(left, 0.2))  # the fault schedule runs on wall-clock time

    # -- faults ---------------------------------------------------------------------

    def unacknowledged_or_zero(self) -> int:
        try:
            return self.unacknowledged()
        except Exception:
            return 0

    def unacknowledged(self) -> int:
        """Messages delivered to a worker and not yet acknowledged: what a fault can make run again."""
        if self.redis_server is not None:
            return int(redis.Redis.from_url(self.broker_url).hlen("unacked"))
        assert self.vhost is not None
        return self.vhost.unacknowledged()

    def in_flight(self) -> int:
        """Messages waiting in the four queues or delivered and unacknowledged (running, held, ETA).

        With ``acks_late`` a task is acknowledged after it ran and published what it sends
        (retries, chain steps, callbacks), so 0 means no more work can appear.
        """
        if self.redis_server is not None:
            client = redis.Redis.from_url(self.broker_url)
            pipe = client.pipeline(transaction=False)
            for queue in self.queues.values():
                pipe.llen(queue)
            pipe.hlen("unacked")
            return sum(int(n) for n in pipe.execute())
        assert self.vhost is not None
        return self.vhost.messages(list(self.queues.values()))

    def fault_burst(self, burst: list[Unit]) -> dict[str, Any]:
        started = time.monotonic()
        for unit in burst:
            self.publish(unit)
        return {"published": len(burst), "publish_seconds": round(time.monotonic() - started, 2)}

    def fault_kill_child(self, memory: MemoryWatch) -> dict[str, Any]:
        """Publish a 3 s task, wait until a pool child runs it, SIGKILL that child."""
        options = self._options(FLAKY)
        victim = options["task_id"]
        task = self.app.tasks["soak.work"]
        unit = Unit(
            [Expected(victim, "victim", self.queues[FLAKY])],
            lambda: task.apply_async(("victim", 3.0), **options),
        )
        self.publish(unit)

        def running_child() -> int:
            """The pool process running the victim now (0: not yet)."""
            for pid, raw in self.ledger.hgetall(self.key(soak_app.RUNNING)).items():
                if json.loads(raw)[0] == victim:
                    children = {child for _, worker in self.workers for child in worker.children()}
                    return int(pid) if int(pid) in children else 0
            return 0

        pid = wait_for(running_child, timeout=60, interval=0.05, message="the victim task running in a child")
        os.kill(pid, signal.SIGKILL)
        memory.sample()
        return {"victim": victim, "pid": pid}

    def fault_kill_worker(self, memory: MemoryWatch) -> dict[str, Any]:
        """SIGKILL a whole worker (main process and children), then start a new one."""
        name, worker = self.workers[-1]
        memory.sample()
        pids = set(memory.pids[name]) | {worker.process.pid, *worker.children()}
        unacked = self.unacknowledged()
        killed_at = time.time()
        killed_at_seconds = time.monotonic() - self.started_at
        worker.kill(signal.SIGKILL)
        reaped_at_seconds = time.monotonic() - self.started_at
        memory.remove(name)
        self.workers.remove((name, worker))
        self.finished_workers.append((name, worker))
        # A killed main process loses the counts of its last flush interval (docs/health.md).
        self.kill_windows.append((killed_at - FLUSH_SECONDS - 1.0, killed_at + 0.5, pids))
        started = time.monotonic()
        replacement = self.start_worker()
        replacement.wait_ready(timeout=60)
        memory.add(self.workers[-1][0], replacement)
        return {
            "worker": name,
            "killed_at_seconds": round(killed_at_seconds, 3),
            "reaped_at_seconds": round(reaped_at_seconds, 3),
            "unacked_before": unacked,
            "replacement_ready_seconds": round(time.monotonic() - started, 2),
        }

    def fault_broker(self) -> dict[str, Any]:
        """Redis: restart the broker's server (persistent). RabbitMQ: close every connection."""
        unacked = self.unacknowledged()
        started = time.monotonic()
        if self.redis_server is not None:
            self.redis_server.halt()
            time.sleep(self.settings.outage_seconds)  # the outage itself, on the schedule
            self.redis_server.start()
            return {
                "fault": "redis restart",
                "unacked_before": unacked,
                "outage_seconds": round(time.monotonic() - started, 2),
                "down_from_seconds": round(started - self.started_at, 3),
                "down_to_seconds": round(time.monotonic() - self.started_at, 3),
            }
        assert self.vhost is not None
        self.vhost.close_all_connections()
        return {
            "fault": "rabbitmqctl close_all_connections",
            "unacked_before": unacked,
            "seconds": round(time.monotonic() - started, 2),
        }

    # -- progress -------------------------------------------------------------------

    def dlq_length(self) -> int:
        with self.app.connection_for_write() as connection:
            if connection.transport.driver_type == "redis":
                return int(connection.default_channel.client.llen(self.dlq))
            channel = connection.channel()
            try:
                return int(channel.queue_declare(self.dlq, passive=True).message_count)
            except connection.channel_errors:
                return 0
            finally:
                with contextlib.suppress(Exception):
                    channel.close()

    def progress(self) -> dict[str, int]:
        """Counts to wait on: successes, dead letters, callbacks, shell runs."""
        pipe = self.ledger.pipeline(transaction=False)
        pipe.hlen(self.key(soak_app.DONE))
        pipe.hlen(self.key(soak_app.CALLBACKS))
        pipe.hlen(self.key(soak_app.SHELL))
        done, callbacks, shell = pipe.execute()
        return {
            "done": int(done),
            "callbacks": int(callbacks),
            "shell": int(shell),
            "dead": self.dlq_length(),
        }

    def targets(self) -> dict[str, int]:
        successes = [e for e in self.expected.values() if e.dead_reason is None]
        callbacks = 2 * len(self.pipelines)  # finally, and then (success) or catch (failure)
        uses_cli = any("redis-cli" in self._shell_command(i) for i in self.shell_ids[:1])
        return {
            "done": len(successes) - len(self.shell_ids) + callbacks,
            "callbacks": callbacks,
            "shell": len(self.shell_ids) if uses_cli else 0,
            "dead": len(self.expected) - len(successes),
        }

    # -- the run --------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        """Run the soak and return the report (see :meth:`analyse`)."""
        started = self.started_at = time.monotonic()
        self.started_wall = time.time()
        memory = MemoryWatch(started)
        events: EventWatch | None = None
        try:
            first = [self.start_worker() for _ in range(2)]
            for name_worker, worker in zip(list(self.workers), first, strict=True):
                worker.wait_ready(timeout=60)
                memory.add(name_worker[0], worker)
            self.durations["workers_ready"] = round(time.monotonic() - started, 1)
            events = EventWatch(self.app, self.secrets)
            steady, burst = self.plan()
            publish_error: list[BaseException] = []

            def publisher() -> None:
                begin = time.monotonic()
                pace = self.settings.publish_seconds / max(1, len(steady))
                try:
                    for number, unit in enumerate(steady):
                        delay = begin + number * pace - time.monotonic()
                        if delay > 0:
                            time.sleep(delay)  # pacing: a steady stream of work
                        self.publish(unit)
                except BaseException as exc:
                    publish_error.append(exc)

            publish_started = time.monotonic()
            thread = threading.Thread(target=publisher, name="soak-publisher", daemon=True)
            thread.start()
            schedule: list[tuple[float, str, Callable[[], dict[str, Any]]]] = [
                (0.10, "burst into the rate-limited queue", lambda: self.fault_burst(burst)),
                (0.30, "SIGKILL a pool child mid-task", lambda: self.fault_kill_child(memory)),
                (0.50, "SIGKILL a whole worker, start a new one", lambda: self.fault_kill_worker(memory)),
                (
                    0.75,
                    "restart Redis" if self.redis_server is not None else "close all broker connections",
                    self.fault_broker,
                ),
            ]
            for offset, name, action in schedule:
                self.wait_until(publish_started + offset * self.settings.publish_seconds, memory)
                at = time.monotonic() - started
                self.last_fault_wall = time.time()
                details = action()
                self.faults.append({"fault": name, "at_seconds": round(at, 1), **details})
            give_up = time.monotonic() + self.settings.publish_seconds * 3 + 120
            while thread.is_alive() and time.monotonic() < give_up:
                self.supervise(memory)
                thread.join(0.5)
            assert not thread.is_alive(), "the publisher did not finish"
            if publish_error:
                raise publish_error[0]
            self.durations["publish"] = round(time.monotonic() - publish_started, 1)

            targets = self.targets()
            last: dict[str, int] = {}
            drain_started = moved_at = time.monotonic()
            quiet_since: float | None = None
            # Stop waiting once nothing can come any more (a lost task): the broker has had
            # nothing waiting or in flight for 3 s; or, failing that, nothing moved for longer
            # than a redelivery takes.
            stall_seconds = 2 * self.settings.visibility_timeout + 15

            def drained() -> bool:
                nonlocal last, moved_at, quiet_since
                self.supervise(memory)
                progress = self.progress()
                if progress != last:
                    last, moved_at = progress, time.monotonic()
                if all(progress[name] >= targets[name] for name in targets):
                    return True
                now = time.monotonic()
                if now - moved_at < 2 or self.in_flight():  # ask the broker only once things stop
                    quiet_since = None
                elif quiet_since is None:
                    quiet_since = now
                return (quiet_since is not None and now - quiet_since > 3) or now - moved_at > stall_seconds

            with contextlib.suppress(AssertionError):  # a lost task shows in the report instead
                wait_for(
                    drained,
                    timeout=self.settings.drain_seconds,
                    interval=0.5,
                    message="the workload to drain",
                )
            self.durations["drain_after_publish"] = round(time.monotonic() - drain_started, 1)
            self.durations["workload"] = round(time.monotonic() - publish_started, 1)

            processing_zero = self._wait_processing_zero()
            for name, worker in list(self.workers):
                worker.stop(timeout=30)
                memory.remove(name)
                self.finished_workers.append((name, worker))
            self.workers.clear()
            events.stop()
            memory.stop()
            health = self.health()
            self.durations["until_health"] = round(time.monotonic() - started, 1)
            report = self.analyse(health, events, memory, processing_zero, targets, last)
            self.durations["total"] = round(time.monotonic() - started, 1)
            return report
        finally:
            if events is not None:
                events.stop()
            memory.stop()
            for _, worker in self.workers:
                with contextlib.suppress(Exception):
                    worker.kill()

    def _wait_processing_zero(self) -> dict[str, Any]:
        """Wait until the live workers' heartbeats show nothing in flight (the killed one's expire)."""
        started = time.monotonic()
        seen: dict[str, Any] = {}

        def zero() -> bool:
            report = build_report(self.app)
            seen["processing"] = {name: q["status"]["processing"] for name, q in report["queues"].items()}
            return not any(seen["processing"].values())

        try:
            wait_for(zero, timeout=30, interval=0.5, message="processing back to 0")
            seen["reached"] = True
        except AssertionError:
            seen["reached"] = False
        seen["seconds"] = round(time.monotonic() - started, 1)
        return seen

    def health(self) -> dict[str, Any]:
        """``celery -A tests.soak.app jobs-health --json``, run as an operator runs it."""
        env = dict(os.environ)
        env.update(self.env)
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        done = subprocess.run(
            [CELERY, "-A", APP_MODULE, "jobs-health", "--json"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        report: dict[str, Any] = {"returncode": done.returncode, "stdout": done.stdout, "stderr": done.stderr}
        with contextlib.suppress(ValueError):
            report["json"] = json.loads(done.stdout)
        return report

    # -- reading what happened ----------------------------------------------------------

    def executions(self) -> list[list[Any]]:
        """Every ledger record: ``[time, "s"|"e", task id, pid, queue, kind, outcome, retries]``."""
        return [json.loads(raw) for raw in self.ledger.lrange(self.key(soak_app.EVENTS), 0, -1)]

    def dead_letters(self) -> list[dict[str, Any]]:
        """The dead-letter entries' headers as stored on the broker (the body is left out)."""
        entries: list[dict[str, Any]] = []
        with self.app.connection_for_write() as connection:
            if connection.transport.driver_type == "redis":
                client = connection.default_channel.client
                for raw in client.lrange(self.dlq, 0, -1):
                    entries.append(dict(json.loads(raw).get("headers") or {}))
                return entries
            from kombu import Exchange, Queue

            channel = connection.channel()
            try:
                queue = Queue(self.dlq, Exchange(""), routing_key=self.dlq, durable=True)(channel)
                while True:
                    message = queue.get(no_ack=False)
                    if message is None:
                        break
                    entries.append(dict(message.headers or {}))
            except connection.channel_errors:
                pass
            finally:
                with contextlib.suppress(Exception):
                    channel.close()  # every fetched message goes back to the queue
        return entries

    def stored_results(self, task_ids: Iterable[str]) -> dict[str, bytes]:
        client = redis.Redis.from_url(self.main_redis_url)
        ids = sorted(set(task_ids))
        stored: dict[str, bytes] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for task_id, raw in zip(
                chunk, client.mget([f"celery-task-meta-{i}" for i in chunk]), strict=True
            ):
                if raw is not None:
                    stored[task_id] = raw
        return stored

    # -- the checks -------------------------------------------------------------------

    def analyse(
        self,
        health: dict[str, Any],
        events: EventWatch,
        memory: MemoryWatch,
        processing_zero: dict[str, Any],
        targets: dict[str, int],
        progress: dict[str, int],
    ) -> dict[str, Any]:
        """Compare the ledger with the dead-letter queue, the health report and the logs."""
        records = self.executions()
        done: dict[str, str] = self.ledger.hgetall(self.key(soak_app.DONE))
        attempts = {k: int(v) for k, v in self.ledger.hgetall(self.key(soak_app.ATTEMPTS)).items()}
        shell_runs = {k: int(v) for k, v in self.ledger.hgetall(self.key(soak_app.SHELL)).items()}
        if not shell_runs:  # no redis-cli on the shell path: the commands were `echo`, count their results
            shell_runs = {
                task_id: 1
                for task_id, raw in self.stored_results(self.shell_ids).items()
                if json.loads(raw).get("status") == "SUCCESS"
            }
        callbacks_raw = {
            k: json.loads(v) for k, v in self.ledger.hgetall(self.key(soak_app.CALLBACKS)).items()
        }
        entries = self.dead_letters()
        report: dict[str, Any] = {
            "broker": self.settings.broker,
            "settings": {
                "tasks": self.settings.tasks,
                "rate_limit_per_minute": self.settings.rate_limit,
                "publish_seconds": self.settings.publish_seconds,
                "workers": 2,
                "concurrency": CONCURRENCY,
                "visibility_timeout": self.settings.visibility_timeout if self.redis_server else None,
                "budget_seconds": self.settings.budget_seconds,
            },
            "faults": self.faults,
            "unexpected_worker_exits": self.unexpected_exits,
            "workers_started": len(self.finished_workers),
            "durations": self.durations,
            "publish_errors": len(self.publish_errors),
            "publish_error_samples": self.publish_errors[:5],
            "unpublished": self.unpublished,
            "drain": {"targets": targets, "reached": progress},
        }
        report["outcomes"] = self._outcomes(records, done, attempts, entries, shell_runs)
        report["callbacks"] = self._callbacks(callbacks_raw, set(report["outcomes"]["lost"]), records)
        report["health"] = self._health(health, records, entries, shell_runs, processing_zero)
        report["secrets"] = self._secrets(
            health, events, entries, callbacks_raw, set(attempts) | set(self.expected)
        )
        report["rate_limit"] = self._rate_limit(records, memory)
        report["memory"] = self._memory(memory)
        report["events"] = {"received": dict(events.counts), "reconnects": events.reconnects}
        return report

    def _outcomes(
        self,
        records: list[list[Any]],
        done: dict[str, str],
        attempts: dict[str, int],
        entries: list[dict[str, Any]],
        shell_runs: dict[str, int],
    ) -> dict[str, Any]:
        last_seen: dict[str, list[float]] = defaultdict(list)
        for record in records:
            last_seen[record[2]].append(record[0] - self.started_wall)
        dead: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for headers in entries:
            dead[str(headers.get("id"))].append(headers)
        ok_runs: Counter[str] = Counter(r[2] for r in records if r[1] == "e" and r[6] == "ok")
        published = {task_id for task_id in self.expected if task_id not in self.unpublished}
        lost, double, wrong_reason, unexpected_success, double_success = [], [], [], [], []
        for task_id in sorted(published):
            expected = self.expected[task_id]
            succeeded = task_id in done or (expected.kind == "shell" and task_id in shell_runs)
            entries_for = dead.get(task_id, [])
            if not succeeded and not entries_for:
                lost.append(task_id)
            elif (succeeded and entries_for) or len(entries_for) > 1:
                double.append(task_id)
            elif expected.dead_reason is None and entries_for:
                wrong_reason.append(
                    {"id": task_id, "expected": "success", "got": entries_for[0].get("dlq_reason")}
                )
            elif expected.dead_reason is not None and succeeded:
                unexpected_success.append(task_id)
            elif entries_for and (
                entries_for[0].get("dlq_reason") != expected.dead_reason
                or entries_for[0].get("original_queue") != expected.queue
                or entries_for[0].get("dlq_attempts") != 1
            ):
                got = {
                    key: entries_for[0].get(key) for key in ("dlq_reason", "original_queue", "dlq_attempts")
                }
                wrong_reason.append(
                    {"id": task_id, "expected": [expected.dead_reason, expected.queue, 1], "got": got}
                )
            if ok_runs[task_id] > 1:
                double_success.append(task_id)
        unknown_dead = sorted(set(dead) - published)

        # Redeliveries: executions beyond what a fault-free run takes.
        extra: dict[str, int] = {}
        for task_id in published:
            expected = self.expected[task_id]
            ran = shell_runs.get(task_id, 0) if expected.kind == "shell" else attempts.get(task_id, 0)
            if ran > expected.executions:
                extra[task_id] = ran - expected.executions
        callback_ids = set(attempts) - published
        for task_id in callback_ids:
            if attempts[task_id] > 1:
                extra[task_id] = attempts[task_id] - 1
        victim = next((f["victim"] for f in self.faults if "victim" in f), None)
        slack = 2 * CONCURRENCY * PREFETCH_MULTIPLIER
        causes = [f for f in self.faults + self.unexpected_exits if "unacked_before" in f]
        bound = 1 + sum(f["unacked_before"] + slack for f in causes)
        return {
            "published": len(published),
            "refused_at_publish": len(self.refused),
            "not_refused": self.not_refused,
            "refused_reached_workers": sorted(set(self.refused) & (set(attempts) | set(shell_runs))),
            "succeeded": sum(1 for t in published if self.expected[t].dead_reason is None and t not in lost),
            "dead_lettered": sum(len(dead.get(t, [])) for t in published),
            "dead_lettered_by_reason": dict(Counter(str(h.get("dlq_reason")) for h in entries)),
            "callback_tasks": len(callback_ids),
            "executions": sum(attempts.values()) + sum(shell_runs.values()),
            "lost": lost,
            "lost_details": [
                {
                    **self._describe(task_id),
                    "executions": attempts.get(task_id, 0),
                    # When its last message went out: published, or re-sent as a retry.
                    "last_seen_at": round(
                        max([self.expected[task_id].published_at or 0.0, *last_seen.get(task_id, [])]), 3
                    ),
                }
                for task_id in lost[:50]
            ],
            "more_than_one_outcome": double,
            "wrong_outcome": wrong_reason
            + [{"id": t, "expected": "dead-lettered", "got": "success"} for t in unexpected_success],
            "dead_letters_not_published": unknown_dead,
            "ran_to_success_twice": double_success,
            "victim": victim,
            "victim_executions": attempts.get(victim or "", 0),
            "redeliveries": sum(extra.values()),
            "redelivered_tasks": len(extra),
            "redelivery_bound": bound,
            "redelivery_samples": dict(sorted(extra.items())[:10]),
        }

    def _describe(self, task_id: str) -> dict[str, Any]:
        """What the harness knows about a task id, for a report that must say which one went wrong."""
        expected = self.expected[task_id]
        row: dict[str, Any] = {
            "id": task_id,
            "kind": expected.kind,
            "queue": expected.queue,
            "published_at": expected.published_at,
        }
        pipeline = self.pipelines.get(expected.pipeline or "")
        if pipeline is not None:
            row.update(pipeline=pipeline.key, step=pipeline.steps.index(task_id), steps=pipeline.steps)
            row["fail_at"] = pipeline.fail_at
        return row

    def _callbacks(self, raw: dict[str, Any], lost: set[str], records: list[list[Any]]) -> dict[str, Any]:
        """Callbacks per pipeline against what its outcome requires.

        A pipeline with a lost step has no outcome, so none of its callbacks may fire. On a
        Redis broker, a callback that never arrived although its step ended within a second
        of a worker SIGKILL or of the Redis restart is listed apart (``lost_in_flight``):
        that is the window in which Kombu's Redis transport loses a message a dying consumer
        popped (docs/reliability.md), the same rule the lost tasks follow.
        """
        ended_at: dict[str, float] = {}
        for record in records:
            ended_at[record[2]] = max(ended_at.get(record[2], 0.0), record[0] - self.started_wall)
        missing = {
            "then never fired after the success",
            "finally fired 0 times",
            "catch fired 0 times, expected 1",
        }
        lost_in_flight: list[dict[str, Any]] = []
        fired: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
        for field_name, received in raw.items():
            kind, key, _ = field_name.split("|")
            fired[(kind, key)].append(received)
        wrong: list[dict[str, Any]] = []
        then_extra = 0
        counts: Counter[str] = Counter()
        with_lost_step = 0
        for pipeline in self.pipelines.values():
            failed = pipeline.fail_at is not None
            got = {kind: fired.get((kind, pipeline.key), []) for kind in ("then", "catch", "finally")}
            for kind, calls in got.items():
                counts[kind] += len(calls)
            if lost & set(pipeline.steps):
                with_lost_step += 1
                if any(got.values()):
                    wrong.append({"pipeline": pipeline.key, "problems": ["a callback fired for a lost step"]})
                continue
            want_catch = 1 if failed else 0
            problems = []
            if len(got["finally"]) != 1:
                problems.append(f"finally fired {len(got['finally'])} times")
            if len(got["catch"]) != want_catch:
                problems.append(f"catch fired {len(got['catch'])} times, expected {want_catch}")
            if failed and got["then"]:
                problems.append("then fired after a failure")
            if not failed and not got["then"]:
                problems.append("then never fired after the success")
            then_extra += max(0, len(got["then"]) - 1)
            for outcome in got["finally"]:
                state = "FAILURE" if failed else "SUCCESS"
                if outcome.get("state") != state or outcome.get("task_id") != pipeline.ending_step:
                    problems.append(f"finally got {outcome}, expected {state} of {pipeline.ending_step}")
            for error in got["catch"]:
                if (
                    error.get("task_id") != pipeline.ending_step
                    or error.get("exception_type") != "tests.soak.app.StepFailed"
                    or error.get("attempts") != 1
                    or error.get("queue") != self.queues[PIPELINE]
                ):
                    problems.append(f"catch got {error}")
            ended = ended_at.get(pipeline.ending_step)
            if (
                problems
                and self.settings.broker == "redis"
                and set(problems) <= missing
                and ended is not None
                and in_flight_at_a_fault(self.faults, ended)
            ):
                lost_in_flight.append(
                    {"pipeline": pipeline.key, "ended_at": round(ended, 3), "problems": problems}
                )
            elif problems:
                wrong.append(
                    {
                        "pipeline": pipeline.key,
                        "steps": pipeline.steps,
                        "fail_at": pipeline.fail_at,
                        "problems": problems,
                    }
                )
        failing = sum(1 for p in self.pipelines.values() if p.fail_at is not None)
        return {
            "pipelines": len(self.pipelines),
            "chains": sum(1 for p in self.pipelines.values() if len(p.steps) > 1),
            "failing_pipelines": failing,
            "fired": dict(counts),
            "then_fired_more_than_once": then_extra,
            "pipelines_with_a_lost_step": with_lost_step,
            "wrong": wrong[:20],
            "wrong_count": len(wrong),
            "lost_in_flight": lost_in_flight,
        }

    def _in_kill_window(self, record: list[Any]) -> bool:
        return any(start <= record[0] <= end and record[3] in pids for start, end, pids in self.kill_windows)

    def _health(
        self,
        health: dict[str, Any],
        records: list[list[Any]],
        entries: list[dict[str, Any]],
        shell_runs: dict[str, int],
        processing_zero: dict[str, Any],
    ) -> dict[str, Any]:
        """Health's numbers per queue against the ledger's, with the documented tolerance.

        Exact unless a worker's main process was SIGKILLed: it loses the counts of its last
        flush interval (docs/health.md), so counts of executions its processes ended just
        before the kill may be missing; and a failure whose message went back to the queue
        (a dead-letter publish that could not be done) is not "for good" yet.
        """
        report = health.get("json") or {}
        queues = report.get("queues") or {}
        details = report.get("queue_details") or {}
        ends = [r for r in records if r[1] == "e"]
        starts = [r for r in records if r[1] == "s"]
        ended = {(r[2], r[3]) for r in ends}
        comparison: dict[str, Any] = {}
        mismatches: list[str] = []
        shell_queue = self.queues[RETRY]
        for role, queue in self.queues.items():
            ok = [r for r in ends if r[4] == queue and r[6] in ("ok", "skip")]
            fail = [r for r in ends if r[4] == queue and r[6] == "fail"]
            # Hard-timeout executions are killed by the pool: no end record, failed for good.
            hard = [
                r for r in starts if r[4] == queue and r[5] == "timeout_hard" and (r[2], r[3]) not in ended
            ]
            retried = [r for r in ends if r[4] == queue and r[6] == "retry"]
            completed_hi = len(ok) + (sum(shell_runs.values()) if queue == shell_queue else 0)
            completed_lo = completed_hi - sum(map(self._in_kill_window, ok))
            failed_hi = len(fail) + len(hard)
            failed_lo = len({r[2] for r in fail + hard}) - sum(map(self._in_kill_window, fail + hard))
            retried_hi = len(retried)
            retried_lo = retried_hi - sum(map(self._in_kill_window, retried))
            entries_here = sum(1 for h in entries if h.get("original_queue") == queue)
            status = (queues.get(queue) or {}).get("status") or {}
            lifetime = (details.get(queue) or {}).get("lifetime") or {}
            by_queue = ((report.get("dead_letter") or {}).get("by_queue") or {}).get(queue, 0)
            row: dict[str, Any] = {
                "completed": {"health": status.get("completed"), "ledger": [completed_lo, completed_hi]},
                "failed": {"health": status.get("failed"), "ledger": [failed_lo, failed_hi]},
                "retried": {"health": lifetime.get("retried"), "ledger": [retried_lo, retried_hi]},
                "dead_lettered": {
                    "health": lifetime.get("dead_lettered"),
                    "dead_letter_by_queue": by_queue,
                    "ledger": [entries_here - self._dead_in_kill_window(entries, queue), entries_here],
                },
                "pending": status.get("pending"),
                "processing": status.get("processing"),
            }
            comparison[role] = row
            for name in ("completed", "failed", "retried", "dead_lettered"):
                low, high = row[name]["ledger"]
                value = row[name]["health"]
                if value is None or not low <= value <= high:
                    mismatches.append(f"{role} {name}: health {value}, ledger {low}..{high}")
            if by_queue != entries_here:
                mismatches.append(f"{role} dead_letter.by_queue: health {by_queue}, entries {entries_here}")
            if status.get("pending") or status.get("processing"):
                mismatches.append(
                    f"{role}: pending {status.get('pending')}, processing {status.get('processing')}"
                )
        total = (report.get("dead_letter") or {}).get("total")
        if total != len(entries):
            mismatches.append(f"dead_letter.total: health {total}, entries {len(entries)}")
        # Counts the workers took with them when they died (within the tolerance above).
        missing = {
            f"{role} {name}": row[name]["ledger"][1] - (row[name]["health"] or 0)
            for role, row in comparison.items()
            for name in ("completed", "failed", "retried", "dead_lettered")
            if row[name]["health"] != row[name]["ledger"][1]
        }
        return {
            "returncode": health.get("returncode"),
            "stderr_tail": (health.get("stderr") or "")[-500:],
            "queues": comparison,
            "dead_letter_total": total,
            "exact": not missing,
            "missing_from_health": missing,
            "mismatches": mismatches,
            "processing_back_to_zero": processing_zero,
        }

    def _dead_in_kill_window(self, entries: list[dict[str, Any]], queue: str) -> int:
        from datetime import datetime

        count = 0
        for headers in entries:
            if headers.get("original_queue") != queue:
                continue
            stamp = str(headers.get("dlq_timestamp") or "")
            try:
                moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp() - time.timezone
            except ValueError:
                continue
            count += any(start <= moment <= end for start, end, _ in self.kill_windows)
        return count

    def _secrets(
        self,
        health: dict[str, Any],
        events: EventWatch,
        entries: list[dict[str, Any]],
        callbacks_raw: dict[str, Any],
        task_ids: set[str],
    ) -> dict[str, Any]:
        leaks: dict[str, Any] = {}
        for name, worker in self.finished_workers:
            output = worker.output()
            found = []
            for number, line in enumerate(output.splitlines(), 1):
                labels = self.secrets.found_in(line)
                if labels:
                    found.append({"line": number, "secrets": labels, "text": line[:300]})
            if found:
                leaks[f"worker log {name}"] = found[:10]
        dead = [
            {"id": h.get("id"), "secrets": self.secrets.found_in(json.dumps(h, default=str))}
            for h in entries
            if self.secrets.found_in(json.dumps(h, default=str))
        ]
        if dead:
            leaks["dead-letter headers"] = dead[:10]
        stored = self.stored_results(task_ids)
        results = [
            {"id": task_id, "secrets": self.secrets.found_in(raw.decode(errors="replace"))}
            for task_id, raw in stored.items()
            if self.secrets.found_in(raw.decode(errors="replace"))
        ]
        if results:
            leaks["result backend"] = results[:10]
        if events.leak_count:
            leaks["events"] = {"count": events.leak_count, "first": events.leaks[:10]}
        health_text = f"{health.get('stdout', '')}\n{health.get('stderr', '')}"
        if self.secrets.found_in(health_text):
            leaks["health output"] = self.secrets.found_in(health_text)
        received = [v for v in callbacks_raw.values() if self.secrets.found_in(json.dumps(v))]
        if received:
            leaks["catch callbacks' error descriptions"] = received[:10]
        log_bytes = sum(len(worker.output()) for _, worker in self.finished_workers)
        return {
            "leaks": leaks,
            "scanned": {
                "worker_log_bytes": log_bytes,
                "events": sum(events.counts.values()),
                "dead_letter_entries": len(entries),
                "stored_results": len(stored),
                "health_output_bytes": len(health_text),
                "callback_arguments": len(callbacks_raw),
            },
            "planted_kinds": sorted(self.secrets.needles()),
        }

    def _rate_limit(self, records: list[list[Any]], memory: MemoryWatch) -> dict[str, Any]:
        """The limited queue's starts per sliding minute.

        Measured where the limit applies: when the worker's rate-limit gate hands a request to
        the pool (``HandOverLedger`` in tests/soak/app.py). The task bodies' own start times
        are reported too; they come later by however long a request waited for a free pool
        process, so a window of them can hold a few more. The busiest window is described
        (when, which workers, the starts in its first and last seconds).
        """
        queue = self.queues[LIMITED]
        handovers = sorted(json.loads(raw) for raw in self.ledger.lrange(self.key(soak_app.HANDOVER), 0, -1))
        body_starts = sorted(r[0] for r in records if r[1] == "s" and r[4] == queue)
        rows = [(moment, pid) for moment, _, pid in handovers]
        starts = [moment for moment, _ in rows]
        limit = self.settings.rate_limit
        burst = int(self.conf.get("jobs_rate_limit_burst", 1))
        busiest, first = busiest_window(starts)
        span = (starts[-1] - starts[0]) if len(starts) > 1 else 0.0
        inside = rows[first : first + busiest]
        owner = {pid: name for name, pids in memory.pids.items() for pid in pids}
        window: dict[str, Any] = {}
        if inside:
            begin, end = inside[0][0], inside[-1][0]
            window = {
                "from_seconds": round(begin - self.started_wall, 2),
                "to_seconds": round(end - self.started_wall, 2),
                "by_worker": dict(Counter(owner.get(pid, "?") for _, pid in inside)),
                "first_second": sum(1 for moment, _ in inside if moment < begin + 1),
                "last_second": sum(1 for moment, _ in inside if moment > end - 1),
                "limiter_usage_peak": self.usage_peak,
            }
        return {
            "queue": queue,
            "limit_per_minute": limit,
            "burst": burst,
            "starts": len(starts),
            "executions": len(body_starts),
            "max_in_any_60s": busiest,
            "max_in_any_60s_by_body_start": max_in_window(body_starts),
            "allowed_in_any_60s": limit + burst,
            "span_seconds": round(span, 1),
            "achieved_per_minute": round((len(starts) - 1) / span * 60, 1) if span else None,
            "busiest_window": window,
        }

    def _memory(self, memory: MemoryWatch) -> dict[str, Any]:
        workers: dict[str, Any] = {}
        growth: list[str] = []
        for name, samples in memory.samples.items():
            if not samples:
                continue
            peak_main = max(s[1] for s in samples)
            peak_total = max(s[1] + s[2] for s in samples)
            row: dict[str, Any] = {
                "samples": len(samples),
                "from_seconds": round(samples[0][0], 1),
                "to_seconds": round(samples[-1][0], 1),
                "peak_main_mb": round(peak_main / 1024, 1),
                "peak_total_mb": round(peak_total / 1024, 1),
                "first_main_mb": round(samples[0][1] / 1024, 1),
                "last_main_mb": round(samples[-1][1] / 1024, 1),
            }
            if len(samples) >= 10:
                middle = len(samples) // 2
                first = max(s[1] for s in samples[:middle])
                second = max(s[1] for s in samples[middle:])
                row["first_half_peak_main_mb"] = round(first / 1024, 1)
                row["second_half_peak_main_mb"] = round(second / 1024, 1)
                allowed = first * MEMORY_GROWTH_FACTOR + MEMORY_GROWTH_KB
                if second > allowed:
                    growth.append(
                        f"{name}: main process peak {first / 1024:.1f} MB in the first half of its life, "
                        f"{second / 1024:.1f} MB in the second"
                    )
            workers[name] = row
        return {"workers": workers, "growth": growth}

    def cleanup(self) -> None:
        """Remove everything the run created: workers' logs, keys, queues, the servers it started.

        With ``JOBS_SOAK_LOG_DIR`` set, the workers' logs are copied there first.
        """
        keep = os.environ.get("JOBS_SOAK_LOG_DIR")
        for name, worker in self.workers + self.finished_workers:
            if keep:
                with contextlib.suppress(OSError):
                    Path(keep).mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(worker.log.name, Path(keep) / f"{self.settings.broker}-{name}.log")
            with contextlib.suppress(Exception):
                if worker.process.poll() is None:
                    worker.kill()
            with contextlib.suppress(Exception):
                worker.log.close()
            with contextlib.suppress(OSError):
                os.unlink(worker.log.name)
        client = self.ledger
        with contextlib.suppress(Exception):
            ids = list(self.expected) + list(client.hkeys(self.key(soak_app.ATTEMPTS)))
            for start in range(0, len(ids), 1000):
                client.delete(*[f"celery-task-meta-{i}" for i in ids[start : start + 1000]])
        with contextlib.suppress(Exception):
            keys = list(client.scan_iter(match=f"{self.ledger_prefix}*", count=1000))
            if keys:
                client.delete(*keys)
        if self.redis_server is not None:
            self.redis_server.stop()
        else:
            with contextlib.suppress(Exception):
                get_state(self.app).clear_prefix()
        if self.vhost is not None:
            self.vhost.delete()
        with contextlib.suppress(Exception):
            self.app.close()


#: "No growth": a worker's second-half peak RSS may exceed its first-half peak by this much.
MEMORY_GROWTH_FACTOR = 1.25
MEMORY_GROWTH_KB = 8 * 1024


@contextlib.contextmanager
def soak_run(settings: SoakSettings, redis_base: str, amqp_url: str | None = None) -> Iterator[Soak]:
    """A :class:`Soak` whose servers, queues and keys are removed afterwards."""
    soak = Soak(settings, redis_base, amqp_url)
    try:
        yield soak
    finally:
        soak.cleanup()
