"""ip, nmcli, tc and iw listed by bare name: only the commands that show state.

``ip link set eth0 down``, ``ip addr add``, ``ip route del``, ``ip netns exec``, ``nmcli
radio wifi off``, ``nmcli connection up`` change the machine's network (or run a command). A
bare-listed one may only show (``ip addr``, ``ip -br link show``, ``ip route get 1.1.1.1``,
``nmcli device status``); anything else needs an argument pattern that spells it out.

Both read their words as iproute2's ``matches()`` does: any prefix of a name selects it
(``ip a`` is ``ip address``, ``nmcli c s`` is ``nmcli connection show``), and the first
object or command in the program's own order wins. A command word is allowed when it is a
read-only command spelled in full, or a prefix that abbreviates no command that changes
state: ``ip link sh`` passes, ``ip link s`` (which iproute2 reads as ``set``) is refused.
Options come before the object and are read in ip.c's order too (``-n`` is ``-netns`` and
takes the next word, ``-b`` is ``-batch``, ``-br`` is ``-brief``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from celery_jobs_ext.shell.syntax import refuse

# iproute2's objects, in ip.c's order (the first one a prefix matches wins).
_IP_OBJECTS = (
    "address", "addrlabel", "maddress", "route", "rule", "neighbor", "neighbour", "ntable", "ntbl",
    "link", "l2tp", "fou", "ila", "macsec", "tunnel", "tunl", "tuntap", "tap", "token", "tcpmetrics",
    "tcp_metrics", "monitor", "xfrm", "mroute", "mrule", "netns", "netconf", "vrf", "sr", "nexthop",
    "mptcp", "ioam", "stats", "help",
)  # fmt: skip
# Objects whose next word is a sub-object before the command.
_IP_SUBOBJECTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "xfrm": ("state", "policy", "monitor"),
        "mptcp": ("endpoint", "limits", "monitor"),
        "ioam": ("namespace", "schema", "monitor"),
        "sr": ("tunsrc",),
    }
)
_IP_READ = ("show", "list", "lst", "get", "help", "identify", "pids", "monitor", "list-id", "showdump",
            "save", "xstats", "afstats", "count", "bucket")  # fmt: skip
_IP_WRITE = (
    "add", "append", "attach", "change", "chg", "create", "del", "delete", "deleteall", "detach",
    "exec", "flush", "prepend", "replace", "restore", "set", "setdefault", "update", "allocspi",
    "test", "modify", "reset", "unset", "set-id", "property", "newname",
)  # fmt: skip
# ip.c's options in the order it tries them (the first one a prefix matches wins; a second
# leading dash is dropped): name, takes a value, must be spelled exactly.
_IP_OPTIONS: tuple[tuple[str, bool, bool], ...] = (
    ("-loops", True, False), ("-family", True, False), ("-4", False, True), ("-6", False, True),
    ("-0", False, True), ("-M", False, True), ("-B", False, True), ("-human", False, False),
    ("-human-readable", False, False), ("-iec", False, False), ("-stats", False, False),
    ("-statistics", False, False), ("-details", False, False), ("-resolve", False, False),
    ("-oneline", False, False), ("-timestamp", False, False), ("-tshort", False, False),
    ("-Version", False, False), ("-force", False, False), ("-batch", True, False),
    ("-brief", False, False), ("-json", False, False), ("-pretty", False, False),
    ("-rcvbuf", True, False), ("-color", False, False), ("-help", False, False),
    ("-netns", True, False), ("-Numeric", False, False), ("-all", False, False),
    ("-echo", False, True),
)  # fmt: skip


def _read_only(word: str, read: Sequence[str], write: Sequence[str]) -> bool:
    """A read command in full, or a prefix that abbreviates no command that changes state."""
    if word in read:
        return True
    return bool(word) and any(r.startswith(word) for r in read) and not any(w.startswith(word) for w in write)


def _ip_object(word: str) -> str | None:
    return next((name for name in _IP_OBJECTS if name.startswith(word)), None) if word else None


def _check_ip_words(program: str, arguments: Sequence[str], start: int, trusted: frozenset[int]) -> None:
    words = list(arguments[start:])
    if not words:
        return  # "ip" alone prints its usage
    obj = _ip_object(words[0])
    if obj is None:
        if start not in trusted:
            refuse(f"argument {words[0]!r} of {program!r} is not an ip object (link, address, route ...)")
        obj = words[0]
    rest = words[1:]
    offset = start + 1
    if obj in _IP_SUBOBJECTS and rest:
        sub = next((name for name in _IP_SUBOBJECTS[obj] if name.startswith(rest[0])), None)
        if sub is None and offset not in trusted:
            refuse(
                f"argument {rest[0]!r} of '{program} {obj}' is not one of {', '.join(_IP_SUBOBJECTS[obj])}"
            )
        rest, offset = rest[1:], offset + 1
    if obj != "monitor" and rest and offset not in trusted and not _read_only(rest[0], _IP_READ, _IP_WRITE):
        refuse(
            f"'ip {obj} {rest[0]}' is not a command that only shows state (show, list, get ...; "
            "iproute2 accepts any prefix, so a prefix of add, set, del, flush ... is refused); "
            "changing the network needs a pattern that spells the command out"
        )
    for position, word in enumerate(arguments):
        if position not in trusted and word and "exec".startswith(word.lower()) and position > start:
            refuse(
                f"argument {word!r} of {program!r} is 'exec' (iproute2 accepts any prefix of a "
                "subcommand), which runs a command in a network namespace or VRF"
            )


def _ip_option(word: str) -> tuple[str, bool] | None:
    """The option ip.c reads ``word`` as, and whether it takes a value (None: not an option)."""
    name = word[1:] if word.startswith("--") else word
    if name.startswith(("-color=", "-colour=")):
        return "-color", False
    for option, takes_value, exact in _IP_OPTIONS:
        if name == option or (not exact and option.startswith(name)):
            return option, takes_value
    return None


def check_ip(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse anything but showing state (options read in ip.c's order, then the object)."""
    position = 0
    while position < len(arguments) and arguments[position].startswith("-"):
        word = arguments[position]
        found = _ip_option(word)
        if position not in trusted:
            if found is None:
                refuse(f"argument {word!r} of {program!r} is not an ip option")
            if found[0] == "-batch":
                refuse(f"argument {word!r} of {program!r} is -batch, which runs the commands of a file")
        position += 2 if found and found[1] else 1
    _check_ip_words(program, arguments, position, trusted)


