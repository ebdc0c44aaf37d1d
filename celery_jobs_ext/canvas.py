"""Fluent chaining on signatures: ``then``, ``catch``, ``finally_`` and ``chain``.

Every method maps onto Celery's own canvas, so a pipeline still runs on plain Celery
machinery and shows up in Flower as ordinary linked tasks:

- ``then(sig)`` is ``link``: Celery sends ``sig`` with the result when the task succeeds.
- ``catch(sig)`` is ``link_error`` with the adapter task ``jobs.catch`` in between. Celery
  calls an errback in one of two ways (``errback(request, exc, traceback)`` in the failing
  worker when the errback is registered there and takes more than one argument, otherwise
  as a task with the failed task's id: celery#9034, #4099). The adapter accepts both and
  always sends ``sig`` one :class:`ErrorDescription`, so a user's callback is a plain
  ``def on_error(error)`` that runs on its own queue like any task.
- ``finally_(sig)`` (alias ``always``) is a ``link`` *and* a ``link_error`` to the adapter
  ``jobs.finally``, which sends ``sig`` one :class:`Outcome`. Celery never runs both for one
  execution in the normal course, but redelivery, a message published twice with one task
  id, or a result that fails to encode after the callbacks went out can; so each adapter
  first increments a counter in the shared state and only the first increment sends.
- ``chain(sigs)`` is ``celery.chain``; the :class:`JobChain` it returns has the same
  methods, applied to the chain as a whole (Celery's chain-level ``link`` goes to the last
  step, its ``link_error`` to every step).

Nothing here is needed to *read* a pipeline: :class:`JobSignature` and :class:`JobChain`
keep every fact in the ordinary signature fields (``options.link``, ``options.link_error``,
``options.queue``, …) and never set a ``subtask_type`` of their own. A worker that rebuilds
one from a message gets an ordinary ``Signature``/``chain``, even if it never imported this
package. (Registering a subtype with ``Signature.register_type`` would make such a worker
fail with ``KeyError`` in ``Signature.from_dict``.) Only the adapters must be registered on
the workers that run them; every app with a GuardedTask has them (``install(app)``).
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterable, Mapping
from copy import deepcopy
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from celery import Task, states
from celery._state import get_current_worker_task
from celery.canvas import Signature, _chain, chain, maybe_signature
from celery.signals import before_task_publish
from celery.utils.functional import is_list
from celery.utils.log import get_logger

from celery_jobs_ext.config import ConfigCache
from celery_jobs_ext.errors import ChainingError
from celery_jobs_ext.headers import GENERATION_HEADER, REPLAYED_FROM, TIMEOUT_HEADER
from celery_jobs_ext.masking import mask_text, masked_reprs

if TYPE_CHECKING:
    from celery import Celery
    from celery.result import AsyncResult

__all__ = [
    "CATCH_TASK",
    "FINALLY_TASK",
    "GUARD_TTL_SECONDS",
    "CanvasTaskMixin",
    "ChainingError",
    "ErrorDescription",
    "JobChain",
    "JobSignature",
    "Outcome",
    "describe_failure",
    "guard_key",
    "register_canvas_tasks",
]

logger = get_logger(__name__)

CATCH_TASK = "jobs.catch"
"""The adapter between ``link_error`` and a ``catch`` callback."""

FINALLY_TASK = "jobs.finally"
"""The adapter between ``link``/``link_error`` and a ``finally_`` callback."""

GUARD_TTL_SECONDS = 24 * 3600
"""How long the "already fired" marker of a catch/finally_ callback lives in the shared state.

It must outlast the gap between two deliveries of one execution (a redelivered message,
a duplicate publish); after it, a message re-published with the same task id fires again.
"""

MAX_MESSAGE_LENGTH = 2000
"""The error description's ``message`` is cut to this many characters (after masking)."""

_SCOPE_TASK = "task"
_SCOPE_CHAIN = "chain"


class ErrorDescription(TypedDict):
    """What a ``catch`` callback receives (and ``Outcome["error"]``): plain JSON types only.

    ``task_id`` is always set; the other fields are None only when the failed task ran on a
    worker without this package and the result backend does not keep them
    (``result_extended``).
    """

    task_id: str
    task_name: str | None
    exception_type: str | None
    message: str
    attempts: int | None
    queue: str | None


