"""Password and key files, server directives and password hashes: netrc, .pgpass, redis.conf,
crypt(3), PuTTY's .ppk.

Each has a line syntax of its own, so a value is found by that syntax rather than by a key
name: netrc's ``password`` token after ``machine``/``login``, .pgpass's fifth field, a
``requirepass`` directive, a ``$2b$``/``$6$``/``$apr1$`` hash, a .ppk file's private lines and
MAC.
"""

from __future__ import annotations

import re
from typing import Final

from celery_jobs_ext.masking.engine import Rule, fixed, literal_rule, lowercase_rule, span
from celery_jobs_ext.masking.keys import PASSWORD, PRIVATE_KEY, KeyMatcher, hides_nothing
from celery_jobs_ext.masking.truncated import VENDOR_PREFIXES

#: netrc: ``machine host login user password secret`` (on one line or several). Needs a
#: ``machine``, ``default`` or ``login`` token shortly before, so prose "password is" is kept.
#: A separator is not a value: ``CREATE LOGIN app WITH PASSWORD = 'S'`` is the key rule's.
_NETRC = r"password(?<![\w-]password)[ \t]+(?P<value>(?![=:]{1,3}(?:\s|$))[^\s]{1,1024})"
_NETRC_CONTEXT = re.compile(r"(?:^|\s)(?:machine|default|login)\s", re.IGNORECASE)


def _replace_netrc(text: str, match: re.Match[str]) -> tuple[str, int] | None:
    if not _NETRC_CONTEXT.search(text, max(0, match.start() - 256), match.start()):
        return None
    start = match.start("value")
    value = span(text, match, "value")
    if hides_nothing(value, PASSWORD):
        return None
    return text[match.start() : start] + PASSWORD, match.end()


#: .pgpass: ``hostname:port:database:username:password``, one entry per line.
#: ``(?=(?P<x>…))(?P=x)`` is an atomic group (Python 3.10 has no possessive quantifiers): a
#: field that is not followed by its ``:`` fails at once instead of giving back characters.
_PGPASS = (
    r":(?:\d{1,5}|\*):(?=(?P<database>[^:\s]{1,256}))(?P=database):(?=(?P<user>[^:\s]{1,256}))(?P=user):"
    r"(?=(?P<value>(?:[^\s:\\'\"]|\\[^nr'\"]){1,1024}))(?P=value)"
    r"(?=\\?['\"]?[ \t]*(?:[)\],]|\r?\n|\\[nr]|$))"
)
#: A host: a name holding a letter, an IPv4 address, ``*`` or a bracketed IPv6 address.
_PGPASS_HOST = re.compile(
    r"[\w.-]{0,253}[A-Za-z][\w.-]{0,253}|\d{1,3}(?:\.\d{1,3}){3}|\*|\[[0-9a-fA-F:.]{2,45}\]"
)
_HOST_CHARS: Final = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-*[]:"
_PGPASS_LINE_STARTS: Final = frozenset("\n\r \t'\"([,")
_MAX_HOST: Final = 300


def _replace_pgpass(text: str, match: re.Match[str]) -> tuple[str, int] | None:
    start = match.start()
    window = text[max(0, start - _MAX_HOST) : start]
    host = window[len(window.rstrip(_HOST_CHARS)) :]
    host_start = start - len(host)
    if not _PGPASS_HOST.fullmatch(host):
        return None
    before = text[max(0, host_start - 2) : host_start]
    if host_start > 0 and not (before[-1:] in _PGPASS_LINE_STARTS or before in ("\\n", "\\'", '\\"')):
        return None  # the host must start the line (or a quoted string)
    value = span(text, match, "value")
    if hides_nothing(value, PASSWORD):
        return None
    return text[start : match.start("value")] + PASSWORD, match.end()


#: Server configuration directives written ``name value`` (redis.conf ``requirepass`` and
#: ``masterauth``), at the start of a line or after a space.
_DIRECTIVE = r"(?<![\w-])(?:requirepass|masterauth)[ \t]+(?P<value>[^\s'\"]{1,1024})"


def _replace_directive(text: str, match: re.Match[str]) -> tuple[str, int] | None:
    value = span(text, match, "value")
    if hides_nothing(value, PASSWORD) or value.startswith("***"):
        return None
    return text[match.start() : match.start("value")] + PASSWORD, match.end()


#: PuTTY's key file (PuTTY manual, appendix C "PPK file format"): ``Private-Lines: N`` then N
#: lines of base64 (the private key, encrypted or not), then ``Private-MAC:`` (or version 1's
#: ``Private-Hash:``) and hex. Lines may be real or escaped newlines (a repr).
_PPK_NEWLINE = r"(?:\r?\n|(?:\\r)?\\n)"
_PPK = (
    r"Private-Lines:[ \t]*[0-9]{1,4}[ \t]*"
    + _PPK_NEWLINE
    + r"(?P<body>(?:[A-Za-z0-9+/=]{1,128}"
    + _PPK_NEWLINE
    + r"){0,4096}"
    r"(?:Private-(?:MAC|Hash):[ \t]*[0-9a-fA-F]{20,128}|[A-Za-z0-9+/=]{1,128}))"
    r"|Private-(?:MAC|Hash):[ \t]*(?P<mac>[0-9a-fA-F]{20,128})"
)


