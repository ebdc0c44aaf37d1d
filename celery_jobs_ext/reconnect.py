"""A worker that is busy when its Redis broker restarts keeps running (upstream workaround).

Celery 5.7 / Kombu 5.7: when the broker connection breaks, the consumer first *collects*
the connection, which detaches its transport from the connection (``transport.client =
None``), and then *closes* it. Closing the default channel restores the messages the worker
holds unacknowledged, and that needs a Redis client built from ``transport.client``'s
address: ``AttributeError: 'NoneType' object has no attribute 'hostname'``, which Celery
treats as unrecoverable, so the worker exits. Only a worker holding unacknowledged messages
(busy, or with prefetched tasks) restores anything, so only those exit.

The workaround (``jobs_redis_reconnect_fix``, on by default) hands the transport its
connection back right after the collect, so the close can build its client: it restores
the messages or fails with a connection error that Kombu ignores, the consumer reconnects,
and the tasks still running acknowledge through their channel once Redis is back. A
consumer bootstep installs it on every broker connection the consumer opens.
"""

from __future__ import annotations

from typing import Any

from celery import bootsteps
from celery.utils.log import get_logger

from celery_jobs_ext.config import ConfigCache
from celery_jobs_ext.extension import extension_for

__all__ = ["ConnectionLossCheck", "RedisReconnectFix"]

logger = get_logger("celery_jobs_ext.reconnect")

_PATCHED = "_celery_jobs_ext_keeps_transport_client"


class RedisReconnectFix(bootsteps.StartStopStep):
    """Consumer bootstep: patch each Redis broker connection so a restart does not end the worker."""

    requires = ("celery.worker.consumer.connection:Connection",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self.enabled = ConfigCache.get(parent.app).redis_reconnect_fix

    def start(self, parent: Any) -> None:
        connection = getattr(parent, "connection", None)
        if connection is not None and connection.transport.driver_type == "redis":
            keep_transport_client(connection)


def keep_transport_client(connection: Any) -> None:
    """Make ``connection.collect()`` leave its transport able to build clients for open channels.

    ``collect`` is the step that drops ``transport.client``; the transport object itself is
    discarded by the connection either way, so giving it its connection back only lets the
    channels still open on it (the default channel, the channel of running tasks' messages)
    close and acknowledge as they would have before the connection broke.
    """
    if getattr(connection, _PATCHED, False):
        return
    collect = connection.collect

    def collect_keeping_client(*args: Any, **kwargs: Any) -> Any:
        transport = connection._transport
        try:
            return collect(*args, **kwargs)
        finally:
            if transport is not None and getattr(transport, "client", None) is None:
                transport.client = connection

    connection.collect = collect_keeping_client
    setattr(connection, _PATCHED, True)


class ConnectionLossCheck(bootsteps.StartStopStep):
    """Consumer bootstep: warn when an AMQP broker's connection loss can run a task twice.

    With ``acks_late``, a task still running when the worker's RabbitMQ connection drops
    cannot be acknowledged: the broker hands its message out again at once, and unless
    Celery cancels the running copy (``worker_cancel_long_running_tasks_on_connection_loss``,
    off by default until Celery 6), the two copies run side by side and both succeed. The
    dead-letter queue's "one outcome per task" cannot hold then, so the worker says so once.
    """

    requires = ("celery.worker.consumer.connection:Connection",)

    def start(self, parent: Any) -> None:
        app = parent.app
        connection = getattr(parent, "connection", None)
        if connection is None or connection.transport.driver_type != "amqp":
            return
        warned = extension_for(app).warned
        if app.conf.worker_cancel_long_running_tasks_on_connection_loss or _WARNING in warned:
            return
        late = sorted(
            name
            for name, task in app.tasks.items()
            if getattr(task, "jobs_guarded", False) and getattr(task, "acks_late", False)
        )
        if not late:
            return
        warned.add(_WARNING)
        logger.warning(
            "acks_late GuardedTasks (%s) on an AMQP broker: a task running when the broker "
            "connection drops is delivered again at once and runs twice. Set "
            "worker_cancel_long_running_tasks_on_connection_loss = True (Celery 6's default) "
            "so the running copy is cancelled and retried once (docs/reliability.md).",
            ", ".join(late[:5]) + (", ..." if len(late) > 5 else ""),
        )


_WARNING = "acks_late on connection loss"
