"""Masking nested values: containers, bytes, objects, and the argsrepr form."""

from __future__ import annotations

import dataclasses
import enum
import re
import shlex
from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final
from uuid import UUID

from celery_jobs_ext.masking.keys import hides_nothing
from celery_jobs_ext.masking.text import Masker, masker_for_keys

MAX_DEPTH: Final = 32
#: Stands in for a container that contains itself.
CYCLE_MARKER: Final = "<cycle>"
#: Stands in for a value nested deeper than :data:`MAX_DEPTH`.
DEPTH_MARKER: Final = "<max depth>"
_SAFE_SCALARS: Final = (
    int,
    float,
    complex,
    Decimal,
    Fraction,
    date,
    datetime,
    time,
    timedelta,
    UUID,
    type(None),
)


#: Longest name taken as the key of a (name, value) pair; longer first items are values.
_MAX_PAIR_KEY = 64
#: Name/value records (k8s env and Secret entries, CloudFormation and SSM parameters, AWS tags,
#: ECS environment): the name field says what the value field holds.
_RECORD_NAME_FIELDS: Final = ("name", "Name", "key", "Key", "field", "Field", "ParameterKey", "ParameterName")
_RECORD_VALUE_FIELDS: Final = frozenset({"value", "Value", "val", "data", "ParameterValue", "valueFrom"})
_MAX_RECORD_FIELDS: Final = 8


def _is_key(item: Any) -> bool:
    """Whether ``item`` reads as a field name: a short string or bytes without spaces."""
    if isinstance(item, (bytes, bytearray)):
        item = bytes(item).decode("utf-8", "replace")
    return isinstance(item, str) and 0 < len(item) <= _MAX_PAIR_KEY and not any(c.isspace() for c in item)


def _is_option(item: Any) -> bool:
    """Whether ``item`` is a command-line option (``-p…``, ``--password``, ``b"-p…"``)."""
    if isinstance(item, bytes):
        return item.startswith(b"-")
    return isinstance(item, str) and item.startswith("-")


#: A Windows-style option with a value: ``/p:S``, ``/user:bob`` (not a path: ``/tmp``).
_WINDOWS_OPTION = re.compile(r"/[A-Za-z][\w-]{0,15}:")


def _is_windows_option(item: Any) -> bool:
    return isinstance(item, str) and _WINDOWS_OPTION.match(item) is not None


def _key_name(key: Any) -> Any:
    """The name a key gives its value: bytes decoded, an enum member's value or name
    (``{F.password: S}``), a tuple key's last name (``{("db", "password"): S}``)."""
    if isinstance(key, (bytes, bytearray)):
        return key.decode("utf-8", "replace")
    if isinstance(key, enum.Enum):
        return key.value if isinstance(key.value, str) else key.name
    if isinstance(key, tuple) and key and isinstance(key[-1], str):
        return key[-1]
    return key


def _argument_text(item: str | bytes | int) -> str:
    if isinstance(item, bytes):
        return item.decode("utf-8", "surrogateescape")
    return item if isinstance(item, str) else str(item)


def _like(item: str | bytes | int, masked: str) -> str | bytes:
    """A masked argument as the type it came in (an int's mask is text)."""
    return masked.encode("utf-8", "surrogateescape") if isinstance(item, bytes) else masked


#: What a command line's rules would read as a boundary, so an argument holding one is quoted.
_QUOTE_FOR_RULES = re.compile(r"[\s'\"\\;|&<>]")
#: Characters that keep their meaning inside double quotes in a POSIX shell.
_DOUBLE_QUOTE_SPECIAL: Final = frozenset('"$`\\!')


def _quote(argument: str) -> str:
    """Quote ``argument`` for one command line the rules read. ``shlex.quote`` writes a single
    quote as ``'"'"'``, which cut ``Zq8'wRt5`` into pieces no rule saw as one password; double
    quotes keep it whole when nothing in it is special there."""
    if argument and not _QUOTE_FOR_RULES.search(argument):
        return argument  # "/p:Zq8!wRt" as written: shlex.split reads it back whole
    quoted = shlex.quote(argument)
    if quoted == argument or "'" not in argument or _DOUBLE_QUOTE_SPECIAL.intersection(argument):
        return quoted
    return f'"{argument}"'


