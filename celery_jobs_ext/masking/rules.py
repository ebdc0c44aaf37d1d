"""The text rules: secrets with a shape of their own, and the key=value forms that carry others.

Every rule masks a value whole, as the syntax around it delimits it: a quoted value to its
closing quote, a bare value to whitespace or to the end of its field (see :func:`bare_value_end`),
a URL password to the ``@`` before the host. Placeholders and masks are left as they are.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Final

from celery_jobs_ext.masking.containers import OPENERS, mask_container
from celery_jobs_ext.masking.engine import (
    Replace,
    Rule,
    char_classes,
    fixed,
    literal_rule,
    lowercase_rule,
)
from celery_jobs_ext.masking.fields import (
    ESCAPED_SEPARATORS,
    bare_value_end,
    braced_value_end,
    cookies_hide_nothing,
    list_separator,
    long_value_end,
    replace_escaped,
    replace_tab_separated,
    secret_default,
)
from celery_jobs_ext.masking.keys import (
    API_KEY,
    AWS_KEY,
    JWT,
    PRIVATE_KEY,
    SECRET,
    TOKEN,
    KeyMatcher,
    hides_nothing,
    is_placeholder,
)
from celery_jobs_ext.masking.truncated import VENDOR_PREFIXES
from celery_jobs_ext.masking.words import STATUS_WORDS

# PEM private keys. The body never contains "--", so it stops at the END line (or at the next
# BEGIN in hostile input) without backtracking; without an END (a repr cut short) everything up to
# there is masked. Literal "\n" (in reprs and JSON) is just body text.
PEM = literal_rule(
    "private-key",
    "-----begin",
    r"-----BEGIN[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----"
    r"[^-]*(?:-(?!-)[^-]*)*"
    r"(?:-----END[ A-Z0-9]{0,40}PRIVATE KEY(?: BLOCK)?-----)?",
    fixed(PRIVATE_KEY),
)

# ---------------------------------------------------------------------------------------------
# HTTP auth schemes: Authorization: Bearer …, Basic …, Token …
# ---------------------------------------------------------------------------------------------

#: The credential runs to whitespace, a quote or the end; ``Bearer abc:def:ghi`` goes whole.
AUTH_SCHEME = (
    r"(?P<scheme>{word})(?<![a-z0-9_]{word})(?P<space>[ \t]{{1,8}}|%20)"
    r"(?!(?:bearer|basic|token|header|authentication)(?![^\s\"'`<>]))(?P<credential>[^\s\"'`<>]+)"
)
_CREDENTIAL_SYMBOLS: Final = frozenset("._~+/-=:")
#: Words that follow a scheme in prose ("an Authorization: Bearer header", "Bearer tokens").
_PROSE_WORDS: Final = frozenset(
    [
        "header",
        "headers",
        "token",
        "tokens",
        "scheme",
        "schemes",
        "authentication",
        "authorization",
        "auth",
        "prefix",
        "value",
        "values",
        "string",
        "credential",
        "credentials",
        "format",
        "type",
        "access",
        "method",
        "and",
        "or",
        "is",
        "in",
        "with",
        "the",
        "a",
        "an",
        "to",
        "of",
        "for",
        "here",
    ]
)
_MIN_BEARER: Final = 8
_KEY_VALUE = re.compile(r"[A-Za-z_][\w.-]{0,63}=[^=]")
_MIN_TOKEN_SCHEME: Final = 16
#: A credential mixing lowercase, capitals and digits is no word: shorter ones count too.
_MIN_MIXED_TOKEN: Final = 12


def _after_authorization(text: str, start: int) -> bool:
    """Whether the scheme at ``start`` is an ``Authorization`` header's or key's value."""
    before = text[max(0, start - 40) : start].rstrip(" \t\"'")
    if not before.endswith((":", "=", ",")):  # "," in a pair: ('Authorization', 'Token …')
        return False
    return before[:-1].rstrip(" \t\"'").lower().endswith(("authorization", "authorisation"))


def _looks_like_credential(credential: str) -> bool:
    """Not a word of prose ("Bearer authentication"): digits, symbols or inner capitals, or
    lowercase letters longer and more varied than any word (``internationalization``, the
    longest common one, has 20 letters but only 9 distinct ones)."""
    return len(credential) >= _MIN_BEARER and (
        any(char.isdigit() or char in _CREDENTIAL_SYMBOLS for char in credential)
        or credential[1:].lower() != credential[1:]
        or (len(credential) >= _MIN_LETTERS_TOKEN and len(set(credential)) >= _MIN_DISTINCT_LETTERS)
    )


_MIN_LETTERS_TOKEN: Final = 20
_MIN_DISTINCT_LETTERS: Final = 12


def _is_basic_credential(credential: str) -> bool:
    """Whether ``credential`` is the base64 of ``user:password``."""
    try:
        decoded = base64.b64decode(credential + "=" * (-len(credential) % 4), validate=True)
    except (binascii.Error, ValueError):
        return False
    return b":" in decoded and decoded.isascii()


def replace_auth_scheme(text: str, match: re.Match[str]) -> tuple[str, int] | None:
    scheme = match.group("scheme").lower()
    start = match.start("credential")
    end = bare_value_end(text, start, match.end())
    credential = text[start:end].rstrip(".,;")
    end = start + len(credential)
    if not credential or is_placeholder(credential) or credential.startswith("***") or "://" in credential:
        return None  # a placeholder, a mask, or a URL ("API Token https://…/settings/tokens")
    if _after_authorization(text, match.start()):
        secret = credential.lower() not in _PROSE_WORDS and credential.lower() not in STATUS_WORDS
    elif _KEY_VALUE.match(credential):
        secret = False  # "token_type=bearer expires_in=3600": the next field, not a credential
    elif scheme == "bearer":
        secret = _looks_like_credential(credential)
    elif scheme == "basic":
        secret = _is_basic_credential(credential)
    else:  # "token" is a common word: ask for a long credential with digits
        secret = (
            len(credential) >= (_MIN_TOKEN_SCHEME if char_classes(credential) < 3 else _MIN_MIXED_TOKEN)
            and _looks_like_credential(credential)
            and not credential.isalpha()
        )
    if not secret:
        return None
    return text[match.start() : start] + TOKEN, end


AUTH_RULES: Final = tuple(
    lowercase_rule(
        f"auth-scheme:{word}", frozenset({word}), AUTH_SCHEME.format(word=word), replace_auth_scheme
    )
    for word in ("bearer", "basic", "token")
)

# ---------------------------------------------------------------------------------------------
# JWT
# ---------------------------------------------------------------------------------------------

# Header "eyJ…" (base64 of '{"'), then two to four more dot-separated segments (JWS has three
# parts, JWE five; the signature may be empty). '.' cannot occur in a segment, so the repetition
# is unambiguous; the lookbehind rejects an "eyJ" inside a longer run.
JWT_PATTERN = r"eyJ(?<![A-Za-z0-9_-]eyJ)[A-Za-z0-9_-]{2,8192}={0,2}(?:\.[A-Za-z0-9_-]{0,65536}={0,2}){2,4}"


def replace_jwt(text: str, match: re.Match[str]) -> tuple[str, int] | None:
    header = match.group(0).split(".", 1)[0].rstrip("=")
    try:
        decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
    except (binascii.Error, ValueError):
        return None
    return (JWT, match.end()) if isinstance(decoded, dict) else None


# ---------------------------------------------------------------------------------------------
# Secret-named keys in text: key=value, key: value, "key": "value", 'key' => 'value', <key>v</key>
# ---------------------------------------------------------------------------------------------

#: Characters of a key around the secret name (``db_password``, ``spring.datasource.password``).
_KEY_CHARS: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-"
_MAX_KEY_WALK: Final = 64

# The value forms, tried in order: escaped quotes (JSON inside a JSON string), quotes with an
# optional b/r/u prefix (reprs), an unterminated quote (a repr cut short), a bare run. Inside
# quotes a backslash escapes one character: "[^"\\]|\\." is unambiguous, so it cannot backtrack
# exponentially. A bare run is cut to its field by :func:`bare_value_end`. Values are bounded and
# consumed, so "password=" * n costs one match per 2 KB. Written lowercase: runs on lowered text.
_ASSIGNMENT = r"""
    {name}(?=(?P<rest>[a-z0-9_.\]-]{{0,40}}))(?P=rest)(?P<keyquote>\\?["'])?\]?
    # a typed declaration: Go's "var k string = ", Kotlin's and TypeScript's "k: String = "
    (?:(?:[ \t]{{1,4}}|[ \t]{{0,4}}:[ \t]{{0,4}})(?:string|str|final(?:\[str\])?)\??(?=[ \t]{{0,4}}=[^=]))?
    [ \t]{{0,16}}(?P<separator>=>|:{{1,3}}=|[?.+]=|[!=]==?|[=:]
      # a name/value record: {{'name': 'DB_PASSWORD', 'value': 'S'}}, k8s "- name: X\n  value: S"
      | (?:,|\r?\n|(?:\\r)?\\n|(?<=["'])[ \t])[ \t]{{0,16}}
        \\?["']?(?:parameter)?value\\?["']?[ \t]{{0,16}}[=:]
      # a (name, value) pair: ('password', 'S'), define('DB_PASSWORD', 'S')
      | ,(?=[ \t]{{0,16}}[bru]{{0,2}}\\?["'])
      # escaped: percent-encoded (password%3DS, %22password%22%3A%22S%22), Gson's \u003d
      | (?:%22)?%3[ad](?:%20)*(?:%22)? | \\u003d | (?:\\u0022)?\\u003a(?:\\u0022)?
      # tab-separated: "password<TAB>S" at the start of a line
      | (?<=\t)(?=[^\s]) | \\t(?=[^\s\\])
    )[ \t]{{0,16}}(?:!{{1,2}}[a-z][a-z0-9_./-]{{0,32}}[ \t]{{1,16}})?  # a YAML tag: !vault, !!str
    (?:
        [bru]{{0,2}}\\"(?P<v1>(?:[^"\\\n]|\\[^"\n]){{0,2048}})\\"
      | [bru]{{0,2}}\\'(?P<v2>(?:[^'\\\n]|\\[^'\n]){{0,2048}})\\'
      | [bru]{{0,2}}"(?P<v3>(?:[^"\\]|\\[\s\S]|""){{0,2048}})"
      | [bru]{{0,2}}'(?P<v4>(?:[^'\\]|\\[\s\S]|''){{0,2048}})'
      | `(?P<v7>[^`]{{0,2048}})`
      | [bru]{{0,2}}\\?["'](?P<v5>[^"'\\\n]{{1,2048}})
      # a YAML block scalar (password: |, >-) or a value on the next, indented line
      | (?P<v0>(?:[|>][-+0-9]{{0,2}}[ \t]{{0,16}})?(?:\r?\n|(?:\\r)?\\n)[ \t]{{1,64}}(?=[^\s\\]))
      | (?![a-z0-9_.-]{{1,64}}:(?:\s|$)|(?:!\S{{1,33}}[ \t]{{1,16}})?[|>][-+0-9]{{0,2}}[ \t]*(?:\r?\n|$))
        (?P<v6>[^\s=])
    )
"""
#: A comparison with a literal (``if (api_key == "S")``) holds the secret; with a name it is code.
_COMPARISONS: Final = frozenset({"==", "===", "!=", "!=="})
_VALUE_GROUPS: Final = ("v1", "v2", "v3", "v4", "v5", "v6", "v7")
#: An auth scheme after the key (``Authorization: Bearer …``): its own rule masks the credential.
_SCHEME_VALUE = re.compile(r"(?i:bearer|basic|token|digest|negotiate|ntlm|hmac|aws4-hmac-sha256)(?=[ \t]|$)")
#: Placeholders that may hold spaces, recognised where a bare value starts.
_PLACEHOLDER_START = re.compile(
    r"\{\{[^{}\n]{1,64}\}\}|\$\{[^{}\n]{1,64}\}|<[^<>\n]{1,64}>|%\([a-z_]{1,32}\)s"
)
_AFTER_PLACEHOLDER: Final = frozenset(("", " ", "\t", "\n", "\r", ",", ";", "&", '"', "'", ")", "]", "}"))
_MAX_VALUE: Final = 2048
#: A Cookie header's value ends at the line's end, an escaped newline or a closing quote.
_COOKIE_END = re.compile(r"[\r\n]|\\[nr]|[\"'](?=[\s,;)\]}]|$)")
_QUERY_STARTS: Final = frozenset("?&")
_FILE_OPTIONS: Final = ("--from-file=", "--from-env-file=")
_SCHEME_INITIALS: Final = frozenset("bBtTdDnNhHaA")


def _assignment_replacer(matcher: KeyMatcher) -> Replace:
    def replace(text: str, match: re.Match[str]) -> tuple[str, int] | int | None:
        start = match.start()
        before = text[max(0, start - _MAX_KEY_WALK) : start]
        key_start = start - (len(before) - len(before.rstrip(_KEY_CHARS)))
        key_end = match.end("rest")
        label = matcher.label_for(text[key_start:key_end].rstrip("]"))
        if label is None:
            return None
        if text[key_start - 1 : key_start] == ":" and _ARN_BEFORE.search(
            text, max(0, key_start - 256), key_start
        ):
            return None  # arn:aws:secretsmanager:…:secret:prod/db-AbCdEf names a resource
        if text.endswith(_FILE_OPTIONS, 0, key_start):
            return None  # kubectl --from-file=password=./pw.txt: a file's name, not its content
        group = match.lastgroup or "v6"  # the value group closes last
        value_start, value_end = match.start(group), match.end(group)
        if label is TOKEN and text[key_start:key_end].lower().rstrip("]").endswith(_AUTHORIZATION_KEYS):
            scheme = _scheme_and_credential(text, start, value_start, value_end if group != "v6" else None)
            if scheme is not None:
                return scheme
        separator = match.group("separator")
        if (
            group == "v6"
            and (separator == "=" or separator == ":")
            and value_start == match.end("separator")
            and match.group("keyquote") is None
        ):
            simple = _SIMPLE_VALUE.match(text, value_start)
            if simple is not None and not (label is TOKEN and "ookie" in text[key_start:key_end]):
                # A plain token up to whitespace, the end or the next &name=: every check below
                # that could apply to it, without finding its end the long way.
                return _replace_simple(text, start, key_start, key_end, match, label, simple.end())
        default = secret_default(text, value_start, min(len(text), value_start + _MAX_VALUE), label)
        if default is not None:  # ${DB_PASS:S}, os.getenv('X', 'S'): the default is the secret
            return text[start : default[0]] + label, default[1]
        if separator in _COMPARISONS and group == "v6":
            return value_end  # password == other: code comparing two names, no value
        if not separator or separator == "\\t":
            return replace_tab_separated(text, start, key_start, match.start(group), label)
        if separator[:1] in ESCAPED_SEPARATORS:
            return replace_escaped(text, start, match.start(group), label, ESCAPED_SEPARATORS[separator[0]])
        if group == "v0":
            return _replace_indented(text, start, key_start, match, label)
        if _NAME_FIELD_FOLLOWS.match(text, value_end + (text[value_end : value_end + 1] in "\"'")):
            return None  # key="DbPassword" value="…": a name, whose value the next field holds
        if separator == ",":
            if match.group("keyquote") is None:
                return None  # "password, 'x'" is prose or code, not a pair
            if _PAIR_NAME.fullmatch(text, value_start, value_end):
                return value_end  # ('password', 'email'): a list of field names
        if text[value_start : value_start + 1] in _SCHEME_INITIALS and _SCHEME_VALUE.match(
            text, value_start, value_end
        ):
            return None  # "Bearer …": the auth-scheme rule judges the credential
        if group == "v6":
            if text[value_start] == "{" and match.group("separator") == "=":
                braced = braced_value_end(text, value_start, min(len(text), value_start + _MAX_VALUE))
                if braced is not None and not hides_nothing(text[value_start:braced], label):
                    # ODBC: Password={P@ss w0rd;x}; "}}" escapes a brace
                    return text[start:value_start] + label, braced
            if text[value_start] in "{$<%":
                placeholder = _PLACEHOLDER_START.match(text, value_start)
                if (
                    placeholder is not None
                    and text[placeholder.end() : placeholder.end() + 1] in _AFTER_PLACEHOLDER
                ):
                    return placeholder.end()  # "{{ api_key }}", "<your token>": spans spaces
            if text[value_start] in OPENERS:
                # credentials: {'password': 'S'}, auth: ('bob', 'S'): the container's values. Code
                # (a call, a comprehension) and a value that goes on after it, "(abc)def", are
                # values as before.
                walked = mask_container(text, value_start, min(len(text), value_start + _MAX_VALUE), label)
                if walked is not None:
                    masked, end = walked
                    return (text[start:value_start] + masked, end) if masked != text[value_start:end] else end
            if label is TOKEN and "ookie" in text[key_start:key_end] and match.group("keyquote") is None:
                # A Cookie header holds several name=value pairs: hide the whole line.
                line_end = _COOKIE_END.search(text, value_start, value_start + _MAX_VALUE)
                value_end = line_end.start() if line_end else min(len(text), value_start + _MAX_VALUE)
                if cookies_hide_nothing(text[value_start:value_end]):
                    return value_end  # Set-Cookie: theme=dark; Path=/
            else:
                query = key_start > 0 and text[key_start - 1] in _QUERY_STARTS
                # "key: value" after a space (YAML, headers): the value may hold spaces.
                spaces = (
                    match.group("separator") in (":", "=")
                    and match.group("keyquote") is None
                    and value_start > match.end("separator")
                    and (match.group("separator") == ":" or _ini_line(text, key_start, match))
                )
                limit = min(len(text), value_start + _MAX_VALUE)
                value_end = bare_value_end(
                    text, value_start, limit, query, spaces, list_separator(text, key_start)
                )
                if spaces:
                    value_end = value_start + len(text[value_start:value_end].rstrip())
                    first = text[value_start:value_end].split(None, 1)[0]
                    if hides_nothing(first, label):
                        return value_end  # "auth: failed for bob", "token: the one from …"
        if value_end - value_start >= _MAX_VALUE:  # longer than a bounded match: to its delimiter
            value_end = long_value_end(text, value_end, group)
        value = text[value_start:value_end]
        if value.isdigit() and _is_test_count(text, key_start, key_end, value_end):
            return value_end
        if hides_nothing(value, label) or _is_code_assignment(text, key_start, match, value):
            return value_end  # go on after it: "password=none&password2=x"
        if value.startswith("eyJ") and value.count(".") >= 2:
            label = JWT
        elif label is SECRET and (value.startswith(VENDOR_PREFIXES) or _HEX_VENDOR_VALUE.fullmatch(value)):
            # A vendor's key under a generic name (CREDENTIAL=ghp_…) keeps its vendor's label.
            label = AWS_KEY if value.startswith(_AWS_KEY_PREFIXES) else API_KEY
        return text[start:value_start] + label, value_end

    return replace


#: A bare value of token characters that ends at whitespace, the end or ``&name=``.
_SIMPLE_VALUE = re.compile(
    r"(?=(?P<token>[A-Za-z0-9_.+/@~!*^-]{1,2047}))(?P=token)(?=[ \t\r\n]|$|&[\w.\[\]%-]{1,64}=)"
)


def _replace_simple(
    text: str, start: int, key_start: int, key_end: int, match: re.Match[str], label: str, value_end: int
) -> tuple[str, int] | int | None:
    value_start = match.start("v6")
    value = text[value_start:value_end]
    if _NAME_FIELD_FOLLOWS.match(text, value_end):
        return None
    if value[0] in _SCHEME_INITIALS and _SCHEME_VALUE.match(value):
        return None
    if value.isdigit() and _is_test_count(text, key_start, key_end, value_end):
        return value_end
    if hides_nothing(value, label) or _is_code_assignment(text, key_start, match, value):
        return value_end
    if value.startswith("eyJ") and value.count(".") >= 2:
        label = JWT
    elif label is SECRET and (value.startswith(VENDOR_PREFIXES) or _HEX_VENDOR_VALUE.fullmatch(value)):
        label = AWS_KEY if value.startswith(_AWS_KEY_PREFIXES) else API_KEY
    return text[start:value_start] + label, value_end


#: Vendor formats of a short prefix and hex (Twilio SK/AC, Mailgun key-), too short to be
#: prefixes on their own.
_HEX_VENDOR_VALUE = re.compile(r"(?:SK|AC)[0-9a-f]{32}|key-[0-9a-f]{32}")
_AWS_KEY_PREFIXES: Final = ("AKIA", "ASIA", "ABIA", "ACCA", "A3T")
_NAME_FIELD_FOLLOWS = re.compile(
    r"""(?:,|[ \t])[ \t]{0,16}\\?["']?(?i:parameter)?(?i:value)\\?["']?[ \t]{0,16}[=:]"""
)
_INDENT = re.compile(r"[ \t]*")


def _replace_indented(
    text: str, start: int, key_start: int, match: re.Match[str], label: str
) -> tuple[str, int] | int | None:
    """A YAML value below its key: a block scalar's lines, or one indented plain value."""
    line_start = max(0, _line_start(text, key_start))
    key_indent = len(_INDENT.match(text, line_start).group())  # type: ignore[union-attr]
    if text[line_start + key_indent : line_start + key_indent + 2] == "- ":
        key_indent += 2  # a list item's key: "- name: x"
    value_start = match.end("v0")
    block = text[match.start("v0")] in "|>"
    if "\\" in text[match.start("v0") : value_start]:  # in a repr: "password:\\n    S\\n"
        escaped_end = _LINE_END.search(text, value_start, value_start + _MAX_VALUE)
        end = escaped_end.start() if escaped_end else min(len(text), value_start + _MAX_VALUE)
        first = text[value_start:end].strip()
        if not first or _YAML_NESTED.match(first) or hides_nothing(first, label):
            return None
        return text[start:value_start] + label, end
    first_line_end = text.find("\n", value_start)
    first = text[value_start : len(text) if first_line_end < 0 else first_line_end].strip()
    if not block and (_YAML_NESTED.match(first) or hides_nothing(first, label)):
        return None  # a nested mapping or list, not a value
    end = value_start
    limit = min(len(text), value_start + 4 * _MAX_VALUE)
    while end < limit:
        line_end = text.find("\n", end)
        line_end = limit if line_end < 0 or line_end > limit else line_end
        end = line_end
        following = text[line_end + 1 : line_end + 1 + 256]
        indent = len(following) - len(following.lstrip(" \t"))
        if not block or line_end >= limit or indent <= key_indent or not following.strip():
            break
        end = line_end + 1
    end = value_start + len(text[value_start:end].rstrip())
    prefix = text[start : match.start("v0")]
    return prefix + text[match.start("v0") : value_start] + label, end


_YAML_NESTED = re.compile(r"[\w.\"'-]{1,64}:(?:\s|$)|- |#")
_ARN_BEFORE = re.compile(r"arn:[\w:/+=,.@-]{0,240}$")
_AUTHORIZATION_KEYS: Final = ("authorization", "authorisation")
#: ``<scheme> <credential>`` in an Authorization value, any scheme (SSWS, Bot, ApiKey, GenieKey,
#: SharedKey, Splunk, OAuth, Digest, …), the credential possibly on the next line.
_SCHEME_THEN_CREDENTIAL = re.compile(
    r"(?P<scheme>[A-Za-z][\w.-]{0,31})"
    r"(?:[ \t]{1,8}|[ \t]{0,8}(?:\r?\n|(?:\\r)?\\n)[ \t]{0,8})(?P<credential>[^\s\"'`<>])"
)
_LINE_END = re.compile(r"[\r\n]|\\[nr]|[\"'](?=[\s,;)\]}]|$)")
_NEWLINE = re.compile(r"[\r\n]|\\[nr]")
_AUTH_PARAM = re.compile(r"[\w-]{1,32}=\\?[\"']")


