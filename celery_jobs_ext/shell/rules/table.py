"""The built-in per-program table: refused options, program families, option grammar hints.

Rules are looked up under a program's base name, its name without a version suffix
(``python3.11``), its family (``gawk`` is ``awk``) and the name its path resolves to.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

DENIED_SETTING = "jobs_shell_denied_arguments"

_VERSION_SUFFIX = re.compile(r"[-_.]?[0-9]+(?:\.[0-9]+)*\Z")

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
            "-g", "--listed-incremental", "--index-file", "--volno-file", "--remove-files",
        ),
        "sed": ("-i", "--in-place", "-f", "--file"),
        "awk": (
            "-f", "--file", "-E", "--exec", "-i", "--include", "-l", "--load", "-W",
            "-d", "--dump-variables", "-D", "--debug", "-o", "--pretty-print",
            "-p", "--profile",
        ),
        "git": (
            "--config-env", "--exec-path", "--upload-pack", "--receive-pack", "--exec",
            "--extcmd", "--open-files-in-pager", "--ext-diff", "--output", "--output-directory",
        ),
        "ssh": ("-F", "-I", "-E", "-S", "-J"),
        "scp": ("-F", "-S", "-D", "-J"),
        "sftp": ("-F", "-S", "-D", "-b", "-J"),
        "ssh-keygen": ("-D", "-w"),
        "rsync": (
            "-e", "--rsh", "--rsync-path", "-M", "--remote-option", "--log-file", "--write-batch",
            "--only-write-batch", "--daemon", "--config", "--server", "--sender", "--write-devices",
        ),
        "curl": (
            "-o", "--output", "-O", "--remote-name", "--remote-name-all", "--output-dir",
            "-K", "--config", "-D", "--dump-header", "-c", "--cookie-jar", "--trace",
            "--trace-ascii", "--stderr", "--libcurl", "--etag-save", "--hsts", "--alt-svc",
            "--ssl-sessions", "--engine", "--create-dirs", "--ftp-create-dirs", "--unix-socket",
            "--abstract-unix-socket", "--proto-default", "-T", "--upload-file",
        ),
        "wget": (
            "-O", "--output-document", "-o", "--output-file", "-a", "--append-output",
            "-P", "--directory-prefix", "-e", "--execute", "--config", "--use-askpass",
            "--save-cookies", "--warc-file", "--warc-tempdir", "--rejected-log", "--hsts-file",
            "-b", "--background", "--backups", "-x", "--force-directories", "--protocol-directories",
        ),
        "less": (
            "+", "-k", "--lesskey-file", "--lesskey-src", "--lesskey-content",
            "-o", "--log-file", "-O", "--LOG-FILE",
        ),
        "man": (
            "-P", "--pager", "-H", "--html", "-X", "--gxditview", "-C", "--config-file", "-l",
            "--local-file",
        ),
        "vim": (
            "+", "-c", "--cmd", "-S", "-u", "-U", "-s", "-w", "-W", "-i", "-V", "--startuptime",
            "--remote", "--remote-silent", "--remote-wait", "--remote-wait-silent", "--remote-tab",
            "--remote-tab-silent", "--remote-tab-wait", "--remote-tab-wait-silent", "--remote-send",
            "--remote-expr", "--log",
        ),
        "emacs": (
            "--eval", "-l", "--load", "-f", "--funcall", "--script", "-x", "--init-directory", "-u",
            "--user",
        ),
        "zip": ("-TT", "--unzip-command", "-lf", "--logfile-path"),
        "tcpdump": ("-z", "-w"),
        "sort": ("--compress-program",),
        "split": ("--filter",),
        "rg": ("--pre", "--hostname-bin"),
        "make": (
            "-E", "--eval", "-f", "--file", "--makefile", "-I", "--include-dir",
            "--jobserver-auth", "--jobserver-fds", "-W", "--what-if", "--new-file", "--assume-new",
            "-C", "--directory",
        ),
        "nmap": (
            "--script", "-script", "--interactive", "-interactive",
            "--datadir", "-datadir", "-o",
        ),
        "nc": ("-e", "-c", "-o", "--exec", "--sh-exec", "--lua-exec", "--output", "-x", "--hex-dump"),
        "python": ("-c", "-m"),
        "perl": ("-e", "-E", "-M", "-m", "-i", "-d"),
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
        # round 5: a listed debugpy ran -c code; --listen/--connect open a debugger to the
        # network, --log-to writes files, --pid attaches to another process
        "debugpy": ("-c", "-m", "--listen", "--connect", "--log-to", "--pid"),
        "sh": ("-c", "--command", "--commands", "-C", "--init-command", "--rcfile", "--init-file"),
        "nu": (
            "-c", "--commands", "-e", "--execute", "--config", "--env-config", "--plugin-config",
            "-I", "--include-path", "--plugins",
        ),
        "pwsh": ("-command", "-encodedcommand", "-commandwithargs", "-ec", "-e", "-c", "-cwa"),
        "julia": ("-e", "--eval", "-E", "--print", "-L", "--load"),
        "Rscript": ("-e", "--default-packages"),
        "R": ("-e", "-f", "--file"),
        "guile": ("-c", "-l", "-x", "-e", "--use-srfi", "-L"),
        "racket": (
            "-e", "--eval", "-f", "--load", "-r", "--require", "-l", "--lib", "-t", "--require-script",
        ),
        "sbcl": ("--eval", "--load", "--script"),
        "clisp": ("-x", "-i"),
        "ghc": ("-e",),
        "groovy": ("-e",),
        "scala": ("-e",),
        "elixir": ("-e", "--eval", "-r", "-pr", "--erl", "--rpc-eval"),
        "erl": ("-eval", "-s", "-run", "-S", "-pa", "-pz", "-boot", "-config", "-args_file"),
        "raku": ("-e", "-M", "-I"),
        "gnuplot": ("-e", "-c"),
        "octave": ("--eval",),
        "bun": ("-e", "--eval", "-p", "--print", "-r", "--preload", "--require"),
        "osascript": ("-e",),
        "mongosh": ("--eval", "-f", "--file"),
        "duckdb": ("-c", "-cmd", "-init", "-s", "-f"),
        "dc": ("-e", "--expression"),
        "iconv": ("-o", "--output"),
        "info": ("-o", "--output", "--dribble", "--init-file", "--restore"),
        "pandoc": (
            "-F", "--filter", "-L", "--lua-filter", "-o", "--output", "--pdf-engine",
            "--pdf-engine-opt", "-d", "--defaults", "--extract-media", "--data-dir",
        ),
        "tex": (
            "-shell-escape", "--shell-escape", "-enable-write18", "--enable-write18",
            "-output-directory", "--output-directory", "-recorder", "--recorder",
        ),
        "mailx": ("-S",),
        "apt-get": ("-o", "--option", "-c", "--config-file"),
        "dpkg": (
            "--pre-invoke", "--post-invoke", "--log", "--status-logger", "--admindir", "--instdir",
            "--root",
        ),
        "magick": ("-write", "+write", "-script"),
        "psql": ("-c", "--command", "-f", "--file", "-o", "--output", "-L", "--log-file"),
        "mysql": (
            "-e", "--execute", "--init-command", "--pager", "--tee",
            "--plugin-dir", "--default-auth", "--defaults-file", "--defaults-extra-file",
            "--defaults-group-suffix", "--plugin-load", "--plugin-load-add", "-#", "--debug",
            "--load-data-local-dir", "--init-rpl-role", "--histfile",
        ),
        "mysqldump": (
            "-r", "--result-file", "-T", "--tab", "-#", "--debug", "--defaults-file",
            "--defaults-extra-file", "--plugin-dir", "--default-auth",
        ),
        "openssl": (
            "-out", "-keyout", "-engine", "-provider", "-provider-path", "-config", "-writerand",
            "-sess_out", "-keylogfile", "-CAcreateserial", "-msgfile", "engine", "-respout",
            "-reqout", "-outdir", "-srpvfile", "rehash", "ca", "srp", "-certsout", "-CAserial",
        ),
        "gpg": (
            "-o", "--output", "--homedir", "--exec-path", "--load-extension", "--photo-viewer",
            "--options", "--command-file", "--logger-file", "--log-file", "--status-file",
            "--attribute-file", "--agent-program", "--dirmngr-program", "--keyboxd-program",
            "--trustdb-name", "--keyring", "--primary-keyring", "--secret-keyring",
        ),
        "ip": ("-batch", "exec"),
        "journalctl": (
            "--setup-keys", "--vacuum-size", "--vacuum-time", "--vacuum-files", "--rotate", "--flush",
            "--update-catalog", "-D", "--directory", "--root", "--image", "--relinquish-var",
            "--smart-relinquish-var", "--cursor-file", "--sync", "-M", "--machine",
        ),
        "sqlite3": ("-cmd", "--cmd", "-init", "--init", "-A", "-archive", "--archive"),
        "cmake": ("-E", "-P", "-C", "--build", "--install", "-S", "-B"),
        "dmesg": (
            "-c", "--read-clear", "-C", "--clear", "-D", "--console-off", "-E", "--console-on",
            "-n", "--console-level",
        ),
        "logger": ("-f", "--file"),
        # go's flag package: one or two dashes, "=value" or the next word; these run a program
        # (-toolexec, -exec, -vettool, an external linker through -ldflags), write (-o) or read
        # build configuration from a chosen file or directory.
        "go": (
            "-toolexec", "-exec", "-vettool", "-ldflags", "-gcflags", "-asmflags", "-gccgoflags",
            "-compiler", "-overlay", "-modfile", "-pgo", "-o", "-C", "-coverprofile", "-cpuprofile",
            "-memprofile", "-blockprofile", "-mutexprofile", "-trace", "-outputdir",
            # go env -w writes GOFLAGS into go's own env file; go get and go mod/work edit
            # replace a dependency, whose init() the next go test runs
            "-w", "get", "edit", "use",
        ),
        "gradle": ("-I", "--init-script", "-b", "--build-file", "-c", "--settings-file", "-p",
                   "--project-dir", "-g", "--gradle-user-home", "-D", "--system-prop", "-P",
                   "--project-prop", "--include-build"),
    }
)  # fmt: skip
"""Built-in refused options per program family; see the module docstring for the syntax."""


# Other names of the families in DENIED_ARGUMENTS. Version suffixes (python3.11, perl5.36,
# gcc-12) are stripped before this lookup.
FAMILIES: Mapping[str, str] = MappingProxyType(
    {
        "gfind": "find", "bfs": "find", "fdfind": "fd",
        "gtar": "tar", "bsdtar": "tar",
        "gsed": "sed",
        "gawk": "awk", "mawk": "awk", "nawk": "awk", "original-awk": "awk",
        "slogin": "ssh",
        "vi": "vim", "nvim": "vim", "view": "vim", "ex": "vim", "rvim": "vim",
        "rview": "vim", "gvim": "vim", "vimdiff": "vim", "evim": "vim", "vim.basic": "vim",
        "vim.tiny": "vim", "vim.nox": "vim", "vim.gtk3": "vim",
        "pypy": "python", "pdb": "python", "ipython": "python", "nodejs": "node", "luajit": "lua",
        "bash": "sh", "dash": "sh", "zsh": "sh", "ksh": "sh", "mksh": "sh", "ash": "sh",
        "yash": "sh", "csh": "sh", "tcsh": "sh", "fish": "sh", "pdksh": "sh", "oksh": "sh",
        "rbash": "sh", "posh": "sh", "loksh": "sh",
        "ncat": "nc", "netcat": "nc", "nc.traditional": "nc", "nc.openbsd": "nc",
        "mariadb": "mysql", "sqlite": "sqlite3",
        "mariadb-dump": "mysqldump", "gpg2": "gpg", "tofu": "terraform", "microk8s.kubectl": "kubectl",
        "rc": "sh", "es": "sh", "elvish": "sh", "xonsh": "sh", "ion": "sh", "scsh": "sh",
        "powershell": "pwsh", "perl6": "raku", "rakudo": "raku", "jruby": "ruby",
        "truffleruby": "ruby", "mongo": "mongosh", "runghc": "ghc", "runhaskell": "ghc", "iex": "elixir",
        "pdflatex": "tex", "latex": "tex", "xelatex": "tex", "lualatex": "tex", "luatex": "tex",
        "pdftex": "tex", "xetex": "tex", "etex": "tex", "mail": "mailx", "s-nail": "mailx",
        "bsd-mailx": "mailx", "heirloom-mailx": "mailx", "nail": "mailx", "apt": "apt-get",
        "apt-cache": "apt-get", "aptitude": "apt-get", "convert": "magick", "mogrify": "magick",
        "identify": "magick", "composite": "magick", "montage": "magick", "compare": "magick",
        "conjure": "magick", "stream": "magick", "display": "magick", "import": "magick",
        "animate": "magick",
    }
)  # fmt: skip

# Short options that take a value glued to them (``-Igzip``, ``-F:``), denied or not: the
# letters after one of these in a cluster are its value, not more options. Only letters whose
# value really consumes the rest of the cluster belong here; a letter missing here only makes
# matching stricter.
SHORT_OPTIONS_WITH_VALUES: Mapping[str, str] = MappingProxyType(
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
        # round 5: -uroot is -u root, not -r (mysqldump --help: these take a value)
        "mysqldump": "hPpSurTw#",
        "nc": "ceGgIiMmoOPpqsTVWwXx",
        "make": "CEfIjlOoW",
        "journalctl": "cDFgiMnopSUtu",
        "dmesg": "Ffln",
        "logger": "fnPpSTtu",
    }
)

# Real long options that are prefixes of denied ones; getopt takes an exact match first.
# Found by comparing each program's --help with the table (GNU getopt_long and curl take an
# exact match before an abbreviation: "tar --list" is --list, not --listed-incremental).
LONG_OPTION_EXCEPTIONS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "tar": frozenset({"--checkpoint", "--list"}),
        "curl": frozenset({"--cookie", "--proto", "--ssl"}),
        "wget": frozenset({"--reject"}),
        "journalctl": frozenset({"--cursor"}),
        "make": frozenset({"--jobs"}),
        "dpkg": frozenset({"--status"}),
    }
)

REFUSAL_REASONS: Mapping[str, str] = MappingProxyType(
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
        "curl": "makes curl write files (also by uploading to a file:// URL) or read a config file",
        "wget": "makes wget write files, read a config file or run a program",
        "less": "makes less run commands or write files",
        "man": "makes man run another program, read a config file or format a chosen local file",
        "vim": "runs editor commands or scripts",
        "emacs": "runs Lisp code",
        "zip": "makes zip run another program",
        "tcpdump": "makes tcpdump run a program or write a capture file",
        "sort": "makes sort run a compression program",
        "split": "makes split run a command",
        "rg": "makes rg run a preprocessor",
        "make": "evaluates makefile code (-C runs the Makefile of another directory)",
        "nmap": "runs scripts or writes files",
        "nc": "runs a program or writes a file",
        "python": "runs code given on the command line",
        "debugpy": "runs code, opens a debugger to the network, attaches to a process or writes a log",
        "perl": "runs code given on the command line or edits files in place",
        "ruby": "runs code given on the command line or edits files in place",
        "node": "runs code given on the command line or opens a debugger",
        "php": "runs code given on the command line or loads settings and extensions",
        "lua": "runs code given on the command line",
        "sh": "runs shell code given on the command line",
        "psql": "runs meta-commands (\\! runs a shell) or writes files",
        "mysql": "runs commands, writes files or loads plugins",
        "sqlite3": "runs dot-commands that can run programs or write files",
        "journalctl": "writes or moves journal files, or reads journals from a chosen directory",
        "cmake": "runs commands or CMake scripts, or builds another directory",
        "dmesg": "clears the kernel ring buffer or changes the console log level",
        "logger": "sends a local file to the system log (or a remote one with -n)",
        "go": "makes go run a program, write a file or read build configuration from a chosen place",
        "gradle": "makes gradle run an init script or build another directory",
    }
)
DEFAULT_REFUSAL_REASON = "can make the program run other programs or write files"


def names_of(paths: Iterable[str]) -> set[str]:
    """The names rules are looked up under: base name, without version suffix, family."""
    names: set[str] = set()
    for path in paths:
        base = os.path.basename(path)
        for name in (base, _VERSION_SUFFIX.sub("", base)):
            if name:
                names.add(name)
                family = FAMILIES.get(name)
                if family:
                    names.add(family)
    return names
