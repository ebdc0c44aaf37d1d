"""GuardedTask: the base class that switches the extension on for a task.

``@app.task(base=GuardedTask)`` is all a user writes: binding the class to an
app installs the extension there (see :func:`celery_jobs_ext.app.install`), and
every behaviour lives in this class's methods or in receivers that check the
``jobs_guarded`` marker, so plain tasks in the same app run exactly as before.
"""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from celery import Task

from celery_jobs_ext.canvas import CanvasTaskMixin
from celery_jobs_ext.config import ConfigCache
from celery_jobs_ext.deadletter import DeadLetterListener, DeadLetterRequestMixin
from celery_jobs_ext.masking import MaskingRequest, mask_exception, masked_reprs
from celery_jobs_ext.metrics import MetricsListener
from celery_jobs_ext.outcome import OutcomeRequestMixin, OutcomeTaskMixin
from celery_jobs_ext.retry import retry_countdown
from celery_jobs_ext.timeouts import TimeoutRequestMixin, TimeoutTaskMixin

if TYPE_CHECKING:
    from celery import Celery


def _guarded_run(run: Any) -> Callable[..., Any]:
    """``run`` wrapped to go through :meth:`GuardedTask._jobs_call`."""
    if isinstance(run, staticmethod):  # @app.task without bind=True
        fun = run.__func__

        @functools.wraps(fun)
        def guarded_run(self: GuardedTask, *args: Any, **kwargs: Any) -> Any:
            return self._jobs_call(fun, args, kwargs)

        # ``task.run`` is now a bound method: its signature must still be ``fun``'s, which
        # Celery's ``retry`` and autoretry read to merge arguments.
        signature = inspect.signature(fun)
        self_parameter = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
        guarded_run.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[self_parameter, *signature.parameters.values()]
        )
        del guarded_run.__wrapped__

    else:

        @functools.wraps(run)
        def guarded_run(self: GuardedTask, *args: Any, **kwargs: Any) -> Any:
            return self._jobs_call(run, (self, *args), kwargs)

    guarded_run._jobs_guarded_run = True  # type: ignore[attr-defined]
    return guarded_run


#: The GuardedTasks whose run() this thread is inside (ids), so nested calls are guarded once.
_local = threading.local()


def _running_here() -> set[int]:
    running: set[int] | None = getattr(_local, "running", None)
    if running is None:
        running = _local.running = set()
    return running


class GuardedRequest(TimeoutRequestMixin, DeadLetterRequestMixin, OutcomeRequestMixin, MaskingRequest):
    """The worker-side request of a GuardedTask: each concern's request hooks, composed.

    How a run ended is decided once (:class:`~celery_jobs_ext.outcome.OutcomeRequestMixin`)
    and told to these listeners, in this order: the dead-letter queue first, so the
    metrics count its final decision (a failure it could not store is requeued).
    """

    outcome_listeners = (DeadLetterListener(), MetricsListener())


class GuardedTask(CanvasTaskMixin, TimeoutTaskMixin, OutcomeTaskMixin, Task):
    """A Celery task with the jobs extension's guard rails.

    Each concern keeps its task hooks in a mixin in its own module (timeouts,
    outcome, canvas); this class composes them with masking and retries.
    """

    #: Marks the class for the extension's receivers (cheaper than an isinstance
    #: check on a task looked up by name, and kept by a user's own subclasses).
    jobs_guarded = True

    #: The worker-side request class and message strategy.
    Request = "celery_jobs_ext.task:GuardedRequest"
    Strategy = "celery_jobs_ext.masking:masking_strategy"

    @classmethod
    def on_bound(cls, app: Celery) -> None:
        """Install the extension on the app the moment a GuardedTask joins it."""
        super().on_bound(app)
        from celery_jobs_ext.app import install

        install(app)

    def apply_async(self, args: Any = None, kwargs: Any = None, *rest: Any, **options: Any) -> Any:
        """Publish with masked ``argsrepr``/``kwargsrepr``: what logs, events and Flower show.

        The body keeps the real arguments, which the task needs. Retries and canvas
        steps publish through here too, so they stay masked (celery#6086).
        """
        config = ConfigCache.get(self.app)
        if config.mask_secrets and (options.get("argsrepr") is None or options.get("kwargsrepr") is None):
            argsrepr, kwargsrepr = masked_reprs(self.app, args, kwargs, config.mask_keys)
            if options.get("argsrepr") is None:
                options["argsrepr"] = argsrepr
            if options.get("kwargsrepr") is None:
                options["kwargsrepr"] = kwargsrepr
        return super().apply_async(args, kwargs, *rest, **options)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Wrap each task's ``run`` (the function ``@app.task`` turns into a task).

        Celery's worker calls ``run`` directly unless a task overrides ``__call__``, and an
        override costs every task a second request context (about 10 µs). So the timeout
        and the masking of the body's exceptions live around ``run``, inside Celery's
        ``autoretry_for`` wrapper, and ``__call__`` stays Celery's.
        """
        super().__init_subclass__(**kwargs)
        run = cls.__dict__.get("run")
        if run is not None and not getattr(run, "_jobs_guarded_run", False):
            cls.run = _guarded_run(run)  # type: ignore[method-assign]

    def _jobs_call(self, fun: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the body under its timeout; mask its exception before Celery stores or logs it.

        Celery stores a failure in the result backend before any ``on_failure`` hook
        runs, so the exception is masked here, on its way out.
        """
        running = _running_here()
        if id(self) in running:  # a run() calling super().run() or itself: guarded once
            return fun(*args, **kwargs)
        running.add(id(self))
        try:
            return self._jobs_run_timed(fun, args, kwargs)
        except Exception as exc:  # Retry too: its stored reason carries the cause's text
            self._mask(exc)
            raise
        finally:
            running.discard(id(self))

    def _mask(self, exc: BaseException) -> None:
        config = ConfigCache.get(self.app)
        if config.mask_secrets:
            mask_exception(exc, config.mask_keys)

    def retry(
        self,
        args: Any = None,
        kwargs: Any = None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: Any = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Any:
        """Retry with the countdown of ``jobs_retry_strategy`` unless the caller gave one."""
        if countdown is None and eta is None:
            attempt = (self.request.retries or 0) + 1
            countdown = retry_countdown(ConfigCache.get(self.app), attempt)
        return super().retry(
            args=args,
            kwargs=kwargs,
            exc=exc,
            throw=throw,
            eta=eta,
            countdown=countdown,
            max_retries=max_retries,
            **options,
        )
