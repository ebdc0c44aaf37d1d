"""systemctl, hostnamectl, timedatectl and loginctl listed by bare name: read-only verbs only.

They are front ends to services that run as root: ``systemctl start/stop/enable/link/edit``,
``hostnamectl hostname NAME``, ``timedatectl set-time``, ``loginctl terminate-user`` change
the machine's state. A bare-listed one may only read it (``status``, ``show``, ``list-*``,
``is-*``, ``cat``); anything else needs an argument pattern that spells the verb out
(``"systemctl restart app"``).

The verb is the first word that is neither an option nor an option's value, so options are
read exactly as systemd's ``getopt_long`` reads them: the short letters that take a value
(``-p Id``, ``-pId``), long options with ``=`` or a separate value, and their unambiguous
abbreviations (``--prop Id``, ``--roo=``). An option the tool does not have, or an ambiguous
abbreviation, is refused: guessing wrong about which word is a value would move the verb.
As a second line, any word that is one of the tool's other verbs is refused wherever it
stands, and so are ``-H``/``--host``, ``-M``/``--machine``, ``--root`` and ``--image``
(another host, container or root directory) and a unit given by path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from celery_jobs_ext.shell.syntax import refuse


@dataclass(frozen=True)
class _Tool:
    #: short option letters that take a value, and those that take none
    value_letters: str
    flag_letters: str
    #: long options (without "--"), True for those that take a value
    long: Mapping[str, bool]
    #: verbs a bare-listed tool may run ("" is the default verb, no word at all)
    safe: frozenset[str]
    #: every other verb of the tool, refused wherever it stands
    others: frozenset[str]
    #: verbs that read when given alone and write when given a value (hostnamectl hostname NAME)
    property_verbs: frozenset[str] = frozenset()


def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _longs(flags: str, values: str) -> Mapping[str, bool]:
    return MappingProxyType({**dict.fromkeys(flags.split(), False), **dict.fromkeys(values.split(), True)})


_REMOTE = frozenset({"host", "machine", "root", "image"})
_REMOTE_LETTERS = "HM"

TOOLS: Mapping[str, _Tool] = MappingProxyType(
    {
        "systemctl": _Tool(
            value_letters="HMtpPsno",
            flag_letters="halrTiqf",
            long=_longs(
                "help version system user failed reverse with-dependencies show-types value all full "
                "recursive show-transaction now dry-run quiet wait no-block no-wall no-reload "
                "no-pager no-ask-password global runtime force firmware-setup plain read-only mkdir "
                "marked",
                "host machine type state property job-mode check-inhibitors kill-whom kill-value "
                "signal what legend preset-mode root image image-policy lines output "
                "boot-loader-menu boot-loader-entry reboot-argument timestamp message when drop-in",
            ),
            safe=frozenset(
                {
                    "", "status", "show", "cat", "is-active", "is-enabled", "is-failed",
                    "is-system-running", "list-units", "list-unit-files", "list-timers",
                    "list-sockets", "list-dependencies", "list-jobs", "list-automounts",
                    "list-paths", "list-machines", "get-default", "show-environment",
                }
            ),
            others=_names(
                "help start stop reload restart try-restart reload-or-restart try-reload-or-restart "
                "isolate kill clean freeze thaw set-property bind mount-image service-log-level "
                "service-log-target reset-failed enable disable reenable preset preset-all mask "
                "unmask link revert add-wants add-requires edit set-default cancel set-environment "
                "unset-environment import-environment daemon-reload daemon-reexec log-level "
                "log-target service-watchdogs default rescue emergency halt poweroff reboot kexec "
                "exit switch-root suspend hibernate hybrid-sleep suspend-then-hibernate soft-reboot "
                "sleep whoami force-reload condrestart try-reload"
            ),
        ),
        "hostnamectl": _Tool(
            value_letters="HM",
            flag_letters="h",
            long=_longs("help version no-ask-password transient static pretty", "host machine json"),
            safe=frozenset({"", "status", "hostname", "icon-name", "chassis", "deployment", "location"}),
            others=frozenset(
                {"set-hostname", "set-icon-name", "set-chassis", "set-deployment", "set-location"}
            ),
            property_verbs=frozenset({"hostname", "icon-name", "chassis", "deployment", "location"}),
        ),
        "timedatectl": _Tool(
            value_letters="HMp",
            flag_letters="ha",
            long=_longs(
                "help version no-pager no-ask-password adjust-system-clock monitor all value",
                "host machine property",
            ),
            safe=frozenset({"", "status", "show", "show-timesync", "timesync-status", "list-timezones"}),
            others=frozenset(
                {"set-time", "set-timezone", "set-local-rtc", "set-ntp", "ntp-servers", "revert"}
            ),
        ),
        "loginctl": _Tool(
            value_letters="HMpPnos",
            flag_letters="hal",
            long=_longs(
                "help version no-pager no-legend no-ask-password value all full",
                "host machine property lines output signal kill-whom kill-value",
            ),
            safe=frozenset(
                {
                    "", "list-sessions", "session-status", "show-session", "list-users", "user-status",
                    "show-user", "list-seats", "seat-status", "show-seat",
                }
            ),
            others=_names(
                "activate lock-session unlock-session lock-sessions unlock-sessions terminate-session "
                "kill-session enable-linger disable-linger terminate-user kill-user attach "
                "flush-devices terminate-seat"
            ),
        ),
    }
)  # fmt: skip


def _long_option(tool: _Tool, word: str) -> str | None:
    """The long option ``word`` names, in full or by an unambiguous abbreviation (else None)."""
    name = word[2:].split("=", 1)[0]
    if name in tool.long:
        return name
    found = [option for option in tool.long if option.startswith(name)]
    return found[0] if len(found) == 1 and name else None


def check_systemd_tool(
    program: str, tool_name: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset()
) -> None:
    """Refuse verbs outside the read-only allow list, remote options and units by path."""
    tool = TOOLS[tool_name]
    positionals: list[int] = []
    position = 0
    options_done = False
    while position < len(arguments):
        word = arguments[position]
        literal = position in trusted
        if options_done or not word.startswith("-") or word == "-":
            positionals.append(position)
        elif word == "--":
            options_done = True
        elif word.startswith("--"):
            option = _long_option(tool, word)
            if option is None and not literal:
                refuse(
                    f"argument {word!r} of {program!r} is not a {tool_name} option (or abbreviates "
                    "several); jobs.shell reads options exactly to know which word is the verb"
                )
            if option in _REMOTE and not literal:
                refuse(
                    f"argument {word!r} of {program!r} points it at another host, container or root directory"
                )
            if option and tool.long[option] and "=" not in word:
                position += 1
        else:
            for index, letter in enumerate(word[1:], start=1):
                if letter in _REMOTE_LETTERS and not literal:
                    refuse(f"argument {word!r} of {program!r} points it at another host or container")
                if letter in tool.value_letters:
                    position += 0 if word[index + 1 :] else 1
                    break
                if letter not in tool.flag_letters and not literal:
                    refuse(f"argument {word!r} of {program!r}: -{letter} is not a {tool_name} option")
        position += 1
    verb_position = positionals[0] if positionals else None
    verb = arguments[verb_position] if verb_position is not None else ""
    if verb_position is not None and verb_position in trusted:
        return  # a pattern spells the verb out: the administrator chose it
    if verb not in tool.safe:
        refuse(
            f"'{tool_name} {verb}' is not a read-only command jobs.shell runs for a bare-listed "
            f"{tool_name} ({', '.join(sorted(v for v in tool.safe if v))}); commands that change "
            "the machine's state need a pattern that spells them out"
        )
    if verb in tool.property_verbs and len(positionals) > 1:
        refuse(f"'{tool_name} {verb} {arguments[positionals[1]]}' sets the {verb}; pin it with a pattern")
    for position in positionals[1:]:
        word = arguments[position]
        if position in trusted:
            continue
        if word in tool.others:
            refuse(f"argument {word!r} of {program!r} is a {tool_name} command that changes state")
        if "/" in word:
            refuse(
                f"argument {word!r} of '{tool_name} {verb}' is a path; a unit given by path is "
                "loaded from a file the message chose"
            )
