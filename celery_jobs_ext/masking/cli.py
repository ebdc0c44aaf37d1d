"""Credentials on command lines: ``--password PW``, ``mysql -pPW``, ``curl -u user:PW``, ….

Two grammars, after the tools' manuals:

- long options whose name is secret-named (``--password``, ``--api-key``, ``--client-secret``,
  ``-storepass``, ``--registration-token``), with the value after a space (the ``=`` form is an
  assignment); ``pass:PW`` values (OpenSSL's ``-passin``) keep their ``pass:`` prefix. Values
  that are another option, a placeholder or a file path are left.
- short options that mean "password" only for one tool, looked for between the tool's name and
  the end of the line (or the next tool): ``mysql -pPW`` (attached; ``-p PW`` prompts),
  ``sshpass -p PW``, ``redis-cli -a PW``, ``docker login -p PW``, ``mongosh -p PW``,
  ``sqlcmd -P PW``, ``ldapsearch -w PW``, ``ipmitool -P PW``, ``zip -P PW``, ``7z -pPW``,
  ``openssl -k PW``, ``smbclient -U user%PW``, ``curl -u user:PW`` (and ``--user``,
  ``--proxy-user``, ``-U``), ``htpasswd -b file user PW``.

Each line is scanned once per tool name on it, from that name to the next, so hostile input
(``mysql`` repeated a million times) stays linear.
"""

from __future__ import annotations

import re
from typing import Final

from celery_jobs_ext.masking.engine import Replace, Rule, lowercase_rule
from celery_jobs_ext.masking.keys import PASSWORD, KeyMatcher, hides_nothing, is_placeholder

# ---------------------------------------------------------------------------------------------
# --secret-name value
# ---------------------------------------------------------------------------------------------

#: ``--name value`` or ``-name value`` (four letters or more), also in an argv repr
#: (``'--password', 'PW'``). Written lowercase: runs on lowered text.
_OPTION = (
    r"-(?<![\w-]-)-?(?P<name>[a-z][a-z0-9_-]{2,40})"
    r"(?P<space>[ \t]{1,8}|[\"'],[ \t]{0,4}[\"'])(?P<value>[^\s]{1,2048})"
)
_OPTION_VALUE_END = re.compile(r"[\"'](?=[\s,\])]|$)")
_OPENSSL_SOURCES: Final = ("env:", "file:", "fd:", "stdin")


def _option_replacer(matcher: KeyMatcher) -> Replace:
    def replace(text: str, match: re.Match[str]) -> tuple[str, int] | int | None:
        name = text[match.start("name") : match.end("name")]
        if name.lower().startswith("no-"):
            return None
        label = matcher.label_for(name)
        lowered = name.lower()
        if label is None and (lowered.endswith("pass") or lowered in ("passin", "passout")):
            label = PASSWORD  # keytool -storepass, -keypass; openssl -passin
        if label is None:
            return match.end("name")
        start, end = match.start("value"), match.end("value")
        if text[start] in "\"'" and match.group("space").strip() == "":
            quote = text[start]
            closing = text.find(quote, start + 1, start + 2048)
            if closing < 0:
                return match.end("name")
            value_start, value_end, end = start + 1, closing, closing + 1
        else:
            value_start = start
            found = _OPTION_VALUE_END.search(text, start, end)
            value_end = end = found.start() if found else end
        value = text[value_start:value_end]
        if value.startswith("-") or not value:
            return match.end("name")
        lowered_value = value.lower()
        if lowered_value.startswith("pass:"):
            value_start += 5
            value = value[5:]
        elif lowered_value.startswith(_OPENSSL_SOURCES):
            return end
        if hides_nothing(value, label):
            return end
        return text[match.start() : value_start] + label + text[value_end:end], end

    return replace


def option_rule(matcher: KeyMatcher) -> Rule:
    return lowercase_rule("cli-option", frozenset({"-"}), _OPTION, _option_replacer(matcher))


# ---------------------------------------------------------------------------------------------
# Tool-specific short options
# ---------------------------------------------------------------------------------------------

