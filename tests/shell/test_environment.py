"""env by allow list: only safe names plus jobs_shell_allowed_env, in the producer and the worker."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from celery import Celery

from celery_jobs_ext import ConfigCache
from celery_jobs_ext.errors import ImproperlyConfigured, ShellCommandNotAllowed
from celery_jobs_ext.shell import check_environment, run_command, shell_task
from tests.harness import in_process_worker

REFUSED = [
    # a command the program runs
    "GIT_SEQUENCE_EDITOR", "GIT_EDITOR", "GIT_SSH_COMMAND", "EDITOR", "VISUAL", "PAGER",
    "MANPAGER", "LESSOPEN", "BROWSER", "SSH_ASKPASS", "RSYNC_RSH",
    # a protocol or behaviour switch that enables running programs
    "GIT_ALLOW_PROTOCOL", "GIT_PROTOCOL_FROM_USER", "GIT_DIR", "GIT_WORK_TREE",
    # a place to load configuration from
    "HOME", "XDG_CONFIG_HOME", "XDG_DATA_HOME", "VIMINIT", "EXINIT", "MYVIMRC", "ZIPOPT",
    "UNZIP", "WGETRC", "CURL_HOME", "PSQLRC", "MYSQL_HOME", "SQLITE_HISTORY", "TAR_OPTIONS",
    "GNUPGHOME", "TERMINFO", "MAGIC",
    # code loaded into the program
    "LD_PRELOAD", "LD_LIBRARY_PATH", "GCONV_PATH", "PYTHONPATH", "PYTHONSTARTUP", "PERL5OPT",
    "RUBYOPT", "NODE_OPTIONS", "BASH_ENV", "ENV", "BASH_FUNC_ls%%", "PATH", "IFS",
]  # fmt: skip


@pytest.mark.parametrize("name", REFUSED)
def test_variable_outside_the_allow_list_is_refused(name: str) -> None:
    with pytest.raises(ShellCommandNotAllowed, match=r"not allowed|must match|cannot be set"):
        check_environment({name: "/tmp/x"})


@pytest.mark.parametrize(
    "env",
    [{"LANG": "C.UTF-8"}, {"LC_ALL": "en_US.UTF-8"}, {"LC_TIME": "C"}, {"TZ": "Europe/Paris"},
     {"TERM": "xterm-256color"}, {"NO_COLOR": "1"}, {"COLUMNS": "120"}, {"LANGUAGE": "en_US:en"}],
)  # fmt: skip
def test_safe_default_variables_pass(env: dict[str, str]) -> None:
    assert check_environment(env) == env


@pytest.mark.parametrize(
    "env",
    [
        {"LC_ALL": "/tmp/locale"},
        {"LANG": "../x"},
        {"TZ": "/etc/x"},
        {"TZ": ":/tmp/zone"},
        {"TZ": "../../x"},
        {"TERM": "../../tmp/x"},
        {"COLUMNS": "80; x"},
    ],
)
def test_locale_and_zone_values_naming_files_are_refused(env: dict[str, str]) -> None:
    with pytest.raises(ShellCommandNotAllowed):
        check_environment(env)


@pytest.mark.parametrize("env", [["LANG"], "LANG=C", {"LANG": 1}, {1: "x"}])
def test_malformed_env_is_refused(env: object) -> None:
    with pytest.raises(ShellCommandNotAllowed, match="env must"):
        check_environment(env)


def without_tmpdir(output: object) -> list[str]:
    """The sorted lines of printenv, less TMPDIR (the kernel sandbox's private directory)."""
    return sorted(line for line in str(output).splitlines() if not line.startswith("TMPDIR=/"))


def test_run_command_gives_the_program_only_path_and_allowed_variables() -> None:
    result = run_command(["printenv"], env={"LANG": "C", "APP_MODE": "x"}, search_path="/usr/bin:/bin",
                         allowed_env=["APP_*"])  # fmt: skip
    assert without_tmpdir(result["stdout"]) == ["APP_MODE=x", "LANG=C", "PATH=/usr/bin:/bin"]


def test_producer_refuses_a_refused_variable_before_publishing(make_app: Callable[..., Celery]) -> None:
    app = make_app(jobs_allowed_shell_commands=["printenv"])
    with pytest.raises(ShellCommandNotAllowed, match="GIT_SEQUENCE_EDITOR is not allowed"):
        shell_task(app).delay("printenv", env={"GIT_SEQUENCE_EDITOR": "touch /tmp/x"})
    with pytest.raises(ShellCommandNotAllowed, match="HOME is not allowed"):
        shell_task(app).apply_async(kwargs={"command": "printenv", "env": {"HOME": "/tmp"}})


def test_worker_refuses_a_hand_sent_variable_and_passes_configured_ones(
    make_app: Callable[..., Celery], tmp_path: Path
) -> None:
    app = make_app(jobs_allowed_shell_commands=["printenv"], jobs_shell_allowed_env=["APP_*", "DEPLOY_ENV"])
    shell = shell_task(app)
    with in_process_worker(app):
        refused = app.send_task(
            "jobs.shell", args=["printenv"], kwargs={"env": {"XDG_CONFIG_HOME": str(tmp_path)}}
        )
        with pytest.raises(ShellCommandNotAllowed, match="XDG_CONFIG_HOME is not allowed"):
            refused.get(timeout=20)
        output = shell.delay("printenv", env={"APP_COLOUR": "blue", "DEPLOY_ENV": "prod", "TZ": "UTC"})
        lines = without_tmpdir(output.get(timeout=20)["stdout"])
    assert lines == ["APP_COLOUR=blue", "DEPLOY_ENV=prod", f"PATH={app.conf.jobs_shell_path}", "TZ=UTC"]


@pytest.mark.parametrize(
    "value", ["APP", ["LD_PRELOAD"], ["PATH"], ["*"], ["BASH_FUNC_*"], ["A-B"], [""], [3]]
)
def test_malformed_allowed_env_setting_is_improperly_configured(
    make_app: Callable[..., Celery], value: object
) -> None:
    app = make_app(jobs_shell_allowed_env=value)
    with pytest.raises(ImproperlyConfigured, match="jobs_shell_allowed_env"):
        ConfigCache.get(app)
