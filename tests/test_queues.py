"""Which queue a delivery came from: one answer for rate limits, metrics and the dead-letter queue."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from celery import Celery
from kombu import Exchange, Queue

from celery_jobs_ext import GuardedTask
from celery_jobs_ext.metrics import TOTALS_KEY, split_fields
from celery_jobs_ext.queues import QueueResolver, topic_matches
from celery_jobs_ext.state import get_state
from tests.harness import in_process_worker, unique, wait_for


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("orders.*", "orders.eu", True),
        ("orders.*", "orders.eu.paid", False),
        ("orders.*", "orders", False),
        ("orders.#", "orders", True),
        ("orders.#", "orders.eu.paid", True),
        ("#.paid", "orders.eu.paid", True),
        ("#", "anything.at.all", True),
        ("*.eu.*", "orders.eu.paid", True),
        ("*.eu.*", "orders.us.paid", False),
        ("orders.eu", "orders.eu", True),
    ],
)
def test_topic_patterns_match_as_amqp_defines_them(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected


def test_a_delivery_resolves_to_the_queue_bound_to_its_exchange_and_key() -> None:
    direct = Exchange("tasks", type="direct")
    topic = Exchange("events", type="topic")
    fanout = Exchange("broadcast", type="fanout")
    resolve = QueueResolver(
        [
            Queue("emails", direct, routing_key="email"),
            Queue("orders", topic, routing_key="orders.*"),
            Queue("audit", topic, routing_key="#"),
            Queue("everyone", fanout),
        ],
        default="celery",
    )
    assert resolve({"exchange": "", "routing_key": "reports"}) == "reports"  # default exchange
    assert resolve({"exchange": "tasks", "routing_key": "email"}) == "emails"
    assert resolve({"exchange": "events", "routing_key": "orders.eu"}) == "orders"
    assert resolve({"exchange": "events", "routing_key": "invoices.eu"}) == "audit"
    assert resolve({"exchange": "broadcast", "routing_key": "whatever"}) == "everyone"
    assert resolve({"exchange": "tasks", "routing_key": "unknown"}) == "unknown"
    assert resolve({}) == "celery"


def test_a_task_routed_through_a_topic_exchange_is_counted_under_its_queue(
    make_app: Callable[..., Celery],
) -> None:
    queue_name, exchange = unique("orders"), Exchange(unique("events"), type="topic")
    app = make_app(task_queues=[Queue(queue_name, exchange, routing_key="orders.*")])
    app._test_queues = [queue_name]  # type: ignore[attr-defined]

    @app.task(base=GuardedTask, shared=False, name=unique("place"))
    def place() -> str:
        return "placed"

    with in_process_worker(app, pool="solo", queues=[queue_name]):
        for region in ("eu", "us", "apac"):
            # Declared by the producer (as a topic exchange), published with a key the pattern matches.
            place.apply_async(queue=queue_name, routing_key=f"orders.{region}")

        def counted() -> float:
            return split_fields(get_state(app).hgetall([TOTALS_KEY])).get(queue_name, {}).get("succeeded", 0)

        wait_for(lambda: counted() == 3, timeout=20, message="three successes under the topic-bound queue")
