"""Tests of celery_jobs_ext.shell: what validate_command refuses and run_command guarantees.

Validation tests resolve programs in a directory of stand-in executables (they never run),
so they do not depend on what the machine has installed; run_command tests use real
programs from /usr/bin and /bin.
"""

from __future__ import annotations

import contextlib
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import SimpleNamespace

import pytest

from celery_jobs_ext.errors import ImproperlyConfigured, JobsError
from celery_jobs_ext.shell import (
    DEFAULT_SEARCH_PATH,
    DENIED_ARGUMENTS,
    MAX_COMMAND_LENGTH,
    STDERR_TAIL_BYTES,
    ShellCommandFailed,
    ShellCommandNotAllowed,
    ShellCommandTimedOut,
    policy,
    run_command,
    validate_command,
)
from celery_jobs_ext.shell.rules.outputs import OUTPUT_RULES
from tests.shell.helpers import is_dead, program_paths

STAND_IN_PROGRAMS = (
    "ls", "echo", "cat", "grep", "touch", "find", "fd", "sed", "gsed", "tar", "awk", "gawk",
    "mawk", "git", "ssh", "scp", "sftp", "ssh-keygen", "rsync", "curl", "wget", "less", "man",
    "vim", "vi", "emacs", "zip", "tcpdump", "dd", "sort", "split", "rg", "make", "nmap", "nc",
    "ncat", "python3", "python3.11", "perl", "ruby", "node", "php", "lua", "sh", "bash", "zsh",
    "psql", "mysql", "sqlite3", "xargs", "env", "sudo", "nohup", "timeout", "nice", "strace",
    "busybox", "ld-linux-x86-64.so.2",
)  # fmt: skip

