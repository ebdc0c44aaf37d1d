"""Hide secrets in text, nested values, reprs and log records.

Task arguments, results, tracebacks and log lines carry credentials (broker URLs, bearer tokens,
API keys). Masking must hide them without destroying the text around them: a rule that also eats
``proj.tasks.process_payment``, ``api.example.com`` or a task id makes logs useless. So each rule
keys on the secret's own shape (a JWT header that decodes to JSON, a vendor prefix, a URL's
``user:pass@``, a secret-named key), and the one generic rule for random strings refuses words,
identifiers, paths and hex ids.

Masks name what they hide:

| Mask                | Hides                                                                       |
|---------------------|-----------------------------------------------------------------------------|
| `***JWT***`         | JSON Web Tokens (`eyJ…`; the header must base64-decode to a JSON object)    |
| `***TOKEN***`       | the credential after `Bearer`, `Basic` or `Token`; values of token, auth,   |
|                     | authorization, cookie and session keys                                      |
| `***PASSWORD***`    | URL passwords (`redis://:***PASSWORD***@host`); values of password keys     |
| `***PRIVATE_KEY***` | PEM private key blocks, `BEGIN` to `END`; values of private_key keys        |
| `***AWS_KEY***`     | AWS access key ids (`AKIA…`, `ASIA…`), 40-character secret access keys      |
|                     | written near `aws`; values of keys naming AWS (`aws_secret_access_key`)     |
| `***API_KEY***`     | vendor keys: GitHub, GitLab, Slack (tokens, webhooks), Stripe, Google,      |
|                     | OpenAI, Anthropic, SendGrid, Twilio, npm, PyPI, Hugging Face, DigitalOcean; |
|                     | values of api_key, apikey and access_key keys                               |
| `***SECRET***`      | values of other secret-named keys (secret, client_secret, your own `keys`); |
|                     | long random strings (the generic high-entropy rule)                         |

The text around a secret is kept: ``Bearer ***TOKEN***``, ``password=***PASSWORD***``,
``"api_key": "***API_KEY***"``, ``https://hooks.slack.com/services/***API_KEY***``.

Secret-named keys (dict keys, and ``key=value`` / ``key: value`` in text). A key is split into
lowercase words at separators and camelCase humps (``X-Api-Key`` → x, api, key); trailing numbers
and words that describe a form of the value (value, confirmation, hash, b64, pem, raw, header, …)
are dropped; the rest, joined, must *end* with a secret name, optionally followed by ``id``,
``key`` or a plural ``s``. So ``db_password``, ``X-Api-Key``, ``refresh_token``, ``sessionid``,
``SECRET_KEY``, ``csrftoken``, ``password_confirmation`` and ``cookies`` are secret; ``author``,
``tokenizer_name``, ``token_count``, ``session_timeout``, ``password_reset_url`` and
``private_key_path`` are not: the last word names what the value is. The plural ``tokens`` is
the one exception (not secret), because it counts tokens (``max_tokens``) far more often than it
holds them. Keys naming AWS (``aws_*``, ``SecretAccessKey``) get ``***AWS_KEY***``.

The generic rule masks a run of at least 32 base64/base64url characters that holds an uppercase
letter and a lowercase letter or digit, has a Shannon entropy of 3.5 bits per character or more,
and is not made of words (snake_case, camelCase, paths). It never masks hex-only strings: git
SHAs, digests, task ids and UUIDs must survive; hex secrets are caught by their key or vendor
prefix instead. It is a safety net, not a guarantee: about 1% of random 32-character keys read
as words to it (none at 64 characters), and it skips random strings without capitals.

Limits: in text, a secret-named key hides a scalar value (``'password': 'x'``), not a list or
dict written after it (:func:`mask` on the value itself does hide those); a URL password must
be percent-encoded (a raw ``/`` in it ends it); SSH and PEM *public* keys look random and are
masked by the generic rule.

Speed: each pattern starts with a literal and runs only when one of its trigger words occurs in
the lowercased text; vendor keys, JWTs and the generic rule run only when the text has a run of
16+ base64 characters holding an uppercase letter, found with one ``bytes.translate`` and two
literal searches, and their triggers are looked for in those runs and the 64 characters before
each. So a vendor key with no uppercase letter in it or within 64 characters after its prefix is
left to the secret-named-key rules. Text without secrets costs about 7 µs per kilobyte and comes
back as the same object. All patterns are linear (repetitions bounded or unambiguous), so hostile input cannot
make them backtrack catastrophically.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any, Final
from uuid import UUID

from celery.signals import after_setup_logger, after_setup_task_logger
from celery.utils.saferepr import saferepr
from celery.worker.request import Request

from celery_jobs_ext.errors import ImproperlyConfigured

__all__ = [
    "CYCLE_MARKER",
    "DEFAULT_MASK_KEYS",
    "DEPTH_MARKER",
    "MAX_DEPTH",
    "MaskingFilter",
    "mask",
    "mask_repr",
    "mask_text",
]

#: Key names whose values are masked whole (see the module docstring for how keys are matched).
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


# ---------------------------------------------------------------------------------------------
# Text rules
#
# Speed comes from the shape of the patterns: each starts with a literal ("://", "eyJ", "key"),
# which the regex engine finds as fast as ``str.find``, and the boundary check sits in a
# lookbehind just after it. A pattern starting with a character class or an alternation would be
# tried at every position, ten to a hundred times slower. Case-insensitive rules run on the
# lowercased text (same positions), so their literals stay literals, and read the original text.
# ---------------------------------------------------------------------------------------------

#: (original text, match) -> (replacement, end): the replacement for ``text[match.start():end]``
#: (``end`` may stop short of the match's end, to keep a closing quote), or None to leave it.
_Replace = Callable[[str, "re.Match[str]"], "tuple[str, int] | None"]


@dataclass(frozen=True)
class _Rule:
    """One kind of secret: a pattern, and what to put in place of each match."""

    name: str
    pattern: re.Pattern[str]
    replace: _Replace
    #: Lowercase literals, one of which occurs in (the lowercased) text whenever the pattern can
    #: match: a ``str`` ``in`` check is the cheapest way to skip the rule.
    triggers: frozenset[str]
    #: None: ``pattern`` runs on the original text. Otherwise it is written in lowercase and runs on
    #: the lowercased text; this IGNORECASE twin serves the rare text whose lowercasing changes its
    #: length (``"İ".lower()`` is two characters), where positions would not line up.
    ignorecase: re.Pattern[str] | None = None


def _lowercase_rule(
    name: str, triggers: frozenset[str], pattern: str, replace: _Replace, flags: int = 0
) -> _Rule:
    return _Rule(
        name, re.compile(pattern, flags), replace, triggers, re.compile(pattern, flags | re.IGNORECASE)
    )


def _rule(name: str, triggers: str | tuple[str, ...], pattern: str, replace: _Replace) -> _Rule:
    """A case-sensitive rule; ``triggers`` are still matched against the lowercased text."""
    words = frozenset((triggers,) if isinstance(triggers, str) else triggers)
    return _Rule(name, re.compile(pattern), replace, words)


class _RuleSet:
    """Rules applied in order, with the union of their triggers checked first."""

    def __init__(self, rules: Iterable[_Rule]) -> None:
        self.rules = tuple(rules)
        self.triggers = tuple(sorted(frozenset().union(*(rule.triggers for rule in self.rules))))


def _apply(rule_set: _RuleSet, text: str, lowered: str | None = None, scope: str | None = None) -> str:
    """Apply the triggered ``rules`` in order; ``text`` itself comes back when none masked anything.

    ``lowered`` is ``text.lower()`` if the caller has it. Triggers are checked once, on the text
    as it came in (a mask never adds a trigger that matters), or on ``scope``, lowercase text
    that holds every place a rule could match, when the caller knows a smaller one.
    """
    if lowered is None:
        lowered = text.lower()
    where = lowered if scope is None else scope
    present = {trigger for trigger in rule_set.triggers if trigger in where}
    if not present:
        return text
    for rule in rule_set.rules:
        if rule.triggers.isdisjoint(present):
            continue
        if rule.ignorecase is None:
            matches = rule.pattern.finditer(text)
        else:
            if lowered is None:
                lowered = text.lower()
            if len(lowered) == len(text):
                matches = rule.pattern.finditer(lowered)
            else:
                matches = rule.ignorecase.finditer(text)
        pieces: list[str] = []
        end = 0
        for match in matches:
            replaced = rule.replace(text, match)
            if replaced is not None:
                pieces += (text[end : match.start()], replaced[0])
                end = replaced[1]
        if pieces:
            pieces.append(text[end:])
            text = "".join(pieces)
            lowered = None
    return text


def _span(text: str, match: re.Match[str], group: int | str = 0) -> str:
    """The original text of ``group`` (``match`` may have run on the lowercased text)."""
    return text[match.start(group) : match.end(group)]


def _fixed(mask: str) -> _Replace:
    def replace(text: str, match: re.Match[str]) -> tuple[str, int]:
        return mask, match.end()

    return replace


def _keep_group(mask: str) -> _Replace:
    """Keep group 1 (a URL prefix) and mask the rest of the match."""

    def replace(text: str, match: re.Match[str]) -> tuple[str, int]:
        return _span(text, match, 1) + mask, match.end()

    return replace


def _char_classes(text: str) -> int:
    """How many of lowercase, uppercase and digits ``text`` has."""
    return (text.upper() != text) + (text.lower() != text) + any(char.isdigit() for char in text)


def _mixed(replace: _Replace, classes: int) -> _Replace:
    """Mask only a match that mixes ``classes`` character classes, as random keys do."""

    def checked(text: str, match: re.Match[str]) -> tuple[str, int] | None:
        return replace(text, match) if _char_classes(_span(text, match)) >= classes else None

    return checked


# PEM private keys. The body never contains "--", so it stops at the END line (or at the next
# BEGIN in hostile input) without backtracking; without an END (a repr cut short) everything up to
# there is masked. Literal "\n" (in reprs and JSON) is just body text.
_PEM = _rule(
    "private-key",
    "-----begin",
    r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r"[^-]*(?:-(?!-)[^-]*)*"
    r"(?:-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----)?",
    _fixed(_PRIVATE_KEY),
)

# Passwords in URLs: "://user:pass@". The scheme is not needed, so the pattern starts at "://".
# The password may contain ':' and '@' (the last '@' before the host ends it) but not '/',
# whitespace or quotes; both parts are bounded, so "x:" * n costs O(256) per "://".
_URL_PASSWORD = _rule(
    "url-password",
    "://",
    r"(://[^\s:/@?#'\"]{0,256}:)(?!\*\*\*)[^\s/?#'\"]{1,256}@",
    _keep_group(_PASSWORD + "@"),
)

# Credentials after an HTTP auth scheme (RFC 7235 token68 characters). The whole token is taken,
# so "Bearer <jwt>" leaves nothing of the JWT behind. Written lowercase: runs on lowered text.
_AUTH_SCHEME = (
    r"(?P<scheme>{word})(?<![a-z0-9_]{word})(?P<space>[ \t]{{1,8}}|%20)(?P<credential>[a-z0-9._~+/-]+=*)"
)
_CREDENTIAL_SYMBOLS: Final = frozenset("._~+/-=")


def _after_authorization(text: str, start: int) -> bool:
    """Whether an ``Authorization`` header or key comes just before ``start``."""
    return "authoriz" in text[max(0, start - 40) : start].lower()


def _looks_like_credential(credential: str) -> bool:
    """Not a word of prose ("Bearer authentication"): digits, symbols or inner capitals."""
    return len(credential) >= 8 and (
        any(char.isdigit() or char in _CREDENTIAL_SYMBOLS for char in credential)
        or credential[1:].lower() != credential[1:]
    )


def _is_basic_credential(credential: str) -> bool:
    """Whether ``credential`` is the base64 of ``user:password``."""
    try:
        decoded = base64.b64decode(credential + "=" * (-len(credential) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded and decoded.isascii()


def _replace_auth_scheme(text: str, match: re.Match[str]) -> tuple[str, int] | None:
    scheme = match.group("scheme").lower()
    credential = _span(text, match, "credential")
    if _after_authorization(text, match.start()):
        secret = True
    elif scheme == "bearer":
        secret = _looks_like_credential(credential)
    elif scheme == "basic":
        secret = _is_basic_credential(credential)
    else:  # "token" is a common word: ask for a long credential with digits
        secret = len(credential) >= 16 and _looks_like_credential(credential) and not credential.isalpha()
    if not secret:
        return None
    return text[match.start() : match.start("credential")] + _TOKEN, match.end()


# JWT: header "eyJ…" (base64 of '{"'), then two to four more dot-separated segments (JWS has three
# parts, JWE five; the signature may be empty). '.' cannot occur in a segment, so the repetition
# is unambiguous; the lookbehind rejects an "eyJ" inside a longer run.
_JWT_PATTERN = r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{2,8192}={0,2}(?:\.[A-Za-z0-9_-]{0,65536}={0,2}){2,4}"


def _replace_jwt(text: str, match: re.Match[str]) -> tuple[str, int] | None:
    header = match.group(0).split(".", 1)[0].rstrip("=")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError):
        return None
    return (_JWT, match.end()) if isinstance(decoded, dict) else None


# Vendor formats, after gitleaks' rules (config/gitleaks.toml), lengths loosened where vendors
# have changed them. Each starts with a literal and checks the boundary behind it.
_VENDOR_RULES: Final = (
    _rule(
        "github",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        r"g(?<![A-Za-z0-9_]g)(?:h[pousr]_[A-Za-z0-9]{30,255}|ithub_pat_[A-Za-z0-9_]{40,255})",
        _fixed(_API_KEY),
    ),
    _rule(
        "gitlab",
        ("glpat-", "glptt-", "gldt-", "glrt-"),
        r"gl(?<![A-Za-z0-9_-]gl)(?:pat|ptt|dt|rt)-[A-Za-z0-9_-]{20,255}",
        _fixed(_API_KEY),
    ),
    _rule(
        "slack-webhook",
        "hooks.slack.com",
        r"(hooks\.slack\.com/(?:services|workflows|triggers)/)[A-Za-z0-9/_+-]{8,255}",
        _keep_group(_API_KEY),
    ),
    # A class first (not a literal) costs a slower scan, paid only when a trigger is present.
    _rule(
        "stripe",
        ("k_live_", "k_test_", "k_prod_"),
        r"[rs]k_(?<![A-Za-z0-9_][rs]k_)(?:live|test|prod)_[A-Za-z0-9]{10,255}",
        _mixed(_fixed(_API_KEY), classes=2),
    ),
    _rule(
        "stripe-webhook",
        "whsec_",
        r"whsec_(?<![A-Za-z0-9_]whsec_)[A-Za-z0-9]{24,255}",
        _mixed(_fixed(_API_KEY), classes=2),
    ),
    _rule("google", "aiza", r"AIza(?<![A-Za-z0-9_-]AIza)[A-Za-z0-9_-]{35}", _fixed(_API_KEY)),
    # OpenAI (sk-…, sk-proj-…, sk-svcacct-…) and Anthropic (sk-ant-…). Random keys mix upper,
    # lower and digits; "sk-learn-compatible-estimator" does not.
    _rule(
        "openai-anthropic",
        "sk-",
        r"sk-(?<![A-Za-z0-9_-]sk-)[A-Za-z0-9_-]{20,255}",
        _mixed(_fixed(_API_KEY), classes=3),
    ),
    _rule(
        "sendgrid",
        "sg.",
        r"SG\.(?<![A-Za-z0-9_-]SG\.)[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}",
        _fixed(_API_KEY),
    ),
    _rule(
        "npm",
        "npm_",
        r"npm_(?<![A-Za-z0-9_]npm_)[A-Za-z0-9]{36,64}",
        _mixed(_fixed(_API_KEY), classes=2),
    ),
    _rule("pypi", "pypi-age", r"pypi-AgE[A-Za-z0-9_-]{50,}", _fixed(_API_KEY)),
    _rule(
        "huggingface",
        "hf_",
        r"hf_(?<![A-Za-z0-9_]hf_)[A-Za-z0-9]{30,40}(?![A-Za-z0-9])",
        _mixed(_fixed(_API_KEY), classes=2),
    ),
    _rule("slack-app", "xapp-", r"xapp-(?<![A-Za-z0-9_-]xapp-)[A-Za-z0-9-]{10,255}", _fixed(_API_KEY)),
    _rule(
        "aws-key-id",
        ("akia", "asia", "abia", "acca", "a3t"),
        r"A(?<![A-Za-z0-9]A)(?:3T[A-Z0-9]|KIA|SIA|BIA|CCA)[A-Z0-9]{16}(?![A-Za-z0-9])",
        _fixed(_AWS_KEY),
    ),
)

# Formats the uppercase gate below cannot stand for: possibly all lowercase, or split into short runs.
_LOWERCASE_VENDOR_RULES: Final = (
    # Slack: xoxb- bot, xoxp- user, xoxa-/xoxr-/xoxs-/xoxe-/xoxo- legacy and refresh tokens;
    # legacy ones end in lowercase hex. (xapp- app tokens hold an uppercase app id: gated.)
    _rule(
        "slack",
        "xox",
        r"xox(?<![A-Za-z0-9_-]xox)[abeoprs]-[A-Za-z0-9-]{10,255}",
        _fixed(_API_KEY),
    ),
    # bcrypt hashes: '.' and '/' split them into runs too short for the gate.
    _rule("bcrypt", "$", r"\$2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}", _fixed(_PASSWORD)),
    _rule(
        "digitalocean",
        "_v1_",
        r"do(?<![A-Za-z0-9_]do)[opr]_v1_[a-f0-9]{64}",
        _fixed(_API_KEY),
    ),
)

# ---------------------------------------------------------------------------------------------
# Secret-named keys in text: key=value, key: value, "key": "value", 'key': 'value'
# ---------------------------------------------------------------------------------------------

#: Characters of a key around the secret name (``db_password``, ``spring.datasource.password``).
_KEY_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
#: Values that hold no secret, left as they are so logs still say "no password was set".
_EMPTY_VALUES: Final = frozenset({"", "none", "null", "true", "false"})

# The value forms, tried in order: escaped quotes (JSON inside a JSON string), quotes with an
# optional b/r/u prefix (reprs), an unterminated quote (a repr cut short), a bare word. Inside
# quotes a backslash escapes one character: "[^"\\]|\\." is unambiguous, so it cannot backtrack
# exponentially. Values already masked, and auth schemes (masked by their own rule), are skipped.
# Values are bounded and consumed, so "password=" * n costs one match per 2 KB. Written
# lowercase: runs on lowered text.
_ASSIGNMENT = r"""
    {name}(?P<rest>[a-z0-9_.-]{{0,40}}?)(?P<keyquote>\\?["'])?[ \t]{{0,16}}[=:][ \t]{{0,16}}
    (?![bru]{{0,2}}\\?["']?\*\*\*)
    (?:
        [bru]{{0,2}}\\"(?P<v1>(?:[^"\\\n]|\\[^"\n]){{0,2048}})\\"
      | [bru]{{0,2}}\\'(?P<v2>(?:[^'\\\n]|\\[^'\n]){{0,2048}})\\'
      | [bru]{{0,2}}"(?P<v3>(?:[^"\\\n]|\\.){{0,2048}})"
      | [bru]{{0,2}}'(?P<v4>(?:[^'\\\n]|\\.){{0,2048}})'
      | [bru]{{0,2}}\\?["'](?P<v5>[^"'\\\n]{{1,2048}})
      | (?!(?:bearer|basic|token|digest)[ \t])(?P<v6>[^\s"',;&<>(){{}}\[\]\\]{{1,2048}})
    )
"""
_VALUE_GROUPS: Final = ("v1", "v2", "v3", "v4", "v5", "v6")
#: "Bearer ***TOKEN***", already masked by the auth-scheme rule: kept, scheme and all.
_MASKED_CREDENTIAL = re.compile(r"(?i:bearer|basic|token|digest)[ \t]+\*\*\*[A-Z_]+\*\*\*")


def _assignment_replacer(matcher: _KeyMatcher) -> _Replace:
    def replace(text: str, match: re.Match[str]) -> tuple[str, int] | None:
        start = match.start()
        key_start = start
        while key_start > 0 and start - key_start < 64 and text[key_start - 1] in _KEY_CHARS:
            key_start -= 1
        label = matcher.label_for(text[key_start : match.end("rest")])
        if label is None:
            return None
        group = next(name for name in _VALUE_GROUPS if match.start(name) >= 0)
        value = _span(text, match, group)
        if value.lower() in _EMPTY_VALUES or _MASKED_CREDENTIAL.fullmatch(value):
            return None
        return text[start : match.start(group)] + label, match.end(group)

    return replace


def _assignment_rules(matcher: _KeyMatcher) -> tuple[_Rule, ...]:
    """One rule per distinct last word of the secret names (a word containing another is dropped:
    ``auth`` already finds ``authorization``)."""
    words = matcher.last_words
    words = frozenset(word for word in words if not any(other != word and other in word for other in words))
    replace = _assignment_replacer(matcher)
    return tuple(
        _lowercase_rule(
            f"secret-key:{word}",
            frozenset({word[:5]}),  # "passw" serves both password and passwd
            _ASSIGNMENT.format(name=re.escape(word)),
            replace,
            re.VERBOSE,
        )
        for word in sorted(words)
    )


# ---------------------------------------------------------------------------------------------
# The uppercase gate and the generic rule
# ---------------------------------------------------------------------------------------------

#: Maps text (encoded as latin-1, one byte per character) to 'U' for uppercase letters, 'a' for
#: the other characters of base64/base64url runs, and ' ' for everything else.
_RUN_TABLE: Final = bytes(
    ord("U")
    if chr(code).isascii() and chr(code).isupper()
    else ord("a")
    if chr(code).isascii() and (chr(code).isalnum() or chr(code) in "+/_-")
    else ord(" ")
    for code in range(256)
)
#: A run of 16+ characters holding an uppercase letter has its first uppercase letter either
#: followed by ten run characters or preceded by six lowercase ones or digits (6 + 1 + 9 = 16):
#: these two literal-first searches find every such run, fast. Ten, not eight, after it so that
#: short codes (``SKU-00042``, ``ORDER-17``) are not looked at at all.
_UPPER_WINDOW = re.compile(rb"U[aU]{10}")
_UPPER_AFTER_RUN: Final = b"aaaaaaU"
_MIN_CANDIDATE: Final = 16
#: How far before a run a gated rule's trigger may start: ``hooks.slack.com/``, ``SG.`` and a
#: first part, a JWT's header and payload when only its signature makes a run.
_TRIGGER_MARGIN: Final = 64
_MIN_GENERIC: Final = 32


def _upper_runs(text: str) -> list[tuple[int, int]]:
    """Spans of the runs of 16+ base64/base64url characters that hold an uppercase letter.

    Every vendor key, JWT and random secret the rules know has one (lowercase-only formats have
    their own literal-first rules); identifiers, paths, task ids and SHAs mostly do not, so text
    without such a run skips the vendor and generic rules after two fast scans.
    """
    mapped = text.encode("latin-1", "replace").translate(_RUN_TABLE)
    runs: dict[int, int] = {}
    position = 0
    while (found := _UPPER_WINDOW.search(mapped, position)) is not None:
        position = _add_run(mapped, found.start(), runs)
    position = 0
    while (index := mapped.find(_UPPER_AFTER_RUN, position)) >= 0:
        position = _add_run(mapped, index, runs)
    return sorted(runs.items())


def _add_run(mapped: bytes, index: int, runs: dict[int, int]) -> int:
    """Record the run around ``index`` if it is long enough; return where the run ends."""
    start = mapped.rfind(b" ", 0, index) + 1
    end = mapped.find(b" ", index)
    end = len(mapped) if end < 0 else end
    if end - start >= _MIN_CANDIDATE:
        runs[start] = end
    return end


_HEX_ID = re.compile(r"(?:0[xX]|g)?[0-9a-fA-F_-]+")
_TWILIO = re.compile(r"(?:SK|AC)[0-9a-f]{32}")
_AWS_SECRET = re.compile(r"[A-Za-z0-9/+]{40}")
_SEGMENT_SEPARATORS = re.compile(r"[/_+-]")

#: Tuned on 10,000 random keys per alphabet: of 32-character keys about 1.5% of base64 and 0.6%
#: of base62 ones look too word-like to mask (at 64 characters, none); of the ~15,000 runs of 32+
#: characters in a Python site-packages (identifiers, paths, hashes), only random ids and keyboard
#: mash were masked. Lower thresholds cost paths like ``docutils/writers/html4css1``.
_MIN_ENTROPY: Final = 3.5
_MIN_RANDOM_CHARS: Final = 14
_MIN_WORD_LENGTH: Final = 3
_MAX_DIGIT_RUNS: Final = 3
_MIN_VOWELLESS: Final = 5
_VOWELS: Final = frozenset("aeiouy")
_VOWELLESS_WORDS: Final = frozenset({"https", "xhtml"})


def _entropy(text: str) -> float:
    """Shannon entropy of ``text`` in bits per character."""
    size = len(text)
    return -sum(count / size * math.log2(count / size) for count in Counter(text).values())


def _is_wordlike(segment: str) -> bool:
    """Whether ``segment`` reads as words (``Celery``, ``processPayment``, ``html4css1``).

    Random strings split into one- and two-letter pieces (``wJalrX`` → w, Jalr, X), into
    unpronounceable ones (``Slkmtk``) or interleave letters and digits again and again;
    identifiers are words of three letters or more, with the odd ``A``, acronyms, a one-letter
    prefix (``kSecTrust``, ``iPhone``) and a version number.
    """
    pieces = _WORD.findall(segment)
    words = [piece for piece in pieces if not piece.isdigit()]
    if len(pieces) - len(words) >= _MAX_DIGIT_RUNS and words:
        return False
    if any(
        len(word) >= _MIN_VOWELLESS
        and not word.isupper()
        and _VOWELS.isdisjoint(word.lower())
        and word.lower() not in _VOWELLESS_WORDS
        for word in words
    ):
        return False
    if len(words) <= 1:
        return True
    if any(len(word) == 1 and word.islower() for word in words[1:]):
        return False
    return sum(map(len, words)) / len(words) >= _MIN_WORD_LENGTH


def _is_random(body: str) -> bool:
    """Whether a long run looks like a generated secret rather than an identifier or an id."""
    if _HEX_ID.fullmatch(body) or _char_classes(body) < 2:
        return False
    random_chars = sum(
        len(segment)
        for segment in _SEGMENT_SEPARATORS.split(body)
        if not _HEX_ID.fullmatch(segment) and not _is_wordlike(segment)
    )
    return random_chars >= _MIN_RANDOM_CHARS and _entropy(body) >= _MIN_ENTROPY


def _generic_mask(text: str, start: int, body: str) -> str | None:
    """The mask for the run ``body`` found at ``start``, or None to keep it."""
    if _TWILIO.fullmatch(body):
        return _API_KEY
    if (
        _AWS_SECRET.fullmatch(body)
        and "aws" in text[max(0, start - 64) : start].lower()
        and not _HEX_ID.fullmatch(body)
    ):
        return _AWS_KEY
    return _SECRET if _is_random(body) else None


def _mask_long_runs(text: str, runs: list[tuple[int, int]]) -> str:
    pieces: list[str] = []
    end = 0
    for run_start, run_end in runs:
        if run_end - run_start < _MIN_GENERIC:
            continue
        mask = _generic_mask(text, run_start, text[run_start:run_end])
        if mask is not None:
            while run_end < len(text) and text[run_end] == "=":  # base64 padding goes too
                run_end += 1
            pieces += (text[end:run_start], mask)
            end = run_end
    if not pieces:
        return text
    pieces.append(text[end:])
    return "".join(pieces)


# ---------------------------------------------------------------------------------------------
# Putting the rules together
# ---------------------------------------------------------------------------------------------


class _Masker:
    """All the rules for one set of secret key names, compiled once.

    The always-on rules are literal-first scans (about half a microsecond per kilobyte each). The
    vendor rules, JWTs and the generic rule run only when :func:`_upper_runs` finds a run that
    could be a key, which text of words, names, paths and ids rarely has.
    """

    def __init__(self, keys: frozenset[str]) -> None:
        self.keys = _KeyMatcher(keys)
        self.always = _RuleSet(
            (
                _PEM,
                _URL_PASSWORD,
                *(
                    _lowercase_rule(
                        f"auth-scheme:{word}",
                        frozenset({word}),
                        _AUTH_SCHEME.format(word=word),
                        _replace_auth_scheme,
                    )
                    for word in ("bearer", "basic", "token")
                ),
                *_assignment_rules(self.keys),
                *_LOWERCASE_VENDOR_RULES,
            )
        )
        self.gated = _RuleSet((_rule("jwt", "eyj", _JWT_PATTERN, _replace_jwt), *_VENDOR_RULES))

    def mask_text(self, text: str) -> str:
        if len(text) < 6:
            return text
        lowered = text.lower()
        masked = _apply(self.always, text, lowered)
        if masked is text and lowered == text:
            return text  # no uppercase letter: no run the gated rules could match
        runs = _upper_runs(masked) if len(masked) >= _MIN_CANDIDATE else []
        if runs:
            # A gated secret lies in a run, or starts shortly before one (its prefix, or the
            # earlier parts of a JWT, a SendGrid key, a Slack webhook URL): look for the
            # triggers there rather than in the whole text, which is most of the cost.
            scope = " ".join(masked[max(0, start - _TRIGGER_MARGIN) : end] for start, end in runs).lower()
            gated = _apply(self.gated, masked, lowered if masked is text else None, scope)
            if gated is not masked:
                # A mask only splits runs (it starts and ends with "*"), so runs long enough for
                # the generic rule exist after it only if they did before.
                long = any(end - start >= _MIN_GENERIC for start, end in runs)
                runs = _upper_runs(gated) if long else []
            masked = _mask_long_runs(gated, runs)
        return masked


def _normalize_keys(keys: Iterable[str] | None) -> frozenset[str]:
    if keys is None:
        return DEFAULT_MASK_KEYS
    if isinstance(keys, (str, bytes)):
        raise ImproperlyConfigured(
            f"jobs_mask_keys (the keys argument) must be a list of key names, not the string {keys!r}: "
            f"write [{keys!r}]."
        )
    names = frozenset(keys)
    for name in names:
        if not isinstance(name, str):
            raise ImproperlyConfigured(f"jobs_mask_keys must hold key names as strings, got {name!r}.")
    return names


@lru_cache(maxsize=32)
def _masker_for(keys: frozenset[str]) -> _Masker:
    return _Masker(keys)


def _masker(keys: Iterable[str] | None) -> _Masker:
    return _masker_for(_normalize_keys(keys))


# ---------------------------------------------------------------------------------------------
# Public API
# ---------------------------------------------------------------------------------------------


def mask_text(text: str, keys: Iterable[str] | None = None) -> str:
    """Return ``text`` with every secret replaced by a mask that names it.

    Text without secrets comes back as the very same object, cheaply: that is the common case and
    it must not cost a copy.

    Arguments:
        text: any text: a log line, a repr, a traceback, a URL.
        keys: secret key names for ``key=value`` assignments in the text; None means
            :data:`DEFAULT_MASK_KEYS`. The full set, not an addition to the defaults.

    Returns:
        The masked text.

    Raises:
        ImproperlyConfigured: ``keys`` is a string or holds non-strings.
    """
    return _masker(keys).mask_text(text)


#: Scalars whose repr holds no secret: passed through unchanged, keeping their type.
_SAFE_SCALARS: Final = (
    int,
    float,
    complex,
    Decimal,
    Fraction,
    date,
    datetime,
    time,
    timedelta,
    UUID,
    type(None),
)


class _ObjectRepr:
    """An object's masked repr that reprs as itself, so :func:`saferepr` shows it unquoted."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class _Walker:
    """Masks one value tree: tracks the containers on the current path to spot cycles."""

    def __init__(self, masker: _Masker, objects_as_repr: bool) -> None:
        self.masker = masker
        self.objects_as_repr = objects_as_repr
        self.path: set[int] = set()

    def walk(self, value: Any, depth: int) -> Any:
        if isinstance(value, str):
            return self.masker.mask_text(value)
        if isinstance(value, (bool, *_SAFE_SCALARS)):
            return value
        if isinstance(value, (bytes, bytearray)):
            return self._bytes(value)
        if not isinstance(value, (dict, list, tuple, set, frozenset)):
            return self._object(value)
        if depth >= MAX_DEPTH:
            return DEPTH_MARKER
        if id(value) in self.path:
            return CYCLE_MARKER
        self.path.add(id(value))
        try:
            return self._container(value, depth + 1)
        finally:
            self.path.discard(id(value))

    def _container(
        self, value: dict[Any, Any] | list[Any] | tuple[Any, ...] | set[Any] | frozenset[Any], depth: int
    ) -> Any:
        if isinstance(value, dict):
            return {self._key(key): self._item(key, item, depth) for key, item in value.items()}
        items = [self.walk(item, depth) for item in value]
        if isinstance(value, tuple):
            if hasattr(value, "_fields"):  # a namedtuple: rebuild it field by field
                try:
                    return type(value)(*items)
                except TypeError:
                    return tuple(items)
            return tuple(items)
        if isinstance(value, frozenset):
            return frozenset(items)
        if isinstance(value, set):
            return set(items)
        return items

    def _key(self, key: Any) -> Any:
        return self.masker.mask_text(key) if isinstance(key, str) else key

    def _item(self, key: Any, item: Any, depth: int) -> Any:
        name = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        if isinstance(name, str) and item is not None:
            label = self.masker.keys.label_for(name[-_MAX_KEY_CHARS:])
            if label is not None:
                return label.encode() if isinstance(item, (bytes, bytearray)) else label
        return self.walk(item, depth)

    def _bytes(self, value: bytes | bytearray) -> bytes | bytearray:
        # surrogateescape round-trips bytes that are not UTF-8, so only the secrets change.
        text = value.decode("utf-8", "surrogateescape")
        masked = self.masker.mask_text(text)
        if masked is text:
            return value
        encoded = masked.encode("utf-8", "surrogateescape")
        return bytearray(encoded) if isinstance(value, bytearray) else encoded

    def _object(self, value: Any) -> Any:
        try:
            text = repr(value)
        except Exception:  # a broken __repr__ must not break logging
            text = f"<unrepresentable {type(value).__name__}>"
        masked = self.masker.mask_text(text)
        return _ObjectRepr(masked) if self.objects_as_repr else masked


def mask(value: Any, keys: Iterable[str] | None = None) -> Any:
    """Return a masked copy of ``value``: strings masked, secret-named keys' values hidden whole.

    Task arguments and results are nested structures, and a secret is as likely to sit under a
    ``"password"`` key as inside a string. The input is never mutated.

    - ``str``: :func:`mask_text`.
    - ``dict``, ``list``, ``tuple`` (and namedtuples), ``set``, ``frozenset``: a new container of
      the same kind (dict and list subclasses become plain dicts and lists), items masked; string
      dict keys are masked too. A value under a secret-named key becomes its mask (``"***TOKEN***"``)
      whatever its type, except None, which hides nothing.
    - ``bytes`` and ``bytearray``: masked as UTF-8 text and returned as the same type (the same
      object when nothing is secret); bytes that are not UTF-8 survive unchanged.
    - ``int``, ``float``, ``bool``, ``None``, ``Decimal``, dates, ``UUID``: unchanged.
    - any other object: its masked ``repr()``, as a ``str``.

    A container that contains itself becomes :data:`CYCLE_MARKER`; nesting deeper than
    :data:`MAX_DEPTH` becomes :data:`DEPTH_MARKER`.

    Arguments:
        value: the value to mask.
        keys: secret key names; None means :data:`DEFAULT_MASK_KEYS`. Pass the full set (the
            ``jobs_mask_keys`` setting): it replaces the defaults.

    Returns:
        The masked copy.

    Raises:
        ImproperlyConfigured: ``keys`` is a string or holds non-strings.
    """
    return _Walker(_masker(keys), objects_as_repr=False).walk(value, 0)


def mask_repr(value: Any, keys: Iterable[str] | None = None, maxlen: int = 1024, maxlevels: int = 3) -> str:
    """The masked, truncated repr of ``value``, for a task's ``argsrepr`` and ``kwargsrepr``.

    Masks first and truncates after, so a secret cut in half by the length limit is still hidden;
    the truncation is Celery's own :func:`~celery.utils.saferepr.saferepr`, so the result reads like
    Celery's default argsrepr. Objects appear as their masked repr, unquoted.

    Arguments:
        value: the value to represent, usually a task's args tuple or kwargs dict.
        keys: secret key names; None means :data:`DEFAULT_MASK_KEYS`.
        maxlen: approximate maximum length of the result, as Celery's ``argsrepr_maxsize``.
        maxlevels: nesting shown before ``...``, as Celery's ``task_repr_maxlevels``.

    Returns:
        The repr.

    Raises:
        ImproperlyConfigured: ``keys`` is a string or holds non-strings.
    """
    masked = _Walker(_masker(keys), objects_as_repr=True).walk(value, 0)
    return str(saferepr(masked, maxlen=maxlen, maxlevels=maxlevels))


class MaskingFilter(logging.Filter):
    """A logging filter for handlers that masks secrets in messages, tracebacks and stacks.

    Put it on handlers, not loggers: handler filters also see records propagated from child
    loggers. When the formatted message (``msg % args``) holds a secret, the masked message
    replaces ``msg`` and ``args`` becomes None, so every later handler and formatter sees the
    masked text; a clean record is left as it is (``msg`` still the template). It never drops a
    record, and a record that passes two masking handlers is left as the first one made it. If
    ``msg % args`` fails, the arguments are masked, so the "Logging error" report shows no secret.

    Tracebacks are formatted with :class:`logging.Formatter`'s ``formatException`` into
    ``record.exc_text`` (masked), which formatters print instead of formatting ``exc_info``
    themselves. ``record.exc_info`` itself is kept for handlers that need the exception object,
    so a handler that formats it on its own (not through ``exc_text``) sees the raw text.
    """

    _exception_formatter = logging.Formatter()

    def __init__(self, *, keys: Iterable[str] | None = None) -> None:
        """Create the filter.

        Arguments:
            keys: secret key names; None means :data:`DEFAULT_MASK_KEYS`.

        Raises:
            ImproperlyConfigured: ``keys`` is a string or holds non-strings.
        """
        super().__init__()
        self._masker = _masker(keys)

    def filter(self, record: logging.LogRecord) -> bool:
        """Mask ``record`` in place; always True, so no record is dropped."""
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler reports it, with msg and args
            walker = _Walker(self._masker, objects_as_repr=False)
            record.msg = walker.walk(record.msg, 0)
            record.args = walker.walk(record.args, 0)
        else:
            masked = self._masker.mask_text(message)
            if masked is not message and masked != message:
                record.msg = masked
                record.args = None
        data = record.__dict__.get("data")
        if isinstance(data, dict):
            # Celery logs its task lines with ``extra={"data": {...}}`` (args, return value,
            # traceback): structured handlers (JSON, Sentry) print those fields themselves.
            record.data = _Walker(self._masker, objects_as_repr=True).walk(data, 0)
        if record.exc_info and not record.exc_text:
            record.exc_text = self._exception_formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._masker.mask_text(record.exc_text)
        if record.stack_info:
            record.stack_info = self._masker.mask_text(record.stack_info)
        return True


# ---------------------------------------------------------------------------------------------
# Celery wiring: where a GuardedTask's data shows up
# ---------------------------------------------------------------------------------------------


def masked_reprs(app: Any, args: Any, kwargs: Any, keys: Iterable[str] | None) -> tuple[str, str]:
    """``argsrepr`` and ``kwargsrepr`` for a message, masked.

    The structure is masked first (:func:`mask_repr`), so a secret-named key hides its
    value whatever it holds (a list, a tuple, a dict), and only then truncated by
    Celery's own ``saferepr`` to ``argsrepr_maxsize``. ``task_repr_maxlevels`` exists
    from Celery 5.7; before, Celery's default depth (3) applies.
    """
    amqp = app.amqp
    maxlevels = app.conf.get("task_repr_maxlevels") or 3
    argsrepr = mask_repr(args if args is not None else (), keys, amqp.argsrepr_maxsize, maxlevels)
    kwargsrepr = mask_repr(kwargs if kwargs is not None else {}, keys, amqp.kwargsrepr_maxsize, maxlevels)
    return argsrepr, kwargsrepr


def mask_exception(exc: BaseException, keys: Iterable[str] | None = None) -> BaseException:
    """Mask an exception in place, so its message, stored form and traceback hide secrets.

    In place because Celery stores the very object the task raised (message and
    traceback text) before any ``on_failure`` hook runs; a copy would not be stored.
    Covers ``args``, the string, list and dict values of its attributes (exceptions
    that format their message from attributes, such as ``CalledProcessError``, and
    what pickling stores), Celery's ``Retry`` (``message``, ``excs``, ``exc``), and
    the chained ``__cause__`` and ``__context__``, which the traceback prints.
    Returns ``exc``.
    """
    masker = _masker(keys)
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen or len(seen) >= 16:
            continue
        seen.add(id(current))
        _mask_one_exception(masker, current)
        for linked in (current.__cause__, current.__context__, getattr(current, "exc", None)):
            if isinstance(linked, BaseException):
                pending.append(linked)
    return exc


def _mask_one_exception(masker: _Masker, exc: BaseException) -> None:
    try:
        args = exc.args
    except Exception:  # pragma: no cover - exotic exceptions
        return
    masked = tuple(_mask_argument(masker, argument) for argument in args)
    if any(new is not old for new, old in zip(masked, args, strict=True)):
        with contextlib.suppress(Exception):  # an exotic exception with read-only args
            exc.args = masked
    attributes = getattr(exc, "__dict__", None)
    if not attributes:
        return
    for name, value in list(attributes.items()):
        if isinstance(value, (str, list, tuple, dict, bytes)) and not name.startswith("__"):
            new_value = _mask_argument(masker, value)
            if new_value is not value and new_value != value:
                with contextlib.suppress(Exception):
                    setattr(exc, name, new_value)


def _mask_argument(masker: _Masker, argument: Any) -> Any:
    if isinstance(argument, str):
        return masker.mask_text(argument)
    if isinstance(argument, (int, float, type(None), BaseException)):
        return argument
    return _Walker(masker, objects_as_repr=True).walk(argument, 0)


def _app_masks(app: Any) -> tuple[bool, frozenset[str] | None]:
    """Whether ``app`` has the extension installed with masking on, and its keys."""
    if app is None or not app.__dict__.get("_celery_jobs_ext_installed"):
        return False, None
    from celery_jobs_ext.config import ConfigCache

    try:
        config = ConfigCache.get(app)
    except Exception:  # a bad setting stops the worker elsewhere, with its own message
        return False, None
    keys = frozenset(config.mask_keys) if config.mask_keys is not None else None
    return config.mask_secrets, keys


def add_masking_filter(logger: logging.Logger, keys: Iterable[str] | None = None) -> None:
    """Put a :class:`MaskingFilter` on every handler of ``logger`` that lacks one (idempotent)."""
    for handler in logger.handlers:
        if not any(isinstance(existing, MaskingFilter) for existing in handler.filters):
            handler.addFilter(MaskingFilter(keys=keys))


@after_setup_logger.connect(weak=False, dispatch_uid="celery_jobs_ext.masking.worker_logger")
@after_setup_task_logger.connect(weak=False, dispatch_uid="celery_jobs_ext.masking.task_logger")
def _filter_worker_logs(logger: logging.Logger | None = None, **kwargs: Any) -> None:
    """Mask every record the worker's handlers write, once Celery has set them up.

    Celery sends these in the worker and again in each pool process; the filter is
    added once per handler. Exceptions here would be logged and swallowed by Celery.
    """
    from celery import current_app

    enabled, keys = _app_masks(current_app._get_current_object())
    if not enabled or logger is None:
        return
    add_masking_filter(logger, keys)
    root = logging.getLogger()
    if root is not logger:
        add_masking_filter(root, keys)


class MaskingRequest(Request):  # type: ignore[misc]
    """Worker request that masks what it puts in task events (Flower, ``celery events``).

    Producers of GuardedTasks already send masked ``argsrepr``/``kwargsrepr``; this also
    covers messages from elsewhere (``send_task``) and the result and exception reprs that
    events carry. Only runs when events are on.
    """

    def send_event(self, type: str, **fields: Any) -> None:
        eventer = self._eventer
        if not (eventer and eventer.enabled and self.task.send_events):
            return
        enabled, keys = _app_masks(self.task.app)
        if enabled:
            masker = _masker(keys)
            for name in ("args", "kwargs", "result", "exception", "traceback"):
                value = fields.get(name)
                if value is not None:
                    fields[name] = masker.mask_text(value if isinstance(value, str) else saferepr(value))
        super().send_event(type, **fields)


def masking_strategy(task: Any, app: Any, consumer: Any, **kwargs: Any) -> Any:
    """Celery's default strategy, with the message's reprs masked before the worker shows them.

    The worker sends ``task-received`` events straight from the strategy (not through the
    request), using the ``argsrepr`` the producer wrote. GuardedTask producers mask it
    already; this covers messages published any other way (``send_task``, other
    languages). It costs nothing while events are off.
    """
    from celery.worker.strategy import default

    handle = default(task, app, consumer, **kwargs)
    enabled, keys = _app_masks(app)
    eventer = consumer.event_dispatcher
    if not enabled or eventer is None or not task.send_events:
        return handle
    masker = _masker(keys)

    def task_message_handler(
        message: Any, body: Any, ack: Any, reject: Any, callbacks: Any, **kw: Any
    ) -> Any:
        if eventer.enabled:
            headers = message.headers
            if headers:
                for name in ("argsrepr", "kwargsrepr"):
                    value = headers.get(name)
                    if isinstance(value, str):
                        headers[name] = masker.mask_text(value)
        return handle(message, body, ack, reject, callbacks, **kw)

    return task_message_handler
