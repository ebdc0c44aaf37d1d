"""The dead-letter queue's worker side: an outcome listener, and the skip of settled redeliveries.

Where the failure is seen: in the worker's main process, where
:class:`~celery_jobs_ext.outcome.OutcomeRequestMixin` decides once that a run failed for
good. :class:`DeadLetterListener` stores it in ``before_fail``, just before the message
is acknowledged, so a failed publish can keep the message (``acks_late``), and a failure
seen by both child and parent is stored by the parent only.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from celery.utils.saferepr import saferepr
from celery.worker.state import task_ready

from celery_jobs_ext.config import ConfigCache
from celery_jobs_ext.deadletter.queue import DeadLetterQueue
from celery_jobs_ext.errors import ImproperlyConfigured, StateUnavailable
from celery_jobs_ext.headers import REPLAYED_FROM
from celery_jobs_ext.outcome import OutcomeListener, RunOutcome, exception_type_name
from celery_jobs_ext.state import get_state

if TYPE_CHECKING:
    from celery.worker.request import Request as _RequestBase
else:
    _RequestBase = object

logger = logging.getLogger("celery_jobs_ext.deadletter")

#: How long lost-worker counts of a requeued task are kept.
_LOST_TTL = 24 * 3600


def _dead_letter_queue(request: Any) -> str | None:
    """The request's dead-letter queue, or None: not a GuardedTask, or no queue set."""
    task = request.task
    if not getattr(task, "jobs_guarded", False):
        return None
    try:
        return ConfigCache.get(task.app).dead_letter_queue or None
    except ImproperlyConfigured:
        return None


class DeadLetterListener(OutcomeListener):
    """Stores a run that failed for good in the dead-letter queue, once per run.

    Refuses the acknowledgement when the broker refused the entry, so a held message is
    requeued rather than lost. With ``reject_on_worker_lost`` Celery requeues a lost task
    forever; this stops at ``max_retries`` and dead-letters it instead.
    """

    def before_fail(self, request: Any, outcome: RunOutcome, holding_message: bool) -> bool:
        if _dead_letter_queue(request) is None:
            return True
        return _store(request, outcome, holding_message)

    def before_requeue(self, request: Any, outcome: RunOutcome) -> bool:
        if not outcome.worker_lost or _dead_letter_queue(request) is None:
            return False
        return _losses_exhausted(request, outcome) and _store(request, outcome, holding_message=True)


def _losses_exhausted(request: Any, outcome: RunOutcome) -> bool:
    """Count this loss as an attempt (in the shared state, per task id); True past ``max_retries``.

    The task is requeued while losses <= ``max_retries``, then dead-lettered.
    ``max_retries=None`` keeps Celery's requeue-forever behaviour.
    """
    task = request.task
    max_retries = task.max_retries
    if max_retries is None:
        return False
    generation = request._request_dict.get(REPLAYED_FROM) or "-"
    name = ConfigCache.get(task.app).dead_letter_queue
    try:
        losses = get_state(task.app).incr(f"dlq:{name}:lost:{request.id}:{generation}", 1, ttl=_LOST_TTL)
    except StateUnavailable as exc:
        logger.warning("Task %s[%s]: cannot count lost workers, requeueing: %s", task.name, request.id, exc)
        return False
    outcome.attempts = int(request._request_dict.get("retries") or 0) + losses
    return bool(losses > max_retries)


def _store(request: Any, outcome: RunOutcome, holding_message: bool) -> bool:
    """Store the failure; False if the broker refused it."""
    task = request.task
    exception = outcome.exception
    try:
        DeadLetterQueue(task.app).store(
            request,
            outcome.reason,
            outcome.attempts,
            exception=_exception_text(exception) if exception is not None else None,
            traceback=getattr(outcome.exc_info, "traceback", None) or "",
        )
    except Exception as exc:
        what = (
            "The message is requeued, so nothing is lost."
            if holding_message
            else "The message was acknowledged when the task started: the failure is only in "
            "the result backend and this log."
        )
        logger.error(
            "Task %s[%s] failed for good (%s) but could not be dead-lettered to %r: %r. %s",
            task.name,
            request.id,
            outcome.reason,
            ConfigCache.get(task.app).dead_letter_queue,
            exc,
            what,
        )
        return False
    return True


def _exception_text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:
        text = saferepr(exc)
    name = exception_type_name(exc)
    return f"{name}: {text}" if text else name


class DeadLetterRequestMixin(_RequestBase):
    """GuardedTask's dead-letter request hook: a redelivered copy whose outcome is settled is not run."""

    _jobs_settled: bool | None = None

    def revoked(self) -> bool:
        """Celery's check before it runs a request, which also skips a copy whose outcome is settled.

        Celery's request class (``create_request_cls``) replaces ``execute_using_pool``
        without calling a base class, so the skip goes where Celery skips revoked tasks:
        a True here makes the worker drop the request unrun. Checked once per request.
        """
        if super().revoked():
            return True
        if self._jobs_settled is None:
            self._jobs_settled = self._jobs_outcome_already_settled()
        return self._jobs_settled

    def _jobs_outcome_already_settled(self) -> bool:
        """A redelivered copy of a task that already has its outcome is acknowledged, not run.

        The broker hands a message out again when its acknowledgement was lost (a broker
        restart, a worker that died after the outcome): running it again could give a task
        that was dead-lettered a success, or a task that succeeded a dead-letter entry. Only
        redelivered messages are checked (one lookup each, in the worker's main process):
        the dead-letter claim, which lives with the entries on a Redis broker, then
        the result backend's stored success (Celery's own check for a lost worker).
        """
        headers = getattr(self._message, "headers", None) or {}
        if not ((self.delivery_info or {}).get("redelivered") or headers.get("redelivered")):
            return False
        task = self.task
        if not getattr(task, "jobs_guarded", False):
            return False
        outcome = ""
        try:
            if ConfigCache.get(task.app).dead_letter_queue:
                generation = str(self._request_dict.get(REPLAYED_FROM) or "-")
                if DeadLetterQueue(task.app).is_claimed(str(self.id), generation):
                    outcome = "dead-lettered"
            if not outcome and self._success_was_stored():
                outcome = "success"
        except Exception as exc:  # cannot tell: run it, as Celery would
            logger.warning("Task %s[%s] redelivered; cannot check its outcome: %r", task.name, self.id, exc)
            return False
        if not outcome:
            return False
        logger.warning(
            "Task %s[%s] redelivered after its outcome (%s) was recorded: acknowledged, not run again",
            task.name,
            self.id,
            outcome,
        )
        task_ready(self)
        self.acknowledge()
        return True
