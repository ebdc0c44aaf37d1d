"""Turn a command string into one program's argv, refusing shell syntax, and run it without a shell.

A "the first word must be in the list" check is not a whitelist when the string then goes to
a shell: ``ls; rm -rf /``, ``ls $(id)`` and ``find . -exec rm {} \\;`` all start with an
allowed word. So :func:`validate_command` tokenises the command the way a POSIX shell would,
*refuses* every piece of shell syntax instead of passing it on as text, resolves the program
through a fixed search path, and refuses options through which an allowed program would run
another one. :func:`run_command` then runs the argv with ``shell=False``.

Structural rules (checked first, whatever the program):

- Longer than :data:`MAX_COMMAND_LENGTH` (8192) characters, empty or blank: refused.
- Tokenising follows POSIX: whitespace separates words; ``'...'`` is literal; inside
  ``"..."`` a backslash escapes only ``$ ` " \\``; outside quotes a backslash makes the next
  character literal (``\\;`` is the argument ``;``). Unterminated quotes and a trailing
  backslash are refused.
- Refused outside quotes: ``; & | && || ;;``, redirections (``< > >> 2> &> >& <& <> >|``),
  here-documents and here-strings (``<< <<- <<<``), ``( )``, ``{ }``, backticks, every ``$``
  (``$VAR``, ``${...}``, ``$(...)``, ``$((...))``, ``$'...'``), glob characters ``* ? [``,
  ``~`` at the start of a word, after ``=``, or after ``:`` in a ``name=value`` word (where
  bash expands it; ``host:~/x`` stays literal), and ``#`` at the start of a word (a comment).
  The one exception is the whole word ``{}``, which every shell passes on literally
  (``find . -name {}``; ``-exec`` is refused anyway).
- Refused inside double quotes: ``$`` and backticks, which a shell still expands there.
  Single quotes make everything literal, so ``grep -E 'ERROR|WARN' app.log`` is fine.
- Refused anywhere, quoted or not: NUL, newline, carriage return, backslash-newline (line
  continuation) and every other control character except an unquoted tab between words;
  invisible format characters (zero-width spaces and joiners, bidirectional overrides, BOM,
  soft hyphen: Unicode category Cf), line and paragraph separators (Zl, Zp), space
  look-alikes (non-ASCII Zs, such as U+00A0), private-use, surrogate and unassigned code
  points.
- Refused outside quotes: any other non-ASCII character. Look-alikes such as the fullwidth
  semicolon U+FF1B or fullwidth pipe U+FF5C therefore never pass as plain text; inside
  quotes non-ASCII text (``grep 'café'``) is literal and allowed.
- The first word: a shell keyword or builtin (``if``, ``!``, ``eval``, ``exec``, ``source``,
  ``.``, ``cd``, ``command``, ...) or a ``VAR=value`` prefix is refused; the program name
  must be ASCII letters, digits, ``. _ + -`` (and ``/`` for a path).

Program rules:

- A bare name must be in the allowed list (``jobs_allowed_shell_commands``; empty allows any
  program) and is resolved with ``shutil.which`` on the fixed search path
  (``jobs_shell_path``, default ``/usr/local/bin:/usr/bin:/bin``), never the worker's own
  ``PATH``; not found there, it is refused. The returned ``argv[0]`` is that absolute path
  (symlinks are not resolved, so multi-call binaries still see their name).
- A path (``/bin/ls``, ``./ls``, ``../x/ls``) is allowed only if that exact string is in the
  allowed list. With an empty allowed list, absolute paths to executable files are accepted
  and relative ones refused. A listed relative path is returned unchanged and resolves
  against ``run_command``'s ``cwd``.
- Programs that exist to run their arguments are refused even when listed
  (:data:`REFUSED_PROGRAMS`): ``xargs env nice timeout nohup sudo doas su strace ltrace time
  stdbuf chroot flock setsid watch parallel busybox gdb socat tmux screen ...`` and the
  dynamic loader ``ld-linux*.so``.
- Interpreters and shells (``python``, ``perl``, ``ruby``, ``node``, ``php``, ``lua``, ``sh``,
  ``bash`` ...) are allowed only when listed, like any program; their inline-code options are
  refused (below), but a listed interpreter still runs any script file it is given, so list
  one only if that is what you mean.

Per-program argument rules (:data:`DENIED_ARGUMENTS`, matched on the program's base name,
on its name without a version suffix such as ``python3.11``, on its family such as
``gawk``/``mawk`` for ``awk``, and on the name its path resolves to):

- ``find``: ``-exec -execdir -ok -okdir -delete -fprint -fprint0 -fprintf -fls``; ``fd``:
  ``-x --exec -X --exec-batch``.
- ``tar``: ``-I --use-compress-program --to-command --checkpoint-action --rsh-command
  --rmt-command --info-script -F --new-volume-script``, also in the old option style
  (``tar xIf ...``).
- ``sed``: ``-i --in-place -f --file``, and the script itself is parsed: the ``e``, ``w`` and
  ``W`` commands and the ``e`` and ``w`` flags of ``s`` are refused, as is any script this
  module cannot parse.
- ``awk`` (``gawk mawk nawk``): ``-f --file -E --exec -i --include -l --load -W`` and the
  options that write files (``-d -D -o -p`` and their long forms); the program text may not
  contain ``system``, a pipe (a lone ``|``; ``||`` is fine), ``@`` before a name (``@load``,
  ``@include``, indirect calls) or a ``>`` after ``print``/``printf`` (output redirection).
- ``git``: ``--config-env --exec-path --upload-pack --receive-pack --exec --extcmd
  --open-files-in-pager --ext-diff`` anywhere; ``-c`` before the subcommand; ``clone -u -c
  --config --template``, ``init --template``, ``ls-remote -u``, ``rebase -x``, ``difftool -x``,
  ``grep -O``; ``ext::`` and ``fd::`` remote URLs; the subcommands ``config filter-branch
  shell remote-ext remote-fd hook send-email daemon instaweb web--browse``, ``bisect run``
  and ``submodule foreach``.
- ``ssh``/``scp``/``sftp``: ``-F -I -E`` (ssh), ``-S -D`` (scp, sftp), ``-b`` (sftp), and
  ``-o`` with ``ProxyCommand LocalCommand PermitLocalCommand KnownHostsCommand
  PKCS11Provider SecurityKeyProvider XAuthLocation UserKnownHostsFile Include Match``;
  ``ssh-keygen -D -w``.
- ``rsync``: ``-e --rsh --rsync-path -M --remote-option``.
- ``curl``: ``-o --output -O --remote-name --remote-name-all --output-dir -K --config -D
  --dump-header -c --cookie-jar --trace --trace-ascii --stderr --libcurl --etag-save --hsts
  --alt-svc``; ``wget``: ``-O --output-document -o --output-file -a --append-output -P
  --directory-prefix -e --execute --config --use-askpass``.
- ``less``: ``+cmd -k --lesskey-file --lesskey-src --lesskey-content -o --log-file -O
  --LOG-FILE``; ``man``: ``-P --pager -H --html -X --gxditview -C --config-file``;
  ``vim``/``vi``/``nvim``/``ex``: ``+cmd -c --cmd -S -u -U -s -w -W``; ``emacs``: ``--eval
  -l --load -f --funcall --script -x``.
- ``zip``: ``-TT`` (also glued or in a cluster) ``--unzip-command``; ``tcpdump``: ``-z -w``;
  ``dd``: ``of=``; ``sort``: ``-o --output --compress-program``; ``split``: ``--filter``;
  ``rg``: ``--pre``; ``make``: ``-E --eval``; ``nmap``: ``--script --interactive --datadir
  -o`` (and single-dash forms);
  ``nc``/``ncat``/``netcat``: ``-e -c -o --exec --sh-exec --lua-exec``.
- Interpreters: ``python -c -m``; ``perl -e -E -M -m -i``; ``ruby -e -r -i``; ``node -e
  --eval -p --print -r --require --import --loader --experimental-loader --inspect
  --inspect-brk --inspect-wait --env-file``; ``php -r -B -R -E -F -d -c -z -S`` (and long
  forms); ``lua -e -l``; shells ``-c --command -C --init-command --rcfile --init-file``.
- Databases: ``psql -c --command -f --file -o --output -L --log-file``; ``mysql``/``mariadb
  -e --execute --init-command --pager --tee --plugin-dir --default-auth``; ``sqlite3 -cmd
  -init -A --archive`` and arguments containing the dot-commands ``.shell .system .output .once .excel
  .load .log .save .backup .clone .import .read .cd .open .archive .ar .trace .iotrace`` or
  ``ATTACH``, ``VACUUM INTO``, ``writefile(``, ``edit(``, ``load_extension(``.

How an entry matches an argument: ``--name`` matches ``--name``, ``--name=...`` and every
abbreviation ``--na``/``--na=...`` (GNU getopt and git accept unambiguous prefixes; a few
real options that are prefixes of denied ones, such as tar's ``--checkpoint``, are exempt).
``-x`` matches the letter in any cluster of short options (``-xvI``, ``-Igzip``) up to the
first letter known to take a value. ``-word`` matches ``-word`` and ``-word=...`` exactly
(``find -executable`` is not ``-exec``). ``+`` matches any argument starting with ``+``, and
``word=`` any argument starting with it. ``jobs_shell_denied_arguments`` adds entries per
program name with the same syntax. Every argument is checked, including those after an
interpreter's script name or after ``--``: safer than guessing where a program stops reading
options, at the price of refusing e.g. ``perl script.pl -e``. The table is not exhaustive:
the allowed list is the real boundary, and a listed program that runs configuration or
scripts from disk (``git`` hooks, ``make``, an interpreter given a file) runs what is there.
Reading and uploading files (``curl -T``, ``curl -d @file``, ``sed r``) is not refused.

:func:`run_command` runs an argv with ``subprocess.Popen(..., shell=False)``, stdin from
``/dev/null``, in a new session so a timeout kills the whole process group, and reads both
pipes incrementally, keeping at most ``max_output`` bytes of each (the rest is drained and
counted, so a program printing gigabytes cannot exhaust the worker's memory). Background
processes that still hold its output one second after it exits are killed with its group.
With ``env``
the child gets only ``PATH`` (the search path) plus those variables; variables that make
programs load code or run commands (``LD_PRELOAD``, ``GIT_SSH_COMMAND``, ``PAGER``,
``PYTHONPATH``, ``BASH_ENV`` ..., see :data:`DENIED_ENVIRONMENT_VARIABLES`) are refused.
Without ``env`` the child inherits the worker's environment.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType
from typing import Any, NoReturn, Protocol

from celery_jobs_ext.config import ConfigCache
from celery_jobs_ext.errors import ImproperlyConfigured, JobsError
from celery_jobs_ext.task import GuardedTask

__all__ = [
    "DEFAULT_SEARCH_PATH",
    "DENIED_ARGUMENTS",
    "DENIED_ENVIRONMENT_PREFIXES",
    "DENIED_ENVIRONMENT_VARIABLES",
    "MAX_COMMAND_LENGTH",
    "REFUSED_PROGRAMS",
    "STDERR_TAIL_BYTES",
    "ShellCommandFailed",
    "ShellCommandNotAllowed",
    "ShellCommandTimedOut",
    "run_command",
    "validate_command",
]

MAX_COMMAND_LENGTH = 8192
"""Longest command, in characters, that :func:`validate_command` examines (8 KiB)."""

DEFAULT_SEARCH_PATH = "/usr/local/bin:/usr/bin:/bin"
"""The default of ``jobs_shell_path``: where bare program names are looked up."""

STDERR_TAIL_BYTES = 2048
"""How much of the end of stderr a :class:`ShellCommandFailed` carries."""

_ALLOWED_SETTING = "jobs_allowed_shell_commands"
_PATH_SETTING = "jobs_shell_path"
_DENIED_SETTING = "jobs_shell_denied_arguments"

_READ_SIZE = 65536
# Once the program has exited, how long its pipes may stay open (held by a background child)
# before the rest of its process group is killed; without this a stray daemon would hold the
# task forever.
_EXIT_DRAIN_SECONDS = 1.0
_POLL_INTERVAL_SECONDS = 0.2


class ShellCommandNotAllowed(JobsError):
    """A command was refused before anything ran; the message names the part refused and why."""


class ShellCommandFailed(JobsError):
    """The program exited non-zero or could not start; carries the code and the end of stderr.

    ``args`` holds exactly the constructor's arguments, so the error survives pickling and
    Celery's JSON round trip of exceptions (which rebuilds it as ``cls(*args)``).
    """

    def __init__(self, argv: Sequence[str], returncode: int, stderr_tail: str = "") -> None:
        self.argv: tuple[str, ...] = tuple(argv)
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        super().__init__(list(self.argv), returncode, stderr_tail)

    @property
    def command(self) -> str:
        """The argv as one shell-quoted string, for messages and logs."""
        return shlex.join(self.argv)

    def __reduce__(self) -> tuple[type[ShellCommandFailed], tuple[object, ...]]:
        return (type(self), self.args)

    def __str__(self) -> str:
        return f"Command {self.command!r} {self._outcome()}{self._stderr_summary()}"

    def _outcome(self) -> str:
        if self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"was killed by {name} (exit code {self.returncode})"
        return f"exited with code {self.returncode}"

    def _stderr_summary(self) -> str:
        tail = self.stderr_tail.rstrip()
        return f"; stderr ends with: {tail}" if tail else "; stderr was empty"


class ShellCommandTimedOut(ShellCommandFailed):
    """The program outlived its timeout; it and its whole process group were killed."""

    def __init__(
        self, argv: Sequence[str], returncode: int, stderr_tail: str = "", timeout: float = 0.0
    ) -> None:
        self.timeout = timeout
        super().__init__(argv, returncode, stderr_tail)
        self.args = (list(self.argv), returncode, stderr_tail, timeout)

    def _outcome(self) -> str:
        return f"timed out after {self.timeout:g} s and was killed with its process group"


class _ShellSettings(Protocol):
    """The part of the extension's configuration this module reads."""

    @property
    def allowed_shell_commands(self) -> Sequence[str]: ...

    @property
    def shell_path(self) -> str: ...

    @property
    def shell_denied_arguments(self) -> Mapping[str, Sequence[str]]: ...


