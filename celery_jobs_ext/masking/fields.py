"""Where a value ends: the field delimiters of the syntax around it.

A password may hold ``&``, ``;``, ``:``, brackets or quotes, so each ends a bare value only where
the syntax around says so (see :func:`bare_value_end`); a value longer than the rules' bounded
patterns runs on to its delimiter (:func:`long_value_end`).
"""

from __future__ import annotations

import re
import threading
from typing import Final
from urllib.parse import unquote

from celery_jobs_ext.masking.keys import hides_nothing

#: The longest value the patterns read (a longer one runs on to its delimiter).
MAX_VALUE: Final = 2048

#: What may end a bare value early, found in one search: the next parameter (``&name=``), a
#: field separator (``;`` or ``,`` before a space or the end), a closing quote (one followed by a
#: delimiter), an escaped newline or quote in a repr, an end tag, and brackets, which are counted
#: so that ``[abc]xyz`` stays whole while ``f(password=abc)`` keeps its ``)``. ``;`` or ``,``
#: before another ``name=`` ends the value only inside a list of that separator (see
#: :func:`list_separator`): ``Server=db;Password=pa;ss;Timeout=3`` keeps ``;Timeout=3``, while
#: ``password=pa;ss=word9`` alone on its line is one value.
_FIELD_END_TEMPLATE = (
    r"\s"
    r"|&(?=[\w.\[\]%-]{{1,64}}=)"
    r"|;(?=[ \t]|$){semicolon}"
    r"|,(?=[ \t]|$){comma}"
    r"|[\"'`](?=[\s,;:)\]}}>]|$)"
    r"|\\[nrt\"']"
    r"|</"
    r"|[()\[\]{{}}]"
)
_FIELD_ENDS: Final = {
    separator: re.compile(
        _FIELD_END_TEMPLATE.format(
            semicolon=r"|;(?=[\w.-]{1,64}=)" if separator == ";" else "",
            comma=r"|,(?=[\w.-]{1,64}[=:])" if separator == "," else "",
        )
    )
    for separator in ("", ";", ",")
}
#: The character before a key that opens or continues a list, and the list's separator.
_LIST_SEPARATORS: Final = {";": ";", ",": ",", "(": ",", "[": ",", "{": ","}


def list_separator(text: str, key_start: int) -> str:
    """The separator of the list the key at ``key_start`` is in (``;``, ``,``), or ``""``."""
    return _LIST_SEPARATORS.get(text[key_start - 1 : key_start], "") if key_start else ""


_QUERY_END = re.compile(r"[&#]")
_NEXT_FIELD = re.compile(r"[ \t]*(?:[\w.-]{1,64}[=:]|\\[nr]|#|//)")
_OPENERS: Final = "([{"
#: After an unmatched closing bracket, these say it closes something around the value.
_AFTER_CLOSER: Final = frozenset(" \t\r\n,;.:'\"`)]}>")


def bare_value_end(
    text: str, start: int, end: int, query: bool = False, spaces: bool = False, separator: str = ""
) -> int:
    """Where the unquoted value starting at ``start`` really ends (at most at ``end``).

    A password may hold ``&``, ``;``, ``:``, brackets or quotes (``Tr0ub4dor&3x``, ``[abc]xyz``),
    so each is taken as the end of the value only where the syntax around says so. In a query
    string (``query``), ``&`` and ``#`` always end it: there a literal ``&`` is written ``%26``.
    With ``spaces`` (a YAML or header line, ``key: value``) spaces and tabs do not end it: the
    line, a field separator or the next ``name=`` does. ``separator`` is the list the value is
    in (:func:`list_separator`): that character before another ``name=`` ends it too.
    """
    if query:
        found = _QUERY_END.search(text, start, end)
        if found is not None:
            end = found.start()
    if end <= start:
        return start
    depth = 0
    for found in _FIELD_ENDS[separator].finditer(text, start, end):
        char = found.group()
        if char in _OPENERS:
            depth += 1
        elif char in ")]}":
            if depth:
                depth -= 1
                continue
            following = text[found.end() : found.end() + 1]
            if following and following not in _AFTER_CLOSER:
                continue
            return max(found.start(), start + 1)
        elif char.isspace():
            if spaces and char in " \t" and not _NEXT_FIELD.match(text, found.end()):
                continue
            return max(found.start(), start + 1) if spaces else found.start()
        else:
            return max(found.start(), start + 1)
    return end