Validate = Callable[..., list[str]]


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory of executable stand-ins named like the programs the rules are about."""
    directory = tmp_path_factory.mktemp("bin")
    for name in STAND_IN_PROGRAMS:
        program = directory / name
        program.write_text("#!/bin/false\n")
        program.chmod(0o755)
    return directory


@pytest.fixture
def check(stand_ins: Path) -> Validate:
    """validate_command with every setting passed explicitly, resolving in ``stand_ins``."""

    def validate(
        command: str,
        allowed: Sequence[str] = ("*",),
        *,
        denied_arguments: dict[str, list[str]] | None = None,
        search_path: str | None = None,
    ) -> list[str]:
        return validate_command(
            command,
            allowed,
            denied_arguments={} if denied_arguments is None else denied_arguments,
            search_path=str(stand_ins) if search_path is None else search_path,
        )

    return validate


def assert_refused(validate: Validate, command: str, expected: str, **kwargs: object) -> None:
    with pytest.raises(ShellCommandNotAllowed, match=re.escape(expected)) as caught:
        validate(command, **kwargs)
    assert str(caught.value).startswith("Command refused: ")


# -- accepted commands ---------------------------------------------------------------------


ACCEPTED_COMMANDS = [
    pytest.param(*case, id=case[0])
    for case in [
        ("ls -la /tmp", ["-la", "/tmp"]),
        ("grep -E 'ERROR|WARN' app.log", ["-E", "ERROR|WARN", "app.log"]),
        ('echo "a;b"', ["a;b"]),
        ("echo 'a b' c\\ d", ["a b", "c d"]),
        ("echo 'a'\"b\"c", ["abc"]),
        ('echo "it\'s"', ["it's"]),
        ('echo "a \\"b\\" \\$x \\\\ \\`"', ['a "b" $x \\ `']),
        ('echo "a\\nb"', ["a\\nb"]),
        ("echo '$HOME `id` $(id) ${x}'", ["$HOME `id` $(id) ${x}"]),
        ("echo \\; \\| \\& \\$x \\*", [";", "|", "&", "$x", "*"]),
        ("echo '' x", ["", "x"]),
        ("echo\ta\t\tb  ", ["a", "b"]),
        ("find . -name {}", [".", "-name", "{}"]),
        ("find . -name '*.py' ! -path './.git/*'", [".", "-name", "*.py", "!", "-path", "./.git/*"]),
        ("git log HEAD~3 --format=%H,%an", ["log", "HEAD~3", "--format=%H,%an"]),
        ("scp b host:~/a.txt", ["b", "host:~/a.txt"]),  # a local destination needs a pattern
        ("ls a#b x=y user@host:path ] ^ +x", ["a#b", "x=y", "user@host:path", "]", "^", "+x"]),
        ("echo 'café' \"naïve\"", ["café", "naïve"]),
        ("echo '\uff1b'", ["\uff1b"]),
    ]
]


@pytest.mark.parametrize(("command", "arguments"), ACCEPTED_COMMANDS)
def test_accepted_command_becomes_the_argv_a_shell_would_pass(
    check: Validate, stand_ins: Path, command: str, arguments: list[str]
) -> None:
    argv = check(command)
    assert argv[1:] == arguments
    assert argv[0] == str(stand_ins / command.split(maxsplit=1)[0].split("\t")[0])


@pytest.mark.skipif(shutil.which("bash") is None, reason="bash is not installed")
@pytest.mark.parametrize("command", [case.values[0] for case in ACCEPTED_COMMANDS])
def test_accepted_command_gets_the_same_arguments_bash_would_pass(
    check: Validate, tmp_path: Path, command: str
) -> None:
    rest = re.split(r"[ \t]", command, maxsplit=1)[1]  # what follows the program name
    shown = subprocess.run(
        ["bash", "-c", "printf '%s\\0' " + rest],
        capture_output=True,
        cwd=tmp_path,
        env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
        check=True,
    ).stdout
    assert check(command)[1:] == shown.decode().split("\0")[:-1]


def test_returned_program_is_the_absolute_path_found_on_the_search_path(
    check: Validate, stand_ins: Path
) -> None:
    argv = check("ls -l", ["ls"])
    assert argv == [str(stand_ins / "ls"), "-l"]
    assert os.path.isabs(argv[0])


# -- shell syntax --------------------------------------------------------------------------


def test_command_chaining_message_names_the_operator_and_why(check: Validate) -> None:
    with pytest.raises(ShellCommandNotAllowed) as caught:
        check("ls; rm -rf /")
    assert str(caught.value).startswith(
        "Command refused: ';' (command chaining) is shell syntax; jobs.shell runs one program without a shell"
    )


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("ls; rm -rf /", "';' (command chaining)"),
        ("ls ;; x", "';;' (command chaining)"),
        ("ls && rm x", "'&&' (conditional chaining)"),
        ("ls || rm x", "'||' (conditional chaining)"),
        ("ls & rm x", "'&' (background execution)"),
        ("ls | sh", "'|' (pipe)"),
        ("ls |& sh", "'|&' (pipe)"),
        ("ls $(id)", "'$(' (command substitution)"),
        ("ls $((1+1))", "'$((' (arithmetic expansion)"),
        ("ls `id`", "'`' (command substitution)"),
        ("ls ${HOME}", "'${' (parameter expansion)"),
        ("ls $HOME", "'$HOME' (variable expansion)"),
        ("ls $1", "'$1' (special parameter expansion)"),
        ("ls $$", "'$$' (special parameter expansion)"),
        ("ls $'\\x41'", '"$\'" (ANSI-C quoting)'),
        ("ls $", "'$' (parameter expansion)"),
        ("ls < /etc/passwd", "'<' (redirection)"),
        ("ls > out", "'>' (redirection)"),
        ("ls >> out", "'>>' (redirection)"),
        ("ls 2> err", "'2>' (redirection)"),
        ("ls 2>&1", "'2>&' (redirection)"),
        ("ls &> out", "'&>' (redirection)"),
        ("ls >| out", "'>|' (redirection)"),
        ("cat << EOF", "'<<' (here-document)"),
        ("cat <<- EOF", "'<<-' (here-document)"),
        ("cat <<< text", "'<<<' (here-string)"),
        ("cat <(ls)", "'<(' (process substitution)"),
        ("ls (x)", "'(' (subshell or grouping)"),
        ("ls x)", "')' (subshell or grouping)"),
        ("ls {a,b}", "'{' (brace expansion or grouping)"),
        ("ls x}", "'}' (brace expansion or grouping)"),
        ("ls {}x", "'{' (brace expansion or grouping)"),
        ("ls *.py", "'*' (filename globbing)"),
        ("ls file?.txt", "'?' (filename globbing)"),
        ("ls [ab].txt", "'[' (filename globbing)"),
        ("ls ~", "'~' (home-directory expansion)"),
        ("ls ~root/x", "'~' (home-directory expansion)"),
        ("ls --dir=~/x", "'~' (home-directory expansion)"),
        ("ls a=x:~/y", "'~' (home-directory expansion)"),
        ("ls # rm -rf /", "'#' (a comment"),
        ('echo "$HOME"', "'$' inside double quotes (parameter expansion)"),
        ('echo "$(id)"', "'$(' inside double quotes (command substitution)"),
        ('echo "${x}"', "'${' inside double quotes (parameter expansion)"),
        ('echo "`id`"', "'`' inside double quotes (command substitution)"),
        ("ls\nrm -rf /", "'\\n' (newline, a command separator)"),
        ("ls \\\nrm", "'\\\\\\n' (line continuation)"),
        ("ls\r", "'\\r' (carriage return"),
        ("ls\x00x", "a NUL character"),
        ("ls '\x00'", "a NUL character"),
        ("ls \x1b[31m", "U+001B"),
        ("ls '\x07'", "U+0007"),
        ("ls 'a\tb'", "a tab inside quotes"),
        ("ls 'unterminated", "unterminated single quote"),
        ('ls "unterminated', "unterminated double quote"),
        ("ls \\", "ends with a backslash"),
        ("FOO=bar ls", "'FOO=bar' is a variable assignment prefix"),
        ("if ls", "'if' is a shell keyword"),
        ("! ls", "'!' is a shell keyword"),
        ("{ ls; }", "'{' (brace expansion or grouping)"),
        ("eval ls", "'eval' is a shell builtin"),
        ("exec ls", "'exec' is a shell builtin"),
        (". ./script", "'.' is a shell builtin"),
        ("source ./script", "'source' is a shell builtin"),
        ("command ls", "'command' is a shell builtin"),
        ("-ls", "may not start with '-'"),
        ("'' x", "the program name is empty"),
        ("'l s' x", "may contain only ASCII letters"),
    ],
)
def test_shell_syntax_is_refused_naming_the_syntax(check: Validate, command: str, expected: str) -> None:
    assert_refused(check, command, expected)


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("ls\uff1b rm -rf /", "U+FF1B (FULLWIDTH SEMICOLON) outside quotes is not ASCII"),
        ("ls \uff5c sh", "U+FF5C (FULLWIDTH VERTICAL LINE)"),
        ("ls \uff04HOME", "U+FF04 (FULLWIDTH DOLLAR SIGN)"),
        ("\u0455h -c id", "U+0455 (CYRILLIC SMALL LETTER DZE)"),
        ("ls\u00a0-la", "U+00A0 (NO-BREAK SPACE) is a space look-alike"),
        ("ls 'a\u00a0b'", "U+00A0 (NO-BREAK SPACE) is a space look-alike"),
        ("ls\u3000x", "U+3000 (IDEOGRAPHIC SPACE) is a space look-alike"),
        ("ls '\u200b'", "U+200B (ZERO WIDTH SPACE) is an invisible formatting character"),
        ("ls \u200d", "U+200D (ZERO WIDTH JOINER)"),
        ("ls '\u202e'", "U+202E (RIGHT-TO-LEFT OVERRIDE)"),
        ("ls \u2066x", "U+2066 (LEFT-TO-RIGHT ISOLATE)"),
        ("\ufeffls", "U+FEFF (ZERO WIDTH NO-BREAK SPACE)"),
        ("ls '\u00ad'", "U+00AD (SOFT HYPHEN)"),
        ("ls\u2028rm", "U+2028 (LINE SEPARATOR) is a line separator"),
        ("ls\u2029rm", "U+2029 (PARAGRAPH SEPARATOR)"),
        ("ls '\u0085'", "U+0085 is a control character"),
        ("ls '\ue000'", "U+E000 is a private-use character"),
        ("ls '\U000e0041'", "U+E0041 (TAG LATIN CAPITAL LETTER A)"),
    ],
)
def test_unicode_look_alikes_and_invisible_characters_are_refused(
    check: Validate, command: str, expected: str
) -> None:
    assert_refused(check, command, expected)


# -- size ----------------------------------------------------------------------------------


def test_command_over_the_maximum_is_refused_with_its_length_and_the_maximum(
    check: Validate,
) -> None:
    command = "ls " + "a;" * 49_999 + "x"
    assert_refused(check, command, f"is 100002 characters long; the maximum is {MAX_COMMAND_LENGTH}")


@pytest.mark.parametrize(
    "command",
    [
        "echo " + "'x'" * 2700,
        "echo " + '"' * 8000,
        "echo " + "\\ " * 4000,
        "sed '" + "s/[[:[.=" * 900 + "'",
        "awk '" + "print " * 1350 + "'",
        "curl " + "-s " * 2700,
        "git " + "-C . " * 1600 + "status",
        "tar -" + "v" * 8000,
    ],
    ids=["quotes", "open-quotes", "escapes", "sed", "awk", "options", "git", "cluster"],
)
def test_hostile_command_at_the_maximum_gets_a_verdict(check: Validate, command: str) -> None:
    """A verdict, not a crash; how long it takes is measured in benchmarks, not here."""
    assert len(command) <= MAX_COMMAND_LENGTH
    with contextlib.suppress(ShellCommandNotAllowed):
        check(command)


@pytest.mark.parametrize("command", ["", " ", "\t \t"])
def test_empty_or_blank_command_is_refused(check: Validate, command: str) -> None:
    assert_refused(check, command, "the command is empty")


@pytest.mark.parametrize("command", [b"ls", ["ls", "-l"], None, 3])
def test_command_that_is_not_a_str_is_a_type_error(check: Validate, command: object) -> None:
    with pytest.raises(TypeError, match="expects the command as a str"):
        check(command)


def test_allowed_given_as_one_str_is_improperly_configured_naming_the_setting(check: Validate) -> None:
    with pytest.raises(ImproperlyConfigured, match="jobs_allowed_shell_commands"):
        check("ls", "ls")


# -- which program -------------------------------------------------------------------------


def test_program_not_in_the_allowed_list_is_refused_naming_the_setting(check: Validate) -> None:
    assert_refused(
        check, "rm -rf /tmp/x", "'rm' is not an allowed command (jobs_allowed_shell_commands: cat, ls)",
        allowed=["ls", "cat"],
    )  # fmt: skip


def test_allowed_name_must_match_exactly(check: Validate) -> None:
    assert_refused(check, "LS", "'LS' is not an allowed command", allowed=["ls"])


def test_star_allows_any_program_but_keeps_the_structural_checks(
    check: Validate,
) -> None:
    assert check("cat x")[1:] == ["x"]
    assert_refused(check, "cat x; ls", "';' (command chaining)")


def test_path_qualified_program_runs_only_when_that_exact_path_is_listed(
    check: Validate, stand_ins: Path
) -> None:
    ls_path = str(stand_ins / "ls")
    assert_refused(check, f"{ls_path} -l", "only when that exact path is listed", allowed=["ls"])
    assert check(f"{ls_path} -l", [ls_path]) == [ls_path, "-l"]
    assert_refused(check, "./ls", "only when that exact path is listed", allowed=["ls"])
    assert_refused(check, "../x/ls", "only when that exact path is listed", allowed=["ls"])
    with pytest.raises(ImproperlyConfigured, match="relative path"):
        check("./ls -l", ["./ls"])


def test_relative_path_with_star_is_refused_since_the_message_chooses_the_directory(check: Validate) -> None:
    assert_refused(check, "./ls", "is a relative path, which resolves against the working directory")


def test_absolute_path_that_is_not_executable_is_refused(check: Validate, tmp_path: Path) -> None:
    data = tmp_path / "data.txt"
    data.write_text("x")
    assert_refused(check, str(data), "is not an executable file")


def test_program_only_on_the_callers_path_is_refused_and_found_through_search_path(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    program = tmp_path / "only-here"
    program.write_text("#!/bin/false\n")
    program.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    assert shutil.which("only-here") == str(program)

    with pytest.raises(ShellCommandNotAllowed, match="not found on the command search path"):
        validate_command("only-here", ["only-here"], denied_arguments={}, search_path=DEFAULT_SEARCH_PATH)
    argv = validate_command("only-here", ["only-here"], denied_arguments={}, search_path=str(tmp_path))
    assert argv == [str(program)]


@pytest.mark.parametrize("search_path", ["", "bin:/usr/bin", "/usr/bin::/bin", "/usr/bin:."])
def test_search_path_with_an_empty_or_relative_entry_is_improperly_configured(
    check: Validate, search_path: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match="jobs_shell_path"):
        check("ls", search_path=search_path)


@pytest.mark.parametrize(
    "command",
    ["xargs rm", "env ls", "sudo ls", "nohup ls", "timeout 5 ls", "nice ls", "strace ls",
     "busybox sh", "ld-linux-x86-64.so.2 /bin/ls"],
)  # fmt: skip
def test_program_that_runs_its_arguments_is_refused_even_when_listed(check: Validate, command: str) -> None:
    name = command.split()[0]
    assert_refused(check, command, f"{name!r} runs the program named in its arguments", allowed=[name])


def test_path_to_a_program_that_runs_its_arguments_is_refused(check: Validate, stand_ins: Path) -> None:
    env_path = str(stand_ins / "env")
    assert_refused(check, f"{env_path} ls", "'env' runs the program named", allowed=[env_path])


def test_multi_call_binary_behind_a_listed_name_is_allowed(tmp_path: Path, stand_ins: Path) -> None:
    # On Alpine /bin/ls is a link to busybox: the link's name decides, not its target.
    (tmp_path / "ls").symlink_to(stand_ins / "busybox")
    argv = validate_command("ls -l", ["ls"], denied_arguments={}, search_path=str(tmp_path))
    assert argv == [str(tmp_path / "ls"), "-l"]


def test_rules_follow_a_renamed_link_to_a_guarded_program(tmp_path: Path, stand_ins: Path) -> None:
    (tmp_path / "mysed").symlink_to(stand_ins / "sed")
    with pytest.raises(ShellCommandNotAllowed, match="matches '-i'"):
        validate_command("mysed -i s/a/b/ f", ["mysed"], denied_arguments={}, search_path=str(tmp_path))


# -- arguments that make an allowed program run another ------------------------------------


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("find . -exec rm {} \\;", "'-exec' of 'find' matches '-exec'"),
        ("find . -execdir sh \\;", "matches '-execdir'"),
        ("find . -ok rm {} \\;", "matches '-ok'"),
        ("find . -okdir rm {} \\;", "matches '-okdir'"),
        ("find . -delete", "matches '-delete'"),
        ("find . -fprint /etc/x", "matches '-fprint'"),
        ("find . -fprint0 /etc/x", "matches '-fprint0'"),
        ("find . -fprintf /etc/x %p", "matches '-fprintf'"),
        ("find . -fls /etc/x", "matches '-fls'"),
        ("fd -x rm", "matches '-x'"),
        ("fd --exec-batch rm", "matches '--exec-batch'"),
        ("tar -xvIgzip -f a.tar", "'-xvIgzip' of 'tar' matches '-I'"),
        ("tar -cf a.tar -I 'sh -c id' .", "'-I' of 'tar' matches '-I'"),
        ("tar xIf sh a.tar", "'xIf' of 'tar' uses the old-style option 'I'"),
        ("tar -xf a.tar --to-command=sh", "matches '--to-command'"),
        ("tar -xf a.tar --to-com=sh", "'--to-com=sh' of 'tar' matches '--to-command'"),
        ("tar -cf a.tar --checkpoint=1 --checkpoint-action=exec=sh .", "matches '--checkpoint-action'"),
        ("tar -cf a.tar --use-compress-program=sh .", "matches '--use-compress-program'"),
        ("tar -cf h:a.tar --rsh-command=sh .", "matches '--rsh-command'"),
        ("tar -cf a.tar --info-script=x.sh .", "matches '--info-script'"),
        ("tar -cf a.tar -F x.sh .", "matches '-F'"),
        ("tar -cf a.tar --new-volume-script=x.sh .", "matches '--new-volume-script'"),
        ("sed -i s/a/b/ f", "'-i' of 'sed' matches '-i'"),
        ("sed -i.bak s/a/b/ f", "'-i.bak' of 'sed' matches '-i'"),
        ("sed -ni p f", "'-ni' of 'sed' matches '-i'"),
        ("sed --in-place s/a/b/ f", "matches '--in-place'"),
        ("sed --in-pl s/a/b/ f", "matches '--in-place'"),
        ("sed -f script.sed f", "matches '-f'"),
        ("sed 1e f", "the 'e' command runs"),
        ("sed 'e id' f", "the 'e' command runs"),
        ("sed '/x/ e id' f", "the 'e' command runs"),
        ("sed 's/a/id/e' f", "the 'e' flag of 's' runs"),
        ("sed 's|a|id|ge' f", "the 'e' flag of 's' runs"),
        ("sed 'sxaxidxe' f", "the 'e' flag of 's' runs"),
        ("sed 's/[/]/g;b/e' f", "the 'e' flag of 's' runs"),
        ("sed 's/\\c//g;b/e' f", "the 'e' flag of 's' runs"),
        ("sed 'w /tmp/out' f", "the 'w' command writes a file"),
        ("sed '1W /tmp/out' f", "the 'W' command writes a file"),
        ("sed 's/a/b/w /tmp/out' f", "the 'w' flag of 's' writes a file"),
        ("sed -e 's/a/b/' -e 'e id' f", "'e id' is refused"),
        ("sed -n -ee f", "'e' is refused"),
        ("sed --expression='1e id' f", "'1e id' is refused"),
        ("sed --expr '1e id' f", "'1e id' is refused"),
        ("sed 1e -e p f", "'1e' is refused"),
        ("sed 's/a/b/X' f", "has an unknown flag 'X'"),
        ("sed 'k' f", "has an unknown command 'k'"),
        ("sed 's/a/b' f", "has an unterminated regular expression"),
        ("awk -f prog.awk f", "'-f' of 'awk' matches '-f'"),
        ("gawk -E prog.awk f", "matches '-E'"),
        ("gawk --exec=prog.awk f", "matches '--exec'"),
        ("gawk -l ./evil.so 1", "matches '-l'"),
        ("gawk -i inc.awk 1", "matches '-i'"),
        ("gawk -W exec=x 1", "matches '-W'"),
        ("awk -o/tmp/out 1", "matches '-o'"),
        ("awk '{system(\"id\")}'", "system() runs a shell command"),
        ("awk 'BEGIN{system (\"id\")}'", "system() runs a shell command"),
        ("mawk '{print | \"sh\"}'", "'|' pipes to or from a command"),
        ("awk 'BEGIN{\"id\" | getline x}'", "'|' pipes to or from a command"),
        ("gawk 'BEGIN{print |& \"sh\"}'", "'|' pipes to or from a command"),
        ("awk 'BEGIN{a=1 ||| \"sh\"}'", "'|' pipes to or from a command"),
        ("awk '{print > \"/tmp/x\"}' f", "'>' after print or printf"),
        ('awk \'{printf "%s", $0 >> "/tmp/x"}\' f', "'>' after print or printf"),
        ("gawk '@load \"filefuncs\"; BEGIN{}'", "'@' loads extensions"),
        ('gawk \'BEGIN{f="sys" "tem"; @f("id")}\'', "'@' loads extensions"),
        ("gawk -e 'BEGIN{system(\"id\")}' f", "system() runs a shell command"),
        ("gawk --source='BEGIN{system(\"id\")}' f", "system() runs a shell command"),
        ("awk -v x=1 -F: -- 'BEGIN{system(\"id\")}'", "system() runs a shell command"),
        ("git -c core.pager=sh log", "'-c' of 'git' sets git configuration"),
        ("git -ccore.sshCommand=sh fetch", "sets git configuration"),
        ("git --config-env=core.pager=X log", "matches '--config-env'"),
        ("git --exec-path=/tmp/x status", "matches '--exec-path'"),
        ("git fetch --upload-pack=sh origin", "matches '--upload-pack'"),
        ("git fetch --upload-p=sh origin", "matches '--upload-pack'"),
        ("git push --receive-pack=sh origin", "matches '--receive-pack'"),
        ("git push --exec=sh origin", "matches '--exec'"),
        ("git archive --remote=x --exec=sh HEAD", "matches '--exec'"),
        ("git difftool --extcmd=sh", "matches '--extcmd'"),
        ("git grep --open-files-in-pager=sh x", "matches '--open-files-in-pager'"),
        ("git diff --ext-diff", "matches '--ext-diff'"),
        ("git clone -u sh repo", "'-u' of 'git clone' matches '-u'"),
        ("git clone -c core.sshCommand=sh repo", "'git clone' matches '-c'"),
        ("git clone --config=core.hooksPath=x repo", "matches '--config"),
        ("git clone --template=/tmp/hooks repo", "'git clone' matches '--template'"),
        ("git init --template=/tmp/hooks", "'git init' matches '--template'"),
        ("git ls-remote -u sh origin", "'git ls-remote' matches '-u'"),
        ("git rebase -x make main", "'git rebase' matches '-x'"),
        ("git rebase -ix make main", "'git rebase' matches '-x'"),
        ("git difftool -x sh", "'git difftool' is not a git subcommand"),
        ("git grep -Osh x", "'git grep' matches '-O'"),
        ("git clone ext::sh repo", "names the remote helper 'ext'"),
        ("git fetch 'ext::sh -c id' main", "names the remote helper 'ext'"),
        ("git config core.fsmonitor sh", "'git config' is not a git subcommand"),
        ("git config alias.x !sh", "'git config' is not a git subcommand"),
        ("git filter-branch --tree-filter x", "'git filter-branch' is not a git subcommand"),
        ("git bisect run make", "'git bisect' is not a git subcommand"),
        ("git submodule --quiet foreach id", "'git submodule foreach' is refused"),
        ("git shell -c id", "'git shell' is not a git subcommand"),
        ("git remote-ext x sh", "'git remote-ext' is not a git subcommand"),
        ("git hook run pre-commit", "'git hook' is not a git subcommand"),
        ("ssh -o ProxyCommand=sh host", "sets 'proxycommand'"),
        ("ssh -oProxyCommand=sh host", "sets 'proxycommand'"),
        ("ssh -o 'proxycommand sh' host", "sets 'proxycommand'"),
        ("ssh -vo 'LocalCommand=sh' -o PermitLocalCommand=yes host", "sets 'localcommand'"),
        ("ssh -o KnownHostsCommand=sh host", "sets 'knownhostscommand'"),
        ("ssh -o PKCS11Provider=./evil.so host", "sets 'pkcs11provider'"),
        ("ssh -o UserKnownHostsFile=/home/u/.bashrc host", "sets 'userknownhostsfile'"),
        ("ssh -F ./config host", "'-F' of 'ssh' matches '-F'"),
        ("ssh -I ./evil.so host", "matches '-I'"),
        ("ssh -E /etc/x host", "matches '-E'"),
        ("scp -S sh a host:b", "'-S' of 'scp' matches '-S'"),
        ("scp -o ProxyCommand=sh a host:b", "sets 'proxycommand'"),
        ("sftp -D sh host", "matches '-D'"),
        ("sftp -b batch host", "matches '-b'"),
        ("ssh-keygen -D ./evil.so", "matches '-D'"),
        ("rsync -e sh a host:b", "'-e' of 'rsync' matches '-e'"),
        ("rsync -avzesh a host:b", "matches '-e'"),
        ("rsync --rsh=sh a host:b", "matches '--rsh'"),
        ("rsync --rsync-path=sh a host:b", "matches '--rsync-path'"),
        ("curl -o /etc/x http://h", "'-o' of 'curl' matches '-o'"),
        ("curl -sSLo /etc/x http://h", "'-sSLo' of 'curl' matches '-o'"),
        ("curl --output=/etc/x http://h", "matches '--output'"),
        ("curl -O http://h/x", "matches '-O'"),
        ("curl --remote-name http://h/x", "matches '--remote-name'"),
        ("curl -K ./curlrc http://h", "matches '-K'"),
        ("curl --config ./curlrc http://h", "matches '--config'"),
        ("curl -c /etc/jar http://h", "matches '-c'"),
        ("curl -D /etc/headers http://h", "matches '-D'"),
        ("curl --trace /etc/x http://h", "matches '--trace'"),
        ("wget -O /etc/x http://h", "'-O' of 'wget' matches '-O'"),
        ("wget --output-document=/etc/x http://h", "matches '--output-document'"),
        ("wget -o log http://h", "matches '-o'"),
        ("wget -P /etc http://h", "matches '-P'"),
        ("wget -e use_askpass=sh http://h", "matches '-e'"),
        ("wget --execute=x http://h", "matches '--execute'"),
        ("wget --use-askpass=sh http://h", "matches '--use-askpass'"),
        ("less +!id f", "'+!id' of 'less' matches '+'"),
        ("less -k ./keys f", "matches '-k'"),
        ("less -o /etc/x f", "matches '-o'"),
        ("man -P sh ls", "'-P' of 'man' matches '-P'"),
        ("man --pager=sh ls", "matches '--pager'"),
        ("man -H sh ls", "matches '-H'"),
        ("man -C ./man.conf ls", "matches '-C'"),
        ("vim -c ':!id' f", "'-c' of 'vim' matches '-c'"),
        ("vi '+:!id' f", "matches '+'"),
        ("vim --cmd ':!id' f", "matches '--cmd'"),
        ("vim -S script.vim f", "matches '-S'"),
        ("emacs --eval '(shell-command \"id\")'", "matches '--eval'"),
        ("zip -TT sh a.zip f", "'-TT' of 'zip' matches '-TT'"),
        ("zip --unzip-command=sh -T a.zip f", "matches '--unzip-command'"),
        ("zip -T -TTsh a.zip f", "'-TTsh' of 'zip' uses -TT"),
        ("tcpdump -z sh -w x", "matches '-z'"),
        ("dd if=/dev/zero of=/dev/sda", "'of=/dev/sda' of 'dd' writes the file '/dev/sda'"),
        ("sort -o /etc/x f", "'-o' of 'sort' writes the file '/etc/x'"),
        ("sort --compress-program=sh f", "matches '--compress-program'"),
        ("split --filter=sh f", "matches '--filter'"),
        ("rg --pre=sh x", "matches '--pre'"),
        ("make --eval='$(shell id)'", "matches '--eval'"),
        ("nmap --script=x host", "matches '--script'"),
        ("nmap -oN /etc/x host", "matches '-o'"),
        ("nc -e sh host 1", "'-e' of 'nc' matches '-e'"),
        ("ncat --sh-exec=sh host 1", "matches '--sh-exec'"),
        ("python3 -c 'import os'", "'-c' of 'python3' matches '-c'"),
        ("python3 -Bc 'import os'", "'-Bc' of 'python3' matches '-c'"),
        ("python3.11 -c 'import os'", "'-c' of 'python3.11' matches '-c'"),
        ("python3 -m http.server", "matches '-m'"),
        ("perl -e 'system 1'", "'-e' of 'perl' matches '-e'"),
        ("perl -le 'print 1'", "'-le' of 'perl' matches '-e'"),
        ("perl -MPOSIX f", "matches '-M'"),
        ("perl -pi f", "matches '-i'"),
        ("ruby -e 'system 1'", "matches '-e'"),
        ("ruby -r./evil f.rb", "matches '-r'"),
        ("node -e 'require(1)'", "matches '-e'"),
        ("node --eval=x", "matches '--eval'"),
        ("node --require=./evil f.js", "matches '--require'"),
        ("node --inspect=0.0.0.0:9229 f.js", "matches '--inspect'"),
        ("php -r 'system(1);'", "matches '-r'"),
        ("php -d auto_prepend_file=x f.php", "matches '-d'"),
        ("lua -e 'os.execute(1)'", "matches '-e'"),
        ("sh -c id", "'-c' of 'sh' matches '-c'"),
        ("bash -ec id", "'-ec' of 'bash' matches '-c'"),
        ("bash --rcfile x -i", "matches '--rcfile'"),
        ("zsh -c id", "'-c' of 'zsh' matches '-c'"),
        ("psql -c '\\! id'", "'-c' of 'psql' matches '-c'"),
        ("psql --command=x", "matches '--command'"),
        ("mysql -e 'system id'", "'-e' of 'mysql' matches '-e'"),
        ("mysql --pager=sh", "matches '--pager'"),
        ("sqlite3 -cmd '.shell id' db", "'-cmd' of 'sqlite3' matches '-cmd'"),
        ("sqlite3 db '.shell id'", "is the dot-command '.shell'"),
        ("sqlite3 db '.sh id'", "is the dot-command '.sh'"),
        ("sqlite3 -Axf db.sqlar", "argument '-Axf' of 'sqlite3' runs dot-commands"),
        ("sqlite3 db '.output /etc/x'", "is the dot-command '.output'"),
        ("sqlite3 db \"select writefile('/etc/x', 'y')\"", "uses 'writefile'"),
        ("sqlite3 db \"ATTACH '/etc/x.db' AS x\"", "uses 'attach'"),
        ("sqlite3 db \"select load_extension('./evil')\"", "uses 'load_extension'"),
    ],
)
def test_option_that_makes_an_allowed_program_run_another_or_write_files_is_refused(
    check: Validate, command: str, expected: str
) -> None:
    assert_refused(check, command, expected)


@pytest.mark.parametrize(
    "command",
    [
        "find . -name '*.log' -mtime +7 -print",
        "find . -executable -type f",
        # round 4: a bare tar writes only standard output (extracting or creating a file needs
        # a pattern), see tests/shell/test_redteam_round4.py
        "tar -xzOf a.tar.gz",
        "tar xzOf a.tar.gz",
        "tar --checkpoint=100 -cf - .",
        "sed 's/a/b/g' f",
        "sed -n '/start/,/end/p' f",
        "sed -E 's|x+|y|gI' f",
        "sed ':a;N;$!ba;s/x/y/g' f",
        "sed '1d;$d' f",
        "sed '0~3 s/x/y/2' f",
        "sed -e 's/e/E/' -e 'y/abc/xyz/' f",
        "sed 'a appended text; e is just text here' f",
        "sed 'r /etc/hostname' f",
        "sed '/e/{p;q}' f",
        "sed -s -n -E -z -l 80 -e p f",
        "awk '{print $1}' f",
        "awk -F'|' '{print $2}' f",
        "awk -F: -v OFS=, '$3 > 100 {print $1, $3}' /etc/passwd",
        'awk \'$1 == "a" || $1 == "b"\' f',
        "awk '{n += $2} END {print n}' f",
        "awk '/filesystem/ {print}' f",
        "gawk 'BEGIN {print systime()}'",
        "git status --short",
        "git log -c --cc -n 5",
        "git switch -c feature",
        "git push -u origin main",
        "git add -u",
        "git commit -m 'fix: a; b'",
        "git fetch origin",
        "git clone -b main --depth 1 https://example.com/r.git",
        "ssh host uptime",
        "ssh -o ConnectTimeout=5 -o StrictHostKeyChecking=yes -p 22 host uptime",
        "scp -P 2222 a host:b",
        "rsync -avz --delete src/ host:dst/",
        "curl -sSL -H 'X-o: 1' -d 'a=b' https://example.com",
        "wget -qO- https://example.com",
        "wget --spider https://example.com",
        "less -R f",
        "vim -R f",
        "zip -r - dir",
        "dd if=/dev/zero bs=1 count=1",
        "sort -k2 -t, -n f",
        "make -j4 all",
        "python3 script.py --flag",
        "perl -I lib script.pl",
        "bash deploy.sh",
        "sqlite3 db 'select count(*) from t'",
        "psql -d app -U reader -h db",
    ],
)
def test_ordinary_use_of_a_guarded_program_is_accepted(
    check: Validate, stand_ins: Path, command: str
) -> None:
    assert check(command)[0] == str(stand_ins / command.split()[0])


def test_configured_denied_arguments_add_to_the_built_in_rules(check: Validate) -> None:
    denied = {"ls": ["--color", "-R"], "find": ["-newer"]}
    assert_refused(
        check, "ls --color=always", "'--color=always' of 'ls' matches '--color', which "
        "jobs_shell_denied_arguments denies for 'ls'", denied_arguments=denied,
    )  # fmt: skip
    assert_refused(check, "ls --col", "matches '--color'", denied_arguments=denied)
    assert_refused(check, "ls -laR", "matches '-R'", denied_arguments=denied)
    assert_refused(check, "find . -newer x", "matches '-newer'", denied_arguments=denied)
    assert_refused(check, "find . -exec x", "matches '-exec'", denied_arguments=denied)
    assert check("ls -la", denied_arguments=denied)[1:] == ["-la"]


def test_configured_denied_argument_given_as_one_str_is_improperly_configured(check: Validate) -> None:
    with pytest.raises(ImproperlyConfigured, match=r"jobs_shell_denied_arguments.*'find'"):
        check("find .", denied_arguments={"find": "-exec"})


def test_built_in_table_covers_the_programs_the_docs_promise() -> None:
    for program in ("find", "tar", "sed", "awk", "git", "ssh", "rsync", "curl", "wget", "less",
                    "man", "vim", "zip", "tcpdump", "python", "perl", "sh"):  # fmt: skip
        assert DENIED_ARGUMENTS[program], program
    assert "-execdir" in DENIED_ARGUMENTS["find"]
    # dd's and sort's output options moved to the output table in round 4
    assert OUTPUT_RULES["dd"].options == ("of=",)
    assert "-o" in OUTPUT_RULES["sort"].options


def test_none_reads_the_settings_and_explicit_arguments_override_them(
    monkeypatch: pytest.MonkeyPatch, stand_ins: Path
) -> None:
    settings = SimpleNamespace(
        allowed_shell_commands=("ls",),
        shell_path=str(stand_ins),
        shell_denied_arguments={"ls": ("-R",)},
    )
    monkeypatch.setattr(policy, "current_settings", lambda: settings)
    assert validate_command("ls -l") == [str(stand_ins / "ls"), "-l"]
    with pytest.raises(ShellCommandNotAllowed, match="not an allowed command"):
        validate_command("cat x")
    with pytest.raises(ShellCommandNotAllowed, match="matches '-R'"):
        validate_command("ls -R")
    assert validate_command("cat x", ["cat"])[1:] == ["x"]


# -- refused means never run ---------------------------------------------------------------


def validate_then_run(command: str, allowed: Sequence[str]) -> dict[str, object]:
    """What the jobs.shell task does: validate, then run the argv without a shell."""
    argv = validate_command(command, allowed, denied_arguments={}, search_path=DEFAULT_SEARCH_PATH)
    return run_command(argv, timeout=10)


@pytest.mark.parametrize("separator", ["&&", ";", "|", "||", "&", "\n", "$(", "`"])
def test_refused_command_never_runs_any_part_of_it(tmp_path: Path, separator: str) -> None:
    marker = tmp_path / "marker"
    command = f"touch {marker} {separator} echo hi"
    with pytest.raises(ShellCommandNotAllowed):
        validate_then_run(command, ["touch", "echo"])
    assert not marker.exists()


def test_quoted_shell_syntax_reaches_the_program_as_text(tmp_path: Path) -> None:
    result = validate_then_run("printf '%s|' 'a;b' 'c && d' '$(id)'", ["printf"])
    assert result["stdout"] == "a;b|c && d|$(id)|"


# -- run_command ---------------------------------------------------------------------------

PYTHON = sys.executable


def test_run_command_returns_exit_code_and_output() -> None:
    assert run_command(["/bin/echo", "hello", "world"]) == {
        "returncode": 0,
        "stdout": "hello world\n",
        "stderr": "",
    }
    assert run_command(["true"])["returncode"] == 0


def test_run_command_passes_arguments_verbatim_without_a_shell() -> None:
    result = run_command(["printf", "%s\\n", "$(id)", "a;b", "*", "~"])
    assert result["stdout"] == "$(id)\na;b\n*\n~\n"


def test_run_command_gives_the_program_an_empty_stdin() -> None:
    # With a stdin left open, cat would wait for input and the run would time out.
    assert run_command(["cat"], timeout=10)["stdout"] == ""


def test_non_zero_exit_raises_with_the_code_and_the_end_of_stderr() -> None:
    script = "import sys; sys.stderr.write('x' * 5000 + 'the real reason'); sys.exit(3)"
    with pytest.raises(ShellCommandFailed) as caught:
        run_command([PYTHON, "-c", script])
    error = caught.value
    assert isinstance(error, JobsError)
    assert error.returncode == 3
    assert error.stderr_tail.endswith("the real reason")
    assert len(error.stderr_tail.encode()) == STDERR_TAIL_BYTES
    assert "exited with code 3" in str(error)
    assert "the real reason" in str(error)
    assert error.argv == (PYTHON, "-c", script)


def test_false_raises_with_code_1_and_says_stderr_was_empty() -> None:
    with pytest.raises(ShellCommandFailed, match="exited with code 1; stderr was empty"):
        run_command(["false"])


def test_mask_is_applied_to_the_argv_and_stderr_the_error_carries() -> None:
    script = "import sys; sys.stderr.write('token=s3cret'); sys.exit(2)"
    with pytest.raises(ShellCommandFailed) as caught:
        run_command([PYTHON, "-c", script, "s3cret"], mask=lambda text: text.replace("s3cret", "***"))
    assert "s3cret" not in str(caught.value)
    assert caught.value.stderr_tail == "token=***"
    assert caught.value.argv[-1] == "***"


def test_program_that_cannot_start_raises_with_code_127() -> None:
    with pytest.raises(ShellCommandFailed, match="could not start") as caught:
        run_command(["/nonexistent/program"])
    assert caught.value.returncode == 127


def test_output_beyond_max_output_is_cut_with_a_marker_counting_the_rest() -> None:
    result = run_command([PYTHON, "-c", "print('x' * 200000)"], max_output=1000)
    assert result["stdout"] == "x" * 1000 + "\n[... truncated 199001 bytes]"


def test_huge_output_is_drained_without_being_kept() -> None:
    result = run_command(["head", "-c", "50000000", "/dev/zero"], max_output=16, timeout=30)
    assert result["stdout"] == "\x00" * 16 + "\n[... truncated 49999984 bytes]"


def test_invalid_utf8_output_is_decoded_with_replacement_characters() -> None:
    result = run_command([PYTHON, "-c", "import sys; sys.stdout.buffer.write(b'a\\xffb')"])
    assert result["stdout"] == "a\ufffdb"


def test_timeout_kills_the_program_and_says_so() -> None:
    with pytest.raises(ShellCommandTimedOut) as caught:
        run_command(["sleep", "30"], timeout=0.5)
    assert caught.value.returncode == -9
    assert "timed out after 0.5 s" in str(caught.value)
    assert isinstance(caught.value, ShellCommandFailed)


def wait_until_dead(pid: int, deadline_seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + deadline_seconds
    while time.monotonic() < deadline:
        if is_dead(pid):
            return True
        time.sleep(0.05)
    return False


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time\n"
        "child = subprocess.Popen(['sleep', '30'], stdout=subprocess.DEVNULL)\n"
        f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n"
        "sys.stderr.write('started child'); sys.stderr.flush()\n"
        "time.sleep(30)\n"
    )
    with pytest.raises(ShellCommandTimedOut) as caught:
        run_command(
            [PYTHON, "-c", script],
            timeout=1.5,
            sandbox_executables=program_paths("sleep"),
            writable_paths=[str(tmp_path)],
        )
    assert caught.value.stderr_tail == "started child"
    assert wait_until_dead(int(pid_file.read_text()))


def test_background_child_holding_the_pipes_does_not_hold_the_task() -> None:
    script = "import subprocess; subprocess.Popen(['sleep', '30'])"
    # Held by the child's pipes, the run would outlast its 20 s timeout and raise instead.
    result = run_command([PYTHON, "-c", script], timeout=20, sandbox_executables=program_paths("sleep"))
    assert result["returncode"] == 0


def test_env_gives_the_program_only_path_and_the_given_variables() -> None:
    result = run_command(
        ["env"], env={"GREETING": "hello world"}, search_path="/usr/bin:/bin", allowed_env=["GREETING"]
    )
    # TMPDIR: the kernel sandbox's private directory (tests/shell/test_sandbox.py)
    assert sorted(line for line in str(result["stdout"]).splitlines() if not line.startswith("TMPDIR=/")) == [
        "GREETING=hello world",
        "PATH=/usr/bin:/bin",
    ]


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"LD_PRELOAD": "/tmp/evil.so"}, "LD_PRELOAD is not allowed"),
        ({"GIT_SSH_COMMAND": "sh"}, "GIT_SSH_COMMAND is not allowed"),
        ({"PAGER": "sh"}, "PAGER is not allowed"),
        ({"BASH_ENV": "x"}, "BASH_ENV is not allowed"),
        ({"GIT_CONFIG_KEY_0": "core.pager"}, "GIT_CONFIG_KEY_0 is not allowed"),
        ({"PSQLRC": "/tmp/rc"}, "PSQLRC is not allowed"),
        ({"PATH": "/tmp"}, "PATH cannot be set per job"),
        ({"1X": "a"}, "name '1X' must match"),
        ({"A-B": "a"}, "name 'A-B' must match"),
        ({"A": "a\x00b"}, "A contains a NUL character"),
    ],
)
def test_env_variable_that_loads_code_or_is_malformed_is_refused(env: dict[str, str], expected: str) -> None:
    with pytest.raises(ShellCommandNotAllowed, match=re.escape(expected)):
        run_command(["true"], env=env, search_path="/usr/bin:/bin")


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"argv": "echo hi"}, TypeError),
        ({"argv": []}, ValueError),
        ({"argv": ["echo", 1]}, TypeError),
        ({"argv": ["true"], "timeout": 0}, ValueError),
        ({"argv": ["true"], "max_output": -1}, ValueError),
    ],
)
def test_run_command_refuses_malformed_arguments(kwargs: dict[str, object], error: type) -> None:
    with pytest.raises(error):
        run_command(**kwargs)  # type: ignore[arg-type]


# -- errors travel to the result backend ---------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        ShellCommandFailed(["/bin/false", "x"], 1, "boom"),
        ShellCommandTimedOut(["/bin/sleep", "30"], -9, "partial", 0.5),
    ],
    ids=["failed", "timed-out"],
)
def test_failure_survives_pickle_and_celerys_json_round_trip(error: ShellCommandFailed) -> None:
    for copy in (
        pickle.loads(pickle.dumps(error)),
        type(error)(*json.loads(json.dumps(error.args))),  # what Celery's JSON backend does
    ):
        assert type(copy) is type(error)
        assert copy.argv == error.argv
        assert copy.returncode == error.returncode
        assert copy.stderr_tail == error.stderr_tail
        assert str(copy) == str(error)
    assert getattr(pickle.loads(pickle.dumps(error)), "timeout", None) == getattr(error, "timeout", None)


def test_refusal_pickles_with_its_message() -> None:
    error = ShellCommandNotAllowed("Command refused: x")
    assert str(pickle.loads(pickle.dumps(error))) == "Command refused: x"