def _settings() -> _ShellSettings:
    """Return the configured shell settings of the current app."""
    settings: _ShellSettings = ConfigCache.get()
    return settings


# -- the per-program table ---------------------------------------------------------------

DENIED_ARGUMENTS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "find": (
            "-exec", "-execdir", "-ok", "-okdir", "-delete",
            "-fprint", "-fprint0", "-fprintf", "-fls",
        ),
        "fd": ("-x", "--exec", "-X", "--exec-batch"),
        "tar": (
            "-I", "--use-compress-program", "--to-command", "--checkpoint-action",
            "--rsh-command", "--rmt-command", "--info-script", "-F", "--new-volume-script",
        ),
        "sed": ("-i", "--in-place", "-f", "--file"),
        "awk": (
            "-f", "--file", "-E", "--exec", "-i", "--include", "-l", "--load", "-W",
            "-d", "--dump-variables", "-D", "--debug", "-o", "--pretty-print",
            "-p", "--profile",
        ),
        "git": (
            "--config-env", "--exec-path", "--upload-pack", "--receive-pack", "--exec",
            "--extcmd", "--open-files-in-pager", "--ext-diff",
        ),
        "ssh": ("-F", "-I", "-E"),
        "scp": ("-F", "-S", "-D"),
        "sftp": ("-F", "-S", "-D", "-b"),
        "ssh-keygen": ("-D", "-w"),
        "rsync": ("-e", "--rsh", "--rsync-path", "-M", "--remote-option"),
        "curl": (
            "-o", "--output", "-O", "--remote-name", "--remote-name-all", "--output-dir",
            "-K", "--config", "-D", "--dump-header", "-c", "--cookie-jar", "--trace",
            "--trace-ascii", "--stderr", "--libcurl", "--etag-save", "--hsts", "--alt-svc",
        ),
        "wget": (
            "-O", "--output-document", "-o", "--output-file", "-a", "--append-output",
            "-P", "--directory-prefix", "-e", "--execute", "--config", "--use-askpass",
        ),
        "less": (
            "+", "-k", "--lesskey-file", "--lesskey-src", "--lesskey-content",
            "-o", "--log-file", "-O", "--LOG-FILE",
        ),
        "man": ("-P", "--pager", "-H", "--html", "-X", "--gxditview", "-C", "--config-file"),
        "vim": ("+", "-c", "--cmd", "-S", "-u", "-U", "-s", "-w", "-W"),
        "emacs": ("--eval", "-l", "--load", "-f", "--funcall", "--script", "-x"),
        "zip": ("-TT", "--unzip-command"),
        "tcpdump": ("-z", "-w"),
        "dd": ("of=",),
        "sort": ("-o", "--output", "--compress-program"),
        "split": ("--filter",),
        "rg": ("--pre",),
        "make": ("-E", "--eval"),
        "nmap": (
            "--script", "-script", "--interactive", "-interactive",
            "--datadir", "-datadir", "-o",
        ),
        "nc": ("-e", "-c", "-o", "--exec", "--sh-exec", "--lua-exec"),
        "python": ("-c", "-m"),
        "perl": ("-e", "-E", "-M", "-m", "-i"),
        "ruby": ("-e", "-r", "-i"),
        "node": (
            "-e", "--eval", "-p", "--print", "-r", "--require", "--import", "--loader",
            "--experimental-loader", "--inspect", "--inspect-brk", "--inspect-wait",
            "--env-file",
        ),
        "php": (
            "-r", "--run", "-B", "--process-begin", "-R", "--process-code",
            "-E", "--process-end", "-F", "--process-file", "-d", "--define",
            "-c", "--php-ini", "-z", "--zend-extension", "-S", "--server",
        ),
        "lua": ("-e", "-l"),
        "sh": ("-c", "--command", "-C", "--init-command", "--rcfile", "--init-file"),
        "psql": ("-c", "--command", "-f", "--file", "-o", "--output", "-L", "--log-file"),
        "mysql": (
            "-e", "--execute", "--init-command", "--pager", "--tee",
            "--plugin-dir", "--default-auth",
        ),
        "sqlite3": ("-cmd", "--cmd", "-init", "--init", "-A", "-archive", "--archive"),
    }
)  # fmt: skip
"""Built-in refused options per program family; see the module docstring for the syntax."""