#: Tool name -> the pattern of its password options; group ``value`` is the password.
_VALUE = r"""(?P<value>"[^"\n]{1,1024}"|'[^'\n]{1,1024}'|[^\s"']{1,1024})"""
_TOOL_OPTIONS: Final = {
    "mysql": r"(?<!\S)-p(?P<value>[^\s]{1,1024})",
    "mariadb": r"(?<!\S)-p(?P<value>[^\s]{1,1024})",
    "sshpass": rf"(?<!\S)-p[ \t]*{_VALUE}",
    "redis-cli": rf"(?<!\S)-a[ \t]+{_VALUE}",
    "docker": rf"(?<!\S)-p[ \t]+{_VALUE}",
    "podman": rf"(?<!\S)-p[ \t]+{_VALUE}",
    "helm": rf"(?<!\S)-p[ \t]+{_VALUE}",
    "mongo": rf"(?<!\S)-p[ \t]+{_VALUE}",
    "sqlcmd": rf"(?<!\S)-P[ \t]*{_VALUE}",
    "ldap": rf"(?<!\S)-w[ \t]+{_VALUE}",
    "ipmitool": rf"(?<!\S)-P[ \t]+{_VALUE}",
    "zip": rf"(?<!\S)-P[ \t]+{_VALUE}",
    "7z": r"(?<!\S)-p(?P<value>[^\s]{1,1024})",
    "openssl": rf"(?<!\S)-k[ \t]+{_VALUE}",
    "smbclient": r"(?<!\S)(?:-U[ \t]*|--user[= \t])[\"']?[^\s%\"']{1,256}%(?P<value>[^\s\"']{1,1024})",
    "curl": r"(?<!\S)(?:-u[ \t]*|-U[ \t]*|--user[= \t]+|--proxy-user[= \t]+)[\"']?[^\s:\"']{0,256}:"
    r"(?P<value>[^\s\"']{1,1024})",
    "htpasswd": r"(?<!\S)-[a-z]*b[a-z]*(?:[ \t]+[^\s-][^\s]{0,1024}){1,2}[ \t]+(?P<value>[^\s]{1,1024})",
}
#: Spellings of each tool's name (the key of :data:`_TOOL_OPTIONS` it uses).
_TOOL_NAMES: Final = {
    **dict.fromkeys(
        (
            "mysql",
            "mysqldump",
            "mysqladmin",
            "mysqlimport",
            "mysqlshow",
            "mysqlcheck",
            "mysqlpump",
            "mysqlsh",
        ),
        "mysql",
    ),
    **dict.fromkeys(("mariadb", "mariadb-dump", "mariadb-admin"), "mariadb"),
    "sshpass": "sshpass",
    "redis-cli": "redis-cli",
    "valkey-cli": "redis-cli",
    **dict.fromkeys(("docker", "nerdctl", "buildah", "skopeo", "oras"), "docker"),
    "podman": "podman",
    "helm": "helm",
    **dict.fromkeys(("mongo", "mongosh", "mongodump", "mongorestore", "mongoexport", "mongoimport"), "mongo"),
    **dict.fromkeys(("sqlcmd", "bcp", "osql"), "sqlcmd"),
    **dict.fromkeys(
        ("ldapsearch", "ldapmodify", "ldapadd", "ldapdelete", "ldappasswd", "ldapwhoami", "ldapcompare"),
        "ldap",
    ),
    "ipmitool": "ipmitool",
    "zip": "zip",
    "unzip": "zip",
    "7z": "7z",
    "7za": "7z",
    "openssl": "openssl",
    **dict.fromkeys(("smbclient", "rpcclient", "smbmap", "smbcacls"), "smbclient"),
    "curl": "curl",
    "htpasswd": "htpasswd",
}
_TOOL_PATTERN: Final = (
    r"(?<![\w.-])(?P<tool>"
    + "|".join(re.escape(name) for name in sorted(_TOOL_NAMES, key=len, reverse=True))
    + r")(?:\.exe)?(?=[\s\"',])"
)
_TOOL_NEXT = re.compile(_TOOL_PATTERN, re.IGNORECASE)
_COMPILED_OPTIONS: Final = {tool: re.compile(pattern) for tool, pattern in _TOOL_OPTIONS.items()}
#: Triggers: a prefix of each name, in lowercase.
TOOL_TRIGGERS: Final = frozenset(
    {"mysql", "mariadb", "sshpass", "redis-cli", "valkey-cli", "docker", "nerdctl", "buildah", "skopeo"}
    | {"oras", "podman", "helm", "mongo", "sqlcmd", "bcp", "osql", "ldap", "ipmitool", "zip", "7z"}
    | {"openssl", "smbclient", "rpcclient", "smbmap", "smbcacls", "curl", "htpasswd"}
)
_MAX_LINE: Final = 4096


#: Tools whose short option means a password only in one sub-command (``docker run -p`` maps ports).
_REQUIRED_WORD: Final = {"docker": " login", "podman": " login", "helm": " login"}


def _replace_tool_options(text: str, match: re.Match[str]) -> tuple[str, int] | int | None:
    """Mask the password options from the tool's name to the end of its line or the next tool."""
    start = match.end()
    line_end = text.find("\n", start, start + _MAX_LINE)
    stop = line_end if line_end >= 0 else min(len(text), start + _MAX_LINE)
    next_tool = _TOOL_NEXT.search(text, start, stop)
    if next_tool is not None:
        stop = next_tool.start()
    tool = _TOOL_NAMES[match.group("tool")]
    required = _REQUIRED_WORD.get(tool)
    if required is not None and required not in text[start:stop].lower():
        return stop
    pieces: list[str] = []
    done = match.start()
    for option in _COMPILED_OPTIONS[tool].finditer(text, start, stop):
        value_start, value_end = option.start("value"), option.end("value")
        value = text[value_start:value_end]
        if value[:1] in "\"'" and value[-1:] == value[:1] and len(value) > 1:
            value_start, value_end, value = value_start + 1, value_end - 1, value[1:-1]
        if value.startswith("-") or is_placeholder(value) or hides_nothing(value, PASSWORD):
            continue
        pieces += (text[done:value_start], PASSWORD)
        done = value_end
    if not pieces:
        return stop
    pieces.append(text[done:stop])
    return "".join(pieces), stop


def tool_rule() -> Rule:
    return lowercase_rule("cli-tools", TOOL_TRIGGERS, _TOOL_PATTERN, _replace_tool_options)
