"""Dead-letter queue: a GuardedTask that fails for good is kept as a message in a broker queue.

When ``jobs_dead_letter_queue`` is set, the worker publishes the failed task's own message
(real body, original headers and properties) to that queue on the same broker, with
``dlq_*`` headers saying why. :class:`DeadLetterQueue` lists, counts, replays and purges
the entries; ``celery -A proj jobs-dlq …`` does the same from a shell.

Three parts: :mod:`.broker` (how entries sit on the broker), :mod:`.queue` (the
:class:`DeadLetterQueue` API) and :mod:`.worker` (the outcome listener that stores a
failure for good, and the skip of a redelivered message whose outcome is settled).
"""

from __future__ import annotations

from celery_jobs_ext.deadletter.queue import BROKER_TIMEOUT, DeadLetterQueue
from celery_jobs_ext.deadletter.worker import DeadLetterListener, DeadLetterRequestMixin
from celery_jobs_ext.errors import BrokerUnavailable, DeadLetterError
from celery_jobs_ext.headers import REPLAYED_FROM
from celery_jobs_ext.outcome import RETRIES_EXHAUSTED
from celery_jobs_ext.outcome import OutcomeTaskMixin as DeadLetterTaskMixin

#: The old name of :class:`~celery_jobs_ext.errors.BrokerUnavailable`, kept for imports.
DeadLetterBrokerUnavailable = BrokerUnavailable

__all__ = [
    "BROKER_TIMEOUT",
    "REPLAYED_FROM",
    "RETRIES_EXHAUSTED",
    "DeadLetterBrokerUnavailable",
    "DeadLetterError",
    "DeadLetterListener",
    "DeadLetterQueue",
    "DeadLetterRequestMixin",
    "DeadLetterTaskMixin",
]