class _ObjectRepr:
    """An object's masked repr that reprs as itself, so :func:`saferepr` shows it unquoted."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class Walker:
    """Masks one value tree: tracks the containers on the current path to spot cycles."""

    def __init__(self, masker: Masker, objects_as_repr: bool) -> None:
        self.masker = masker
        self.objects_as_repr = objects_as_repr
        self.path: set[int] = set()

    def walk(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.masker.mask_text(value)
        if isinstance(value, (bool, *_SAFE_SCALARS)):
            return value
        if isinstance(value, (bytes, bytearray)):
            return self._bytes(value)
        if not isinstance(value, (dict, list, tuple, set, frozenset)):
            return self._object(value)
        if depth >= MAX_DEPTH:
            return DEPTH_MARKER
        if id(value) in self.path:
            return CYCLE_MARKER
        self.path.add(id(value))
        try:
            return self._container(value, depth + 1)
        finally:
            self.path.discard(id(value))

    def _container(
        self, value: dict[Any, Any] | list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any], depth: int
    ) -> Any:
        if isinstance(value, dict):
            record_label = self._record_label(value)
            return {
                self._key(key): record_label
                if record_label is not None
                and key in _RECORD_VALUE_FIELDS
                and self._hides_something(item, record_label)
                else self.item(key, item, depth)
                for key, item in value.items()
            }
        if isinstance(value, tuple) and hasattr(value, "_fields"):
            # A namedtuple: its field names are keys.
            items = [self.item(name, item, depth) for name, item in zip(value._fields, value, strict=False)]
            try:
                return type(value)(*items)
            except TypeError:
                return tuple(items)
        if isinstance(value, (list, tuple)):
            if len(value) == 2 and _is_option(value[1]) and not self._is_secret_name(value[0]):
                # ["mysql", "-pPW"], ["7z", "-pPW"]: a program and an option, not a name/value pair
                argv = self._argv(value)
                if argv is not None:
                    return argv
            if len(value) == 2 and (_is_key(value[0]) or self._is_secret_name(value[0])):
                # A (name, value) pair: a header list entry, an ASGI header, a form field.
                pair = [self.walk(value[0], depth), self.item(value[0], value[1], depth)]
                return tuple(pair) if isinstance(value, tuple) else pair
            argv = self._argv(value)
            if argv is not None:
                return argv
        items = [self.walk(item, depth) for item in value]
        if isinstance(value, tuple):
            return tuple(items)
        if isinstance(value, frozenset):
            return frozenset(items)
        if isinstance(value, set):
            return set(items)
        return items

    def _argv(self, value: list[Any] | tuple[Any, ...]) -> list[Any] | tuple[Any, ...] | str | None:
        """Mask a command's argument list as one command line, so ``["mysql", "-pPW"]`` is seen
        as the command it is; None when ``value`` is not a list of arguments with an option.

        Arguments may be str, bytes or int (``["redis-cli", "-p", 6380, "-a", PW]``); an
        argument the masking left alone comes back as it was, of its own type."""
        if len(value) < 2 or not all(isinstance(item, (str, bytes, int)) for item in value):
            return None
        if not any(_is_option(item) or _is_windows_option(item) for item in value):
            return None
        texts = [_argument_text(item) for item in value]
        line = " ".join(_quote(text) for text in texts)
        masked = self.masker.mask_text(line)
        if masked is line:
            return None
        try:
            parts = shlex.split(masked)
        except ValueError:
            return masked
        if len(parts) != len(value):
            return masked
        items = [
            item if part == text else _like(item, part)
            for item, text, part in zip(value, texts, parts, strict=True)
        ]
        return tuple(items) if isinstance(value, tuple) else items

    def _is_secret_name(self, item: Any) -> bool:
        """A short string naming a secret, spaces allowed (``('Api Key', S)``)."""
        return (
            isinstance(item, str)
            and len(item) <= _MAX_PAIR_KEY
            and self.masker.keys.label_for(item) is not None
        )

    def _record_label(self, value: dict[Any, Any]) -> str | None:
        """The mask for a name/value record's value (``{"name": "DB_PASSWORD", "value": S}``,
        CloudFormation's ``ParameterKey``/``ParameterValue``), or None when it is not one."""
        if len(value) > _MAX_RECORD_FIELDS or not any(key in _RECORD_VALUE_FIELDS for key in value):
            return None
        for key in _RECORD_NAME_FIELDS:
            name = value.get(key)
            if isinstance(name, str) and len(name) <= _MAX_PAIR_KEY:
                return self.masker.keys.label_for(name)
        return None

    @staticmethod
    def _hides_something(item: Any, label: str) -> bool:
        if item is None or isinstance(item, bool):
            return False
        if isinstance(item, (str, int)):
            return not hides_nothing(str(item), label, structured=True)
        return True

    def _key(self, key: Any) -> Any:
        return self.masker.mask_text(key) if isinstance(key, str) else key

    def item(self, key: Any, item: Any, depth: int) -> Any:
        name = _key_name(key)
        if name == "netloc" and isinstance(item, str) and "@" in item:
            # urlsplit()'s netloc, "user:S@host", has no scheme for the URL rule to start from
            return self.masker.mask_text("x://" + item)[4:]
        if isinstance(name, str) and item is not None:
            label = self.masker.keys.label_for(name)
            if label is not None:
                if isinstance(item, (str, int)) and not isinstance(item, bool):
                    if hides_nothing(str(item), label, structured=True):
                        return item
                elif isinstance(item, (bytes, bytearray)):
                    text = item.decode("utf-8", "replace")
                    return item if hides_nothing(text, label, structured=True) else label.encode()
                return label
        return self.walk(item, depth)

    def _bytes(self, value: bytes | bytearray) -> bytes | bytearray:
        # surrogateescape round-trips bytes that are not UTF-8, so only the secrets change.
        text = value.decode("utf-8", "surrogateescape")
        masked = self.masker.mask_text(text)
        if masked is text:
            return value
        encoded = masked.encode("utf-8", "surrogateescape")
        return bytearray(encoded) if isinstance(value, bytearray) else encoded

    def _object(self, value: Any) -> Any:
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            text = self._dataclass(value)
        else:
            try:
                text = repr(value)
            except Exception:  # a broken __repr__ must not break logging
                text = f"<unrepresentable {type(value).__name__}>"
            text = self.masker.mask_text(text)
        return _ObjectRepr(text) if self.objects_as_repr else text

    def _dataclass(self, value: Any) -> str:
        """The dataclass's repr, its fields masked by name (``Config(api_key='***API_KEY***')``)."""
        if id(value) in self.path or len(self.path) >= MAX_DEPTH:
            return CYCLE_MARKER if id(value) in self.path else DEPTH_MARKER
        self.path.add(id(value))
        try:
            shown = []
            for field in dataclasses.fields(value):
                if not field.repr:
                    continue
                item = self.item(field.name, getattr(value, field.name, None), len(self.path))
                shown.append(f"{field.name}={item!r}")
            return f"{type(value).__qualname__}({', '.join(shown)})"
        finally:
            self.path.discard(id(value))


