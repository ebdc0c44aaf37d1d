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
import threading
from typing import Final

from celery_jobs_ext.masking.engine import Replace, Rule, literal_rule, lowercase_rule
from celery_jobs_ext.masking.keys import PASSWORD, KeyMatcher, hides_nothing

# ---------------------------------------------------------------------------------------------
# --secret-name value
# ---------------------------------------------------------------------------------------------

#: ``--name value`` or ``-name value`` (four letters or more), also in an argv repr
#: (``'--password', 'PW'``). Written lowercase: runs on lowered text.
_OPTION = (
    r"-(?<![\w-]-)-?(?P<name>[a-z][a-z0-9_-]{2,40})"
    r"(?P<space>[ \t]{1,8}|\\?[\"'],[ \t]{0,4}\\?[\"'])(?P<value>(?!-)[^\s]{1,2048})"
)
_PASCAL_CASE = re.compile(r"(?:[A-Z][a-z0-9]+)+")
_OPTION_VALUE_END = re.compile(r"\\?[\"'](?=[\s,\])]|$)")
#: A quoted value, also with escaped quotes as in a repr of a repr: ``'PW'``, ``\'PW\'``.
_QUOTED = re.compile(r"""\\?(["'])(.*?)\\?\1""", re.DOTALL)
#: keytool's and OpenSSL's password options, one word each.
_PASS_OPTIONS: Final = frozenset(
    {
        "storepass",
        "keypass",
        "srcstorepass",
        "deststorepass",
        "srckeypass",
        "destkeypass",
        "passin",
        "passout",
    }
)
_OPENSSL_SOURCES: Final = ("env:", "file:", "fd:", "stdin")


def _option_replacer(matcher: KeyMatcher) -> Replace:
    def replace(text: str, match: re.Match[str]) -> tuple[str, int] | int | None:
        name = text[match.start("name") : match.end("name")]
        lowered = name.lower()
        if (lowered != name and not _PASCAL_CASE.fullmatch(name)) or lowered.startswith("no-"):
            return None  # lowercase or PowerShell's -ClientSecret: "-pSecret" is mysql's password
        label = matcher.label_for(lowered)
        if label is None and lowered in _PASS_OPTIONS:
            label = PASSWORD
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
        if not value or value.startswith(("-", "<<<")):
            return match.end("name")  # another option, or a here-string: the stdin rule's
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

