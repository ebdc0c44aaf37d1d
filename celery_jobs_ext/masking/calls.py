"""Passwords passed by position to the calls that take them (red-team round 2).

``mysqli_connect('db', 'app', 'S')``, ``new PDO($dsn, 'app', 'S')``,
``DriverManager.getConnection(url, "app", "S")``, ``pymysql.connect('db', 'app', 'S')``,
``HTTPBasicAuth('bob', 'S')``, ``smtp.login(user, 'S')``, ``new NetworkCredential("bob", "S")``,
``jwt.encode(payload, 'S')``, ``hmac.new(b'S', …)``, ``ds.setPassword("S")``,
``create_user('bob', 'b@x', 'S')``, paramiko's ``connect('h', 22, 'u', 'S')``: no key names the
value, the call's signature does. Only a quoted literal in that position is masked (a variable
is code, not a secret).
"""

from __future__ import annotations

import re
from typing import Final

from celery_jobs_ext.masking.engine import Replace, Rule, lowercase_rule
from celery_jobs_ext.masking.keys import PASSWORD, SECRET, hides_nothing

#: Call name (lowercase, as written before its "(") -> the password argument's index, the mask.
_CALLS: Final = {
    "mysqli_connect": (2, PASSWORD),
    "mysql_connect": (2, PASSWORD),
    "new pdo": (2, PASSWORD),
    "getconnection": (2, PASSWORD),
    "pymysql.connect": (2, PASSWORD),
    "mysqldb.connect": (2, PASSWORD),
    "create_user": (2, PASSWORD),
    "create_superuser": (2, PASSWORD),
    "httpbasicauth": (1, PASSWORD),
    "httpdigestauth": (1, PASSWORD),
    "networkcredential": (1, PASSWORD),
    "passwordauthentication": (1, PASSWORD),
    ".login": (1, PASSWORD),
    "jwt.encode": (1, SECRET),
    "hmac.new": (0, SECRET),
    "setpassword": (0, PASSWORD),
    ".connect": (3, PASSWORD),  # paramiko: connect(hostname, port, username, password)
}
#: One argument: a quoted literal (the password's only form masked), or anything else up to the
#: next "," or ")" at the same level; a nested call or container ends the reading.
_ARGUMENT = re.compile(
    r"""[ \t]*(?:[bru]{0,2}\\(?P<equote>["'])(?P<eliteral>[^"'\\\n]{1,1024})\\(?P=equote)"""  # quoted again
    r"""|[bru]{0,2}(?P<quote>["'])(?P<literal>(?:\\.|(?!(?P=quote))[^\\\n]){1,1024})(?P=quote)"""
    r"""|(?P<other>[^,()\[\]{}'"\n]{1,256}))[ \t]*(?P<end>[,)]|\.)"""
)


def _replacer(index: int, label: str) -> Replace:
    def replace(text: str, match: re.Match[str]) -> tuple[str, int] | None:
        position = match.end()
        arguments: list[re.Match[str]] = []
        while len(arguments) <= index:
            argument = _ARGUMENT.match(text, position)
            if argument is None:
                return None
            arguments.append(argument)
            position = argument.end()
            if argument.group("end") != "," and len(arguments) <= index:
                return None  # fewer arguments than the signature's password
        found = arguments[index]
        group = "literal" if found.group("literal") is not None else "eliteral"
        if found.group(group) is None:
            return None
        if index == 3 and not (arguments[1].group("other") or "").strip().isdigit():
            return None  # .connect(…) is paramiko's only with a port second
        if hides_nothing(found.group(group), label):
            return None
        return text[match.start() : found.start(group)] + label, found.end(group)

    return replace


def _pattern(name: str) -> str:
    literal = re.escape(name).replace(r"\ ", r"[ \t]+")
    # the boundary sits after the literal, in a lookbehind, so the literal leads the pattern
    boundary = "" if name.startswith((".", "new ")) else rf"(?<![a-z0-9_]{re.escape(name)})"
    return rf"{literal}{boundary}[ \t]*\("


def call_rules() -> tuple[Rule, ...]:
    return tuple(
        lowercase_rule(
            f"call:{name}", frozenset({name.split(" ")[-1]}), _pattern(name), _replacer(index, label)
        )
        for name, (index, label) in _CALLS.items()
    )
