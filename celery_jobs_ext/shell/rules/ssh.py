"""ssh, scp, sftp: ``-o`` settings by an allow list, read the way ssh's config parser reads them.

ssh reads ``-o`` as a configuration line: the keyword is case-insensitive, may follow
whitespace or ``=``, may be separated from its value by ``=``, and may be quoted in whole or
in part (``"ProxyCommand"``, ``Proxy"Command"``). A deny list of keywords loses to a new
keyword or spelling, so only :data:`SAFE_SSH_SETTINGS` pass.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from celery_jobs_ext.shell.rules.table import SHORT_OPTIONS_WITH_VALUES, names_of
from celery_jobs_ext.shell.syntax import refuse

SAFE_SSH_SETTINGS = frozenset(
    {
        "addressfamily", "batchmode", "bindaddress", "bindinterface", "casignaturealgorithms",
        "channeltimeout", "checkhostip", "ciphers", "clearallforwardings", "compression",
        "connectionattempts", "connecttimeout", "dynamicforward", "exitonforwardfailure",
        "fingerprinthash", "forwardagent", "gatewayports", "gssapiauthentication",
        "gssapidelegatecredentials", "hashknownhosts", "hostbasedauthentication",
        "hostkeyalgorithms", "hostkeyalias", "hostname", "identitiesonly", "identityfile",
        "ipqos", "kbdinteractiveauthentication", "kexalgorithms", "localforward", "loglevel",
        "logverbose", "macs", "nohostauthenticationforlocalhost", "numberofpasswordprompts",
        "obscurekeystroketiming", "passwordauthentication", "port", "preferredauthentications",
        "pubkeyacceptedalgorithms", "pubkeyacceptedkeytypes", "pubkeyauthentication",
        "rekeylimit", "remoteforward", "requesttty", "requiredrsasize", "sendenv",
        "serveralivecountmax", "serveraliveinterval", "sessiontype", "setenv", "stdinnull",
        "stricthostkeychecking", "tcpkeepalive", "updatehostkeys", "user", "verifyhostkeydns",
        "visualhostkey",
    }
)  # fmt: skip
"""``-o`` keywords (lower case) that neither run a local program, load code, read another
configuration nor write a file of the caller's choosing."""


def ssh_keyword(value: str) -> str:
    """The keyword of an ssh configuration line, as ssh reads it (quotes removed, lower case)."""
    index, length = 0, len(value)
    while index < length and (value[index].isspace() or value[index] == "="):
        index += 1
    keyword: list[str] = []
    quote = ""
    while index < length:
        char = value[index]
        if quote:
            if char == quote:
                quote = ""
            else:
                keyword.append(char)
        elif char in "\"'":
            quote = char
        elif char.isspace() or char == "=":
            break
        elif char == "\\" and index + 1 < length:
            index += 1
            keyword.append(value[index])
        else:
            keyword.append(char)
        index += 1
    return "".join(keyword).lower()


def _ssh_option_values(arguments: Sequence[str], value_letters: str) -> Iterable[str]:
    """Yield the values given to ``-o``, glued (``-oX=y``, ``-vo X=y``) or separate."""
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        index += 1
        if len(argument) < 2 or argument[0] != "-" or argument[1] == "-":
            continue
        for position, letter in enumerate(argument[1:], start=2):
            if letter == "o":
                value = argument[position:]
                if not value:
                    value = arguments[index] if index < len(arguments) else ""
                    index += 1
                yield value
                break
            if letter in value_letters:
                break


def check_ssh(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse every ``-o`` whose keyword is not in :data:`SAFE_SSH_SETTINGS`."""
    family = next((name for name in ("sftp", "scp", "ssh") if name in names_of((program,))), "ssh")
    literal = {arguments[position] for position in trusted}
    for value in _ssh_option_values(arguments, SHORT_OPTIONS_WITH_VALUES[family].replace("o", "")):
        if value in literal:
            continue  # a pattern spells this setting out: the administrator wrote it
        keyword = ssh_keyword(value)
        if keyword not in SAFE_SSH_SETTINGS:
            refuse(
                f"option -o {value!r} of {program!r} sets {keyword or 'nothing'!r}, which is not one of "
                "the ssh settings jobs.shell passes (settings that run a local program, load a library, "
                "read other configuration or write a file are refused)"
            )


def _scp_operands(arguments: Sequence[str], value_letters: str) -> list[tuple[int, str]]:
    """scp's (position, word) operands: not options, not an option's value."""
    found: list[tuple[int, str]] = []
    position = 0
    while position < len(arguments):
        argument = arguments[position]
        if argument == "--":
            found.extend(enumerate(arguments[position + 1 :], start=position + 1))
            break
        if argument.startswith("-") and len(argument) > 1:
            taken = next((i for i, letter in enumerate(argument[1:], 1) if letter in value_letters), None)
            position += 2 if taken is not None and taken == len(argument) - 1 else 1
            continue
        found.append((position, argument))
        position += 1
    return found


def _is_remote(operand: str) -> bool:
    """scp's own test: ``[user@]host:path`` (a ':' before any '/') or an ``scp://`` URI."""
    return operand.lower().startswith("scp://") or ":" in operand.split("/", 1)[0]


def check_scp_destination(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse a local destination for a bare-listed scp: it writes that file like ``cp``.

    Round 5: ``scp a b`` copied a local file with the sandbox off. Uploading (a remote
    destination) passes; a download or local copy needs a pattern that pins where it writes.
    """
    if pinned:
        return
    operands = _scp_operands(arguments, SHORT_OPTIONS_WITH_VALUES["scp"])
    if len(operands) < 2:
        return
    position, destination = operands[-1]
    if position not in trusted and not _is_remote(destination):
        refuse(
            f"argument {destination!r} of {program!r} is a local destination, which scp writes "
            "like cp; a bare-listed scp only uploads (host:path): pin a download or a local copy "
            "with a pattern"
        )
