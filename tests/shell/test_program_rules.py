"""Per-program rules read options with each program's grammar; ordinary use is not refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from celery_jobs_ext.errors import ShellCommandNotAllowed
from celery_jobs_ext.shell import DEFAULT_SEARCH_PATH, run_command, validate_command
from tests.shell.helpers import make_programs

PROGRAMS = [
    "curl", "wget", "tar", "rsync", "make", "ssh", "scp", "sqlite3", "git", "mysql", "mariadb",
    "mysqldump", "less", "nmap", "awk", "gawk", "ip", "openssl", "gpg", "vim", "emacs", "zip", "rg",
    "ncat", "bash", "nu", "pwsh", "powershell", "julia", "Rscript", "perl", "dc", "gnuplot", "erl",
    "mongosh", "duckdb", "elixir", "redis-cli", "convert", "magick", "pandoc", "pdflatex", "mail",
    "apt-get", "dpkg", "iconv", "info", "xdg-open", "qemu-x86_64", "wine", "gio", "sensible-editor",
]  # fmt: skip


@pytest.fixture(scope="module")
def search_path(tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(make_programs(tmp_path_factory.mktemp("bin"), PROGRAMS))


def validate(command: str, search_path: str) -> list[str]:
    program = command.split()[0]
    return validate_command(command, [program], denied_arguments={}, search_path=search_path)


REFUSED = {
    "long-option-abbreviation": [
        "curl --outp=/tmp/x https://a",
        "curl --output-d /tmp https://a",
        "wget -O- --save-c=/tmp/c https://a",
        "tar -cf a.tar --index-f=/tmp/x .",
        "rsync --log-f=/tmp/x a b",
        "less --log-f=/tmp/x f",
        "git diff --outp=/tmp/x",
        "make --fil=x.mk",
        "make --ev=x",
    ],
    "clustered-short-options": [
        "curl -sSo/tmp/x https://a",
        "curl -sSLO https://a/x",
        "wget -qo/tmp/log -O- https://a",
        "make -kf evil.mk",
        "tar -xvzg/tmp/snap -f a.tgz",
        "ssh -vS/tmp/ctl host",
        "nmap -oN/tmp/x host",
    ],
    "ssh-o-keyword-spellings": [
        "ssh -o '\"ProxyCommand\" touch /tmp/x' host",
        "ssh -o '=ProxyCommand=touch /tmp/x' host",
        "ssh -o 'Proxy\"Command\" touch /tmp/x' host",
        "ssh -o 'PROXYCOMMAND touch /tmp/x' host",
        "ssh -o ' proxycommand=touch /tmp/x' host",
        "ssh '-oProxyCommand touch /tmp/x' host",
        "ssh -o ControlPath=/tmp/x -o ControlMaster=yes host",
        "ssh -o ControlPersist=yes host",
        "ssh -o 'Include /tmp/x' host",
        "ssh -o ProxyJump=a host",
        "ssh -o 'LocalCommand touch x' host",
        "ssh -o GlobalKnownHostsFile=/tmp/x host",
        "scp -o '\"proxycommand\" x' a host:b",
    ],
    "sqlite3-dot-command-prefixes": [
        "sqlite3 db '.sh touch /tmp/x'",
        "sqlite3 db '.sys touch /tmp/x'",
        "sqlite3 db '.o /tmp/x'",
        "sqlite3 db '.once /tmp/x'",
        "sqlite3 db '.SHELL x'",
        "sqlite3 db '.backup /tmp/x'",
        "sqlite3 db '.save /tmp/x'",
        "sqlite3 db '.excel'",
        "sqlite3 db ' .sh x'",
        "sqlite3 -A db.sqlar",
        "sqlite3 --cmd '.sh x' db",
        "sqlite3 -init /tmp/x db",
    ],
    "sqlite3-sql-functions-and-comments": [
        "sqlite3 db \"select writefile/**/('/tmp/x', 'y')\"",
        "sqlite3 db 'select \"writefile\"(1, 2)'",
        "sqlite3 db \"select [edit]('x', 'touch /tmp/x')\"",
        "sqlite3 db 'select `WriteFile` (1, 2)'",
        "sqlite3 db \"select WRITEFILE ('/tmp/x', 1)\"",
        "sqlite3 db \"attach/**/'/tmp/x' as y\"",
        "sqlite3 db \"vacuum into '/tmp/x'\"",
        "sqlite3 db \"VACUUM /* x */ INTO '/tmp/x'\"",
        "sqlite3 db \"select load_extension('/tmp/x')\"",
        "sqlite3 db \"select 1 /* x */; attach 'x' as y\"",
        "sqlite3 db \"select fts3_tokenizer('x')\"",
        "sqlite3 db \"create virtual table t using zipfile('/tmp/z')\"",
    ],
    "make-command-line-assignments": [
        "make SHELL=/tmp/x all",
        "make 'CC=touch /tmp/x'",
        "make 'X!=touch /tmp/x'",
        "make -- .SHELLFLAGS=-c",
        "make override=1",
        "make -f /tmp/x.mk",
        "make -I /tmp",
        "make --eval='$(shell id)'",
    ],
    "git-plumbing-spellings-and-aliases": [
        "git submodule--helper foreach id",
        "git bisect--helper x",
        "git my-alias",
        "git config alias.x '!sh'",
        "git help log",
        "git difftool -x x",
        "git bisect run x",
        "git -c alias.x=!sh x",
        "git --config-env=a=b log",
        "git --conf=a=b log",
        "git fetch 'EXT::sh -c x'",
        "git clone 'fd::17' x",
        "git clone testgit::x y",
        "git log --output=/tmp/x",
        "git archive -o /tmp/x HEAD",
        "git format-patch -o /tmp HEAD~1",
        "git worktree add /tmp/x",
        "git submodule foreach id",
        "git -C . filter-branch x",
    ],
    "mysql-underscore-and-loose-forms": [
        "mysql --init_command=x",
        "mysql --loose-init-command=x",
        "mysql --LOOSE_PAGER=sh",
        "mysql --maximum-tee=/tmp/x",
        "mysql --defaults-extra-file=/tmp/x",
        "mysql --plugin_dir=/tmp",
        "mariadb --loose-pager=sh",
        "mysql -#d:o,/tmp/x",
        "mysql --loose-loose-execute='system id'",
        "mysql --enable-pager=sh",
        "mysqldump --result_file=/tmp/x db",
        "mysql --def=/tmp/x",
    ],
    "options-that-write-files": [
        "curl --output=/tmp/x https://a",
        "curl -o /tmp/x https://a",
        "curl --dump-header /tmp/x https://a",
        "curl --trace /tmp/x https://a",
        "curl -w '%output{/tmp/x}ok' https://a",
        "curl -w @/tmp/fmt https://a",
        "curl --libcurl /tmp/x https://a",
        "curl -c /tmp/jar https://a",
        "curl --create-dirs -O https://a/x",
        "wget --save-cookies=/tmp/c -O- https://a",
        "wget --warc-file=/tmp/w -O- https://a",
        "wget -o /tmp/log -O- https://a",
        "wget -b -O- https://a",
        "wget https://a/x",
        "wget --output-document=/tmp/x https://a",
        "wget -P /tmp https://a",
        "rsync --log-file=/tmp/x a b",
        "rsync --write-batch=/tmp/x a b",
        "less --log-file=/tmp/x f",
        "less -o/tmp/x f",
        "tar --index-file=/tmp/x -cf a.tar .",
        "nmap -oN /tmp/x host",
        "nmap -scrip=x host",
        "openssl req -out /tmp/x",
        "openssl s_client -engine x",
        "gpg -o /tmp/x --encrypt f",
        "ip netns exec x sh",
        "ip -batch /tmp/x",
        "ip -ba /tmp/x",
        "wget -O - -x https://a",
        "wget -O - --force-dir https://a",
        "vim -i /tmp/viminfo f",
        "vim -V9/tmp/log f",
        "vim --startuptime /tmp/x f",
        "vim --remote-send ':!id<CR>'",
        "emacs -eval '(x)'",
        "emacs --ev '(x)'",
        "emacs -l x.el",
        "emacs --init-directory=/tmp",
        "zip -lf /tmp/log a.zip f",
        "rg --hostname-bin=/tmp/x y",
        "ncat --hex-dump=/tmp/x host 80",
        "openssl engine dynamic",
    ],
    "runs-another-program": ["git --help log", "git log --help", "ssh -J jump host", "scp -J jump a host:b"],
    "interpreters-and-clients": [
        "bash --commands x",
        "nu -c 'touch x'",
        "nu --commands x",
        "pwsh -Command x",
        "pwsh -co x",
        "pwsh --enc x",
        "powershell -EC x",
        "julia -e 'run(`touch x`)'",
        "Rscript -e 'system(1)'",
        "perl -d:Foo s.pl",
        "dc -e '!touch x'",
        "gnuplot -e 'system(1)'",
        "erl -eval 'os:cmd(1)'",
        "erl -s os cmd",
        "mongosh --eval 'x'",
        "duckdb -c 'copy t to x'",
        "elixir -e x",
        "redis-cli CONFIG SET dir /tmp",
        "redis-cli -h db -n 1 config set dbfilename x",
        "redis-cli --rdb /tmp/x",
        "redis-cli MODULE LOAD /tmp/x.so",
        "redis-cli -p 6380 REPLICAOF a 1",
        "convert '|touch x' out.png",
        "convert msl:/tmp/x.msl out.png",
        "convert @/tmp/list out.png",
        "magick in.png -write /tmp/x out.png",
        "pandoc --lua-filter=x.lua f.md",
        "pandoc -F x f.md",
        "pdflatex -shell-escape f.tex",
        "mail -S sendmail=/tmp/x a@b",
        "apt-get -o APT::Update::Pre-Invoke::=x update",
        "dpkg --pre-invoke=x -i a.deb",
        "iconv -f a -t b -o /tmp/x f",
        "info -o /tmp/x ls",
        "curl gopher://127.0.0.1:6379/_x",
        "curl --url=gopher://127.0.0.1:6379/_x",
        "curl '{gopher,http}://127.0.0.1:6379/_x'",
        "curl ' gopher://127.0.0.1/x'",
        "curl DICT://127.0.0.1:11211/x",
        "curl --unix-socket /var/run/x.sock http://x/",
        "curl --proto-default gopher 127.0.0.1:6379",
        "gpg --agent-program /tmp/x -d f",
        "openssl ocsp -respout /tmp/x",
        "openssl ca -outdir /tmp/x",
    ],
    "wrappers-under-other-names": [
        "xdg-open f",
        "qemu-x86_64 /bin/sh",
        "wine x.exe",
        "gio launch x.desktop",
        "sensible-editor f",
    ],
}


@pytest.mark.parametrize(
    "command",
    [pytest.param(command, id=f"{group}:{command}") for group, items in REFUSED.items() for command in items],
)
def test_spelling_that_would_run_code_or_write_a_file_is_refused(search_path: str, command: str) -> None:
    with pytest.raises(ShellCommandNotAllowed):
        validate(command, search_path)


ORDINARY = [
    "curl --cookie 'a=b' https://example.com", "curl -b 'a=b' https://a", "curl -o - https://a",
    "curl -so- https://a", "curl --output=- https://a", "curl -sSL -w '%{http_code}' https://a",
    "curl -D - https://a", "wget -qO- https://a", "wget -O - https://a", "wget --output-document=- https://a",
    "wget --spider https://a", "awk '{print \"a>b\"}' f", "awk '$3 > 100 {print $1}' f",
    "awk '{if ($2 > 0) print $1 > \"/dev/stderr\"}' f", "awk '{print ($1 > 2)}' f",
    "awk '/system/ {print}' f", "gawk '{gsub(/>/, \"gt\"); print}' f", "awk -F'|' '{print $2}' f",
    "sqlite3 db \"select 'DROP; ATTACH' as x\"", "sqlite3 db \"select * from t where note = '.shell'\"",
    "sqlite3 db \"select 'writefile(' || name from t\"", "sqlite3 db .tables", "sqlite3 db '.schema t'",
    "sqlite3 -header -csv db 'select 1'", "sqlite3 -separator '|' db 'select 1, 2'",
    "ssh -o ConnectTimeout=5 -o 'StrictHostKeyChecking no' -o BatchMode=yes host uptime",
    "scp -o Port=2222 a host:b", "git log --oneline -n 5", "git diff --output-indicator-new=+",
    "git fetch https://example.com/r.git", "git submodule update --init", "git worktree list",
    "mysql --skip-pager -h db -u reader app", "mysql --connect-timeout=5 app", "make -j4 all",
    "make test",
    "ip -br addr", "ip route show", "tar -czf - dir", "rsync -avz src/ host:dst/", "nmap -sV host",
    "openssl x509 -in cert.pem -noout -text", "less -R f", "emacs -nw -fs f", "emacs --batch -q f",
    "vim -R f", "zip -r - d", "redis-cli -h db -n 1 HGET k f", "redis-cli GET config",
    "convert in.png -resize 50% png:-", "curl https://example.com/", "julia script.jl",
    "pwsh -File /srv/x.ps1", "bash -e deploy.sh",
]  # fmt: skip


@pytest.mark.parametrize("command", ORDINARY)
def test_ordinary_use_is_not_refused(search_path: str, command: str) -> None:
    assert validate(command, search_path)


def run(command: str, cwd: Path) -> dict[str, object]:
    program = command.split()[0]
    argv = validate_command(command, [program], denied_arguments={}, search_path=DEFAULT_SEARCH_PATH)
    return run_command(argv, cwd=str(cwd), env={}, search_path=DEFAULT_SEARCH_PATH, timeout=30)


@pytest.mark.skipif(shutil.which("awk") is None, reason="awk is not installed")
def test_awk_with_gt_in_a_string_and_a_comparison_runs(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("a 5\nb 500\n")
    result = run("awk '$2 > 100 {print \"big>\" $1}' f", tmp_path)
    assert result["stdout"] == "big>b\n"


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="sqlite3 is not installed")
def test_sqlite_with_keywords_in_string_literals_runs_and_writes_nothing_else(tmp_path: Path) -> None:
    result = run("sqlite3 :memory: \"select 'ATTACH ''x'' AS y; .shell touch z'\"", tmp_path)
    assert result["stdout"] == "ATTACH 'x' AS y; .shell touch z\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == []


@pytest.mark.skipif(shutil.which("sqlite3") is None, reason="sqlite3 is not installed")
def test_sqlite_dot_command_prefix_that_used_to_run_touch_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ShellCommandNotAllowed, match=r"dot-command '\.sh'"):
        run(f"sqlite3 :memory: '.sh touch {tmp_path / 'marker'}'", tmp_path)
    assert not (tmp_path / "marker").exists()
