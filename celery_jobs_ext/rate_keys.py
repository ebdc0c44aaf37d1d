"""Keyed rate limits: which budget one call of a task draws from.

``@app.task(base=GuardedTask, rate_limit_key="customer_id", rate_limit_per_key="10/m")``
gives each value of ``customer_id`` (or of several arguments, with a list of names) its
own GCRA budget in the shared state. The rate limiter (:mod:`celery_jobs_ext.ratelimit`)
asks this module for a call's budget; this module knows nothing of workers or budgets.

A budget's name holds a digest of the key's values, not the values: a customer's
e-mail address as a key must not become a Redis key anyone can list.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from celery_jobs_ext.errors import ImproperlyConfigured, InvalidRate
from celery_jobs_ext.rates import parse_rate

if TYPE_CHECKING:
    from celery import Celery

#: The budget of one key of one task (its ``queue`` argument in the limiter's key names).
KEY_BUDGET = "{task}[{digest}]"


@dataclasses.dataclass(frozen=True)
class KeyedLimit:
    """A task's keyed limit: the arguments that make the key, and jobs per minute per key."""

    task: str
    names: tuple[str, ...]
    per_minute: float
    signature: inspect.Signature | None

    def budget_of(self, args: Any, kwargs: Any) -> str | None:
        """The budget a call with ``args``/``kwargs`` draws from; None when its key is unknown.

        Arguments a call does not pass take their defaults. A call whose arguments do not
        fit the task (it will fail when it runs) is not held: None.
        """
        values: dict[str, Any]
        if self.signature is None:
            values = dict(kwargs or {})
        else:
            try:
                bound = self.signature.bind(*(args or ()), **(kwargs or {}))
            except TypeError:
                return None
            bound.apply_defaults()
            values = {**bound.arguments, **bound.kwargs}
            extra = bound.arguments.get(_var_keyword(self.signature) or "")
            if isinstance(extra, Mapping):
                values.update(extra)
        if any(name not in values for name in self.names):
            return None
        text = json.dumps([values[name] for name in self.names], default=repr, sort_keys=True)
        digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()[:16]
        return KEY_BUDGET.format(task=self.task, digest=digest)


def _var_keyword(signature: inspect.Signature) -> str | None:
    for parameter in signature.parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            return parameter.name
    return None


def keyed_limit_of(task: Any) -> KeyedLimit | None:
    """The keyed limit a task declares with ``rate_limit_key`` and ``rate_limit_per_key``.

    Raises:
        ImproperlyConfigured: one option without the other, a key that is not an argument
            name (or a list of them) of the task, or a rate :func:`parse_rate` refuses.
    """
    key = getattr(task, "rate_limit_key", None)
    rate = getattr(task, "rate_limit_per_key", None)
    if key is None and rate is None:
        return None
    name = getattr(task, "name", repr(task))
    if key is None or rate is None:
        missing = "rate_limit_per_key" if rate is None else "rate_limit_key"
        raise ImproperlyConfigured(f"Task {name}: keyed rate limit needs {missing} too.")
    names = (key,) if isinstance(key, str) else key
    if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) and n for n in names):
        raise ImproperlyConfigured(
            f"Task {name}: rate_limit_key = {key!r} is invalid: expected an argument name or a list of them."
        )
    try:
        per_minute = parse_rate(rate)
    except InvalidRate as exc:
        raise ImproperlyConfigured(f"Task {name}: rate_limit_per_key = {rate!r} is invalid: {exc}") from None
    if per_minute <= 0:
        raise ImproperlyConfigured(f"Task {name}: rate_limit_per_key must be above 0, not {rate!r}.")
    try:
        signature: inspect.Signature | None = inspect.signature(task.run)
    except (TypeError, ValueError):
        signature = None
    if signature is not None and _var_keyword(signature) is None:
        unknown = [n for n in names if n not in signature.parameters]
        if unknown:
            raise ImproperlyConfigured(
                f"Task {name}: rate_limit_key names {', '.join(map(repr, unknown))}, which "
                f"{'is not an argument' if len(unknown) == 1 else 'are not arguments'} of the task."
            )
    return KeyedLimit(name, tuple(names), per_minute, signature)


def keyed_limits(app: Celery) -> dict[str, KeyedLimit]:
    """Every keyed limit declared by the tasks of ``app``, by task name (validated)."""
    limits = {}
    for task in list(app.tasks.values()):
        limit = keyed_limit_of(task)
        if limit is not None:
            limits[limit.task] = limit
    return limits
