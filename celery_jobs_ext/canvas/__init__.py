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
fail with ``KeyError`` in ``Signature.from_dict``.) Only the adapters (:mod:`.adapters`; the
fluent API is :mod:`.fluent`) must be registered on
the workers that run them; every app with a GuardedTask has them (``install(app)``).
"""

from __future__ import annotations

from celery_jobs_ext.canvas.adapters import (
    CallbackAdapterTask,
    carry_generation,
    describe_failure,
    guard_key,
    register_canvas_tasks,
)
from celery_jobs_ext.canvas.fluent import (
    CATCH_TASK,
    FINALLY_TASK,
    GUARD_TTL_SECONDS,
    MAX_MESSAGE_LENGTH,
    CanvasTaskMixin,
    ErrorDescription,
    JobChain,
    JobSignature,
    Outcome,
)
from celery_jobs_ext.errors import ChainingError
from celery_jobs_ext.headers import GENERATION_HEADER

__all__ = [
    "CATCH_TASK",
    "FINALLY_TASK",
    "GENERATION_HEADER",
    "GUARD_TTL_SECONDS",
    "MAX_MESSAGE_LENGTH",
    "CallbackAdapterTask",
    "CanvasTaskMixin",
    "ChainingError",
    "ErrorDescription",
    "JobChain",
    "JobSignature",
    "Outcome",
    "carry_generation",
    "describe_failure",
    "guard_key",
    "register_canvas_tasks",
]
