"""Settings: defaults read, bad values fail naming the key, the cache is cheap and resettable."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from celery import Celery

from celery_jobs_ext import ConfigCache, GuardedTask, ImproperlyConfigured, JobsConfig, JobsError, install
from celery_jobs_ext.config import DEFAULTS, SETTINGS
from tests.harness import WorkerProcess


def redis_app(**settings: Any) -> Celery:
    app = Celery("config-test", broker="redis://127.0.0.1:6379/11", set_as_current=False)
    app.conf.update(settings)
    install(app)
    return app


def test_every_setting_reads_its_default_on_an_installed_app() -> None:
    app = redis_app()
    for key, default in DEFAULTS.items():
        assert app.conf[key] == default, key
    assert app.conf.jobs_timeout == 0


def test_config_holds_the_documented_defaults() -> None:
    config = ConfigCache.get(redis_app())
    assert config.allowed_shell_commands == ()
    assert dict(config.queue_rate_limits) == {}
    assert config.dead_letter_queue is None
    assert config.timeout == 0
    assert (config.retry_strategy, config.retry_base, config.retry_multiplier) == ("none", 60, 2.0)
    assert (config.retry_max, config.retry_jitter) == (3600, True)
    assert config.metrics is True
    assert config.state_url == "redis://127.0.0.1:6379/11"


def test_settings_are_read_into_typed_immutable_values() -> None:
    config = ConfigCache.get(
        redis_app(
            jobs_allowed_shell_commands=["ls", "echo"],
            jobs_queue_rate_limits={"default": 50, "fast": "10/s", "slow": "60/h", "off": 0},
            jobs_retry_strategy="EXPONENTIAL",
            jobs_dead_letter_queue="failed_jobs",
        )
    )
    assert config.allowed_shell_commands == ("ls", "echo")
    assert dict(config.queue_rate_limits) == {"default": 50.0, "fast": 600.0, "slow": 1.0}
    assert config.retry_strategy == "exponential"
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.timeout = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.queue_rate_limits["x"] = 1  # type: ignore[index]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("jobs_timeout", -1),
        ("jobs_timeout", "300"),
        ("jobs_timeout", True),
        ("jobs_retry_strategy", "linear"),
        ("jobs_retry_multiplier", 0.5),
        ("jobs_retry_multiplier", float("nan")),
        ("jobs_retry_base", -5),
        ("jobs_retry_max", 1.5),
        ("jobs_retry_jitter", "yes"),
        ("jobs_metrics", 1),
        ("jobs_queue_rate_limits", {"default": -1}),
        ("jobs_queue_rate_limits", {1: 10}),
        ("jobs_queue_rate_limits", {"default": "ten per minute"}),
        ("jobs_queue_rate_limits", [("default", 5)]),
        ("jobs_allowed_shell_commands", "ls"),
        ("jobs_allowed_shell_commands", ["ls", 3]),
        ("jobs_dead_letter_queue", ""),
        ("jobs_state_url", "mysql://localhost/x"),
        ("jobs_state_url", "localhost:6379"),
        ("jobs_shell_denied_arguments", {"find": "-exec"}),
    ],
)
def test_a_bad_setting_raises_improperly_configured_naming_key_and_value(key: str, value: Any) -> None:
    app = redis_app(**{key: value})
    with pytest.raises(ImproperlyConfigured) as error:
        ConfigCache.get(app)
    assert key in str(error.value)
    assert isinstance(error.value, JobsError)


def test_bad_state_url_message_hides_its_password() -> None:
    app = redis_app(jobs_state_url="mysql://user:s3cr3tpass@db/x")
    with pytest.raises(ImproperlyConfigured) as error:
        ConfigCache.get(app)
    assert "s3cr3tpass" not in str(error.value)


def test_state_url_defaults_to_a_redis_broker_and_is_required_otherwise() -> None:
    app = Celery("amqp-app", broker="amqp://guest:guest@localhost//", set_as_current=False)
    install(app)
    with pytest.raises(ImproperlyConfigured, match="jobs_state_url"):
        ConfigCache.get(app)
    app.conf.jobs_state_url = "sqlite:////var/lib/jobs/state.db"
    ConfigCache.clear(app)
    assert ConfigCache.get(app).state_url == "sqlite:////var/lib/jobs/state.db"


def test_django_style_namespaced_settings_are_read() -> None:
    class Settings:
        CELERY_BROKER_URL = "redis://127.0.0.1:6379/11"
        CELERY_JOBS_TIMEOUT = 300
        CELERY_JOBS_RETRY_STRATEGY = "fixed"

    app = Celery("django-app", set_as_current=False)
    app.config_from_object(Settings, namespace="CELERY")
    install(app)
    config = ConfigCache.get(app)
    assert (config.timeout, config.retry_strategy) == (300, "fixed")


def test_cache_returns_the_same_object_until_cleared() -> None:
    app = redis_app(jobs_timeout=10)
    first = ConfigCache.get(app)
    app.conf.jobs_timeout = 20
    assert ConfigCache.get(app) is first
    ConfigCache.clear(app)
    assert ConfigCache.get(app).timeout == 20


def test_set_pins_a_config_for_every_app_until_cleared() -> None:
    pinned = JobsConfig(timeout=42, state_url="sqlite:///x.db")
    ConfigCache.set(pinned)
    assert ConfigCache.get(redis_app()) is pinned
    ConfigCache.clear()
    assert ConfigCache.get(redis_app()).timeout == 0


def test_set_for_one_app_leaves_others_alone() -> None:
    one, other = redis_app(), redis_app()
    ConfigCache.set(JobsConfig(timeout=7, state_url="sqlite:///x.db"), app=one)
    assert ConfigCache.get(one).timeout == 7
    assert ConfigCache.get(other).timeout == 0


def test_current_app_is_used_when_no_app_is_given() -> None:
    app = Celery("current", broker="redis://127.0.0.1:6379/11")
    app.conf.jobs_timeout = 3
    app.set_current()
    assert ConfigCache.get().timeout == 3


def test_as_dict_hides_the_state_url_password() -> None:
    app = redis_app(jobs_state_url="redis://:hunter2@127.0.0.1:6379/11")
    shown = ConfigCache.get(app).as_dict()
    assert "hunter2" not in json.dumps(shown)
    assert "hunter2" not in repr(ConfigCache.get(app))


def test_worker_refuses_to_start_with_a_bad_setting(redis_url: str) -> None:
    conf = {"broker_url": redis_url, "jobs_retry_strategy": "sometimes"}
    with WorkerProcess({"JOBS_TEST_CONF": json.dumps(conf)}, queues="never-used", pool="solo") as worker:
        assert worker.process.wait(60) != 0
        output = worker.output()
    assert "jobs_retry_strategy" in output and "sometimes" in output


def test_worker_refuses_to_start_when_the_state_store_is_unreachable(redis_url: str) -> None:
    conf = {"broker_url": redis_url, "jobs_state_url": "redis://:hunter2@127.0.0.1:1/0"}
    with WorkerProcess({"JOBS_TEST_CONF": json.dumps(conf)}, queues="never-used", pool="solo") as worker:
        assert worker.process.wait(60) != 0
        output = worker.output()
    assert "jobs_state_url" in output and "unreachable" in output
    assert "hunter2" not in output


def test_worker_refuses_to_start_when_the_sqlite_file_is_not_writable(redis_url: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    conf = {"broker_url": redis_url, "jobs_state_url": f"sqlite:///{blocker}/state.db"}
    with WorkerProcess({"JOBS_TEST_CONF": json.dumps(conf)}, queues="never-used", pool="solo") as worker:
        assert worker.process.wait(60) != 0
        output = worker.output()
    assert "jobs_state_url" in output


def test_guarded_task_installs_the_extension_when_bound() -> None:
    app = Celery("bound", broker="redis://127.0.0.1:6379/11", set_as_current=False)

    @app.task(base=GuardedTask, shared=False)
    def job() -> None: ...

    assert job.name  # evaluates the lazy task: binds it
    assert app.conf.jobs_retry_strategy == "none"
    assert any(step.__name__ == "ConfigCheck" for step in app.steps["worker"])


def test_settings_from_a_config_object_win_over_the_registered_defaults() -> None:
    class Settings:
        broker_url = "redis://127.0.0.1:6379/11"
        jobs_timeout = 120

    app = Celery("object-app", set_as_current=False)
    app.config_from_object(Settings)
    install(app)
    assert app.conf.jobs_timeout == 120
    assert app.conf.jobs_retry_base == 60
    assert ConfigCache.get(app).timeout == 120


DOCS = Path(__file__).parent.parent / "docs" / "configuration.md"


def documented_settings() -> dict[str, tuple[str, str]]:
    """``{name: (type, default)}`` from the settings table of docs/configuration.md."""
    rows: dict[str, tuple[str, str]] = {}
    for line in DOCS.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and cells[0].startswith("`jobs_"):
            rows[cells[0].strip("`")] = (cells[1], cells[2].strip("`"))
    return rows


def test_the_documented_settings_table_matches_the_declared_settings() -> None:
    documented = documented_settings()
    assert list(documented) == [setting.name for setting in SETTINGS]
    for setting in SETTINGS:
        doc_type, doc_default = documented[setting.name]
        assert doc_type == setting.type, setting.name
        shown = {str(setting.default), repr(setting.default), json.dumps(setting.default)}
        assert doc_default in shown, (setting.name, doc_default, shown)


def test_jobs_config_has_one_field_per_declared_setting() -> None:
    assert [field.name for field in dataclasses.fields(JobsConfig)] == [setting.field for setting in SETTINGS]
    assert dict(DEFAULTS) == {setting.name: setting.default for setting in SETTINGS}


def test_the_setting_that_did_nothing_is_gone() -> None:
    assert "jobs_batch_size" not in DEFAULTS
    assert not hasattr(JobsConfig(), "batch_size")
