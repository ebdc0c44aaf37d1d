"""Malformed shell settings raise ImproperlyConfigured naming the setting, in config and in calls."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from celery import Celery

from celery_jobs_ext import ConfigCache
from celery_jobs_ext.errors import ImproperlyConfigured
from celery_jobs_ext.shell import DEFAULT_SEARCH_PATH, validate_command

MALFORMED_DENIED_ARGUMENTS = [
    ["-x"],
    "ls=-x",
    {"ls": "-x"},
    {"ls": [1]},
    {"ls": [""]},
    {"": ["-x"]},
    {3: ["-x"]},
    {"ls": None},
]


@pytest.mark.parametrize("value", MALFORMED_DENIED_ARGUMENTS)
def test_malformed_denied_arguments_setting_stops_the_config_naming_it(
    make_app: Callable[..., Celery], value: object
) -> None:
    with pytest.raises(ImproperlyConfigured, match="jobs_shell_denied_arguments"):
        ConfigCache.get(make_app(jobs_shell_denied_arguments=value))


@pytest.mark.parametrize("value", MALFORMED_DENIED_ARGUMENTS)
def test_malformed_denied_arguments_given_to_validate_command_names_the_setting(value: object) -> None:
    with pytest.raises(ImproperlyConfigured, match="jobs_shell_denied_arguments"):
        validate_command("ls", ["ls"], denied_arguments=value, search_path=DEFAULT_SEARCH_PATH)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [["ls", 3], "ls", ["ls", "'x"], ["-x"], [""], ["* ls"]])
def test_malformed_allowed_commands_setting_stops_the_config_naming_it(
    make_app: Callable[..., Celery], value: object
) -> None:
    with pytest.raises(ImproperlyConfigured, match="jobs_allowed_shell_commands"):
        ConfigCache.get(make_app(jobs_allowed_shell_commands=value))


@pytest.mark.parametrize("value", ["", "bin:/usr/bin", 3])
def test_malformed_search_path_given_to_validate_command_names_the_setting(value: object) -> None:
    with pytest.raises(ImproperlyConfigured, match="jobs_shell_path"):
        validate_command("ls", ["ls"], denied_arguments={}, search_path=value)  # type: ignore[arg-type]


def test_the_new_settings_have_their_documented_defaults(make_app: Callable[..., Celery]) -> None:
    config = ConfigCache.get(make_app())
    assert config.allowed_shell_commands == ()
    assert config.shell_timeout == 300.0
    assert config.shell_allowed_env == ()
