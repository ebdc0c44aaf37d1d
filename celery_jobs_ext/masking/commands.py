"""Credentials on command lines outside the dash grammar of :mod:`.cli`, after the tools' manuals.

- Windows-style options: FreeRDP's ``/p:PW``, ``/gp:PW``, ``/pth:HASH`` and the ``p:`` of its
  ``/gateway:`` list;
- positional passwords: ``net use [device] [\\\\host\\share] PW /user:x`` (also after ``/user``),
  ``net user NAME PW``, MinIO's ``mc alias set NAME URL ACCESS_KEY SECRET_KEY`` (and
  ``mc config host add``), Oracle's ``user/PW@db`` logon (``sqlplus``, ``sqlldr``, ``expdp``,
  ``impdp``, ``rman``, ``dgmgrl``, ``CONNECT``, ``userid=``);
- ``config set KEY VALUE`` commands (npm, yarn, pnpm, git, pip, aws, conda, poetry) where KEY is
  secret-named (``npm config set //registry/:_password X``), and secret stores' ``set``
  commands, whose value is a secret whatever its name (``gh secret set N --body X``,
  ``dotnet user-secrets set K X``, ``fly secrets set K=X``);
- secrets fed on standard input to a program that reads one there: a here-string
  (``docker login --password-stdin <<< PW``) or ``echo PW |`` / ``printf '%s' PW |`` before it.

Each rule starts at a literal (the tool's name, ``<<<``, ``echo``), reads the rest of that
command (to the line's end, a ``;`` or a pipe, at most :data:`MAX_COMMAND` characters) once, and
goes on after it, so hostile repetitions stay linear.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from typing import Final

from celery_jobs_ext.masking.engine import Replace, Rule, lowercase_rule
from celery_jobs_ext.masking.keys import PASSWORD, SECRET, KeyMatcher, hides_nothing

MAX_COMMAND: Final = 1024
#: A shell word: unquoted characters, quoted strings and escapes, joined (``/p:"a b"``).
_WORD = re.compile(r"""(?:[^\s;|&<>"'\\]|\\.|"[^"\n]*"|'[^'\n]*')+|[;|&<>]+""")
_COMMAND_END = re.compile(r"[\r\n]|\\[nr]|[;|]|&&")


def _line_end(text: str, start: int, limit: int) -> int:
    """Where the line from ``start`` ends (also at an escaped newline, as in a repr)."""
    for end_of_line in ("\n", "\\n", "\r"):
        found = text.find(end_of_line, start, limit)
        if found >= 0:
            limit = found
    return limit


Word = tuple[int, int, str]  # start, end, text
#: The words of one command -> the spans to mask and their labels.
WordsMasker = Callable[[list[Word], KeyMatcher], list[tuple[int, int, str]]]


def _words(text: str, start: int, end: int, most: int = 64) -> list[Word]:
    """The first ``most`` words of the command in ``text[start:end]`` (it ends at a redirection)."""
    words: list[Word] = []
    for found in _WORD.finditer(text, start, end):
        if found.group()[0] in ";|&<>" or len(words) == most:
            break
        words.append((found.start(), found.end(), found.group()))
    return words


def _unquoted(start: int, end: int, word: str) -> tuple[int, int, str]:
    """The span of ``word``'s content without the quotes around all of it (also escaped quotes,
    as in a repr of a command line: ``\\'PW\\'``)."""
    found = _QUOTED_WORD.fullmatch(word)
    if found is None:
        return start, end, word
    return start + found.start(2), start + found.end(2), found.group(2)


_QUOTED_WORD = re.compile(r"""(\\?["'])(.*)\1""", re.DOTALL)


def _secret_span(start: int, end: int, word: str, label: str) -> list[tuple[int, int, str]]:
    start, end, value = _unquoted(start, end, word)
    if not value or value == "*" or hides_nothing(value, label, structured=True):
        return []
    return [(start, end, label)]


def _command_rule(
    name: str,
    triggers: frozenset[str],
    pattern: str,
    masker: WordsMasker,
    matcher: KeyMatcher,
    accept: Callable[[str, re.Match[str]], bool] | None = None,
    most: int = 16,
) -> Rule:
    """A rule that reads the command after ``pattern`` (a tool's name) and masks what
    ``masker`` finds in its words; ``accept`` may refuse a match by what precedes it."""

    def replace(text: str, match: re.Match[str]) -> tuple[str, int] | int | None:
        if accept is not None and not accept(text, match):
            return match.end()
        start = match.end()
        limit = min(len(text), start + MAX_COMMAND)
        end = _line_end(text, start, limit)
        words = _words(text, start, end, most)
        if len(words) == most:
            end = words[-1][1]  # a command this long is not one: go on after what was read
        elif words and words[-1][1] < end and text[words[-1][1]] in ";|&<>":
            end = words[-1][1]
        spans = masker(words, matcher)
        if not spans:
            return max(end, match.end())
        pieces: list[str] = []
        position = match.start()
        for span_start, span_end, label in sorted(spans):
            if span_start < position:
                continue  # inside a span already masked
            pieces += (text[position:span_start], label)
            position = span_end
        pieces.append(text[position:end])
        return "".join(pieces), end

    return lowercase_rule(name, triggers, pattern, replace)


# -- FreeRDP: /p:PW, /gp:PW, /pth:HASH, /gateway:g:host,u:user,p:PW --------------------------------

_RDP_OPTION = re.compile(r"[/-](?:p|gp|pth|password|gateway-password):", re.IGNORECASE)
_RDP_GATEWAY = re.compile(r"[/-](?:gateway|g):", re.IGNORECASE)
_RDP_GATEWAY_PASSWORD = re.compile(r"(?:^|,)p:([^,]*)")


def _freerdp(words: list[Word], matcher: KeyMatcher) -> list[tuple[int, int, str]]:
    spans = []
    for start, end, word in words:
        option = _RDP_OPTION.match(word)
        if option is not None:
            spans += _secret_span(start + option.end(), end, word[option.end() :], PASSWORD)
        elif _RDP_GATEWAY.match(word):
            for found in _RDP_GATEWAY_PASSWORD.finditer(word, word.index(":") + 1):
                spans += _secret_span(start + found.start(1), start + found.end(1), found.group(1), PASSWORD)
    return spans


# -- net use [device] [\\host\share] [PW|*] [/user:x]; net user NAME [PW|*] ------------------------

_DEVICE = re.compile(r"(?:[A-Za-z]|LPT\d|COM\d):|\*", re.IGNORECASE)


def _net(words: list[Word], matcher: KeyMatcher) -> list[tuple[int, int, str]]:
    if not words or words[0][2].lower() not in ("use", "user"):
        return []
    positional = [word for word in words[1:] if not word[2].startswith("/")]
    if words[0][2].lower() == "user":
        return _secret_span(*positional[1], PASSWORD) if len(positional) >= 2 else []
    share = False
    for start, end, word in positional:
        if word.lstrip("\"'").startswith("\\\\"):
            share = True  # the password comes after the share (net use's syntax)
        elif share and not _DEVICE.fullmatch(word):
            return _secret_span(start, end, word, PASSWORD)  # the one password net use takes
    return []


# -- mc alias set NAME URL ACCESS_KEY SECRET_KEY; mc config host add … ----------------------------

_MC_VALUED_OPTIONS: Final = frozenset({"--api", "--path", "--lookup"})


def _minio(words: list[Word], matcher: KeyMatcher) -> list[tuple[int, int, str]]:
    names = [word[2].lower() for word in words[:3]]
    if names[:2] in (["alias", "set"], ["alias", "add"]):
        rest = words[2:]
    elif names[:3] == ["config", "host", "add"]:
        rest = words[3:]
    else:
        return []
    positional: list[Word] = []
    skip = False
    for word in rest:
        if skip:
            skip = False
        elif word[2].startswith("-"):
            skip = "=" not in word[2] and word[2].lower() in _MC_VALUED_OPTIONS
        else:
            positional.append(word)
    return _secret_span(*positional[3], SECRET) if len(positional) >= 4 else []


# -- Oracle logons: sqlplus user/PW@db, rman target user/PW@db, CONNECT user/PW, userid=… ----------

_ORACLE_LOGON = re.compile(
    r"""(?i:userid=)?(?P<user>[A-Za-z_][\w$#.]{0,127}|"[^"]{1,128}")/(?P<password>"[^"]*"|[^\s@/"]+)(?=@|$)"""
)
_RMAN_TARGETS: Final = frozenset({"target", "catalog", "auxiliary"})


def _oracle(words: list[Word], matcher: KeyMatcher) -> list[tuple[int, int, str]]:
    spans = []
    expect_logon = True
    for start, _end, word in words:
        lowered = word.lower()
        if lowered in _RMAN_TARGETS:
            expect_logon = True
            continue
        if word.startswith("-") and not lowered.startswith("userid="):
            continue  # sqlplus -s, -l, -m "…"
        logon = _ORACLE_LOGON.match(word) if expect_logon or lowered.startswith("userid=") else None
        if logon is not None:
            spans += _secret_span(
                start + logon.start("password"),
                start + logon.end("password"),
                logon.group("password"),
                PASSWORD,
            )
        expect_logon = False
    return spans


# -- config set KEY VALUE; secret stores' set commands --------------------------------------------

_CONFIG_TOOLS: Final = frozenset({"npm", "yarn", "pnpm", "git", "pip", "pip3", "aws", "conda", "poetry"})
_POETRY_CREDENTIALS: Final = (("http-basic.", 2), ("pypi-token.", 1))


def _config_set(words: list[Word], matcher: KeyMatcher) -> list[tuple[int, int, str]]:
    values = [word for word in words if not word[2].startswith("-")]
    if values and values[0][2].lower() in ("set", "add"):
        values = values[1:]
    if not values:
        return []
    key = values[0][2].strip("\"'")
    for prefix, position in _POETRY_CREDENTIALS:
        if key.lower().startswith(prefix):
            return _secret_span(*values[position], PASSWORD) if len(values) > position else []
    if "=" in key:  # npm config set KEY=VALUE: the assignment rule judges it
        return []
    label = matcher.label_for(key)
    return _secret_span(*values[1], label) if label is not None and len(values) >= 2 else []


def _secret_store_set(words: list[Word], matcher: KeyMatcher) -> list[tuple[int, int, str]]:
    spans: list[tuple[int, int, str]] = []
    positional: list[Word] = []
    skip = False
    for index, (start, end, word) in enumerate(words):
        lowered = word.lower()
        if skip:
            skip = False
        elif lowered in ("--body", "-b") and index + 1 < len(words):
            spans += _secret_span(*words[index + 1], SECRET)
            skip = True  # the value, read
        elif lowered.startswith("--body="):
            spans += _secret_span(start + 7, end, word[7:], SECRET)
        elif "=" in word and not word.startswith("-"):
            equals = word.index("=") + 1
            spans += _secret_span(start + equals, end, word[equals:], SECRET)  # fly secrets set K=V
        elif not word.startswith("-"):
            positional.append((start, end, word))
    if not spans and len(positional) >= 2:  # dotnet user-secrets set KEY VALUE
        spans += _secret_span(*positional[1], SECRET)
    return spans


# -- standard input: here-strings and echo/printf piped to a program reading a secret there -------

#: Programs and options that read a password or token from standard input.
_STDIN_READER = re.compile(
    r"(?:pass(?:word|wd|phrase)?|token|secret|key)[\w-]*-stdin(?![\w-])"
    r"|(?<![\w-])(?:--stdin|--with-token|chpasswd|--passphrase-fd[ \t]+0"
    r"|-pass(?:in|out)?[ \t]+stdin)(?![\w-])"
    r"|(?<![\w-])login(?:[ \t]+[^\s|;]+)*[ \t]+-(?=[ \t]|$)"
)
_HERE_STRING_VALUE = r"""(?P<value>\\?"[^"\n]*?\\?"|\\?'[^'\n]*?\\?'|[^\s;|&"'\\]+)"""
_LAST_OPTION = re.compile(r"(?:^|[ \t])--?(?P<name>[a-z][a-z0-9_-]{1,40})[ \t]*$")


def _reads_secret(command: str, matcher: KeyMatcher) -> bool:
    if _STDIN_READER.search(command):
        return True
    option = _LAST_OPTION.search(command)  # mysql --password <<< PW: the option takes it
    return option is not None and matcher.label_for(option.group("name")) is not None


def _command_before(text: str, position: int) -> str:
    """The lowercased command that ends at ``position`` (back to a line end, ``;``, ``|``, ``&``)."""
    window = text[max(0, position - 256) : position]
    cut = max(window.rfind("<<<") + 2, *(window.rfind(char) for char in "\n;|&"))
    return window[cut + 1 :].lower()


#: Whether a text holds any program that reads a secret on standard input: looked for once per
#: text, so that hostile input full of ``<<<`` or ``echo x |`` costs one scan.
_ANY_READER = re.compile(
    r"-stdin|--with-token|chpasswd|--passphrase-fd|[ \t]-(?:[ \t]|$)|--?[a-z_-]{0,40}[ \t]+<<<", re.IGNORECASE
)


class _ReaderCache(threading.local):
    def __init__(self) -> None:
        self.text: str | None = None
        self.found = False

    def any_reader(self, text: str) -> bool:
        if text is not self.text:
            self.text, self.found = text, _ANY_READER.search(text) is not None
        return self.found


def here_string_rule(matcher: KeyMatcher) -> Rule:
    cache = _ReaderCache()

    def replace(text: str, match: re.Match[str]) -> tuple[str, int] | int | None:
        if not cache.any_reader(text):
            return len(text)
        if not _reads_secret(_command_before(text, match.start()), matcher):
            return match.end()
        spans = _secret_span(
            match.start("value"),
            match.end("value"),
            text[match.start("value") : match.end("value")],
            PASSWORD,
        )
        if not spans:
            return match.end()
        start, end, label = spans[0]
        return text[match.start() : start] + label, end

    return lowercase_rule("here-string", frozenset({"<<<"}), r"<<<[ \t]*" + _HERE_STRING_VALUE, replace)


_PRINTF_FORMAT = re.compile(r"""["']?%s(?:\\n)?["']?""")


def _piped_secret(words: list[Word], matcher: KeyMatcher) -> list[tuple[int, int, str]]:
    values = [word for word in words if not re.fullmatch(r"-[neE]+", word[2])]
    if values and _PRINTF_FORMAT.fullmatch(values[0][2]):
        values = values[1:]  # printf '%s' PW
    if len(values) != 1:
        return []
    start, end, word = _unquoted(*values[0])
    return _secret_span(start, end, word, PASSWORD)


def _piped_replacer(matcher: KeyMatcher) -> Replace:
    """``echo PW | docker login --password-stdin``, ``printf '%s\\n' PW | gh auth login --with-token``."""
    cache = _ReaderCache()

    def replace(text: str, match: re.Match[str]) -> tuple[str, int] | int | None:
        if not cache.any_reader(text):
            return len(text)
        start = match.end()
        limit = min(len(text), start + MAX_COMMAND)
        found = _COMMAND_END.search(text, start, limit)
        if found is None or found.group() != "|":
            return found.start() if found else limit
        reader_limit = min(len(text), found.end() + MAX_COMMAND)
        end_of_reader = _COMMAND_END.search(text, found.end(), reader_limit)
        reader = text[found.end() : end_of_reader.start() if end_of_reader else reader_limit].lower()
        chpasswd = "chpasswd" in reader
        if not _reads_secret(reader, matcher):
            return found.start()
        spans = _piped_secret(_words(text, start, found.start()), matcher)
        if chpasswd and spans:  # echo 'user:PW' | chpasswd: the user name stays
            span_start, span_end, label = spans[0]
            colon = text.find(":", span_start, span_end)
            spans = [(colon + 1, span_end, label)] if colon >= 0 else spans
        if not spans:
            return found.start()
        span_start, span_end, label = spans[0]
        return text[match.start() : span_start] + label + text[span_end : found.start()], found.start()

    return replace


def _after_word(*words: str) -> Callable[[str, re.Match[str]], bool]:
    """Accept a match whose previous word (its path and ``.exe`` dropped) is one of ``words``."""

    def accept(text: str, match: re.Match[str]) -> bool:
        before = text[max(0, match.start() - 64) : match.start()].rstrip(" \t").rsplit(None, 1)
        previous = before[-1] if before else ""
        return previous.strip("'\"[](),").rsplit("/", 1)[-1].lower().removesuffix(".exe") in words

    return accept


# -- passwords by position (red-team round 2, from the tools' manuals) ---------------------------

#: Tool -> (sub-command or word, how many words after it, whether the password is the last).
#: ``rabbitmqctl add_user NAME PW``, ``redis-cli AUTH [USER] PW``, ``db2 connect … using PW``,
#: ``nmcli … password PW``, ``schtasks … /rp PW``, ``wpa_passphrase SSID PW``.
_POSITIONAL: Final = {
    "rabbitmqctl": {"add_user": 2, "change_password": 2},
    "redis-cli": {"auth": -1},
    "valkey-cli": {"auth": -1},
    "db2": {"using": 1},
    "nmcli": {"password": 1},
    "schtasks": {"/rp": 1},
    "wpa_passphrase": {"": 2},
}


def _positional_masker(tool: str) -> WordsMasker:
    table = _POSITIONAL[tool]

    def mask(words: list[Word], matcher: KeyMatcher) -> list[tuple[int, int, str]]:
        names = [word[2].lower() for word in words]
        for keyword, count in table.items():
            if keyword == "":
                after = [word for word in words if not word[2].startswith("-")]
            elif keyword in names:
                after = words[names.index(keyword) + 1 :]
            else:
                continue
            if count == -1:  # AUTH [user] password: the last of one or two words
                rest = after[:2]
                return _secret_span(*rest[-1], PASSWORD) if rest else []
            if len(after) >= count:
                return _secret_span(*after[count - 1], PASSWORD)
        return []

    return mask


def command_rules(matcher: KeyMatcher) -> tuple[Rule, ...]:
    """The rules of this module, cheapest literal first in each pattern."""
    tool = r"(?<![\w/.-]{name})(?:\.exe)?(?=[ \t])"
    oracle_tools = ("sqlplus", "sqlldr", "expdp", "impdp", "rman", "dgmgrl")
    return (
        _command_rule(
            "freerdp", frozenset({"freerdp"}), r"freerdp3?(?:\.exe)?(?=[ \t])", _freerdp, matcher, most=48
        ),
        _command_rule(
            "net",
            frozenset({"net use"}),
            r"net(?<![\w/.-]net)(?:\.exe)?(?=[ \t]+use(?:[ \t]+\S{1,16})?[ \t]+[\"']?\\\\|[ \t]+user[ \t])",
            _net,
            matcher,
        ),
        _command_rule("minio", frozenset({"mc "}), tool.format(name="mc").join(("mc", "")), _minio, matcher),
        *(
            _command_rule(
                f"oracle:{name}", frozenset({name}), name + tool.format(name=name), _oracle, matcher
            )
            for name in oracle_tools
        ),
        _command_rule(
            "oracle:connect",
            frozenset({"conn"}),
            # SQL*Plus's CONNECT: at the start of a line, or after its prompt.
            r"conn(?:(?<![^\n]conn)|(?<=sql> conn))(?:ect)?(?=[ \t])",
            _oracle,
            matcher,
        ),
        _command_rule(
            "config-set",
            frozenset({"config"}),
            r"config(?:ure)?(?=[ \t])",
            _config_set,
            matcher,
            _after_word(*_CONFIG_TOOLS),
        ),
        _command_rule(
            "secret-store-set",
            frozenset({"secret"}),
            r"secrets?[ \t]+set(?=[ \t])",
            _secret_store_set,
            matcher,
            _after_word("gh", "user-", "fly", "flyctl"),
        ),
        *(
            _command_rule(
                f"positional:{name}",
                frozenset({name}),
                name + tool.format(name=name),
                _positional_masker(name),
                matcher,
            )
            for name in _POSITIONAL
        ),
        here_string_rule(matcher),
        *(
            lowercase_rule(
                f"piped-secret:{name}",
                frozenset({name}),
                name + tool.format(name=name),
                _piped_replacer(matcher),
            )
            for name in ("echo", "printf")
        ),
    )
