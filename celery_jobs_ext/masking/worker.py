"""Celery glue: masked argsrepr at publish, the worker's log filters, events."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any, Final

from celery.signals import after_setup_logger, after_setup_task_logger
from celery.utils.saferepr import saferepr
from celery.worker.request import Request

from celery_jobs_ext.extension import installed
from celery_jobs_ext.masking.log_filter import add_masking_filter
from celery_jobs_ext.masking.text import Masker, masker_for_keys
from celery_jobs_ext.masking.values import _RECORD_VALUE_FIELDS, CYCLE_MARKER, Walker, _is_key

# ---------------------------------------------------------------------------------------------
# Celery wiring: where a GuardedTask's data shows up
# ---------------------------------------------------------------------------------------------


def masked_reprs(app: Any, args: Any, kwargs: Any, keys: Iterable[str] | None) -> tuple[str, str]:
    """``argsrepr`` and ``kwargsrepr`` for a message, masked.

    The structure is masked first (:func:`mask_repr`), so a secret-named key hides its
    value whatever it holds (a list, a tuple, a dict), and only then truncated by
    Celery's own ``saferepr`` to ``argsrepr_maxsize``. ``task_repr_maxlevels`` exists
    from Celery 5.7; before, Celery's default depth (3) applies.

    Every ``apply_async`` of a GuardedTask pays for this, so it goes through
    :class:`ShownMasker`: the same result as :func:`mask_repr`, for a fraction of the cost.
    """
    amqp = app.amqp
    maxlevels = app.conf.get("task_repr_maxlevels") or 3
    shown = ShownMasker(masker_for_keys(keys), maxlevels)
    argsrepr = shown.repr(args if args is not None else (), amqp.argsrepr_maxsize)
    kwargsrepr = shown.repr(kwargs if kwargs is not None else {}, amqp.kwargsrepr_maxsize)
    return argsrepr, kwargsrepr


#: Containers :class:`ShownMasker` walks itself; anything else goes to :class:`Walker`.
_PLAIN_CONTAINERS: Final = (dict, list, tuple)
#: Values that mask to themselves (``Walker.walk`` returns them unchanged).
_PLAIN_SCALARS: Final = frozenset({int, float, bool, type(None)})
#: Deeper ``task_repr_maxlevels`` (or 0, no limit) go through :func:`mask_repr` unchanged.
_MAX_SHOWN_LEVELS: Final = 16
#: Dict keys remembered per masker: the same few names come with every call.
_MAX_KEYS_REMEMBERED: Final = 4096
_KEY_TYPES: Final = frozenset({str, int})

#: Per masker: a dict key -> the mask of its value, or None. Only keys that mask to themselves
#: are kept, so no secret is held here. Maskers are few and long-lived (one per key set).
_key_memo: dict[Masker, dict[str, str | None]] = {}
_MAX_MASKERS_REMEMBERED: Final = 32


def _may_be_argv(value: list[Any] | tuple[Any, ...]) -> bool:
    """Whether :class:`Walker` may mask ``value`` as one command line (and make it a string)."""
    return len(value) >= 2 and any(type(item) is str and item.startswith("-") for item in value)


class ShownMasker:
    """:func:`mask_repr` for the values a task is published with, masking only what is shown.

    ``saferepr`` shows containers nested ``maxlevels`` deep as ``[...]``, so their contents
    are never masked here; everything shown is masked exactly as :class:`Walker` does
    (strings by the masker, values under secret-named keys whole). Plain dicts, lists and
    tuples are copied only where something changed. Anything else (objects, bytes, sets,
    subclasses, ``(name, value)`` pairs, argument lists, cycles) is handed to
    :class:`Walker` itself, so the result is always ``mask_repr``'s.
    """

    def __init__(self, masker: Masker, maxlevels: int) -> None:
        self.masker = masker
        self.mask_text = masker.mask_text
        self.maxlevels = maxlevels
        self.walker = Walker(masker, objects_as_repr=True)
        self.path = self.walker.path  # shared, so the walker sees the cycles this walk is in
        keys = _key_memo.get(masker)
        if keys is None:
            if len(_key_memo) >= _MAX_MASKERS_REMEMBERED:
                _key_memo.clear()
            keys = _key_memo[masker] = {}
        self.keys = keys

    def repr(self, value: Any, maxlen: int) -> str:
        """The masked repr of ``value``, as ``mask_repr(value, keys, maxlen, maxlevels)``."""
        if 0 < self.maxlevels <= _MAX_SHOWN_LEVELS:
            masked = self.walk(value, 0)
        else:  # no limit or a deep one: mask everything, as mask_repr does
            masked = self.walker.walk(value, 0)
        return str(saferepr(masked, maxlen=maxlen, maxlevels=self.maxlevels))

    def walk(self, value: Any, depth: int) -> Any:
        kind = type(value)
        if kind is str:
            return self.mask_text(value)
        if kind in _PLAIN_SCALARS:
            return value
        if kind not in _PLAIN_CONTAINERS:
            return self.walker.walk(value, depth)
        path = self.path
        if id(value) in path:
            return CYCLE_MARKER
        if depth >= self.maxlevels:
            if kind is not dict and _may_be_argv(value):
                return self.walker.walk(value, depth)  # the walker may make it a string
            return value  # shown as {...}, [...] or (...) whatever it holds
        path.add(id(value))
        try:
            if kind is dict:
                return self._dict(value, depth + 1)
            return self._sequence(value, depth + 1)
        finally:
            path.discard(id(value))

    def _dict(self, value: dict[Any, Any], depth: int) -> Any:
        if not _RECORD_VALUE_FIELDS.isdisjoint(value) and self.walker._record_label(value) is not None:
            return self.walker._container(value, depth)  # {"name": "DB_PASSWORD", "value": ...}
        keys = self.keys
        changed = False
        items = []
        for key, item in value.items():
            if type(key) not in _KEY_TYPES:
                return self.walker._container(value, depth)
            if type(key) is str:
                if key in keys:
                    masked_key, label = key, keys[key]
                else:
                    masked_key = self.mask_text(key)
                    label = self.masker.keys.label_for(key)
                    if masked_key is key and len(keys) < _MAX_KEYS_REMEMBERED:
                        keys[key] = label
                if label is not None and item is not None:
                    masked = self.walker.item(key, item, depth)
                else:
                    masked = self.walk(item, depth)
            else:
                masked_key = key
                masked = self.walk(item, depth)
            changed = changed or masked_key is not key or masked is not item
            items.append((masked_key, masked))
        return dict(items) if changed else value

    def _sequence(self, value: list[Any] | tuple[Any, ...], depth: int) -> Any:
        if (len(value) == 2 and (_is_key(value[0]) or self.walker._is_secret_name(value[0]))) or _may_be_argv(
            value
        ):
            # A (name, value) pair or what may be an argument list: the walker's own rules.
            return self.walker._container(value, depth)
        items = [self.walk(item, depth) for item in value]
        if all(masked is item for masked, item in zip(items, value, strict=True)):
            return value
        return tuple(items) if type(value) is tuple else items


def _app_masks(app: Any) -> tuple[bool, frozenset[str] | None]:
    """Whether ``app`` has the extension installed with masking on, and its keys."""
    if app is None or not installed(app):
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
