"""Celery glue: masked argsrepr at publish, the worker's log filters, events."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from celery.signals import after_setup_logger, after_setup_task_logger
from celery.utils.saferepr import saferepr
from celery.worker.request import Request

from celery_jobs_ext.masking.log_filter import add_masking_filter
from celery_jobs_ext.masking.text import masker_for_keys
from celery_jobs_ext.masking.values import mask_repr

# ---------------------------------------------------------------------------------------------
# Celery wiring: where a GuardedTask's data shows up
# ---------------------------------------------------------------------------------------------


def masked_reprs(app: Any, args: Any, kwargs: Any, keys: Iterable[str] | None) -> tuple[str, str]:
    """``argsrepr`` and ``kwargsrepr`` for a message, masked.

    The structure is masked first (:func:`mask_repr`), so a secret-named key hides its
    value whatever it holds (a list, a tuple, a dict), and only then truncated by
    Celery's own ``saferepr`` to ``argsrepr_maxsize``. ``task_repr_maxlevels`` exists
    from Celery 5.7; before, Celery's default depth (3) applies.
    """
    amqp = app.amqp
    maxlevels = app.conf.get("task_repr_maxlevels") or 3
    argsrepr = mask_repr(args if args is not None else (), keys, amqp.argsrepr_maxsize, maxlevels)
    kwargsrepr = mask_repr(kwargs if kwargs is not None else {}, keys, amqp.kwargsrepr_maxsize, maxlevels)
    return argsrepr, kwargsrepr


def _app_masks(app: Any) -> tuple[bool, frozenset[str] | None]:
    """Whether ``app`` has the extension installed with masking on, and its keys."""
    if app is None or not app.__dict__.get("_celery_jobs_ext_installed"):
        return False, None
    from celery_jobs_ext.config import ConfigCache

    try:
        config = ConfigCache.get(app)
    except Exception:  # a bad setting stops the worker elsewhere, with its own message
        return False, None
    keys = frozenset(config.mask_keys) if config.mask_keys is not None else None
    return config.mask_secrets, keys


@after_setup_logger.connect(weak=False, dispatch_uid="celery_jobs_ext.masking.worker_logger")
@after_setup_task_logger.connect(weak=False, dispatch_uid="celery_jobs_ext.masking.task_logger")
def _filter_worker_logs(logger: logging.Logger | None = None, **kwargs: Any) -> None:
    """Mask every record the worker's handlers write, once Celery has set them up.

    Celery sends these in the worker and again in each pool process; the filter is
    added once per handler. Exceptions here would be logged and swallowed by Celery.
    """
    from celery import current_app

    enabled, keys = _app_masks(current_app._get_current_object())
    if not enabled or logger is None:
        return
    add_masking_filter(logger, keys)
    root = logging.getLogger()
    if root is not logger:
        add_masking_filter(root, keys)


class MaskingRequest(Request):  # type: ignore[misc]
    """Worker request that masks what it puts in task events (Flower, ``celery events``).

    Producers of GuardedTasks already send masked ``argsrepr``/``kwargsrepr``; this also
    covers messages from elsewhere (``send_task``) and the result and exception reprs that
    events carry. Only runs when events are on.
    """

    def send_event(self, type: str, **fields: Any) -> None:
        eventer = self._eventer
        if not (eventer and eventer.enabled and self.task.send_events):
            return
        enabled, keys = _app_masks(self.task.app)
        if enabled:
            masker = masker_for_keys(keys)
            for name in ("args", "kwargs", "result", "exception", "traceback"):
                value = fields.get(name)
                if value is not None:
                    fields[name] = masker.mask_text(value if isinstance(value, str) else saferepr(value))
        super().send_event(type, **fields)


def masking_strategy(task: Any, app: Any, consumer: Any, **kwargs: Any) -> Any:
    """Celery's default strategy, with the message's reprs masked before the worker shows them.

    The worker sends ``task-received`` events straight from the strategy (not through the
    request), using the ``argsrepr`` the producer wrote. GuardedTask producers mask it
    already; this covers messages published any other way (``send_task``, other
    languages). It costs nothing while events are off.
    """
    from celery.worker.strategy import default

    handle = default(task, app, consumer, **kwargs)
    enabled, keys = _app_masks(app)
    eventer = consumer.event_dispatcher
    if not enabled or eventer is None or not task.send_events:
        return handle
    masker = masker_for_keys(keys)

    def task_message_handler(
        message: Any, body: Any, ack: Any, reject: Any, callbacks: Any, **kw: Any
    ) -> Any:
        if eventer.enabled:
            headers = message.headers
            if headers:
                for name in ("argsrepr", "kwargsrepr"):
                    value = headers.get(name)
                    if isinstance(value, str):
                        headers[name] = masker.mask_text(value)
        return handle(message, body, ack, reject, callbacks, **kw)

    return task_message_handler
