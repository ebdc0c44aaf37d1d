"""Masking an exception in place: its arguments, attributes, notes and chain."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from typing import Any

from celery_jobs_ext.masking.text import Masker, masker_for_keys
from celery_jobs_ext.masking.values import Walker

#: Exceptions masked at most per call (chains and groups can be long, or hostile).
_MAX_EXCEPTIONS = 64


def mask_exception(exc: BaseException, keys: Iterable[str] | None = None) -> BaseException:
    """Mask an exception in place, so its message, stored form and traceback hide secrets.

    In place because Celery stores the very object the task raised (message and
    traceback text) before any ``on_failure`` hook runs; a copy would not be stored.
    Covers ``args``, the string, list and dict values of its attributes (exceptions
    that format their message from attributes, such as ``CalledProcessError``, whose
    ``cmd`` list is masked as one command line, and what pickling stores), notes added
    with ``add_note``, Celery's ``Retry`` (``message``, ``excs``, ``exc``), the members
    of an ``ExceptionGroup``, and the chained ``__cause__`` and ``__context__``, which
    the traceback prints.
    Returns ``exc``.
    """
    masker = masker_for_keys(keys)
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen or len(seen) >= _MAX_EXCEPTIONS:
            continue
        seen.add(id(current))
        _mask_one_exception(masker, current)
        members = getattr(current, "exceptions", ())  # an ExceptionGroup's members
        arguments = getattr(current, "args", ())  # an exception passed to another one
        linked = (current.__cause__, current.__context__, getattr(current, "exc", None), *members, *arguments)
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return exc


def _mask_one_exception(masker: Masker, exc: BaseException) -> None:
    try:
        args = exc.args
    except Exception:  # pragma: no cover - exotic exceptions
        return
    masked = tuple(_mask_argument(masker, argument) for argument in args)
    if any(new is not old for new, old in zip(masked, args, strict=True)):
        with contextlib.suppress(Exception):  # an exotic exception with read-only args
            exc.args = masked
    if isinstance(exc, OSError):  # filename and filename2 are slots, shown by str()
        for name in ("filename", "filename2"):
            value = getattr(exc, name, None)
            if isinstance(value, (str, bytes)):
                new_value = _mask_argument(masker, value)
                if new_value is not value and new_value != value:
                    with contextlib.suppress(Exception):
                        setattr(exc, name, new_value)
    attributes = getattr(exc, "__dict__", None)
    if not attributes:
        return
    notes = attributes.get("__notes__")
    if isinstance(notes, list):  # add_note(): printed under the traceback
        notes[:] = [masker.mask_text(note) if isinstance(note, str) else note for note in notes]
    for name, value in list(attributes.items()):
        if name.startswith("__") or value is None or isinstance(value, bool):
            continue
        if masker.keys.label_for(name) is not None:  # self.password = S, read by __str__
            new_value = Walker(masker, objects_as_repr=True).item(name, value, 0)
            if new_value is not value and new_value != value:
                with contextlib.suppress(Exception):
                    setattr(exc, name, new_value)
        elif isinstance(value, (str, list, tuple, dict, bytes)):
            new_value = _mask_argument(masker, value)
            if new_value is not value and new_value != value:
                with contextlib.suppress(Exception):
                    setattr(exc, name, new_value)


def _mask_argument(masker: Masker, argument: Any) -> Any:
    if isinstance(argument, str):
        return masker.mask_text(argument)
    if isinstance(argument, (int, float, type(None), BaseException)):
        return argument
    return Walker(masker, objects_as_repr=True).walk(argument, 0)
