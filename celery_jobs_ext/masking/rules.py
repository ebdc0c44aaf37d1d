"""The text rules: shapes of secrets and the key=value forms that carry them."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Final

from celery_jobs_ext.masking.engine import (
    _fixed,
    _keep_group,
    _lowercase_rule,
    _mixed,
    _Replace,
    _Rule,
    _rule,
    _span,
)
from celery_jobs_ext.masking.keys import (
    _API_KEY,
    _AWS_KEY,
    _JWT,
    _PASSWORD,
    _PRIVATE_KEY,
    _TOKEN,
    _KeyMatcher,
)

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