def mask(value: Any, keys: Iterable[str] | None = None) -> Any:
    """Return a masked copy of ``value``: strings masked, secret-named keys' values hidden whole.

    Task arguments and results are nested structures, and a secret is as likely to sit under a
    ``"password"`` key as inside a string. The input is never mutated.

    - ``str``: :func:`mask_text`.
    - ``dict``, ``list``, ``tuple`` (and namedtuples), ``set``, ``frozenset``: a new container of
      the same kind (dict and list subclasses become plain dicts and lists), items masked; string
      dict keys are masked too. A value under a secret-named key becomes its mask (``"***TOKEN***"``)
      whatever its type, except None, which hides nothing.
    - ``bytes`` and ``bytearray``: masked as UTF-8 text and returned as the same type (the same
      object when nothing is secret); bytes that are not UTF-8 survive unchanged.
    - ``int``, ``float``, ``bool``, ``None``, ``Decimal``, dates, ``UUID``: unchanged.
    - any other object: its masked ``repr()``, as a ``str``.

    A container that contains itself becomes :data:`CYCLE_MARKER`; nesting deeper than
    :data:`MAX_DEPTH` becomes :data:`DEPTH_MARKER`.

    Arguments:
        value: the value to mask.
        keys: secret key names; None means :data:`DEFAULT_MASK_KEYS`. Pass the full set (the
            ``jobs_mask_keys`` setting): it replaces the defaults.

    Returns:
        The masked copy.

    Raises:
        ImproperlyConfigured: ``keys`` is a string or holds non-strings.
    """
    return Walker(masker_for_keys(keys), objects_as_repr=False).walk(value, 0)


def mask_repr(value: Any, keys: Iterable[str] | None = None, maxlen: int = 1024, maxlevels: int = 3) -> str:
    """The masked, truncated repr of ``value``, for a task's ``argsrepr`` and ``kwargsrepr``.

    Masks first and truncates after, so a secret cut in half by the length limit is still hidden;
    the truncation is Celery's own :func:`~celery.utils.saferepr.saferepr`, so the result reads like
    Celery's default argsrepr. Objects appear as their masked repr, unquoted.

    Arguments:
        value: the value to represent, usually a task's args tuple or kwargs dict.
        keys: secret key names; None means :data:`DEFAULT_MASK_KEYS`.
        maxlen: approximate maximum length of the result, as Celery's ``argsrepr_maxsize``.
        maxlevels: nesting shown before ``...``, as Celery's ``task_repr_maxlevels``.

    Returns:
        The repr.

    Raises:
        ImproperlyConfigured: ``keys`` is a string or holds non-strings.
    """
    from celery.utils.saferepr import saferepr  # imports Celery: only the task glue needs this

    masked = Walker(masker_for_keys(keys), objects_as_repr=True).walk(value, 0)
    return str(saferepr(masked, maxlen=maxlen, maxlevels=maxlevels))