def _scheme_and_credential(
    text: str, key_start: int, start: int, end: int | None
) -> tuple[str, int] | int | None:
    """Mask the credential of an Authorization value, keeping its scheme word: the whole rest of
    the value (Digest's parameter list included), to the closing quote or the end of the line.
    None when the value is not ``<scheme> <credential>``."""
    found = _SCHEME_THEN_CREDENTIAL.match(text, start, end if end is not None else len(text))
    if found is None:
        return None
    credential_start = found.start("credential")
    if end is None:
        # Digest's parameters (username="a", response="…") hold quotes: only the line ends them.
        params = _AUTH_PARAM.match(text, credential_start) is not None
        line_end = (_NEWLINE if params else _LINE_END).search(
            text, credential_start, credential_start + _MAX_VALUE
        )
        end = line_end.start() if line_end else min(len(text), credential_start + _MAX_VALUE)
        if params and text[end - 1 : end] in "\"'" and text[credential_start:end].count(text[end - 1]) % 2:
            end -= 1  # the quote around the whole header, not a parameter's
    credential = text[credential_start:end].rstrip()
    end = credential_start + len(credential)
    first = credential.split(None, 1)[0].rstrip(".,;").lower() if credential else ""
    if (
        not first
        or credential.startswith("***")
        or first in _PROSE_WORDS
        or first in STATUS_WORDS
        or is_placeholder(credential.split(None, 1)[0])
    ):
        return end  # masked already, or prose: "Authorization: Bearer header"
    return text[key_start:credential_start] + TOKEN, end