REFUSED_PROGRAMS: frozenset[str] = frozenset(
    {
        "at", "batch", "bwrap", "busybox", "capsh", "catchsegv", "cgexec", "chroot", "chrt",
        "command", "crontab", "dbus-launch", "dbus-run-session", "doas", "eatmydata", "env",
        "expect", "fakechroot", "fakeroot", "firejail", "flock", "gdb", "ionice", "logsave",
        "ltrace", "nice", "nohup", "nsenter", "numactl", "parallel", "pkexec", "prlimit",
        "proot", "proxychains", "proxychains4", "rlwrap", "run-parts", "runuser", "screen",
        "script", "sem", "setpriv", "setsid", "sg", "socat", "ssh-agent", "sshpass",
        "start-stop-daemon", "stdbuf", "strace", "su", "sudo", "systemd-run", "taskset",
        "time", "timeout", "tmux", "torsocks", "toybox", "unbuffer", "unshare", "valgrind",
        "watch", "xargs",
    }
)  # fmt: skip
"""Programs that exist to run the program named in their arguments; refused even when listed."""

DENIED_ENVIRONMENT_VARIABLES: frozenset[str] = frozenset(
    {
        "PATH", "BASH_ENV", "ENV", "SHELLOPTS", "BASHOPTS", "PS4", "PROMPT_COMMAND", "IFS",
        "SHELL", "GLOBIGNORE",
        "PERL5OPT", "PERL5LIB", "PERLLIB", "PERL5DB", "PYTHONPATH", "PYTHONSTARTUP",
        "PYTHONHOME", "PYTHONINSPECT", "PYTHONBREAKPOINT", "PYTHONWARNINGS", "RUBYOPT",
        "RUBYLIB", "NODE_OPTIONS", "NODE_PATH", "LUA_INIT", "LUA_PATH", "LUA_CPATH", "PHPRC",
        "PHP_INI_SCAN_DIR", "JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS",
        "CLASSPATH", "AWKPATH", "AWKLIBPATH", "MAKEFLAGS", "MFLAGS", "GCONV_PATH",
        "OPENSSL_CONF", "OPENSSL_ENGINES",
        "GIT_SSH", "GIT_SSH_COMMAND", "GIT_PROXY_COMMAND", "GIT_EXTERNAL_DIFF", "GIT_PAGER",
        "GIT_EDITOR", "GIT_ASKPASS", "GIT_EXEC_PATH", "GIT_TEMPLATE_DIR", "GIT_CONFIG",
        "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_COUNT",
        "SSH_ASKPASS", "SUDO_ASKPASS", "PAGER", "MANPAGER", "SYSTEMD_PAGER", "EDITOR",
        "VISUAL", "BROWSER", "LESSOPEN", "LESSCLOSE", "LESSKEY", "LESSKEYIN", "TAR_OPTIONS",
        "WGETRC", "CURL_HOME", "RSYNC_RSH", "RSYNC_CONNECT_PROG", "PSQLRC", "SSLKEYLOGFILE",
    }
)  # fmt: skip
"""Variables :func:`run_command` refuses in ``env``: they make programs load code or run commands."""

DENIED_ENVIRONMENT_PREFIXES: tuple[str, ...] = (
    "LD_",
    "DYLD_",
    "GIT_CONFIG_",
    "GIT_TRACE",
    "BASH_FUNC_",
)
"""Name prefixes :func:`run_command` refuses in ``env`` (loader, git configuration and trace files)."""

# Other names of the families in DENIED_ARGUMENTS. Version suffixes (python3.11, perl5.36,
# gcc-12) are stripped before this lookup.
_FAMILIES: Mapping[str, str] = MappingProxyType(
    {
        "gfind": "find", "bfs": "find", "fdfind": "fd",
        "gtar": "tar", "bsdtar": "tar",
        "gsed": "sed",
        "gawk": "awk", "mawk": "awk", "nawk": "awk", "original-awk": "awk",
        "slogin": "ssh",
        "vi": "vim", "nvim": "vim", "view": "vim", "ex": "vim", "rvim": "vim",
        "rview": "vim", "gvim": "vim", "vimdiff": "vim", "evim": "vim", "vim.basic": "vim",
        "vim.tiny": "vim", "vim.nox": "vim", "vim.gtk3": "vim",
        "pypy": "python", "nodejs": "node", "luajit": "lua",
        "bash": "sh", "dash": "sh", "zsh": "sh", "ksh": "sh", "mksh": "sh", "ash": "sh",
        "yash": "sh", "csh": "sh", "tcsh": "sh", "fish": "sh", "pdksh": "sh", "oksh": "sh",
        "rbash": "sh", "posh": "sh", "loksh": "sh",
        "ncat": "nc", "netcat": "nc", "nc.traditional": "nc", "nc.openbsd": "nc",
        "mariadb": "mysql", "sqlite": "sqlite3",
    }
)  # fmt: skip

# Short options that take a value glued to them (``-Igzip``, ``-F:``), denied or not: the
# letters after one of these in a cluster are its value, not more options. Only letters whose
# value really consumes the rest of the cluster belong here; a letter missing here only makes
# matching stricter.
_SHORT_OPTIONS_WITH_VALUES: Mapping[str, str] = MappingProxyType(
    {
        "tar": "bCfFgHIKLNTVX",
        "sed": "efil",
        "awk": "FvefEilWZdDLop",
        "ssh": "bceilmopBDEFIJLOPQRSwW",
        "scp": "cilDFJPSXo",
        "sftp": "bcilosBDFJPRSX",
        "ssh-keygen": "CDEFGIJMNOPRSTVYZabfgjmnrstwz",
        "rsync": "efBTM@",
        "curl": "AbcCdDeEFHKmoPQrTtuUwxXyYz",
        "wget": "aABDeilIoOPQRtTUwX",
        "less": "bhjkoOpPtTxyz#",
        "man": "CELmMpPrRSs",
        "python": "cmWXQ",
        "perl": "eEIiMmdDx",
        "ruby": "CeEFIirx",
        "php": "BcdEFfrRStz",
        "lua": "el",
        "tcpdump": "BcCEFGijmMQrsTVWwyzZ",
        "fd": "cdeEjoStxX",
        "sort": "kotST",
        "psql": "cdfhLopPRTUvF",
        "mysql": "eDhPpSu",
        "nc": "ceGgIiMmoOPpqsTVWwXx",
        "make": "CEfIjlOoW",
    }
)

# Real long options that are prefixes of denied ones; getopt takes an exact match first.
_LONG_OPTION_EXCEPTIONS: Mapping[str, frozenset[str]] = MappingProxyType({"tar": frozenset({"--checkpoint"})})

_REFUSAL_REASONS: Mapping[str, str] = MappingProxyType(
    {
        "find": "runs other programs or writes or deletes files",
        "fd": "runs other programs",
        "tar": "makes tar run another program or script",
        "sed": "makes sed edit files in place or read a script jobs.shell cannot check",
        "awk": "makes awk load code jobs.shell cannot check or write files",
        "git": "makes git run another program",
        "ssh": "makes ssh run a local program, load a library, read a config file or log to a file",
        "scp": "makes scp run a local program or read a config file",
        "sftp": "makes sftp run a local program or read a batch or config file",
        "ssh-keygen": "makes ssh-keygen load a library",
        "rsync": "makes rsync run another program",
        "curl": "makes curl write files or read a config file",
        "wget": "makes wget write files, read a config file or run a program",
        "less": "makes less run commands or write files",
        "man": "makes man run another program or read a config file",
        "vim": "runs editor commands or scripts",
        "emacs": "runs Lisp code",
        "zip": "makes zip run another program",
        "tcpdump": "makes tcpdump run a program or write a capture file",
        "dd": "writes to a file or device",
        "sort": "makes sort write a file or run a compression program",
        "split": "makes split run a command",
        "rg": "makes rg run a preprocessor",
        "make": "evaluates makefile code",
        "nmap": "runs scripts or writes files",
        "nc": "runs a program or writes a file",
        "python": "runs code given on the command line",
        "perl": "runs code given on the command line or edits files in place",
        "ruby": "runs code given on the command line or edits files in place",
        "node": "runs code given on the command line or opens a debugger",
        "php": "runs code given on the command line or loads settings and extensions",
        "lua": "runs code given on the command line",
        "sh": "runs shell code given on the command line",
        "psql": "runs meta-commands (\\! runs a shell) or writes files",
        "mysql": "runs commands, writes files or loads plugins",
        "sqlite3": "runs dot-commands that can run programs or write files",
    }
)
_DEFAULT_REFUSAL_REASON = "can make the program run other programs or write files"

