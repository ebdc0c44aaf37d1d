"""GuardedTask: the base class that switches the extension on for a task.

``@app.task(base=GuardedTask)`` is all a user writes: binding the class to an
app installs the extension there (see :func:`celery_jobs_ext.app.install`), and
every behaviour is gated on the task being a GuardedTask, so plain tasks in the
same app run exactly as before.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery import Task

from celery_jobs_ext.config import ConfigCache
from celery_jobs_ext.retry import retry_countdown

if TYPE_CHECKING:
    from celery import Celery


class GuardedTask(Task):  # type: ignore[misc]
    """A Celery task with the jobs extension's guard rails."""

    #: Marks the class for the extension's signal receivers (cheaper than isinstance
    #: on a task looked up by name, and survives a user's own subclassing).
    jobs_guarded = True

    @classmethod
    def on_bound(cls, app: Celery) -> None:
        """Install the extension on the app the moment a GuardedTask joins it."""
        super().on_bound(app)
        from celery_jobs_ext.app import install

        install(app)

    def retry(
        self,
        args: Any = None,
        kwargs: Any = None,
        exc: BaseException | None = None,
        throw: bool = True,
        eta: Any = None,
        countdown: float | None = None,
        max_retries: int | None = None,
        **options: Any,
    ) -> Any:
        """Retry with the countdown of ``jobs_retry_strategy`` unless the caller gave one."""
        if countdown is None and eta is None:
            attempt = (self.request.retries or 0) + 1
            countdown = retry_countdown(ConfigCache.get(self.app), attempt)
        return super().retry(
            args=args,
            kwargs=kwargs,
            exc=exc,
            throw=throw,
            eta=eta,
            countdown=countdown,
            max_retries=max_retries,
            **options,
        )