#: A test run's counters beside ``pass=N`` (pytest, TAP, CI summaries).
_TEST_COUNTS = re.compile(
    r"(?<![\w-])(?:fail(?:ed|ures?)?|errors?|skip(?:ped)?|xfail(?:ed)?|todo)[=:][ \t]?\d", re.I
)


def _is_test_count(text: str, key_start: int, key_end: int, value_end: int) -> bool:
    """``pass=1 fail=0``: a count of passed tests, not a password."""
    return text[key_start:key_end].lower() in ("pass", "passes") and (
        _TEST_COUNTS.search(text, max(0, key_start - 64), value_end + 64) is not None
    )


_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]*")
#: The second item of a quoted pair that is another name, not a value.
_PAIR_NAME = re.compile(r"[a-z_]{1,64}|[A-Z_]{1,64}|(?:[A-Z]?[a-z]{1,32}){1,8}")


def _is_code_assignment(text: str, key_start: int, match: re.Match[str], value: str) -> bool:
    """Source code, as tracebacks show it: ``d[key] = value``, ``self.sig = sig``,
    ``to_signature = maybe_signature``, ``Twitter(oauth=auth)``."""
    if (
        text[key_start - 1 : key_start] == "["
        and text[match.start("separator") - 1 : match.start("separator")] in " ]"
    ):
        return True  # a subscript: the key is a variable
    if not _IDENTIFIER.fullmatch(value):
        return False
    key = text[key_start : match.end("rest")].lower()
    name = key.rsplit(".", 1)[-1].rsplit("_", 1)[-1]
    return (len(value) > 1 and value in key) or name in value.split("_")  # a variable under its own name


