"""Package managers listed by bare name: subcommands and options by an allow list.

``npm install NAME``, ``pip install NAME``, ``gem install NAME``, ``cargo install NAME`` and
``apt-get install NAME`` fetch a package the message names and run its install scripts
(``postinstall``, ``setup.py``, ``build.rs``, maintainer scripts); options such as
``--registry``, ``--index-url``, ``--script-shell``, ``--node-options``, ``cargo --config
build.rustc-wrapper=...`` make even the manifest's own packages come from, or run through, a
place the message chose; ``cargo NAME`` runs any ``cargo-NAME`` program on the search path.
So a bare-listed package manager runs only the subcommands of its table: reading
(``npm ls``, ``pip list``, ``apt-cache policy``) and working on the project's own manifest
(``npm ci``, ``npm test``, ``npm run build``, ``pip install -r requirements.txt``, ``cargo
build``), with no package named and no argument passed on to a script. Options before the
subcommand must be known flags or ``--name=value`` (a separate value would move the
subcommand); options anywhere are refused when their name holds a word of
:data:`_DANGEROUS_WORDS`. Anything else needs an argument pattern that spells it out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from celery_jobs_ext.shell.syntax import refuse

ANY = -1


@dataclass(frozen=True)
class _Manager:
    #: subcommand -> how many operands it may have (ANY: any, read-only ones)
    verbs: Mapping[str, int]
    #: options allowed before the subcommand (flags, or names allowed as --name=value)
    flags: frozenset[str]
    #: options whose separate value is a file the project names (pip -r requirements.txt)
    file_values: frozenset[str] = frozenset()
    #: whether "--" (arguments passed on to a script) is refused
    no_script_arguments: bool = False
    #: short options refused anywhere (npm -g installs globally, pip -i is --index-url ...)
    refused_letters: str = ""


def _verbs(text: str, operands: int) -> dict[str, int]:
    return dict.fromkeys(text.split(), operands)


def _flags(text: str) -> frozenset[str]:
    return frozenset(text.split())


_NODE_FLAGS = _flags(
    "-s -q -d -dd -ddd -y -D -S -P -O -E --silent --quiet --loglevel --json --parseable --long -l "
    "--production --omit --include --save --save-dev --save-exact --no-save --dry-run --ignore-scripts "
    "--if-present --no-audit --no-fund --prefer-offline --offline --no-progress --color --no-color "
    "--yes --frozen-lockfile --immutable --strict-peer-deps --legacy-peer-deps --all --depth "
    "--workspace --workspaces --include-workspace-root --foreground-scripts --audit-level --recursive -r"
)
_NODE_READ = "ls list ll la outdated view info show v search explain why query fund root bin prefix "
MANAGERS: Mapping[str, _Manager] = MappingProxyType(
    {
        "npm": _Manager(
            verbs={
                **_verbs("ci install i clean-install install-clean test t tst start stop restart", 0),
                **_verbs("run run-script rum urn", 1),
                **_verbs(_NODE_READ + "ping whoami sbom diff", ANY),
                "audit": 0,
            },
            flags=_NODE_FLAGS,
            no_script_arguments=True,
            refused_letters="gCw",
        ),
        "pnpm": _Manager(
            verbs={
                **_verbs("install i test t start", 0),
                **_verbs("run", 1),
                **_verbs(_NODE_READ + "audit", ANY),
            },
            flags=_NODE_FLAGS,
            no_script_arguments=True,
            refused_letters="gCw",
        ),
        "yarn": _Manager(
            verbs={
                **_verbs("install test start", 0), **_verbs("run", 1), **_verbs(_NODE_READ + "audit", ANY),
            },
            flags=_NODE_FLAGS,
            no_script_arguments=True,
            refused_letters="gCw",
        ),
        "pip": _Manager(
            verbs={
                **_verbs("install", 0),
                **_verbs("list show freeze check inspect index cache debug hash search help", ANY),
            },
            flags=_flags(
                "-q -v -qq -vv --quiet --verbose --no-input --disable-pip-version-check --no-cache-dir "
                "--no-color --isolated --require-virtualenv -U --upgrade --no-deps --dry-run --user "
                "--break-system-packages --force-reinstall -I --ignore-installed --only-binary "
                "--prefer-binary --no-build-isolation --require-hashes --progress-bar "
                "--root-user-action --upgrade-strategy --no-warn-script-location -r --requirement "
                "-c --constraint --outdated --uptodate --format --local --not-required"
            ),
            file_values=_flags("-r --requirement -c --constraint"),
            refused_letters="ifteb",
        ),
        "gem": _Manager(
            verbs=_verbs(
                "list search info specification contents environment which query help outdated "
                "dependency", ANY,
            ),
            flags=_flags("-q -V --quiet --verbose --no-verbose --local --remote -a --all -d --details"),
        ),
        "cargo": _Manager(
            verbs={
                **_verbs("build b check c test t bench doc d", 0),
                **_verbs(
                    "tree metadata search version locate-project verify-project pkgid read-manifest", ANY
                ),
            },
            flags=_flags(
                "-q -v -vv --quiet --verbose --locked --offline --frozen --color --release -r "
                "--all-targets --workspace --all --lib --bins --tests --no-run --no-deps --all-features "
                "--no-default-features --features -F -p --package --jobs -j --message-format"
            ),
        ),
        "apt-get": _Manager(
            verbs=_verbs(
                "show showsrc search policy list depends rdepends madison showpkg stats dump dumpavail "
                "pkgnames unmet changelog help", ANY,
            ),
            flags=_flags("-q -qq -y -s --simulate --quiet --installed --upgradable --names-only --full"),
        ),
        "dnf": _Manager(
            verbs=_verbs(
                "list info search provides whatprovides repolist repoinfo repoquery check-update "
                "deplist help", ANY,
            ),
            flags=_flags("-q -C -y --quiet --cacheonly --assumeno --installed --available --showduplicates"),
        ),
        "apk": _Manager(
            verbs=_verbs("info search list policy stats version dot", ANY),
            flags=_flags("-q -v --quiet --verbose --no-cache -a --all -e --exact"),
        ),
        "composer": _Manager(
            verbs={
                **_verbs("install", 0),
                **_verbs("run-script run", 1),
                **_verbs(
                    "show info depends why prohibits why-not outdated validate check-platform-reqs "
                    "licenses search suggests fund audit diagnose list help status", ANY,
                ),
            },
            flags=_flags(
                "-q -v -vv -n --quiet --verbose --no-interaction --no-scripts --no-dev --no-plugins "
                "--ansi --no-ansi"
            ),
            no_script_arguments=True,
            refused_letters="d",
        ),
    }
)  # fmt: skip

MANAGER_FAMILIES: Mapping[str, str] = MappingProxyType(
    {
        "apt": "apt-get", "apt-cache": "apt-get", "aptitude": "apt-get", "yum": "dnf", "microdnf": "dnf",
        "pip3": "pip",
    }
)  # fmt: skip

# Option names holding one of these words point the manager at another registry, index,
# configuration, shell, program, proxy, certificate or directory.
_DANGEROUS_WORDS = (
    "registry", "index", "find-links", "trusted", "source", "config", "shell", "editor", "browser",
    "viewer", "node-options", "userconfig", "init", "prefix", "cache", "proxy", "cert", "cafile",
    "global", "target", "root", "report", "hook", "plugin", "exec", "script", "option", "setting",
    "wrapper", "store", "home", "editable", "directory", "python", "keyring", "interpreter",
)  # fmt: skip
# Short words count only as a whole part of the name (--ca, --git, --log-file; not --local,
# --frozen-lockfile).
_DANGEROUS_PARTS = frozenset({"ca", "git", "key", "log", "src", "dir", "tmp", "file", "path"})
_INFORMATION = frozenset({"--version", "--help", "-v", "-V", "-h"})


def _dangerous(name: str) -> bool:
    return any(word in name for word in _DANGEROUS_WORDS) or bool(set(name.split("-")) & _DANGEROUS_PARTS)


def manager_of(names: set[str]) -> str | None:
    """The package manager ``names`` stand for, if any."""
    for name in sorted(names):
        family = MANAGER_FAMILIES.get(name, name)
        if family in MANAGERS:
            return family
    return None


def _option_name(word: str) -> str:
    return word.split("=", 1)[0]


def check_package_manager(
    program: str, manager_name: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset()
) -> None:
    """Refuse subcommands, operands and options outside the manager's allow list."""
    manager = MANAGERS[manager_name]
    position = 0
    verb_position = None
    while position < len(arguments):
        word = arguments[position]
        if word == "--" and manager.no_script_arguments and position not in trusted:
            refuse(f"{program!r}: arguments after '--' are passed on to a script; pin them with a pattern")
        if not word.startswith("-") or word == "-":
            verb_position = position
            break
        name = _option_name(word).lower()
        if position not in trusted and name not in manager.flags | _INFORMATION and not word.startswith("-Z"):
            refuse(
                f"argument {word!r} of {program!r} is not an option jobs.shell allows before the "
                f"subcommand of a bare-listed {manager_name}; pin the command with a pattern"
            )
        if position not in trusted and word.startswith("-Z"):
            refuse(f"argument {word!r} of {program!r} enables unstable options")
        position += 2 if name in manager.file_values and "=" not in word else 1
    if verb_position is None:
        return  # options only: --version, --help
    verb = arguments[verb_position]
    if verb_position in trusted:
        return  # a pattern spells the subcommand out: the administrator chose it
    if verb not in manager.verbs:
        refuse(
            f"'{manager_name} {verb}' is not a subcommand jobs.shell runs for a bare-listed "
            f"{manager_name} ({', '.join(sorted(manager.verbs))}); installing a package the message "
            "names runs that package's install scripts, so pin anything else with a pattern"
        )
    operands = 0
    skip = False
    for index in range(verb_position + 1, len(arguments)):
        word = arguments[index]
        if skip:
            skip = False
            continue
        if index in trusted:
            continue
        if word == "--" and manager.no_script_arguments:
            refuse(f"{program!r}: arguments after '--' are passed on to a script; pin them with a pattern")
        if word.startswith("-") and word != "-":
            name = _option_name(word).lstrip("-").lower()
            short = not word.startswith("--") and bool(set(word[1:]) & set(manager.refused_letters))
            dangerous = word.startswith("-Z") or short or (len(name) > 1 and _dangerous(name))
            if dangerous and _option_name(word) not in manager.file_values:
                refuse(
                    f"argument {word!r} of {program!r} points {manager_name} at another registry, "
                    "configuration, program or directory; pin the command with a pattern"
                )
            if _option_name(word) in manager.file_values:
                following = arguments[index + 1] if index + 1 < len(arguments) else ""
                value = word.partition("=")[2] if "=" in word else following
                if "://" in value:
                    refuse(
                        f"argument {word!r} of {program!r} reads its file from a URL the message "
                        "chose (it can name another index and packages); pin it with a pattern"
                    )
            skip = _option_name(word) in manager.file_values and "=" not in word
            continue
        operands += 1
    allowed = manager.verbs[verb]
    if allowed != ANY and operands > allowed:
        refuse(
            f"'{manager_name} {verb}' with a package or argument named by the message fetches and "
            "runs code nobody allowed; pin the command with a pattern"
        )


