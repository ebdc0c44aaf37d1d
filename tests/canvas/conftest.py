"""An app with recording callbacks, for the canvas tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from celery import Celery

from tests.canvas.recording import Calls, Recorders


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def canvas_app(make_app: Callable[..., Celery], calls: Calls) -> tuple[Celery, Recorders]:
    """An isolated app (Redis broker, results and state) with the recording callbacks."""
    app = make_app()
    return app, Recorders(app, calls)