#: Tool name -> the pattern of its password options, matched where an option starts; group
#: ``value`` is the password.
_VALUE = r"""(?P<value>\\?"[^"\n\\]{1,1024}\\?"|\\?'[^'\n\\]{1,1024}\\?'|[^\s"'\\]{1,1024})"""
#: Between an option and its value: spaces, or the quotes and comma of an argv repr (the value
#: keeps its own quotes: ``'-p', "Zq8'wRt"`` is one password in double quotes).
_GAP = r"""(?:[ \t]+|\\?["'],[ \t]{0,4}[bru]{0,2}(?=\\?["']))"""
_TOOL_OPTIONS: Final = {
    # -p"S" and -p'S' (a password with spaces or symbols, quoted for the shell) too
    "mysql": r"-p(?P<value>\\?\"[^\"\n\\]{1,1024}\\?\"|\\?'[^'\n\\]{1,1024}\\?'|[^\s\"'\\]{1,1024})",
    "mariadb": r"-p(?P<value>[^\s\"'\\]{1,1024})",
    "sshpass": rf"-p(?:{_GAP}|[ \t]*){_VALUE}",
    "redis-cli": rf"-a{_GAP}{_VALUE}",
    "docker": rf"-p{_GAP}{_VALUE}",
    "podman": rf"-p{_GAP}{_VALUE}",
    "helm": rf"-p{_GAP}{_VALUE}",
    "mongo": rf"-p{_GAP}{_VALUE}",
    "sqlcmd": rf"-P(?:{_GAP}|[ \t]*){_VALUE}",
    "ldap": rf"-w{_GAP}{_VALUE}",
    "ldappasswd": rf"-[ws]{_GAP}{_VALUE}",  # -s: the new password
    # Red-team round 2, from the tools' manuals: psexec, rdesktop, cqlsh -p; Sybase isql -P;
    # lftp -u user,password; HTTPie -a user:password.
    **dict.fromkeys(("psexec", "rdesktop", "cqlsh"), rf"-p{_GAP}{_VALUE}"),
    "isql": rf"-P(?:{_GAP}|[ \t]*){_VALUE}",
    "lftp": rf"-u{_GAP}[^\s,]{{1,256}},(?P<value>[^\s\"'\\]{{1,1024}})",
    "http": rf"-a{_GAP}[^\s:]{{1,256}}:(?P<value>[^\s\"'\\]{{1,1024}})",
    "ipmitool": rf"-P{_GAP}{_VALUE}",
    "zip": rf"-P{_GAP}{_VALUE}",
    "7z": r"-p(?P<value>[^\s\"'\\]{1,1024})",
    "openssl": rf"-k{_GAP}{_VALUE}",
    "smbclient": r"(?:-U[ \t]*|--user[= \t])\\?[\"']?[^\s%\"']{1,256}%(?P<value>[^\s\"'\\]{1,1024})",
    # user:password, also with each part quoted ("u":"p", u:'p'); not a <user:password> usage
    "curl": r"(?:-u[ \t]*|-U[ \t]*|--user[= \t]+|--proxy-user[= \t]+)"
    r"(?!<)\\?[\"']?[^\s:\"']{0,256}(?:\\?[\"'])?:"
    r"(?P<value>\\?\"[^\"\n\\]{1,1024}\\?\"|\\?'[^'\n\\]{1,1024}\\?'|[^\s\"'\\]{1,1024})",
    "htpasswd": r"-[a-z]*b[a-z]*(?:[ \t]+[^\s-][^\s]{0,1024}){1,2}[ \t]+(?P<value>[^\s]{1,1024})",
    # Red team 2026-12-04, from the tools' manuals: az login -p, mosquitto_pub/sub -P,
    # influx -t (token), ssh-keygen -N/-P (passphrases), unrar/rar -p<password>.
    "az": rf"-p{_GAP}{_VALUE}",
    "mosquitto": rf"-P{_GAP}{_VALUE}",
    "influx": rf"-t{_GAP}{_VALUE}",
    "ssh-keygen": rf"-[NP]{_GAP}{_VALUE}",
    "unrar": r"-p(?P<value>[^\s\"'\\-][^\s\"'\\]{0,1023})",
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
        ("ldapsearch", "ldapmodify", "ldapadd", "ldapdelete", "ldapwhoami", "ldapcompare"),
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
    "az": "az",
    **dict.fromkeys(("mosquitto_pub", "mosquitto_sub", "mosquitto_rr"), "mosquitto"),
    "influx": "influx",
    "ssh-keygen": "ssh-keygen",
    **dict.fromkeys(("unrar", "rar"), "unrar"),
    "ldappasswd": "ldappasswd",
    **{name: name for name in ("psexec", "rdesktop", "cqlsh", "isql", "lftp")},
    **dict.fromkeys(("http", "https"), "http"),
}
_COMPILED_OPTIONS: Final = {tool: re.compile(pattern) for tool, pattern in _TOOL_OPTIONS.items()}
_MAX_LINE: Final = 4096
#: Tools whose short option means a password only in one sub-command (``docker run -p`` maps ports).
_REQUIRED_WORD: Final = {"docker": "login", "podman": "login", "helm": "login", "az": "login"}
#: An option: a dash after whitespace, a quote, a bracket or a comma (argv reprs), or at the start.
_OPTION_START = r"-(?<![^\s\"'\[(,]-)"
_WORD_EDGES: Final = "'\"[](),;`\\"


