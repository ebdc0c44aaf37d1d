"""Sudoers-style argument patterns in jobs_allowed_shell_commands, and the start-up advice."""

from __future__ import annotations

import logging
import shlex
from collections.abc import Callable
from pathlib import Path

import pytest
from celery import Celery

from celery_jobs_ext.errors import ShellCommandNotAllowed
from celery_jobs_ext.shell import shell_task, validate_command
from celery_jobs_ext.shell.advice import startup_warnings
from tests.harness import in_process_worker
from tests.shell.helpers import make_programs

PROGRAMS = [
    "git", "du", "grep", "curl", "sqlite3", "sed", "awk", "journalctl", "echo", "python3", "tar",
    "make", "ssh",
]  # fmt: skip


@pytest.fixture
def search_path(tmp_path: Path) -> str:
    return str(make_programs(tmp_path / "bin", PROGRAMS))


def allowed_argv(command: str, allowed: list[str], search_path: str) -> list[str]:
    return validate_command(command, allowed, denied_arguments={}, search_path=search_path)[1:]


ACCEPTED = [
    ("git -C /srv/repo status", "git -C /srv/repo status"),
    ("du -sh /srv/*", "du -sh /srv/data"),
    ("grep -E * /var/log/app/*.log", "grep -E 'ERROR|WARN' /var/log/app/web.log"),
    ("journalctl -u app --since=* --no-pager", "journalctl -u app --since=-1h --no-pager"),
    ("echo ...", "echo a b c"),
    ("echo ...", "echo"),
    ("curl -fsS -o /srv/out/* https://example.com/*", "curl -fsS -o /srv/out/page https://example.com/page"),
    ("tar -cf /srv/backup/*.tar /srv/data", "tar -cf /srv/backup/today.tar /srv/data"),
]


@pytest.mark.parametrize(("pattern", "command"), ACCEPTED)
def test_command_matching_a_pattern_word_by_word_is_accepted(
    search_path: str, pattern: str, command: str
) -> None:
    assert allowed_argv(command, [pattern], search_path) == shlex.split(command)[1:]


REFUSED = [
    ("git -C /srv/repo status", "git -C /srv/repo status --porcelain"),
    ("git -C /srv/repo status", "git -C /tmp status"),
    ("git -C /srv/repo status", "git status"),
    ("du -sh /srv/*", "du -sh /srv/a/b"),
    ("du -sh /srv/*", "du -sh /srv/.env"),
    ("du -sh /srv/*", "du -sh /srv/"),
    ("grep -E * /var/log/app/*.log", "grep -E x /var/log/app/.log"),
    ("du -sh /srv/*", "du -sh /srv/.."),
    ("du -sh /srv/*", "du -sh /srv/../etc"),
    ("du -sh /srv/*", "du -sh --files0-from=/etc/x"),
    ("grep -E * /var/log/app/*.log", "grep -E -f/etc/passwd /var/log/app/web.log"),
    ("grep -E * /var/log/app/*.log", "grep -E --file=/etc/passwd /var/log/app/web.log"),
    ("grep -E * /var/log/app/*.log", "grep -E x /var/log/app/../../../etc/passwd.log"),
    ("grep -E * /var/log/app/*.log", "grep -E x /var/log/app/web.log /etc/shadow"),
    # "..." takes options too, judged by the program's rules as for a bare entry
    ("git -C /srv/repo ...", "git -C /srv/repo -c core.pager=sh log"),
    ("curl -fsS -o /srv/out/* https://example.com/*", "curl -fsS -o /etc/x https://example.com/page"),
    ("curl -fsS https://example.com/*", "curl -fsS https://example.com/a -o /tmp/x"),
]


@pytest.mark.parametrize(("pattern", "command"), REFUSED)
def test_command_not_matching_its_pattern_is_refused(search_path: str, pattern: str, command: str) -> None:
    with pytest.raises(ShellCommandNotAllowed):
        allowed_argv(command, [pattern], search_path)


def test_refusal_names_the_entries_of_the_program(search_path: str) -> None:
    with pytest.raises(ShellCommandNotAllowed, match=r"match none of its entries.*git -C /srv/repo status"):
        allowed_argv("git log", ["git -C /srv/repo status", "echo"], search_path)


@pytest.mark.parametrize(
    ("pattern", "command"),
    [
        ("sqlite3 /srv/app.db *", "sqlite3 /srv/app.db '.shell touch /tmp/x'"),
        ("sed * /srv/notes.txt", "sed 'e touch /tmp/x' /srv/notes.txt"),
        ("awk * /srv/data.txt", "awk 'BEGIN {system(\"touch /tmp/x\")}' /srv/data.txt"),
    ],
)
def test_wildcard_words_still_go_through_the_program_rules(
    search_path: str, pattern: str, command: str
) -> None:
    with pytest.raises(ShellCommandNotAllowed):
        allowed_argv(command, [pattern], search_path)


def test_a_bare_name_beside_a_pattern_keeps_the_program_rules(search_path: str) -> None:
    with pytest.raises(ShellCommandNotAllowed, match="matches '-o'"):
        allowed_argv("curl -o /tmp/x https://a", ["curl", "curl -o /srv/x https://a"], search_path)
    assert allowed_argv("curl -o /srv/x https://a", ["curl", "curl -o /srv/x https://a"], search_path)


def test_bare_code_running_entries_are_named_with_how_and_a_suggested_pattern() -> None:
    warnings = startup_warnings(["git", "python3", "echo", "du -sh /srv/*", "sqlite3"])
    assert len(warnings) == 3
    assert (
        "'git' by bare name" in warnings[0]
        and "hooks" in warnings[0]
        and '"git -C /srv/repo status"' in warnings[0]
    )
    assert "'python3'" in warnings[1] and "script" in warnings[1]
    assert "'sqlite3'" in warnings[2]


def test_worker_logs_the_advice_once_at_start_up(
    make_app: Callable[..., Celery], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app(jobs_allowed_shell_commands=["git", "echo hello"])
    shell = shell_task(app)
    with caplog.at_level(logging.WARNING, logger="celery_jobs_ext.shell"), in_process_worker(app):
        assert shell.delay("echo hello").get(timeout=20)["stdout"] == "hello\n"
        with pytest.raises(ShellCommandNotAllowed):
            shell.delay("echo goodbye")
    advice = [record.getMessage() for record in caplog.records if "by bare name" in record.getMessage()]
    assert len(advice) == 1 and "'git'" in advice[0]


@pytest.mark.parametrize(
    ("pattern", "command"),
    [
        ("make CC=gcc all", "make CC=gcc all"),
        ("sqlite3 /srv/app.db '.import /srv/in.csv t'", "sqlite3 /srv/app.db '.import /srv/in.csv t'"),
        ("git -C /srv/repo config --get user.name", "git -C /srv/repo config --get user.name"),
        ("ssh -o ProxyJump=bastion host uptime", "ssh -o ProxyJump=bastion host uptime"),
    ],
)
def test_words_a_pattern_spells_out_are_not_refused_by_the_program_rules(
    search_path: str, pattern: str, command: str
) -> None:
    assert allowed_argv(command, [pattern], search_path) == shlex.split(command)[1:]


def test_a_wildcard_after_a_pinned_sqlite_cmd_is_still_checked(search_path: str) -> None:
    with pytest.raises(ShellCommandNotAllowed, match="uses 'attach'"):
        allowed_argv("sqlite3 -cmd \"attach 'x' as y\" /srv/db", ["sqlite3 -cmd * /srv/db"], search_path)
