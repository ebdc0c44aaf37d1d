"""How a task run ended, decided once per run, and the ordered listeners that hear it.

The worker's main process sees a run end through several request callbacks
(``on_success``, ``on_retry``, ``on_failure``, ``on_timeout``) and then through Celery's
acknowledgement decision (``acknowledge``/``reject``). :class:`OutcomeRequestMixin`
classifies the run once (:func:`classify`), lets Celery decide what happens to the
message, and tells each of the request's :attr:`~OutcomeRequestMixin.outcome_listeners`,
in order, through hooks that do nothing by default (Dramatiq's middleware is the model):

- :meth:`OutcomeListener.after_accept`: the pool took the request.
- :meth:`OutcomeListener.before_fail`: the run failed for good and the message is about to
  be acknowledged; a listener can refuse (the dead-letter queue could not store it), and
  the message is requeued instead.
- :meth:`OutcomeListener.before_requeue`: Celery is about to requeue a failed run; a
  listener can settle it for good instead (a lost worker past ``max_retries``).
- :meth:`OutcomeListener.after_outcome`: the final outcome, exactly once per run.

So the dead-letter queue and the metrics no longer each re-derive "failed for good", and
their order is the order of the list, not of base classes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from celery import VERSION as CELERY_VERSION
from celery import signals
from celery.exceptions import (
    Ignore,
    MaxRetriesExceededError,
    Reject,
    Retry,
    SoftTimeLimitExceeded,
    Terminated,
    TimeLimitExceeded,
    WorkerLostError,
)
from celery.utils.saferepr import saferepr

from celery_jobs_ext.errors import JobTimeout

if TYPE_CHECKING:
    from celery import Task as _TaskBase
    from celery.worker.request import Request as _RequestBase
else:
    _TaskBase = object
    _RequestBase = object

__all__ = [
    "FAILED",
    "IGNORED",
    "KINDS",
    "REJECTED",
    "RETRIES_EXHAUSTED",
    "RETRYING",
    "SUCCEEDED",
    "OutcomeListener",
    "OutcomeRequestMixin",
    "OutcomeTaskMixin",
    "RunOutcome",
    "classify",
    "unwrap_pool_exception",
]

logger = logging.getLogger(__name__)

#: The run returned a value (or its worker died after storing one).
SUCCEEDED = "succeeded"
#: Celery sends the task again as a retry (``retry()``, or a lost worker with ``retry_on_worker_lost``).
RETRYING = "retrying"
#: Failed for good: the task will not run again; :attr:`RunOutcome.reason` says why.
FAILED = "failed"
#: Ended on purpose, neither success nor failure (``Ignore``, revoked, terminated).
IGNORED = "ignored"
#: The message went back to the queue: the task runs again (``Reject(requeue=True)``,
#: ``reject_on_worker_lost``, a hard time limit without ``acks_on_timeout``, a refused dead-letter store).
REJECTED = "rejected"
KINDS = (SUCCEEDED, RETRYING, FAILED, IGNORED, REJECTED)

#: Set on an exception raised by ``retry()`` once the retries ran out.
RETRIES_EXHAUSTED = "jobs_retries_exhausted"

#: Celery 5.7 records a hard time limit in ``Request.on_timeout`` too (see ``on_failure``).
_ON_TIMEOUT_RECORDS_FAILURE = (CELERY_VERSION.major, CELERY_VERSION.minor) >= (5, 7)


@dataclasses.dataclass
class RunOutcome:
    """How one run ended.

    ``timed_out`` and ``worker_lost`` say what happened to the run, whatever became of
    the task (a timed-out run can be retried, requeued or failed for good).
    """

    kind: str
    #: Why it failed for good (``dlq_reason``); empty otherwise.
    reason: str = ""
    #: How many times the task ran, counting this run.
    attempts: int = 1
    exception: BaseException | None = None
    exc_info: Any = None
    timed_out: bool = False
    worker_lost: bool = False
    #: Seconds the run took, when the pool reported it.
    runtime: float | None = None

    def requeued(self) -> RunOutcome:
        """This run as it is once Celery puts its message back in the queue."""
        if self.kind in (FAILED, RETRYING, REJECTED):
            return dataclasses.replace(self, kind=REJECTED, reason="")
        return self


def unwrap_pool_exception(exc: Any) -> Any:
    """The task's own exception, out of billiard's ``ExceptionWithTraceback`` wrapper."""
    inner = getattr(exc, "exc", None)
    return inner if type(exc).__name__ == "ExceptionWithTraceback" and inner is not None else exc


def _is_timeout(exc: Any) -> bool:
    return isinstance(exc, (TimeLimitExceeded, SoftTimeLimitExceeded))  # JobTimeout is a soft one


def classify(request: Any, exc: Any, exc_info: Any = None) -> RunOutcome:
    """The outcome of a run that raised ``exc``, before Celery decides about its message.

    The one place that knows which exceptions end a task for good: ``Retry`` retries,
    ``Ignore``/``Terminated`` and a revoke are on purpose, ``Reject(requeue=True)`` goes
    back to the queue, a lost worker is retried when ``retry_on_worker_lost`` allows,
    and counts as a success when the run stored one before its process died (Celery's
    own check). Everything else failed for good.
    """
    exc = unwrap_pool_exception(exc)
    if isinstance(exc, Retry):
        return RunOutcome(RETRYING, exception=exc, exc_info=exc_info, timed_out=_is_timeout(exc.exc))
    if isinstance(exc, (Ignore, Terminated)):
        return RunOutcome(IGNORED, exception=exc, exc_info=exc_info)
    if isinstance(exc, (SystemExit, KeyboardInterrupt)):
        if getattr(request, "_already_cancelled", False) or getattr(request, "_already_revoked", False):
            return RunOutcome(IGNORED, exception=exc, exc_info=exc_info)  # the worker killed it on purpose
        exc = WorkerLostError(f"Worker exited prematurely: {exc!r}")
    timed_out = _is_timeout(exc)
    if isinstance(exc, Reject) and exc.requeue:
        return RunOutcome(REJECTED, exception=exc, exc_info=exc_info, timed_out=timed_out)
    worker_lost = isinstance(exc, WorkerLostError)
    retries = int(request._request_dict.get("retries") or 0)
    if worker_lost:
        success_was_stored = getattr(request, "_success_was_stored", None)
        if success_was_stored is not None and success_was_stored():
            return RunOutcome(SUCCEEDED, attempts=retries + 1, worker_lost=True)
        task = request.task
        max_retries = task.max_retries
        if getattr(task, "retry_on_worker_lost", False) and (max_retries is None or retries < max_retries):
            return RunOutcome(RETRYING, exception=exc, exc_info=exc_info, worker_lost=True)
    return RunOutcome(
        FAILED,
        reason=failure_reason(exc, float(getattr(request, "jobs_timeout", 0) or 0)),
        attempts=retries + 1,
        exception=exc,
        exc_info=exc_info,
        timed_out=timed_out,
        worker_lost=worker_lost,
    )


def exception_type_name(exc: BaseException) -> str:
    """The exception's class name, the original one for Celery's unpicklable wrapper."""
    return str(getattr(exc, "exc_cls_name", None) or type(exc).__name__)


def failure_reason(exc: BaseException, timeout: float) -> str:
    """Why a run failed for good: the timeout, the retries, the lost worker, or the exception's class."""
    if isinstance(exc, JobTimeout):
        return f"Timed out after {exc.seconds or timeout:g} s"
    if isinstance(exc, TimeLimitExceeded):
        if timeout:
            return f"Timed out after {timeout:g} s"
        return f"Time limit exceeded ({exc.args[0] if exc.args else '?'} s)"
    if isinstance(exc, MaxRetriesExceededError) or getattr(exc, RETRIES_EXHAUSTED, False):
        return "Max retries exceeded"
    if isinstance(exc, SoftTimeLimitExceeded):
        return "Soft time limit exceeded"
    if isinstance(exc, WorkerLostError):
        return "Worker lost"
    if isinstance(exc, Reject):
        return "Rejected"
    return exception_type_name(exc)


