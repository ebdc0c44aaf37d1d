"""Secret-named keys: which keys hide their value, and the mask each value gets."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Final

DEFAULT_MASK_KEYS: Final[frozenset[str]] = frozenset(
    {
        "password",
        "passwd",
        "secret",
        "token",
        "api_key",
        "apikey",
        "authorization",
        "auth",
        "cookie",
        "session",
        "private_key",
        "client_secret",
        "access_key",
    }
)

#: Nesting deeper than this is replaced by :data:`DEPTH_MARKER` instead of being walked.
MAX_DEPTH: Final = 32
#: Stands in for a container that contains itself.
CYCLE_MARKER: Final = "<cycle>"
#: Stands in for a value nested deeper than :data:`MAX_DEPTH`.
DEPTH_MARKER: Final = "<max depth>"

_JWT: Final = "***JWT***"
_TOKEN: Final = "***TOKEN***"  # noqa: S105 - a mask, not a token
_PASSWORD: Final = "***PASSWORD***"  # noqa: S105 - a mask, not a password
_PRIVATE_KEY: Final = "***PRIVATE_KEY***"
_AWS_KEY: Final = "***AWS_KEY***"
_API_KEY: Final = "***API_KEY***"
_SECRET: Final = "***SECRET***"  # noqa: S105 - a mask, not a secret
# ---------------------------------------------------------------------------------------------
# Secret-named keys
# ---------------------------------------------------------------------------------------------

#: Words of an identifier: ALLCAPS runs (not eating the capital of a following camelCase word),
#: Capitalised or lowercase words, and numbers.
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

#: Trailing words that say which form a secret is in, not what it is: ``password_hash``,
#: ``token_b64`` (b, 64) and ``auth_header`` still hold the secret.
_FORM_WORDS: Final = frozenset(
    {
        "b",
        "base",
        "confirm",
        "confirmation",
        "encoded",
        "hash",
        "hashed",
        "header",
        "pem",
        "plain",
        "plaintext",
        "raw",
        "str",
        "value",
    }
)

#: Longest key considered; longer keys are judged on their end, which is where the name is.
_MAX_KEY_CHARS: Final = 128


def _key_words(key: str) -> list[str]:
    """Lowercase words of ``key``, with trailing numbers and form words dropped."""
    words = [word.lower() for word in _WORD.findall(key[-_MAX_KEY_CHARS:])]
    while words and (words[-1].isdigit() or words[-1] in _FORM_WORDS):
        words.pop()
    return words


def _label_for_name(name: str) -> str:
    """The mask for values under a key whose secret name (compacted) is ``name``."""
    if "pass" in name:
        return _PASSWORD
    if "privatekey" in name:
        return _PRIVATE_KEY
    if name.endswith(("apikey", "accesskey")):
        return _API_KEY
    if any(part in name for part in ("token", "auth", "cookie", "session")):
        return _TOKEN
    return _SECRET


class _KeyMatcher:
    """Decides whether a key is secret-named, and which mask its value gets."""

    def __init__(self, keys: frozenset[str]) -> None:
        names = {"".join(_key_words(key)) for key in keys}
        names.discard("")
        self.names = frozenset(names)
        #: The last word of each name: it appears, in some case, in any spelling of the key
        #: (``api_key``, ``ApiKey``, ``API-KEY`` all contain ``key``), so it finds keys in text.
        self.last_words = frozenset(_key_words(key)[-1] for key in keys if _key_words(key))
        alternation = "|".join(re.escape(name) for name in sorted(self.names, key=len, reverse=True))
        self._tail = re.compile(f"(?P<name>{alternation})(?P<suffix>id|key|s)?$") if names else None
        #: Keys repeat from call to call (the same kwargs, the same log fields): judge each once.
        #: Callers pass at most the last :data:`_MAX_KEY_CHARS` characters (all that decides),
        #: so a huge key is not kept whole.
        self.label_for = lru_cache(maxsize=4096)(self._label_for)

    def _label_for(self, key: str) -> str | None:
        """The mask for values under ``key``, or None when ``key`` is not secret-named."""
        if self._tail is None:
            return None
        words = _key_words(key)
        compact = "".join(words)
        match = self._tail.search(compact)
        if match is None:
            return None
        name = match.group("name")
        if name == "token" and match.group("suffix") == "s":
            return None  # max_tokens, num_tokens: counts, not credentials
        if "aws" in words or compact.endswith("secretaccesskey"):
            return _AWS_KEY
        return _label_for_name(name)