# maven's options that read a build, settings or toolchains file, write a log, or set a
# property (-Dexec.executable=...), in commons-cli's spellings: a short option glued to its
# value (-fpom.xml, -Dx=y) and unambiguous prefixes of long ones; -fae, -ff, -fn and -llr are
# other options.
_MAVEN_SHORT = re.compile(r"-(?:f(?!ae\Z|f\Z|n\Z)|s|gs|t|gt|l(?!lr\Z)|D)")
_MAVEN_LONG = (
    "--file", "--settings", "--global-settings", "--toolchains", "--global-toolchains", "--log-file",
    "--define",
)  # fmt: skip


def check_maven(
    program: str, arguments: Sequence[str], trusted: frozenset[int] = frozenset(), pinned: bool = False
) -> None:
    """Refuse a plugin goal named by its coordinates (``group:artifact[:version]:goal``), and
    options that read build files or set properties.

    maven downloads the plugin named and runs it; a prefix (``dependency:tree``) is looked up
    only in the configured plugin groups.
    """
    for position, word in enumerate(arguments):
        name = word.split("=", 1)[0]
        if position not in trusted and (
            (not word.startswith("--") and _MAVEN_SHORT.match(word))
            or (len(name) > 3 and any(option.startswith(name) for option in _MAVEN_LONG))
        ):
            refuse(
                f"argument {word!r} of {program!r} reads a build, settings or toolchains file, "
                "writes a log or sets a property the message chose; pin it with a pattern"
            )
        if position not in trusted and not word.startswith("-") and word.count(":") >= 2:
            refuse(
                f"argument {word!r} of {program!r} names a plugin by its coordinates, which maven "
                "downloads and runs; pin the goal with a pattern"
            )