class OutcomeListener:
    """Hears how runs end; every hook does nothing by default. Override the ones you need.

    Hooks run in the worker's main process, on the consumer's loop for prefork: they
    must be quick. An exception from :meth:`after_accept` or :meth:`after_outcome` is
    logged and does not reach the task or the other listeners.
    """

    def after_accept(self, request: Any) -> None:
        """The pool accepted ``request``: its run starts."""

    def before_fail(self, request: Any, outcome: RunOutcome, holding_message: bool) -> bool:
        """The run failed for good (``outcome.kind == FAILED``); its message is about to be acknowledged.

        Called once per run, before :meth:`after_outcome`. ``holding_message`` is False
        when the message was acknowledged when the task started (no ``acks_late``).

        Returns:
            False to keep the message: it is requeued, and the run's outcome becomes
            :data:`REJECTED`. Ignored when the message is not held.
        """
        return True

    def before_requeue(self, request: Any, outcome: RunOutcome) -> bool:
        """Celery is about to put a failed run's message back in the queue.

        Returns:
            True when this listener settled the run for good instead (it may update
            ``outcome.attempts``): the message is acknowledged, the result marked failed,
            and the outcome stays :data:`FAILED`.
        """
        return False

    def after_outcome(self, request: Any, outcome: RunOutcome) -> None:
        """The run's final outcome, told exactly once."""