_SHELL_KEYWORDS = frozenset(
    {
        "!", "{", "}", "[[", "]]", "case", "coproc", "do", "done", "elif", "else", "esac",
        "fi", "for", "function", "if", "in", "select", "then", "time", "until", "while",
    }
)  # fmt: skip
_SHELL_BUILTINS = frozenset(
    {
        ".", ":", "alias", "bg", "bind", "break", "builtin", "cd", "command", "compgen",
        "complete", "continue", "declare", "disown", "enable", "eval", "exec", "exit",
        "export", "fc", "fg", "getopts", "hash", "history", "jobs", "let", "local",
        "logout", "mapfile", "popd", "pushd", "read", "readarray", "readonly", "return",
        "set", "shift", "shopt", "source", "suspend", "trap", "type", "typeset", "ulimit",
        "umask", "unalias", "unset", "wait",
    }
)  # fmt: skip

_PROGRAM_NAME = re.compile(r"[A-Za-z0-9._+-]+\Z")
_PROGRAM_PATH = re.compile(r"[A-Za-z0-9._+/-]+\Z")
_ASSIGNMENT_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_ENVIRONMENT_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_VERSION_SUFFIX = re.compile(r"[-_.]?[0-9]+(?:\.[0-9]+)*\Z")
_DYNAMIC_LOADER = re.compile(r"ld(?:-linux|-musl|\.so)")


def _refuse(message: str) -> NoReturn:
    raise ShellCommandNotAllowed(f"Command refused: {message}")


def _refuse_syntax(token: str, description: str, *, where: str = "", quotable: bool = True) -> NoReturn:
    hint = " (put it in single quotes to pass it as a literal argument)" if quotable else ""
    _refuse(
        f"{token!r}{where} ({description}) is shell syntax; jobs.shell runs one program without a shell{hint}"
    )


# -- characters --------------------------------------------------------------------------

_INVISIBLE_CATEGORIES = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character (zero-width or bidirectional control) "
    "that makes the command read differently from what runs",
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
    "Zs": "a space look-alike",
    "Co": "a private-use character",
    "Cs": "a surrogate code point",
    "Cn": "an unassigned code point",
}


def _describe_character(char: str) -> str:
    name = unicodedata.name(char, "")
    return f"U+{ord(char):04X}" + (f" ({name})" if name else "")


def _check_characters(command: str) -> None:
    """Refuse control, invisible and space look-alike characters anywhere in the command."""
    for index, char in enumerate(command):
        code = ord(char)
        if 32 <= code < 127:
            continue
        if char == "\t":
            continue  # tabs separate words; _split_words refuses one inside quotes
        if char == "\n":
            if index and command[index - 1] == "\\":
                _refuse_syntax("\\\n", "line continuation", quotable=False)
            _refuse_syntax("\n", "newline, a command separator", quotable=False)
        if char == "\r":
            _refuse_syntax("\r", "carriage return, a line break", quotable=False)
        if char == "\x00":
            _refuse("a NUL character cannot be part of a program's arguments")
        category = unicodedata.category(char)
        if category in _INVISIBLE_CATEGORIES:
            _refuse(
                f"character {_describe_character(char)} is {_INVISIBLE_CATEGORIES[category]}; "
                "such characters are refused anywhere in a command"
            )


# -- tokenising --------------------------------------------------------------------------

_OPERATORS: tuple[tuple[str, str], ...] = (
    ("&&", "conditional chaining"), ("&>>", "redirection"), ("&>", "redirection"),
    ("&", "background execution"),
    ("||", "conditional chaining"), ("|&", "pipe"), ("|", "pipe"),
    (";;", "command chaining"), (";", "command chaining"),
    ("<<<", "here-string"), ("<<-", "here-document"), ("<<", "here-document"),
    ("<(", "process substitution"), ("<&", "redirection"), ("<>", "redirection"),
    ("<", "redirection"),
    (">(", "process substitution"), (">>", "redirection"), (">&", "redirection"),
    (">|", "redirection"), (">", "redirection"),
    ("(", "subshell or grouping"), (")", "subshell or grouping"),
    ("`", "command substitution"),
    ("$((", "arithmetic expansion"), ("$(", "command substitution"),
    ("${", "parameter expansion"), ("$'", "ANSI-C quoting"), ('$"', "locale translation"),
    ("*", "filename globbing"), ("?", "filename globbing"), ("[", "filename globbing"),
    ("{", "brace expansion or grouping"), ("}", "brace expansion or grouping"),
)  # fmt: skip
_UNQUOTED_SPECIAL = frozenset(";&|<>()`$*?[{}")
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _refuse_unquoted(command: str, index: int, current: list[str], quoted: bool) -> NoReturn:
    """Refuse the shell syntax starting at ``command[index]``, naming the whole operator."""
    char = command[index]
    if char == "$":
        name = _VARIABLE_NAME.match(command, index + 1)
        if name:
            _refuse_syntax("$" + name.group(), "variable expansion")
        following = command[index + 1 : index + 2]
        if following and following in "0123456789@*#?$!-":
            _refuse_syntax("$" + following, "special parameter expansion")
    for token, description in _OPERATORS:
        if command.startswith(token, index):
            if char in "<>" and current and not quoted and "".join(current).isdigit():
                token = "".join(current) + token  # 2>, 1>&2: a redirection of a numbered fd
            _refuse_syntax(token, description)
    _refuse_syntax(char, "parameter expansion")


def _read_double_quoted(command: str, index: int, current: list[str]) -> int:
    """Append the double-quoted text starting at ``index`` to ``current``; return the end."""
    length = len(command)
    while index < length:
        char = command[index]
        if char == '"':
            return index + 1
        if char == "\\" and index + 1 < length and command[index + 1] in '$`"\\':
            current.append(command[index + 1])
            index += 2
            continue
        if char == "$":
            syntax = command[index : index + 2]
            if syntax not in ("$(", "${"):
                syntax = "$"
            description = "command substitution" if syntax == "$(" else "parameter expansion"
            _refuse_syntax(syntax, description, where=" inside double quotes")
        if char == "`":
            _refuse_syntax("`", "command substitution", where=" inside double quotes")
        if char == "\t":
            _refuse("a tab inside quotes is a control character; use a space")
        current.append(char)
        index += 1
    _refuse("the command has an unterminated double quote")


def _split_words(command: str) -> list[str]:
    """Split ``command`` into words like a POSIX shell, refusing anything a shell would expand.

    One pass over the string, so its cost is linear in the length whatever the input.
    """
    words: list[str] = []
    current: list[str] = []
    in_word = False
    quoted = False  # the current word has a quoted or escaped part
    previous_unquoted = ""  # the last character added outside quotes, for "~ after ="
    index, length = 0, len(command)
    while index < length:
        char = command[index]
        if char in " \t":
            if in_word:
                words.append("".join(current))
                current, in_word, quoted = [], False, False
            previous_unquoted = ""
            index += 1
            continue
        if char == "'":
            end = command.find("'", index + 1)
            if end < 0:
                _refuse("the command has an unterminated single quote")
            text = command[index + 1 : end]
            if "\t" in text:
                _refuse("a tab inside quotes is a control character; use a space")
            current.append(text)
            in_word, quoted, previous_unquoted = True, True, ""
            index = end + 1
            continue
        if char == '"':
            index = _read_double_quoted(command, index + 1, current)
            in_word, quoted, previous_unquoted = True, True, ""
            continue
        if char == "\\":
            if index + 1 >= length:
                _refuse("the command ends with a backslash that escapes nothing")
            escaped = command[index + 1]
            if escaped == "\t":
                _refuse("an escaped tab is a control character; use a space")
            current.append(escaped)
            in_word, quoted, previous_unquoted = True, True, ""
            index += 2
            continue
        if char == "{" and not in_word and command.startswith("{}", index):
            after = command[index + 2 : index + 3]
            if after in ("", " ", "\t"):
                current.append("{}")  # the literal word {}, as every shell passes it
                in_word, previous_unquoted = True, "}"
                index += 2
                continue
        if char in _UNQUOTED_SPECIAL:
            _refuse_unquoted(command, index, current, quoted)
        if char == "~" and (
            not in_word
            or previous_unquoted == "="
            or (previous_unquoted == ":" and _ASSIGNMENT_PREFIX.match("".join(current)))
        ):
            _refuse_syntax("~", "home-directory expansion")
        if char == "#" and not in_word:
            _refuse_syntax("#", "a comment, which hides the rest of the line")
        if ord(char) > 127:
            _refuse(
                f"character {_describe_character(char)} outside quotes is not ASCII; "
                "look-alikes of shell syntax are refused (quote non-ASCII text to pass it)"
            )
        current.append(char)
        in_word, previous_unquoted = True, char
        index += 1
    if in_word:
        words.append("".join(current))
    return words


