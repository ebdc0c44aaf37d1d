"""Passwords that SQL statements take by position, not under a key (red-team round 2).

``CREATE USER 'u'@'%' IDENTIFIED BY 'S'``, ``IDENTIFIED WITH mysql_native_password BY 'S'``,
Oracle's ``IDENTIFIED BY S`` unquoted, PostgreSQL's ``WITH [ENCRYPTED] PASSWORD 'S'`` and
``ALTER ROLE r PASSWORD 'S'``, MySQL's ``= PASSWORD('S')``. The same shape in a log line
(``using password 'S' from command line``) is a password too. ``PASSWORD = 'S'`` (SQL Server)
is a key and its value, which the key rules mask.
"""

from __future__ import annotations

import re

from celery_jobs_ext.masking.engine import Rule, lowercase_rule
from celery_jobs_ext.masking.keys import PASSWORD, hides_nothing

_QUOTED = (  # quoted again (\'S\', a repr or JSON of the statement), then quoted once
    r"\\'(?P<escsingle>[^'\\\n]{1,1024})\\'"
    r'|\\"(?P<escdouble>[^"\\\n]{1,1024})\\"'
    r"|'(?P<single>(?:[^'\\\n]|''|\\.){1,1024})'"
    r'|"(?P<double>(?:[^"\\\n]|\\.){1,1024})"'
)
# Written lowercase: runs on the lowercased text.
_IDENTIFIED = (
    r"identified(?<![\w-]identified)(?:[ \t]+with[ \t]+[a-z0-9_]{1,64})?[ \t]+by[ \t]+"
    rf"(?:{_QUOTED}|(?P<bare>(?!password\b|values\b)[^\s;'\"]{{1,256}}))"
)
_PASSWORD_LITERAL = rf"password(?<![\w-]password)(?:[ \t]*\([ \t]*|[ \t]+)(?:{_QUOTED})"


def _replace(text: str, match: re.Match[str]) -> tuple[str, int] | None:
    group = match.lastgroup or "bare"
    start, end = match.start(group), match.end(group)
    if hides_nothing(text[start:end], PASSWORD):
        return None
    return text[match.start() : start] + PASSWORD, end


def sql_rules() -> tuple[Rule, ...]:
    return (
        lowercase_rule("sql-identified-by", frozenset({"identified"}), _IDENTIFIED, _replace),
        lowercase_rule("sql-password-literal", frozenset({"password"}), _PASSWORD_LITERAL, _replace),
    )
