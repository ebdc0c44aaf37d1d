"""System administration programs listed by bare name: only the forms that show state, by allow list.

``modprobe x`` and ``insmod x.ko`` load code into the kernel; ``iptables -F``, ``nft -f``,
``mount``/``umount``/``swapoff``/``losetup -f FILE``, ``ifconfig eth0 down``, ``route del``
change the machine's state; ``useradd``, ``usermod``, ``passwd``, ``chpasswd``... change its
users; ``ssh-keygen`` writes key files (``~/.ssh/id_*`` by default, ``-R`` and ``-H`` rewrite
``known_hosts``, ``-Y sign`` writes a signature); ``setcap`` changes a file's capabilities;
``dpkg -i``, ``update-alternatives --install``, ``debconf-set-selections`` change the
installed software and its settings; ``tic`` (without ``-c``/``-C``/``-I``/``-D``) compiles
terminal descriptions into a database, ``pydoc -w`` writes HTML, ``zipnote -w`` rewrites an
archive, ``gpgtar`` extracts and writes archives.
A bare-listed one may use only the options of its entry in :data:`READ_ONLY` (each word an
allowed option, short letters in any cluster, at most so many operands, and one of the
required options that make it only show); anything else needs an argument pattern.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from celery_jobs_ext.shell.syntax import refuse


@dataclass(frozen=True)
class _ReadOnly:
    #: short option letters allowed (in any cluster), and of those the ones taking a value
    letters: str = ""
    value_letters: str = ""
    #: long options allowed, and of those the ones taking a value
    long: frozenset[str] = frozenset()
    value_long: frozenset[str] = frozenset()
    #: how many operands (words that are not options or values) it may have
    operands: int = 0
    #: one of these options (letters or long options) must be present, if any are listed
    required: tuple[str, ...] = ()
    #: the first operand must be one of these, if any are listed (nft list ...)
    first_operand: tuple[str, ...] = ()


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_INFORMATION = frozenset({"--help", "--version", "-h", "-V"})
_NOTHING = _ReadOnly()
_IPTABLES = _ReadOnly(
    letters="LSnvxt46w",
    value_letters="tw",
    long=_words("--list --list-rules --numeric --verbose --exact --line-numbers --table --wait"),
    value_long=_words("--table --wait"),
    operands=1,
    required=("-L", "-S", "--list", "--list-rules"),
)
_USER_TOOLS = (
    "useradd userdel usermod groupadd groupdel groupmod passwd chpasswd chage gpasswd adduser "
    "deluser addgroup delgroup newusers chsh chfn vipw vigr visudo pwck grpck pwconv pwunconv "
    "grpconv grpunconv"
)
READ_ONLY: Mapping[str, _ReadOnly] = MappingProxyType(
    {
        "modprobe": _ReadOnly(
            letters="ncDRqvV",
            long=_words("--dry-run --show --showconfig --show-depends --resolve-alias --quiet --verbose"),
            operands=1,
            required=(
                "-n", "-c", "-D", "-R", "--dry-run", "--show", "--showconfig", "--show-depends",
                "--resolve-alias",
            ),
        ),
        "insmod": _NOTHING,
        "rmmod": _NOTHING,
        "iptables": _IPTABLES,
        # nft runs every command of an argument ("list ruleset; flush ruleset"): ';' is refused
        "nft": _ReadOnly(
            letters="anjsty",
            long=_words("--handle --numeric --json --stateless --terse"),
            operands=8,
            first_operand=("list", "describe"),
        ),
        "mount": _ReadOnly(
            letters="ltv", value_letters="t", long=_words("--show-labels --types --verbose"),
            value_long=_words("--types"),
        ),
        "umount": _NOTHING,
        "swapon": _ReadOnly(
            letters="s", long=_words("--show --summary --bytes --noheadings --raw"),
            required=("-s", "--show", "--summary"),
        ),
        "swapoff": _NOTHING,
        "losetup": _ReadOnly(
            letters="alJnO",
            value_letters="O",
            long=_words("--all --list --json --noheadings --output --raw"),
            value_long=_words("--output"), required=("-a", "-l", "--all", "--list"),
        ),
        "ifconfig": _ReadOnly(letters="asv", operands=1),
        "route": _ReadOnly(letters="neFCvA", value_letters="A", long=_words("--numeric --extend --verbose")),
        "ssh-keygen": _ReadOnly(
            letters="lyFBLQefimEvq",
            value_letters="fFEm",
            required=("-l", "-y", "-F", "-B", "-L", "-Q", "-e", "-i"),
        ),
        "ethtool": _ReadOnly(
            letters="ikacglSTmPnuxdeI",
            long=_words(
                "--driver --statistics --module-info --register-dump --eeprom-dump --json --debug "
                "--include-statistics --dump-module-eeprom --show-features --show-offload --show-pause "
                "--show-coalesce --show-ring --show-channels --show-time-stamping --show-permaddr "
                "--show-nfc --show-rxfh --show-rxfh-indir --show-eee --show-fec --show-priv-flags "
                "--show-tunnels --show-ntuple --show-module --show-pse"
            ),
            operands=4,
        ),
        "setcap": _NOTHING,
        "setenforce": _NOTHING,
        # round 5: writers the sandbox stopped but the rules let through (the sandbox is off
        # where the kernel has no Landlock)
        "dpkg": _ReadOnly(
            letters="lLsSpCcIfV",
            long=_words(
                "--list --listfiles --status --search --print-avail --get-selections "
                "--print-architecture --print-foreign-architectures --compare-versions --audit "
                "--contents --info --field --verify --no-pager"
            ),
            operands=16,
            required=(
                "-l", "-L", "-s", "-S", "-p", "-C", "-c", "-I", "-f", "-V", "--list", "--listfiles",
                "--status", "--search", "--print-avail", "--get-selections", "--print-architecture",
                "--print-foreign-architectures", "--compare-versions", "--audit", "--contents",
                "--info", "--field", "--verify",
            ),
        ),
        "update-alternatives": _ReadOnly(
            long=_words("--display --query --list --get-selections --quiet --verbose"),
            operands=1,
            required=("--display", "--query", "--list", "--get-selections"),
        ),
        "debconf-set-selections": _NOTHING,
        "debconf-communicate": _NOTHING,
        "debconf-apt-progress": _NOTHING,
        "dpkg-reconfigure": _NOTHING,
        # installs a key in a remote host's authorized_keys (and runs ssh through a shell)
        "ssh-copy-id": _NOTHING,
        "tic": _ReadOnly(
            letters="1aCcDeIfGgKLNqQrsTtUVvWwx0123456789",
            value_letters="eR",
            operands=1,
            required=("-c", "-C", "-I", "-D", "-Q"),
        ),
        "pydoc": _ReadOnly(letters="k", operands=1),
        "zipnote": _ReadOnly(letters="qhvL", operands=1),
        "gpgtar": _ReadOnly(
            letters="tv",
            long=_words("--list-archive --verbose --quiet"),
            operands=1,
            required=("-t", "--list-archive"),
        ),
        **dict.fromkeys(_USER_TOOLS.split(), _NOTHING),
    }
)  # fmt: skip
READ_ONLY_FAMILIES: Mapping[str, str] = MappingProxyType(
    {"ip6tables": "iptables", "iptables-legacy": "iptables", "iptables-nft": "iptables",
     "ip6tables-legacy": "iptables", "ip6tables-nft": "iptables"}
)  # fmt: skip


def read_only_rule(names: set[str]) -> _ReadOnly | None:
    """The read-only rule for a program known under ``names``, if any."""
    for name in sorted(names):
        rule = READ_ONLY.get(READ_ONLY_FAMILIES.get(name, name))
        if rule is not None:
            return rule
    return None


def check_read_only(
    program: str, rule: _ReadOnly, arguments: Sequence[str], trusted: frozenset[int] = frozenset()
) -> None:
    """Refuse any option outside the rule, too many operands, or none of the required options."""
    if arguments and all(word in _INFORMATION for word in arguments):
        return
    operands = 0
    present: set[str] = set()
    position = 0
    while position < len(arguments):
        word = arguments[position]
        literal = position in trusted
        if word.startswith("--"):
            name = word.split("=", 1)[0]
            present.add(name)
            if name not in rule.long and not literal:
                refuse(
                    f"argument {word!r} of {program!r} is not one of the options jobs.shell allows "
                    f"for a bare-listed {program}, which only shows state; pin it with a pattern"
                )
            position += 2 if name in rule.value_long and "=" not in word else 1
            continue
        if word.startswith("-") and word != "-":
            for index, letter in enumerate(word[1:], start=1):
                present.add("-" + letter)
                if letter not in rule.letters and not literal:
                    refuse(
                        f"argument {word!r} of {program!r}: -{letter} is not one of the options "
                        f"jobs.shell allows for a bare-listed {program}, which only shows state "
                        "(it loads code, changes the machine or writes files); pin it with a pattern"
                    )
                if letter in rule.value_letters:
                    position += 0 if word[index + 1 :] else 1
                    break
            position += 1
            continue
        present.add(word)
        operands += 1
        if not literal and (
            (operands == 1 and rule.first_operand and word not in rule.first_operand)
            or (rule.first_operand and any(char in word for char in ";\n{}"))
        ):
            refuse(
                f"argument {word!r} of {program!r}: a bare-listed {program} only runs "
                f"{' or '.join(rule.first_operand)}, one command; pin anything else with a pattern"
            )
        if operands > rule.operands and not literal:
            refuse(
                f"argument {word!r} of {program!r}: a bare-listed {program} only shows state and "
                "takes no such operand; pin the command with a pattern"
            )
        position += 1
    if rule.required and not present & set(rule.required) and not trusted:
        refuse(
            f"{program!r} without one of {', '.join(rule.required)} changes the machine or writes "
            "files; a bare-listed one only shows state, so pin the command with a pattern"
        )