# nmcli: objects and, per object, commands that show state and those that change it.
_NMCLI_OBJECTS = ("general", "networking", "radio", "connection", "device", "agent", "monitor", "help")
_NMCLI_READ: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "general": ("status", "permissions", "hostname", "logging", "help"),
        "networking": ("connectivity", "help"),
        "radio": ("all", "wifi", "wwan", "help"),
        "connection": ("show", "monitor", "help"),
        "device": ("status", "show", "monitor", "wifi", "lldp", "help"),
        "monitor": (),
        "help": (),
    }
)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_NMCLI_WRITE: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "general": ("reload",),
        "networking": ("on", "off"),
        "radio": (),
        "connection": _words("up down add modify clone edit delete reload load import export migrate"),
        "device": ("set", "connect", "reapply", "modify", "disconnect", "delete", "up", "down"),
    }
)
# After these read commands, a further word sets something (general hostname NAME, radio wifi off).
_NMCLI_SETTERS = frozenset({("general", "hostname"), ("general", "logging"), ("radio", "all"),
                            ("radio", "wifi"), ("radio", "wwan")})  # fmt: skip
_NMCLI_SECOND: Mapping[str, tuple[str, ...]] = MappingProxyType({"wifi": ("list",), "lldp": ("list",)})
_NMCLI_VALUE_OPTIONS = ("colors", "escape", "fields", "get-values", "mode", "wait")
_NMCLI_FLAG_OPTIONS = ("terse", "pretty", "help", "version", "overview", "offline")


