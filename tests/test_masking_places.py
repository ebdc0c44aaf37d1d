"""Masking follows a task's data into structures and places beyond plain strings and dicts."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
from collections import namedtuple
from dataclasses import dataclass, field
from typing import NamedTuple

import pytest

from celery_jobs_ext.masking import MaskingFilter, mask, mask_exception, mask_repr, mask_text

SECRET = "s3cr3t-Pa55w0rd-value"


def test_header_list_of_pairs_hides_the_value_beside_a_secret_name() -> None:
    headers = [("Accept", "application/json"), ("Authorization", "Digest abc"), ("X-Api-Key", SECRET)]

    assert mask(headers) == [
        ("Accept", "application/json"),
        ("Authorization", "***TOKEN***"),
        ("X-Api-Key", "***API_KEY***"),
    ]


def test_asgi_bytes_header_pairs_hide_the_value_and_stay_bytes() -> None:
    scope_headers = [(b"host", b"api.example.com"), (b"authorization", b"Bearer " + SECRET.encode())]

    masked = mask(scope_headers)

    assert masked[0] == (b"host", b"api.example.com")
    assert masked[1][0] == b"authorization"
    assert SECRET.encode() not in masked[1][1]
    assert isinstance(masked[1][1], bytes)


def test_pair_lists_are_masked_too() -> None:
    assert mask([["password", SECRET], ["user", "bob"]]) == [["password", "***PASSWORD***"], ["user", "bob"]]


def test_namedtuple_fields_are_keys() -> None:
    Credentials = namedtuple("Credentials", ["user", "password"])

    masked = mask(Credentials("bob", SECRET))

    assert masked == Credentials("bob", "***PASSWORD***")
    assert type(masked) is Credentials


def test_typed_namedtuple_fields_are_keys() -> None:
    class Login(NamedTuple):
        user: str
        api_key: str

    assert mask(Login("bob", SECRET)) == Login("bob", "***API_KEY***")


def test_dataclass_fields_with_secret_names_are_hidden_in_its_repr() -> None:
    @dataclass
    class Settings:
        host: str
        secret_key: str
        tokens: list[str]
        hidden: str = field(default=SECRET, repr=False)

    masked = mask(Settings("db.internal", SECRET, ["a", "b"]))

    assert SECRET not in masked
    assert masked.endswith("Settings(host='db.internal', secret_key='***SECRET***', tokens=['a', 'b'])")


def test_dataclass_field_holding_a_container_is_hidden_whole() -> None:
    @dataclass
    class Client:
        name: str
        credentials: dict[str, str]

    text = mask_repr(Client("svc", {"user": "bob", "pw": SECRET}))

    assert SECRET not in text
    assert "credentials='***SECRET***'" in text


def test_dict_with_bytes_keys_hides_secret_values() -> None:
    assert mask({b"password": SECRET.encode(), b"user": b"bob"}) == {
        b"password": b"***PASSWORD***",
        b"user": b"bob",
    }


def test_exception_notes_are_masked() -> None:
    error = ValueError("connect failed")
    error.add_note(f"while connecting with password={SECRET}")

    mask_exception(error)

    assert error.__notes__ == ["while connecting with password=***PASSWORD***"]


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup is 3.11+")
def test_exception_group_members_are_masked() -> None:
    inner = RuntimeError(f"redis://:{SECRET}@cache:6379/0 refused")
    nested = ExceptionGroup("inner", [KeyError(f"token={SECRET}")])  # noqa: F821
    group = ExceptionGroup("batch failed", [inner, nested])  # noqa: F821

    mask_exception(group)

    assert SECRET not in str(inner)
    assert SECRET not in repr(nested.exceptions[0])


def test_called_process_error_command_line_is_masked_as_a_command() -> None:
    error = subprocess.CalledProcessError(1, ["mysql", "-u", "root", f"-p{SECRET}", "db"], b"", b"denied")

    mask_exception(error)

    assert SECRET not in str(error)
    assert SECRET not in repr(error.cmd)
    assert error.cmd == ["mysql", "-u", "root", "-p***PASSWORD***", "db"]


def test_called_process_error_with_a_string_command_is_masked() -> None:
    error = subprocess.CalledProcessError(2, f"curl -u deploy:{SECRET} https://x.example")

    mask_exception(error)

    assert SECRET not in str(error)


def test_argument_lists_in_task_arguments_are_masked_as_command_lines() -> None:
    assert mask({"argv": ["sshpass", "-p", SECRET, "ssh", "host"]}) == {
        "argv": ["sshpass", "-p", "***PASSWORD***", "ssh", "host"]
    }


def _record_with_extra(extra: dict[str, object]) -> logging.LogRecord:
    logger = logging.getLogger("test.masking.extra")
    return logger.makeRecord(logger.name, logging.INFO, __file__, 1, "login attempt", None, None, extra=extra)


def test_logging_extra_fields_are_masked_by_name_and_content() -> None:
    record = _record_with_extra(
        {
            "password": SECRET,
            "dsn": f"postgres://app:{SECRET}@db/app",
            "headers": {"Cookie": SECRET},
            "user": "bob",
        }
    )

    MaskingFilter().filter(record)

    assert record.password == "***PASSWORD***"  # type: ignore[attr-defined]
    assert record.dsn == "postgres://app:***PASSWORD***@db/app"  # type: ignore[attr-defined]
    assert record.headers == {"Cookie": "***TOKEN***"}  # type: ignore[attr-defined]
    assert record.user == "bob"  # type: ignore[attr-defined]


def test_json_handler_output_holds_no_secret_from_extra_fields() -> None:
    stream = io.StringIO()

    class JsonFormatter(logging.Formatter):
        def format(self, record: logging.LogRecord) -> str:
            return json.dumps({"msg": record.getMessage(), "token": getattr(record, "api_token", None)})

    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("test.masking.json")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("refresh", extra={"api_token": SECRET})
    finally:
        logger.removeHandler(handler)

    assert SECRET not in stream.getvalue()
    assert "***TOKEN***" in stream.getvalue()


def test_logging_extra_objects_are_left_for_their_handlers() -> None:
    marker = object()
    record = _record_with_extra({"request": marker, "attempt": 3})

    MaskingFilter().filter(record)

    assert record.request is marker  # type: ignore[attr-defined]
    assert record.attempt == 3  # type: ignore[attr-defined]


# -- red team 2026-12-04: (name, value) pairs in text, name/value records, exception attributes ----

SECRET_VALUE = "Zq8vLk3Wm2Xp9R"


@pytest.mark.parametrize(
    "text",
    [
        f"[('password', '{SECRET_VALUE}')]",
        f'("db_password", "{SECRET_VALUE}")',
        f"headers [('Authorization', 'Token {SECRET_VALUE}')]",
        f"[{{'name': 'DB_PASSWORD', 'value': '{SECRET_VALUE}'}}]",
        f"{{'ParameterKey': 'DbPassword', 'ParameterValue': '{SECRET_VALUE}'}}",
        f"env:\n- name: API_TOKEN\n  value: {SECRET_VALUE}\n",
        f"define('DB_PASSWORD', '{SECRET_VALUE}');",
        f"os.environ['API_KEY'] = '{SECRET_VALUE}'",
        f"config.set('auth', 'password', '{SECRET_VALUE}')",
    ],
)
def test_name_value_pairs_in_text_hide_the_value(text: str) -> None:
    assert SECRET_VALUE not in mask_text(text)


@pytest.mark.parametrize(
    "text", ["fields = ['password', 'email']", "kwargs.get('password', '')", "getattr(self, 'token', None)"]
)
def test_a_secret_name_beside_another_name_or_nothing_is_kept(text: str) -> None:
    assert mask_text(text) == text


@pytest.mark.parametrize(
    "value",
    [
        [("Api Key", SECRET_VALUE)],
        [{"name": "DB_PASSWORD", "value": SECRET_VALUE}],
        {"ParameterKey": "DbPassword", "ParameterValue": SECRET_VALUE},
        {"Name": "STRIPE_SECRET", "Value": SECRET_VALUE, "Type": "SecureString"},
    ],
)
def test_name_value_records_and_spaced_names_hide_the_value(value: object) -> None:
    assert SECRET_VALUE not in repr(mask(value))


def test_a_record_whose_name_is_not_secret_keeps_its_value() -> None:
    record = {"name": "LOG_LEVEL", "value": "DEBUG"}
    assert mask(record) == record


class _AuthError(Exception):
    def __init__(self, user: str, password: str) -> None:
        super().__init__("auth failed")
        self.user = user
        self.password = password

    def __str__(self) -> str:
        return f"auth failed for {self.user}:{self.password}"


def test_an_exception_attribute_with_a_secret_name_is_masked_by_name() -> None:
    error = mask_exception(_AuthError("alice", SECRET_VALUE))
    assert SECRET_VALUE not in str(error)
    assert "alice" in str(error)


def test_an_exception_passed_to_another_is_masked_too() -> None:
    error = mask_exception(RuntimeError(ValueError(f"password={SECRET_VALUE}")))
    assert SECRET_VALUE not in str(error)


def test_oserror_filename_and_called_process_error_stderr_are_masked() -> None:
    os_error = mask_exception(OSError(13, "denied", f"/tmp/x?token={SECRET_VALUE}"))
    assert SECRET_VALUE not in str(os_error)
    failed = subprocess.CalledProcessError(
        1, ["curl", "x"], stderr=f"auth failed: token {SECRET_VALUE} rejected".encode()
    )
    mask_exception(failed)
    assert SECRET_VALUE.encode() not in failed.stderr


def test_log_arguments_given_as_a_mapping_are_masked_by_name() -> None:
    record = logging.makeLogRecord({"msg": "%(user)s:%(pw)s", "args": {"user": "alice", "pw": SECRET_VALUE}})
    MaskingFilter().filter(record)
    assert record.getMessage() == "alice:***PASSWORD***"