class Outcome(TypedDict):
    """What a ``finally_`` callback receives.

    ``state`` is ``"SUCCESS"`` (``result`` holds the return value) or ``"FAILURE"``
    (``error`` holds the :class:`ErrorDescription`); ``task_id`` is the task that ended the
    pipeline: the last step, or the one that failed.
    """

    state: str
    result: Any
    error: ErrorDescription | None
    task_id: str | None


_Fluent = TypeVar("_Fluent", bound="_FluentMethods")


class _FluentMethods:
    """``then``/``catch``/``finally_``/``push``, shared by :class:`JobSignature` and :class:`JobChain`.

    Callbacks land in the ordinary ``link``/``link_error`` lists of the signature's options;
    ``_scope`` tells the adapters whether a failure ends a single task or a whole chain.
    """

    _scope = _SCOPE_TASK

    if TYPE_CHECKING:
        options: dict[str, Any]
        _app: Celery | None

        def apply_async(self, args: Any = None, kwargs: Any = None, **options: Any) -> Any: ...

        def extend_list_option(self, key: str, value: Any) -> None: ...

    def then(self: _Fluent, callback: Any) -> _Fluent:
        """Run ``callback`` when this succeeds, with the result as its first argument.

        An immutable callback (``.si()``) gets no result. Maps to Celery's ``link``; on a
        chain, to the chain's ``link``, which Celery attaches to the last step.

        Raises:
            ChainingError: ``callback`` is not a signature, or its task cannot take the result.
        """
        sig = _callback(callback, "then", "the result")
        self.extend_list_option("link", [sig])
        return self

    def catch(self: _Fluent, callback: Any) -> _Fluent:
        """Run ``callback`` once when this fails for good, with an :class:`ErrorDescription`.

        Never on a retry (Celery calls no errback then). On a chain: once, for the step that
        failed; the steps after it do not run.

        Raises:
            ChainingError: ``callback`` is not a signature, or its task cannot take the description.
        """
        sig = _callback(callback, "catch", "the error description")
        self.extend_list_option("link_error", [_adapter(CATCH_TASK, sig, self._scope, self._app)])
        return self

    def finally_(self: _Fluent, callback: Any) -> _Fluent:
        """Run ``callback`` exactly once when this ends either way, with an :class:`Outcome`.

        On a chain: after the last step, or after the step that failed. ``finally`` is a
        Python keyword, hence the underscore; :meth:`always` is the same method.

        Raises:
            ChainingError: ``callback`` is not a signature, or its task cannot take the outcome.
        """
        sig = _callback(callback, "finally_", "the outcome")
        slot = uuid.uuid4().hex
        on_success = _adapter(FINALLY_TASK, sig, self._scope, self._app, slot=slot, on="success")
        on_failure = _adapter(FINALLY_TASK, sig, self._scope, self._app, slot=slot, on="failure")
        self.extend_list_option("link", [on_success])
        self.extend_list_option("link_error", [on_failure])
        return self

    always = finally_

    def push(self, **options: Any) -> AsyncResult:
        """Publish (``apply_async(**options)``) and return the ``AsyncResult``.

        For a chain, the result of the last step (its ``parent`` is the step before).
        """
        return self.apply_async(**options)


class JobSignature(_FluentMethods, Signature):  # type: ignore[misc]
    """A ``celery.canvas.Signature`` with fluent ``then``/``catch``/``finally_``/``chain``.

    What ``GuardedTask.s()``, ``.si()`` and ``.signature()`` return; ``JobSignature("name",
    args, kwargs, app=app)`` builds one for any task by name. It serialises as the plain
    signature it is, and methods mutate it and return it, like Celery's ``set()``.
    """

    def timeout(self, seconds: float) -> JobSignature:
        """Set the per-call ``timeout`` option (seconds), which GuardedTask enforces.

        Also written as the ``jobs_timeout`` message header, which is what the worker
        reads: a signature made by name is published with ``send_task``, which never sees
        GuardedTask's ``apply_async`` (where the option becomes that header).

        Raises:
            ChainingError: ``seconds`` is not a positive number.
        """
        _set_timeout(self, _positive_seconds(seconds))
        return self

    def on_queue(self, name: str) -> JobSignature:
        """Set the ``queue`` option: the task is sent to queue ``name``.

        Raises:
            ChainingError: ``name`` is not a non-empty string.
        """
        self.set(queue=_queue_name(name))
        return self

    def chain(self, sigs: Any) -> JobChain:
        """A :class:`JobChain` of this signature followed by ``sigs`` (one or an iterable).

        Callbacks already attached to this signature stay on this step; ``then``/``catch``/
        ``finally_`` on the returned chain apply to the whole chain.
        """
        return JobChain([self.clone(), *_as_steps(sigs)], app=self._app)

    def clone(self, args: Any = None, kwargs: Any = None, **opts: Any) -> JobSignature:
        """Celery's ``clone``, keeping the class (Celery's rebuilds a plain ``Signature``)."""
        plain = super().clone(args, kwargs, **opts)
        job = JobSignature(dict(plain), app=self._app)
        job._type = plain._type
        return job

    partial = clone

    def __or__(self, other: Any) -> Any:
        """``sig | other`` builds a :class:`JobChain` (Celery's builds a plain chain)."""
        if isinstance(other, Signature):
            return JobChain([self, *_as_steps(other)], app=self._app)
        return NotImplemented


