"""What the extension keeps for an app lives on one Extension object, under one attribute."""

from __future__ import annotations

from celery import Celery

from celery_jobs_ext import ConfigCache, install
from celery_jobs_ext.extension import ATTRIBUTE, extension_for, installed
from celery_jobs_ext.metrics import recorder_for


def test_install_config_and_recorder_live_on_the_apps_one_extension_object() -> None:
    app = Celery("extension-test", broker="redis://127.0.0.1:6379/11", set_as_current=False)
    assert not installed(app)
    install(app)
    install(app)  # idempotent: registers nothing twice
    config = ConfigCache.get(app)
    recorder = recorder_for(app)

    extension = extension_for(app)
    assert installed(app) and extension.defaults_registered
    assert extension.config is config and extension.recorder is recorder
    assert extension.registered == [
        "worker step ConfigCheck",
        "worker step StateCheck",
        "worker step TimeoutPool",
        "consumer step RateLimitStep",
        "consumer step MetricsStep",
        "consumer step RedisReconnectFix",
        "consumer step ConnectionLossCheck",
        "task jobs.shell, worker step ShellPolicyCheck",
        "tasks jobs.catch, jobs.finally",
    ]
    # One attribute on the app.
    assert [name for name in vars(app) if name.startswith("_celery_jobs_ext")] == [ATTRIBUTE]
    ConfigCache.clear(app)
    assert extension.config is None
    assert ConfigCache.get(app) == config and extension.config is not None
    recorder.close()


def test_apps_do_not_share_an_extension() -> None:
    first = Celery("extension-a", broker="redis://127.0.0.1:6379/11", set_as_current=False)
    second = Celery("extension-b", broker="redis://127.0.0.1:6379/11", set_as_current=False)
    install(first)
    assert extension_for(first) is not extension_for(second)
    assert installed(first) and not installed(second)


def test_a_producer_process_gets_no_publish_hook_of_ours() -> None:
    """Installing the extension in a process that is not a worker adds no ``before_task_publish``
    receiver, so publishing a plain task there costs what it costs without the package."""
    import subprocess
    import sys

    code = (
        "from celery import Celery\n"
        "from celery.signals import before_task_publish\n"
        "from celery_jobs_ext import GuardedTask, install\n"
        "app = Celery('producer', broker='memory://')\n"
        "install(app)\n"
        "@app.task(base=GuardedTask)\n"
        "def guarded(): pass\n"
        "app.loader.import_default_modules()\n"
        "print(len(before_task_publish.receivers))\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert output.strip() == "0"


def test_the_jobs_defaults_sit_behind_celerys_own_so_celerys_lookups_never_miss_them_first() -> None:
    """Celery reads a dozen settings per publish; a mapping in front of its defaults made each
    of those lookups raise and catch a ``KeyError`` first (about 4 µs a publish, plain tasks
    included). Both orders: configured before install, and install before configuration."""
    configured_first = Celery("configured-first", broker="memory://")
    configured_first.conf.task_serializer  # noqa: B018 - configures the app
    lazy = Celery("lazy", broker="memory://")
    for app in (configured_first, lazy):
        install(app)
        assert app.conf.jobs_timeout is None or app.conf.jobs_timeout >= 0
        maps = app.conf.maps
        ours = [index for index, mapping in enumerate(maps) if "jobs_timeout" in mapping]
        assert ours == [len(maps) - 1], [sorted(mapping)[:3] for mapping in maps]
        assert app.conf.task_serializer == "json"