# -- programs ----------------------------------------------------------------------------


def _checked_search_path(search_path: str) -> str:
    if not isinstance(search_path, str):
        raise TypeError(f"search_path must be a str, got {type(search_path).__name__}")
    for entry in search_path.split(os.pathsep):
        if not entry or not os.path.isabs(entry):
            raise ImproperlyConfigured(
                f"Setting {_PATH_SETTING} = {search_path!r} is invalid: expected a "
                f"{os.pathsep!r}-separated list of absolute directories, and {entry!r} is not "
                "one (an empty or relative entry would search the working directory)."
            )
    return search_path


def _describe_allowed(allowed: Iterable[str]) -> str:
    names = sorted(allowed)
    shown = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    return f"{_ALLOWED_SETTING}: {shown}"


def _resolve_program(word: str, allowed: frozenset[str], search_path: str) -> str:
    """Return the path to execute for the first word, or refuse it."""
    if "/" in word:
        if allowed and word not in allowed:
            _refuse(
                f"{word!r} is a path; a path-qualified program runs only when that exact path "
                f"is listed ({_describe_allowed(allowed)})"
            )
        if not os.path.isabs(word):
            if not allowed:
                _refuse(
                    f"{word!r} is a relative path, which depends on the working directory; "
                    f"list it exactly in {_ALLOWED_SETTING} to allow it"
                )
            return word
        if not (os.path.isfile(word) and os.access(word, os.X_OK)):
            _refuse(f"{word!r} is not an executable file")
        return word
    if allowed and word not in allowed:
        _refuse(f"{word!r} is not an allowed command ({_describe_allowed(allowed)})")
    found = shutil.which(word, path=search_path)
    if found is None:
        _refuse(
            f"{word!r} was not found on the command search path {search_path!r} "
            f"({_PATH_SETTING}); jobs.shell never searches the worker's own PATH"
        )
    return found


def _names_of(paths: Iterable[str]) -> set[str]:
    """The names rules are looked up under: base name, without version suffix, family."""
    names: set[str] = set()
    for path in paths:
        base = os.path.basename(path)
        for name in (base, _VERSION_SUFFIX.sub("", base)):
            if name:
                names.add(name)
                family = _FAMILIES.get(name)
                if family:
                    names.add(family)
    return names


def _check_program(word: str, resolved: str, program: str) -> None:
    for name in _names_of((word, resolved)):
        if name in REFUSED_PROGRAMS or _DYNAMIC_LOADER.match(name):
            _refuse(
                f"{program!r} runs the program named in its arguments, which would bypass the "
                "allowed commands; jobs.shell refuses it even when it is listed"
            )


# -- arguments ---------------------------------------------------------------------------


def _argument_matches(entry: str, argument: str, value_letters: str, exceptions: frozenset[str]) -> bool:
    """Whether ``argument`` uses the denied option ``entry`` (see the module docstring)."""
    if entry.startswith("--"):
        if not argument.startswith("--") or argument == "--":
            return False
        name = argument.split("=", 1)[0]
        if name == entry:
            return True
        return len(name) > 2 and entry.startswith(name) and name not in exceptions
    if entry.startswith("-") and len(entry) == 2:
        if len(argument) < 2 or argument[0] != "-" or argument[1] == "-":
            return False
        for letter in argument[1:]:
            if letter == entry[1]:
                return True
            if letter in value_letters:
                return False
        return False
    if entry.startswith("-"):
        return argument == entry or argument.startswith(entry + "=")
    if entry.startswith("+") or entry.endswith("="):
        return argument.startswith(entry)
    return argument == entry


def _check_denied_arguments(
    program: str,
    names: set[str],
    arguments: Sequence[str],
    configured: Mapping[str, Sequence[str]],
) -> None:
    value_letters = "".join(_SHORT_OPTIONS_WITH_VALUES.get(name, "") for name in names)
    exceptions = frozenset().union(*(_LONG_OPTION_EXCEPTIONS.get(name, ()) for name in names))
    candidates: list[tuple[str, str, str | None]] = []  # (name, entry, configured name)
    for name in sorted(names):
        candidates += [(name, entry, None) for entry in DENIED_ARGUMENTS.get(name, ())]
        candidates += [(name, entry, name) for entry in configured.get(name, ())]
    for argument in arguments:
        matches = [
            candidate
            for candidate in candidates
            if _argument_matches(candidate[1], argument, value_letters, exceptions)
        ]
        if not matches:
            continue
        # Name the entry the argument spells out (--exec) over one it abbreviates (--exec-path).
        exact = [match for match in matches if argument.split("=", 1)[0] == match[1]]
        name, entry, configured_name = (exact or matches)[0]
        if configured_name is not None:
            why = f"which {_DENIED_SETTING} denies for {configured_name!r}"
        else:
            why = f"which {_REFUSAL_REASONS.get(name, _DEFAULT_REFUSAL_REASON)}"
        _refuse(f"argument {argument!r} of {program!r} matches {entry!r}, {why}")
    if "tar" in names and arguments and arguments[0] and not arguments[0].startswith("-"):
        # Old-style tar options: the first argument is a cluster of letters without a dash.
        letters = set(arguments[0])
        for entry in (*DENIED_ARGUMENTS["tar"], *configured.get("tar", ())):
            if len(entry) == 2 and entry[0] == "-" and entry[1] in letters:
                _refuse(
                    f"argument {arguments[0]!r} of {program!r} uses the old-style option "
                    f"{entry[1]!r} ({entry}), which {_REFUSAL_REASONS['tar']}"
                )


# sed ------------------------------------------------------------------------------------

_SED_SIMPLE_COMMANDS = frozenset("=dDgGhHnNpPxzF}{")
_SED_FLAGS = frozenset("gpiImM0123456789")


class _SedScriptRefused(Exception):
    """Internal: the sed parser found a dangerous or unparseable construct."""


def _sed_delimited(script: str, index: int, delimiter: str, *, regex: bool, gnu: bool) -> int:
    """Skip a ``/text/`` part ending with ``delimiter``; return the index after it.

    ``gnu`` follows GNU sed 4.9, where a bracket expression and ``\\cX`` in a regex may hold
    the delimiter; older seds do not. Both readings are checked.
    """
    length = len(script)
    while index < length:
        char = script[index]
        if char == delimiter:
            return index + 1
        if char == "\\":
            index += 2 if not (gnu and regex and script.startswith("c", index + 1)) else 3
            continue
        if gnu and regex and char == "[":
            index = _sed_bracket_end(script, index + 1)
            continue
        index += 1
    raise _SedScriptRefused("an unterminated regular expression or replacement")


def _sed_bracket_end(script: str, index: int) -> int:
    """Skip a bracket expression as GNU sed's snarf_char_class does; return the index after it."""
    length = len(script)
    if script.startswith("^", index):
        index += 1
    if script.startswith("]", index):
        index += 1
    state, delimiter = 0, ""
    while index < length:
        char = script[index]
        index += 1
        if char in ".:=":
            if state == 1:
                state, delimiter = 2, char
                continue
            if state == 2 and char == delimiter:
                state = 3
                continue
        elif char == "[":
            if state == 0:
                state = 1
            continue
        elif char == "]":
            if state in (0, 1):
                return index
            if state == 3:
                state = 0
        state &= ~1
    raise _SedScriptRefused("an unterminated bracket expression")


def _sed_skip_blanks(script: str, index: int) -> int:
    while index < len(script) and script[index] in " \t":
        index += 1
    return index


def _sed_address(script: str, index: int, gnu: bool) -> int:
    """Skip one address (``12``, ``$``, ``/re/I``, ``\\cREc``, ``first~step``, ``+N``)."""
    if index >= len(script):
        return index
    char = script[index]
    if char in "/\\":
        if char == "\\":
            index += 1
            if index >= len(script):
                raise _SedScriptRefused("an address delimiter is missing")
        index = _sed_delimited(script, index + 1, script[index], regex=True, gnu=gnu)
        while True:
            index = _sed_skip_blanks(script, index)
            if script.startswith(("I", "M"), index):
                index += 1
                continue
            return index
    if char.isdigit() or char in "+~":
        index += 1
        while index < len(script) and (script[index].isdigit() or script[index] in " \t~"):
            index += 1
        return index
    if char == "$":
        return index + 1
    return index


