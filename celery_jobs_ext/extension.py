"""One object per app holding what the extension keeps for that app.

Everything the extension remembers about an app (whether it is installed, its validated
settings, this process's metrics recorder) lives on one :class:`Extension`, kept on the
app under one attribute, instead of one ``_celery_jobs_ext_*`` attribute per concern
(redbeat keeps its cached config on the app the same way). This module imports nothing
from the package, so every concern can use it without an import cycle.

Process-wide things stay where they are on purpose: the shared-state clients
(``state._backends``, one client per process and URL, shared by apps on one store) and
the timeout's pool kind and alarm (one per process, whatever the app).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from celery import Celery

    from celery_jobs_ext.config import JobsConfig
    from celery_jobs_ext.metrics import Recorder

__all__ = ["Extension", "extension_for", "installed"]

#: The one attribute the extension sets on an app.
ATTRIBUTE = "_celery_jobs_ext"

_lock = threading.Lock()


class Extension:
    """What the extension keeps for one app, in this process.

    Attributes:
        installed: :func:`~celery_jobs_ext.app.install` ran on the app.
        defaults_registered: the ``jobs_*`` defaults are registered on ``app.conf``.
        config: the validated settings (:class:`~celery_jobs_ext.config.ConfigCache`), or None
            until first read.
        recorder: this process's metrics buffer (:func:`~celery_jobs_ext.metrics.recorder_for`),
            or None until something is recorded.
        registered: what ``install`` registered on the app (bootstep and task names), in order.
        riders: writes that ride along with another feature's shared-state batch
            (:func:`~celery_jobs_ext.state.execute_with_riders`), so features need not import
            each other: the metrics recorder rides with the rate limiter's decisions.
        warned: start-up warnings already given in this process, by name (each is logged once).
    """

    __slots__ = ("config", "defaults_registered", "installed", "recorder", "registered", "riders", "warned")

    def __init__(self) -> None:
        self.installed = False
        self.defaults_registered = False
        self.config: JobsConfig | None = None
        self.recorder: Recorder | None = None
        self.registered: list[str] = []
        self.riders: list[Any] = []
        self.warned: set[str] = set()

    def __repr__(self) -> str:
        return f"<Extension installed={self.installed} registered={self.registered}>"


def extension_for(app: Celery | Any) -> Extension:
    """The app's :class:`Extension`, created on first use."""
    extension: Extension | None = app.__dict__.get(ATTRIBUTE)
    if extension is None:
        with _lock:
            extension = app.__dict__.get(ATTRIBUTE)
            if extension is None:
                extension = Extension()
                setattr(app, ATTRIBUTE, extension)
    return extension


def existing_extension(app: Celery | Any) -> Extension | None:
    """The app's :class:`Extension` if it has one (a read that creates nothing, for hot paths)."""
    return app.__dict__.get(ATTRIBUTE)  # type: ignore[no-any-return]


def installed(app: Celery | Any) -> bool:
    """Whether :func:`~celery_jobs_ext.app.install` ran on ``app``."""
    extension = existing_extension(app)
    return extension is not None and extension.installed