class _ToolTracker:
    """The last tool name seen on the current line, found by reading each character once.

    The engine calls the rule for options in order of position; the tracker reads the words
    between the previous option and this one, so a megabyte of options costs one pass.
    """

    def __init__(self) -> None:
        self.text: str | None = None
        self.scanned = 0
        self.tool: str | None = None
        self.tool_at = 0
        self.required_seen = False

    def tool_before(self, text: str, position: int) -> tuple[str, int] | None:
        if text is not self.text or position < self.scanned:
            self.text, self.scanned, self.tool, self.required_seen = text, 0, None, False
        segment = text[self.scanned : position]
        if "\\\n" in segment:  # a shell line continuation: the command goes on
            segment = segment.replace("\\\n", "  ")
        newline = segment.rfind("\n")
        if newline >= 0:
            self.tool, self.required_seen = None, False
            segment_start = self.scanned + newline + 1
            segment = segment[newline + 1 :]
        else:
            segment_start = self.scanned
        self.scanned = position
        words = segment.split()
        for word in reversed(words):
            name = word.strip(_WORD_EDGES)
            if name[:2] in ("b'", 'b"'):  # [b'mysql', b'-pPW']: a bytes argv repr
                name = name[2:]
            name = name.rsplit("/", 1)[-1].lower().removesuffix(".exe")
            if name in _TOOL_NAMES:
                self.tool = _TOOL_NAMES[name]
                self.tool_at = segment_start + segment.rfind(word)
                self.required_seen = False
                segment = segment[segment.rfind(word) :]
                break
        if self.tool is None or position - self.tool_at > _MAX_LINE:
            return None
        required = _REQUIRED_WORD.get(self.tool)
        if required is not None and not self.required_seen:
            # "docker login -p" and its argv repr "'docker', 'login', '-p'"
            self.required_seen = required in {word.strip(_WORD_EDGES) for word in segment.lower().split()}
            if not self.required_seen:
                return None
        return self.tool, self.tool_at

    def next_tool(self, text: str, position: int) -> int:
        """Where the next tool name on the line starts (or the line's end); read up to there."""
        newline = text.find("\n", position, position + _MAX_LINE)
        end = newline if newline >= 0 else min(len(text), position + _MAX_LINE)
        offset = position
        for word in text[position:end].split():
            offset = text.find(word, offset)
            name = word.strip(_WORD_EDGES)
            if name[:2] in ("b'", 'b"'):  # [b'mysql', b'-pPW']: a bytes argv repr
                name = name[2:]
            name = name.rsplit("/", 1)[-1].lower().removesuffix(".exe")
            if name in _TOOL_NAMES:
                self.scanned = offset
                return offset
            offset += len(word)
        self.scanned = end
        return max(end, position + 1)


class _PerThread(threading.local):
    """One tracker per thread: log records are masked in several threads at once."""

    def __init__(self) -> None:
        self.tracker = _ToolTracker()


def tool_rule() -> Rule:
    local = _PerThread()

    def replace(text: str, match: re.Match[str]) -> tuple[str, int] | int | None:
        tracker = local.tracker
        found = tracker.tool_before(text, match.start())
        if found is None:
            # No tool on this line yet: go on at the next tool name on it, or at its end.
            return tracker.next_tool(text, match.start())
        option = _COMPILED_OPTIONS[found[0]].match(text, match.start())
        if option is None:
            return None
        value_start, value_end = option.start("value"), option.end("value")
        value = text[value_start:value_end]
        quote = _QUOTED.fullmatch(value)
        if quote is not None:
            value_start, value_end, value = (
                value_start + quote.start(2),
                value_start + quote.end(2),
                quote.group(2),
            )
        if value.startswith("-") or hides_nothing(value, PASSWORD):
            return option.end()
        return text[match.start() : value_start] + PASSWORD, value_end

    return literal_rule("cli-tools", "-", _OPTION_START, replace)