def _sed_script_problem(script: str, gnu: bool) -> str | None:
    """Return why a sed script is refused, or None when it only edits the stream."""
    index, length = 0, len(script)
    while True:
        while index < length and script[index] in " \t;":
            index += 1
        if index >= length:
            return None
        index = _sed_address(script, index, gnu)
        index = _sed_skip_blanks(script, index)
        if script.startswith(",", index):
            index = _sed_address(script, _sed_skip_blanks(script, index + 1), gnu)
            index = _sed_skip_blanks(script, index)
        if script.startswith("!", index):
            index = _sed_skip_blanks(script, index + 1)
        if index >= length:
            raise _SedScriptRefused("an address without a command")
        command = script[index]
        index += 1
        if command == "#" or command in "aic" or command in "rR":
            return None  # comment, text or file name up to the end of this script
        if command == "e":
            return "the 'e' command runs the pattern space or its argument as a shell command"
        if command in "wW":
            return f"the {command!r} command writes a file"
        if command in _SED_SIMPLE_COMMANDS:
            continue
        if command in "lLqQ":
            index = _sed_skip_blanks(script, index)
            while index < length and script[index].isdigit():
                index += 1
            continue
        if command in ":btTv":
            index = _sed_skip_blanks(script, index)
            while index < length and script[index] not in " \t;}#":
                index += 1
            continue
        if command == "y":
            if index >= length or script[index] in "\\\n":
                raise _SedScriptRefused("the 'y' command has no valid delimiter")
            delimiter = script[index]
            index = _sed_delimited(script, index + 1, delimiter, regex=False, gnu=gnu)
            index = _sed_delimited(script, index, delimiter, regex=False, gnu=gnu)
            continue
        if command == "s":
            if index >= length or script[index] in "\\\n":
                raise _SedScriptRefused("the 's' command has no valid delimiter")
            delimiter = script[index]
            index = _sed_delimited(script, index + 1, delimiter, regex=True, gnu=gnu)
            index = _sed_delimited(script, index, delimiter, regex=False, gnu=gnu)
            while index < length:
                flag = script[index]
                if flag == "e":
                    return "the 'e' flag of 's' runs the result as a shell command"
                if flag == "w":
                    return "the 'w' flag of 's' writes a file"
                if flag in ";}#":
                    break
                if flag not in _SED_FLAGS and flag not in " \t":
                    raise _SedScriptRefused(f"an unknown flag {flag!r} of the 's' command")
                index += 1
            continue
        raise _SedScriptRefused(f"an unknown command {command!r}")


def _sed_scripts(arguments: Sequence[str]) -> list[str]:
    """The arguments GNU or POSIX sed would read as script text.

    Values of ``-e``/``--expression`` anywhere, plus the first operand unless an ``-e`` came
    before it: GNU sed permutes options, POSIX sed stops at the first operand, so both are
    checked.
    """
    scripts: list[str] = []
    first_operand: str | None = None
    expression_seen_before_operand = False
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        index += 1
        if argument == "--":
            if first_operand is None and index < len(arguments):
                first_operand = arguments[index]
            break
        if argument.startswith("--"):
            name, has_value, value = argument.partition("=")
            if len(name) > 2 and "--expression".startswith(name):
                if not has_value:
                    value = arguments[index] if index < len(arguments) else ""
                    index += 1
                scripts.append(value)
                expression_seen_before_operand |= first_operand is None
            elif len(name) > 2 and "--line-length".startswith(name) and not has_value:
                index += 1
            continue
        if argument.startswith("-") and len(argument) > 1:
            for position, letter in enumerate(argument[1:], start=2):
                if letter in "efl":
                    value = argument[position:]
                    if not value:
                        value = arguments[index] if index < len(arguments) else ""
                        index += 1
                    if letter == "e":
                        scripts.append(value)
                        expression_seen_before_operand |= first_operand is None
                    break
            continue
        if first_operand is None:
            first_operand = argument
    if first_operand is not None and not expression_seen_before_operand:
        scripts.append(first_operand)
    return scripts


def _check_sed(program: str, arguments: Sequence[str]) -> None:
    for script in _sed_scripts(arguments):
        for gnu in (True, False):
            try:
                problem = _sed_script_problem(script, gnu)
            except _SedScriptRefused as error:
                _refuse(
                    f"the {program} script {script!r} has {error}; jobs.shell only runs sed "
                    "scripts it can check for commands that run programs or write files"
                )
            if problem:
                _refuse(f"the {program} script {script!r} is refused: {problem}")


# awk ------------------------------------------------------------------------------------

_AWK_SYSTEM = re.compile(r"\bsystem\b")
_AWK_AT_NAME = re.compile(r"@\s*[A-Za-z_]")
_AWK_PRINT = re.compile(r"\bprintf?\b")
_AWK_PIPES = re.compile(r"\|+")


def _awk_programs(arguments: Sequence[str]) -> list[str]:
    """The arguments awk reads as program text: ``-e``/``--source`` values or the first operand.

    awk stops parsing options at the first operand, which is the program unless ``-e`` gave
    one (``-f`` and ``-E`` are refused anyway).
    """
    programs: list[str] = []
    program_given = False
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        index += 1
        if argument == "--":
            break
        if argument.startswith("--"):
            name, has_value, value = argument.partition("=")
            takes_value = any(
                len(name) > 2 and option.startswith(name)
                for option in ("--source", "--field-separator", "--assign", "--file",
                               "--exec", "--include", "--load")
            )  # fmt: skip
            if takes_value and not has_value:
                value = arguments[index] if index < len(arguments) else ""
                index += 1
            if len(name) > 3 and "--source".startswith(name):
                programs.append(value)
                program_given = True
            continue
        if argument.startswith("-") and len(argument) > 1:
            for position, letter in enumerate(argument[1:], start=2):
                if letter in "FvfeEilWZ":
                    value = argument[position:]
                    if not value:
                        value = arguments[index] if index < len(arguments) else ""
                        index += 1
                    if letter == "e":
                        programs.append(value)
                        program_given = True
                    break
                if letter in "dDLop":
                    break  # optional value glued to the letter
            continue
        index -= 1
        break
    if not program_given and index < len(arguments):
        programs.append(arguments[index])
    return programs


def _awk_program_problem(program_text: str) -> str | None:
    if _AWK_SYSTEM.search(program_text):
        return "system() runs a shell command"
    for pipe in _AWK_PIPES.finditer(program_text):
        if len(pipe.group()) != 2:
            return "'|' pipes to or from a command (use grep -E for alternatives)"
    if _AWK_AT_NAME.search(program_text):
        return "'@' loads extensions, includes files or calls a function by name"
    first_print = _AWK_PRINT.search(program_text)
    if first_print and ">" in program_text[first_print.end() :]:
        return "'>' after print or printf redirects output to a file"
    return None


def _check_awk(program: str, arguments: Sequence[str]) -> None:
    for program_text in _awk_programs(arguments):
        problem = _awk_program_problem(program_text)
        if problem:
            _refuse(f"the {program} program {program_text!r} is refused: {problem}")


# git ------------------------------------------------------------------------------------

_GIT_OPTIONS_WITH_VALUES = frozenset(
    {"-C", "-c", "--git-dir", "--work-tree", "--namespace", "--super-prefix", "--config-env",
     "--attr-source"}
)  # fmt: skip
_GIT_REFUSED_SUBCOMMANDS: Mapping[str, str] = MappingProxyType(
    {
        "config": "writes settings (core.sshCommand, core.pager, core.fsmonitor, aliases) "
        "that make later git commands run programs",
        "filter-branch": "runs the shell snippets given as its arguments",
        "shell": "runs the commands given with -c",
        "remote-ext": "runs the command given as its argument",
        "remote-fd": "is a transport helper, not a command to run directly",
        "hook": "runs repository hooks",
        "send-email": "runs programs given by --sendmail-cmd, --to-cmd and --cc-cmd",
        "daemon": "starts a long-running server",
        "instaweb": "starts a web server and a browser",
        "web--browse": "starts a browser",
    }
)
_GIT_REFUSED_ACTIONS: Mapping[str, str] = MappingProxyType({"bisect": "run", "submodule": "foreach"})
_GIT_SUBCOMMAND_OPTIONS: Mapping[str, tuple[tuple[str, ...], str]] = MappingProxyType(
    {
        "clone": (("-u", "-c", "--config", "--template"), "bjo"),
        "init": (("--template",), ""),
        "ls-remote": (("-u",), ""),
        "rebase": (("-x",), "CsX"),
        "difftool": (("-x",), "t"),
        "grep": (("-O",), "efABCm"),
    }
)


def _check_git(program: str, arguments: Sequence[str]) -> None:
    for argument in arguments:
        if "ext::" in argument or argument.startswith("fd::"):
            _refuse(
                f"argument {argument!r} of {program!r} names a remote helper URL that runs a "
                "command (ext::, fd::)"
            )
    index = 0
    while index < len(arguments):
        argument = arguments[index]
        if not argument.startswith("-") or argument == "--":
            break
        if argument.startswith(("-c", "--config-env")):
            _refuse(
                f"argument {argument!r} of {program!r} sets git configuration (such as "
                "core.sshCommand, core.pager or core.fsmonitor) that runs programs"
            )
        index += 2 if argument in _GIT_OPTIONS_WITH_VALUES else 1
    if index >= len(arguments) or arguments[index] == "--":
        return
    subcommand = arguments[index]
    rest = arguments[index + 1 :]
    if subcommand in _GIT_REFUSED_SUBCOMMANDS:
        _refuse(f"'git {subcommand}' {_GIT_REFUSED_SUBCOMMANDS[subcommand]}")
    action = _GIT_REFUSED_ACTIONS.get(subcommand)
    if action and action in rest:
        _refuse(f"'git {subcommand} {action}' runs the command given in its arguments")
    entries, value_letters = _GIT_SUBCOMMAND_OPTIONS.get(subcommand, ((), ""))
    for entry in entries:
        for argument in rest:
            if _argument_matches(entry, argument, value_letters, frozenset()):
                _refuse(
                    f"argument {argument!r} of 'git {subcommand}' matches {entry!r}, which "
                    "makes git run another program or install hooks"
                )