def _replace_ppk(text: str, match: re.Match[str]) -> tuple[str, int]:
    group = "body" if match.group("body") is not None else "mac"
    return text[match.start() : match.start(group)] + PRIVATE_KEY, match.end(group)


#: Bundler's credentials for a gem source: ``BUNDLE_<HOST>`` with ``__`` for each dot
#: (``BUNDLE_GEMS__EXAMPLE__COM=user:password``, Bundler's bundle-config manual).
_BUNDLER = (
    r"bundle_(?<![a-z0-9_]bundle_)[a-z0-9_]{0,128}__[a-z0-9_]{1,64}\\?[\"']?[ \t]*(?:=|:(?![:=]))[ \t]*"
    r"(?P<quote>\\?[\"']?)(?P<value>[^\s\"';&\\]{1,1024})"
)


def _replace_bundler(text: str, match: re.Match[str]) -> tuple[str, int] | None:
    value = span(text, match, "value")
    if hides_nothing(value, PASSWORD):
        return None
    return text[match.start() : match.start("value")] + PASSWORD, match.end("value")


HASH_RULES: Final = (
    lowercase_rule("bundler-credentials", frozenset({"bundle_"}), _BUNDLER, _replace_bundler),
    literal_rule("putty-key-file", "private-", _PPK, _replace_ppk),
    lowercase_rule(
        "server-directive", frozenset({"requirepass", "masterauth"}), _DIRECTIVE, _replace_directive
    ),
    # bcrypt ($2a$/$2b$/$2y$), Apache MD5 ($apr1$), MD5/SHA-256/SHA-512 crypt ($1$, $5$, $6$,
    # with rounds=), yescrypt ($y$): what htpasswd and /etc/shadow hold. Offline-crackable.
    literal_rule(
        "password-hash",
        "$",
        r"\$(?:2[abxy]?\$[0-9]{2}\$[./A-Za-z0-9]{53}"
        r"|(?:apr1|1|5|6)\$(?:rounds=[0-9]{1,9}\$)?[./A-Za-z0-9]{1,16}\$[./A-Za-z0-9]{22,86}"
        r"|y\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{1,64}\$[./A-Za-z0-9]{43})",
        fixed(PASSWORD),
    ),
    lowercase_rule("netrc", frozenset({"pass"}), _NETRC, _replace_netrc),
    literal_rule("pgpass", ":", _PGPASS, _replace_pgpass),
)


#: A configuration line of a secret-named directive and its value, space-separated, alone on
#: its line (red-team round 2): Dockerfile ``ENV POSTGRES_PASSWORD S``, csh ``setenv DB_PASSWD
#: S``, keepalived ``auth_pass S``, slapd ``bind_pw S``, BIND and nginx ``secret "S";``. Written
#: lowercase: runs on the lowercased text.
_DIRECTIVE_TAIL = (
    r"[ \t]*(?:(?:env|setenv|export|set)[ \t]+)?(?P<key>[a-z][a-z0-9_.-]{0,63})[ \t]+"
    r"(?P<value>\"[^\"\n]{1,256}\"|'[^'\n]{1,256}'|(?![=:])[^\s\"';\\]{1,256})[ \t]*;?(?:[ \t]+#[^\n\"'\\]*)?"
    r"(?=\r?\n|\Z|\\[rn]|\\?[\"'])"
)
#: Where a line starts: the text's start (also inside the quotes of its repr or JSON string), a
#: newline, an escaped newline. Each begins with an anchor or a literal, which the regex engine
#: finds without trying every position: one alternation of them cost 25 µs per KB of text.
_LINE_STARTS: Final = (r"\A(?:[\[(]{0,2}[bru]?\\?[\"'])?", r"\n", r"\\n")
#: A value with something other than letters: "password reset" and "token expired" are prose.
_NOT_ONLY_LETTERS = re.compile(r"[^A-Za-z]")


def directive_line_rules(matcher: KeyMatcher) -> tuple[Rule, ...]:
    def replace(text: str, match: re.Match[str]) -> tuple[str, int] | None:
        label = matcher.label_for(span(text, match, "key"))
        if label is None:
            return None
        start, end = match.start("value"), match.end("value")
        if text[start] in "\"'":
            start, end = start + 1, end - 1
        value = text[start:end]
        if (
            not _NOT_ONLY_LETTERS.search(value)
            # a mask, "password (optional)", a vendor's key (the vendor rules label it)
            or value.startswith(("***", "(", "[", "<", "{", *VENDOR_PREFIXES))
            or hides_nothing(value, label)
        ):
            return None
        return text[match.start() : start] + label, end

    return tuple(
        lowercase_rule(f"directive-line:{index}", matcher.last_words, line_start + _DIRECTIVE_TAIL, replace)
        for index, line_start in enumerate(_LINE_STARTS)
    )
