"""The worker side of chaining: the ``jobs.catch`` and ``jobs.finally`` adapter tasks.

They stand between Celery's ``link``/``link_error`` and a user's callback, describe the
failure, and send the callback once (a guard counter in the shared state).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from celery import Task, states
from celery._state import get_current_worker_task
from celery.canvas import maybe_signature
from celery.signals import before_task_publish, worker_init
from celery.utils.log import get_logger

from celery_jobs_ext.canvas.fluent import (
    _SCOPE_CHAIN,
    _SCOPE_TASK,
    CATCH_TASK,
    FINALLY_TASK,
    GUARD_TTL_SECONDS,
    MAX_MESSAGE_LENGTH,
    ErrorDescription,
    Outcome,
)
from celery_jobs_ext.config import ConfigCache
from celery_jobs_ext.headers import GENERATION_HEADER, REPLAYED_FROM
from celery_jobs_ext.masking import mask_text, masked_reprs
from celery_jobs_ext.state import get_state

logger = get_logger("celery_jobs_ext.canvas")


class CallbackAdapterTask(Task):  # type: ignore[misc]
    """Base of ``jobs.catch`` and ``jobs.finally``: no stored result, masked message reprs.

    Their kwargs carry the user's callback signature with its arguments, which the worker
    log and Flower would otherwise show as they are.
    """

    ignore_result = True

    def apply_async(self, args: Any = None, kwargs: Any = None, *rest: Any, **options: Any) -> Any:
        """Publish with ``argsrepr``/``kwargsrepr`` masked, as GuardedTask does."""
        config = ConfigCache.get(self.app)
        if config.mask_secrets and options.get("kwargsrepr") is None:
            options["argsrepr"], options["kwargsrepr"] = masked_reprs(
                self.app, args, kwargs, config.mask_keys
            )
        return super().apply_async(args, kwargs, *rest, **options)


def register_canvas_tasks(app: Any) -> None:
    """Register ``jobs.catch`` and ``jobs.finally`` on ``app``; ``install(app)`` calls this once.

    Both take ``(failed, exc=None, traceback=None)`` positionally: that shape makes Celery
    call them in the failing worker as ``errback(request, exc, traceback)`` (more than one
    argument, not ``bind=True``), where the request has everything the description needs,
    while a worker that does not know them sends them as a task with the failed task's id,
    which they also accept. Registered lazily, like any ``@app.task``.
    """

    def catch(
        failed: Any,
        exc: BaseException | None = None,
        traceback: Any = None,
        *,
        callback: Any,
        slot: str,
        scope: str = _SCOPE_TASK,
    ) -> None:
        description = describe_failure(app, failed, exc)
        key = guard_key("catch", slot, _failure_anchor(failed, scope), _generation(failed))
        _fire(app, key, callback, description, failed)

    def finally_(
        first: Any,
        exc: BaseException | None = None,
        traceback: Any = None,
        *,
        callback: Any,
        slot: str,
        scope: str = _SCOPE_TASK,
        on: str = "success",
    ) -> None:
        if on == "success":
            # Celery sends link callbacks with parent_id set to the task that just succeeded.
            request = app.tasks[FINALLY_TASK].request
            ended = request.parent_id or request.id
            outcome = Outcome(state=states.SUCCESS, result=first, error=None, task_id=ended)
            _fire(app, guard_key("finally", slot, ended, _generation(request)), callback, outcome, None)
            return
        description = describe_failure(app, first, exc)
        outcome = Outcome(
            state=states.FAILURE, result=None, error=description, task_id=description["task_id"]
        )
        key = guard_key("finally", slot, _failure_anchor(first, scope), _generation(first))
        _fire(app, key, callback, outcome, first)

    app.task(catch, base=CallbackAdapterTask, name=CATCH_TASK, shared=False)
    app.task(finally_, base=CallbackAdapterTask, name=FINALLY_TASK, shared=False)


def describe_failure(app: Any, failed: Any, exc: BaseException | None) -> ErrorDescription:
    """The :class:`ErrorDescription` of a failure, from the failing task's request.

    ``failed`` is that request when Celery calls the adapter in the failing worker, or just
    the task id when the adapter runs as a task; then the rest comes from the result backend
    (name, queue and retries only with ``result_extended``).
    """
    if isinstance(failed, str):
        task_id, name, queue, retries = failed, None, None, None
        try:
            stored = app.AsyncResult(failed)
            exc = stored.result if exc is None else exc
            name, queue, retries = stored.name, stored.queue, stored.retries
        except Exception as error:  # no result backend, or it is unreachable
            logger.warning("Could not read failed task %s from the result backend: %r", failed, error)
    else:
        task_id = failed.id
        name = getattr(failed, "task", None)
        queue = (getattr(failed, "delivery_info", None) or {}).get("routing_key")
        retries = getattr(failed, "retries", None) or 0
    config = ConfigCache.get(app)
    message = "" if exc is None else str(exc)
    if config.mask_secrets:
        message = mask_text(message, config.mask_keys)
    if len(message) > MAX_MESSAGE_LENGTH:
        message = message[: MAX_MESSAGE_LENGTH - 1] + "…"
    return ErrorDescription(
        task_id=task_id,
        task_name=name,
        exception_type=None if exc is None else _exception_type(exc),
        message=message,
        attempts=None if retries is None else int(retries) + 1,
        queue=queue,
    )


def _exception_type(exc: BaseException) -> str:
    """``ValueError`` for builtins, else ``module.QualName``; the original class for wrappers."""
    module = getattr(exc, "exc_module", None)  # celery's UnpickleableExceptionWrapper
    name = getattr(exc, "exc_cls_name", None)
    if not (module and name):
        module, name = type(exc).__module__, type(exc).__qualname__
    return name if module == "builtins" else f"{module}.{name}"


def guard_key(kind: str, slot: str, anchor: str, generation: str | None = None) -> str:
    """The shared-state counter that says whether a catch/finally_ callback was sent.

    ``slot`` names one ``catch()``/``finally_()`` call (it is in the adapter's kwargs),
    ``anchor`` one execution (the task id, or a chain's last step id); the counter's first
    increment sends the callback, any later one is a duplicate. A dead-letter replay
    publishes the failed message again with the same task id, but it is a new execution
    whose callbacks must fire: ``generation`` (the replay's entry id, carried to the
    messages that descend from it) keeps its key apart.
    """
    key = f"canvas:{kind}:{slot}:{anchor}"
    return f"{key}:{generation}" if generation else key


def _generation(request: Any) -> str | None:
    """The dead-letter replay ``request`` descends from: its own, else the one it inherited."""
    get = getattr(request, "get", None)
    if get is None:  # a bare task id: the adapter ran as a task, without the request
        return None
    value = get(REPLAYED_FROM) or get(GENERATION_HEADER)
    return str(value) if value else None


@worker_init.connect(weak=False, dispatch_uid="celery_jobs_ext.canvas.connect_carry_generation")
def connect_carry_generation(**kwargs: Any) -> None:
    """Hook :func:`carry_generation` into publishing, in worker processes only.

    Only a worker publishes while a task is current, so a producer (a web process) never
    needs the hook; connecting it there would make Celery build the signal's arguments
    for every message, plain tasks included (measured at about 10 µs a publish).
    ``worker_init`` is sent in the worker's main process before the pool forks, so
    prefork children inherit the connection.
    """
    before_task_publish.connect(
        carry_generation, weak=False, dispatch_uid="celery_jobs_ext.canvas.carry_generation"
    )


def carry_generation(headers: dict[str, Any] | None = None, **kwargs: Any) -> None:
    """Give a message published by a replayed task (or its descendants) the replay's id.

    The next step of a chain and the ``jobs.finally`` adapter are published by the worker
    while the task that succeeded is current; copying the id into their headers lets the
    adapter at the end of a replayed chain compute the same generation as a failure
    inside it would. A no-op outside replays. Celery logs and swallows exceptions raised
    by receivers, so a failure here costs only the guard's replay awareness.
    """
    if headers is None or headers.get(GENERATION_HEADER):
        return
    task = get_current_worker_task()
    if task is None:
        return
    generation = _generation(task.request)
    if generation:
        headers[GENERATION_HEADER] = generation


def _failure_anchor(failed: Any, scope: str) -> str:
    """The id that names one execution of what the callback was attached to.

    For a task, its own id. For a chain, the id of its last step, which a failing step
    finds first in its remaining ``chain`` (kept last-step-first): so a chain's success
    (reported by the last step) and any step's failure share one guard key.
    """
    if isinstance(failed, str):
        return failed
    if scope == _SCOPE_CHAIN:
        remaining = getattr(failed, "chain", None) or []
        if remaining and isinstance(remaining[0], Mapping):
            last_id = (remaining[0].get("options") or {}).get("task_id")
            if last_id:
                return str(last_id)
    return str(failed.id)


def _fire(app: Any, key: str, callback: Any, argument: Any, failed: Any) -> None:
    """Send ``callback`` with ``argument``, unless this key already fired.

    The first increment of the key in the shared state wins, across processes and hosts.
    A worker can die (SIGKILL, a lost pool child) between winning the key and sending; the
    message that was running then comes back redelivered (``acks_late``) and finds the key
    taken. So a sent callback is also marked (``<key>:sent``), and a *redelivered* run that
    finds the key taken but not marked sends it: the callback is sent twice only if the
    worker died in the instant between the send and the mark, instead of never, which is
    what the key alone gave (found by the soak's whole-worker SIGKILL).
    When the state cannot be reached the callback is still sent (a missed clean-up is the
    worse failure) and a warning says the exactly-once guard was skipped. Errors are
    logged masked and not raised: Celery calls the failure adapters inside the failing
    task's error handling, and a raise there would only be logged again, unmasked.
    """
    sig = maybe_signature(callback, app=app)
    state = None
    try:
        state = get_state(app)
        if state.incr(key, ttl=GUARD_TTL_SECONDS) != 1:
            if not (_redelivered() and state.get_counters([key + _SENT]) == [0]):
                logger.info("Callback %s for %s already sent; not sending it again", sig.task, key)
                return
            logger.warning(
                "Callback %s for %s was claimed by a run that did not finish; sending it now",
                sig.task,
                key,
            )
    except Exception as exc:
        state = None
        logger.warning(
            "Shared state unreachable (%s); sending callback %s without the exactly-once guard",
            _masked(app, repr(exc)),
            sig.task,
        )
    options: dict[str, Any] = {}
    if failed is not None:
        task_id = failed if isinstance(failed, str) else failed.id
        root_id = None if isinstance(failed, str) else getattr(failed, "root_id", None)
        options = {"parent_id": task_id, "root_id": root_id or task_id}
    try:
        sig.apply_async((argument,), **options)
    except Exception as exc:
        if state is not None:  # let a redelivery try again
            try:
                state.incr(key, -1)
            except Exception:
                logger.warning("Could not release guard %s after a failed send", key)
        logger.error("Could not send callback %s: %s", sig.task, _masked(app, repr(exc)))
        return
    if state is not None:
        try:
            state.incr(key + _SENT, ttl=GUARD_TTL_SECONDS)
        except Exception as exc:
            logger.warning(
                "Could not mark callback %s for %s sent: %s", sig.task, key, _masked(app, repr(exc))
            )


#: Suffix of the marker written after a guarded callback was sent.
_SENT = ":sent"


def _redelivered() -> bool:
    """Whether the message being run (the adapter, or the failing task calling it inline)
    was handed out before: by AMQP's flag, or the one Kombu's Redis transport sets on restore."""
    task = get_current_worker_task()
    if task is None:
        return False
    delivery_info = getattr(task.request, "delivery_info", None) or {}
    return bool(delivery_info.get("redelivered"))


def _masked(app: Any, text: str) -> str:
    config = ConfigCache.get(app)
    return mask_text(text, config.mask_keys) if config.mask_secrets else text