_LONG_VALUE_ENDS: Final = {
    "v1": re.compile(r'\\"'),
    "v2": re.compile(r"\\'"),
    "v3": re.compile(r'"'),
    "v4": re.compile(r"'"),
    "v7": re.compile(r"`"),
    "v5": re.compile(r"[\"'\\\n]"),
    "v6": re.compile(r"[\s\"'<>]|\\[nrt\"']"),
}


def long_value_end(text: str, end: int, group: str) -> int:
    """Where a value longer than the patterns' bound really ends: one scan to its delimiter."""
    found = _LONG_VALUE_ENDS[group].search(text, end)
    return found.start() if found else len(text)


#: Where a value after an escaped separator ends: at an encoded delimiter (``%26`` is ``&``,
#: Gson writes ``&`` as ``\u0026``), a raw one, or a quote.
ESCAPED_SEPARATORS: Final = {
    "%": re.compile(r"%(?:2[026c7]|3b|0[ad])|[&#\s\"'<>]", re.IGNORECASE),
    "\\": re.compile(r"\\u00(?:2[026c7]|3b|0[ad])|\\[nrt\"']|[&\s\"'<>]", re.IGNORECASE),
}


def replace_escaped(
    text: str, start: int, value_start: int, label: str, value_end: re.Pattern[str]
) -> tuple[str, int] | int:
    found = value_end.search(text, value_start, value_start + MAX_VALUE)
    end = found.start() if found else min(len(text), value_start + MAX_VALUE)
    if end == value_start or hides_nothing(unquote(text[value_start:end]), label):
        return max(end, value_start)
    return text[start:value_start] + label, end


_TAB_FIELD_END = re.compile(r"[\t\r\n]|\\[nrt]|[\"'](?=[\s,\])}]|$)")
_COLUMN_NAME = re.compile(r"[a-z][a-z0-9_ ]{0,63}")


def replace_tab_separated(
    text: str, start: int, key_start: int, value_start: int, label: str
) -> tuple[str, int] | int | None:
    """``key<TAB>value`` (a TSV row, an export of settings): the value is the rest of its field.
    Only a key that starts a field; a lowercase word after it is a column name (a header)."""
    before = text[max(0, key_start - 2) : key_start]
    if key_start and not before[-1:].isspace() and before[-1:] not in ("'", '"') and before != "\\n":
        return None  # the key starts a field: after a line break, a space, a tab or a quote
    found = _TAB_FIELD_END.search(text, value_start, value_start + MAX_VALUE)
    end = found.start() if found else min(len(text), value_start + MAX_VALUE)
    value = text[value_start:end].rstrip()
    if not value or _COLUMN_NAME.fullmatch(value) or hides_nothing(value, label, structured=True):
        return None
    return text[start:value_start] + label, value_start + len(value)


# ODBC braced values (Password={P@ss w0rd;x}): the value ends at a run of an odd number of "}"
# ("}}" escapes one), followed by ";", whitespace, a quote or the end. A regex tried at each
# "key={" read up to 2 KB ahead every time: "pwd={a " x 1 MB cost 4.8 s. The first odd run after
# a position is the same for every position before it, so one forward scan per text (per
# thread) serves all keys in order, and each character is read once.
_BRACE_RUN = re.compile(r"\}+")
_BRACED_END_FOLLOWS: Final = frozenset(";'\" \t\r\n\f\v")