# ssh ------------------------------------------------------------------------------------

_SSH_REFUSED_SETTINGS = frozenset(
    {
        "proxycommand", "localcommand", "permitlocalcommand", "knownhostscommand",
        "pkcs11provider", "securitykeyprovider", "xauthlocation", "userknownhostsfile",
        "include", "match",
    }
)  # fmt: skip
_SSH_KEYWORD = re.compile(r"\s*([A-Za-z0-9]*)")


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
                if not value and index < len(arguments):
                    value = arguments[index]
                    index += 1
                yield value
                break
            if letter in value_letters:
                break


def _check_ssh(program: str, arguments: Sequence[str]) -> None:
    family = next((name for name in ("sftp", "scp", "ssh") if name in _names_of((program,))), "ssh")
    for value in _ssh_option_values(arguments, _SHORT_OPTIONS_WITH_VALUES[family]):
        keyword = _SSH_KEYWORD.match(value)
        if keyword and keyword.group(1).lower() in _SSH_REFUSED_SETTINGS:
            _refuse(
                f"option -o {value!r} of {program!r} sets {keyword.group(1)}, which runs a "
                "local program, loads a library, reads other configuration or writes a file"
            )


# sqlite3 --------------------------------------------------------------------------------

_SQLITE_DANGEROUS = re.compile(
    r"(?:^|;)\s*\.(?:shell|system|output|once|excel|load|log|save|backup|clone|import|read"
    r"|cd|open|archive|ar|trace|iotrace)\b"
    r"|\b(?:writefile|edit|load_extension)\s*\("
    r"|\battach\b|\bvacuum\s+into\b",
    re.IGNORECASE,
)


def _check_sqlite(program: str, arguments: Sequence[str]) -> None:
    for argument in arguments:
        found = _SQLITE_DANGEROUS.search(argument)
        if found:
            _refuse(
                f"argument {argument!r} of {program!r} uses {found.group().strip(' ;')!r}, "
                "which runs a program, loads an extension, or reads or writes other files"
            )


def _check_zip(program: str, arguments: Sequence[str]) -> None:
    # zip's own option parser also takes -TT's value glued (-TTcmd) or inside a cluster.
    for argument in arguments:
        if argument.startswith("-") and not argument.startswith("--") and "TT" in argument:
            _refuse(f"argument {argument!r} of {program!r} uses -TT, which {_REFUSAL_REASONS['zip']}")


_ARGUMENT_CHECKERS: Mapping[str, Callable[[str, Sequence[str]], None]] = MappingProxyType(
    {
        "zip": _check_zip,
        "sed": _check_sed,
        "awk": _check_awk,
        "git": _check_git,
        "ssh": _check_ssh,
        "scp": _check_ssh,
        "sftp": _check_ssh,
        "sqlite3": _check_sqlite,
    }
)


# -- public API --------------------------------------------------------------------------


def validate_command(
    command: str,
    allowed: Sequence[str] | None = None,
    *,
    denied_arguments: Mapping[str, Sequence[str]] | None = None,
    search_path: str | None = None,
) -> list[str]:
    """Parse a command string like a POSIX shell and return the argv to run, or refuse it.

    Nothing is executed. Shell syntax is refused rather than passed on as text, because the
    caller asked for a shell command and would otherwise get a different one; the rules are
    listed in this module's docstring.

    Arguments:
        command: The command line, e.g. ``"grep -E 'ERROR|WARN' app.log"``.
        allowed: Program names (or exact paths) that may run; empty allows any program.
            ``None`` reads ``jobs_allowed_shell_commands``.
        denied_arguments: Extra refused options per program name, added to
            :data:`DENIED_ARGUMENTS`. ``None`` reads ``jobs_shell_denied_arguments``.
        search_path: The ``PATH`` bare names are resolved through. ``None`` reads
            ``jobs_shell_path``.

    Returns:
        The argv: ``argv[0]`` is the absolute path the program was found at (or the listed
        path as written), the rest are the arguments with quotes and escapes removed.

    Raises:
        ShellCommandNotAllowed: The command is refused; the message says which part and why.
        TypeError: ``command`` is not a str, or ``allowed`` is a str instead of a sequence.
        ImproperlyConfigured: ``search_path`` has an empty or relative entry.
    """
    if not isinstance(command, str):
        raise TypeError(f"validate_command() expects the command as a str, got {type(command).__name__}")
    if isinstance(allowed, str):
        raise TypeError("allowed must be a sequence of program names, not a single str")
    if len(command) > MAX_COMMAND_LENGTH:
        _refuse(
            f"the command is {len(command)} characters long; the maximum is "
            f"{MAX_COMMAND_LENGTH} (MAX_COMMAND_LENGTH)"
        )
    if allowed is None or denied_arguments is None or search_path is None:
        settings = _settings()
        allowed = settings.allowed_shell_commands if allowed is None else allowed
        if denied_arguments is None:
            denied_arguments = settings.shell_denied_arguments
        search_path = settings.shell_path if search_path is None else search_path
    allowed_names = frozenset(allowed)
    if not all(isinstance(name, str) for name in allowed_names):
        raise TypeError("allowed must contain only str program names")
    for name, entries in denied_arguments.items():
        if isinstance(entries, str):
            raise TypeError(f"denied_arguments[{name!r}] must be a sequence of options, not a single str")
    search_path = _checked_search_path(search_path)

    _check_characters(command)
    words = _split_words(command)
    if not words:
        _refuse("the command is empty")
    word = words[0]
    if not word:
        _refuse("the program name is empty")
    if word in _SHELL_KEYWORDS:
        _refuse(f"{word!r} is a shell keyword; jobs.shell runs one program without a shell")
    if word in _SHELL_BUILTINS:
        _refuse(f"{word!r} is a shell builtin, not a program; jobs.shell runs no shell")
    if _ASSIGNMENT_PREFIX.match(word):
        _refuse(
            f"{word!r} is a variable assignment prefix (VAR=value), which is shell syntax; "
            "pass environment variables through the task's env argument"
        )
    if not (_PROGRAM_PATH if "/" in word else _PROGRAM_NAME).match(word) or word[0] == "-":
        _refuse(
            f"the program name {word!r} may contain only ASCII letters, digits, '.', '_', "
            "'+', '-' (and '/' in a path), and may not start with '-'"
        )
    program = os.path.basename(word)
    resolved = _resolve_program(word, allowed_names, search_path)
    _check_program(word, resolved, program)

    arguments = words[1:]
    paths = [word, resolved]
    if os.path.isabs(resolved):
        paths.append(os.path.realpath(resolved))
    names = _names_of(paths)
    _check_denied_arguments(program, names, arguments, denied_arguments)
    checkers = {_ARGUMENT_CHECKERS[name] for name in names if name in _ARGUMENT_CHECKERS}
    for checker in sorted(checkers, key=lambda function: function.__name__):
        checker(program, arguments)
    return [resolved, *arguments]


def _child_environment(env: Mapping[str, str], search_path: str) -> dict[str, str]:
    """Build the minimal environment: ``PATH`` plus the given variables, all checked."""
    child = {"PATH": _checked_search_path(search_path)}
    for name, value in env.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"env must map str to str; got {name!r}: {type(value).__name__}")
        if not _ENVIRONMENT_NAME.match(name):
            _refuse(f"environment variable name {name!r} must match [A-Za-z_][A-Za-z0-9_]*")
        if "\x00" in value:
            _refuse(f"environment variable {name} contains a NUL character")
        if name == "PATH":
            _refuse(f"environment variable PATH cannot be set per job; the child's PATH is {_PATH_SETTING}")
        if name in DENIED_ENVIRONMENT_VARIABLES or name.startswith(DENIED_ENVIRONMENT_PREFIXES):
            _refuse(
                f"environment variable {name} makes programs load code or run commands; "
                "jobs.shell does not pass it"
            )
        child[name] = value
    return child


