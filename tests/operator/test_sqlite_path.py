"""A relative ``sqlite:///`` state path is refused, showing the absolute form to use."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from celery import Celery

from celery_jobs_ext import ConfigCache, ImproperlyConfigured
from tests.operator.runner import conf_of, run_celery


def test_a_relative_sqlite_path_is_a_config_error_showing_the_absolute_form(
    make_app: Callable[..., Celery], tmp_path: Path
) -> None:
    app = make_app()
    conf = conf_of(app, jobs_state_url="sqlite:///state.db")
    result = run_celery(conf, "jobs-ratelimit", "set", "payments", "10/s", cwd=str(tmp_path))
    assert result.returncode == 78, result.stdout + result.stderr
    assert f"'sqlite:///{tmp_path}/state.db'" in result.stderr  # sqlite:////… (absolute)
    assert "relative SQLite path" in result.stderr
    assert not (tmp_path / "state.db").exists()  # no empty state created behind the workers' back


def test_workers_refuse_a_relative_sqlite_path_too(tmp_path: Path) -> None:
    app = Celery("relative-sqlite", broker="amqp://guest:guest@localhost//", set_as_current=False)
    app.conf.jobs_state_url = "sqlite:///sub/state.db"
    with pytest.raises(ImproperlyConfigured, match=r"sqlite:////.*/sub/state\.db"):
        ConfigCache.get(app)
    app.conf.jobs_state_url = f"sqlite:///{tmp_path}/state.db"
    ConfigCache.clear(app)
    assert ConfigCache.get(app).state_url == f"sqlite:///{tmp_path}/state.db"
    assert os.path.isabs(f"{tmp_path}/state.db")
