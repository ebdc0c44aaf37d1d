"""Secrets written in prose: ``the password is X``, ``API key was X``, ``signing key 3f9c…``.

Prose has no ``=`` or ``:`` to say where a value is, so the rule asks more of the value than a
``key=value`` assignment does:

- after a verb (``is``, ``was``, ``has been``, ``set to``, ``changed to``, ``reset to``,
  ``now``): a quoted value, or an unquoted one that holds a digit or a symbol, or is long and
  mixes cases. A word of prose (``the password is incorrect``), a status word, a placeholder or
  code (``if token is None``, ``key is self._key``) is left;
- right after the name, with no verb: only 32 to 128 hex digits (``signing key 9f86d0…``), the
  shape of a generated key that the generic rule, which never masks hex, leaves to its key.

The name is judged with the word before it (``cache key`` is not secret, ``api key`` is), or
alone after an article (``the key is …``).
"""

from __future__ import annotations

import re
from typing import Final

from celery_jobs_ext.masking.engine import Replace, Rule, lowercase_rule
from celery_jobs_ext.masking.keys import PASSWORD, KeyMatcher, hides_nothing

_VERBS = r"(?:is|was|will[ \t]+be|has[ \t]+been|is[ \t]+now|now|set[ \t]+to|changed[ \t]+to|reset[ \t]+to)"
_PROSE = (
    r"{name}s?(?![a-z0-9_])"
    r"(?P<verb>(?:[ \t]+" + _VERBS + r")+)[ \t]*:?[ \t]+"
    r"(?P<value>\\\"[^\"\\\n]{{1,256}}\\\"|\\'[^'\\\n]{{1,256}}\\'|\"[^\"\n]{{1,256}}\"|'[^'\n]{{1,256}}'|`[^`\n]{{1,256}}`|[^\s\"'`]{{1,256}})"
)
_PROSE_HEX = r"{name}s?(?![a-z0-9_])[ \t]+(?P<hex>[0-9a-f]{{32,128}})(?![0-9a-z_-])"
#: The verbs' literals: a rule of the verb form runs only on text holding one of them.
_VERB_TRIGGERS: Final = frozenset({" is ", " is:", " was ", " was:", " be ", " been ", " now ", " to "})
#: The names, as patterns that start with the literal their rule is triggered by (one rule and
#: one pass over the text for password and passwd).
_NAMES: Final = {
    "passw": "passw(?:or)?d",
    "passp": "passphrase",
    "passc": "passcode",
    "token": "token",
    "secre": "secret",
    "key": "key",
}
_KEY_CHARS: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"
_ARTICLES: Final = frozenset(
    {"the", "a", "an", "my", "your", "our", "their", "its", "this", "that", "new", "old"}
)
_TRAILING: Final = ".,;:!?)"
_SYMBOL = re.compile(r"[^A-Za-z_.]")
_MIN_PASSWORD: Final = 4
_MIN_SECRET: Final = 6
_MIN_MIXED_WORD: Final = 12


def _label(matcher: KeyMatcher, text: str, start: int, end: int) -> str | None:
    """The mask for the name at ``text[start:end]``, judged with the word before it."""
    before = text[max(0, start - 64) : start]
    key_start = start - (len(before) - len(before.rstrip(_KEY_CHARS)))
    key = text[key_start:end]
    previous = text[max(0, key_start - 32) : key_start].rstrip(" \t").rsplit(None, 1)
    word = previous[-1] if previous and text[key_start - 1 : key_start] in " \t" else ""
    if word.isalpha() and word.lower() not in _ARTICLES:
        return matcher.label_for(f"{word}_{key}")
    return matcher.label_for(key)


def _credential(value: str, label: str) -> bool:
    """Whether an unquoted word after ``is`` is a credential rather than prose or code."""
    minimum = _MIN_PASSWORD if label == PASSWORD else _MIN_SECRET
    if len(value) < minimum or hides_nothing(value, label):
        return False
    if _SYMBOL.search(value):  # a digit or a symbol: Tr0ub4dor, P@ss, 12345678
        return True
    return len(value) >= _MIN_MIXED_WORD and value[1:].lower() != value[1:] and value.upper() != value


def _replacer(matcher: KeyMatcher) -> Replace:
    def replace(text: str, match: re.Match[str]) -> tuple[str, int] | int | None:
        hex_form = "hex" in match.re.groupindex
        if hex_form:
            name_end = match.start() + len(text[match.start() : match.start("hex")].rstrip())
        else:
            name_end = match.start("verb")
        label = _label(matcher, text, match.start(), name_end)
        if label is None:
            return None
        if hex_form:
            return text[match.start() : match.start("hex")] + label, match.end("hex")
        start, end = match.start("value"), match.end("value")
        value = text[start:end]
        if value[0] in "\"'`\\":
            quote = 2 if value[0] == "\\" else 1  # an escaped quote, in a repr or JSON
            start, end, value = start + quote, end - quote, value[quote:-quote]
            if hides_nothing(value, label, structured=True):
                return None
        else:
            value = value.rstrip(_TRAILING)
            end = start + len(value)
            if not _credential(value, label):
                return None
        return text[match.start() : start] + label, end

    return replace


def prose_rules(matcher: KeyMatcher) -> tuple[Rule, ...]:
    """The verb form, for text holding a verb (``the password is X``)."""
    replace = _replacer(matcher)
    return tuple(
        lowercase_rule(f"prose:{trigger}", _VERB_TRIGGERS, _PROSE.format(name=name), replace)
        for trigger, name in _NAMES.items()
    )


def prose_hex_rules(matcher: KeyMatcher) -> tuple[Rule, ...]:
    """The hex form (``signing key 9f86d0…``), for text holding 32 hex digits in a row."""
    replace = _replacer(matcher)
    return tuple(
        lowercase_rule(f"prose-hex:{trigger}", frozenset({trigger}), _PROSE_HEX.format(name=name), replace)
        for trigger, name in _NAMES.items()
    )