class JobChain(_FluentMethods, chain):  # type: ignore[misc]
    """A ``celery.chain`` with the fluent methods, applied to the chain as a whole.

    Steps that are chains themselves are spliced in with their own callbacks kept on their
    steps (Celery's chain drops a nested chain's ``link``/``link_error`` when it flattens).
    """

    _scope = _SCOPE_CHAIN

    def __new__(cls, *tasks: Any, **options: Any) -> JobChain:
        # celery.chain.__new__ folds its arguments into a new plain chain; ours keeps them.
        instance: JobChain = _chain.__new__(cls)
        return instance

    def __init__(self, *tasks: Any, **options: Any) -> None:
        steps = list(tasks[0]) if len(tasks) == 1 and is_list(tasks[0]) else list(tasks)
        super().__init__(list(_as_steps(steps, app=options.get("app"))), **options)

    def timeout(self, seconds: float) -> JobChain:
        """Set the per-call ``timeout`` option on every step (each step gets ``seconds``).

        Raises:
            ChainingError: ``seconds`` is not a positive number.
        """
        value = _positive_seconds(seconds)
        for step in self.tasks:
            _set_timeout(step, value)
        return self

    def on_queue(self, name: str) -> JobChain:
        """Send every step to queue ``name`` (a chain-level option would reach only the first).

        Raises:
            ChainingError: ``name`` is not a non-empty string.
        """
        value = _queue_name(name)
        for step in self.tasks:
            step.set(queue=value)
        return self

    def chain(self, sigs: Any) -> JobChain:
        """This chain followed by ``sigs``; callbacks already on the chain cover the new steps too."""
        return JobChain(
            [step.clone() for step in self.tasks] + list(_as_steps(sigs)),
            app=self._app,
            **deepcopy(self.options),
        )

    def clone(self, *args: Any, **kwargs: Any) -> JobChain:
        """Celery's ``clone``, keeping the class (Celery's rebuilds a plain chain)."""
        plain = super().clone(*args, **kwargs)
        job = JobChain(plain.tasks, app=self._app, **plain.options)
        job.args, job.immutable = plain.args, plain.immutable
        return job

    def __or__(self, other: Any) -> Any:
        """``chain | other`` appends steps and keeps the chain's callbacks on the whole chain."""
        if isinstance(other, Signature):
            return self.chain(other)
        return NotImplemented


class CanvasTaskMixin:
    """GuardedTask's signature factories (``s``, ``si``, ``signature``) return a :class:`JobSignature`."""

    if TYPE_CHECKING:
        app: Celery

    def signature(self, args: Any = None, *starargs: Any, **starkwargs: Any) -> JobSignature:
        """Celery's ``Task.signature``, returning a :class:`JobSignature`."""
        starkwargs.setdefault("app", self.app)
        return JobSignature(self, args, *starargs, **starkwargs)

    subtask = signature

    def s(self, *args: Any, **kwargs: Any) -> JobSignature:
        """``task.s(*args, **kwargs)``: a :class:`JobSignature` that takes its parent's result."""
        return self.signature(args, kwargs)

    def si(self, *args: Any, **kwargs: Any) -> JobSignature:
        """``task.si(*args, **kwargs)``: an immutable :class:`JobSignature` (ignores results)."""
        return self.signature(args, kwargs, immutable=True)


# -- attaching callbacks ---------------------------------------------------------------


_PARAMETER = {"catch": "error", "finally_": "outcome"}