def check_nmcli(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse nmcli commands that change the network, and options it would not read as ours."""
    position = 0
    while position < len(arguments) and arguments[position].startswith("-"):
        name = arguments[position].lstrip("-").split("=", 1)[0]
        values = [o for o in _NMCLI_VALUE_OPTIONS if o.startswith(name)] if name else []
        flags = [o for o in _NMCLI_FLAG_OPTIONS if o.startswith(name)] if name else []
        if position not in trusted and (len(values) + len(flags) != 1):
            refuse(
                f"argument {arguments[position]!r} of {program!r} is not an nmcli option jobs.shell allows"
            )
        position += 2 if values and "=" not in arguments[position] else 1
    words = list(arguments[position:])
    if not words or position in trusted:
        return
    obj = next((name for name in _NMCLI_OBJECTS if name.startswith(words[0])), None)
    if obj is None or obj == "agent":
        refuse(f"'nmcli {words[0]}' is not an nmcli object jobs.shell runs for a bare-listed nmcli")
    if len(words) == 1 or (position + 1) in trusted:
        return
    command = words[1]
    read, write = _NMCLI_READ.get(obj, ()), _NMCLI_WRITE.get(obj, ())
    if not _read_only(command, read, write):
        refuse(
            f"'nmcli {obj} {command}' is not a command that only shows state; changing the network "
            "needs a pattern that spells the command out"
        )
    full = next(name for name in read if name.startswith(command))
    if (obj, full) in _NMCLI_SETTERS and len(words) > 2:
        refuse(f"'nmcli {obj} {full} {words[2]}' sets the {full}; pin it with a pattern")
    if (
        full in _NMCLI_SECOND
        and len(words) > 2
        and not _read_only(words[2], _NMCLI_SECOND[full], ("rescan", "connect", "hotspot"))
    ):
        refuse(f"'nmcli {obj} {full} {words[2]}' changes state; pin it with a pattern")


# tc (iproute2): objects and commands with the same prefix rules as ip; -batch runs a file.
_TC_OBJECTS = ("qdisc", "class", "filter", "chain", "actions", "action", "monitor", "exec", "help")
_TC_OPTIONS: tuple[tuple[str, bool, bool], ...] = (
    ("-stats", False, False), ("-statistics", False, False), ("-details", False, False),
    ("-raw", False, False), ("-pretty", False, False), ("-iec", False, False), ("-json", False, False),
    ("-Numeric", False, False), ("-timestamp", False, False), ("-tshort", False, False),
    ("-color", False, False), ("-name", False, False), ("-netns", True, False), ("-help", False, False),
    ("-Version", False, False),
)  # fmt: skip
_TC_WRITE = ("add", "del", "delete", "change", "replace", "link", "flush", "exec", "append")


def check_tc(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse tc commands that change traffic control, -batch and exec (options by allow list)."""
    position = 0
    while position < len(arguments) and arguments[position].startswith("-"):
        word = arguments[position]
        name = word[1:] if word.startswith("--") else word
        found = next(
            (option for option in _TC_OPTIONS if name == option[0] or option[0].startswith(name)), None
        )
        if found is None and position not in trusted:
            refuse(
                f"argument {word!r} of {program!r} is not a tc option jobs.shell allows (-batch, -force ...)"
            )
        position += 2 if found and found[1] else 1
    words = list(arguments[position:])
    if not words or position in trusted:
        return
    obj = next((name for name in _TC_OBJECTS if name.startswith(words[0])), None)
    if obj is None or obj == "exec":
        refuse(f"'tc {words[0]}' is not a tc object jobs.shell runs for a bare-listed tc")
    command = words[1] if len(words) > 1 and (position + 1) not in trusted and obj != "monitor" else ""
    if command and not _read_only(command, ("show", "list", "ls", "get", "help"), _TC_WRITE):
        refuse(f"'tc {obj} {command}' changes traffic control; pin it with a pattern")


# iw: a bare-listed iw only shows (dev, list, phy, info, link, station dump, reg get ...).
_IW_WRITE = frozenset(
    {"set", "connect", "disconnect", "del", "add", "join", "leave", "reload", "start", "stop",
     "trigger", "enable", "disable", "switch", "vendor", "offchannel", "abort", "flush", "new"}
)  # fmt: skip


def check_iw(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse iw commands that change the wireless state (set, connect, scan without dump ...)."""
    for position, word in enumerate(arguments):
        if position in trusted:
            continue
        following = arguments[position + 1] if position + 1 < len(arguments) else ""
        if word in _IW_WRITE or (word == "scan" and following != "dump") or word.startswith("-"):
            refuse(f"argument {word!r} of {program!r} changes the wireless state; pin it with a pattern")