class _CapturedStream:
    """Keeps the first ``limit`` bytes of a stream (and optionally its last bytes), counts the rest."""

    def __init__(self, limit: int, keep_tail: bool) -> None:
        self.head = bytearray()
        self.tail = b""
        self.dropped = 0
        self.limit = limit
        self.keep_tail = keep_tail

    def feed(self, chunk: bytes) -> None:
        room = self.limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
        self.dropped += max(0, len(chunk) - max(room, 0))
        if self.keep_tail:
            self.tail = (self.tail + chunk)[-STDERR_TAIL_BYTES:]

    def text(self) -> str:
        text = self.head.decode("utf-8", errors="replace")
        if self.dropped:
            text += f"\n[... truncated {self.dropped} bytes]"
        return text

    def tail_text(self) -> str:
        return self.tail.decode("utf-8", errors="replace")


class _TimedOut(Exception):
    """Internal: the deadline passed while the program was still running."""


def _kill_process_group(process: subprocess.Popen[bytes]) -> None:
    """SIGKILL the program's whole session (it leads its own group) and reap it."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    if process.returncode is None:
        process.kill()
    process.wait()


def _collect_output(
    process: subprocess.Popen[bytes],
    deadline: float | None,
    stdout: _CapturedStream,
    stderr: _CapturedStream,
) -> None:
    """Read both pipes into ``stdout`` and ``stderr`` until they close or the deadline passes."""
    if process.stdout is None or process.stderr is None:
        raise RuntimeError("the program was started without pipes")
    exited_at: float | None = None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ, stdout)
        selector.register(process.stderr, selectors.EVENT_READ, stderr)
        while selector.get_map():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                raise _TimedOut
            if exited_at is None and process.poll() is not None:
                exited_at = now
            if exited_at is not None and now - exited_at >= _EXIT_DRAIN_SECONDS:
                _kill_process_group(process)  # background children still hold the pipes
                return
            wait = _POLL_INTERVAL_SECONDS
            if deadline is not None:
                wait = min(wait, deadline - now)
            for key, _ in selector.select(wait):
                chunk = os.read(key.fd, _READ_SIZE)
                if chunk:
                    key.data.feed(chunk)
                else:
                    selector.unregister(key.fileobj)


def run_command(
    argv: Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    max_output: int = 65536,
    search_path: str | None = None,
    mask: Callable[[str], str] | None = None,
) -> dict[str, object]:
    """Run one program from an argv without a shell and return its exit code and output.

    The argv is not validated here; pass it through :func:`validate_command` first. The
    program gets stdin from ``/dev/null`` and its own session, so a timeout can kill it with
    everything it started; background processes still holding its output one second after it
    exits are killed the same way. Output is read as it comes and capped, so a program
    printing gigabytes costs the worker ``max_output`` bytes per stream, not gigabytes.

    Arguments:
        argv: The program (best an absolute path) and its arguments.
        cwd: Working directory of the program.
        env: If given, the program's whole environment besides ``PATH`` (set to the search
            path); variables that load code or run commands are refused. If ``None``, the
            program inherits the worker's environment.
        timeout: Seconds before the program and its process group are killed; ``None`` waits.
        max_output: Bytes of stdout and of stderr kept each; the rest is drained and replaced
            by a ``[... truncated N bytes]`` marker.
        search_path: ``PATH`` given to the program with ``env``; ``None`` reads
            ``jobs_shell_path`` (only when ``env`` is given).
        mask: Applied to the argv and stderr tail a :class:`ShellCommandFailed` carries, as
            that error travels to the result backend; e.g. the secret masker.

    Returns:
        ``{"returncode": 0, "stdout": str, "stderr": str}``, decoded as UTF-8 with invalid
        bytes replaced.

    Raises:
        ShellCommandFailed: The program exited non-zero, was killed by a signal, or could not
            start (code 127 when not found, 126 otherwise), with the last
            :data:`STDERR_TAIL_BYTES` of stderr.
        ShellCommandTimedOut: The timeout passed (a ShellCommandFailed).
        ShellCommandNotAllowed: ``env`` names a refused variable or holds a NUL.
        TypeError: ``argv`` is a str or holds non-str items.
        ValueError: ``argv`` is empty, ``timeout`` is not positive or ``max_output`` negative.
    """
    if isinstance(argv, (str, bytes)):
        raise TypeError("run_command() takes an argv list; use validate_command() on a string")
    arguments = list(argv)
    if not arguments:
        raise ValueError("run_command() needs a non-empty argv")
    if not all(isinstance(argument, str) for argument in arguments):
        raise TypeError("every argv item must be a str")
    if any("\x00" in argument for argument in arguments):
        _refuse("an argument contains a NUL character")
    if timeout is not None and not timeout > 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    if isinstance(max_output, bool) or not isinstance(max_output, int) or max_output < 0:
        raise ValueError(f"max_output must be a non-negative int, got {max_output!r}")
    child_env = None
    if env is not None:
        path = _settings().shell_path if search_path is None else search_path
        child_env = _child_environment(env, path)

    def masked(text: str) -> str:
        return mask(text) if mask is not None else text

    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        process = subprocess.Popen(
            arguments,
            shell=False,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=child_env,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as error:
        code = 127 if isinstance(error, FileNotFoundError) else 126
        raise ShellCommandFailed(
            [masked(argument) for argument in arguments], code, masked(f"could not start: {error}")
        ) from error

    stdout = _CapturedStream(max_output, keep_tail=False)
    stderr = _CapturedStream(max_output, keep_tail=True)
    try:
        _collect_output(process, deadline, stdout, stderr)
        remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        try:
            returncode = process.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            raise _TimedOut from None
    except _TimedOut:
        _kill_process_group(process)
        raise ShellCommandTimedOut(
            [masked(argument) for argument in arguments],
            process.returncode if process.returncode is not None else -signal.SIGKILL,
            masked(stderr.tail_text()),
            float(timeout or 0.0),
        ) from None
    except BaseException:
        # Celery's soft time limit and worker shutdown arrive as exceptions here: never
        # leave the program running behind the task.
        _kill_process_group(process)
        raise
    finally:
        for pipe in (process.stdout, process.stderr):
            if pipe is not None:
                pipe.close()

    if returncode != 0:
        raise ShellCommandFailed(
            [masked(argument) for argument in arguments], returncode, masked(stderr.tail_text())
        )
    return {"returncode": returncode, "stdout": stdout.text(), "stderr": stderr.text()}


# -- the Celery task --------------------------------------------------------------------

#: The name ``install(app)`` registers the shell task under.
SHELL_TASK_NAME = "jobs.shell"


class ShellTask(GuardedTask):
    """Runs one whitelisted program without a shell; validates at publish and in the worker.

    The producer-side check in :meth:`apply_async` means ``jobs_shell.delay("rm -rf /")``
    raises before anything reaches the broker; the worker checks again because a message
    can come from anywhere (``send_task``, another producer, a hand-written message).
    """

    def apply_async(self, args: Any = None, kwargs: Any = None, *rest: Any, **options: Any) -> Any:
        config = ConfigCache.get(self.app)
        validate_command(
            _command_argument(args, kwargs),
            config.allowed_shell_commands,
            denied_arguments=config.shell_denied_arguments,
            search_path=config.shell_path,
        )
        return super().apply_async(args, kwargs, *rest, **options)


def _command_argument(args: Any, kwargs: Any) -> str:
    if args:
        command = args[0]
    elif kwargs and "command" in kwargs:
        command = kwargs["command"]
    else:
        raise ShellCommandNotAllowed("Command refused: jobs.shell needs the command as its first argument")
    if not isinstance(command, str):
        raise ShellCommandNotAllowed(
            f"Command refused: jobs.shell takes the command as one string, got {type(command).__name__}"
        )
    return command


def register_shell_task(app: Any) -> None:
    """Register ``jobs.shell`` on ``app``; ``install(app)`` calls this once per app.

    The task takes ``command`` (one string), optional ``cwd``, ``env`` (the child gets only
    these variables plus ``PATH``; default none) and ``timeout`` (seconds), and returns
    ``{"returncode", "stdout", "stderr"}``; a non-zero exit raises :class:`ShellCommandFailed`.
    Registered lazily, like any ``@app.task``, so installing never finalizes the app early.
    """

    def shell(
        self: Any,
        command: str,
        cwd: str | None = None,
        env: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> dict[str, object]:
        config = ConfigCache.get(self.app)
        argv = validate_command(
            command,
            config.allowed_shell_commands,
            denied_arguments=config.shell_denied_arguments,
            search_path=config.shell_path,
        )
        mask: Callable[[str], str] | None = None
        if config.mask_secrets:
            from celery_jobs_ext.masking import mask_text

            keys = config.mask_keys

            def mask(text: str) -> str:
                return mask_text(text, keys)

        return run_command(
            argv,
            cwd=cwd,
            env=env if env is not None else {},
            timeout=timeout,
            max_output=config.shell_max_output,
            search_path=config.shell_path,
            mask=mask,
        )

    app.task(shell, base=ShellTask, name=SHELL_TASK_NAME, bind=True, shared=False)


def shell_task(app: Any) -> Any:
    """The ``jobs.shell`` task of ``app``: ``shell_task(app).delay("ls -l /srv")``."""
    from celery_jobs_ext.app import install

    install(app)
    return app.tasks[SHELL_TASK_NAME]