def _callback(callback: Any, method: str, what: str) -> Signature:
    """Check a callback at attach time and return a copy of it.

    Users find out here, at the call site, rather than from a TypeError in a worker log
    later; the copy means a later change to the caller's object does not reach the
    attached one, and attaching one signature twice attaches it twice.
    """
    if not isinstance(callback, Signature):
        if isinstance(callback, Mapping) and "task" in callback:
            callback = maybe_signature(dict(callback))
        else:
            name = getattr(callback, "name", None)
            if name:
                raise ChainingError(
                    f"{method}() takes a signature such as {name}.s() or {name}.si(), "
                    f"not the task {name} itself."
                )
            raise ChainingError(f"{method}() takes a signature such as task.s(), not {callback!r}.")
    _check_takes_argument(callback, method, what)
    return callback.clone()


def _check_takes_argument(sig: Signature, method: str, what: str) -> None:
    """Refuse a callback whose task cannot be called with ``what`` plus its stored arguments.

    Only for a task known in this process (a signature made from the task object); a
    signature made by name is checked by Celery when it is sent.
    """
    task = sig._type
    header = getattr(task, "__header__", None)
    if header is None or sig.get("subtask_type"):
        return
    args = tuple(sig.args) if sig.immutable else (None, *sig.args)
    try:
        inspect.signature(header).bind(*args, **sig.kwargs)
    except TypeError as exc:
        name = sig.task
        if method == "then":
            hint = "Use .si() for a callback that ignores the result."
        else:
            hint = (
                f"Write it as def {name.rsplit('.', 1)[-1]}({_PARAMETER[method]}): ... "
                "(a Celery errback taking (request, exc, traceback) is for link_error, not "
                f"{method}())."
            )
        raise ChainingError(
            f"{method}() calls task {name!r} with {what} as its first argument, then its own "
            f"arguments; it cannot take them ({exc}). {hint}"
        ) from None


def _adapter(name: str, callback: Signature, scope: str, app: Any, **kwargs: Any) -> Signature:
    """The adapter signature that stands between Celery's link options and ``callback``.

    The adapter is sent to the callback's queue when the callback has one: where the
    callback runs, a worker is listening (Celery also sends an errback there, as a task,
    when the failing worker does not know the adapter).
    """
    kwargs.setdefault("slot", uuid.uuid4().hex)
    queue = callback.options.get("queue")
    return Signature(
        name,
        kwargs={"callback": callback, "scope": scope, **kwargs},
        options={"queue": queue} if queue else {},
        app=app,
    )


def _as_steps(sigs: Any, app: Any = None) -> Iterable[Signature]:
    """The chain steps in ``sigs``, with nested chains spliced in and their callbacks kept."""
    items = [sigs] if isinstance(sigs, Mapping) else list(sigs)
    for item in items:
        step = item if isinstance(item, Signature) else maybe_signature(item, app=app)
        if not isinstance(step, Signature):
            raise ChainingError(f"chain() takes signatures such as task.s(); got {item!r}.")
        if isinstance(step, _chain):
            yield from _as_steps(step.unchain_tasks(), app)
        else:
            yield step


def _positive_seconds(seconds: Any) -> float:
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
        raise ChainingError(f"timeout() takes a positive number of seconds, not {seconds!r}.")
    return seconds


def _set_timeout(sig: Signature, seconds: float) -> None:
    headers = dict(sig.options.get("headers") or {})
    headers[TIMEOUT_HEADER] = seconds
    sig.set(timeout=seconds, headers=headers)


def _queue_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ChainingError(f"on_queue() takes a queue name, not {name!r}.")
    return name


# -- the adapters, on the worker ---------------------------------------------------------


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


@before_task_publish.connect(weak=False, dispatch_uid="celery_jobs_ext.canvas.carry_generation")
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
    When the state cannot be reached the callback is still sent (a missed clean-up is the
    worse failure) and a warning says the exactly-once guard was skipped. Errors are
    logged masked and not raised: Celery calls the failure adapters inside the failing
    task's error handling, and a raise there would only be logged again, unmasked.
    """
    from celery_jobs_ext.state import get_state

    sig = maybe_signature(callback, app=app)
    guarded = True
    try:
        if get_state(app).incr(key, ttl=GUARD_TTL_SECONDS) != 1:
            logger.info("Callback %s for %s already sent; not sending it again", sig.task, key)
            return
    except Exception as exc:
        guarded = False
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
        if guarded:  # let a redelivery try again
            try:
                get_state(app).incr(key, -1)
            except Exception:
                logger.warning("Could not release guard %s after a failed send", key)
        logger.error("Could not send callback %s: %s", sig.task, _masked(app, repr(exc)))


def _masked(app: Any, text: str) -> str:
    config = ConfigCache.get(app)
    return mask_text(text, config.mask_keys) if config.mask_secrets else text