class _BracedScan(threading.local):
    def __init__(self) -> None:
        self.text: str | None = None
        self.origin = 0
        self.scanned = 0  # every "}" run in [origin, scanned) is even, unless ``found`` is set
        self.found: tuple[int, int] | None = None  # the first odd run at or after the origin

    def odd_run(self, text: str, start: int, limit: int) -> tuple[int, int] | None:
        """The first run of an odd number of "}" in ``text[start:]`` that starts before ``limit``."""
        if (
            text is not self.text
            or not self.origin <= start < self.scanned
            or (self.found is not None and self.found[0] < start)
        ):
            self.text, self.origin, self.scanned, self.found = text, start, start, None
        while self.found is None and self.scanned < limit:
            brace = text.find("}", self.scanned, limit)
            if brace < 0:
                self.scanned = limit
                break
            run_end = _BRACE_RUN.match(text, brace).end()  # type: ignore[union-attr]
            self.scanned = run_end
            if (run_end - brace) % 2:
                self.found = (brace, run_end)
        return self.found if self.found is not None and self.found[0] < limit else None


_BRACED_SCAN = _BracedScan()


def braced_value_end(text: str, value_start: int, limit: int) -> int | None:
    """The end of an ODBC ``{…}`` value opening at ``value_start``, or None if it is not one.

    Linear over a text's keys: see :class:`_BracedScan`.
    """
    run = _BRACED_SCAN.odd_run(text, value_start + 1, limit)
    if run is None or run[1] > limit:
        return None
    end = run[1]
    if end < len(text) and text[end] not in _BRACED_END_FOLLOWS:
        return None
    return end


# A placeholder or lookup with a default (red-team round 2): the default is the secret itself,
# written where the variable is unset. ``${DB_PASS:pw}`` (Spring), ``${X:-pw}`` and ``${X-pw}``
# (shell, Compose; not ``:?`` errors or ``:+`` alternatives), ``os.getenv('X', 'pw')``,
# ``os.environ.get(…)``, ``ENV.fetch(…)``, ``env('X', 'pw')``.
_SECRET_DEFAULT = re.compile(
    r"""\$\{[A-Za-z_][\w.-]{0,64}(?::-|:=|-|:(?![?+-]))(?P<braced>[^{}\n]{1,256})\}"""
    r"""|(?:[\w.]{0,64}\.)?(?:getenv|get|fetch|env)\([ \t]{0,4}(?P<quote>["'])[\w.-]{1,64}(?P=quote)"""
    r"""[ \t]{0,4},[ \t]{0,4}(?P<q2>["'])(?P<quoted>[^"'\n]{1,256})(?P=q2)[ \t]{0,4}\)"""
)


def secret_default(text: str, value_start: int, limit: int, label: str) -> tuple[int, int] | None:
    """The span of a default at ``value_start`` that could hide a secret, or None."""
    if text[value_start : value_start + 1] not in _DEFAULT_STARTS:
        return None
    found = _SECRET_DEFAULT.match(text, value_start, limit)
    if found is None:
        return None
    group = "braced" if found.group("braced") is not None else "quoted"
    if hides_nothing(found.group(group), label):
        return None
    return found.start(group), found.end(group)


_DEFAULT_STARTS: Final = frozenset("$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")


#: Cookie attributes (RFC 6265 and its drafts): they describe a cookie and hold no secret.
_COOKIE_ATTRIBUTES: Final = frozenset(
    {"path", "domain", "expires", "max-age", "samesite", "secure", "httponly", "priority", "partitioned"}
)
#: A preference's value: a short lowercase word, a small number, a path.
_PLAIN_COOKIE_VALUE = re.compile(r"[a-z]{0,12}|[0-9]{1,6}|/[\w/.-]{0,64}")


def cookies_hide_nothing(header: str) -> bool:
    """Whether every cookie of a Cookie or Set-Cookie value is a preference (``theme=dark``)."""
    for pair in header.split(";"):
        name, _, value = pair.strip().partition("=")
        if name.lower() in _COOKIE_ATTRIBUTES:
            continue
        if not _PLAIN_COOKIE_VALUE.fullmatch(value.strip()):
            return False
    return True