class OutcomeTaskMixin(_TaskBase):
    """GuardedTask's outcome hook on the task side: retries that ran out are marked."""

    def retry(self, *args: Any, **kwargs: Any) -> Any:
        """Celery's retry; an exception it raises because the retries ran out is marked so.

        ``retry(exc=e)`` past ``max_retries`` re-raises ``e`` itself, which the worker could
        not tell apart from a first failure. The mark travels with the pickled exception
        to the worker's main process, where it becomes the reason ``Max retries exceeded``.
        """
        try:
            return super().retry(*args, **kwargs)
        except (Retry, Reject):
            raise
        except Exception as exc:
            with contextlib.suppress(Exception):  # an exception that refuses attributes
                setattr(exc, RETRIES_EXHAUSTED, True)
            raise


def _telling_success(on_success: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(on_success)
    def telling_on_success(self: Any, failed__retval__runtime: Any, **kwargs: Any) -> Any:
        self._jobs_success(failed__retval__runtime)
        return on_success(self, failed__retval__runtime, **kwargs)

    telling_on_success._jobs_tells_success = True  # type: ignore[attr-defined]
    return telling_on_success


class OutcomeRequestMixin(_RequestBase):
    """Decides each run's outcome once and tells :attr:`outcome_listeners`, in order.

    A failure for good is held (``_jobs_pending``) from ``on_failure`` until Celery
    acknowledges or rejects the message, so a listener that cannot do its part before
    the acknowledgement (the dead-letter store) can keep the message instead. Celery
    builds a subclass of the request class per worker (``create_request_cls``) whose
    ``on_success`` replaces ours without calling it; ``__init_subclass__`` wraps that one.
    """

    #: Who hears the outcome, in this order. GuardedRequest sets it.
    outcome_listeners: ClassVar[tuple[OutcomeListener, ...]] = ()

    _jobs_pending: RunOutcome | None = None
    _jobs_outcome: RunOutcome | None = None
    _jobs_failure_settled = False
    _jobs_requeued = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("on_success")
        if own is not None and not getattr(own, "_jobs_tells_success", False):
            cls.on_success = _telling_success(own)  # type: ignore[method-assign]

    @property
    def outcome(self) -> RunOutcome | None:
        """This run's final outcome, once told."""
        return self._jobs_outcome

    def on_accepted(self, pid: Any, time_accepted: float) -> Any:
        result = super().on_accepted(pid, time_accepted)
        for listener in self.outcome_listeners:
            try:
                listener.after_accept(self)
            except Exception:
                logger.exception("Outcome listener %r failed in after_accept", listener)
        return result

    def on_success(self, failed__retval__runtime: Any, **kwargs: Any) -> Any:
        self._jobs_success(failed__retval__runtime)
        return super().on_success(failed__retval__runtime, **kwargs)

    def on_retry(self, exc_info: Any) -> Any:
        outcome, self._jobs_pending = self._jobs_pending, None
        self._jobs_tell(outcome or classify(self, exc_info.exception, exc_info))
        return super().on_retry(exc_info)

    def on_failure(self, exc_info: Any, send_failed_event: bool = True, return_ok: bool = False) -> Any:
        exc = unwrap_pool_exception(exc_info.exception)
        if _ON_TIMEOUT_RECORDS_FAILURE and isinstance(exc, TimeLimitExceeded) and not return_ok:
            # Celery 5.7 reports a hard time limit twice: billiard's error callback lands here
            # (mark_as_failure, task_failure, task-failed), then Request.on_timeout does it
            # all again and also calls Task.on_failure. Let on_timeout be the one.
            return_ok, send_failed_event = True, False
        self._jobs_pending = classify(self, exc, exc_info)
        try:
            return super().on_failure(exc_info, send_failed_event=send_failed_event, return_ok=return_ok)
        finally:
            outcome, self._jobs_pending = self._jobs_pending, None
            if outcome is not None:
                # Celery took no acknowledgement decision here: the message was acknowledged
                # when the task started (acks_late off), or is left for redelivery.
                if outcome.kind == FAILED:
                    self._jobs_settle_failure(outcome, holding_message=False)
                self._jobs_tell(outcome)

    def on_timeout(self, soft: bool, timeout: float) -> Any:
        result = super().on_timeout(soft, timeout)
        if not soft and not self._jobs_failure_settled and not self._jobs_requeued:
            # Billiard reports a hard limit through on_failure first; this covers a pool that does not.
            outcome = classify(self, TimeLimitExceeded(timeout))
            if outcome.kind == FAILED:
                self._jobs_settle_failure(outcome, holding_message=False)
            self._jobs_tell(outcome)
        return result

    def acknowledge(self) -> Any:
        outcome = self._jobs_pending
        if outcome is not None and not self.acknowledged:
            self._jobs_pending = None
            if outcome.kind == FAILED and not self._jobs_settle_failure(outcome, holding_message=True):
                self._jobs_requeued = True
                self._jobs_tell(outcome.requeued())
                return super().reject(requeue=True)
            self._jobs_tell(outcome)
        return super().acknowledge()

    def reject(self, requeue: bool = False) -> Any:
        outcome = self._jobs_pending
        if outcome is not None and not self.acknowledged:
            self._jobs_pending = None
            if requeue:
                if outcome.kind == FAILED and self._jobs_settled_instead_of_requeue(outcome):
                    super().acknowledge()
                    self._jobs_record_failure(outcome)
                    self._jobs_tell(outcome)
                    return None
                outcome = outcome.requeued()
            elif outcome.kind == FAILED and not self._jobs_settle_failure(outcome, holding_message=True):
                requeue = True
                outcome = outcome.requeued()
            self._jobs_tell(outcome)
        if requeue:
            self._jobs_requeued = True
        return super().reject(requeue=requeue)

    # -- telling the listeners -----------------------------------------------------------

    def _jobs_success(self, failed__retval__runtime: Any) -> None:
        try:
            failed, _, runtime = failed__retval__runtime
        except (TypeError, ValueError):
            return  # not a result tuple: Celery routes it to on_failure
        if not failed:
            retries = int(self._request_dict.get("retries") or 0)
            seconds = float(runtime) if isinstance(runtime, (int, float)) else None
            self._jobs_tell(RunOutcome(SUCCEEDED, attempts=retries + 1, runtime=seconds))

    def _jobs_settle_failure(self, outcome: RunOutcome, holding_message: bool) -> bool:
        """Ask each listener's ``before_fail``, once per run; False when one refused."""
        if self._jobs_failure_settled:
            return True
        for listener in self.outcome_listeners:
            if not listener.before_fail(self, outcome, holding_message) and holding_message:
                return False
        self._jobs_failure_settled = True
        return True

    def _jobs_settled_instead_of_requeue(self, outcome: RunOutcome) -> bool:
        for listener in self.outcome_listeners:
            if listener.before_requeue(self, outcome):
                self._jobs_failure_settled = True
                return True
        return False

    def _jobs_tell(self, outcome: RunOutcome) -> None:
        if self._jobs_outcome is not None:
            return
        self._jobs_outcome = outcome
        for listener in self.outcome_listeners:
            try:
                listener.after_outcome(self, outcome)
            except Exception:
                logger.exception("Outcome listener %r failed in after_outcome", listener)

    def _jobs_record_failure(self, outcome: RunOutcome) -> None:
        """Record a failure Celery thought it had requeued (a listener settled it for good)."""
        exc, exc_info = outcome.exception, outcome.exc_info
        self.task.backend.mark_as_failure(self.id, exc, request=self._context, store_result=self.store_errors)
        self.task.request_stack.push(self._context)
        try:
            signals.task_failure.send(
                sender=self.task,
                task_id=self.id,
                exception=exc,
                args=self.args,
                kwargs=self.kwargs,
                traceback=getattr(exc_info, "traceback", None),
                einfo=exc_info,
            )
        finally:
            self.task.request_stack.pop()
        self.send_event("task-failed", exception=saferepr(exc), traceback=getattr(exc_info, "traceback", ""))
