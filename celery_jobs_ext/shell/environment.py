"""The child's environment: ``PATH`` plus variables from a small allow list, nothing else.

A deny list of dangerous variables loses: programs read commands and configuration locations
from many variables (``GIT_SEQUENCE_EDITOR``, ``HOME`` and ``XDG_CONFIG_HOME`` pointing at a
chosen config, ``VIMINIT``, ``ZIPOPT`` ...), and every new program version adds some. So only
names in :data:`DEFAULT_ALLOWED_ENVIRONMENT` plus those ``jobs_shell_allowed_env`` adds pass,
checked in the producer and again in the worker. Imports nothing from Celery.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from celery_jobs_ext.errors import ImproperlyConfigured
from celery_jobs_ext.shell.syntax import refuse

ENVIRONMENT_SETTING = "jobs_shell_allowed_env"
PATH_SETTING = "jobs_shell_path"

DEFAULT_ALLOWED_ENVIRONMENT: tuple[str, ...] = (
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "TERM",
    "NO_COLOR",
    "COLUMNS",
    "LINES",
)
"""Variables any job may set: locale, time zone, terminal type and size, colour switch.

``LC_*`` stands for every name starting with ``LC_``.
"""

# Names an administrator cannot add either: they load code into every program (the dynamic
# loader's variables, bash's exported functions) or replace the search path.
_NEVER_ALLOWED = re.compile(r"(?:PATH|LD_.*|DYLD_.*|BASH_FUNC_.*|BASH_ENV|ENV)\Z")
# Names a program reads as a command to run, a place to load configuration, code or
# libraries from, or a file to write: never passed either, even when the setting lists them
# or a prefix entry (GIT_*, APP_*) covers them. By the shape of the name, so the names nobody
# listed are caught too: ...PAGER, ...EDITOR, ...ASKPASS, ...SHELL, ..._RSH, ...OPT(ION)S,
# ...CONF(IG)..., ...HOME, ...RC, ...INIT, ...PATH, ...LIB, ...DIR(S), ...FILE, ...STARTUP,
# ...COMMAND/CMD/PROG(RAM), ...EXEC..., HOME and XDG_* locations, interpreter and loader knobs.
_NEVER_ALLOWED_SHAPES = re.compile(
    r"(?:.*(?:PAGER|EDITOR|VISUAL|ASKPASS|SHELL|RSH|OPTS?|OPTIONS|CONF|CONFIG.*|HOME|RC|INIT"
    r"|PATH|LIB|DIRS?|DIRECTORY|DIRECTORIES|FILE|STARTUP|COMMAND|CMD|PROG|PROGRAM|EXEC.*|ENGINES"
    r"|MODULES?|HISTFILE|HISTORY|PRELOAD|PLUGINS?)"
    r"|XDG_.*|PYTHON.*|PERL.*|RUBY.*|NPM_CONFIG_.*|JAVA_TOOL_OPTIONS|_JAVA_OPTIONS|JDK_.*"
    r"|CLASSPATH|GCONV_.*|LOCPATH|NLSPATH|HOSTALIASES|RESOLV_.*|OPENSSL_.*|SSLKEYLOGFILE|MALLOC_.*"
    r"|GLIBC_TUNABLES|TERMINFO.*|PROMPT_COMMAND|PS[0-4]|IFS|CDPATH|GLOBIGNORE|SHELLOPTS|BASHOPTS"
    r"|ZIPOPT|UNZIP|GZIP|BZIP2?|XZ_.*|ZSTD_.*|TAR_.*|LESS.*|MAN.*|BROWSER|MAIL.*|VIMINIT|EXINIT"
    r"|WGETRC|CURL_.*|NETRC|SSH_.*|GNUPG.*|GPG_.*|PG(?:SERVICEFILE|PASSFILE|SYSCONFDIR|SSL.*)"
    r"|MYSQL_(?:HOME|HISTFILE|TEST_LOGIN_FILE|UNIX_PORT)|SQLITE_.*|TMUX.*|SCREEN.*|DISPLAY"
    r"|WAYLAND_.*|DBUS_.*|SYSTEMD_.*|KRB5.*"
    r"|MAKEFLAGS|GNUMAKEFLAGS|MFLAGS|MAKEFILES|DOCKER_.*|CONTAINER_.*|PODMAN_.*|BUILDKIT_.*"
    r"|VIM|VIMRUNTIME|PGSERVICE|NODE_.*|LOCALDOMAIN"
    # build tools paste these into the command lines they run (make recipes, cargo, cmake,
    # ccache), and runtimes read code or commands from them (LUA_INIT, ERL_AFLAGS,
    # DOTNET_STARTUP_HOOKS, KUBECTL_EXTERNAL_DIFF, TAPE is tar's and mt's archive device)
    r"|.*FLAGS|.*_WRAPPER|.*_PREFIX|.*_LAUNCHER|CC|CXX|CPP|LD|AR|AS|NM|FC|F77|F90|RANLIB|STRIP"
    r"|OBJCOPY|OBJDUMP|YACC|LEX|M4|HOSTCC|HOSTCXX|CCACHE_.*|DISTCC_.*|RUSTC.*|RUSTDOC.*|CARGO_.*"
    r"|CMAKE_.*|LUA_.*|ERL_.*|GO(?:FLAGS|TOOLCHAIN|PROXY|ENV|ROOT|PATH|BIN|CACHE|EXPERIMENT)"
    r"|DOTNET_.*|COREHOST_.*|COMPlus_.*|KUBECTL_.*|KUBE.*|TAPE"
    # (round 4) files a program writes or loads data from, named anywhere in the name:
    # DEPENDENCIES_OUTPUT and SUNPRO_DEPENDENCIES make the preprocessor write a make rule file,
    # LOCALE_ARCHIVE(_2_27) loads locale data, MEMUSAGE_OUTPUT, SEGFAULT_OUTPUT_NAME ...
    r"|.*(?:OUTPUT|DEPENDENCIES|ARCHIVE).*"
    # ... or at the end: logs, dumps, traces, sockets, caches, templates, temporary directories
    r"|.*(?:LOG|LOGFILE|LOGDIR|DUMP|TRACE|TRACEFILE|SOCKET|SOCK|AUTHORITY|BUNDLE|CREDENTIALS"
    r"|CACHE|TEMPLATES?|REPORT|TMPDIR|TEMPDIR|SPECS?)"
    r"|TMP|TEMP|TERMCAP|MAKE|FFREPORT"
    # compiler drivers and the C library: GCC_EXEC_PREFIX, GCC_COMPARE_DEBUG (compiles again,
    # writing files), COLLECT_GCC (the program collect2 runs), CCC_OVERRIDE_OPTIONS, CC_PRINT_*,
    # LLVM_PROFILE_FILE, GCOV_*/GMON_* (profile output), sanitizers' log_path, glibc's tunables
    r"|GCC_.*|COLLECT_.*|LTO_.*|CCC_.*|CC_.*|CLANG_.*|LLVM_.*|CPLUS_.*|OBJC_.*|GCOV_.*|GMON_.*"
    r"|(?:A|L|M|T|UB|HWA)SAN_.*|SEGFAULT_.*|MEMUSAGE_.*|PCPROFILE_.*|LIBC_.*|GLIBC_.*|MALLOC.*"
    r"|LOCALE_.*|DEBUGINFOD_.*|GNUTLS_.*|NSS_.*|SSL_.*"
    # arguments appended to a tool's command line (TF_CLI_ARGS, ...ARGS) and package managers'
    # and infrastructure tools' settings: an index or registry a message chooses is code it
    # chooses (PIP_INDEX_URL, UV_INDEX_URL, YARN_REGISTRY, GOSUMDB=off, ANSIBLE_*, HELM_*)
    r"|.*ARGS|TF_.*|ANSIBLE_.*|HELM_.*|PIP_.*|UV_.*|POETRY_.*|PIPENV_.*|CONDA_.*|BUNDLE_.*"
    r"|COMPOSER_.*|YARN_.*|PNPM_.*|BUN_.*|DENO_.*|RUSTUP_.*|GRADLE_.*|MAVEN_.*|CLOUDSDK_.*"
    r"|GOSUMDB|GONOSUMDB|GONOSUMCHECK|GOINSECURE|GOPRIVATE|GONOPROXY|GOAUTH|GOVCS)\Z",
    re.IGNORECASE,
)
# Git reads commands, configuration and repository locations from dozens of GIT_* variables
# (GIT_CONFIG_COUNT/KEY/VALUE define aliases, GIT_EXTERNAL_DIFF, GIT_SSH, GIT_DIR ...).
# Only these identity and pathspec switches pass, whatever the setting lists.
SAFE_GIT_ENVIRONMENT = frozenset(
    {
        "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_AUTHOR_DATE", "GIT_COMMITTER_NAME",
        "GIT_COMMITTER_EMAIL", "GIT_COMMITTER_DATE", "GIT_TERMINAL_PROMPT", "GIT_OPTIONAL_LOCKS",
        "GIT_FLUSH", "GIT_MERGE_VERBOSITY", "GIT_LITERAL_PATHSPECS", "GIT_GLOB_PATHSPECS",
        "GIT_NOGLOB_PATHSPECS", "GIT_ICASE_PATHSPECS", "GIT_NO_REPLACE_OBJECTS",
        "GIT_PROGRESS_DELAY", "GIT_ADVICE", "GIT_QUARANTINE_PATH_IGNORED",
    }
)  # fmt: skip


def never_allowed(name: str) -> bool:
    """Whether no job may set ``name``, whatever ``jobs_shell_allowed_env`` says."""
    if name.upper().startswith("GIT_"):
        return name not in SAFE_GIT_ENVIRONMENT
    return bool(_NEVER_ALLOWED.match(name) or _NEVER_ALLOWED_SHAPES.match(name))


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ENTRY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\*?\Z")
# Locale values are names (en_US.UTF-8, C.UTF-8@euro): a '/' would make glibc load locale
# files from a chosen directory, and a part starting with '.' ("..") climbs out of the
# locale directory the same way (LANGUAGE is a ':'-separated list of such names).
_LOCALE_VALUE = re.compile(r"[A-Za-z0-9_.@+:-]*\Z")
# A terminal type names a terminfo entry; a '/' would make it a path.
_TERM_VALUE = re.compile(r"[A-Za-z0-9_.+-]{0,64}\Z")
# NO_COLOR is a switch: any short token turns colour off.
_SWITCH_VALUE = re.compile(r"[A-Za-z0-9_.+-]{0,16}\Z")
_NUMBER_VALUE = re.compile(r"[0-9]{1,5}\Z")
# TZ: a zone name (Europe/Paris, :America/New_York, Etc/GMT+3) or a POSIX TZ string
# (EST5EDT,M3.2.0,M11.1.0, <+0330>-3:30). Nothing else: a value is text the program's
# environment holds, and free text there is a carrier for code (perl -x /proc/self/environ).
_TZ_ZONE = r":?[A-Za-z0-9_+-]+(?:/[A-Za-z0-9_+-]+)*"
_TZ_NAME = r"(?:[A-Za-z]{3,}|<[A-Za-z0-9+-]{3,}>)"
_TZ_OFFSET = r"[+-]?[0-9]{1,2}(?::[0-9]{2}){0,2}"
_TZ_DATE = r"(?:J[0-9]{1,3}|[0-9]{1,3}|M[0-9]{1,2}\.[0-9]\.[0-9])(?:/[+-]?[0-9]{1,3}(?::[0-9]{2}){0,2})?"
_TZ_POSIX = rf"{_TZ_NAME}{_TZ_OFFSET}(?:{_TZ_NAME}(?:{_TZ_OFFSET})?(?:,{_TZ_DATE},{_TZ_DATE})?)?"
_TZ_VALUE = re.compile(rf"(?:{_TZ_ZONE}|{_TZ_POSIX})\Z")
_MAX_VALUE_LENGTH = 1024
_MAX_DEFAULT_VALUE_LENGTH = 64


def checked_environment_names(entries: object, setting: str = ENVIRONMENT_SETTING) -> tuple[str, ...]:
    """Validate ``jobs_shell_allowed_env``: variable names, or a prefix ending in ``*``.

    Raises:
        ImproperlyConfigured: not a list of such strings, or a name no job may set.
    """
    if isinstance(entries, str) or not isinstance(entries, (list, tuple)):
        raise ImproperlyConfigured(
            f"Setting {setting} = {entries!r} is invalid: expected a list of environment "
            "variable names (a trailing '*' allows every name with that prefix)."
        )
    for entry in entries:
        if not isinstance(entry, str) or not _ENTRY.match(entry):
            raise ImproperlyConfigured(
                f"Setting {setting} = {list(entries)!r} is invalid: {entry!r} is not a variable "
                "name such as 'APP_MODE' or a prefix such as 'APP_*'."
            )
        if (
            (not entry.endswith("*") and never_allowed(entry))
            or _NEVER_ALLOWED.match(entry.rstrip("*"))
            or entry == "*"
        ):
            raise ImproperlyConfigured(
                f"Setting {setting} = {list(entries)!r} is invalid: {entry!r} would let a message "
                "load code into the program or change its search path; jobs.shell never passes it."
            )
    return tuple(entries)


def _is_allowed(name: str, allowed: Iterable[str]) -> bool:
    for entry in allowed:
        if entry.endswith("*"):
            if name.startswith(entry[:-1]):
                return True
        elif name == entry:
            return True
    return False


def _check_default_value(name: str, value: str) -> None:
    """Refuse a value of a default variable outside its grammar (each is a short token)."""
    if not (name.startswith("LC_") or name in DEFAULT_ALLOWED_ENVIRONMENT):
        return
    if len(value) > _MAX_DEFAULT_VALUE_LENGTH or not value.isascii():
        refuse(f"environment variable {name} must be at most {_MAX_DEFAULT_VALUE_LENGTH} ASCII characters")
    if (name.startswith("LC_") or name in ("LANG", "LANGUAGE")) and (
        not _LOCALE_VALUE.match(value) or any(part.startswith(".") for part in value.split(":"))
    ):
        refuse(f"environment variable {name}={value!r} is not a locale name")
    if name == "TERM" and not _TERM_VALUE.match(value):
        refuse(f"environment variable TERM={value!r} is not a terminal type name")
    if name == "NO_COLOR" and not _SWITCH_VALUE.match(value):
        refuse(f"environment variable NO_COLOR={value!r} is not a short switch such as '1'")
    if name in ("COLUMNS", "LINES") and not _NUMBER_VALUE.match(value):
        refuse(f"environment variable {name}={value!r} is not a number")
    if name == "TZ" and (".." in value or value.lstrip(":").startswith("/") or not _TZ_VALUE.match(value)):
        refuse(
            f"environment variable TZ={value!r} is not a zone name such as 'Europe/Paris' "
            "or a POSIX TZ string such as 'EST5EDT,M3.2.0,M11.1.0'"
        )


def check_environment(env: object, allowed_env: Sequence[str] = ()) -> dict[str, str]:
    """Return ``env`` as a dict if every variable is allowed, or refuse it.

    Arguments:
        env: The mapping a message asked for.
        allowed_env: Names (or ``PREFIX_*``) allowed on top of :data:`DEFAULT_ALLOWED_ENVIRONMENT`.

    Raises:
        ShellCommandNotAllowed: not a mapping of str to str, or a name is not allowed, or a
            value is malformed.
    """
    if not isinstance(env, Mapping):
        refuse(f"env must be a mapping of variable names to values, got {type(env).__name__}")
    allowed = (*DEFAULT_ALLOWED_ENVIRONMENT, *allowed_env)
    checked: dict[str, str] = {}
    for name, value in env.items():
        if not isinstance(name, str) or not isinstance(value, str):
            refuse(f"env must map str to str; got {name!r}: {type(value).__name__}")
        if not _NAME.match(name):
            refuse(f"environment variable name {name!r} must match [A-Za-z_][A-Za-z0-9_]*")
        if "\x00" in value:
            refuse(f"environment variable {name} contains a NUL character")
        if not value.isprintable() or len(value) > _MAX_VALUE_LENGTH:
            # One line of printable text: a multi-line value is a script a program can read
            # back from /proc/self/environ (perl -x, python -x) or copy into a file.
            refuse(
                f"environment variable {name} must be one line of printable text of at most "
                f"{_MAX_VALUE_LENGTH} characters (no newline, tab or other control character)"
            )
        if name == "PATH":
            refuse(f"environment variable PATH cannot be set per job; the child's PATH is {PATH_SETTING}")
        if never_allowed(name):
            refuse(
                f"environment variable {name} is not allowed, even when {ENVIRONMENT_SETTING} "
                "lists it: programs read it as a command to run, a place to load configuration or "
                "code from, or a file to write"
            )
        if not _is_allowed(name, allowed):
            refuse(
                f"environment variable {name} is not allowed: a job may set only "
                f"{', '.join(DEFAULT_ALLOWED_ENVIRONMENT)} and the names listed in {ENVIRONMENT_SETTING}"
            )
        _check_default_value(name, value)
        checked[name] = value
    return checked


def child_environment(env: object, search_path: str, allowed_env: Sequence[str] = ()) -> dict[str, str]:
    """The whole environment of the child: ``PATH`` (the search path) plus the checked ``env``."""
    return {"PATH": search_path, **check_environment(env, allowed_env)}
