"""A container written as text under a secret-named key: ``{'auth': ('bob', 'PW')}``.

``credentials: {'password': 'PW'}``, ``token: [a, b]``, ``{"secret": {"value": "PW"}}``: a
return value or an exception message in saferepr text. Read as a plain value, the key's value
ran to the first quote (``{'access_token``), swallowing the inner key so no inner rule fired and
the secret survived. Here the container is walked item by item, as far as it is balanced (or
to a bound), and every value in it that could hide something is masked; the keys and the
brackets stay, so the text keeps its shape.

The walk consumes what it read: the caller resumes after it, so nested or repeated containers
(``{'password': `` x 1 MB) are each read once, and the cost is linear in the text.
"""

from __future__ import annotations

import re
import threading
from typing import Final

from celery_jobs_ext.masking.keys import hides_nothing

#: One item of a container: a bracket, a quoted string (to its closing quote, or cut short), a
#: separator, or a bare run (``a:b`` and ``https://h`` hold a ``:`` that is not a separator).
_ITEM = re.compile(
    r"""
      (?P<open>[\[({])
    | (?P<close>[\])}])
    | [bru]{0,2}(?P<escaped>\\["'])  # a repr inside a repr: {\'password\': \'S\'}
      (?P<escapedbody>(?:(?!(?P=escaped))[^\n]){0,2048})(?P<escapedend>(?P=escaped))?
    | [bru]{0,2}(?P<quote>["'])(?P<quoted>(?:\\[\s\S]|(?!(?P=quote))[^\\\n]){0,2048})(?P<closed>(?P=quote))?
    | (?P<separator>[\s,;]+|=>|[=:](?![^\s"'\[({\])},;=]))
    | (?P<bare>(?:[^\s,;{}\[\]()'"=:]|:(?=[^\s"'\[({\])},;=]))+)
    """,
    re.VERBOSE,
)
_VALUE_KINDS: Final = frozenset({"quoted", "closed", "escapedbody", "escapedend", "bare"})
#: After an item: it names a key (``'password':``, ``host=``) or a callable (``Cfg(``).
_KEY_FOLLOWS = re.compile(r"[ \t]{0,16}(?:=>|[:=])")
_BARE_ARGUMENT = re.compile(r"\([ \t]*[A-Za-z_][\w.]*[ \t]*[,)]")
OPENERS: Final = frozenset("[({")
#: Keys inside a secret's container whose values describe it rather than being it.
_ORDINARY_KEYS: Final = frozenset(
    {
        "name",
        "type",
        "kind",
        "id",
        "username",
        "user",
        "scheme",
        "token_type",
        "scope",
        "format",
        "algorithm",
        "alg",
        "description",
        "host",
        "port",
        "expires_in",
        "expires_at",
        "secretname",
    }
)
_AFTER_CONTAINER: Final = frozenset(("", " ", "\t", "\n", "\r", ",", ";", "&", '"', "'", ")", "]", "}", "\\"))
#: Words that make a container code rather than data (``[get(u) for u in users]``, ``(yield)``).
_CODE_WORDS: Final = frozenset(
    {"for", "in", "if", "else", "yield", "await", "lambda", "not", "and", "or", "is", "async", "self"}
)


class _CodeSeen(threading.local):
    """Where the last walk of a text met code (or a value going on after its closing bracket): a
    later walk starting before there is inside the same code (``x=[x=[x=[… for``) and is not
    walked again, which keeps hostile text linear."""

    def __init__(self) -> None:
        self.text: str | None = None
        self.start = 0
        self.end = 0

    def inside(self, text: str, start: int) -> bool:
        return text is self.text and self.start <= start < self.end


_CODE_SEEN = _CodeSeen()


def mask_container(text: str, start: int, limit: int, label: str) -> tuple[str, int] | None:
    """The container opening at ``start``, its values masked with ``label``, and its end.

    Reads at most to ``limit``; an unbalanced container (a repr cut short) is masked that far.
    Returns the text unchanged (with its end) when nothing in it could hide a secret, and None
    when it is code (a call with a bare argument, a comprehension): the inner rules judge that.
    """
    if _CODE_SEEN.inside(text, start):
        return None
    pieces: list[str] = []
    depth = 0
    position = start
    changed = False
    key: str | None = None
    while position < limit:
        item = _ITEM.match(text, position, limit)
        if item is None:  # a stray character: keep it
            pieces.append(text[position])
            position += 1
            continue
        position = item.end()
        kind = item.lastgroup
        if kind == "open":
            depth += 1
        elif kind == "close":
            depth -= 1
        elif kind in _VALUE_KINDS:
            body = "escapedbody" if item.group("escaped") else "quoted" if item.group("quote") else None
            bare = body is None
            value = item.group(body or "bare")
            if bare and value in _CODE_WORDS:
                return _code(text, start, position)
            is_key = _KEY_FOLLOWS.match(text, position) is not None
            if text[position : position + 1] == "(":
                if bare and ("." in value or value[:1].islower() or _BARE_ARGUMENT.match(text, position)):
                    # get_pw(u), os.environ.get("X"): a call in code; Cfg(host='h') is a repr
                    return _code(text, start, position)
                pieces.append(item.group())
                continue
            under, key = key, (value.lower() if is_key else None)
            if under is not None and (under in _ORDINARY_KEYS or (bare and value.isdigit())):
                pass  # {name: db-creds, key: password}, "minLength": 8: not what the key hides
            elif not is_key and not hides_nothing(value, label):
                value_start, value_end = (item.start(body), item.end(body)) if body else item.span()
                pieces += (text[item.start() : value_start], label, text[value_end : item.end()])
                changed = True
                continue
        pieces.append(item.group())
        if depth <= 0:
            break
    if depth <= 0 and text[position : position + 1] not in _AFTER_CONTAINER:
        return _code(text, start, position)  # "(abc)def": a value that goes on, not a container
    return ("".join(pieces) if changed else text[start:position]), position


def _code(text: str, start: int, end: int) -> tuple[str, int] | None:
    """Remember where the walk from ``start`` met code; None, for the caller to return."""
    _CODE_SEEN.text, _CODE_SEEN.start, _CODE_SEEN.end = text, start, end
    return None