_MAX_INDENT: Final = 256


def _line_start(text: str, key_start: int) -> int:
    """Where the line holding ``key_start`` starts, looked for at most :data:`_MAX_INDENT` back
    (-1 beyond: a key that far into its line is not at its start), so that a megabyte on one
    line costs no scan back to its start for each key."""
    low = max(0, key_start - _MAX_INDENT)
    found = text.rfind("\n", low, key_start)
    if found >= 0:
        return found + 1
    return 0 if low == 0 else -1


def _ini_line(text: str, key_start: int, match: re.Match[str]) -> bool:
    """``key = value`` alone on its line (INI, properties): the value is the rest of the line."""
    line_start = _line_start(text, key_start)
    return (
        line_start >= 0
        and not text[line_start:key_start].strip()
        and text[match.start("separator") - 1 : match.start("separator")] in " \t"
    )


def _trigger(word: str, words: frozenset[str]) -> str:
    """The literal that gates ``word``'s rule: its first five letters ("passw" serves password
    and passwd), or four when another word shares them ("cred" for credential and creds), since
    each distinct trigger costs one scan of every text."""
    if any(other[:4] == word[:4] and other[:5] != word[:5] for other in words):
        return word[:4]
    return word[:5]


#: A literal compared with a secret-named name, literal first: ``if ("S" == password)``.
_REVERSED_COMPARISON = (
    r"(?P<quote>[\"'])(?P<value>[^\"'\n]{1,256})(?P=quote)[ \t]*[!=]==?[ \t]*(?P<key>[A-Za-z_][\w.]{0,64})"
)


