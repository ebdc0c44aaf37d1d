"""Shared state across worker processes and hosts: the backend for ``jobs_state_url``.

:func:`get_state` returns this process's backend for an app; the connection is
re-created after fork (``worker_process_init``), never shared with a parent.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Protocol

from celery import bootsteps
from celery.signals import worker_process_init

from celery_jobs_ext.config import ConfigCache, ConfigCheck
from celery_jobs_ext.errors import ImproperlyConfigured
from celery_jobs_ext.extension import existing_extension
from celery_jobs_ext.state.base import OPERATIONS, Batch, Op, Script, StateBackend, Transaction

if TYPE_CHECKING:
    from celery import Celery

__all__ = [
    "OPERATIONS",
    "Batch",
    "BatchRider",
    "Op",
    "Script",
    "StateBackend",
    "StateCheck",
    "Transaction",
    "command_timeout",
    "create_state",
    "execute_with_riders",
    "get_state",
]

_backends: dict[tuple[int, str, str, float | None], StateBackend] = {}
_lock = threading.Lock()
#: Set by :func:`command_timeout` while an operator command runs.
_timeout: float | None = None


@contextlib.contextmanager
def command_timeout(seconds: float) -> Iterator[None]:
    """Backends from :func:`get_state` inside the block give up after ``seconds``, without retrying.

    For the operator commands: a store that accepts connections and never answers (or a
    SQLite file another process keeps locked) must end the command in a few seconds,
    where a worker would rather wait out a short hiccup.
    """
    global _timeout
    previous, _timeout = _timeout, seconds
    try:
        yield
    finally:
        _timeout = previous


def create_state(url: str, prefix: str = "jobs:", timeout: float | None = None) -> StateBackend:
    """Build a new backend for ``url`` (``redis://``, ``rediss://``, ``unix://`` or ``sqlite:///``).

    ``timeout``: seconds before a call that gets no answer fails (default: the backend's own).

    Raises:
        ImproperlyConfigured: the URL's scheme is not one of those.
    """
    scheme = url.split("://", 1)[0].lower()
    if scheme in ("redis", "rediss", "unix"):
        from celery_jobs_ext.state.redis import RedisState

        return RedisState(url, prefix, timeout=timeout)
    if scheme == "sqlite":
        from celery_jobs_ext.state.sqlite import SQLiteState

        return SQLiteState(url, prefix, timeout=timeout)
    raise ImproperlyConfigured(
        f"Setting jobs_state_url has unknown scheme {scheme!r}: use redis://, rediss://, "
        "unix:// or sqlite:///"
    )


def get_state(app: Celery | None = None) -> StateBackend:
    """This process's backend for the app's ``jobs_state_url`` (created on first use)."""
    config = ConfigCache.get(app)
    url = config.state_url
    if url is None:  # JobsConfig resolves None to the broker or raises; this is a pinned config.
        raise ImproperlyConfigured("Setting jobs_state_url is not set.")
    timeout = _timeout
    key = (os.getpid(), url, config.state_prefix, timeout)
    backend = _backends.get(key)
    if backend is None:
        with _lock:
            backend = _backends.get(key)
            if backend is None:
                backend = _backends[key] = create_state(url, config.state_prefix, timeout)
    return backend


class BatchRider(Protocol):
    """Writes that ride along with another feature's batch (registered in ``Extension.riders``)."""

    def ride_along(self, batch: Batch) -> Any:
        """Append due operations to ``batch``; return what to :meth:`put_back` on failure, or None."""

    def put_back(self, taken: Any) -> None:
        """The batch failed: keep what :meth:`ride_along` took for a later write."""


def execute_with_riders(app: Celery, batch: Batch) -> list[Any]:
    """Execute ``batch`` in one round trip together with the app's registered riders' due writes.

    For a feature that already makes a round trip per task (the rate limiter's decision).
    Returns the results of ``batch``'s own operations, in order; on failure every rider gets
    back what it gave, and the error propagates as ``batch.execute()``'s would.
    """
    extension = existing_extension(app)
    riders = extension.riders if extension is not None else ()
    if not riders:
        return batch.execute()
    count = len(batch.ops)
    taken = [(rider, rider.ride_along(batch)) for rider in list(riders)]
    if len(batch.ops) == count:
        return batch.execute()
    try:
        results = batch.execute()
    except BaseException:
        for rider, given in taken:
            if given is not None:
                rider.put_back(given)
        raise
    return results[:count]


@worker_process_init.connect(weak=False, dispatch_uid="celery_jobs_ext.state.reset_after_fork")
def reset_after_fork(**kwargs: Any) -> None:
    """Forget the parent's connections in a new pool process.

    Sockets and SQLite handles must not cross a fork; the child opens its own
    on first use. Exceptions here are logged by Celery, never raised.
    """
    _backends.clear()


class StateCheck(bootsteps.StartStopStep):
    """Worker bootstep: reach the shared state before consuming, or stop with a clear error."""

    label = "celery-jobs-ext state"
    requires = (f"{ConfigCheck.__module__}:{ConfigCheck.__name__}",)

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        get_state(parent.app).ping()
        super().__init__(parent, **kwargs)
