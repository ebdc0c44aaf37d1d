"""URL credentials: the password in ``scheme://user:password@host`` (also JSON-escaped and
percent-encoded inside another URL) and an OAuth callback's ``code=``.

The password ends at the ``@`` before the host, so one holding ``#``, ``/`` or ``@`` is
masked whole.
"""

from __future__ import annotations

import re
from typing import Final

from celery_jobs_ext.masking.engine import char_classes, literal_rule, lowercase_rule, span
from celery_jobs_ext.masking.keys import PASSWORD, TOKEN, is_placeholder

#: ``scheme://user:password@host``, also JSON-escaped (``:\/\/``). The password may hold ``:``,
#: ``@``, ``/``, ``#`` and ``?`` (the last ``@`` before a host ends it); the user may not.
_URL_USERINFO = (
    r"(?P<prefix>:(?:\\{0,7}/){2}(?=(?P<user>[^\s:/@?#'\"\\]{0,256}))(?P=user):)"
    r"(?P<password>(?:[^\s'\"<>`/]|/(?!/|\\/)){1,256})"
    r"@(?=[\w.-]{1,253}(?::\d{1,5})?(?:[/?#\\\s'\"`),;]|$)|\[)"
)
#: The same URL percent-encoded inside another URL's query: ``%3A%2F%2Fuser%3Apassword%40host``.
#: Read whole (no backtracking) and split in Python: %3A separates user and password, %40 ends it.
_ENCODED_URL_USERINFO = r"%3a%2f%2f(?P<rest>[^\s&#'\"]{0,512})"
_HOST = re.compile(r"[\w.-]{1,253}(?::\d{1,5})?(?:[/?#\\\s'\"`),;]|$)|\[[0-9a-fA-F:.]{2,45}\]")
_PORT_THEN_PATH = re.compile(r"\d{1,5}(?:[/?#]|$)")


def _replace_url_password(text: str, match: re.Match[str]) -> tuple[str, int] | None:
    # The pattern ends at the last '@' (before any "//") that a host follows, so a password
    # holding '@', '#' or '/' goes whole; a port and path before an '@' in the path is not one.
    password = span(text, match, "password")
    if _PORT_THEN_PATH.match(password) or password.startswith("***") or is_placeholder(password):
        return None
    return span(text, match, "prefix") + PASSWORD + "@", match.end()


def _replace_encoded_url_password(text: str, match: re.Match[str]) -> tuple[str, int] | int:
    start, end = match.start("rest"), match.end("rest")
    rest = text[start:end].lower()
    slash, colon, at = rest.find("%2f"), rest.find("%3a"), rest.rfind("%40")
    if colon < 0 or at < colon or (0 <= slash < colon) or "%3a%2f%2f" in rest[:at]:
        return end
    password = text[start + colon + 3 : start + at]
    if not password or password.startswith("***") or is_placeholder(password):
        return end
    return text[match.start() : start + colon + 3] + PASSWORD, start + at


#: An OAuth authorization code in a callback's query or fragment: ``?code=…&state=…``.
_OAUTH_CODE = r"code=(?<=[?&#]code=)(?P<value>[^&#\s'\"<>]{1,2048})"
_MIN_OAUTH_CODE: Final = 10


def _replace_oauth_code(text: str, match: re.Match[str]) -> tuple[str, int] | None:
    value = span(text, match, "value")
    if (
        len(value) < _MIN_OAUTH_CODE
        or char_classes(value) < 2
        or is_placeholder(value)
        or value.startswith("***")
    ):
        return None  # "?code=200", "?code=ABC": status codes and short ids
    return text[match.start() : match.start("value")] + TOKEN, match.end()


URL_RULES: Final = (
    literal_rule("url-password", (":/", ":\\"), _URL_USERINFO, _replace_url_password),
    lowercase_rule(
        "url-password-encoded", frozenset({"%3a%2f%2f"}), _ENCODED_URL_USERINFO, _replace_encoded_url_password
    ),
    lowercase_rule("oauth-code", frozenset({"code="}), _OAUTH_CODE, _replace_oauth_code),
)