def reversed_comparison_rule(matcher: KeyMatcher) -> Rule:
    def replace(text: str, match: re.Match[str]) -> tuple[str, int] | int | None:
        label = matcher.label_for(match.group("key").rsplit(".", 1)[-1])
        if label is None or hides_nothing(match.group("value"), label, structured=True):
            return match.end("value")
        return label, match.end("value")

    def replace_inside(text: str, match: re.Match[str]) -> tuple[str, int] | int | None:
        replaced = replace(text, match)
        if isinstance(replaced, tuple):  # keep the opening quote
            return text[match.start()] + replaced[0], replaced[1]
        return replaced

    return literal_rule("reversed-comparison", ("==", "!="), _REVERSED_COMPARISON, replace_inside)


def assignment_rules(matcher: KeyMatcher) -> tuple[Rule, ...]:
    """One rule per distinct last word of the secret names (a word containing another is dropped:
    ``auth`` already finds ``authorization``)."""
    words = matcher.last_words
    words = frozenset(word for word in words if not any(other != word and other in word for other in words))
    replace = _assignment_replacer(matcher)
    return tuple(
        lowercase_rule(
            f"secret-key:{word}",
            frozenset({_trigger(word, words)}),
            _ASSIGNMENT.format(name=re.escape(word)),
            replace,
            re.VERBOSE,
        )
        for word in sorted(words)
    )
