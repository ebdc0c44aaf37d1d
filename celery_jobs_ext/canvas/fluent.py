"""The fluent API: ``JobSignature`` and ``JobChain`` with ``then``, ``catch``, ``finally_``, ``chain``.

Each method only writes Celery's own signature options (``link``, ``link_error``,
``queue``, headers); see the package docstring for how they map.
"""

from __future__ import annotations

import inspect
import uuid
from collections.abc import Iterable, Mapping
from copy import deepcopy
from typing import TYPE_CHECKING, Any, TypedDict, TypeVar

from celery.canvas import Signature, _chain, chain, maybe_signature
from celery.utils.functional import is_list

from celery_jobs_ext.errors import ChainingError
from celery_jobs_ext.headers import TIMEOUT_HEADER

if TYPE_CHECKING:
    from celery import Celery
    from celery.result import AsyncResult


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
