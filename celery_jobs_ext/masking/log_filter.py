"""The logging filter that masks records in every handler it sits on."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, Final

from celery_jobs_ext.masking.text import masker_for_keys
from celery_jobs_ext.masking.values import Walker


class MaskingFilter(logging.Filter):
    """A logging filter for handlers that masks secrets in messages, tracebacks and stacks.

    Put it on handlers, not loggers: handler filters also see records propagated from child
    loggers. The arguments are masked first (handlers such as Sentry's read them beside the
    message). When the formatted message (``msg % args``) holds a secret, the masked message
    replaces ``msg`` and ``args`` becomes None, so every later handler and formatter sees the
    masked text; a clean record keeps ``msg`` as the template. It never drops a
    record, and a record that passes two masking handlers is left as the first one made it. If
    ``msg % args`` fails, the arguments are masked, so the "Logging error" report shows no secret.

    Tracebacks are formatted with :class:`logging.Formatter`'s ``formatException`` into
    ``record.exc_text`` (masked), which formatters print instead of formatting ``exc_info``
    themselves. ``record.exc_info`` itself is kept for handlers that need the exception object,
    so a handler that formats it on its own (not through ``exc_text``) sees the raw text.
    """

    _exception_formatter = logging.Formatter()

    def __init__(self, *, keys: Iterable[str] | None = None) -> None:
        """Create the filter.

        Arguments:
            keys: secret key names; None means :data:`DEFAULT_MASK_KEYS`.

        Raises:
            ImproperlyConfigured: ``keys`` is a string or holds non-strings.
        """
        super().__init__()
        self._masker = masker_for_keys(keys)

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask ``record`` in place; always True, so no record is dropped."""
        if isinstance(record.args, Mapping) and record.args:
            self._mask_args(record, by_content=False)
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler reports it, with msg and args
            walker = Walker(self._masker, objects_as_repr=False)
            record.msg = walker.walk(record.msg, 0)
            record.args = walker.walk(record.args, 0)
        else:
            masked = self._masker.mask_text(message)
            if masked is not message and masked != message:
                record.msg = masked
                record.args = None
            elif record.args:
                self._mask_args(record, by_content=True)
        self._mask_extra(record)
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exception_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._masker.mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = self._masker.mask_text(record.stack_info)
        return True

    def _mask_args(self, record: logging.LogRecord, by_content: bool) -> None:
        """Mask ``record.args`` by name (before formatting, for ``"%(user)s:%(pw)s"``, whose
        message no longer shows the name) and, when the message they make is clean, by content.

        Handlers read the arguments beside the message: Sentry sends them as ``logentry.params``,
        JSON formatters print them, and Celery's "received" and failure lines pass the task's
        arguments and traceback in a mapping its message may not show. Strings, bytes and
        containers are masked by content; other objects are left (the message holds their
        ``str``, and it is clean).
        """
        walker = Walker(self._masker, objects_as_repr=True)
        if isinstance(record.args, Mapping):
            args: Mapping[Any, Any] = record.args
            masked = {key: self._mask_arg(walker, value, by_content, key) for key, value in args.items()}
            if any(masked[key] is not args[key] for key in masked):
                record.args = masked
        elif isinstance(record.args, tuple):
            items = tuple(self._mask_arg(walker, value, by_content) for value in record.args)
            if any(item is not value for item, value in zip(items, record.args, strict=True)):
                record.args = items

    def _mask_arg(self, walker: Walker, value: Any, by_content: bool, key: Any = None) -> Any:
        if key is not None and self._masker.keys.label_for(str(key)) is not None:
            masked = walker.item(str(key), value, 0)
        elif by_content and isinstance(value, _MASKED_EXTRA_TYPES):
            masked = walker.walk(value, 0)
        else:
            return value
        return value if masked is value or (type(masked) is type(value) and masked == value) else masked

    def _mask_extra(self, record: logging.LogRecord) -> None:
        """Mask the fields passed with ``extra={...}``, by name and content.

        Structured handlers (JSON, Sentry, Loki) print them beside the message. Celery logs its
        task lines with ``extra={"data": {...}}`` (args, return value, traceback). Strings and
        containers are masked; other objects (a request, a task) are left for handlers that use
        them, since a handler may need the object and not its repr.
        """
        walker = Walker(self._masker, objects_as_repr=True)
        for name, value in list(record.__dict__.items()):
            if name in _RECORD_ATTRIBUTES or value is None:
                continue
            if isinstance(value, _MASKED_EXTRA_TYPES) or self._masker.keys.label_for(name) is not None:
                masked = walker.item(name, value, 0)
                if masked is not value:
                    record.__dict__[name] = masked


#: Attributes every LogRecord has; anything else came from ``extra={...}`` (or a filter).
_RECORD_ATTRIBUTES: Final = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}
#: What an extra field may hold to be masked; other objects are left for their handler to use.
_MASKED_EXTRA_TYPES: Final = (str, bytes, bytearray, dict, list, tuple, set, frozenset)


def add_masking_filter(logger: logging.Logger, keys: Iterable[str] | None = None) -> None:
    """Put a :class:`MaskingFilter` on every handler of ``logger`` that lacks one (idempotent)."""
    for handler in logger.handlers:
        if not any(isinstance(existing, MaskingFilter) for existing in handler.filters):
            handler.addFilter(MaskingFilter(keys=keys))
